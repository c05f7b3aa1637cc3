"""Benchmark the scripted Robomimic experts (:mod:`hint_envs.experts.robomimic`).

Figures (printed, and written as JSON to ``--out`` with one record per episode):

- success rate over seeds ``start .. start + seeds - 1`` (robosuite's success check within
  the 400-step limit, before any filtering; targets: Lift >= 98 %, Can >= 95 %,
  Square >= 80 %);
- seconds per episode (mean / median, wall clock and CPU, BLAS pinned to one thread; the
  expert and its environment are built once per worker, outside the timing), mean steps,
  mean grasp attempts;
- the distribution of modes (see the module docstring of the experts).

Run: ``python benchmarks/expert_robomimic.py --task Can --seeds 100 --workers 2``
(``--help`` for the options); expert settings pass as ``--setting name=value``
(repeatable, numbers only).
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

TASKS = ("Lift", "Can", "Square")
_EXPERT = None


def _init(task: str, settings: dict[str, Any]) -> None:
    """Build this process's expert (once, outside the timed episodes)."""
    global _EXPERT
    from hint_envs.experts import make_expert

    _EXPERT = make_expert(f"hint_envs/Robomimic{task}-v0", **settings)


def _episode(seed: int) -> dict[str, Any]:
    """One episode with this process's expert."""
    wall, cpu = time.perf_counter(), time.process_time()
    demo = _EXPERT.demonstrate(seed)
    record = dict(demo.attrs)
    record["seconds"] = time.perf_counter() - wall
    record["cpu_seconds"] = time.process_time() - cpu
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=TASKS, default="Lift", help="robomimic task")
    parser.add_argument("--seeds", type=int, default=100, help="number of episodes")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--workers", type=int, default=2, help="parallel processes")
    parser.add_argument("--out", type=str, default=None, help="JSON file to write")
    parser.add_argument(
        "--setting", type=parse_setting, action="append", default=[], help="name=value"
    )
    args = parser.parse_args()
    settings = dict(args.setting)
    seeds = range(args.start, args.start + args.seeds)

    tic = time.perf_counter()
    if args.workers > 1:
        init = (args.task, settings)
        with ProcessPoolExecutor(args.workers, initializer=_init, initargs=init) as pool:
            records = list(pool.map(_episode, seeds))
    else:
        _init(args.task, settings)
        records = [_episode(seed) for seed in seeds]
    total = time.perf_counter() - tic

    success = np.array([r["success"] for r in records])
    seconds = np.array([r["seconds"] for r in records])
    cpu = np.array([r["cpu_seconds"] for r in records])
    steps = np.array([r["steps"] for r in records])
    attempts = np.array([r["attempts"] for r in records])
    modes = Counter(r["mode"] for r in records)
    n = len(records)
    summary = {
        "task": args.task,
        "seeds": [args.start, args.start + n - 1],
        "workers": args.workers,
        "settings": settings,
        "success_rate": float(success.mean()),
        "mean_seconds": float(seconds.mean()),
        "median_seconds": float(np.median(seconds)),
        "mean_cpu_seconds": float(cpu.mean()),
        "median_cpu_seconds": float(np.median(cpu)),
        "mean_steps": float(steps.mean()),
        "mean_attempts": float(attempts.mean()),
        "total_seconds": total,
        "modes": dict(modes.most_common()),
        "failed_seeds": [r["seed"] for r in records if not r["success"]],
        "unstable_seeds": [r["seed"] for r in records if r["unstable"]],
    }
    print(
        f"{args.task}: {n} episodes (seeds {args.start}..{args.start + n - 1}), "
        f"workers {args.workers}, {total:.1f} s in all"
    )
    print(f"success rate: {success.mean():.1%}")
    print(
        f"seconds/episode: wall mean {seconds.mean():.2f}, median {np.median(seconds):.2f}; "
        f"CPU mean {cpu.mean():.2f}, median {np.median(cpu):.2f}"
    )
    print(f"mean steps: {steps.mean():.1f}; mean grasp attempts {attempts.mean():.2f}")
    print("modes:", ", ".join(f"{k} {v}" for k, v in modes.most_common()))
    print("failed seeds:", summary["failed_seeds"])
    if summary["unstable_seeds"]:
        print("unstable seeds:", summary["unstable_seeds"])
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(
            out, json.dumps({"summary": summary, "episodes": records}, indent=1).encode()
        )
        print(f"written to {out}")


if __name__ == "__main__":
    main()
