"""benchmarks/sampling_latency.py runs end to end at a tiny size and prints its tables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "sampling_latency.py"


def _run(*args: str) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO / "benchmarks",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_latency_table_has_a_row_per_batch_and_sampler():
    out = _run(
        "--denoisers", "mlp", "--batches", "1", "3", "--repeats", "1", "--warmup", "0",
        "--threads", "1",
    )  # fmt: skip
    rows = [line for line in out.splitlines() if line.startswith("| hint_envs | mlp |")]
    assert len(rows) == 4  # DDPM-100 and DDIM-10 at batches 1 and 3
    assert {row.split("|")[4].strip() for row in rows} == {"DDPM-100", "DDIM-10"}
    for row in rows:
        seconds = float(row.split("|")[6])
        assert seconds > 0


def test_success_table_compares_samplers_for_both_prediction_types():
    out = _run(
        "--success", "--no-latency", "--demos", "1", "--train-steps", "20", "--episodes", "2",
        "--threads", "1",
    )  # fmt: skip
    rows = re.findall(
        r"^\| (epsilon|sample) \| (DDPM-100|DDIM-10|DDPM-10) \| ([0-9.]+) ", out, re.M
    )
    assert [(p, s) for p, s, _ in rows] == [
        (p, s) for p in ("epsilon", "sample") for s in ("DDPM-100", "DDIM-10", "DDPM-10")
    ]
    assert all(0.0 <= float(success) <= 1.0 for *_, success in rows)


def test_batch_sizes_are_timed_in_interleaved_rounds():
    """The batch-50 / batch-1 ratio compares calls made under the same machine load."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    from sampling_latency import Args, median_seconds

    order = []
    medians = median_seconds(
        {1: lambda: order.append(1), 50: lambda: order.append(50)}, Args(repeats=3, warmup=1)
    )
    assert order == [1, 50] * 4
    assert set(medians) == {1, 50} and all(m >= 0 for m in medians.values())
