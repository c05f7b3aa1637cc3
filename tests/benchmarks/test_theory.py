"""benchmarks/theory.py: the analytic examples hold their claims; the bifurcation section
runs end to end at a tiny size and resumes from its records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "theory.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600
    )
    return result


@pytest.fixture(scope="module")
def analytic(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("theory") / "theory"
    result = _run("--sections", "scalar", "tv", "--rollouts", "500", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out.parent / "theory_scalar.png").stat().st_size > 10_000
    assert (out.parent / "theory_tv.png").exists()
    return json.loads(out.with_suffix(".json").read_text())


def test_mean_learner_grows_like_1_05_to_the_t(analytic):
    assert analytic["scalar"]["mean_learner_rate"] == pytest.approx(1.05, rel=0.02)


def test_sampling_learner_stays_small_with_the_predicted_probability(analytic):
    scalar = analytic["scalar"]
    assert scalar["sampling_stayed_within_bound"]
    assert max(scalar["sampling_median"]) <= 10 * scalar["eps"] * 1.0001


def test_unstable_chunk_grows_like_2_to_the_t_without_gains_only(analytic):
    unstable = analytic["unstable"]
    assert unstable["raw_rate"] == pytest.approx(2.0, rel=0.02)
    assert max(unstable["gains_gap"]) <= unstable["gains_bound"] * 1.0001
    assert unstable["raw_gap"][-1] > 1e3 * max(unstable["gains_gap"])


def test_replica_noised_step_is_below_the_tv_bound(analytic):
    rows = analytic["tv"]["rows"]
    assert len({r["sigma"] for r in rows}) >= 3
    assert all(r["measured"] <= r["bound"] for r in rows)
    assert all(abs(r["measured"] - r["exact"]) < 0.01 for r in rows)


def test_bifurcation_section_runs_and_resumes(tmp_path):
    out, work = tmp_path / "theory", tmp_path / "work"
    tiny = ["--sections", "bifurcation", "--seeds", "1", "--sigmas", "0", "0.1", "--demos", "4"]
    tiny += ["--steps", "5", "--episodes", "2", "--workers", "1", "--out", str(out)]
    tiny += ["--work", str(work)]
    first = _run(*tiny)
    assert first.returncode == 0, first.stdout + first.stderr
    records = [json.loads(line) for line in (work / "bifurcation.jsonl").read_text().splitlines()]
    # sigma 0 once; sigma 0.1 under both default laws (Gaussian records name no law)
    assert sorted((r["kind"], r["sigma"], r.get("noise_law", "gaussian")) for r in records) == [
        ("primitive", 0.0, "gaussian"),
        ("primitive", 0.1, "gaussian"),
        ("primitive", 0.1, "uniform"),
        ("raw", 0.0, "gaussian"),
        ("raw", 0.1, "gaussian"),
        ("raw", 0.1, "uniform"),
    ]
    for record in records:
        for key in ("success", "collision", "d_train", "d_test"):
            assert 0.0 <= record[key] <= 1.0
        for key in ("success", "collision", "d_test"):  # the same model on clean observations
            assert 0.0 <= record["train_only"][key] <= 1.0
        assert len(record["positions"]) == 2
    page = out.with_suffix(".md").read_text()
    assert "## 3. A pure bifurcation" in page and "| raw | 0.1 | uniform |" in page
    assert "train-only: success" in page
    # a rerun finds every record and trains nothing
    again = _run(*tiny)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len((work / "bifurcation.jsonl").read_text().splitlines()) == 6


def test_bad_arguments_are_refused_before_any_work(tmp_path):
    result = _run("--sigmas", "-0.1", "--out", str(tmp_path / "t"))
    assert result.returncode == 2 and "--sigmas" in result.stderr
    (tmp_path / "file.txt").write_text("not a folder")
    result = _run("--out", str(tmp_path / "file.txt" / "theory"), "--sections", "tv")
    assert result.returncode == 2 and "not a directory" in result.stderr


def test_the_leaderboard_runs_the_theory_envs_unchanged(tmp_path):
    """Both theory ids go through the leaderboard (collect, train, evaluate, report)."""
    blocks = []
    for env_id in ("hint_envs/ScalarLinear-v0", "hint_envs/Bifurcation-v0"):
        blocks.append(
            f"""
[[env]]
id = "{env_id}"
policies = ["hint", "ddpm_no_gains"]
sigmas = [0.1]
num_demos = [2]
seeds = [0]

[env.policy]
widths = [32, 32]
obs_horizon = 1
horizon = 8
chunk_length = 4
diffusion_steps = 10
inference_steps = 3

[env.train]
steps = 5
batch_size = 16
warmup_steps = 1

[env.eval]
episodes = 2
num_envs = 2
"""
        )
    suite = tmp_path / "theory_tiny.toml"
    suite.write_text('name = "theory_tiny"\ndescription = "test"\nseed = 0\n' + "".join(blocks))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    out = tmp_path / "lb"
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "leaderboard.py"), "--suite", str(suite)]
        + ["--out", str(out), "--workers", "1", "--report-to", str(out / "report.md")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    records = sorted((out / "records").rglob("*.json"))
    assert len(records) == 4
    report = (out / "report.md").read_text()
    assert "ScalarLinear-v0" in report and "Bifurcation-v0" in report
