"""``evaluate``: roll a policy and the expert out from the same states and score them.

Protocol (see docs/evaluation.md):

1. Each seed ``s`` fixes an initial state ``x_0(s)``: the state ``reset(seed=s)`` draws.
2. From each initial state the imitator is rolled out ``rollouts_per_state`` times, with
   rollout seeds derived from ``s`` (:func:`derive_seed`; rollout 0 uses ``s`` itself),
   which seed the replica noise; the expert likewise, ``demonstrate(derived seed,
   initial_state=x_0(s))``.
3. Metrics (names fixed, :data:`~hint_envs.evaluation.metrics.METRIC_NAMES`):
   ``"success"``, ``"return"`` and ``"max_reward"`` (the mean of each episode's largest
   step reward: Diffusion Policy's PushT score; mean and std over imitator episodes),
   ``"trajectory_error"`` (per imitator episode, the mean over the expert rollouts from
   its initial state of :func:`~hint_envs.evaluation.metrics.trajectory_error`; then mean
   and std) and ``"imitation_loss"`` (L_marg,eps per time step, its mean and max; only
   with ``rollouts_per_state > 1``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hint_envs.core import check_noise_law, check_noise_level
from hint_envs.evaluation.metrics import (
    imitation_loss,
    mean_max_reward,
    mean_return,
    success_rate,
    summarize,
    summarize_imitation_loss,
    trajectory_error,
)
from hint_envs.evaluation.rollout import (
    ChunkPolicy,
    EpisodeRecord,
    _check_seeds,
    initial_states_for_seeds,
    rollout_expert,
    rollout_policy,
)

__all__ = ["DEFAULT_EPS", "EvaluationResult", "derive_seed", "evaluate", "format_metrics"]

logger = logging.getLogger(__name__)

#: Default imitation-loss threshold, in control-state units (for the quadrotor: metres,
#: radians, m/s and rad/s together in one Euclidean norm). 0.25 is the quadrotor's goal
#: tolerance; at it the expert's own process noise no longer counts as a mismatch (see
#: docs/evaluation.md), so the loss measures distribution (mode) errors.
DEFAULT_EPS = 0.25


def derive_seed(seed: int, rollout: int) -> int:
    """Seed of rollout ``rollout`` from the initial state of ``seed``.

    Rollout 0 uses ``seed`` itself (so ``rollouts_per_state=1`` reproduces a plain
    rollout over ``seeds``); rollout ``j > 0`` uses a 31-bit integer drawn from
    ``numpy.random.SeedSequence([seed, j])``, deterministic and independent of the others.
    """
    if rollout == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rollout)]).generate_state(1)[0] >> 1)


@dataclass
class EvaluationResult:
    """What :func:`evaluate` measured.

    Attributes:
        env_id: the environment evaluated.
        config: the evaluation settings (seeds, chunk_length, obs_horizon, gains, sigma,
            noise_scale, rollouts_per_state, eps, ...), JSON-serialisable.
        metrics: ``{"success": {"mean", "std", "count"}, "return": {...},
            "trajectory_error": {...}, "imitation_loss": {"mean", "max", "per_step",
            "eps"}}``; the last two only when computed.
        expert_metrics: ``{"success": ..., "return": ...}`` of the expert rollouts (empty
            without the expert).
        episodes: one plain dict per imitator episode (:meth:`EpisodeRecord.to_dict` plus
            ``state_seed``, ``rollout`` and ``trajectory_error``), in the order
            ``(seed, rollout)``.
        records: the imitator :class:`EpisodeRecord` objects (not serialised).
        expert_records: the expert's, in the same order (not serialised).
    """

    env_id: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    expert_metrics: dict[str, Any]
    episodes: list[dict[str, Any]]
    records: list[EpisodeRecord] = field(default_factory=list, repr=False)
    expert_records: list[EpisodeRecord] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable dict (everything but the full records)."""
        return {
            "env_id": self.env_id,
            "config": self.config,
            "metrics": self.metrics,
            "expert_metrics": self.expert_metrics,
            "episodes": self.episodes,
        }

    def __str__(self) -> str:
        return format_metrics(self.metrics)


def format_metrics(metrics: dict[str, Any]) -> str:
    """One line per metric, ``name: mean ± std`` (imitation loss: mean and max over t)."""
    lines = []
    for name, value in metrics.items():
        if name == "imitation_loss":
            lines.append(
                f"imitation_loss (eps={value['eps']:g}): mean {value['mean']:.3f}, "
                f"max {value['max']:.3f}"
            )
        else:
            lines.append(f"{name}: {value['mean']:.3f} ± {value['std']:.3f} (n={value['count']})")
    return "\n".join(lines)


def _groups(records: list[EpisodeRecord], n: int) -> list[list[np.ndarray]]:
    """Control-state trajectories grouped by initial state: consecutive runs of ``n``."""
    return [[r.states for r in records[g : g + n]] for g in range(0, len(records), n)]


def evaluate(
    policy: ChunkPolicy,
    env_id: str,
    *,
    seeds: Sequence[int],
    chunk_length: int,
    obs_horizon: int,
    gains: bool,
    sigma: float = 0.0,
    noise_scale: np.ndarray | float = 1.0,
    rollouts_per_state: int = 1,
    eps: float = DEFAULT_EPS,
    expert: bool = True,
    num_envs: int = 8,
    deterministic: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    expert_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int = 1,
    sample_seed: int = 0,
    noise_law: str = "gaussian",
    obs_shift: float = 0.0,
) -> EvaluationResult:
    """Evaluate ``policy`` on ``env_id`` from the initial states of ``seeds``.

    Args:
        policy: any object with SB3's ``predict`` on chunk-level observations
            ``(B, obs_horizon, d_obs) -> (B, action_dim)``.
        env_id: the control environment.
        seeds: one initial state per seed (``reset(seed=seed)``).
        chunk_length: primitive controllers per decision of the chunk-level environment
            the policy was trained for (:func:`~hint_envs.evaluation.rollout.make_chunk_env`).
        obs_horizon: observations per observation chunk of that environment.
        gains: whether its composite actions carry ``(u_bar, x_bar, K)`` or only ``u_bar``.
        sigma: test-time replica noise in normalised units; ``0`` for no test-time noise
            (the "deconvolution" setting when the policy was trained with noise).
        noise_scale: ``(d_obs,)`` or scalar raw units per normalised unit (the dataset's
            ``RangeNormalizer.noise_scale``).
        rollouts_per_state: imitator (and expert) rollouts from each initial state;
            ``> 1`` is needed for the imitation loss.
        eps: imitation-loss threshold in control-state units, ``> 0``.
        expert: also roll out the expert (trajectory error, imitation loss).
        num_envs: episodes run at once (the largest ``predict`` batch).
        deterministic: passed to ``predict``.
        env_kwargs: ``gym.make`` keyword arguments; None means the policy's own
            (``policy.env_kwargs``, what its demonstration file recorded, e.g. PushT's
            ``obs_type``) where it has them.
        expert_kwargs: keyword arguments of :func:`hint_envs.experts.make_expert`.
        progress: show tqdm bars.
        workers: processes to roll out in (``1``: this process); the results are the
            same for any number (:func:`~hint_envs.evaluation.rollout.rollout_policy`).
        sample_seed: seed of a stochastic policy's sampler, reseeded per group of
            ``num_envs`` episodes from it and the group's first seed.
        noise_law: the law of the test-time noise, one of
            :data:`hint_envs.core.NOISE_LAWS` (the policy's training law for replica
            noise: ``policy.config.noise_law``).
        obs_shift: a constant added to every observation feature the policy sees, in
            normalised units (``obs_shift * noise_scale``); 0 for none. An experiment's
            tool: the bias the ``"uniform"`` law's train-only arm meets is ``-sigma / 2``.

    Returns:
        an :class:`EvaluationResult` (``to_dict()`` is JSON-serialisable).

    Raises:
        ValueError: bad seeds, ``rollouts_per_state < 1``, ``eps <= 0``, or a policy whose
            ``observation_space``/``action_space`` (when it has them) do not have the shapes
            of the chunk-level env of ``env_id``, ``env_kwargs``, ``chunk_length``,
            ``obs_horizon`` and ``gains`` (checked before any rollout).
    """
    seeds = _check_seeds(seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed to evaluate on")
    if not isinstance(rollouts_per_state, (int, np.integer)) or rollouts_per_state < 1:
        raise ValueError(f"rollouts_per_state must be a positive integer, got {rollouts_per_state}")
    if not np.isfinite(eps) or eps <= 0:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    n = int(rollouts_per_state)
    sigma = check_noise_level(sigma)
    noise_law = check_noise_law(noise_law)
    if sigma > 0 and np.ndim(noise_scale) == 0 and float(noise_scale) == 1.0:
        logger.warning(
            "sigma=%g with noise_scale=1: the noise is sigma raw units in every observation "
            "feature; pass the dataset normaliser's noise_scale to get sigma in normalised units",
            sigma,
        )

    if env_kwargs is None:
        env_kwargs = getattr(policy, "env_kwargs", None)
    starts = initial_states_for_seeds(env_id, seeds, env_kwargs)
    run_seeds = [derive_seed(seed, j) for seed in seeds for j in range(n)]
    run_starts = np.repeat(starts, n, axis=0)
    records = rollout_policy(
        policy,
        env_id,
        run_seeds,
        chunk_length=chunk_length,
        obs_horizon=obs_horizon,
        gains=gains,
        sigma=sigma,
        noise_scale=noise_scale,
        initial_states=run_starts,
        num_envs=num_envs,
        deterministic=deterministic,
        env_kwargs=env_kwargs,
        progress=progress,
        workers=workers,
        sample_seed=sample_seed,
        noise_law=noise_law,
        obs_shift=obs_shift,
    )
    expert_records: list[EpisodeRecord] = []
    if expert:
        expert_records = rollout_expert(
            env_id,
            run_seeds,
            run_starts,
            expert_kwargs=expert_kwargs,
            progress=progress,
            env_kwargs=env_kwargs,
            workers=workers,
        )

    episodes = []
    errors = []
    for k, record in enumerate(records):
        g, j = divmod(k, n)
        episode = {"state_seed": seeds[g], "rollout": j, **record.to_dict()}
        if expert_records:
            group = expert_records[g * n : (g + 1) * n]
            error = float(np.mean([trajectory_error(record, e) for e in group]))
            episode["trajectory_error"] = error
            errors.append(error)
        episodes.append(episode)

    metrics: dict[str, Any] = {
        "success": success_rate(records).to_dict(),
        "return": mean_return(records).to_dict(),
        "max_reward": mean_max_reward(records).to_dict(),
    }
    expert_metrics: dict[str, Any] = {}
    if expert_records:
        metrics["trajectory_error"] = summarize(errors).to_dict()
        expert_metrics = {
            "success": success_rate(expert_records).to_dict(),
            "return": mean_return(expert_records).to_dict(),
            "max_reward": mean_max_reward(expert_records).to_dict(),
        }
        if n > 1:
            curve = imitation_loss(_groups(expert_records, n), _groups(records, n), eps)
            metrics["imitation_loss"] = {
                **summarize_imitation_loss(curve),
                "per_step": curve.tolist(),
                "eps": float(eps),
            }
    config = {
        "seeds": seeds,
        "chunk_length": int(chunk_length),
        "obs_horizon": int(obs_horizon),
        "gains": bool(gains),
        "sigma": float(sigma),
        "noise_law": noise_law,
        "obs_shift": float(obs_shift),
        "noise_scale": np.asarray(noise_scale, dtype=float).tolist(),
        "rollouts_per_state": n,
        "eps": float(eps),
        "expert": bool(expert),
        "deterministic": bool(deterministic),
        "sample_seed": int(sample_seed),
        "num_envs": int(num_envs),
        "env_kwargs": {k: repr(v) for k, v in (env_kwargs or {}).items()},
    }
    result = EvaluationResult(
        env_id=env_id,
        config=config,
        metrics=metrics,
        expert_metrics=expert_metrics,
        episodes=episodes,
        records=records,
        expert_records=expert_records,
    )
    logger.info("evaluation of %s (sigma=%g, %s):\n%s", env_id, sigma, noise_law, result)
    return result
