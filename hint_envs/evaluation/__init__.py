"""Evaluation: rollouts over fixed seeds and the metrics of the HINT paper.

* :mod:`~hint_envs.evaluation.rollout` — the evaluation env stack, batched policy
  rollouts and expert rollouts, as :class:`EpisodeRecord` objects;
* :mod:`~hint_envs.evaluation.metrics` — success, return, trajectory error and the
  imitation loss L_marg,eps, and the theory's TV_eps, D_train,eps and D_test,eps (exact
  optimal couplings);
* :mod:`~hint_envs.evaluation.evaluate` — :func:`evaluate`, the protocol that puts them
  together, and its JSON-serialisable :class:`EvaluationResult`.

See docs/evaluation.md. Nothing here imports torch: a policy is any object with SB3's
``predict``.
"""

from __future__ import annotations

from hint_envs.evaluation.evaluate import (
    DEFAULT_EPS,
    EvaluationResult,
    derive_seed,
    evaluate,
    format_metrics,
)
from hint_envs.evaluation.metrics import (
    METRIC_NAMES,
    Summary,
    d_test_eps,
    d_train_eps,
    imitation_loss,
    mean_max_reward,
    mean_return,
    stack_trajectories,
    success_rate,
    summarize,
    summarize_imitation_loss,
    trajectory_error,
    tv_eps,
)
from hint_envs.evaluation.rollout import (
    EpisodeRecord,
    initial_states_for_seeds,
    make_chunk_env,
    rollout_expert,
    rollout_policy,
)

__all__ = [
    "DEFAULT_EPS",
    "METRIC_NAMES",
    "EpisodeRecord",
    "EvaluationResult",
    "Summary",
    "d_test_eps",
    "d_train_eps",
    "derive_seed",
    "evaluate",
    "format_metrics",
    "imitation_loss",
    "initial_states_for_seeds",
    "make_chunk_env",
    "mean_max_reward",
    "mean_return",
    "rollout_expert",
    "rollout_policy",
    "stack_trajectories",
    "success_rate",
    "summarize",
    "summarize_imitation_loss",
    "trajectory_error",
    "tv_eps",
]
