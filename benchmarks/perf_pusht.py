"""PushT wrapper overhead: chunk-level stepping vs raw gym-pusht stepping, as one-run ratios.

Raw: ``gym.make("gym_pusht/PushT-v0")`` stepped one target at a time. Chunk-level:
``PrimitiveControllerWrapper(gym.make("hint_envs/PushT-v0"), chunk_length)`` stepped one
composite action at a time, carrying the same targets as ``u_bar`` (with ``K = 0`` the
inputs reaching gym-pusht are identical; with gains every inner step also evaluates
``u = u_bar + K (x - x_bar)``). Episodes alternate between the two so that machine noise
hits both alike. Goal: ratio <= 1.1.

Usage::

    python benchmarks/perf_pusht.py --episodes 30
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from bench_cli import parse_dataclass_args

import hint_envs  # noqa: F401
from hint_envs.core import Primitives
from hint_envs.synthesis.pusht import output_feedback_gain
from hint_envs.wrappers import PrimitiveControllerWrapper

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

ENV_ID = "hint_envs/PushT-v0"


@dataclass
class Args:
    episodes: int = 30
    """episodes of each kind of stepping"""
    steps: int = 296
    """inner steps per episode (a multiple of chunk_length; the time limit is 300)"""
    chunk_length: int = 8
    """controllers per composite action"""
    seed: int = 0
    """seed of the initial states and the targets"""


def smooth_targets(rng: np.random.Generator, steps: int) -> np.ndarray:
    """A random walk of targets through the table, ``(steps, 2)`` px: pushes and misses."""
    walk = np.cumsum(rng.normal(0.0, 12.0, size=(steps, 2)), axis=0) + rng.uniform(100, 400, 2)
    return np.clip(walk, 0.0, 512.0)


def bench(args: Args, gains: bool) -> dict[str, float]:
    import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)

    raw = gym.make("gym_pusht/PushT-v0", obs_type="state")
    wrapped = PrimitiveControllerWrapper(gym.make(ENV_ID), args.chunk_length, obs_horizon=2)
    layout = wrapped.layout
    rng = np.random.default_rng(args.seed)
    n_chunks = args.steps // args.chunk_length
    k = output_feedback_gain() if gains else 0.0
    K = np.tile(-k * np.eye(2), (args.chunk_length, 1, 1))
    raw_s = wrapped_s = 0.0
    inner = 0
    for episode in range(args.episodes):
        seed = args.seed + episode
        targets = smooth_targets(rng, n_chunks * args.chunk_length)
        raw.reset(seed=seed)
        start = time.perf_counter()
        for u in targets:
            _, _, terminated, truncated, _ = raw.step(u)
            if terminated or truncated:
                break
        raw_s += time.perf_counter() - start
        obs, _ = wrapped.reset(seed=seed)
        x_bar = np.repeat(obs[-1][None, :2], args.chunk_length, 0)
        chunks = [
            layout.pack(Primitives(u_chunk, x_bar, K))
            for u_chunk in targets.reshape(n_chunks, args.chunk_length, 2)
        ]
        start = time.perf_counter()
        for chunk in chunks:
            _, _, terminated, truncated, info = wrapped.step(chunk)
            inner += int(info["steps_executed"])
            if terminated or truncated:
                break
        wrapped_s += time.perf_counter() - start
    return {
        "raw_ms": 1e3 * raw_s / max(inner, 1),
        "wrapped_ms": 1e3 * wrapped_s / max(inner, 1),
        "ratio": wrapped_s / raw_s,
    }


def main() -> None:
    args = parse_dataclass_args(Args, __doc__)
    plain = bench(args, gains=False)
    with_gains = bench(args, gains=True)
    print("| measurement (PushT, this CPU) | value | goal |\n|---|---|---|")
    print(f"| raw gym-pusht step | {plain['raw_ms']:.3f} ms | |")
    print(f"| chunk-level step, per inner step, K = 0 | {plain['wrapped_ms']:.3f} ms | |")
    print(f"| chunk-level / raw, K = 0 | {plain['ratio']:.3f}x | <= 1.1x |")
    print(f"| chunk-level / raw, with gains | {with_gains['ratio']:.3f}x | <= 1.1x |")


if __name__ == "__main__":
    main()
