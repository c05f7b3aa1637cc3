"""The README's main job for the foundation: hint-demo collects, synthesises and draws."""

from __future__ import annotations

import h5py

from hint_envs.experts.cli import demo_main as main


def test_demo_writes_picture_and_data(tmp_path, capsys):
    out = tmp_path / "demo.png"
    data = tmp_path / "demo.hdf5"
    assert main(["--episodes", "3", "--seed", "5", "--out", str(out), "--data", str(data)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with h5py.File(data, "r") as f:
        assert sorted(f["data"].keys()) == ["demo_0", "demo_1", "demo_2"]
        assert "primitives" in f["data/demo_0"]
    printed = capsys.readouterr().out
    # the synthesised gains pull a perturbed start back onto the demonstration
    line = next(line for line in printed.splitlines() if line.startswith("final position error"))
    open_loop = float(line.split("open loop ")[1].split(" m")[0])
    closed_loop = float(line.split("gains ")[1].split(" m")[0])
    assert closed_loop < 0.1 * open_loop


def test_demo_writes_into_the_working_folder_and_never_overwrites(tmp_path, monkeypatch, capsys):
    """The picture goes to the working folder by default (not into a docs/ tree that may
    not exist), and existing outputs are refused before any collection."""
    import pytest

    monkeypatch.chdir(tmp_path)
    (tmp_path / "quadrotor_demo.png").write_bytes(b"kept")
    (tmp_path / "kept.hdf5").write_bytes(b"kept")
    for argv in ([], ["--out", "new.png", "--data", "kept.hdf5"]):
        with pytest.raises(SystemExit) as stop:
            main(["--episodes", "1", *argv])
        assert stop.value.code == 2
        assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (tmp_path / "kept.hdf5").read_bytes() == b"kept"
    assert not (tmp_path / "new.png").exists()
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])
    assert "--out" in capsys.readouterr().err
    assert main(["--episodes", "1", "--overwrite"]) == 0
    assert (tmp_path / "quadrotor_demo.png").read_bytes()[:4] == b"\x89PNG"
