"""Offline expert of the scalar linear system: static linear state feedback.

The expert of ``hint_envs/ScalarLinear-v0`` (``x' = a x + b u + w``) is the linear feedback

    u = -(a - p) / b * x,   so that   x' = p x + w,

with the closed-loop pole ``p = a`` when the system is already contractive (``|a| < 1``:
the expert input is then exactly 0, the theory's "expert pi*(x) = 0") and ``p = pole``
otherwise (``a = 2``: ``u = -1.5 x``, ``x' = 0.5 x`` with the default ``pole = 0.5``).

One demonstration (:meth:`ScalarLinearExpert.demonstrate`) starts from
``env.reset(seed=seed)`` of ``gym.make(env_id, **env_kwargs)`` (or from an exact state)
and runs the feedback until the episode ends (truncation after the registration's 50
steps, or termination if the state ever passed ``state_limit``). An optional Gaussian
input disturbance comes from
``np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))``, independent of
the environment's own noise stream. ``Demonstration.primitives`` stays None (the
collector synthesises them with :func:`hint_envs.synthesis.scalar_linear.synthesize`).
"""

from __future__ import annotations

import logging
import numbers
from typing import Any

import gymnasium as gym
import numpy as np

import hint_envs  # noqa: F401  (registers the environment ids)
from hint_envs.core import Demonstration
from hint_envs.envs.scalar_linear import ScalarLinearEnv, ScalarLinearParams

__all__ = ["EXPERT_STREAM", "ScalarLinearExpert", "closed_loop_pole", "feedback_gain"]

logger = logging.getLogger(__name__)

#: Second entry of the expert's seed sequence, ``SeedSequence([seed, EXPERT_STREAM])``:
#: keeps the expert's draws independent of the environment's ``reset(seed=seed)`` stream.
EXPERT_STREAM = 0x5CA1_A12E


def closed_loop_pole(params: ScalarLinearParams, pole: float) -> float:
    """The expert's closed-loop pole: ``a`` if ``|a| < 1`` (no input needed), else ``pole``."""
    return params.a if abs(params.a) < 1.0 else float(pole)


def feedback_gain(params: ScalarLinearParams, pole: float) -> float:
    """The expert's gain ``k`` in ``u = k x``: ``-(a - p) / b`` with ``p`` the
    :func:`closed_loop_pole` (exactly 0.0 when ``|a| < 1``)."""
    p = closed_loop_pole(params, pole)
    return 0.0 if p == params.a else -(params.a - p) / params.b


def _check_number(name: str, value: Any, low: float, high: float, closed: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
    number = float(value)
    inside = low <= number <= high if closed else low < number < high
    if not (np.isfinite(number) and inside):
        interval = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return number


class ScalarLinearExpert:
    """Linear state-feedback expert of ``hint_envs/ScalarLinear-v0``.

    See the module docstring for the control law.

    Args:
        env_id: a registered id whose environment is a :class:`ScalarLinearEnv`.
        env_kwargs: its ``gym.make`` keyword arguments (``a``, ``b``, ``noise_std``, ...).
        pole: closed-loop pole used when ``|a| >= 1``; ``|pole| < 1`` (stabilising).
        input_noise_std: standard deviation of a Gaussian disturbance added to the
            expert's input, ``>= 0`` (0: the exact feedback).

    Raises:
        TypeError: a non-numeric ``pole`` or ``input_noise_std``, or an ``env_id`` that
            does not make a :class:`ScalarLinearEnv`.
        ValueError: ``|pole| >= 1``, a negative or non-finite ``input_noise_std``, or an
            environment without a time limit.

    Example:
        >>> expert = ScalarLinearExpert(env_kwargs={"a": 2.0})
        >>> demo = expert.demonstrate(seed=0)
        >>> demo.attrs["pole"], demo.success, demo.actions.shape
        (0.5, True, (50, 1))
    """

    def __init__(
        self,
        env_id: str = "hint_envs/ScalarLinear-v0",
        env_kwargs: dict[str, Any] | None = None,
        pole: float = 0.5,
        input_noise_std: float = 0.0,
    ) -> None:
        self.pole = _check_number("pole", pole, -1.0, 1.0, closed=False)
        self.input_noise_std = _check_number(
            "input_noise_std", input_noise_std, 0.0, np.inf, closed=True
        )
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.env = gym.make(env_id, **self.env_kwargs)
        if not isinstance(self.env.unwrapped, ScalarLinearEnv):
            raise TypeError(
                f"ScalarLinearExpert needs a ScalarLinearEnv, but {env_id!r} makes "
                f"{type(self.env.unwrapped).__name__}"
            )
        steps = self.env.spec.max_episode_steps if self.env.spec is not None else None
        if steps is None:
            raise ValueError(
                f"{env_id!r} has no time limit (max_episode_steps); the expert draws its input "
                "noise for a whole episode, so register it with one"
            )
        self.horizon = int(steps)
        self.params: ScalarLinearParams = self.env.unwrapped.params
        #: the closed-loop pole and the gain of ``u = gain * x``
        self.closed_loop_pole = closed_loop_pole(self.params, self.pole)
        self.gain = feedback_gain(self.params, self.pole)

    def demonstrate(self, seed: int, initial_state: np.ndarray | None = None) -> Demonstration:
        """One demonstration from ``env.reset(seed=seed)``, or from ``initial_state``.

        Args:
            seed: seeds the start state and the process noise (through the environment)
                and the expert's input noise.
            initial_state: ``(1,)`` exact start state instead of the seeded one.

        Returns:
            a :class:`~hint_envs.experts.base.Demonstration` of ``T = horizon`` steps
            (fewer if the state passed ``state_limit``) with ``attrs``: ``seed``, ``mode``
            (``"stabilise"``), ``success`` (the final state within ``success_tolerance``),
            ``terminated``, ``truncated``, ``a``, ``b`` (floats, read by the synthesis),
            ``pole`` (the closed-loop pole used), ``gain`` and ``input_noise_std``.
        """
        seed = int(seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))
        noise = rng.standard_normal((self.horizon, 1)) * self.input_noise_std
        options = None if initial_state is None else {"state": initial_state}
        obs, info = self.env.reset(seed=seed, options=options)
        base: ScalarLinearEnv = self.env.unwrapped
        low, high = base.action_space.low, base.action_space.high

        observations, actions, rewards, states = [], [], [], []
        t = 0
        while True:
            x = base.get_state()
            u = np.clip(self.gain * x + noise[min(t, self.horizon - 1)], low, high)
            u = u + 0.0  # a zero gain times a negative x is -0.0: record it as 0.0
            observations.append(obs)
            states.append(x)
            actions.append(u)
            obs, reward, terminated, truncated, info = self.env.step(u)
            rewards.append(reward)
            t += 1
            if terminated or truncated:
                break
        dones = np.zeros(t)
        dones[-1] = 1.0
        attrs = {
            "seed": seed,
            "mode": "stabilise",
            "success": bool(info.get("is_success", False)),
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "a": self.params.a,
            "b": self.params.b,
            "pole": self.closed_loop_pole,
            "gain": self.gain,
            "input_noise_std": self.input_noise_std,
        }
        logger.debug("seed %d: success %s after %d steps", seed, attrs["success"], t)
        return Demonstration(
            observations=np.asarray(observations),
            actions=np.asarray(actions),
            rewards=np.asarray(rewards, dtype=np.float64),
            dones=dones,
            states=np.asarray(states),
            final_observation=np.asarray(obs),
            final_state=base.get_state(),
            attrs=attrs,
        )

    def close(self) -> None:
        """Close the environment the expert executes in."""
        self.env.close()
