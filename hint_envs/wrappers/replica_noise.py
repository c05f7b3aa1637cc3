"""Replica noise: the same Gaussian observation noise at training and at test time."""

from __future__ import annotations

import numpy as np


def add_replica_noise(
    obs: np.ndarray, sigma: float, scale: np.ndarray | float, rng: np.random.Generator
) -> np.ndarray:
    """Return ``obs + sigma * scale * eps`` with ``eps ~ N(0, I)`` drawn from ``rng``.

    This one function noises observations both in :class:`ReplicaNoiseWrapper` (test time,
    "replica noising") and in policy training (data noising), so the two agree exactly.

    Args:
        obs: ``(..., D)`` raw observations (any leading shape: batch, obs horizon).
        sigma: noise level in normalised units, ``>= 0``.
        scale: ``(D,)`` or scalar raw units per normalised unit
            (:attr:`hint_envs.data.normalization.RangeNormalizer.noise_scale`).
        rng: the generator to draw ``eps`` from.

    Returns:
        noised observations, same shape as ``obs``, float64 (or obs's float dtype).

    Raises:
        ValueError: negative or non-finite ``sigma``, or a ``scale`` that does not
            broadcast against ``obs``'s last axis.
    """
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    obs = np.asarray(obs)
    dtype = obs.dtype if np.issubdtype(obs.dtype, np.floating) else np.float64
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim > 1 or (scale.ndim == 1 and scale.shape[0] not in (1, obs.shape[-1])):
        raise ValueError(
            f"scale must be a scalar or have shape ({obs.shape[-1]},) to match the last axis "
            f"of observations of shape {obs.shape}, got shape {scale.shape}"
        )
    if sigma == 0:
        return obs.astype(dtype, copy=True)
    eps = rng.standard_normal(obs.shape)
    return (obs + sigma * scale * eps).astype(dtype, copy=False)
