"""Environment speed on this machine, as ratios measured in one run.

1. Native batched vector env vs gymnasium's ``SyncVectorEnv`` of the same N single envs
   (goal: >= 50x at N = 256).
2. ``PrimitiveControllerWrapper`` step cost vs raw stepping of the same inputs
   (goal: <= 1.5x), with K = 0 (u = u_bar) and with gains.

Usage::

    python benchmarks/perf.py               # prints a markdown table
    python benchmarks/perf.py --num-envs 256 --steps 200
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from bench_cli import parse_dataclass_args

import hint_envs  # noqa: F401
from hint_envs.core import Primitives
from hint_envs.wrappers import PrimitiveControllerWrapper

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


@dataclass
class Args:
    num_envs: int = 256
    """number of quadrotors in the vector envs"""
    steps: int = 200
    """vector steps to time"""
    chunk_length: int = 8
    """controllers per composite action for the wrapper benchmark"""
    episodes: int = 200
    """episodes of raw/wrapped stepping for the wrapper benchmark"""
    seed: int = 0
    """seed of envs and inputs"""


def hover_inputs(rng: np.random.Generator, shape: tuple[int, ...], params) -> np.ndarray:
    """Random inputs near hover, ``shape + (2,)``: flights that last a while."""
    u = params.hover_input + rng.normal(0.0, [0.3, 0.002], size=shape + (2,))
    return np.clip(u, params.input_low, params.input_high)


def time_vector(env: gym.vector.VectorEnv, actions: np.ndarray, seed: int) -> float:
    """Seconds per vector step over ``actions`` ``(steps, N, 2)``, after a warm-up."""
    env.reset(seed=seed)
    for action in actions[:20]:
        env.step(action)
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return (time.perf_counter() - start) / len(actions)


def bench_vector(args: Args) -> dict[str, float]:
    params = gym.make(ENV_ID).unwrapped.params
    rng = np.random.default_rng(args.seed)
    actions = hover_inputs(rng, (args.steps, args.num_envs), params)
    native = gym.make_vec(ENV_ID, num_envs=args.num_envs, vectorization_mode="vector_entry_point")
    sync = gym.vector.SyncVectorEnv([lambda: gym.make(ENV_ID)] * args.num_envs)
    native_s = time_vector(native, actions, args.seed)
    sync_s = time_vector(sync, actions, args.seed)
    return {"native_ms": 1e3 * native_s, "sync_ms": 1e3 * sync_s, "ratio": sync_s / native_s}


def bench_wrapper(args: Args, gains: bool) -> dict[str, float]:
    """Raw stepping of an episode's inputs vs the same inputs as chunks through the wrapper."""
    raw = gym.make(ENV_ID)
    params = raw.unwrapped.params
    wrapped = PrimitiveControllerWrapper(gym.make(ENV_ID), args.chunk_length, obs_horizon=2)
    layout = wrapped.layout
    rng = np.random.default_rng(args.seed)
    n_chunks = 100 // args.chunk_length
    inputs = hover_inputs(rng, (args.episodes, n_chunks * args.chunk_length), params)
    d_x = layout.d_x
    K = (
        np.zeros((args.chunk_length, 2, d_x))
        if not gains
        else rng.normal(0, 1e-3, (args.chunk_length, 2, d_x))
    )
    raw_s = wrapped_s = 0.0
    for episode in range(args.episodes):
        seed = args.seed + episode
        raw.reset(seed=seed)
        start = time.perf_counter()
        for u in inputs[episode]:
            _, _, terminated, truncated, _ = raw.step(u)
            if terminated or truncated:
                break
        raw_s += time.perf_counter() - start
        obs, _ = wrapped.reset(seed=seed)
        chunks = [
            layout.pack(Primitives(u_chunk, np.repeat(obs[-1][None], args.chunk_length, 0), K))
            for u_chunk in inputs[episode].reshape(n_chunks, args.chunk_length, 2)
        ]
        start = time.perf_counter()
        for chunk in chunks:
            _, _, terminated, truncated, _ = wrapped.step(chunk)
            if terminated or truncated:
                break
        wrapped_s += time.perf_counter() - start
    return {"raw_s": raw_s, "wrapped_s": wrapped_s, "ratio": wrapped_s / raw_s}


def main() -> None:
    args = parse_dataclass_args(Args, __doc__)

    vector = bench_vector(args)
    plain = bench_wrapper(args, gains=False)
    with_gains = bench_wrapper(args, gains=True)
    print("| measurement (quadrotor, this CPU) | value | goal |\n|---|---|---|")
    print(f"| native vector env step, N={args.num_envs} | {vector['native_ms']:.3f} ms | |")
    print(f"| SyncVectorEnv step, N={args.num_envs} | {vector['sync_ms']:.3f} ms | |")
    print(f"| native speed-up over SyncVectorEnv | {vector['ratio']:.0f}x | >= 50x |")
    print(f"| wrapper / raw step cost, K = 0 | {plain['ratio']:.2f}x | <= 1.5x |")
    print(f"| wrapper / raw step cost, with gains | {with_gains['ratio']:.2f}x | <= 1.5x |")


if __name__ == "__main__":
    main()
