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
