"""benchmarks/fig6.py: the page made from law-suite records, with its standard errors,
paired differences, the bias arms and the checkpoint protocol."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import fig6  # noqa: E402
from leaderboard_lib.runs import prepare_demos, record_file, run_job, write_record  # noqa: E402
from leaderboard_lib.suite import expand, load_suite  # noqa: E402

SUITE = """
name = "laws"
[[env]]
id = "hint_envs/PlanarQuadrotor-v0"
policies = ["hint", "ddpm_train_noise", "ddpm_train_noise_shifted", "ddpm_train_noise_debiased"]
sigmas = [0.0, 0.1]
noise_laws = ["gaussian", "uniform"]
num_demos = [1]
seeds = [0, 1]
[env.policy]
widths = [16]
diffusion_steps = 5
[env.train]
steps = 4
batch_size = 8
warmup_steps = 1
[env.eval]
episodes = 2
num_envs = 2
expert = false
sample_seeds = 2
checkpoint_every = 2
"""


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results")
    suite_file = folder / "laws.toml"
    suite_file.write_text(SUITE)
    jobs = expand(load_suite(suite_file))
    demos = prepare_demos([job.spec.demos for job in jobs], folder / "laws", progress=False)
    for job in jobs:
        for run, record in zip(job.runs, run_job(job, demos[job.spec.demos]), strict=True):
            write_record(record_file(folder / "laws", run), record)
    return folder


def test_the_page_has_every_arm_its_errors_and_the_protocol(results: Path) -> None:
    out = results / "page" / "fig6.md"
    args = fig6.Args(suites=("laws", "missing"), results=str(results), out=str(out))
    fig6.write_page(args)
    page = out.read_text()
    assert "## PlanarQuadrotor" in page and "## missing" in page  # a suite without records
    assert "| gaussian | 0.1 |" in page and "| uniform | 0.1 |" in page
    assert "train-only, inputs +σ/2 − train-only" in page  # the bias, isolated
    assert "best 3: replica" in page
    assert (out.parent / "img" / "laws.png").stat().st_size > 0


def test_standard_errors_and_paired_differences() -> None:
    cells = {0: [1.0, 0.0, 1.0, 0.0], 1: [1.0, 1.0, 1.0, 1.0]}
    s = fig6.stat(cells)
    assert s.mean == pytest.approx(0.75) and s.n_seeds == 2 and s.n_cells == 8
    assert s.se_cells == pytest.approx(np.std([1, 0, 1, 0, 1, 1, 1, 1], ddof=1) / np.sqrt(8))
    assert s.se_seeds == pytest.approx(np.std([0.5, 1.0], ddof=1) / np.sqrt(2))
    assert s.se == max(s.se_cells, s.se_seeds)

    def record(seed, values):
        episodes = [
            {"sample_seed": 0, "state_seed": i, "max_reward": v, "success": v > 0.5}
            for i, v in enumerate(values)
        ]
        return {"config": {"seed": seed}, "episodes": episodes}

    first = [record(0, [0.9, 0.8]), record(1, [0.7, 0.6])]
    second = [record(0, [0.5, 0.5]), record(1, [0.5, 0.4])]
    diff = fig6.paired(first, second, "max_reward")
    assert diff.mean == pytest.approx(np.mean([0.4, 0.3, 0.2, 0.2]))
    assert fig6._finding(diff) == "yes"
