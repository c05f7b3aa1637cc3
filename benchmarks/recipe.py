"""Training-recipe ablations at CPU scale: one factor at a time, score vs training minutes.

Each *variant* is the library's default policy and training configuration
(:class:`policies.config.DDPMPolicyConfig`, :class:`policies.config.TrainConfig`) with a
few fields changed, trained on a demonstration file with checkpoints, every checkpoint
evaluated with replica noise at the training sigma. Tuning uses **validation seeds**
(200000.., not the Diffusion Policy test seeds 100000..) so the test seeds stay unseen;
``--seeds-start 100000`` gives the test figures. One JSON record per (variant, seed) is
appended to ``<out>.jsonl`` (a rerun skips those already there), and ``<out>.md`` /
``<out>.png`` show the table and the time-to-score curves.

``--task`` picks the task's demonstration file and variants: ``pusht`` (the PushT keypoint
file) or ``lift`` / ``can`` / ``square`` (the Robomimic files collected with
``rotation="rot6d"``). Evaluation runs in ``--eval-workers`` processes (the same episodes
for any number, :func:`hint_envs.evaluation.rollout_policy`).

Usage::

    python benchmarks/recipe.py --variants base epsilon             # PushT variants
    python benchmarks/recipe.py --task can --variants base rotvec   # Robomimic Can
    python benchmarks/recipe.py --task can --list                   # what they change
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hint_envs._io import atomic_write_bytes

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Variant:
    """A configuration to measure: the defaults with ``policy`` / ``train`` fields changed."""

    factor: str
    """the factor this variant changes (a row group of the table)"""
    setting: str
    """what it sets, in words"""
    policy: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    """demonstration file (None: the script's --dataset)"""
    num_demos: int | None = None
    """first N demonstrations (None: all)"""


PUSHT_KP = "benchmarks/data/pusht_keypoints_1000.hdf5"
PUSHT_STATE = "benchmarks/data/pusht_state_200.hdf5"


def robomimic_file(task: str, rotation: str = "rot6d") -> str:
    """The Robomimic reference file of ``task`` (``"rot6d"``: committed under
    benchmarks/data/; ``"rotvec"``: robomimic's own representation, collected into
    runs/robomimic_data/ by the command in docs/results/recipe.md)."""
    if rotation == "rot6d":
        return f"benchmarks/data/robomimic_{task}_rot6d_200.hdf5"
    return f"runs/robomimic_data/robomimic_{task}_200.hdf5"


#: The PushT ablations; ``base`` is the library default.
VARIANTS: dict[str, Variant] = {
    "base": Variant("(defaults)", "the library defaults"),
    "epsilon": Variant("prediction target", "epsilon (noise)", {"prediction_type": "epsilon"}),
    "state_obs": Variant(
        "observation", "state (x, y, θ) instead of keypoints", dataset=PUSHT_STATE
    ),
    "demos_200": Variant("demonstrations", "200", num_demos=200),
    "demos_500": Variant("demonstrations", "500", num_demos=500),
    "width_512": Variant("denoiser", "MLP 3×512", {"widths": (512, 512, 512)}),
    "mlp_2x1024": Variant(
        "denoiser",
        "MLP 2×1024, 16000 steps (the recipe before 3×512)",
        {"widths": (1024, 1024)},
        train={"steps": 16000},
    ),
    "width_2048": Variant("denoiser", "MLP 2×2048", {"widths": (2048, 2048)}),
    "unet_small": Variant(
        "denoiser", "U-Net (32, 64, 128)", {"denoiser": "unet1d", "down_dims": (32, 64, 128)}
    ),
    "chunk_4": Variant("chunk length", "execute 4 of 16", {"chunk_length": 4}),
    "horizon_8": Variant("horizon", "predict 8, execute 8", {"horizon": 8, "chunk_length": 8}),
    "ddpm_100": Variant("sampler", "DDPM, 100 steps", {"scheduler": "ddpm"}),
    "lr_3e-4": Variant("learning rate", "3e-4", train={"lr": 3e-4}),
    "batch_128": Variant("batch size", "128", train={"batch_size": 128}),
    "no_ema": Variant("EMA", "off", {"ema": False}),
    "sigma_0.01": Variant("σ (replica)", "0.01", {"sigma": 0.01}),
    "sigma_0.03": Variant("σ (replica)", "0.03", {"sigma": 0.03}),
    "sigma_0.1": Variant("σ (replica)", "0.1", {"sigma": 0.1}),
}


def robomimic_variants(task: str) -> dict[str, Variant]:
    """The ablations of a Robomimic task; ``base`` is the library default on its file."""
    # measured with the 2 x 1024 MLP for 16000 steps (docs/results/recipe.md), before the
    # PushT recipe made 3 x 512 for 32000 steps the library default
    measured = {"widths": (1024, 1024)}
    return {
        "base": Variant(
            "(recipe)", "MLP 2×1024, 16000 steps, 6-D orientations", measured, {"steps": 16000}
        ),
        "rotvec": Variant(
            "orientation",
            "robomimic's quaternions and rotation vectors",
            measured,
            {"steps": 16000},
            dataset=robomimic_file(task, "rotvec"),
        ),
        "demos_100": Variant("demonstrations", "100", measured, {"steps": 16000}, num_demos=100),
        "width_512": Variant(
            "denoiser", "MLP 3×512", {"widths": (512, 512, 512)}, {"steps": 16000}
        ),
        "chunk_4": Variant(
            "chunk length", "execute 4 of 16", {**measured, "chunk_length": 4}, {"steps": 16000}
        ),
        "sigma_0.03": Variant("σ (replica)", "0.03", {**measured, "sigma": 0.03}, {"steps": 16000}),
    }


#: task -> (default demonstration file, its variants)
TASKS: dict[str, tuple[str, dict[str, Variant]]] = {
    "pusht": (PUSHT_KP, VARIANTS),
    **{t: (robomimic_file(t), robomimic_variants(t)) for t in ("lift", "can", "square")},
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--task", choices=sorted(TASKS), default="pusht", help="the task")
    parser.add_argument("--variants", nargs="+", default=["base"], help="names from --list")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    parser.add_argument(
        "--dataset", default=None, help="default demonstration file (None: the task's)"
    )
    parser.add_argument("--steps", type=int, default=None, help="training steps (None: default)")
    parser.add_argument("--every", type=int, default=1000, help="checkpoint every K steps")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seeds-start", type=int, default=200_000, help="first eval seed")
    parser.add_argument("--train-seeds", type=int, nargs="+", default=[0], help="seeds")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--eval-workers", type=int, default=1, help="evaluation processes (one thread each)"
    )
    parser.add_argument(
        "--num-envs", type=int, default=25, help="evaluation episodes per predict batch"
    )
    parser.add_argument(
        "--sample-seeds",
        type=int,
        default=1,
        help="sampler seeds per checkpoint (training seed s: s, s+1, ...); scores are "
        "their mean (one draw of the sampler varies as much as a training seed)",
    )
    parser.add_argument(
        "--inference-steps",
        type=int,
        default=None,
        help="evaluate with this many DDIM steps (None: the policy's sampler)",
    )
    parser.add_argument("--out", default="docs/results/recipe_runs", help="output stem")
    parser.add_argument("--work", default="runs/recipe", help="folder for checkpoints")
    return parser


def run_variant(name: str, variant: Variant, args: argparse.Namespace, seed: int) -> dict:
    """Train ``variant`` with checkpoints and evaluate each; the record of the run."""
    import torch

    import hint_envs  # noqa: F401
    from hint_envs.data import ChunkDataset
    from policies.config import DDPMPolicyConfig, TrainConfig
    from policies.evaluation import evaluate_trained
    from policies.serialization import load_policy
    from policies.training import train

    torch.set_num_threads(args.threads)
    config = DDPMPolicyConfig(**variant.policy)
    train_fields = {"num_threads": args.threads, "checkpoint_every": args.every, **variant.train}
    if args.steps is not None:  # --steps wins over a variant's own budget
        train_fields["steps"] = args.steps
    train_config = TrainConfig(**train_fields)
    dataset_path = variant.dataset or args.dataset
    dataset = ChunkDataset(
        REPO / dataset_path,
        config.obs_horizon,
        config.horizon,
        gains=config.gains,
        num_demos=variant.num_demos,
    )
    work = REPO / args.work / f"{name}_seed{seed}"
    if (work / "config.json").exists():  # trained already (e.g. by hint-train): evaluate it
        policy = load_policy(work)
        record = json.loads((work / "training.json").read_text())
        trained_with = json.loads(json.dumps(train_config.to_dict()))  # tuples as lists
        if policy.config != config or record["train_config"] != trained_with:
            raise SystemExit(f"recipe.py: {work} was trained with other settings than {name}")
        train_s, final_loss = record["seconds"], record["history"][-1]["loss"]
        print(f"{name} seed {seed}: trained already in {work}, evaluating its checkpoints")
    else:
        start = time.perf_counter()
        policy = train(dataset, config, train_config, out_dir=work, seed=seed)
        train_s, final_loss = time.perf_counter() - start, policy.train_history[-1]["loss"]

    checkpoints = sorted((work / "checkpoints").glob("step_*"))
    points = [(int(p.name.split("_")[1]), p) for p in checkpoints] + [(train_config.steps, None)]
    seeds = list(range(args.seeds_start, args.seeds_start + args.episodes))
    curve = []
    sample_seeds = [seed + i for i in range(args.sample_seeds)]
    for step, path in points:
        model = policy if path is None else load_policy(path)
        if args.inference_steps is not None:
            model.set_sampler("ddim", args.inference_steps)
        start = time.perf_counter()
        scores = [
            evaluate_trained(
                model,
                seeds,
                expert=False,
                num_envs=min(args.num_envs, args.episodes),
                progress=False,
                workers=args.eval_workers,
                sample_seed=sample_seed,
            ).metrics
            for sample_seed in sample_seeds
        ]
        max_reward = [m["max_reward"]["mean"] for m in scores]
        success = [m["success"]["mean"] for m in scores]
        curve.append(
            {
                "step": step,
                # the steps cost the same, so a checkpoint's training time is pro rata
                "train_min": train_s / 60 * step / train_config.steps,
                "max_reward": float(np.mean(max_reward)),
                "success": float(np.mean(success)),
                "max_reward_per_sample_seed": max_reward,
                "success_per_sample_seed": success,
                "eval_s": time.perf_counter() - start,
            }
        )
        print(
            f"{name} seed {seed} step {step}: max reward {curve[-1]['max_reward']:.3f}, "
            f"success {curve[-1]['success']:.2f}",
            flush=True,
        )
    return {
        "variant": name,
        **asdict(variant),
        "dataset": dataset_path,
        "env_id": dataset.env_id,
        "num_demos": len(dataset.demos),
        "seed": seed,
        "eval_seeds": [seeds[0], seeds[-1]],
        "eval_workers": args.eval_workers,
        "sample_seeds": sample_seeds,
        "inference_steps": args.inference_steps,
        "policy_config": config.to_dict(),
        "train_config": train_config.to_dict(),
        "train_s": train_s,
        "curve": curve,
        "final_loss": final_loss,
    }


def read_records(path: Path) -> list[dict]:
    """The records of ``path`` (JSON lines; a line cut short by a kill is skipped)."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def write_report(records: list[dict], stem: Path) -> None:
    """``<stem>.md`` (one row per variant: mean ± std over seeds of the last checkpoint,
    and the best checkpoint) and ``<stem>.png`` (score vs training minutes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_variant: dict[str, list[dict]] = {}
    for record in records:
        by_variant.setdefault(record["variant"], []).append(record)
    env_id = records[0].get("env_id", "PushT") if records else ""
    score = "mean max coverage" if "PushT" in env_id else "max reward"
    lines = [
        f"| factor | setting | {score} (final) | success (final) | best success "
        "(at min) | train min | seeds | eval seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, runs in by_variant.items():
        final_cov = [r["curve"][-1]["max_reward"] for r in runs]
        final_succ = [r["curve"][-1]["success"] for r in runs]
        best = max((p for r in runs for p in r["curve"]), key=lambda p: p["success"])
        lines.append(
            f"| {runs[0]['factor']} | {runs[0]['setting']} (`{name}`) | "
            f"{np.mean(final_cov):.3f} ± {np.std(final_cov):.3f} | "
            f"{np.mean(final_succ):.2f} ± {np.std(final_succ):.2f} | "
            f"{best['success']:.2f} ({best['train_min']:.1f}) | "
            f"{np.mean([r['train_s'] for r in runs]) / 60:.1f} | "
            f"{', '.join(str(r['seed']) for r in runs)} | "
            f"{runs[0]['eval_seeds'][0]}–{runs[0]['eval_seeds'][1]} |"
        )
        # the mean over training seeds (checkpoints at the same steps), each seed faintly
        steps = sorted(set.intersection(*({p["step"] for p in r["curve"]} for r in runs)))
        for ax, key in zip(axes, ("max_reward", "success"), strict=True):
            at = [[next(p for p in r["curve"] if p["step"] == k) for k in steps] for r in runs]
            minutes = np.mean([[p["train_min"] for p in points] for points in at], axis=0)
            mean = np.mean([[p[key] for p in points] for points in at], axis=0)
            (line,) = ax.plot(minutes, mean, "o-", ms=3, label=f"{name} ({len(runs)} seeds)")
            if len(runs) > 1:
                for points in at:
                    ax.plot(
                        minutes,
                        [p[key] for p in points],
                        "-",
                        lw=0.6,
                        alpha=0.4,
                        color=line.get_color(),
                    )
    threads = sorted({r["train_config"]["num_threads"] for r in records})
    xlabel = f"training minutes ({'/'.join(map(str, threads))} CPU thread(s))"
    axes[0].set(xlabel=xlabel, ylabel=score)
    axes[1].set(xlabel=xlabel, ylabel="success")
    for ax in axes:
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(stem.with_suffix(".png"), dpi=110)
    plt.close(fig)
    atomic_write_bytes(stem.with_suffix(".md"), ("\n".join(lines) + "\n").encode())


def main() -> None:
    args = _parser().parse_args()
    default_dataset, variants = TASKS[args.task]
    args.dataset = args.dataset or default_dataset
    if args.list:
        for name, variant in variants.items():
            print(f"{name:12s} {variant.factor}: {variant.setting}")
        return
    unknown = [v for v in args.variants if v not in variants]
    if unknown:
        raise SystemExit(f"recipe.py: unknown variants {unknown}; see --list")
    stem = REPO / args.out
    stem.parent.mkdir(parents=True, exist_ok=True)
    log = stem.with_suffix(".jsonl")
    done = {(r["variant"], r["seed"], r["eval_seeds"][0]) for r in read_records(log)}
    for name in args.variants:
        for seed in args.train_seeds:
            if (name, seed, args.seeds_start) in done:
                print(f"{name} seed {seed}: done already, skipped")
                continue
            record = run_variant(name, variants[name], args, seed)
            with open(log, "a") as f:
                f.write(json.dumps(record) + "\n")
            write_report(read_records(log), stem)
    write_report(read_records(log), stem)
    print(f"written: {stem.with_suffix('.md')}, {stem.with_suffix('.png')}")


if __name__ == "__main__":
    main()
