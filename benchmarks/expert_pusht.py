"""Benchmark the PushT offline expert (sampling-based MPC, :mod:`hint_envs.experts.pusht`).

Figures (printed, and written as JSON to ``--out`` with one record per episode):

- success rate over seeds ``start .. start + seeds - 1`` (coverage > 0.95 within the 300-step
  limit, before any filtering; target >= 80 %);
- seconds per episode (mean / median, wall clock, BLAS pinned to one thread; target mean
  <= 20 s on one core), CPU seconds per episode, mean steps;
- the distribution of modes: the face first pushed and the block's turn direction.

Run: ``python benchmarks/expert_pusht.py --seeds 10`` (``--help`` for the options);
planner settings pass as ``--setting name=value`` (repeatable).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core: pin BLAS before numpy loads
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from bench_cli import parse_setting  # noqa: E402

from hint_envs._io import atomic_write_bytes  # noqa: E402

_EXPERT = None


def _episode(args: tuple[int, dict[str, Any]]) -> dict[str, Any]:
    """One episode in this process (the expert is built once per process)."""
    global _EXPERT
    seed, settings = args
    if _EXPERT is None:
        from hint_envs.experts.pusht import PushTExpert

        _EXPERT = PushTExpert(**settings)
    wall, cpu = time.perf_counter(), time.process_time()
    demo = _EXPERT.demonstrate(seed)
    record = {k: v for k, v in demo.attrs.items() if not k.startswith("planner_")}
    record["seconds"] = time.perf_counter() - wall
    record["cpu_seconds"] = time.process_time() - cpu
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="number of episodes")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes")
    parser.add_argument("--out", type=str, default=None, help="JSON file to write")
    parser.add_argument(
        "--setting", type=parse_setting, action="append", default=[], help="name=value"
    )
    args = parser.parse_args()
    settings = dict(args.setting)
    jobs = [(seed, settings) for seed in range(args.start, args.start + args.seeds)]

    tic = time.perf_counter()
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            records = list(pool.map(_episode, jobs))
    else:
        records = [_episode(job) for job in jobs]
    total = time.perf_counter() - tic

    success = np.array([r["success"] for r in records])
    seconds = np.array([r["seconds"] for r in records])
    cpu = np.array([r["cpu_seconds"] for r in records])
    steps = np.array([r["steps"] for r in records])
    faces = Counter(r["face"] for r in records)
    turns = Counter(r["turn"] for r in records)
    modes = Counter(r["mode"] for r in records)
    n = len(records)
    summary = {
        "seeds": [args.start, args.start + n - 1],
        "workers": args.workers,
        "settings": settings,
        "success_rate": float(success.mean()),
        "mean_seconds": float(seconds.mean()),
        "median_seconds": float(np.median(seconds)),
        "mean_cpu_seconds": float(cpu.mean()),
        "mean_steps": float(steps.mean()),
        "mean_max_coverage": float(np.mean([r["max_coverage"] for r in records])),
        "total_seconds": total,
        "faces": dict(faces.most_common()),
        "turns": dict(turns.most_common()),
        "modes": dict(modes.most_common()),
        "failed_seeds": [r["seed"] for r in records if not r["success"]],
    }
    print(f"episodes: {n} (seeds {args.start}..{args.start + n - 1}), workers {args.workers}")
    print(f"success rate: {success.mean():.1%}")
    print(
        f"seconds/episode: mean {seconds.mean():.2f}, median {np.median(seconds):.2f} "
        f"(CPU mean {cpu.mean():.2f})"
    )
    print(f"mean steps: {steps.mean():.1f}; mean max coverage {summary['mean_max_coverage']:.3f}")
    print("faces:", ", ".join(f"{k} {v / n:.0%}" for k, v in faces.most_common()))
    print("turns:", ", ".join(f"{k} {v / n:.0%}" for k, v in turns.most_common()))
    print("failed seeds:", summary["failed_seeds"])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            out, json.dumps({"summary": summary, "episodes": records}, indent=1).encode()
        )
        print(f"written to {out}")


if __name__ == "__main__":
    main()
