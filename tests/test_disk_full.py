"""A full disk is one line and leaves nothing behind: on a real 300 kB tmpfs where this
machine lets the tests mount one (as root), else with the free space reported as
nearly none (the same checks run)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from hint_envs.data.hdf5 import write_demonstrations
from hint_envs.experts import cli
from hint_envs.experts.collect import collect_one

QUAD = "hint_envs/PlanarQuadrotor-v0"


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A folder on a 300 kB file system."""
    folder = tmp_path / f"small-{uuid.uuid4().hex[:6]}"
    folder.mkdir()
    mounted = (
        shutil.which("mount") is not None
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        == 0
    )
    if not mounted:  # no mount allowed: report the free space a full disk would
        real = shutil.disk_usage

        def small(path):
            usage = real(path)
            inside = str(Path(path).absolute()).startswith(str(folder))
            return usage._replace(free=300_000) if inside else usage

        monkeypatch.setattr(shutil, "disk_usage", small)
    yield folder
    if mounted:
        subprocess.run(["umount", str(folder)], check=True)


def test_hint_collect_on_a_full_disk_is_one_line_and_leaves_nothing(small_disk, capsys):
    out = small_disk / "demos.hdf5"
    # too many episodes for the disk: refused before collecting
    with pytest.raises(SystemExit) as stop:  # argparse's error: usage, then one line
        cli.main([QUAD, "--episodes", "30", "--out", str(out), "--quiet"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "would write about" in err and "MiB free" in err
    # fits the estimate, not the disk: refused at the write, nothing left behind
    with pytest.raises(SystemExit) as stop:
        cli.main([QUAD, "--episodes", "9", "--out", str(out), "--quiet"])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hint-collect: error: cannot write {out}: [Errno 28]")
    assert err.count("\n") == 1 and "nothing written" in err
    assert list(small_disk.iterdir()) == []


def test_write_demonstrations_refuses_before_writing_when_the_disk_is_full(small_disk):
    demos = [collect_one(QUAD, seed) for seed in range(10)]
    with pytest.raises(OSError, match=r"MiB to write but .* MiB free") as error:
        write_demonstrations(small_disk / "demos.hdf5", demos, QUAD)
    assert error.value.errno == 28
    assert list(small_disk.iterdir()) == []


def test_the_leaderboard_on_a_full_disk_is_one_line_and_leaves_nothing(
    small_disk, monkeypatch, capsys
):
    import sys

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(repo / "benchmarks"))
    import leaderboard

    # leave about 20 kB: less than the tiny suite's demonstrations need
    free = shutil.disk_usage(small_disk).free
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * max(free - 20_000, 0))
    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: real(path)._replace(free=min(real(path).free, 20_000))
    )
    out = small_disk / "lb"
    argv = ["leaderboard.py", "--suite", "tiny", "--out", str(out), "--workers", "1"]
    monkeypatch.setattr(sys, "argv", [*argv, "--report-to", str(small_disk / "r.md")])
    with pytest.raises(SystemExit) as stop:
        leaderboard.main()
    message = str(stop.value.code)
    assert message.startswith(f"error: cannot write demonstrations under {out}: [Errno 28]")
    leftovers = [p for p in small_disk.rglob("*") if p.is_file() and p != filler]
    assert leftovers == []


def test_hint_demo_on_a_full_disk_leaves_no_picture(small_disk, monkeypatch, capsys):
    from hint_envs.experts.cli import demo_main

    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * max(free - 20_000, 0))
    real = shutil.disk_usage
    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: real(path)._replace(free=min(real(path).free, 20_000))
    )
    out = small_disk / "demo.png"
    with pytest.raises(SystemExit) as stop:
        demo_main(["--episodes", "2", "--out", str(out)])
    assert stop.value.code == 1
    err = capsys.readouterr().err
    assert f"\nhint-demo: error: cannot write {out}: [Errno 28]" in err  # after the progress bar
    assert "Traceback" not in err
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_hint_minari_on_a_full_disk_is_one_line_and_leaves_no_dataset(
    small_disk, monkeypatch, capsys, tmp_path
):
    pytest.importorskip("minari")
    from hint_envs.data import cli as data_cli

    demos = [collect_one(QUAD, seed) for seed in range(20)]
    source = write_demonstrations(tmp_path / "demos.hdf5", demos, QUAD)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(small_disk / "minari"))
    with pytest.raises(SystemExit) as stop:
        data_cli.main([str(source), "hint/quadrotor-v0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hint-minari: error: the Minari dataset 'hint/quadrotor-v0' needs about")
    assert [p for p in small_disk.rglob("*") if p.is_file()] == []


def test_hint_train_on_a_disk_that_fills_up_is_one_line(small_disk, monkeypatch, capsys, tmp_path):
    from policies import cli as train_cli

    demos = [collect_one(QUAD, seed) for seed in range(2)]
    source = write_demonstrations(tmp_path / "demos.hdf5", demos, QUAD)
    out = small_disk / "run"
    argv = [str(source), "--out", str(out), "--steps", "4", "--widths", "512,512", "--no-progress"]
    assert train_cli.main([*argv, "--batch-size", "8", "--threads", "1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"hint-train: error: cannot write to {out}: [Errno 28]")
    assert err.count("\n") == 1
    assert not (out / "config.json").exists()
    assert not [p for p in small_disk.rglob("*") if p.is_file() and ".tmp" in p.name]
