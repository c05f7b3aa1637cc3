"""Min-max normalisation to [-1, 1], as in Diffusion Policy, and the replica-noise scale.

The HINT paper states the noise level sigma in normalised units, where each observation
dimension spans [-1, 1] over the dataset. A raw-unit noise of ``sigma * scale`` with
``scale = (high - low) / 2`` is therefore ``sigma`` in normalised units;
:attr:`RangeNormalizer.noise_scale` is that ``scale``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Dimensions whose range is below this are treated as constant (half-range 1).
MIN_RANGE = 1e-4


@dataclass(frozen=True)
class RangeNormalizer:
    """Affine map of ``[low, high]`` onto ``[-1, 1]`` per feature.

    Attributes:
        low, high: ``(D,)`` per-feature minimum and maximum over the data.
    """

    low: np.ndarray
    high: np.ndarray

    def __post_init__(self) -> None:
        low = np.asarray(self.low, dtype=np.float64).reshape(-1)
        high = np.asarray(self.high, dtype=np.float64).reshape(-1)
        if low.shape != high.shape:
            raise ValueError(f"low {low.shape} and high {high.shape} differ in shape")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("normalisation bounds must be finite")
        if np.any(high < low):
            raise ValueError("normalisation bounds have high < low")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def fit(cls, data: np.ndarray) -> RangeNormalizer:
        """Fit to ``(N, ..., D)`` data: min and max over every axis but the last."""
        data = np.asarray(data, dtype=np.float64)
        flat = data.reshape(-1, data.shape[-1])
        if flat.shape[0] == 0:
            raise ValueError("cannot fit a normaliser to empty data")
        return cls(flat.min(axis=0), flat.max(axis=0))

    @property
    def dim(self) -> int:
        return self.low.shape[0]

    @property
    def center(self) -> np.ndarray:
        return (self.high + self.low) / 2

    @property
    def noise_scale(self) -> np.ndarray:
        """Half-range per feature, ``(D,)``: raw units per normalised unit."""
        half = (self.high - self.low) / 2
        return np.where(half < MIN_RANGE / 2, 1.0, half)

    def normalize(self, x: np.ndarray) -> np.ndarray:
        """Raw ``(..., D)`` to normalised ``(..., D)``."""
        return (np.asarray(x) - self.center) / self.noise_scale

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        """Normalised ``(..., D)`` to raw ``(..., D)``."""
        return np.asarray(y) * self.noise_scale + self.center

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low.tolist(), "high": self.high.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RangeNormalizer:
        return cls(np.asarray(data["low"]), np.asarray(data["high"]))


@dataclass(frozen=True)
class NormalizationStats:
    """Normalisers of a chunk dataset's observations and composite actions.

    Attributes:
        obs: per observation feature (``d_obs``), shared by all ``obs_horizon`` frames.
        action: per composite-action feature of **one** controller (``controller_size``),
            shared by all controllers of a chunk.
    """

    obs: RangeNormalizer
    action: RangeNormalizer

    def to_dict(self) -> dict[str, Any]:
        return {"obs": self.obs.to_dict(), "action": self.action.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NormalizationStats:
        return cls(
            RangeNormalizer.from_dict(data["obs"]), RangeNormalizer.from_dict(data["action"])
        )
