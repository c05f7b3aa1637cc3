"""Executing primitive controllers: the one place the control law meets an environment.

A :class:`ChunkExecutor` holds what executing a chunk of primitive controllers needs to
know about a control environment: the composite-action layout, which part of the
observation is the control state ``x = obs[control_indices]``, and the bounds and dtype
of the raw input. Three callers use it:

* :class:`~hint_envs.wrappers.PrimitiveControllerWrapper` runs a whole chunk on one
  environment with :meth:`ChunkExecutor.run`;
* :class:`~hint_envs.wrappers.PrimitiveControllerVectorWrapper` steps ``N`` environments
  in lock-step and computes each inner step's inputs with :meth:`ChunkExecutor.inputs`,
  batched over the environments;
* ``policies.StepLevelPolicy`` returns one input per call, also through
  :meth:`ChunkExecutor.inputs`, on the controller it has queued for each environment.

So the inputs an environment receives for a given chunk and a given sequence of states
are the same, bit for bit, whichever of the three executes the chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hint_envs.core import CompositeActionLayout, Primitives, control_law

__all__ = ["ChunkExecutor", "ChunkRun", "INNER_INFO_KEYS", "control_selector"]

#: The keys the chunk-level wrappers add to the last inner step's info (see
#: :meth:`ChunkRun.info`).
INNER_INFO_KEYS = ("inner_states", "inner_inputs", "inner_rewards", "steps_executed")

#: ``step(u) -> (obs, reward, terminated, truncated, info)``, Gymnasium's ``Env.step``.
StepFunction = Callable[[np.ndarray], tuple[Any, Any, Any, Any, dict[str, Any]]]


def control_selector(indices: np.ndarray) -> slice | np.ndarray:
    """Index of the control state in an observation's last axis.

    Returns:
        a slice when ``indices`` are contiguous and increasing (a view, cheaper per step),
        else the indices themselves. Either selects the same values.
    """
    indices = np.asarray(indices, dtype=np.int64)
    start = int(indices[0])
    if np.array_equal(indices, np.arange(start, start + indices.size)):
        return slice(start, start + indices.size)
    return indices


@dataclass
class ChunkRun:
    """What executing one chunk on one environment produced.

    Rows past :attr:`steps` of the per-step arrays are NaN (the arrays have a fixed shape
    so that vector environments can stack them).

    Attributes:
        states: ``(chunk_length, d_x)`` the control state before each executed step.
        inputs: ``(chunk_length, d_u)`` the inputs sent (clipped, in the env's dtype).
        rewards: ``(chunk_length,)`` the rewards received.
        observations: ``(chunk_length, d_obs)`` the observations after each step; rows
            past :attr:`steps` are unset.
        steps: how many inner steps ran (``chunk_length`` unless the episode ended).
        total_reward: the sum of the executed rewards, in execution order.
        terminated: whether the last executed step terminated the episode.
        truncated: whether the last executed step truncated the episode.
        last_info: the last executed step's info (empty if no step ran).
    """

    states: np.ndarray
    inputs: np.ndarray
    rewards: np.ndarray
    observations: np.ndarray
    steps: int
    total_reward: float
    terminated: bool
    truncated: bool
    last_info: dict[str, Any]

    def info(self) -> dict[str, Any]:
        """The chunk-level step's info: a copy of :attr:`last_info` plus
        :data:`INNER_INFO_KEYS` (``inner_states``, ``inner_inputs``, ``inner_rewards``,
        ``steps_executed``)."""
        info = dict(self.last_info)
        info["inner_states"] = self.states
        info["inner_inputs"] = self.inputs
        info["inner_rewards"] = self.rewards
        info["steps_executed"] = self.steps
        return info


@dataclass(frozen=True, eq=False)
class ChunkExecutor:
    """Execute primitive controllers ``u = u_bar + K (x - x_bar)`` on a control environment.

    Args:
        layout: the composite-action layout (``d_u``, ``d_x``, ``chunk_length``, ``gains``).
        control_indices: ``(d_x,)`` indices of the control state in the observation.
        input_low: ``(d_u,)`` lower input bounds (inputs are clipped to them), or None.
        input_high: ``(d_u,)`` upper input bounds, or None (both or neither).
        input_dtype: dtype of the inputs :meth:`run` sends (the env's action dtype).

    Raises:
        ValueError: ``control_indices`` not of length ``layout.d_x``, or only one bound.
    """

    layout: CompositeActionLayout
    control_indices: np.ndarray
    input_low: np.ndarray | None = None
    input_high: np.ndarray | None = None
    input_dtype: np.dtype = np.dtype(np.float64)
    #: :func:`control_selector` of ``control_indices``.
    select: slice | np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        indices = np.asarray(self.control_indices, dtype=np.int64)
        if indices.shape != (self.layout.d_x,):
            raise ValueError(
                f"control_indices {indices.tolist()} must name the layout's {self.layout.d_x} "
                "control states"
            )
        if (self.input_low is None) != (self.input_high is None):
            raise ValueError("give both input bounds or neither")
        object.__setattr__(self, "control_indices", indices)
        object.__setattr__(self, "select", control_selector(indices))
        object.__setattr__(self, "input_dtype", np.dtype(self.input_dtype))
        if self.input_low is not None:
            object.__setattr__(self, "input_low", np.asarray(self.input_low, dtype=np.float64))
            object.__setattr__(self, "input_high", np.asarray(self.input_high, dtype=np.float64))

    def control_state(self, obs: np.ndarray) -> np.ndarray:
        """``obs[..., control_indices]``: ``(..., d_obs) -> (..., d_x)``."""
        return obs[..., self.select]

    def inputs(
        self, u_bar: np.ndarray, x_bar: np.ndarray, K: np.ndarray, x: np.ndarray
    ) -> np.ndarray:
        """The inputs of one controller per environment at control states ``x``.

        Args:
            u_bar: ``(..., d_u)``; x_bar: ``(..., d_x)``; K: ``(..., d_u, d_x)``;
            x: ``(..., d_x)`` the true control states.

        Returns:
            ``(..., d_u)`` float64 ``u = u_bar + K (x - x_bar)`` (``u = u_bar`` without
            gains), clipped to the input bounds; a new array.
        """
        u = control_law(u_bar, x_bar, K, x) if self.layout.gains else u_bar
        if self.input_low is None:
            return np.array(u, dtype=np.float64)
        return np.minimum(np.maximum(u, self.input_low), self.input_high)

    def run(self, primitives: Primitives, obs: np.ndarray, step: StepFunction) -> ChunkRun:
        """Execute one chunk on one environment, from its current observation ``obs``.

        Each inner step ``k`` sends ``inputs(controller k, x)`` at the **true** control
        state ``x`` of the latest observation, cast to :attr:`input_dtype`, and stops
        after the first step that terminates or truncates the episode.

        Args:
            primitives: ``chunk_length`` controllers (``u_bar (T, d_u)``, ...), e.g.
                ``layout.unpack(composite_action)``.
            obs: ``(d_obs,)`` the environment's current observation.
            step: the environment's ``step``.

        Returns:
            the :class:`ChunkRun`.
        """
        T, d_u, d_x = self.layout.chunk_length, self.layout.d_u, self.layout.d_x
        u_bar, x_bar, K = primitives.u_bar, primitives.x_bar, primitives.K
        states = np.full((T, d_x), np.nan)
        inputs = np.full((T, d_u), np.nan)
        rewards = np.full(T, np.nan)
        observations = np.empty((T,) + np.shape(obs), dtype=np.asarray(obs).dtype)
        # hot path: locals only, no re-validation
        select, dtype, controller_inputs = self.select, self.input_dtype, self.inputs
        cast = dtype != np.float64
        total = 0.0
        terminated = truncated = False
        info: dict[str, Any] = {}
        n = 0
        for k in range(T):
            x = obs[select]
            states[k] = x
            sent = controller_inputs(u_bar[k], x_bar[k], K[k], x)
            if cast:
                sent = sent.astype(dtype)
            inputs[k] = sent
            obs, reward, terminated, truncated, info = step(sent)
            rewards[k] = reward
            total += float(reward)
            observations[k] = obs
            n = k + 1
            if terminated or truncated:
                break
        return ChunkRun(
            states, inputs, rewards, observations, n, total, bool(terminated), bool(truncated), info
        )
