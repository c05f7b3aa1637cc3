"""``hint-train``: train a DDPM chunking policy on a demonstration file; ``hint-eval``:
evaluate a saved policy on the test seeds of its environment.

Example::

    hint-collect hint_envs/PlanarQuadrotor-v0 --episodes 20 --seed 0 --out demos.hdf5
    hint-train demos.hdf5 --out runs/hint --num-demos 10 --sigma 0.1 --steps 3000
    hint-eval runs/hint --episodes 50

writes ``runs/hint/{config.json, model.safetensors, training.json}``; load it with
``policies.load_policy("runs/hint")``. Run ``hint-train --help`` / ``hint-eval --help``
for every option.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hint_envs._cli import HelpFormatter, check_output_file, command_line_errors
from hint_envs._io import ResourceError, atomic_write_bytes, output_lock
from hint_envs.core import NOISE_LAWS
from policies.config import (
    DENOISERS,
    PREDICTION_TYPES,
    SCHEDULERS,
    DDPMPolicyConfig,
    TrainConfig,
)


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 512,512,512, got {text!r}"
        ) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hint-train``."""
    defaults, train_defaults = DDPMPolicyConfig(), TrainConfig()
    parser = argparse.ArgumentParser(
        prog="hint-train",
        description="Train a DDPM chunking policy (HINT) on demonstrations with primitives.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "demo_file",
        help="demonstration HDF5 file (hint-collect), or a local Minari dataset written by "
        "hint-minari as minari:<dataset id>",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a policy already saved in --out"
    )
    parser.add_argument(
        "--num-demos", type=int, default=None, help="use the first N demos (default: all)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of everything random")
    policy = parser.add_argument_group("policy")
    policy.add_argument(
        "--sigma",
        type=float,
        default=defaults.sigma,
        help="data/replica noise level in normalised units",
    )
    policy.add_argument(
        "--noise",
        choices=NOISE_LAWS,
        default=defaults.noise_law,
        help="law of the noise per normalised dimension, in training and at test time: "
        "gaussian N(0,1) (the paper's text), uniform U[0,1) (the authors' code, mean 1/2), "
        "uniform_centered U[-1/2,1/2) (docs/results/fig6.md)",
    )
    policy.add_argument(
        "--n-aug", type=int, default=defaults.n_aug, help="noised copies per sample (Algorithm 1)"
    )
    policy.add_argument(
        "--gains",
        action=argparse.BooleanOptionalAction,
        default=defaults.gains,
        help="diffuse (u_bar, x_bar, K) controllers, or only u_bar",
    )
    policy.add_argument(
        "--obs-horizon", type=int, default=defaults.obs_horizon, help="observations per sample"
    )
    policy.add_argument(
        "--horizon", type=int, default=defaults.horizon, help="predicted controllers per sample"
    )
    policy.add_argument(
        "--chunk-length",
        type=int,
        default=defaults.chunk_length,
        help="executed controllers per decision",
    )
    policy.add_argument(
        "--denoiser", choices=DENOISERS, default=defaults.denoiser, help="denoiser network"
    )
    policy.add_argument(
        "--widths", type=_int_tuple, default=defaults.widths, help="MLP denoiser hidden sizes"
    )
    policy.add_argument(
        "--down-dims", type=_int_tuple, default=defaults.down_dims, help="U-Net channel widths"
    )
    policy.add_argument(
        "--diffusion-steps",
        type=int,
        default=defaults.diffusion_steps,
        help="noise levels of the diffusion process",
    )
    policy.add_argument(
        "--scheduler", choices=SCHEDULERS, default=defaults.scheduler, help="sampler"
    )
    policy.add_argument(
        "--inference-steps",
        type=int,
        default=None,
        help="sampling steps (default: diffusion steps for ddpm, 10 for ddim)",
    )
    policy.add_argument(
        "--prediction-type",
        choices=PREDICTION_TYPES,
        default=defaults.prediction_type,
        help="what the denoiser predicts: the noise, or the clean chunk (better with few "
        "DDIM steps; docs/results/sampling.md)",
    )
    policy.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=defaults.ema,
        help="keep an exponential moving average of the weights and sample with it",
    )
    training = parser.add_argument_group("training")
    training.add_argument("--steps", type=int, default=train_defaults.steps, help="optimiser steps")
    training.add_argument(
        "--batch-size", type=int, default=train_defaults.batch_size, help="samples per step"
    )
    training.add_argument(
        "--lr", type=float, default=train_defaults.lr, help="peak learning rate (AdamW)"
    )
    training.add_argument(
        "--weight-decay", type=float, default=train_defaults.weight_decay, help="AdamW decay"
    )
    training.add_argument(
        "--warmup-steps",
        type=int,
        default=train_defaults.warmup_steps,
        help="linear learning-rate warm-up steps",
    )
    training.add_argument(
        "--checkpoint-every",
        type=int,
        default=train_defaults.checkpoint_every,
        help="checkpoint every K steps (0: final only)",
    )
    training.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last checkpoint in OUT/checkpoints (same settings and data; "
        "from scratch if there is none); the result is bit-identical to an uninterrupted run",
    )
    training.add_argument(
        "--threads", type=int, default=train_defaults.num_threads, help="torch CPU threads"
    )
    training.add_argument("--device", default=train_defaults.device, help="cpu, cuda or cuda:N")
    training.add_argument(
        "--resample-noise",
        action="store_true",
        help="fresh data noise every batch instead of n_aug fixed copies",
    )
    training.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    training.add_argument(
        "--tensorboard",
        type=Path,
        default=None,
        metavar="DIR",
        help="write TensorBoard scalars (train/loss, train/lr) to DIR (needs the tensorboard "
        "package; off by default)",
    )
    return parser


@command_line_errors("hint-train")
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hint-train``; returns the exit status (130 after Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        return _train_main(args)
    except KeyboardInterrupt:
        return _interrupted(args.out)


def _interrupted(out: Path) -> int:
    """Ctrl-C: one line saying which checkpoint is kept and how to continue."""
    from hint_envs._cli import interrupted
    from policies.training import CHECKPOINTS, latest_checkpoints

    found = latest_checkpoints(out / CHECKPOINTS)
    if not found:
        return interrupted("hint-train", "no checkpoint written yet; rerun to start over")
    return interrupted(
        "hint-train", f"checkpoint {found[0]} kept; rerun with --resume to continue from it"
    )


def _train_main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = DDPMPolicyConfig(
            obs_horizon=args.obs_horizon,
            horizon=args.horizon,
            chunk_length=args.chunk_length,
            gains=args.gains,
            denoiser=args.denoiser,
            widths=args.widths,
            down_dims=args.down_dims,
            diffusion_steps=args.diffusion_steps,
            scheduler=args.scheduler,
            inference_steps=args.inference_steps,
            prediction_type=args.prediction_type,
            ema=args.ema,
            sigma=args.sigma,
            noise_law=args.noise,
            n_aug=args.n_aug,
        )
        train_config = TrainConfig(
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            warmup_steps=args.warmup_steps,
            checkpoint_every=args.checkpoint_every,
            num_threads=args.threads,
            resample_noise=args.resample_noise,
            device=args.device,
        )
    except ValueError as error:
        print(f"hint-train: error: {error}", file=sys.stderr)
        return 2
    if args.tensorboard is not None:
        try:
            import tensorboard  # noqa: F401  (checked before any long work)
        except ImportError:
            print(
                "hint-train: error: --tensorboard needs the tensorboard package; "
                "pip install tensorboard",
                file=sys.stderr,
            )
            return 2
    if (args.out / "config.json").exists() and not args.overwrite:
        print(
            f"hint-train: error: {args.out} already holds a saved policy; pass --overwrite "
            "to replace it, or choose another --out",
            file=sys.stderr,
        )
        return 2
    if args.out.exists() and not args.out.is_dir():
        print(f"hint-train: error: --out {args.out} is a file, not a directory", file=sys.stderr)
        return 2
    # found now, not when the policy is saved at the end of the run
    problem = check_output_file(args.out / "config.json", overwrite=True, option="--out")
    if problem is not None:
        print(f"hint-train: error: {problem}", file=sys.stderr)
        return 2
    from hint_envs.data.minari_io import is_minari_source

    source = args.demo_file
    if not is_minari_source(source):
        source = Path(source)
        if not source.is_file():
            print(f"hint-train: error: no demonstration file at {source}", file=sys.stderr)
            return 2

    # Sleeping (not spinning) OpenMP workers: on a machine shared with other processes,
    # spinning workers slow torch down by an order of magnitude. Must precede torch's import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from hint_envs.data.chunks import ChunkDataset
    from policies.devices import check_device
    from policies.training import CheckpointMismatchError, TrainingDivergedError, train

    try:
        check_device(train_config.device)
    except ValueError as error:
        print(f"hint-train: error: --device: {error}", file=sys.stderr)
        return 2

    # one hint-train per --out: a second one stops here, before reading any data
    with output_lock(args.out, "hint-train"):
        try:
            dataset = ChunkDataset(
                source,
                obs_horizon=config.obs_horizon,
                horizon=config.horizon,
                gains=config.gains,
                num_demos=args.num_demos,
            )
        except (ValueError, TypeError, OSError, ImportError) as error:
            print(f"hint-train: error: cannot read {args.demo_file}: {error}", file=sys.stderr)
            return 2
        print(f"{dataset}")
        problem = _data_fits_its_env(dataset)
        if problem is not None:
            print(f"hint-train: error: {problem}", file=sys.stderr)
            return 2
        start = time.perf_counter()
        try:
            policy = train(
                dataset,
                config,
                train_config,
                out_dir=args.out,
                seed=args.seed,
                progress=not args.no_progress,
                tensorboard_dir=args.tensorboard,
                resume=args.resume,
            )
        except CheckpointMismatchError as error:
            print(f"hint-train: error: cannot resume: {error}", file=sys.stderr)
            return 2
        except ResourceError as error:
            print(f"hint-train: error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # a disk that fills up while training: one line
            kept = _last_checkpoint(args.out)
            print(f"hint-train: error: cannot write to {args.out}: {error}{kept}", file=sys.stderr)
            return 1
        except TrainingDivergedError as error:
            print(f"hint-train: error: {error}{_last_checkpoint(args.out)}", file=sys.stderr)
            return 1
        print(
            f"trained in {time.perf_counter() - start:.1f} s, final loss "
            f"{policy.train_history[-1]['loss']:.4f}; saved to {args.out}"
        )
        return 0


def _last_checkpoint(out: Path) -> str:
    """``"; the last checkpoint is <path>"`` for the end of an error line ("" if none)."""
    from policies.training import CHECKPOINTS, latest_checkpoints

    found = latest_checkpoints(out / CHECKPOINTS)
    return f"; the last checkpoint is {found[0]}" if found else ""


def _data_fits_its_env(dataset) -> str | None:
    """Why the demonstrations cannot be the environment they name (None if they can): made
    once here, when its simulator is installed, so data labelled with another env's id
    stops now rather than at evaluation. (The library's ``train`` never makes the env: it
    also runs where the simulator is not installed.)"""
    import gymnasium as gym

    from hint_envs.core import EnvBounds

    if dataset.env_id is None:
        return None
    try:
        env = gym.make(dataset.env_id, **dict(dataset.env_kwargs or {}))
    except gym.error.DependencyNotInstalled:
        return None  # nothing to compare with here
    except (TypeError, ValueError, gym.error.Error) as error:
        kwargs = dataset.env_kwargs
        return f"the data names {dataset.env_id} with {kwargs}, which cannot be made: {error}"
    try:
        real = EnvBounds.from_env(env)
    finally:
        env.close()
    ours = dataset.bounds
    if ours is not None and (ours.d_obs, ours.d_u, ours.d_x) != (real.d_obs, real.d_u, real.d_x):
        return (
            f"the data is labelled {dataset.env_id} but does not fit it: (d_obs, d_u, d_x) = "
            f"{(ours.d_obs, ours.d_u, ours.d_x)} in the file, {(real.d_obs, real.d_u, real.d_x)} "
            "in the environment"
        )
    return None


def build_eval_parser() -> argparse.ArgumentParser:
    """The argument parser of ``hint-eval``."""
    parser = argparse.ArgumentParser(
        prog="hint-eval",
        description="Evaluate a saved policy on its environment (the env id and kwargs it "
        "was trained for) from the initial states of consecutive seeds, with replica noise "
        "at its training sigma unless --sigma says otherwise.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("policy_dir", type=Path, help="a folder saved by hint-train")
    parser.add_argument("--episodes", type=int, default=50, help="episodes (one per seed)")
    parser.add_argument(
        "--seed-start",
        type=int,
        default=100_000,
        help="first seed (100000: Diffusion Policy's PushT test seeds)",
    )
    parser.add_argument(
        "--sigma",
        type=float,
        default=None,
        help="test-time replica noise (default: the policy's training sigma; 0: train-only noise)",
    )
    parser.add_argument(
        "--noise",
        choices=NOISE_LAWS,
        default=None,
        help="law of the test-time noise (default: the policy's training law)",
    )
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of the sampler")
    parser.add_argument(
        "--num-envs",
        type=int,
        default=25,
        help="episodes run side by side, one batched predict call per decision (the "
        "sampler is reseeded per group of this many: results depend on it, not on --workers)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes the groups of --num-envs episodes run in, one torch thread each",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (--workers 1)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the result, as JSON, here (default: not written)",
    )
    return parser


@command_line_errors("hint-eval")
def eval_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hint-eval``; returns the exit status."""
    args = build_eval_parser().parse_args(argv)
    for name in ("episodes", "num_envs", "threads", "workers"):
        if getattr(args, name) < 1:
            print(f"hint-eval: error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if args.sigma is not None and not (math.isfinite(args.sigma) and args.sigma >= 0):
        print(
            f"hint-eval: error: --sigma must be a finite number >= 0, got {args.sigma}",
            file=sys.stderr,
        )
        return 2
    for name in ("seed_start", "sample_seed"):
        if getattr(args, name) < 0:
            option = f"--{name.replace('_', '-')}"
            print(
                f"hint-eval: error: {option} must be >= 0, got {getattr(args, name)}",
                file=sys.stderr,
            )
            return 2
    if args.json is not None:  # checked before any rollout, not after them
        problem = check_output_file(args.json, overwrite=True, option="--json", example="eval.json")
        if problem is not None:
            print(f"hint-eval: error: {problem}", file=sys.stderr)
            return 2
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    import hint_envs  # noqa: F401  (registers the environments)
    from hint_envs.evaluation import format_metrics
    from policies.evaluation import evaluate_trained
    from policies.serialization import load_policy

    torch.set_num_threads(args.threads)
    try:
        policy = load_policy(args.policy_dir)
    except (ValueError, TypeError, OSError) as error:
        print(f"hint-eval: error: cannot load {args.policy_dir}: {error}", file=sys.stderr)
        return 2
    if policy.env_id is None:
        print(f"hint-eval: error: {args.policy_dir} records no env id", file=sys.stderr)
        return 2
    config = policy.config
    sigma = config.sigma if args.sigma is None else args.sigma
    law = getattr(config, "noise_law", "gaussian") if args.noise is None else args.noise
    seeds = list(range(args.seed_start, args.seed_start + args.episodes))
    try:  # settings the policy's env refuses (e.g. env_kwargs it does not know) fail here
        result = evaluate_trained(
            policy,
            seeds,
            sigma=sigma,
            noise_law=law,
            expert=False,
            num_envs=min(args.num_envs, args.episodes),
            workers=args.workers,
            sample_seed=args.sample_seed,
        )
    except ValueError as error:
        print(f"hint-eval: error: cannot evaluate {args.policy_dir}: {error}", file=sys.stderr)
        return 2
    noise = f"σ = {sigma:g}" + (f" ({law})" if sigma > 0 else "")
    print(f"{policy.env_id} {policy.env_kwargs or ''}, seeds {seeds[0]}-{seeds[-1]}, {noise}")
    print(format_metrics(result.metrics))
    if args.json is not None:
        atomic_write_bytes(args.json, json.dumps(result.to_dict(), indent=1).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
