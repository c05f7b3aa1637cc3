"""Training throughput: steps per second of ``policies.training.train`` against a plain loop.

The plain loop is how Diffusion Policy trains: a shuffled ``torch.utils.data.DataLoader``
over the normalised (observation chunk, action chunk) tensors, the forward-noising with
``diffusers``' ``DDPMScheduler.add_noise``, MSE, backward, AdamW, a cosine learning-rate
step and an EMA update of the weights, on the **same** denoiser network
(:func:`policies.ddpm.build_denoiser` of the default :class:`DDPMPolicyConfig`). Both run
in this process, alternating, at every thread count asked for, so the machine's drift hits
both alike. The figure is steps per second of the gradient loop (setup excluded for both).

Usage::

    python benchmarks/train_throughput.py --threads 1 2 --steps 300 --rounds 3
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def library_steps_per_s(dataset, config, steps: int, threads: int) -> float:
    """Steps per second of :func:`policies.training.train` (its own timing of the loop)."""
    from policies.config import TrainConfig
    from policies.training import train

    policy = train(
        dataset,
        config,
        TrainConfig(steps=steps, num_threads=threads, log_every=steps),
        None,
        progress=False,
    )
    return steps / policy.train_seconds


def plain_steps_per_s(dataset, config, steps: int, threads: int, batch_size: int) -> float:
    """Steps per second of a Diffusion-Policy-style loop on the same network."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_cosine_schedule_with_warmup

    from policies.ddpm import build_denoiser

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    obs = torch.from_numpy(dataset.stats.obs.normalize(dataset.observations)).float()
    act = torch.from_numpy(dataset.stats.action.normalize(dataset.actions)).float()
    obs = obs.reshape(len(obs), -1)
    model = build_denoiser(config, dataset.controller_size, obs.shape[1])
    ema = copy.deepcopy(model).requires_grad_(False)
    scheduler = DDPMScheduler(
        num_train_timesteps=config.diffusion_steps,
        beta_schedule=config.beta_schedule,
        prediction_type=config.prediction_type,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)
    lr = get_cosine_schedule_with_warmup(optimizer, 100, steps)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(obs, act),
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
    )
    done, start = 0, time.perf_counter()
    while done < steps:
        for o, a in loader:
            noise = torch.randn_like(a)
            t = torch.randint(0, config.diffusion_steps, (len(a),))
            noisy = scheduler.add_noise(a, noise, t)
            target = noise if config.prediction_type == "epsilon" else a
            loss = torch.nn.functional.mse_loss(model(noisy, t, o), target)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            lr.step()
            with torch.no_grad():  # Diffusion Policy's EMAModel: one lerp per parameter
                for e, p in zip(ema.parameters(), model.parameters(), strict=True):
                    e.mul_(0.999).add_(p, alpha=0.001)
            done += 1
            if done == steps:
                break
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", default="benchmarks/data/pusht_keypoints_1000.hdf5", help="demo file"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    parser.add_argument("--steps", type=int, default=300, help="steps per timing")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args = parser.parse_args()

    import hint_envs  # noqa: F401
    from hint_envs.data import ChunkDataset
    from policies.config import DDPMPolicyConfig, TrainConfig

    config = DDPMPolicyConfig()
    dataset = ChunkDataset(REPO / args.dataset, config.obs_horizon, config.horizon)
    batch = TrainConfig().batch_size
    print(f"{dataset}; default policy: {config.denoiser} {config.widths}, batch {batch}")
    for threads in args.threads:
        ours, plain = [], []
        for _ in range(args.rounds):
            ours.append(library_steps_per_s(dataset, config, args.steps, threads))
            plain.append(plain_steps_per_s(dataset, config, args.steps, threads, batch))
        print(
            f"{threads} thread(s): policies.training.train {np.median(ours):.1f} steps/s, "
            f"plain loop {np.median(plain):.1f} steps/s (medians of {args.rounds}; ratio "
            f"{np.median(ours) / np.median(plain):.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
