"""Learning curve at CPU scale: the score of a HINT policy vs training steps.

Trains one DDPM chunking policy (HINT: (u_bar, x_bar, K) chunks, data noise sigma) on a
reference dataset with checkpoints, then evaluates every checkpoint (and the final model)
on the test seeds 100000.. (for PushT, Diffusion Policy's) with the same replica noise
sigma at test time. The checkpoints are points of one cosine learning-rate schedule over
``--steps``, not separate runs of fewer steps. Writes a Markdown table, a plot and a JSON
of the figures. The environment is the dataset's (PushT: mean max coverage and success;
Robomimic: success).

Usage::

    python benchmarks/learning_curve.py --steps 4000 --every 1000        # PushT
    python benchmarks/learning_curve.py --dataset runs/robomimic_data/robomimic_can_200.hdf5 \
        --steps 8000 --every 2000 --blocks 2 --out docs/results/can_learning_curve  # Can
    (the Can file: docs/results/robomimic_expert.md collects it)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from bench_cli import parse_dataclass_args

from hint_envs._io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Args:
    dataset: str = "benchmarks/data/pusht_state_200.hdf5"
    """demonstration file (repository-relative or absolute); its env is evaluated"""
    num_demos: int = 200
    """demonstrations trained on (the first N of the file)"""
    sigma: float = 0.1
    """data noise and replica noise, normalised units"""
    denoiser: str = "mlp"
    """mlp (CPU) or unet1d"""
    width: int = 1024
    """MLP denoiser width"""
    blocks: int = 1
    """MLP denoiser residual blocks of that width"""
    steps: int = 4000
    """training steps (one cosine schedule)"""
    every: int = 1000
    """evaluate a checkpoint every this many steps"""
    batch_size: int = 128
    """samples per training step"""
    episodes: int = 50
    """test seeds 100000 .. 100000 + episodes - 1"""
    threads: int = 2
    """torch threads"""
    seed: int = 0
    """training and sampling seed"""
    out: str = "docs/results/pusht_learning_curve"
    """output stem: <out>.md, <out>.png, <out>.json"""
    work: str = "runs/learning_curve"
    """folder for the checkpoints"""


def main() -> None:
    args = parse_dataclass_args(Args, __doc__)

    import torch

    import hint_envs  # noqa: F401
    from hint_envs.data import ChunkDataset, read_demonstrations
    from hint_envs.evaluation import evaluate
    from policies.config import DDPMPolicyConfig, TrainConfig
    from policies.serialization import load_policy
    from policies.training import train

    torch.set_num_threads(args.threads)
    config = DDPMPolicyConfig(
        denoiser=args.denoiser,
        widths=(args.width,) * args.blocks,
        obs_horizon=2,
        horizon=16,
        chunk_length=8,
        diffusion_steps=100,
        scheduler="ddpm",
        prediction_type="epsilon",  # the published curves; benchmarks/recipe.py: the recipe
        n_aug=4,
        gains=True,
        sigma=args.sigma,
    )
    dataset = ChunkDataset(
        REPO / args.dataset,
        config.obs_horizon,
        config.horizon,
        gains=True,
        num_demos=args.num_demos,
    )
    train_config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=1e-3,
        warmup_steps=50,
        checkpoint_every=args.every,
        num_threads=args.threads,
    )
    env_id = read_demonstrations(REPO / args.dataset).env_id
    coverage = env_id == "hint_envs/PushT-v0"
    work = REPO / args.work
    start = time.perf_counter()
    policy = train(dataset, config, train_config, out_dir=work, seed=args.seed)
    train_s = time.perf_counter() - start

    checkpoints = sorted((work / "checkpoints").glob("step_*"))
    points = [(int(p.name.split("_")[1]), p) for p in checkpoints] + [(args.steps, None)]
    rows = []
    for step, path in points:
        model = policy if path is None else load_policy(path)
        start = time.perf_counter()
        result = evaluate(
            model,
            env_id,
            seeds=list(range(100_000, 100_000 + args.episodes)),
            chunk_length=config.chunk_length,
            obs_horizon=config.obs_horizon,
            gains=True,
            sigma=args.sigma,
            noise_scale=np.asarray(model.noise_scale, dtype=float),
            expert=False,
            num_envs=args.episodes,
            progress=False,
            sample_seed=args.seed,
        )
        m = result.metrics
        rows.append(
            {
                "step": step,
                # mean max coverage is PushT's score; elsewhere max_reward is just success
                "max_reward": m["max_reward"]["mean"] if coverage else None,
                "max_reward_std": m["max_reward"]["std"] if coverage else None,
                "success": m["success"]["mean"],
                "eval_s": time.perf_counter() - start,
            }
        )
        score = f"mean max coverage {rows[-1]['max_reward']:.3f}, " if coverage else ""
        print(f"step {step}: {score}success {rows[-1]['success']:.2f}", flush=True)
    losses = [(h["step"], h["loss"]) for h in policy.train_history]
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = {
        "args": asdict(args),
        "env_id": env_id,
        "train_s": train_s,
        "rows": rows,
        "loss": losses,
    }
    atomic_write_bytes(out.with_suffix(".json"), json.dumps(figures, indent=2).encode())
    _plot(rows, losses, out.with_suffix(".png"), args, env_id)
    _table(rows, train_s, out.with_suffix(".md"), args, env_id)
    print(f"written: {out.with_suffix('.md')}, {out.with_suffix('.png')}")


def _task(env_id: str) -> str:
    return env_id.split("/")[-1].removesuffix("-v0").removeprefix("Robomimic")


def _plot(rows, losses, path: Path, args: Args, env_id: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    steps = [r["step"] for r in rows]
    if rows[0]["max_reward"] is not None:
        ax1.plot(steps, [r["max_reward"] for r in rows], "o-", label="mean max coverage")
        ax1.axhline(0.8, color="grey", lw=0.8, ls=":", label="issue goal 0.8")
    else:
        ax1.axhline(0.9, color="grey", lw=0.8, ls=":", label="issue goal 0.9")
    ax1.plot(steps, [r["success"] for r in rows], "s--", label="success")
    ax1.set(xlabel="training step", ylabel=f"score ({args.episodes} test seeds)", ylim=(0, 1))
    ax1.set_title(f"HINT on {_task(env_id)}, σ = {args.sigma:g}, N = {args.num_demos}")
    ax1.legend(fontsize=8)
    ax2.plot(*zip(*losses, strict=True))
    ax2.set(xlabel="training step", ylabel="denoising loss", yscale="log", title="training loss")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _table(rows, train_s: float, path: Path, args: Args, env_id: str) -> None:
    coverage = rows[0]["max_reward"] is not None
    lines = [
        f"# {_task(env_id)} learning curve (CPU scale)",
        "",
        f"HINT (DDPM over (ū, x̄, K) chunks), {args.denoiser} denoiser, {args.blocks} block(s) "
        f"of width {args.width}, "
        f"σ = {args.sigma:g} in training and at test time, the first {args.num_demos} "
        f"demonstrations of `{args.dataset}`, {args.steps} steps of batch {args.batch_size} "
        f"({train_s / 60:.1f} min on {args.threads} CPU threads), evaluated on the test seeds "
        f"100000–{100000 + args.episodes - 1}. Made by:",
        "",
        "```bash",
        f"python benchmarks/learning_curve.py --dataset {args.dataset} "
        f"--num-demos {args.num_demos} --steps {args.steps} --every {args.every} "
        f"--sigma {args.sigma:g} --width {args.width} --blocks {args.blocks} "
        f"--episodes {args.episodes} --threads {args.threads} --out {args.out} "
        f"--work {args.work}",
        "```",
        "",
        "| training step | "
        + ("mean max coverage | " if coverage else "")
        + "success | eval time |",
        "|---|---|---|" + ("---|" if coverage else ""),
    ]
    for r in rows:
        score = f"{r['max_reward']:.3f} ± {r['max_reward_std']:.3f} | " if coverage else ""
        lines.append(f"| {r['step']} | {score}{r['success']:.2f} | {r['eval_s']:.0f} s |")
    lines += ["", f"![learning curve]({path.with_suffix('.png').name})", ""]
    atomic_write_bytes(path, "\n".join(lines).encode())


if __name__ == "__main__":
    main()
