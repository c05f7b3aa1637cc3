"""The analytic learners of the theory's compounding-error example (no training, no torch).

On the scalar system ``x_{t+1} = a x_t + u_t`` (``hint_envs/ScalarLinear-v0``) with
``a = 0.9``, the expert plays ``pi*(x) = 0`` and its data is the zero trajectory. Two
learners make the same error ``offset`` (the paper's epsilon) on that data and have the
same mean everywhere:

- :class:`MeanParametrisedLearner`, ``pi_hat(x) = slope * x + offset``: a regression
  fit. Deployed, the closed loop is ``x' = (a + slope) x + offset``; with
  ``a + slope = 1.05`` the state grows like ``1.05^t offset``: metric mistakes compound.
- :class:`ConditionalSamplingLearner`, ``pi_hat(x) = Bernoulli(min{1, slope * x}) +
  offset``: a generative fit with the same mean. Near the data it almost always plays
  ``offset``, so the state stays ``O(offset)``; with probability ``O(t * offset)`` it has
  drawn a 1 by time ``t``: the mistakes become probabilistic ones, which add up linearly.

Both have Stable-Baselines3's ``predict`` signature, so they run wherever an SB3 model
does (e.g. ``stable_baselines3.common.evaluation.evaluate_policy``). See docs/theory.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ConditionalSamplingLearner", "MeanParametrisedLearner"]


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def _states(observation: Any) -> tuple[np.ndarray, bool]:
    """``(n, 1)`` float64 states and whether the input was a single ``(1,)`` observation."""
    obs = np.asarray(observation, dtype=np.float64)
    single = obs.ndim <= 1
    obs = obs.reshape(1, -1) if single else obs
    if obs.ndim != 2 or obs.shape[1] != 1:
        raise ValueError(
            "expected scalar-system observations of shape (1,) or (n, 1), got shape "
            f"{np.asarray(observation).shape}"
        )
    if not np.all(np.isfinite(obs)):
        raise ValueError("observation contains NaN or inf")
    return obs, single


class MeanParametrisedLearner:
    """``pi_hat(x) = slope * x + offset``: the regression learner of the example.

    Args:
        slope: the learned gain (0.15 in the example: ``a + slope = 1.05``).
        offset: the training error on the zero trajectory (the paper's epsilon).
    """

    def __init__(self, slope: float = 0.15, offset: float = 0.01) -> None:
        self.slope = _check_number("slope", slope)
        self.offset = _check_number("offset", offset)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """``E[pi_hat(x)]``, the action itself."""
        return self.slope * np.asarray(x, dtype=np.float64) + self.offset

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: actions ``(1,)`` or ``(n, 1)`` for observations likewise."""
        obs, single = _states(observation)
        action = self.mean(obs)
        return (action[0] if single else action), None


class ConditionalSamplingLearner:
    """``pi_hat(x) = Bernoulli(clip(slope * x, 0, 1)) + offset``: the generative learner.

    Its mean is ``slope * x + offset`` for ``0 <= slope * x <= 1``, that of
    :class:`MeanParametrisedLearner`.

    Args:
        slope: probability of playing 1 per unit of state.
        offset: the training error on the zero trajectory (the paper's epsilon).
        seed: seed of the generator the Bernoulli draws come from (:meth:`reset_rng`
            restarts it).
    """

    def __init__(self, slope: float = 0.15, offset: float = 0.01, seed: int = 0) -> None:
        self.slope = _check_number("slope", slope)
        self.offset = _check_number("offset", offset)
        self.reset_rng(seed)

    def reset_rng(self, seed: int) -> None:
        """Restart the Bernoulli draws from ``seed``."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.rng = np.random.default_rng(int(seed))

    def probability(self, x: np.ndarray) -> np.ndarray:
        """``P(pi_hat(x) = 1 + offset)`` = ``clip(slope * x, 0, 1)``."""
        return np.clip(self.slope * np.asarray(x, dtype=np.float64), 0.0, 1.0)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """``E[pi_hat(x)]`` = ``probability(x) + offset``."""
        return self.probability(x) + self.offset

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """SB3's ``predict``: a Bernoulli draw per observation (``deterministic=True``:
        the most likely action, 1 only where ``probability > 1/2``)."""
        obs, single = _states(observation)
        p = self.probability(obs)
        draw = p > 0.5 if deterministic else self.rng.random(p.shape) < p
        action = draw.astype(np.float64) + self.offset
        return (action[0] if single else action), None
