"""Chunk-sampling latency of the DDPM chunking policy on this CPU, against a same-machine
reference written the way Diffusion Policy samples.

One "chunk" is one call of ``policy.predict`` on a batch of quadrotor observation chunks
(``obs_horizon=2``, ``d_obs=6``; ``horizon=16`` controllers of 20 floats with gains): the
full reverse diffusion, normalisation and un-normalisation included. Denoisers: the HINT
paper's U-Net (down dims 64/128/256, kernel 5, 4.47 M parameters) and the MLP default;
samplers: DDPM with 100 steps and DDIM with 10. Reported: the median wall time of
``--repeats`` calls after ``--warmup`` calls, with the batch sizes interleaved (each round
times every batch size once, so the ratio between them is not a drift of the machine's
speed), and how busy the machine was, since other processes on a shared machine slow
everything down.

Reference: ``benchmarks/dp_reference.py``, Diffusion Policy's way of sampling (``nn.Conv1d``
modules on ``(B, C, T)``, a FiLM encoder per block recomputed at every step,
``scheduler.step`` of ``diffusers`` under ``torch.no_grad``), with the policy's own U-Net
weights copied in, so both compute the same samples; it is timed on the normalised
observations (no normalisation), in the same process, threads and OpenMP settings.
Diffusion Policy's own implementation was quoted at 1.1 s (batch 1) and 4.9 s (batch 50)
per chunk with DDPM-100 and 2 threads on this machine kind (``QUOTED_REFERENCE``).

OpenMP settings are left as the environment gives them. On the 2-core development VM,
``OMP_WAIT_POLICY=PASSIVE`` (workers sleep between parallel regions) made 2-thread
sampling about 3x slower on an idle machine, and the default (spin a little, then sleep)
about 3x slower when another process kept a core busy; 1 thread is the robust choice on
a shared machine (``--threads 1``).

Usage::

    python benchmarks/sampling_latency.py                 # 2 threads, markdown table
    python benchmarks/sampling_latency.py --threads 1 --repeats 7
    python benchmarks/sampling_latency.py --compile --denoisers unet1d   # torch.compile
    python benchmarks/sampling_latency.py --success        # also: DDIM-10 vs DDPM-100 success

``--compile`` samples through ``policy.compile_sampler()`` (each batch size compiles once,
before timing; on 2 cores from half a minute at batch 1 to two minutes at batch 50).

``--success`` trains the Fig. 5 HINT policy (one-block MLP of width 1024, gains, sigma 0,
``--train-steps`` steps) on ``--demos`` expert demonstrations and evaluates the *same*
weights with DDPM-100, DDIM-10 and DDPM-10 (ancestral sampling on 10 of the 100 steps;
:meth:`DDPMChunkingPolicy.set_sampler`) from the same ``--episodes`` initial states
(seeds 100000+i), reporting the success of each and the difference to DDPM-100::

    python benchmarks/sampling_latency.py --success --no-latency --demos 1 --train-steps 5000

It does so for each ``--prediction`` (default both): the denoiser trained to predict the
noise (``epsilon``, Diffusion Policy's default) and the clean chunk (``sample``;
``DDPMPolicyConfig.prediction_type``), with the same data, seed and budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import gymnasium as gym
import numpy as np
import torch
from dp_reference import from_denoiser, reference_sample

import hint_envs  # noqa: F401
from hint_envs.data.normalization import NormalizationStats, RangeNormalizer
from hint_envs.wrappers import PrimitiveControllerWrapper
from policies.config import PREDICTION_TYPES, DDPMPolicyConfig
from policies.ddpm import DDPMChunkingPolicy
from policies.networks import count_parameters

ENV_ID = "hint_envs/PlanarQuadrotor-v0"
#: Diffusion Policy's latency quoted for this machine kind (U-Net 4.2 M, DDPM 100): batch -> s
QUOTED_REFERENCE = {1: 1.1, 50: 4.9}


@dataclass
class Args:
    threads: int = 2
    """torch CPU threads"""
    batches: tuple[int, ...] = (1, 50)
    """batch sizes (environments sampled at once)"""
    repeats: int = 5
    """timed calls per setting (the median is reported)"""
    warmup: int = 2
    """untimed calls before timing"""
    seed: int = 0
    """seed of weights, observations and sampling"""
    compile: bool = False
    """sample through torch.compile (policy.compile_sampler(); compile time not timed)"""
    demos: int = 10
    """--success: expert demonstrations to train on"""
    episodes: int = 200
    """--success: evaluation initial states"""
    train_steps: int = 1200
    """--success: training steps (the Fig. 5 suite's 1200 by default)"""
    predictions: tuple[str, ...] = PREDICTION_TYPES
    """--success: what the denoiser predicts, "epsilon" (noise) and/or "sample" (clean chunk)"""


def cpu_times() -> tuple[float, float] | None:
    """(idle, total) CPU jiffies of the machine from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as handle:
            values = [float(v) for v in handle.readline().split()[1:]]
    except OSError:
        return None
    return values[3] + values[4], sum(values)


def make_policy(denoiser: str, scheduler: str, seed: int) -> DDPMChunkingPolicy:
    """An untrained policy on the chunk-level quadrotor's spaces (latency needs no training)."""
    config = DDPMPolicyConfig(
        denoiser=denoiser,
        down_dims=(64, 128, 256),
        kernel_size=5,
        n_groups=8,
        scheduler=scheduler,
        inference_steps=100 if scheduler == "ddpm" else 10,
    )
    env = PrimitiveControllerWrapper(
        gym.make(ENV_ID), chunk_length=config.chunk_length, obs_horizon=config.obs_horizon
    )
    low, high = env.unwrapped.observation_space.low, env.unwrapped.observation_space.high
    stats = NormalizationStats(
        RangeNormalizer(low, high), RangeNormalizer(-np.ones(20), np.ones(20))
    )
    torch.manual_seed(seed)
    return DDPMChunkingPolicy(env.observation_space, env.action_space, config, stats, seed=seed)


def observations(policy: DDPMChunkingPolicy, batch: int, seed: int) -> np.ndarray:
    """``batch`` raw observation chunks inside the central tenth of the space."""
    rng = np.random.default_rng(seed)
    space = policy.observation_space
    return rng.uniform(-1.0, 1.0, (batch,) + space.shape) * 0.1 * (space.high - space.low) / 2


def median_seconds(calls: dict[int, Callable[[], object]], args: Args) -> dict[int, float]:
    """Median wall time of each ``calls[batch]()`` over ``args.repeats`` rounds after
    ``args.warmup``; a round calls every batch size once, so that a shared machine's speed
    drifting over the run (by a third on the development VM) slows all of them alike and
    the ratio between batch sizes compares like with like."""
    for _ in range(args.warmup):
        for call in calls.values():
            call()
    times: dict[int, list[float]] = {batch: [] for batch in calls}
    for _ in range(args.repeats):
        for batch, call in calls.items():
            start = time.perf_counter()
            call()
            times[batch].append(time.perf_counter() - start)
    return {batch: statistics.median(seconds) for batch, seconds in times.items()}


def time_chunks(policy: DDPMChunkingPolicy, args: Args) -> dict[int, float]:
    """Median seconds of one ``predict`` on ``batch`` observation chunks, per batch size."""
    obs = {batch: observations(policy, batch, args.seed) for batch in args.batches}
    return median_seconds({b: partial(policy.predict, obs[b]) for b in args.batches}, args)


def time_reference(policy: DDPMChunkingPolicy, args: Args) -> dict[int, float]:
    """Median seconds of Diffusion Policy's way of sampling the same U-Net and sampler."""
    reference = from_denoiser(policy.inference_denoiser).eval()
    generator = torch.Generator().manual_seed(args.seed)
    calls = {}
    for batch in args.batches:
        cond = policy.normalize_obs(torch.as_tensor(observations(policy, batch, args.seed)))
        shape = (batch, policy.config.horizon, policy.controller_size)
        calls[batch] = partial(reference_sample, reference, policy.sampler, cond, shape, generator)
    return median_seconds(calls, args)


def success_by_sampler(args: Args, prediction: str) -> list[tuple[str, float, float, float]]:
    """Success of one trained policy sampled with DDPM-100, DDIM-10 and DDPM-10.

    Returns ``(sampler, success, std, seconds)`` rows; the policy is the Fig. 5 suite's
    HINT policy (one-block MLP of width 1024, gains, sigma 0, ``prediction_type=prediction``)
    trained for ``args.train_steps`` steps on ``args.demos`` demonstrations from seed 0.
    """
    import tempfile
    from pathlib import Path

    from hint_envs.data import ChunkDataset, write_demonstrations
    from hint_envs.evaluation import evaluate
    from hint_envs.experts.collect import collect_demonstrations
    from policies.config import TrainConfig
    from policies.training import train

    demos = collect_demonstrations(ENV_ID, args.demos, seed=0, only_success=True)
    config = DDPMPolicyConfig(denoiser="mlp", widths=(1024,), n_aug=4, prediction_type=prediction)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demos.hdf5"
        write_demonstrations(path, demos, ENV_ID)
        dataset = ChunkDataset(path, config.obs_horizon, config.horizon, gains=config.gains)
    train_config = TrainConfig(
        steps=args.train_steps, batch_size=128, lr=1e-3, warmup_steps=50, num_threads=args.threads
    )
    policy = train(dataset, config, train_config, seed=args.seed)
    rows = []
    for scheduler, steps in (("ddpm", 100), ("ddim", 10), ("ddpm", 10)):
        policy.set_sampler(scheduler, steps)
        start = time.perf_counter()
        result = evaluate(
            policy,
            ENV_ID,
            seeds=range(100_000, 100_000 + args.episodes),
            chunk_length=config.chunk_length,
            obs_horizon=config.obs_horizon,
            gains=config.gains,
            num_envs=min(args.episodes, 50),
            expert=False,
            sample_seed=args.seed,
        )
        success = result.metrics["success"]
        rows.append(
            (
                f"{scheduler.upper()}-{steps}",
                success["mean"],
                success["std"],
                time.perf_counter() - start,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=Args.threads)
    parser.add_argument("--batches", type=int, nargs="+", default=list(Args.batches))
    parser.add_argument("--repeats", type=int, default=Args.repeats)
    parser.add_argument("--warmup", type=int, default=Args.warmup)
    parser.add_argument("--seed", type=int, default=Args.seed)
    parser.add_argument("--compile", action="store_true", help="sample through torch.compile")
    parser.add_argument("--denoisers", nargs="+", default=["unet1d", "mlp"])
    parser.add_argument("--success", action="store_true", help="DDIM-10 vs DDPM-100 success")
    parser.add_argument(
        "--no-latency", action="store_true", help="skip the timings (with --success: only that)"
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip timing the dp_reference sampler"
    )
    parser.add_argument("--demos", type=int, default=Args.demos)
    parser.add_argument("--episodes", type=int, default=Args.episodes)
    parser.add_argument("--train-steps", type=int, default=Args.train_steps)
    parser.add_argument(
        "--prediction",
        nargs="+",
        choices=PREDICTION_TYPES,
        default=list(Args.predictions),
        help="--success: train the denoiser to predict the noise and/or the clean chunk",
    )
    ns = parser.parse_args()
    args = Args(
        ns.threads,
        tuple(ns.batches),
        ns.repeats,
        ns.warmup,
        ns.seed,
        ns.compile,
        ns.demos,
        ns.episodes,
        ns.train_steps,
        tuple(ns.prediction),
    )
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    times_before = cpu_times()

    rows = []
    for denoiser in [] if ns.no_latency else ns.denoisers:
        for scheduler, steps in (("ddpm", 100), ("ddim", 10)):
            policy = make_policy(denoiser, scheduler, args.seed)
            if args.compile:
                policy.compile_sampler()
            params = f"{count_parameters(policy.denoiser) / 1e6:.2f} M"
            sampler = f"{scheduler.upper()}-{steps}"
            ours = time_chunks(policy, args)
            theirs = {}
            if denoiser == "unet1d" and not ns.no_reference:
                theirs = time_reference(policy, args)
            for name, latencies in (("dp_reference", theirs), ("hint_envs", ours)):
                for batch, seconds in latencies.items():
                    speedup = f"{theirs[batch] / seconds:.2f}x" if theirs else ""
                    rows.append(
                        (
                            name,
                            denoiser,
                            params,
                            sampler,
                            batch,
                            seconds,
                            1000 * seconds / steps,
                            speedup,
                            f"{seconds / latencies[min(latencies)]:.2f}x",
                        )
                    )

    times_after = cpu_times()
    busy = ""
    if times_before and times_after:
        idle = (times_after[0] - times_before[0]) / max(times_after[1] - times_before[1], 1)
        busy = f"; machine CPU busy {100 * (1 - idle):.0f}% during the run (this one included)"
    mode = "torch.compile" if args.compile else "eager"
    print(
        f"torch {torch.__version__}, {args.threads} threads, {mode}, OMP_WAIT_POLICY="
        f"{os.environ.get('OMP_WAIT_POLICY', 'unset')}, median of {args.repeats} rounds "
        f"(batch sizes interleaved) after {args.warmup} warm-up; load average before "
        f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}{busy}\n"
    )
    if rows:
        print(
            "| implementation | denoiser | params | sampler | batch | s / chunk | ms / step "
            "| speed-up vs dp_reference | vs batch 1 |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, denoiser, params, sampler, batch, seconds, per_step, speedup, ratio in rows:
            print(
                f"| {name} | {denoiser} | {params} | {sampler} | {batch} | {seconds:.3f} "
                f"| {per_step:.2f} | {speedup} | {ratio} |"
            )
        quoted = ", ".join(f"{s} s at batch {b}" for b, s in QUOTED_REFERENCE.items())
        print(f"\nQuoted for Diffusion Policy's own code (U-Net, DDPM-100): {quoted}.")
    if ns.success:
        results = {
            prediction: success_by_sampler(args, prediction) for prediction in args.predictions
        }
        print(
            f"\nSuccess of one trained policy per prediction type (MLP 1024, {args.train_steps} "
            f"steps, {args.demos} demos, gains, sigma 0) by sampler, {args.episodes} initial "
            "states (seeds 100000+):\n"
        )
        print("| prediction | sampler | success | minus DDPM-100 (points) | eval time (s) |")
        print("|---|---|---|---|---|")
        for prediction, rows in results.items():
            for sampler, mean, std, seconds in rows:
                print(
                    f"| {prediction} | {sampler} | {mean:.3f} ± {std:.3f} "
                    f"| {100 * (mean - rows[0][1]):+.1f} | {seconds:.1f} |"
                )


if __name__ == "__main__":
    main()
