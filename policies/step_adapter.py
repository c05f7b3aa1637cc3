"""Drive an unwrapped control environment one raw input at a time with a chunking policy.

:class:`StepLevelPolicy` keeps, per environment, the last ``obs_horizon`` observations and
a queue of primitive controllers. When an environment's queue is empty it samples a
composite action for it (batched across every environment that needs one), then each
step pops one controller and returns ``u = u_bar + K (x - x_bar)`` on the current control
state ``x = obs[control_indices]``, through the same
:class:`~hint_envs.wrappers.executor.ChunkExecutor` the wrappers use. This reproduces
``PrimitiveControllerWrapper(env, chunk_length, obs_horizon, gains)`` step for step:
the same observation chunks reach the policy (the first observation repeated at an
episode start) and, for the same sampled chunk, the same inputs reach the environment.
So a chunking policy drops into any per-step evaluator.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hint_envs.core import CompositeActionLayout, check_noise_law, check_noise_level
from hint_envs.wrappers.executor import ChunkExecutor
from hint_envs.wrappers.replica_noise import add_replica_noise
from policies.base import ChunkPolicyBase

__all__ = ["StepLevelPolicy"]


class StepLevelPolicy:
    """Per-step adapter for a chunking policy on ``N`` unwrapped control environments.

    ``predict(obs, state=None, episode_start=None, deterministic=False)`` has SB3's
    signature: ``obs`` is ``(N, d_obs)`` (or one ``(d_obs,)``) raw observations, and it
    returns ``(inputs (N, d_u) or (d_u,), None)``. The adapter's own state (histories and
    queues) lives in the object; ``episode_start[i]`` (or the first call, or a change of
    ``N``) clears environment ``i``'s history and queue.

    Args:
        policy: a :class:`~policies.ddpm.DDPMChunkingPolicy`, a baseline of
            :mod:`policies.baselines` (or anything with
            ``predict`` and the attributes ``config``, ``controller_size``, ``layout``).
        control_indices: indices of the control state in the observation.
        action_space: the environment's input Box; inputs are clipped to it (as the
            environment and :class:`PrimitiveControllerWrapper` do). None: no clipping.
        sigma: replica noise on the observation chunks the policy sees (normalised units;
            default ``policy.config.sigma`` if the policy has one, else 0). The control law
            always uses the true observation.
        noise_seed: seed of the replica-noise generator.
        noise_law: the law of that noise (default ``policy.config.noise_law`` if the
            policy has one, else ``"gaussian"``; :data:`hint_envs.core.NOISE_LAWS`).

    Example:
        >>> adapter = StepLevelPolicy(policy, env.unwrapped.control_indices,  # doctest: +SKIP
        ...                           action_space=env.action_space)
        >>> obs, _ = env.reset(seed=0)                                        # doctest: +SKIP
        >>> u, _ = adapter.predict(obs, episode_start=np.array([True]))       # doctest: +SKIP
    """

    def __init__(
        self,
        policy: ChunkPolicyBase,
        control_indices: np.ndarray | list[int],
        action_space: gym.spaces.Box | None = None,
        sigma: float | None = None,
        noise_seed: int = 0,
        noise_law: str | None = None,
    ):
        self.policy = policy
        self.control_indices = np.asarray(control_indices, dtype=np.int64)
        if self.control_indices.ndim != 1 or self.control_indices.size == 0:
            raise ValueError(
                f"control_indices must be a non-empty 1-D array, got {control_indices!r}"
            )
        config = policy.config
        self.obs_horizon = config.obs_horizon
        self.chunk_length = config.chunk_length
        layout = getattr(policy, "layout", None)
        if layout is None:
            layout = CompositeActionLayout.infer(
                policy.controller_size, self.control_indices.size, config.chunk_length, config.gains
            )
        if layout.d_x != self.control_indices.size:
            raise ValueError(
                f"the policy's controllers feed back on {layout.d_x} states but "
                f"control_indices has {self.control_indices.size}: {self.control_indices.tolist()}"
            )
        self.layout = layout
        self.d_obs = policy.observation_space.shape[-1]
        if int(self.control_indices.max()) >= self.d_obs or int(self.control_indices.min()) < 0:
            raise ValueError(
                f"control_indices {self.control_indices.tolist()} must index observations of "
                f"size {self.d_obs}"
            )
        if action_space is not None and tuple(action_space.shape) != (layout.d_u,):
            raise ValueError(
                f"action_space shape {action_space.shape} does not match the policy's "
                f"inputs of size {layout.d_u}"
            )
        self.executor = ChunkExecutor(
            layout,
            self.control_indices,
            None if action_space is None else action_space.low,
            None if action_space is None else action_space.high,
        )
        self.sigma = check_noise_level(
            sigma if sigma is not None else getattr(config, "sigma", 0.0)
        )
        self.noise_law = check_noise_law(
            noise_law if noise_law is not None else getattr(config, "noise_law", "gaussian")
        )
        self.noise_scale = np.asarray(getattr(policy, "noise_scale", 1.0), dtype=np.float64)
        self.rng = np.random.default_rng(noise_seed)
        self.reset()

    def reset(self, num_envs: int | None = None) -> None:
        """Forget every history and queue (and set the number of environments)."""
        self.num_envs = num_envs
        self._history: np.ndarray | None = None  # (N, obs_horizon, d_obs)
        self._u_bar = self._x_bar = self._K = None  # (N, chunk_length, ...)
        self._next: np.ndarray | None = None  # (N,) index of the next controller
        self._fresh: np.ndarray | None = None  # (N,) history empty

    def _allocate(self, n: int) -> None:
        L, lay = self.chunk_length, self.layout
        self.num_envs = n
        self._history = np.zeros((n, self.obs_horizon, self.d_obs))
        self._u_bar = np.zeros((n, L, lay.d_u))
        self._x_bar = np.zeros((n, L, lay.d_x))
        self._K = np.zeros((n, L, lay.d_u, lay.d_x))
        self._next = np.full(n, L, dtype=np.int64)  # empty queues
        self._fresh = np.ones(n, dtype=bool)

    @property
    def queue_lengths(self) -> np.ndarray:
        """``(N,)`` controllers left in each environment's queue."""
        if self._next is None:
            return np.zeros(0, dtype=np.int64)
        return self.chunk_length - self._next

    def observation_chunks(self) -> np.ndarray:
        """``(N, obs_horizon, d_obs)`` the current observation histories (oldest first)."""
        if self._history is None:
            raise RuntimeError("no observations yet: call predict first")
        return self._history.copy()

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, None]:
        """Next raw inputs for the environments.

        Args:
            observation: ``(N, d_obs)`` or ``(d_obs,)`` raw observations.
            state: ignored (SB3 compatibility); the adapter keeps its own state.
            episode_start: ``(N,)`` bools, True where an episode starts with this
                observation (its history and queue are cleared).
            deterministic: passed to the policy's ``predict`` when sampling chunks.

        Returns:
            ``(inputs (N, d_u) or (d_u,), None)``.
        """
        del state
        obs = np.asarray(observation, dtype=np.float64)
        single = obs.ndim == 1
        if single:
            obs = obs[None]
        if obs.ndim != 2 or obs.shape[1] != self.d_obs:
            raise ValueError(
                f"observations must have shape (N, {self.d_obs}) or ({self.d_obs},), got "
                f"{np.shape(observation)}"
            )
        n = obs.shape[0]
        if self._history is None or n != self.num_envs:
            self._allocate(n)
        if episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(-1)
            if starts.shape != (n,):
                raise ValueError(f"episode_start must have shape ({n},), got {starts.shape}")
            self._fresh |= starts
            self._next[starts] = self.chunk_length

        # histories: the first observation of an episode fills all obs_horizon frames
        fresh = self._fresh
        self._history[~fresh] = np.roll(self._history[~fresh], -1, axis=1)
        self._history[~fresh, -1] = obs[~fresh]
        self._history[fresh] = obs[fresh][:, None]
        self._fresh[:] = False

        need = self._next >= self.chunk_length
        if need.any():
            chunks = self._history[need]
            if self.sigma > 0:
                chunks = add_replica_noise(
                    chunks, self.sigma, self.noise_scale, self.rng, self.noise_law
                )
            composite, _ = self.policy.predict(chunks, deterministic=deterministic)
            prim = self.layout.unpack(np.asarray(composite).reshape(int(need.sum()), -1))
            self._u_bar[need] = prim.u_bar
            self._x_bar[need] = prim.x_bar
            self._K[need] = prim.K
            self._next[need] = 0

        rows = np.arange(n)
        k = self._next
        x = self.executor.control_state(obs)
        u = self.executor.inputs(self._u_bar[rows, k], self._x_bar[rows, k], self._K[rows, k], x)
        self._next += 1
        return (u[0] if single else u), None
