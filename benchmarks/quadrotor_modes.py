"""Does the CPU-scale DDPM policy fail on the quadrotor because its data is bimodal?

The quadrotor expert passes the obstacle on the left or the right with probability 1/2,
independently of the start state, so at the first decision the policy must *pick* a mode.
This script trains the fig5_quadrotor suite's HINT policy (gains, sigma 0, one-block MLP
denoiser of width 1024, 1200 steps at batch 128, one thread) twice on 10 demonstrations:

- ``bimodal``: the first 10 expert demonstrations from seed 0 (both sides, as collected);
- ``unimodal``: the first 10 demonstrations from seed 0 that take the first one's side;

and evaluates both from the same ``--episodes`` initial states (seeds 100000+i). A large
gap says the policy's failures come from mixing the two modes (flying between them, into
the obstacle), not from tracking or from the amount of data.

Usage::

    python benchmarks/quadrotor_modes.py                 # ~5 min on 2 cores
    python benchmarks/quadrotor_modes.py --steps 3000
"""

from __future__ import annotations

import argparse
import collections
import time

import torch

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.data import ChunkDataset
from hint_envs.evaluation import evaluate
from hint_envs.experts.collect import collect_demonstrations
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.training import train

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demos", type=int, default=10, help="demonstrations per dataset")
    parser.add_argument("--steps", type=int, default=1200, help="training steps")
    parser.add_argument("--episodes", type=int, default=40, help="evaluation initial states")
    parser.add_argument("--seed", type=int, default=0, help="demonstration and training seed")
    args = parser.parse_args()
    torch.set_num_threads(1)

    demos = collect_demonstrations(ENV_ID, 4 * args.demos, seed=args.seed, only_success=True)
    first_mode = demos[0].attrs["mode"]
    datasets = {
        "bimodal": demos[: args.demos],
        "unimodal": [d for d in demos if d.attrs["mode"] == first_mode][: args.demos],
    }
    # the fig5_quadrotor suite's policy (epsilon prediction, DDPM-100), whose mode averaging
    # this script shows
    config = DDPMPolicyConfig(
        denoiser="mlp", widths=(1024,), n_aug=4, prediction_type="epsilon", scheduler="ddpm"
    )
    train_config = TrainConfig(steps=args.steps, batch_size=128, warmup_steps=50, num_threads=1)
    rows = []
    for name, chosen in datasets.items():
        if len(chosen) < args.demos:
            raise SystemExit(f"only {len(chosen)} {first_mode} demonstrations; ask for fewer")
        data = ChunkDataset(chosen, config.obs_horizon, config.horizon, env_id=ENV_ID)
        start = time.perf_counter()
        policy = train(data, config, train_config, seed=args.seed)
        seconds = time.perf_counter() - start
        result = evaluate(
            policy,
            ENV_ID,
            seeds=range(100_000, 100_000 + args.episodes),
            chunk_length=config.chunk_length,
            obs_horizon=config.obs_horizon,
            gains=config.gains,
            num_envs=20,
            expert=False,
        )
        ends = collections.Counter(
            "success"
            if e["success"]
            else next(
                (k for k in ("collision", "out_of_bounds") if e["extra"]["final_info"].get(k)),
                "time limit",
            )
            for e in result.episodes
        )
        modes = collections.Counter(d.attrs["mode"] for d in chosen)
        rows.append((name, dict(modes), result.metrics["success"], dict(ends), seconds))

    print(
        f"\nHINT policy (gains, sigma 0, MLP 1024, {args.steps} steps), {args.demos} demos, "
        f"{args.episodes} initial states (seeds 100000+):\n"
    )
    print("| data | modes | success | episode ends | train (s) |")
    print("|---|---|---|---|---|")
    for name, modes, success, ends, seconds in rows:
        print(f"| {name} | {modes} | {success['mean']:.3f} | {ends} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
