"""benchmarks/recipe.py and benchmarks/train_throughput.py run end to end at a tiny size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("gym_pusht")

REPO = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO / "benchmarks",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_recipe_records_a_curve_per_variant_and_resumes(tmp_path: Path):
    stem = tmp_path / "recipe"
    args = ["--variants", "base", "--steps", "4", "--every", "2", "--episodes", "2"]
    args += ["--threads", "1", "--out", str(stem), "--work", str(tmp_path / "work")]
    _run("recipe.py", *args)
    (record,) = [json.loads(line) for line in stem.with_suffix(".jsonl").read_text().splitlines()]
    assert record["variant"] == "base" and record["dataset"].endswith("keypoints_1000.hdf5")
    assert [p["step"] for p in record["curve"]] == [2, 4]
    assert record["eval_seeds"] == [200000, 200001]  # validation seeds, not the test seeds
    assert all(0.0 <= p["max_reward"] <= 1.0 for p in record["curve"])
    assert "| (defaults) | the library defaults (`base`) |" in stem.with_suffix(".md").read_text()
    assert stem.with_suffix(".png").stat().st_size > 0
    assert "done already, skipped" in _run("recipe.py", *args)


def test_recipe_refuses_an_unknown_variant(tmp_path: Path):
    env = dict(os.environ)
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "recipe.py"), "--variants", "nope"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "unknown variants ['nope']" in result.stderr


def test_train_throughput_compares_the_trainer_with_a_plain_loop():
    out = _run("train_throughput.py", "--threads", "1", "--steps", "3", "--rounds", "1")
    assert "1 thread(s): policies.training.train" in out and "plain loop" in out
