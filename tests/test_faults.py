"""Faults in the long jobs: SIGKILL and SIGINT (Ctrl-C) during ``hint-collect``,
``hint-train`` and ``benchmarks/leaderboard.py``, then a rerun.

Each job runs as a subprocess on a tiny workload; the test waits until it has written its
first checkpoint or record (polling the file system), signals it, and checks: no corrupt
file anywhere, one line and exit status 130 after SIGINT (no traceback), and a rerun
(``--resume`` for ``hint-train``) that completes with a valid result. Resumed training is
checked bit-identical to an uninterrupted run. (SIGKILL of the leaderboard after its first
record is also tested in tests/benchmarks/test_leaderboard.py.)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from hint_envs._io import atomic_dir, atomic_path, atomic_write_json, remove_temporaries
from hint_envs.data import ChunkDataset, read_demonstrations
from policies import load_policy
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.training import CHECKPOINTS, CheckpointMismatchError, latest_checkpoints, train

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "hint_envs/PlanarQuadrotor-v0"
TIMEOUT = 120  # seconds to wait for a checkpoint / record / exit
# a tiny policy: ~100 steps a second on one thread
POLICY = {"denoiser": "mlp", "widths": (32, 32), "diffusion_steps": 10}
STEPS, EVERY = 300, 5


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


def _default_sigint() -> None:
    """Ctrl-C acts in the job even when the tests run in the background (a shell starts
    background jobs with SIGINT ignored, and that is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Job:
    """A subprocess with its stdout and stderr in files (no pipe to fill up)."""

    def __init__(self, command: list[str], logs: Path):
        logs.mkdir(parents=True, exist_ok=True)
        self.stdout, self.stderr = logs / "stdout.txt", logs / "stderr.txt"
        with open(self.stdout, "w") as out, open(self.stderr, "w") as err:
            self.process = subprocess.Popen(
                command, stdout=out, stderr=err, env=_env(), preexec_fn=_default_sigint
            )

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not condition():
            assert self.process.poll() is None, f"ended before {what}: {self.err()[-2000:]}"
            assert time.monotonic() < deadline, f"no {what} after {TIMEOUT} s"
            time.sleep(0.02)

    def stop(self, signum: int) -> int:
        self.process.send_signal(signum)
        try:
            return self.process.wait(TIMEOUT)
        finally:
            self.process.kill()

    def err(self) -> str:
        return self.stderr.read_text().replace("\r", "\n")

    def last_line(self) -> str:
        return self.err().rstrip("\n").splitlines()[-1]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _assert_interrupted(job: Job, code: int, line: str) -> None:
    assert code == 130, job.err()
    assert "Traceback" not in job.err()
    assert job.last_line() == line


# ----------------------------------------------------------------------------- atomic writes
WRITER = """
import sys, time
from pathlib import Path
from hint_envs._io import atomic_dir, atomic_path
target = Path(sys.argv[1])
with atomic_path(target) as tmp, open(tmp, "xb") as f:
    f.write(b"half a new ")
    f.flush()
    with atomic_dir(target.with_suffix(".d")) as folder:
        (folder / "a").write_text("new")
        print("writing", flush=True)
        time.sleep(60)
"""


def test_a_killed_writer_leaves_the_old_file_and_hidden_temporaries(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    (tmp_path / "record.d").mkdir()
    (tmp_path / "record.d" / "a").write_text("old")
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), str(target)],
        stdout=subprocess.PIPE,
        env=_env(),
        text=True,
    )
    try:
        assert process.stdout.readline() == "writing\n"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    assert target.read_text() == "old"
    assert (tmp_path / "record.d" / "a").read_text() == "old"
    left = sorted(p.name for p in tmp_path.glob(".*.tmp"))
    assert len(left) == 2 and all(n.startswith((".record.json.", ".record.d.")) for n in left)
    assert len(remove_temporaries(tmp_path, name="record.json")) == 1
    assert len(remove_temporaries(tmp_path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.d", "record.json"]


def test_atomic_writes_replace_or_leave_untouched(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"a": 1}
    folder = tmp_path / "ckpt"
    for content in ("first", "second"):
        with atomic_dir(folder) as tmp:
            (tmp / content).write_text(content)
    assert [p.name for p in folder.iterdir()] == ["second"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "sub"]
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]


# ----------------------------------------------------------------------------- hint-collect
def _collect(out: Path, episodes: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hint_envs.experts.cli", ENV_ID, "--episodes", str(episodes)] + [
        "--out",
        str(out),
        *extra,
    ]


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hint-collect SIGKILLed and SIGINTed mid-way (no file either time), then rerun.

    The rerun also removes the hidden temporary file a kill during the write leaves.
    """
    folder, logs = tmp_path_factory.mktemp("collect"), tmp_path_factory.mktemp("logs")
    out = folder / "demos.hdf5"
    for signum in (signal.SIGKILL, signal.SIGINT):
        job = Job(_collect(out, 500), logs / signum.name)
        # mid-way: after the first demonstration (a Ctrl-C as the first episode starts can
        # end the process by SIGINT after the message, status -2: not understood yet)
        job.wait_for(lambda job=job: "| 1/500 " in job.err(), "first demonstration")
        code = job.stop(signum)
        if signum == signal.SIGINT:
            line = f"hint-collect: interrupted; nothing written to {out}; rerun to collect"
            _assert_interrupted(job, code, line)
            assert not list(folder.iterdir()), "hint-collect left a file"
        else:  # a SIGKILLed run cannot remove its lock: the next run takes it over
            assert [p.name for p in folder.iterdir()] == ["demos.hdf5.lock"]
    stale = folder / ".demos.hdf5.0123456789abcdef0123456789abcdef.tmp"
    stale.write_bytes(b"\x89HDF\r\n half a file")  # what a kill during the write leaves
    _run(_collect(out, 3, "--quiet"))
    assert not stale.exists()
    assert len(read_demonstrations(out).demos) == 3
    return out


def test_hint_collect_interrupted_leaves_no_file_and_reruns(demos: Path) -> None:
    assert [p.name for p in demos.parent.glob("*.hdf5")] == ["demos.hdf5"]


# ----------------------------------------------------------------------------- hint-train
def _train_command(demos: Path, out: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "policies.cli", str(demos), "--out", str(out)]
    command += ["--denoiser", "mlp", "--widths", "32,32", "--diffusion-steps", "10"]
    command += ["--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--batch-size", "16"]
    return command + ["--threads", "1", "--seed", "3", "--no-progress", *extra]


def _configs() -> tuple[DDPMPolicyConfig, TrainConfig]:
    config = DDPMPolicyConfig(**POLICY)
    train_config = TrainConfig(
        steps=STEPS, batch_size=16, checkpoint_every=EVERY, num_threads=1, device="cpu"
    )
    return config, train_config


@pytest.fixture(scope="module")
def reference(demos: Path) -> dict:
    """An uninterrupted training run, in this process, with hint-train's settings."""
    config, train_config = _configs()
    dataset = ChunkDataset(demos, obs_horizon=2, horizon=16, gains=True)
    with torch.random.fork_rng(devices=[]):
        policy = train(dataset, config, train_config, seed=3, progress=False)
    return {k: v.clone() for k, v in policy.state_dict().items()}


def _assert_same_weights(policy_dir: Path, reference: dict) -> None:
    weights = load_policy(policy_dir).state_dict()
    assert sorted(weights) == sorted(reference)
    differ = [k for k in weights if not torch.equal(weights[k], reference[k])]
    assert not differ, f"resumed weights differ from an uninterrupted run's: {differ}"


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_hint_train_interrupted_resumes_to_the_uninterrupted_result(
    demos: Path, reference: dict, tmp_path: Path, signum: int
) -> None:
    out = tmp_path / "run"
    job = Job(_train_command(demos, out), tmp_path / "logs")
    job.wait_for(lambda: bool(latest_checkpoints(out / CHECKPOINTS)), "checkpoint")
    code = job.stop(signum)
    kept = latest_checkpoints(out / CHECKPOINTS)
    if signum == signal.SIGINT:
        line = f"hint-train: interrupted; checkpoint {kept[0]} kept; rerun with --resume to "
        _assert_interrupted(job, code, line + "continue from it")
    assert not (out / "config.json").exists(), "killed too late: training had finished"
    for checkpoint in kept:  # every checkpoint folder is complete
        load_policy(checkpoint)
        assert json.loads((checkpoint / "training_state.json").read_text())["loop"]["step"] > 0
    step = int(kept[0].name.removeprefix("step_"))

    result = _run(_train_command(demos, out, "--resume"))
    assert f"resuming from {kept[0]}: step {step} of {STEPS}" in result.stderr
    _assert_same_weights(out, reference)
    record = json.loads((out / "training.json").read_text())
    assert record["resumed_from_step"] == step and record["history"][-1]["step"] == STEPS


# ----------------------------------------------------------------------------- resume rules
def _short_run(demos: Path, out: Path, **changes) -> dict:
    config, train_config = _configs()
    settings = {**train_config.to_dict(), "steps": 20, "checkpoint_every": 4, **changes}
    dataset = ChunkDataset(demos, obs_horizon=2, horizon=16, gains=True)
    with torch.random.fork_rng(devices=[]):
        policy = train(
            dataset,
            config,
            TrainConfig.from_dict(settings),
            out_dir=out,
            seed=3,
            progress=False,
            resume=True,
        )
    return policy.state_dict()


def test_resume_skips_a_broken_checkpoint_and_refuses_other_settings(
    demos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="policies.training"):
        full = _short_run(demos, out)  # resume=True without a checkpoint: from scratch
    assert f"no checkpoint in {out / CHECKPOINTS} yet; training from scratch" in caplog.text
    steps = [p.name for p in latest_checkpoints(out / CHECKPOINTS)]
    assert steps == ["step_0000016", "step_0000012", "step_0000008", "step_0000004"]
    shutil.rmtree(out / CHECKPOINTS / "step_0000016")
    weights = out / CHECKPOINTS / "step_0000012" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # as if written in place and killed
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="policies.training"):
        resumed = _short_run(demos, out, checkpoint_every=0)  # may change
    assert "skipping unreadable checkpoint" in caplog.text and "step_0000012" in caplog.text
    assert "step 8 of 20" in caplog.text
    assert all(torch.equal(full[k], resumed[k]) for k in full)
    with pytest.raises(CheckpointMismatchError, match=r"lr=0.001 \(now 0.002\)"):
        _short_run(demos, out, lr=2e-3)


def test_a_checkpoint_with_the_old_format_tag_still_resumes(
    demos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "run"
    full = _short_run(demos, out)
    for checkpoint in latest_checkpoints(out / CHECKPOINTS):
        state_file = checkpoint / "training_state.json"
        state = json.loads(state_file.read_text())
        assert state["format"] == "policies.TrainingState/1"
        state["format"] = "hint_envs.policies.TrainingState/1"  # as written before the rename
        state_file.write_text(json.dumps(state))
    shutil.rmtree(out / CHECKPOINTS / "step_0000016")
    with caplog.at_level(logging.INFO, logger="policies.training"):
        resumed = _short_run(demos, out)
    assert "step 12 of 20" in caplog.text
    assert all(torch.equal(full[k], resumed[k]) for k in full)


# ----------------------------------------------------------------------------- leaderboard
def _leaderboard(out: Path) -> list[str]:
    script = str(REPO / "benchmarks" / "leaderboard.py")
    return [sys.executable, script, "--suite", "tiny", "--out", str(out), "--workers", "1"] + [
        "--report-to",
        str(out / "report.md"),
    ]


def test_leaderboard_sigint_then_a_half_written_record_and_resume(tmp_path: Path) -> None:
    out = tmp_path / "lb"
    records = out / "records"
    job = Job(_leaderboard(out), tmp_path / "logs")
    job.wait_for(lambda: any(records.rglob("*.json")), "record")
    code = job.stop(signal.SIGINT)
    kept = sorted(records.rglob("*.json"))
    line = f"leaderboard: interrupted; {len(kept)} of 6 runs recorded in {out}; rerun the same "
    _assert_interrupted(job, code, line + "command to resume from there")
    for path in kept:
        assert "metrics" in json.loads(path.read_text())
    # a record cut short (as a non-atomic writer killed mid-write would leave) and a temporary
    broken = kept[0]
    broken.write_text(broken.read_text()[:50])
    (broken.parent / f".{broken.name}.0123456789abcdef0123456789abcdef.tmp").write_text("{")

    result = _run(_leaderboard(out))
    assert f"{len(kept) - 1} already recorded in {out}, {7 - len(kept)} to run" in result.stdout
    assert not list(out.rglob("*.tmp"))
    assert len(list(records.rglob("*.json"))) == 6
    for path in records.rglob("*.json"):
        assert json.loads(path.read_text())["metrics"]["success"]["count"] == 2
