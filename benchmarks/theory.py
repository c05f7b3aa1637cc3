"""The HINT theory's small examples, measured: compounding error, TV of replica noising and a
pure bifurcation. Writes docs/results/theory.md with its plots.

Three sections (``--sections``), each a claim of Block et al. (2023, arXiv 2307.14619)
checked on the library's own environments, learners and metrics:

``scalar``
    ``hint_envs/ScalarLinear-v0``. With ``a = 0.9`` and the zero expert, the
    mean-parametrised learner ``0.15 x + eps`` drifts like ``1.05^t`` while the
    conditional-sampling learner ``Bernoulli(0.15 x) + eps`` (same mean) stays ``O(eps)``
    with probability ``>= 1 - 1.5 t eps`` (:mod:`policies.analytic`). With ``a = 2``, an
    input error ``delta`` in an executed chunk grows like ``2^t`` without feedback gains and
    stays bounded with the synthesised ones (the chunk run by
    :class:`~hint_envs.wrappers.PrimitiveControllerWrapper`).
``tv``
    ``pi_sigma(x) = pi(x + sigma w)`` is total-variation continuous:
    ``TV(pi_sigma(x), pi_sigma(x')) <= |x - x'| / (2 sigma)``, measured on the worst
    policy there is, a step (a mode choice with a sharp boundary).
``bifurcation``
    ``hint_envs/Bifurcation-v0``: DDPM chunking policies trained on expert data that
    passes a disc obstacle on the left or the right (the side a sharp function of the
    start), raw-input chunks vs primitive-controller chunks, each over replica noise sigma
    (sigma = 0: none), ``--seeds`` training seeds: collision rate, success,
    ``D_train,eps`` and ``D_test,eps`` (:mod:`hint_envs.evaluation.metrics`), and the
    rollouts drawn on the obstacle picture.

Each bifurcation run appends a record to ``<work>/bifurcation.jsonl`` (a rerun with the
same settings skips the runs it has), so an interrupted benchmark resumes.

Usage::

    python benchmarks/theory.py                        # everything, ~10 min on 2 cores
    python benchmarks/theory.py --sections scalar tv   # the analytic parts, seconds
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch is imported anywhere

import hashlib
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from leaderboard_lib.runs import cpu_name
from scipy.stats import norm

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs._cli import interrupted
from hint_envs._io import atomic_write_bytes, atomic_write_json
from hint_envs.core import NOISE_LAWS, CompositeActionLayout, Primitives
from hint_envs.experts import make_expert
from hint_envs.synthesis import synthesize
from hint_envs.wrappers import PrimitiveControllerWrapper
from policies.analytic import ConditionalSamplingLearner, MeanParametrisedLearner

REPO = Path(__file__).resolve().parents[1]
SCALAR_ID = "hint_envs/ScalarLinear-v0"
BIFURCATION_ID = "hint_envs/Bifurcation-v0"
Section = Literal["scalar", "tv", "bifurcation"]

logger = logging.getLogger("theory")


@dataclass
class Args:
    sections: tuple[Section, ...] = ("scalar", "tv", "bifurcation")
    """which examples to run (the report keeps the others' last results)"""
    out: str = "docs/results/theory"
    """report stem: <out>.md, <out>.json and <out>_*.png"""
    work: str = "runs/theory"
    """folder of the bifurcation runs' records (resumable)"""
    seeds: int = 3
    """training seeds per bifurcation policy"""
    sigmas: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2)
    """replica noise levels of the bifurcation policies (normalised units; 0: none)"""
    noise_laws: tuple[str, ...] = ("gaussian", "uniform")
    """laws of the bifurcation policies' noise (sigma > 0): each model is evaluated with
    replica noise of its law and train-only (clean observations)"""
    demos: int = 100
    """expert demonstrations the bifurcation policies learn from"""
    steps: int = 1500
    """training steps per bifurcation policy"""
    episodes: int = 50
    """bifurcation test episodes per policy (seeds 100000 on)"""
    workers: int = 2
    """processes training bifurcation policies side by side (1: this process)"""
    test_width: float = 0.1
    """bifurcation test starts: y_0 ~ U[-w, w], the band round the modes' boundary"""
    eps_state: float = 0.5
    """D_test threshold in state units (position m, velocity m/s)"""
    eps_action: float = 0.25
    """D_train threshold on a chunk of nominal inputs (m/s², Euclidean over the chunk)"""
    eps_scalar: float = 0.001
    """the learners' training error on the zero trajectory (scalar example)"""
    rollouts: int = 2000
    """rollouts of the conditional-sampling learner (scalar example)"""
    overwrite: bool = True
    """replace an existing report (records under --work are always kept)"""


# ----------------------------------------------------------------------------- scalar


def _scalar_envs(n: int, a: float, horizon: int) -> list[gym.Env]:
    return [
        gym.make(SCALAR_ID, a=a, initial_scale=0.0, max_episode_steps=horizon) for _ in range(n)
    ]


def rollout_learner(learner: Any, n: int, horizon: int, a: float = 0.9, seed: int = 0):
    """``(n, horizon + 1)`` states of ``n`` rollouts of an SB3-``predict`` learner from 0."""
    envs = _scalar_envs(n, a, horizon)
    obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(envs)])
    states = [obs[:, 0].copy()]
    for _ in range(horizon):
        actions, _ = learner.predict(obs)
        obs = np.stack([env.step(u)[0] for env, u in zip(envs, actions, strict=True)])
        states.append(obs[:, 0].copy())
    for env in envs:
        env.close()
    return np.stack(states, axis=1)


def growth_rate(values: np.ndarray, start: int) -> float:
    """``exp`` of the least-squares slope of ``log |values[t]|`` over ``t >= start``."""
    t = np.arange(start, len(values))
    return float(np.exp(np.polyfit(t, np.log(np.abs(values[start:])), 1)[0]))


def compounding(args: Args) -> dict[str, Any]:
    """Example 1 with ``a = 0.9``: the two learners of :mod:`policies.analytic`."""
    eps, horizon, slope, a = args.eps_scalar, 200, 0.15, 0.9
    mean_states = rollout_learner(MeanParametrisedLearner(slope, eps), 1, horizon, a)[0]
    sampler = ConditionalSamplingLearner(slope, eps, seed=0)
    sample_states = rollout_learner(sampler, args.rollouts, horizon, a)
    t = np.arange(horizon + 1)
    # before any 1 is drawn, x_t = eps (1 - a^t) / (1 - a) < 10 eps; a draw adds 1
    no_jump_path = eps * (1 - a**t) / (1 - a)
    stayed = np.cumprod(np.abs(sample_states - no_jump_path) < 1e-9, axis=1).mean(axis=0)
    exact = np.concatenate([[1.0], np.cumprod(1 - slope * no_jump_path[:-1])])
    bound = np.maximum(1 - slope * eps / (1 - a) * t, 0.0)
    predicted_mean = eps / (a + slope - 1) * ((a + slope) ** t - 1)
    return {
        "a": a,
        "slope": slope,
        "eps": eps,
        "horizon": horizon,
        "rollouts": args.rollouts,
        "mean_learner_states": mean_states.tolist(),
        "mean_learner_predicted": predicted_mean.tolist(),
        "mean_learner_rate": growth_rate(mean_states, horizon // 2),
        "sampling_median": np.median(np.abs(sample_states), axis=0).tolist(),
        "sampling_p90": np.quantile(np.abs(sample_states), 0.9, axis=0).tolist(),
        "sampling_mean": np.abs(sample_states).mean(axis=0).tolist(),
        "sampling_stayed": stayed.tolist(),
        "sampling_stayed_exact": exact.tolist(),
        "sampling_stayed_bound": bound.tolist(),
        "sampling_stayed_within_bound": bool(
            np.all(stayed >= bound - 3 * _binomial_se(stayed, args.rollouts))
        ),
    }


def _binomial_se(p: np.ndarray, n: int) -> np.ndarray:
    return np.sqrt(np.clip(p * (1 - p), 1.0 / n, None) / n)


def unstable_chunk(delta: float = 1e-6, horizon: int = 30, a: float = 2.0) -> dict[str, Any]:
    """Example 1 with ``a = 2``: one chunk of the expert's controllers, inputs off by delta.

    The expert (closed-loop pole 0.5) flies from ``x_0 = 1``; its TVLQR primitives
    (:func:`hint_envs.synthesis.synthesize`) are executed as one composite action of
    ``horizon`` controllers by :class:`~hint_envs.wrappers.PrimitiveControllerWrapper`,
    with ``u_bar + delta``, once with the gains and once as raw inputs (``gains=False``).
    """
    env_kwargs = {"a": a, "initial_scale": 0.0}
    expert = make_expert(SCALAR_ID, env_kwargs)
    demo = expert.demonstrate(0, initial_state=np.array([1.0]))
    primitives = synthesize(SCALAR_ID, demo)[:horizon]
    reference = np.append(
        demo.states[:horizon, 0],
        demo.final_state[0] if len(demo) == horizon else demo.states[horizon, 0],
    )
    result: dict[str, Any] = {"a": a, "delta": delta, "horizon": horizon}
    for gains in (False, True):
        env = gym.make(SCALAR_ID, max_episode_steps=horizon, **env_kwargs)
        wrapped = PrimitiveControllerWrapper(env, chunk_length=horizon, obs_horizon=1, gains=gains)
        wrapped.reset(seed=0, options={"state": np.array([1.0])})
        layout = CompositeActionLayout(1, 1, horizon, gains=gains)
        shifted = Primitives(primitives.u_bar + delta, primitives.x_bar, primitives.K)
        obs, _, _, _, info = wrapped.step(layout.pack(shifted))
        # inner_states are the states each controller saw, x_0 .. x_{H-1}; obs ends at x_H
        states = np.append(np.asarray(info["inner_states"])[:, 0], obs[-1, 0])
        gap = np.abs(states - reference[: len(states)])
        key = "gains" if gains else "raw"
        result[f"{key}_gap"] = gap.tolist()
        if not gains:
            result["raw_rate"] = growth_rate(gap[1:], 5)
        else:
            closed = a + primitives.K[:, 0, 0]
            rho = float(np.abs(closed).max())
            result["closed_loop_max"] = rho
            result["gains_bound"] = delta / (1 - rho)
        wrapped.close()
    return result


# ----------------------------------------------------------------------------- tv


def step_policy_tv(sigmas: tuple[float, ...], samples: int = 200_000, seed: int = 0):
    """TV between ``pi_sigma(-d/2)`` and ``pi_sigma(d/2)`` for the step ``pi(x) = [x > 0]``.

    Each distribution is estimated from ``samples`` draws of ``pi(x + sigma w)``; on the
    two atoms {0, 1} their total variation is ``|p_hat - q_hat|``, what
    :func:`~hint_envs.evaluation.metrics.tv_eps` with ``eps = 0`` returns for them. The
    exact value is ``2 Phi(d / (2 sigma)) - 1``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for sigma in sigmas:
        for ratio in (0.05, 0.1, 0.2, 0.5, 1.0, 2.0):  # ratio = the bound d / (2 sigma)
            d = 2 * sigma * ratio
            left = (-d / 2 + sigma * rng.standard_normal(samples)) > 0
            right = (d / 2 + sigma * rng.standard_normal(samples)) > 0
            rows.append(
                {
                    "sigma": sigma,
                    "distance": d,
                    "bound": min(ratio, 1.0),
                    "measured": float(abs(left.mean() - right.mean())),
                    "exact": float(2 * norm.cdf(ratio) - 1),
                }
            )
    return {"samples": samples, "rows": rows}


# ----------------------------------------------------------------------------- bifurcation

#: the two action representations of the paper's Fig. 3/4 (each run with and without noise)
KINDS = {"raw": False, "primitive": True}  # kind -> gains
TEST_SEEDS_START = 100000
#: starts y_0 in [-w, w] where the first decision's mode probability is measured
MODE_GRID_HALF_WIDTH = 0.1
MODE_SAMPLES = 200
#: states of the held-out expert demonstrations D_train is measured on (seeds 50000 on)
HELD_OUT_START = 50000


def bifurcation_config(kind: str, sigma: float, noise_law: str = "gaussian"):
    """The small DDPM chunking policy of the bifurcation runs (clean-chunk prediction,
    DDIM-10, a 3 x 256 MLP: the library's recipe at this task's size)."""
    from policies.config import DDPMPolicyConfig

    return DDPMPolicyConfig(
        obs_horizon=1,
        horizon=8,
        chunk_length=8,
        gains=KINDS[kind],
        widths=(256, 256, 256),
        sigma=sigma,
        noise_law=noise_law,
    )


def _demos(work: Path, count: int, seed: int) -> list:
    """``count`` successful expert demonstrations from ``seed`` on (cached in ``work``)."""
    from hint_envs.data import read_demonstrations, write_demonstrations
    from hint_envs.experts.collect import collect_demonstrations

    path = work / f"bifurcation_demos_{seed}_{count}.hdf5"
    if path.exists():
        return list(read_demonstrations(path).demos)
    demos = collect_demonstrations(
        BIFURCATION_ID, count, seed=seed, only_success=True, progress=False
    )
    write_demonstrations(path, demos, BIFURCATION_ID)
    return demos


def _run_key(run: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(run, sort_keys=True).encode()).hexdigest()[:12]


def _sample_u_bar(policy: Any, states: np.ndarray, k: int, sigma: float, seed: int) -> np.ndarray:
    """``(len(states) * k, chunk_length, d_u)`` nominal inputs of ``k`` chunks sampled at
    each state, each seen through the replica noise ``sigma`` of the policy's law
    (``pi_sigma``)."""
    from hint_envs.wrappers.replica_noise import add_replica_noise

    config = policy.config
    rng = np.random.default_rng([seed, 7])
    observed = add_replica_noise(
        np.repeat(states, k, axis=0), sigma, policy.noise_scale, rng, config.noise_law
    )
    policy.seed(seed)
    actions, _ = policy.predict(observed[:, None, :])
    layout = CompositeActionLayout(2, 4, config.chunk_length, gains=config.gains)
    return layout.unpack(actions).u_bar


def _collided(record: Any) -> bool:
    """Whether an episode ended in the obstacle (the env's ``info["collision"]``)."""
    if "final_info" in record.extra:
        return bool(record.extra["final_info"].get("collision", False))
    return bool(record.extra.get("collision", False))  # expert rollouts: the demo's attrs


def bifurcation_run(run: dict[str, Any], work: str) -> dict[str, Any]:
    """Train one policy (``run``: kind, sigma, seed and the settings) and measure it."""
    import torch

    from hint_envs.data import ChunkDataset
    from hint_envs.envs.bifurcation import BifurcationParams
    from hint_envs.evaluation import d_test_eps, d_train_eps, evaluate
    from hint_envs.experts.bifurcation import side_taken
    from policies.config import TrainConfig
    from policies.training import train

    torch.set_num_threads(1)
    started = time.perf_counter()
    work_dir = Path(work)
    law = run.get("noise_law", "gaussian")
    config = bifurcation_config(run["kind"], run["sigma"], law)
    demos = _demos(work_dir, run["demos"], 0)
    data = ChunkDataset(
        demos, config.obs_horizon, config.horizon, gains=config.gains, env_id=BIFURCATION_ID
    )
    train_config = TrainConfig(
        steps=run["steps"], num_threads=1, resample_noise=True, log_every=100
    )
    policy = train(data, config, train_config, seed=run["seed"], progress=False)
    train_seconds = time.perf_counter() - started

    env_kwargs = {"start_width": run["test_width"]}

    def evaluate_with(sigma: float, expert: bool) -> Any:
        return evaluate(
            policy,
            BIFURCATION_ID,
            seeds=range(TEST_SEEDS_START, TEST_SEEDS_START + run["episodes"]),
            chunk_length=config.chunk_length,
            obs_horizon=config.obs_horizon,
            gains=config.gains,
            sigma=sigma,
            noise_scale=policy.noise_scale,
            noise_law=law,
            num_envs=25,
            env_kwargs=env_kwargs,
            expert=expert,
            # the expert that made the data: its default timing depends on the start band
            expert_kwargs={"arrival_time": float(demos[0].attrs["arrival_time"])},
            progress=False,
            sample_seed=run["seed"],
        )

    result = evaluate_with(run["sigma"], expert=True)  # replica noise (HINT)
    imitator = [r.states for r in result.records]
    expert = [r.states for r in result.expert_records]
    collisions = [_collided(r) for r in result.records]
    expert_collisions = [_collided(r) for r in result.expert_records]
    d_test = d_test_eps(imitator, expert, run["eps_state"])
    # the same model on clean observations: the train-only ("deconvolution") arm
    clean = evaluate_with(0.0, expert=False) if run["sigma"] > 0 else result
    clean_states = [r.states for r in clean.records]
    train_only = {
        "success": float(np.mean([r.success for r in clean.records])),
        "collision": float(np.mean([_collided(r) for r in clean.records])),
        "d_test": float(np.max(d_test_eps(clean_states, expert, run["eps_state"]))),
    }

    # D_train: K policy chunks (through the replica noise) vs the expert's chunk, on the
    # states of held-out expert demonstrations at every decision point
    held_out = _demos(work_dir, 20, HELD_OUT_START)
    states, chunks = [], []
    for demo in held_out:
        for t in range(0, len(demo) - config.chunk_length + 1, config.chunk_length):
            states.append(demo.observations[t])
            chunks.append(demo.actions[t : t + config.chunk_length].ravel())
    u_bar = _sample_u_bar(policy, np.asarray(states), run["samples"], run["sigma"], run["seed"])
    d_train = d_train_eps(
        u_bar.reshape(len(states), run["samples"], -1), np.asarray(chunks), run["eps_action"]
    )

    # the first decision's mode, P(left | y_0), on a grid of starts across the boundary:
    # |P(left | y) - P(left | y')| is a lower bound on the TV the replica noise bounds
    grid = np.linspace(-MODE_GRID_HALF_WIDTH, MODE_GRID_HALF_WIDTH, 21)
    starts = np.zeros((len(grid), 4))
    starts[:, 1] = grid
    first = _sample_u_bar(policy, starts, MODE_SAMPLES, run["sigma"], run["seed"] + 1)
    p_left = (first[..., 1].sum(axis=-1) > 0).reshape(len(grid), MODE_SAMPLES).mean(axis=1)
    params = BifurcationParams()
    sides = [side_taken(r.states, params) for r in result.records]
    expert_sides = [side_taken(r.states, params) for r in result.expert_records]
    return {
        **run,
        "success": float(np.mean([r.success for r in result.records])),
        "collision": float(np.mean(collisions)),
        "expert_success": float(np.mean([r.success for r in result.expert_records])),
        "expert_collision": float(np.mean(expert_collisions)),
        "d_train": d_train,
        "d_train_by_eps": {
            str(e): d_train_eps(
                u_bar.reshape(len(states), run["samples"], -1), np.asarray(chunks), e
            )
            for e in (0.1, 0.25, 0.5, 1.0)
        },
        "d_test_by_eps": {
            str(e): float(np.max(d_test_eps(imitator, expert, e))) for e in (0.25, 0.5, 1.0)
        },
        "left": float(np.mean([side == "left" for side in sides])),
        "expert_left": float(np.mean([side == "left" for side in expert_sides])),
        "mode_grid": grid.tolist(),
        "mode_p_left": p_left.tolist(),
        "noise_scale_y": float(np.asarray(policy.noise_scale)[1]),
        "d_test": float(np.max(d_test)),
        "d_test_curve": d_test.tolist(),
        "train_only": train_only,
        "positions": [np.round(s[:, :2], 4).tolist() for s in imitator],
        "expert_positions": [np.round(s[:, :2], 4).tolist() for s in expert],
        "train_seconds": train_seconds,
        "seconds": time.perf_counter() - started,
    }


def bifurcation(args: Args) -> list[dict[str, Any]]:
    """Every (kind, sigma, seed) run, resumed from ``<work>/bifurcation.jsonl``."""
    from tqdm import tqdm

    from hint_envs._workers import worker_pool

    work = REPO / args.work
    work.mkdir(parents=True, exist_ok=True)
    _demos(work, args.demos, 0)  # collected once, before the workers start
    _demos(work, 20, HELD_OUT_START)
    settings = {
        "demos": args.demos,
        "steps": args.steps,
        "episodes": args.episodes,
        "test_width": args.test_width,
        "eps_state": args.eps_state,
        "eps_action": args.eps_action,
        "samples": 16,
    }
    runs = [
        # the key of a Gaussian run is what it was before laws existed
        {"kind": kind, "sigma": sigma, "seed": seed, **settings}
        | ({} if law == "gaussian" else {"noise_law": law})
        for kind in KINDS
        for law in args.noise_laws
        for sigma in args.sigmas
        if sigma > 0 or law == args.noise_laws[0]  # no noise, no law: once
        for seed in range(args.seeds)
    ]
    records_path = work / "bifurcation.jsonl"
    done: dict[str, dict] = {}
    if records_path.exists():
        for line in records_path.read_text().splitlines():
            if line.strip():
                record = json.loads(line)
                done[record["key"]] = record
    todo = [run for run in runs if _run_key(run) not in done]
    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="bifurcation runs", unit="run")
    with worker_pool(args.workers, "the bifurcation runs") as pool, open(records_path, "a") as out:
        results = (
            map(bifurcation_run, todo, [str(work)] * len(todo))
            if pool is None
            else pool.map(bifurcation_run, todo, [str(work)] * len(todo))
        )
        for run, record in zip(todo, results, strict=True):
            record["key"] = _run_key(run)
            done[record["key"]] = record
            out.write(json.dumps(record) + "\n")
            out.flush()
            bar.update()
            bar.write(
                f"{run['kind']:9s} sigma {run['sigma']:<5g} {run.get('noise_law', 'gaussian')} "
                f"seed {run['seed']}: success "
                f"{record['success']:.2f}, collisions {record['collision']:.2f}, D_train "
                f"{record['d_train']:.2f}, D_test {record['d_test']:.2f} "
                f"({record['seconds']:.0f} s)"
            )
    bar.close()
    return [done[_run_key(run)] for run in runs]


# ----------------------------------------------------------------------------- report


def _plot_scalar(scalar: dict[str, Any], unstable: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    t = np.arange(scalar["horizon"] + 1)
    ax = axes[0]
    ax.semilogy(
        t[1:], np.abs(scalar["mean_learner_states"])[1:], label="mean-parametrised 0.15x + ε"
    )
    ax.semilogy(
        t[1:],
        np.asarray(scalar["mean_learner_predicted"])[1:],
        "k:",
        label="predicted ε(1.05ᵗ − 1)/0.05",
    )
    ax.semilogy(
        t[1:], np.asarray(scalar["sampling_median"])[1:], label="Bernoulli(0.15x) + ε: median |x|"
    )
    ax.semilogy(t[1:], np.asarray(scalar["sampling_p90"])[1:], label="… 90th percentile")
    ax.set(xlabel="t", ylabel="|x_t|", title=f"a = 0.9, ε = {scalar['eps']}")
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(t, scalar["sampling_stayed"], label="measured")
    ax.plot(t, scalar["sampling_stayed_exact"], "k:", label="exact ∏(1 − 0.15 x_s)")
    ax.plot(t, scalar["sampling_stayed_bound"], "r--", label="bound 1 − 1.5 t ε")
    ax.set(
        xlabel="t",
        ylabel="P(x_s = O(ε) for all s ≤ t)",
        title="Bernoulli learner stays O(ε)",
        ylim=(0, 1.02),
    )
    ax.legend(fontsize=8)
    ax = axes[2]
    h = np.arange(unstable["horizon"] + 1)
    ax.semilogy(h[1:], np.asarray(unstable["raw_gap"])[1:], label="raw inputs ū + δ")
    ax.semilogy(
        h[1:],
        np.maximum(np.asarray(unstable["gains_gap"])[1:], 1e-300),
        label="primitives ū + δ + K(x − x̄)",
    )
    ax.semilogy(h[1:], unstable["delta"] * (2.0 ** h[1:] - 1), "k:", label="δ(2ᵗ − 1)")
    ax.axhline(unstable["gains_bound"], color="r", ls="--", label="δ / (1 − max|a + K|)")
    ax.set(
        xlabel="step in the chunk", ylabel="|x_t − x*_t|", title=f"a = 2, δ = {unstable['delta']:g}"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_tv(tv: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    rows = tv["rows"]
    for sigma in sorted({r["sigma"] for r in rows}):
        mine = [r for r in rows if r["sigma"] == sigma]
        ax.plot(
            [r["distance"] for r in mine],
            [r["measured"] for r in mine],
            "o-",
            label=f"measured, σ = {sigma:g}",
        )
        ax.plot([r["distance"] for r in mine], [r["bound"] for r in mine], "k:", lw=0.8)
    ax.set(
        xscale="log",
        xlabel="|x − x′|",
        ylabel="TV(π_σ(x), π_σ(x′))",
        title="replica noise makes a step TV-continuous (dotted: |x − x′| / 2σ)",
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_bifurcation(records: list[dict[str, Any]], sigmas: tuple[float, ...], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    from hint_envs.envs.bifurcation import BifurcationParams

    params = BifurcationParams()
    noisy = max(sigmas)
    panels = [
        ("expert", 0.0),
        ("raw", 0.0),
        ("raw", noisy),
        ("primitive", 0.0),
        ("primitive", noisy),
    ]
    fig, axes = plt.subplots(2, len(panels), figsize=(4 * len(panels), 6.8))
    for ax, (kind, sigma) in zip(axes[0], panels, strict=True):
        if kind == "expert":
            paths, title = records[0]["expert_positions"], "expert"
        else:
            record = next(
                r for r in records if r["kind"] == kind and r["sigma"] == sigma and r["seed"] == 0
            )
            paths = record["positions"]
            title = (
                f"{kind} chunks, σ = {sigma:g}: {record['success']:.0%} succeed, "
                f"{record['collision']:.0%} collide"
            )
        ax.add_patch(Circle(params.obstacle_center, params.obstacle_radius, color="0.6"))
        for positions in paths:
            positions = np.asarray(positions)
            ax.plot(positions[:, 0], positions[:, 1], lw=0.7, alpha=0.7)
        ax.plot(*params.goal, "g*", ms=10)
        ax.set(aspect="equal", title=title, xlim=(-0.3, 4.5), ylim=(-1.5, 1.5))
        ax.title.set_fontsize(8)
    for ax, kind in zip(axes[1][:2], KINDS, strict=True):
        for sigma in sigmas:
            mine = [r for r in records if r["kind"] == kind and r["sigma"] == sigma]
            p_left = np.mean([r["mode_p_left"] for r in mine], axis=0)
            ax.plot(mine[0]["mode_grid"], p_left, "o-", ms=3, label=f"σ = {sigma:g}")
        ax.set(
            xlabel="start y₀",
            ylabel="P(first chunk goes left)",
            title=f"{kind} chunks: mode choice",
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    for ax, metric in zip(axes[1][2:], ("success", "collision", "d_test"), strict=True):
        for kind in KINDS:
            means = [
                np.mean([r[metric] for r in records if r["kind"] == kind and r["sigma"] == sg])
                for sg in sigmas
            ]
            ax.plot(sigmas, means, "o-", label=kind)
        ax.set(
            xlabel="replica noise σ",
            title=f"{metric.replace('_', ' ')}, mean over seeds",
            ylim=(-0.03, 1.03),
        )
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _law(record: dict[str, Any]) -> str:
    """The noise law of a bifurcation record (records of Gaussian runs name none)."""
    return record.get("noise_law", "gaussian")


def mode_gap(record: dict[str, Any]) -> tuple[float, float]:
    """``|P(left | y) - P(left | -y)|`` at the ends ``y = ±w`` of the mode grid, a lower bound
    on the policy's TV between those starts, and the replica-noise bound on that TV (inf at
    sigma 0: no bound): the TV of the two noised observations, which differ in y alone,
    ``min(1, 2w / (2 sigma scale_y))`` for Gaussian noise and ``min(1, 2w / (sigma scale_y))``
    exactly for noise uniform on an interval of width ``sigma scale_y``."""
    grid, p_left = np.asarray(record["mode_grid"]), np.asarray(record["mode_p_left"])
    measured = float(abs(p_left[-1] - p_left[0]))
    if record["sigma"] == 0:
        return measured, float("inf")
    distance = float(grid[-1] - grid[0])
    width = record["sigma"] * record["noise_scale_y"]
    if _law(record) == "gaussian":
        return measured, min(1.0, distance / (2 * width))
    return measured, min(1.0, distance / width)


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def _without_unplotted_paths(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with the rollout paths kept only where the figure draws them (seed 0 at
    the smallest and largest sigma; the expert's once): the rest stay in the work records."""
    records = results.get("bifurcation")
    if not records:
        return results
    sigmas = {min(r["sigma"] for r in records), max(r["sigma"] for r in records)}
    slim = []
    for index, record in enumerate(records):
        record = dict(record)
        if not (record["seed"] == 0 and record["sigma"] in sigmas):
            record.pop("positions", None)
        if index:
            record.pop("expert_positions", None)
        slim.append(record)
    return {**results, "bifurcation": slim}


def write_report(results: dict[str, Any], args: Args, out: Path) -> None:
    """``<out>.md`` (the page), ``<out>.json`` (every number) and the plots."""
    stem = out.name
    lines = [
        "# The theory's examples, measured",
        "",
        "Made by `python benchmarks/theory.py` (docs/theory.md explains each example); "
        f"last written {results['meta']['when']} on {results['meta']['cpu']}. Wall time per "
        "section: "
        + ", ".join(
            f"{name} {t:.0f} s"
            + (
                f" (load average {results['load'][name]:.1f} at its start)"
                if name in results.get("load", {})
                else ""
            )
            for name, t in results.get("seconds", {}).items()
        )
        + "."
        + (  # a resumed section's wall time is the report's, not its runs'
            f" The bifurcation's {len(results['bifurcation'])} training runs took "
            f"{sum(r['seconds'] for r in results['bifurcation']) / 60:.0f} min of one core "
            "in all (their records are resumed from --work)."
            if results.get("bifurcation")
            else ""
        ),
        "",
    ]
    scalar, unstable = results.get("scalar"), results.get("unstable")
    if scalar and unstable:
        _plot_scalar(scalar, unstable, out.with_name(f"{stem}_scalar.png"))
        stayed = scalar["sampling_stayed"]
        h, eps = scalar["horizon"], scalar["eps"]
        bound, exact = scalar["sampling_stayed_bound"], scalar["sampling_stayed_exact"]
        gap_raw, gap_gains = unstable["raw_gap"], unstable["gains_gap"]
        lines += [
            "## 1. Compounding error on the scalar system",
            "",
            f"![scalar examples]({stem}_scalar.png)",
            "",
            "| claim | predicted | measured |",
            "|---|---|---|",
            "| a = 0.9, mean-parametrised learner: \\|x_t\\| grows like 1.05ᵗ | rate 1.05 | "
            f"{scalar['mean_learner_rate']:.4f} (fit of log \\|x_t\\|, t = {h // 2}…{h}) |",
            "| a = 0.9, conditional-sampling learner stays O(ε) w.p. ≥ 1 − 1.5 t ε "
            f"(ε = {eps:g}) | ≥ {bound[50]:.3f} / {bound[100]:.3f} at t = 50 / 100 "
            f"(exact {exact[50]:.3f} / {exact[100]:.3f}) | "
            f"{stayed[50]:.3f} / {stayed[100]:.3f} ({scalar['rollouts']} rollouts) |",
            f"| … while the median \\|x_t\\| stays ≤ 10 ε | ≤ {10 * eps:g} | "
            f"{max(scalar['sampling_median']):.2g} (largest median over t ≤ {h}) |",
            f"| a = 2, one chunk of raw inputs off by δ = {unstable['delta']:g}: gap grows "
            f"like 2ᵗ | rate 2 | {unstable['raw_rate']:.4f} (gap {gap_raw[-1]:.3g} after "
            f"{unstable['horizon']} steps) |",
            "| a = 2, the same chunk as primitive controllers: gap bounded | "
            f"≤ {unstable['gains_bound']:.3g} (max \\|a + K\\| = "
            f"{unstable['closed_loop_max']:.3f}) | {max(gap_gains):.3g} |",
            "",
        ]
    tv = results.get("tv")
    if tv:
        _plot_tv(tv, out.with_name(f"{stem}_tv.png"))
        worst = max(r["measured"] - r["bound"] for r in tv["rows"])
        lines += [
            "## 2. Replica noise makes a policy TV-continuous",
            "",
            f"![TV vs bound]({stem}_tv.png)",
            "",
            "The step policy π(x) = [x > 0] (a mode choice with a sharp boundary, the worst case) "
            f"noised as π_σ(x) = π(x + σw); each TV from {tv['samples']} draws per side.",
            "",
            "| σ | \\|x − x′\\| | bound \\|x − x′\\| / 2σ | exact 2Φ(·) − 1 | measured |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['sigma']:g} | {r['distance']:.3g} | {r['bound']:.3f} | {r['exact']:.3f} "
            f"| {r['measured']:.3f} |"
            for r in tv["rows"]
        ]
        lines += [
            "",
            f"Largest measured − bound: {worst:+.3f} (every measurement below its bound: "
            f"{worst < 0}).",
        ]
        lines += [""]
    records = results.get("bifurcation")
    if records:
        sigmas = tuple(sorted({r["sigma"] for r in records}))
        gaussian = [r for r in records if _law(r) == "gaussian"]
        _plot_bifurcation(gaussian, sigmas, out.with_name(f"{stem}_bifurcation.png"))
        first = records[0]
        width = first["test_width"]
        lines += [
            "## 3. A pure bifurcation",
            "",
            f"![bifurcation rollouts]({stem}_bifurcation.png)",
            "",
            f"DDPM chunking policies on `{BIFURCATION_ID}`, {first['demos']} expert "
            f"demonstrations, {first['steps']} training steps, tested from {first['episodes']} "
            f"starts y₀ ~ U[−{width:g}, {width:g}] (the band round the modes' boundary), "
            f"mean ± std over {len({r['seed'] for r in records})} training seeds. "
            f"D_train,ε: ε = {first['eps_action']:g} on a chunk of nominal inputs; "
            f"D_test,ε: ε = {first['eps_state']:g} on the state, largest over t. Each model "
            "is evaluated twice: with replica noise of its training σ and law (HINT), and on "
            "clean observations (*train-only*, the paper's deconvolution arm; the figure shows "
            "the Gaussian models).",
            "",
            "| chunks | σ | noise | success | collisions | goes left | D_train,ε | D_test,ε "
            "| D_test / D_train | ΔP(left), y₀ = ±0.1 | its TV bound | train-only: success "
            "| collisions | D_test,ε |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        laws = [law for law in NOISE_LAWS if any(_law(r) == law for r in records)]
        for kind in KINDS:
            for sigma in sigmas:
                for law in laws if sigma > 0 else laws[:1]:
                    mine = [
                        r
                        for r in records
                        if r["kind"] == kind and r["sigma"] == sigma and _law(r) == law
                    ]
                    if not mine:
                        continue
                    d_train = float(np.mean([r["d_train"] for r in mine]))
                    d_test = float(np.mean([r["d_test"] for r in mine]))
                    gaps = [mode_gap(r) for r in mine]
                    bound = gaps[0][1]
                    clean = [r.get("train_only") for r in mine]
                    if all(clean):
                        arm = " | ".join(
                            _mean_std([c[key] for c in clean])
                            for key in ("success", "collision", "d_test")
                        )
                    else:  # a record written before the train-only arm was measured
                        arm = "– | – | –"
                    lines.append(
                        f"| {kind} | {sigma:g} | {law if sigma > 0 else '–'} | "
                        f"{_mean_std([r['success'] for r in mine])} | "
                        f"{_mean_std([r['collision'] for r in mine])} | "
                        f"{_mean_std([r['left'] for r in mine])} | "
                        f"{_mean_std([r['d_train'] for r in mine])} | "
                        f"{_mean_std([r['d_test'] for r in mine])} | "
                        f"{f'{d_test / d_train:.2f}' if d_train >= 0.01 else '– (D_train ≈ 0)'} | "
                        f"{_mean_std([g for g, _ in gaps])} | "
                        f"{'none' if bound == float('inf') else f'{bound:.2f}'} | {arm} |"
                    )
        lines += [
            "",
            f"The expert on the same starts: success {first['expert_success']:.2f}, "
            f"collisions {first['expert_collision']:.2f}, goes left {first['expert_left']:.2f}. "
            "*ΔP(left)*: the difference of P(first chunk goes left) between the starts "
            f"y₀ = ±{MODE_GRID_HALF_WIDTH:g} ({MODE_SAMPLES} samples each, standard error about "
            f"{np.sqrt(0.5 / MODE_SAMPLES):.2f}), a lower bound on the policy's TV between them; "
            "*its TV bound*: |y − y′| / (2σ · noise scale of y) for Gaussian noise, "
            "|y − y′| / (σ · noise scale of y) for uniform noise, capped at 1. The lower "
            "panels of the figure show P(left) over the whole grid.",
            "",
        ]
    lines += [f"<!-- written by benchmarks/theory.py; numbers in {stem}.json -->", ""]
    atomic_write_json(out.with_suffix(".json"), _without_unplotted_paths(results))
    atomic_write_bytes(out.with_suffix(".md"), "\n".join(lines).encode())


def parse_args(argv: list[str] | None = None) -> Args:
    """The command line (``tyro``: one option per field of :class:`Args`)."""
    import tyro

    args = tyro.cli(Args, args=argv, description=__doc__.split("\n\n")[0])
    problems = []
    if args.seeds < 1 or args.demos < 1 or args.steps < 1 or args.episodes < 1 or args.rollouts < 1:
        problems.append("--seeds, --demos, --steps, --episodes and --rollouts must be >= 1")
    if args.workers < 1:
        problems.append("--workers must be >= 1")
    if any(not math.isfinite(s) or s < 0 for s in args.sigmas) or not args.sigmas:
        problems.append(f"--sigmas must be finite numbers >= 0, got {args.sigmas}")
    if not 0 < args.eps_scalar < 0.01:
        problems.append(
            "--eps-scalar must lie in (0, 0.01) for the example's O(ε) regime, got "
            f"{args.eps_scalar}"
        )
    for problem in problems:
        print(f"theory.py: error: {problem}", file=sys.stderr)
    if problems:
        raise SystemExit(2)
    return args


def main() -> int:
    """Run the sections the command line names and write the report (130 after Ctrl-C,
    the bifurcation runs finished so far keeping their records)."""
    from hint_envs._cli import check_output_file

    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    out = REPO / args.out if not Path(args.out).is_absolute() else Path(args.out)
    problem = check_output_file(out.with_suffix(".md"), args.overwrite, example="theory.md")
    if problem:
        print(f"theory.py: error: {problem}", file=sys.stderr)
        return 2
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = (
        json.loads(out.with_suffix(".json").read_text())
        if out.with_suffix(".json").exists()
        else {}
    )
    results = dict(previous)
    seconds = dict(results.get("seconds", {}))
    if not seconds and "meta" in previous:  # reports written before per-section timing
        seconds = {section: previous["meta"]["seconds"] for section in previous["meta"]["sections"]}
    load = dict(results.get("load", {}))
    try:
        for section in args.sections:
            load[section] = os.getloadavg()[0]
            started = time.perf_counter()
            if section == "scalar":
                results["scalar"] = compounding(args)
                results["unstable"] = unstable_chunk()
                scalar, unstable = results["scalar"], results["unstable"]
                print(
                    f"scalar: mean learner rate {scalar['mean_learner_rate']:.4f}, raw chunk rate "
                    f"{unstable['raw_rate']:.4f}, gap with gains {max(unstable['gains_gap']):.3g}"
                )
            elif section == "tv":
                results["tv"] = step_policy_tv((0.01, 0.03, 0.1, 0.3))
                worst = max(r["measured"] - r["bound"] for r in results["tv"]["rows"])
                print(f"tv: largest measured - bound {worst:+.4f}")
            else:
                results["bifurcation"] = bifurcation(args)
            seconds[section] = time.perf_counter() - started
    except KeyboardInterrupt:
        return interrupted("theory.py", kept=f"the bifurcation records in {args.work}")
    results["seconds"], results["load"] = seconds, load
    results["meta"] = {
        "when": time.strftime("%Y-%m-%d"),
        "cpu": cpu_name(),
        "sections": list(args.sections),
        "args": asdict(args),
    }
    write_report(results, args, out)
    print(f"wrote {out.with_suffix('.md')}; seconds per section: {seconds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
