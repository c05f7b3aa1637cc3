"""Evaluation speed-up from worker processes, measured in one run.

Evaluates one saved policy on the same seeds with ``workers=1`` and then ``workers=N``
(alternating, ``--rounds`` times each, so the machine's drift hits both alike), checks that
the episodes are identical, and prints the wall times and their ratio.

Usage::

    python benchmarks/eval_workers.py runs/recipe_can/base_seed0 --episodes 50 --workers 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("policy_dir", type=Path, help="a folder saved by hint-train")
    parser.add_argument("--episodes", type=int, default=50, help="episodes (one per seed)")
    parser.add_argument("--seed-start", type=int, default=100_000, help="first seed")
    parser.add_argument("--num-envs", type=int, default=25, help="episodes per predict batch")
    parser.add_argument("--workers", type=int, default=2, help="processes to compare with 1")
    parser.add_argument("--rounds", type=int, default=1, help="timings per setting")
    args = parser.parse_args()

    import numpy as np
    import torch

    import hint_envs  # noqa: F401
    from policies.evaluation import evaluate_trained
    from policies.serialization import load_policy

    torch.set_num_threads(1)  # the one-process baseline uses one core, as each worker does
    policy = load_policy(args.policy_dir)
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    times: dict[int, list[float]] = {1: [], args.workers: []}
    results = {}
    for _ in range(args.rounds):
        for workers in (1, args.workers):
            start = time.perf_counter()
            result = evaluate_trained(
                policy,
                seeds,
                expert=False,
                num_envs=args.num_envs,
                progress=False,
                workers=workers,
            )
            times[workers].append(time.perf_counter() - start)
            results[workers] = result
    same = results[1].episodes == results[args.workers].episodes
    one, many = float(np.median(times[1])), float(np.median(times[args.workers]))
    print(f"{policy.env_id}: {args.episodes} episodes, num_envs {args.num_envs}")
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores")
    print(f"success: {results[1].metrics['success']['mean']:.3f}")
    print(
        f"1 process: {one:.1f} s; {args.workers} workers: {many:.1f} s; speed-up {one / many:.2f}x"
    )
    print(f"identical episodes: {same}")
    if not same:
        raise SystemExit("eval_workers.py: the episodes differ between worker counts")


if __name__ == "__main__":
    main()
