"""Robomimic wrapper overhead: chunk-level stepping vs raw robosuite stepping, one-run ratios.

Raw: the very robosuite environment ``hint_envs`` builds
(:func:`hint_envs.envs.robomimic.make_robosuite`: Panda, OSC_POSE absolute, 20 Hz) stepped
one 7-D input at a time. Chunk-level:
``PrimitiveControllerWrapper(gym.make("hint_envs/Robomimic<Task>-v0"), chunk_length)``
stepped one composite action at a time, carrying the same inputs as ``u_bar`` (with
``K = 0`` the inputs reaching robosuite are identical; with gains every inner step also
evaluates ``u = u_bar + K (x - x_bar)``). The inputs are a smooth random walk of the
end-effector target around its start, the gripper opening and closing. Episodes alternate
between the two so that machine noise hits both alike. Goal: ratio <= 1.05.

Usage::

    python benchmarks/perf_robomimic.py --task Can --episodes 10
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from bench_cli import parse_dataclass_args

import hint_envs  # noqa: F401
from hint_envs.core import Primitives
from hint_envs.envs.robomimic import make_robosuite
from hint_envs.wrappers import PrimitiveControllerWrapper


@dataclass
class Args:
    task: str = "Can"
    """Lift, Can or Square"""
    episodes: int = 10
    """episodes of each kind of stepping"""
    steps: int = 200
    """inner steps per episode (a multiple of chunk_length; the time limit is 400)"""
    chunk_length: int = 8
    """controllers per composite action"""
    gain: float = 1.2
    """position gain k (K = -k I on the position rows) of the run with gains"""
    seed: int = 0
    """seed of the initial states and the inputs"""


def random_inputs(rng: np.random.Generator, start: np.ndarray, steps: int) -> np.ndarray:
    """``(steps, 7)`` absolute inputs: a random walk of the target (1 cm a step at most)
    near the start, the start's orientation, the gripper toggling every 40 steps."""
    walk = np.cumsum(np.clip(rng.normal(0.0, 0.004, (steps, 3)), -0.01, 0.01), axis=0)
    position = np.clip(start[:3] + walk, [-0.3, -0.35, 0.85], [0.25, 0.35, 1.25])
    gripper = np.where((np.arange(steps) // 40) % 2 == 0, -1.0, 1.0)[:, None]
    return np.concatenate([position, np.tile(start[3:6], (steps, 1)), gripper], axis=1)


def bench(args: Args, gain: float) -> dict[str, float]:
    raw = make_robosuite(args.task)
    wrapped = PrimitiveControllerWrapper(
        gym.make(f"hint_envs/Robomimic{args.task}-v0"), args.chunk_length, obs_horizon=2
    )
    base = wrapped.unwrapped
    layout = wrapped.layout
    rng = np.random.default_rng(args.seed)
    n_chunks = args.steps // args.chunk_length
    K = np.zeros((args.chunk_length, 7, 3))
    K[:, [0, 1, 2], [0, 1, 2]] = -gain
    obs, _ = wrapped.reset(seed=args.seed)
    hold = np.concatenate([obs[-1][:3], base.site_rotvec(), [-1.0]])
    raw.reset()
    for _ in range(3):  # warm up: robosuite's first steps in a process compile with numba
        raw.step(hold)
        base.step(hold)
    raw_s = wrapped_s = 0.0
    raw_steps = inner = 0
    for episode in range(args.episodes):
        obs, _ = wrapped.reset(seed=args.seed + episode)
        start = np.concatenate([obs[-1][:3], base.site_rotvec(), [-1.0]])
        inputs = random_inputs(rng, start, n_chunks * args.chunk_length)
        raw.reset()
        begin = time.perf_counter()
        for u in inputs:
            raw.step(u)
        raw_s += time.perf_counter() - begin
        raw_steps += len(inputs)
        chunks = [layout.pack(Primitives(u, u[:, :3], K)) for u in inputs.reshape(n_chunks, -1, 7)]
        begin = time.perf_counter()
        for chunk in chunks:
            _, _, terminated, truncated, info = wrapped.step(chunk)
            inner += int(info["steps_executed"])
            if terminated or truncated:
                break
        wrapped_s += time.perf_counter() - begin
    raw.close()
    wrapped.close()
    raw_ms = 1e3 * raw_s / raw_steps
    wrapped_ms = 1e3 * wrapped_s / max(inner, 1)
    return {"raw_ms": raw_ms, "wrapped_ms": wrapped_ms, "ratio": wrapped_ms / raw_ms}


def main() -> None:
    args = parse_dataclass_args(Args, __doc__)
    plain = bench(args, gain=0.0)
    with_gains = bench(args, gain=args.gain)
    print(f"| measurement (Robomimic {args.task}, this CPU) | value | goal |\n|---|---|---|")
    print(f"| raw robosuite step | {plain['raw_ms']:.3f} ms | |")
    print(f"| chunk-level step, per inner step, K = 0 | {plain['wrapped_ms']:.3f} ms | |")
    print(f"| chunk-level / raw, K = 0 | {plain['ratio']:.3f}x | <= 1.05x |")
    gains = f"with gains (k = {args.gain})"
    print(f"| chunk-level / raw, {gains} | {with_gains['ratio']:.3f}x | <= 1.05x |")


if __name__ == "__main__":
    main()
