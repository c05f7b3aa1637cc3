"""benchmarks/leaderboard.py: resume after SIGKILL, identical records across backends,
suite validation, job sharing and the report.

The end-to-end tests run the real script as a subprocess on ``benchmarks/suites/tiny.toml``
(6 runs in 4 trained models, seconds each). Its numbers mean nothing; what is checked is
the machinery.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "leaderboard.py"
# the script imports its helpers as ``leaderboard_lib`` (its own folder is on sys.path)
sys.path.insert(0, str(REPO / "benchmarks"))

from leaderboard_lib.registry import POLICIES, policy_available  # noqa: E402
from leaderboard_lib.runs import prepare_demos, read_record, write_record  # noqa: E402
from leaderboard_lib.suite import SuiteError, expand, load_suite  # noqa: E402

TINY_RUNS = 6


def _env() -> dict[str, str]:
    """The subprocess environment: the repository importable whether or not installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        str(SCRIPT),
        "--suite",
        "tiny",
        "--out",
        str(out),
        "--report-to",
        str(out / "report.md"),
        *extra,
    ]


def _run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        _command(out, *extra), capture_output=True, text=True, env=_env(), timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _records(out: Path) -> dict[str, dict]:
    """Every record under ``out/records``, by relative path (each must be valid JSON)."""
    return {
        str(p.relative_to(out)): json.loads(p.read_text())
        for p in sorted((out / "records").rglob("*.json"))
    }


def _snapshot(out: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(out)): (p.stat().st_mtime_ns, p.read_bytes())
        for p in (out / "records").rglob("*.json")
    }


def _results(record: dict) -> dict:
    """What must not depend on where a run was computed (not timings or hosts)."""
    return {k: record[k] for k in ("config", "metrics", "expert_metrics", "episodes")}


def _assert_same_results(ours: dict[str, dict], theirs: dict[str, dict]) -> None:
    assert sorted(ours) == sorted(theirs)
    for path in ours:
        a, b = _results(ours[path]), _results(theirs[path])
        differ = [key for key in a if a[key] != b[key]]
        assert not differ, f"{path}: {differ} differ, e.g. {a[differ[0]]} vs {b[differ[0]]}"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny suite with one worker, SIGKILLed after its first record, then resumed.

    Checks on the way: the kill leaves only complete records; the rerun keeps them
    untouched, computes exactly the missing runs, and completes the suite.
    """
    out = tmp_path_factory.mktemp("workers1")
    process = subprocess.Popen(
        _command(out, "--workers", "1"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    try:
        while not list((out / "records").rglob("*.json")):
            assert process.poll() is None, "the leaderboard ended before writing a record"
            assert time.monotonic() < deadline, "no record after 240 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    before = _snapshot(out)
    killed = _records(out)  # all valid JSON
    assert 1 <= len(killed) < TINY_RUNS, f"killed too late: {len(killed)} records"

    result = _run(out, "--workers", "1")
    assert f"{len(killed)} already recorded in {out}, {TINY_RUNS - len(killed)} to run" in (
        result.stdout
    )
    after = _snapshot(out)
    assert len(after) == TINY_RUNS
    for path, (mtime, content) in before.items():
        assert after[path] == (mtime, content), f"{path} was rewritten"
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    for record in _records(out).values():
        assert record["metrics"]["success"]["count"] == 2  # the tiny suite's 2 episodes
        assert len(record["episodes"]) == 2
        assert record["provenance"]["backend"] == "local"
    return out


def test_sigkill_and_resume_completes_without_recomputing(baseline: Path) -> None:
    records = _records(baseline)
    assert len(records) == TINY_RUNS
    # a third invocation has nothing to do
    result = _run(baseline, "--workers", "1")
    assert f"{TINY_RUNS} already recorded" in result.stdout
    assert "0 to run" in result.stdout


def test_workers_2_gives_the_same_records(baseline: Path, tmp_path: Path) -> None:
    """... also with TensorBoard logs on: one run per job, training and evaluation scalars."""
    _run(tmp_path / "out", "--workers", "2", "--tensorboard", str(tmp_path / "tb"))
    records = _records(tmp_path / "out")
    _assert_same_results(_records(baseline), records)
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    # one folder per job, named like its first run (env/policy/settings_hash)
    runs = sorted({event.parent for event in (tmp_path / "tb").rglob("events.out.tfevents.*")})
    assert runs and len(runs) <= len(records)  # one TensorBoard run per job
    tags = set()
    for run in runs:
        acc = accumulator.EventAccumulator(str(run))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    assert any(tag.endswith("/loss") for tag in tags)
    assert any(tag.startswith("eval/") and tag.endswith("/success") for tag in tags)


def test_ray_backend_gives_the_same_records(baseline: Path, tmp_path: Path) -> None:
    import ray  # noqa: F401  (a test dependency: the check must run, not skip)

    _run(tmp_path, "--backend", "ray")
    theirs = _records(tmp_path)
    _assert_same_results(_records(baseline), theirs)
    assert {record["provenance"]["backend"] for record in theirs.values()} == {"ray"}


def test_report_is_written_from_the_records(baseline: Path) -> None:
    report = (baseline / "report.md").read_text()
    assert "## hint_envs/PlanarQuadrotor-v0" in report
    for policy in ("hint", "ddpm_train_noise", "ddpm_no_gains"):
        assert f"| `{policy}` | 0.1 | 1 |" in report
    assert f"Runs: {TINY_RUNS} of {TINY_RUNS} finished" in report
    for figure in ("fig5", "fig6"):
        image = baseline / "img" / f"report_{figure}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"img/report_{figure}.png" in report


# ----------------------------------------------------------------------------- validation
GOOD_ENV = """
[[env]]
id = "hint_envs/PlanarQuadrotor-v0"
policies = ["hint"]
sigmas = [0.1]
num_demos = [1]
seeds = [0]
"""


def _suite(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD_ENV.replace("PlanarQuadrotor-v0", "Nope-v0"), r"unknown env id 'hint_envs/Nope-v0'"),
        (GOOD_ENV.replace('["hint"]', '["hint", "ppo"]'), r"unknown policy 'ppo'"),
        ('colour = "red"\n' + GOOD_ENV, r"unknown key 'colour'"),
        (
            GOOD_ENV + "horizon = 8\n",
            r"env\[0\] \(hint_envs/PlanarQuadrotor-v0\): unknown key 'horizon'",
        ),
        (GOOD_ENV + "[env.policy]\nwidth = 8\n", r"\[policy\]: unknown key 'width'"),
        (GOOD_ENV + "[env.policy]\nsigma = 0.2\n", r"\[policy\]: unknown key 'sigma'"),
        (GOOD_ENV + "[env.policy]\ndenoiser = 'cnn'\n", r"\[policy\]: unknown denoiser 'cnn'"),
        (GOOD_ENV + "[env.train]\nsteps = 0\n", r"\[train\]: steps must be a positive integer"),
        (GOOD_ENV + "[env.train]\nnum_threads = 4\n", r"\[train\]: unknown key 'num_threads'"),
        (GOOD_ENV + "[env.eval]\nepisodes = '20'\n", r"\[eval\]: episodes must be an integer"),
        (GOOD_ENV.replace("sigmas = [0.1]", "sigmas = 0.1"), r"sigmas must be a non-empty list"),
        (GOOD_ENV.replace("sigmas = [0.1]", "sigmas = [-0.1]"), r"sigmas must be numbers >= 0"),
        (GOOD_ENV.replace("seeds = [0]", "seeds = [0.5]"), r"seeds entry must be an integer"),
        (GOOD_ENV.replace("num_demos = [1]", "num_demos = [0]"), r"num_demos entry must be >= 1"),
        (GOOD_ENV.replace("seeds = [0]", "seeds = [0, 0]"), r"seeds lists a value twice"),
        (GOOD_ENV.replace("seeds = [0]", "seeds = [500]"), r"overlapping the evaluation seeds"),
        (GOOD_ENV.replace("seeds = [0]", ""), r"missing key 'seeds'"),
        (GOOD_ENV + 'metric = "coverage"\n', r"unknown metric 'coverage'"),
        (GOOD_ENV + 'noise_laws = ["laplace"]\n', r"unknown noise law 'laplace'"),
        (GOOD_ENV + "noise_laws = []\n", r"noise_laws must be a non-empty list"),
        (GOOD_ENV + "[env.eval]\nsample_seeds = 0\n", r"sample_seeds must be an integer >= 1"),
        (GOOD_ENV + "[env.eval]\ncheckpoint_every = -1\n", r"checkpoint_every must be"),
        (GOOD_ENV + GOOD_ENV, r"more than one \[\[env\]\] block"),
        ('name = "x"\n', r"has no \[\[env\]\] blocks"),
        ("findings = 3\n" + GOOD_ENV, r"findings must be"),
        ("name = [\n", r"is not valid TOML"),
    ],
)
def test_bad_suites_are_rejected_naming_the_entry(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(_suite(tmp_path, text))


def test_every_policy_is_available_with_the_test_extra() -> None:
    assert {name: policy_available(name) for name in POLICIES} == dict.fromkeys(POLICIES)


def test_unavailable_policy_is_rejected_with_the_reason(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    from leaderboard_lib import registry

    missing = replace(registry.TRAINERS["mlp_bc"], requires="policies.no_such_module:Policy")
    monkeypatch.setitem(registry.TRAINERS, "mlp_bc", missing)
    assert "this version has no policies.no_such_module" in policy_available("mlp_bc")
    with pytest.raises(SuiteError, match="policy 'mlp_bc' is not available"):
        load_suite(_suite(tmp_path, GOOD_ENV.replace('"hint"', '"mlp_bc"')))


def test_bad_suite_stops_the_script_before_any_run(tmp_path: Path) -> None:
    suite = _suite(tmp_path, GOOD_ENV.replace('["hint"]', '["hint", "ppo"]'))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--suite", str(suite), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert result.returncode != 0
    assert "unknown policy 'ppo'" in result.stderr
    assert not (tmp_path / "out").exists()


def _missing_simulator() -> gym.Env:
    raise gym.error.DependencyNotInstalled("needs the fake simulator: pip install -e '.[fake]'")


def test_env_without_simulator_is_rejected_unless_left_out(tmp_path: Path) -> None:
    env_id = "hint_envs/FakeSimulator-v0"
    gym.register(env_id, entry_point=_missing_simulator)
    try:
        text = GOOD_ENV + GOOD_ENV.replace("PlanarQuadrotor-v0", "FakeSimulator-v0")
        path = _suite(tmp_path, text)
        message = r"env\[1\] \(hint_envs/FakeSimulator-v0\).*\.\[fake\]"
        with pytest.raises(SuiteError, match=message):
            load_suite(path)
        suite = load_suite(path, only=["PlanarQuadrotor-v0"])
        assert [block.env_id for block in suite.envs] == ["hint_envs/PlanarQuadrotor-v0"]
        with pytest.raises(SuiteError, match=r"--only \['Pendulum'\] matches no env"):
            load_suite(path, only=["Pendulum"])
    finally:
        del gym.registry[env_id]


# ----------------------------------------------------------------------------- expansion
def test_runs_sharing_a_trained_model_share_a_job(tmp_path: Path) -> None:
    policies = '["hint", "ddpm_train_noise", "ddpm_no_gains", "ddpm_no_noise"]'
    text = GOOD_ENV.replace('["hint"]', policies)
    text = text.replace("sigmas = [0.1]", "sigmas = [0.0, 0.1]")
    jobs = expand(load_suite(_suite(tmp_path, text)))
    runs = [run for job in jobs for run in job.runs]
    # ddpm_no_noise ignores sigma: once; the others once per sigma
    assert len(runs) == 3 * 2 + 1
    assert len({run.record_path for run in runs}) == len(runs)
    groups = sorted(sorted((r.policy, r.sigma) for r in job.runs) for job in jobs)
    assert groups == [
        [("ddpm_no_gains", 0.0)],
        [("ddpm_no_gains", 0.1)],
        [("ddpm_no_noise", 0.0), ("ddpm_train_noise", 0.0), ("hint", 0.0)],
        [("ddpm_train_noise", 0.1), ("hint", 0.1)],
    ]
    for job in jobs:
        assert len({(r.train_seed, r.sample_seed, r.demo_first_seed) for r in job.runs}) == 1
    by_policy = {(r.policy, r.sigma): r for r in runs}
    assert by_policy[("ddpm_train_noise", 0.1)].test_sigma == 0.0
    assert by_policy[("hint", 0.1)].test_sigma == 0.1
    assert by_policy[("ddpm_no_gains", 0.1)].gains is False


def test_noise_laws_train_one_model_per_law_and_sigma_zero_once(tmp_path: Path) -> None:
    policies = (
        '["hint", "ddpm_train_noise", "ddpm_train_noise_shifted", "ddpm_train_noise_debiased"]'
    )
    text = GOOD_ENV.replace('["hint"]', policies).replace("sigmas = [0.1]", "sigmas = [0.0, 0.1]")
    text += 'noise_laws = ["gaussian", "uniform", "uniform_centered"]\n'
    jobs = expand(load_suite(_suite(tmp_path, text)))
    runs = [run for job in jobs for run in job.runs]
    assert len({run.record_path for run in runs}) == len(runs)
    laws = sorted({(job.spec.noise_law, job.spec.train_sigma) for job in jobs})
    # sigma 0 has no noise and so no law: one model; then one model per law
    assert laws == [
        ("gaussian", 0.0),
        ("gaussian", 0.1),
        ("uniform", 0.1),
        ("uniform_centered", 0.1),
    ]
    for job in jobs:
        assert {run.model["noise_law"] for run in job.runs} == {job.spec.noise_law}
    names = {run.name for run in runs}
    assert "PlanarQuadrotor-v0/hint/sigma0.1_uniform_n1_seed0" in names
    assert "PlanarQuadrotor-v0/hint/sigma0.1_n1_seed0" in names  # gaussian: the old names
    shifted = {(r.policy, r.noise_law): r.test_shift for r in runs if r.sigma == 0.1}
    # each shifted arm runs under its own law only
    assert shifted[("ddpm_train_noise_shifted", "gaussian")] == pytest.approx(-0.05)
    assert shifted[("ddpm_train_noise_debiased", "uniform")] == pytest.approx(0.05)
    assert ("ddpm_train_noise_shifted", "uniform") not in shifted
    assert ("ddpm_train_noise_debiased", "uniform_centered") not in shifted


def test_sampler_seeds_and_checkpoints_are_recorded(tmp_path: Path) -> None:
    """``sample_seeds`` pools every seed's episodes and keeps each seed's metrics;
    ``checkpoint_every`` records every arm at every checkpoint (the paper's protocol)."""
    from leaderboard_lib.runs import prepare_demos, run_job, sample_seeds

    text = GOOD_ENV.replace('["hint"]', '["hint", "ddpm_train_noise"]') + (
        'noise_laws = ["uniform"]\n[env.policy]\nwidths = [16]\ndiffusion_steps = 5\n'
        "[env.train]\nsteps = 6\nbatch_size = 8\nwarmup_steps = 1\n"
        "[env.eval]\nepisodes = 2\nnum_envs = 2\nexpert = false\nsample_seeds = 2\n"
        "checkpoint_every = 3\n"
    )
    (job,) = expand(load_suite(_suite(tmp_path, text)))
    demos = prepare_demos([job.spec.demos], tmp_path / "out", progress=False)
    hint, train_only = run_job(job, demos[job.spec.demos])
    assert hint["config"]["noise_law"] == "uniform" == hint["evaluation"]["noise_law"]
    seeds = sample_seeds(job.spec, load_suite(_suite(tmp_path, text)).envs[0].eval)
    assert len(set(seeds)) == 2 and seeds[0] == job.spec.sample_seed
    for record in (hint, train_only):
        assert [e["sample_seed"] for e in record["episodes"]] == [s for s in seeds for _ in "ab"]
        assert [b["sample_seed"] for b in record["by_sample_seed"]] == seeds
        pooled = [e["max_reward"] for e in record["episodes"]]
        assert record["metrics"]["max_reward"]["mean"] == pytest.approx(sum(pooled) / 4)
        assert [c["step"] for c in record["checkpoints"]] == [3]
    assert hint["evaluation"]["sigma"] == 0.1 and train_only["evaluation"]["sigma"] == 0.0
    assert hint["episodes"] != train_only["episodes"]


def test_changing_a_setting_changes_the_record_file(tmp_path: Path) -> None:
    first = expand(load_suite(_suite(tmp_path, GOOD_ENV)))[0].spec
    changed = _suite(tmp_path, GOOD_ENV + "[env.train]\nsteps = 7\n")
    second = expand(load_suite(changed))[0].spec
    assert first.name == second.name
    assert first.record_path != second.record_path


# ----------------------------------------------------------------------------- records
def test_records_are_written_atomically_and_bad_ones_ignored(tmp_path: Path) -> None:
    path = tmp_path / "records" / "a.json"
    write_record(path, {"config": {}, "metrics": {"x": float("nan")}})
    assert json.loads(path.read_text()) == {"config": {}, "metrics": {"x": None}}
    assert [p.name for p in path.parent.iterdir()] == ["a.json"]
    path.write_text('{"config": {}, "metr')  # what a non-atomic writer could leave
    assert read_record(path) is None
    assert read_record(tmp_path / "missing.json") is None


def test_a_dataset_block_trains_on_the_reference_file_without_collecting(tmp_path: Path) -> None:
    from hint_envs.data import write_demonstrations
    from hint_envs.experts.collect import collect_demonstrations

    reference = tmp_path / "reference.hdf5"
    demos = collect_demonstrations("hint_envs/PlanarQuadrotor-v0", 2, seed=7, progress=False)
    write_demonstrations(reference, demos, "hint_envs/PlanarQuadrotor-v0")
    text = GOOD_ENV + f'dataset = "{reference}"\n'
    suite = load_suite(_suite(tmp_path, text.replace("seeds = [0]", "seeds = [0, 1]")))
    runs = [run for job in expand(suite) for run in job.runs]
    assert {run.dataset for run in runs} == {str(reference)}
    assert {run.demo_first_seed for run in runs} == {0}
    assert runs[0].run_hash != expand(load_suite(_suite(tmp_path, GOOD_ENV)))[0].spec.run_hash
    out = tmp_path / "out"
    files = prepare_demos([run.demos for run in runs], out, progress=False)
    assert set(files.values()) == {reference}
    assert not (out / "demos").exists()  # nothing was collected
    with pytest.raises(SuiteError, match="holds 2 demonstrations but num_demos asks for 3"):
        load_suite(_suite(tmp_path, text.replace("num_demos = [1]", "num_demos = [3]")))
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite(_suite(tmp_path, GOOD_ENV + 'dataset = "no/such.hdf5"\n'))


SUITE_NAMES = sorted(
    p.stem for p in (Path(__file__).resolve().parents[2] / "benchmarks" / "suites").glob("*.toml")
)


@pytest.mark.parametrize("name", SUITE_NAMES)
def test_the_named_suites_load_and_expand(name: str) -> None:
    pytest.importorskip("gym_pusht")  # quick and paper have PushT blocks
    suite = load_suite(name)
    runs = [run for job in expand(suite) for run in job.runs]
    assert runs and len({run.record_path for run in runs}) == len(runs)
    for block in suite.envs:
        if block.env_id == "hint_envs/PushT-v0":
            assert block.dataset in PUSHT_REFERENCE_FILES
            assert block.metric == "max_reward" and block.eval.expert is False
            assert block.eval.seeds == list(range(100000, 100050))
        if block.dataset is not None and "robomimic" in block.dataset:
            assert block.dataset.endswith("_rot6d_200.hdf5")  # the committed reference files
            assert block.metric == "success" and block.eval.expert is False
            assert block.eval.seeds == list(range(100000, 100050))


#: The committed PushT reference files: path -> (demonstrations, observation size).
PUSHT_REFERENCE_FILES = {
    "benchmarks/data/pusht_state_200.hdf5": (200, 5),
    "benchmarks/data/pusht_keypoints_1000.hdf5": (1000, 18),
}


@pytest.mark.parametrize("name", sorted(PUSHT_REFERENCE_FILES))
def test_the_pusht_reference_datasets_are_complete_and_successful(name: str) -> None:
    pytest.importorskip("gym_pusht")
    from hint_envs.data import ChunkDataset, read_demonstrations

    count, d_obs = PUSHT_REFERENCE_FILES[name]
    path = Path(__file__).resolve().parents[2] / name
    demo_file = read_demonstrations(path)
    assert demo_file.env_id == "hint_envs/PushT-v0" and len(demo_file) == count
    # the observation type is recorded, so training and evaluation make the same env
    assert demo_file.env_kwargs == ({} if d_obs == 5 else {"obs_type": "keypoints"})
    demos = demo_file.demos
    assert all(demo.success for demo in demos)
    assert all(demo.primitives is not None for demo in demos)
    modes = {demo.attrs["mode"].split("/")[0] for demo in demos}
    assert len(modes) >= 4  # several faces of the T are pushed first
    windows = ChunkDataset(path, 2, 16, gains=True, num_demos=50)
    assert windows.observations.shape[1:] == (2, d_obs)


def test_findings_open_the_report(baseline: Path, tmp_path: Path) -> None:
    """A suite's ``findings`` (written once its results are in) lead the report."""
    from leaderboard_lib.report import load_records, write_report

    text = (REPO / "benchmarks" / "suites" / "tiny.toml").read_text()
    suite = load_suite(_suite(tmp_path, 'findings = "Gains **help**."\n' + text))
    assert suite.findings == "Gains **help**."
    records = load_records(expand(suite), baseline)
    assert len(records) == TINY_RUNS
    report = tmp_path / "report.md"
    write_report(suite, records, TINY_RUNS, report, "python benchmarks/leaderboard.py")
    page = report.read_text()
    assert "## What it shows\n\nGains **help**." in page
    assert page.index("What it shows") < page.index("## hint_envs/PlanarQuadrotor-v0")
