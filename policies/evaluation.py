"""Evaluate a trained policy on the environment it records.

A policy trained by :mod:`policies` knows its environment (``env_id``, ``env_kwargs``), its
chunking (``config.chunk_length``, ``obs_horizon``, ``gains``), its training noise
(``config.sigma``, ``config.noise_law``) and the dataset's noise scale (``noise_scale``):
:func:`evaluate_trained` passes them all to :func:`hint_envs.evaluation.evaluate`, so only
the seeds and what differs from training need to be given.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["evaluate_trained"]


def evaluate_trained(
    policy: Any,
    seeds: Sequence[int],
    *,
    sigma: float | None = None,
    noise_law: str | None = None,
    **kwargs: Any,
) -> Any:
    """:func:`hint_envs.evaluation.evaluate` of ``policy`` on the environment it records.

    Args:
        policy: a trained :class:`~policies.ddpm.DDPMChunkingPolicy` (or a baseline) with
            ``env_id``, ``config`` and ``noise_scale``.
        seeds: the initial states' seeds.
        sigma: test-time replica noise (None: the policy's training sigma; 0: none).
        noise_law: the law of that noise (None: the policy's training law,
            ``config.noise_law``; ``"gaussian"`` for policies saved before laws existed).
        **kwargs: any other argument of ``evaluate`` (``expert``, ``num_envs``,
            ``workers``, ``sample_seed``, ``progress``, ...).

    Returns:
        the :class:`~hint_envs.evaluation.EvaluationResult`.

    Raises:
        ValueError: the policy records no environment id.
    """
    from hint_envs.evaluation import evaluate

    if getattr(policy, "env_id", None) is None:
        raise ValueError("the policy records no env id; call hint_envs.evaluation.evaluate")
    config = policy.config
    return evaluate(
        policy,
        policy.env_id,
        seeds=seeds,
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
        sigma=config.sigma if sigma is None else sigma,
        noise_scale=np.asarray(policy.noise_scale, dtype=float),
        noise_law=getattr(config, "noise_law", "gaussian") if noise_law is None else noise_law,
        **kwargs,
    )
