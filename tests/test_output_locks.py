"""One writer per output: a second hint-train, hint-collect or leaderboard job on an output
another live process is writing stops at once (or, in the leaderboard, leaves that job to
it); a lock left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hint_envs._io import OutputLockedError, lock_file, output_lock, try_lock

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def live_pid():
    """The pid of a process that stays alive for the test."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process.pid
    process.kill()
    process.wait()


def _hold(target: Path, pid: int, what: str = "another run") -> Path:
    path = lock_file(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"pid": pid, "host": socket.gethostname(), "since": time.time(), "what": what}
    path.write_text(json.dumps(holder))
    return path


def test_a_live_lock_refuses_and_a_dead_one_is_taken_over(tmp_path, live_pid, caplog):
    target = tmp_path / "out"
    _hold(target, live_pid, "hint-train")
    with pytest.raises(
        OutputLockedError, match=rf"being written by hint-train \(process {live_pid}"
    ):
        with output_lock(target, "test"):
            pass
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    _hold(target, int(dead.stdout))
    with output_lock(target, "test") as path:
        assert json.loads(path.read_text())["pid"] == os.getpid()
    assert "no longer runs" in caplog.text
    assert not lock_file(target).exists()  # released
    assert try_lock(target) is not None and try_lock(target) is None  # held by this process


def test_a_second_hint_train_on_one_out_is_refused_at_once(tmp_path, live_pid, capsys, monkeypatch):
    from hint_envs.data import chunks
    from policies import cli

    def no_read(*args, **kwargs):
        raise AssertionError("the refused run read the data")

    monkeypatch.setattr(chunks.ChunkDataset, "__init__", no_read)
    out = tmp_path / "run"
    _hold(out, live_pid, "hint-train")
    data = REPO / "benchmarks" / "data" / "pusht_state_200.hdf5"
    assert cli.main([str(data), "--out", str(out), "--steps", "5", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hint-train: error: {out} is being written by hint-train")
    assert err.count("\n") == 1 and not out.exists()


def test_a_second_hint_collect_on_one_file_is_refused_before_collecting(
    tmp_path, live_pid, capsys, monkeypatch
):
    from hint_envs.experts import cli

    out = tmp_path / "demos.hdf5"
    _hold(out, live_pid, "hint-collect")
    argv = ["hint_envs/PlanarQuadrotor-v0", "--episodes", "5", "--out", str(out)]

    def no_collection(*args, **kwargs):
        raise AssertionError("the refused run collected")

    monkeypatch.setattr(cli, "collect_demonstrations", no_collection)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "is being written by hint-collect" in err and err.count("\n") == 1
    assert not out.exists()


def test_the_leaderboard_leaves_a_locked_job_to_its_holder(tmp_path, live_pid):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from leaderboard_lib.runs import record_file
    from leaderboard_lib.suite import expand, load_suite

    out = tmp_path / "lb"
    jobs = expand(load_suite("tiny"))
    held = jobs[0]
    _hold(record_file(out, held.runs[0]), live_pid, "leaderboard tiny")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "benchmarks" / "leaderboard.py"), "--suite", "tiny"]
    command += ["--out", str(out), "--report-to", str(out / "report.md"), "--workers", "1"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "being computed by another leaderboard; skipped" in result.stdout + result.stderr
    assert "1 jobs were computed by another leaderboard" in result.stdout
    recorded = {p.name for p in (out / "records").rglob("*.json")}
    assert not any(record_file(out, run).name in recorded for run in held.runs)
    others = [run for job in jobs[1:] for run in job.runs]
    assert all(record_file(out, run).name in recorded for run in others)
    assert [p.name for p in (out / "records").rglob("*.lock")] == [
        lock_file(record_file(out, held.runs[0])).name
    ]
