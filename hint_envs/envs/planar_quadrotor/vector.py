"""The native vector form of the planar quadrotor environment, stepping every copy in
one batched call of :mod:`.physics`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hint_envs.core import (
    STATE_OPTION,
    check_render_args,
    check_state_bounds,
)
from hint_envs.envs.planar_quadrotor.env import PlanarQuadrotorEnv
from hint_envs.envs.planar_quadrotor.physics import (
    INPUT_DIM,
    STATE_DIM,
    STATE_FIELDS,
    QuadrotorParams,
    collided,
    cost,
    dynamics,
    goal_distance,
    observation_bounds,
    out_of_bounds,
)
from hint_envs.envs.planar_quadrotor.render import (
    TRAIL_LENGTH,
    QuadrotorRenderer,
)

logger = logging.getLogger(__name__)


class PlanarQuadrotorVectorEnv(VectorEnv):
    """``num_envs`` planar quadrotors stepped together in one batched numpy call.

    The native vector form of :class:`PlanarQuadrotorEnv` (``gym.make_vec(...,
    vectorization_mode="vector_entry_point")``, the default for this id). It reproduces
    ``gymnasium.vector.SyncVectorEnv`` over ``gym.make("hint_envs/PlanarQuadrotor-v0")``
    copies exactly — observations, rewards, terminations, truncations, infos and
    autoresets — for the same seeds and actions, at a fraction of the cost: ``step`` calls
    the batched :func:`dynamics`, :func:`cost`, :func:`collided` and :func:`out_of_bounds`
    once for all environments (only environments being autoreset draw their new start
    state one by one, from their own generator, as the single environments do).

    Spaces: ``single_observation_space`` ``Box(6,)`` and ``single_action_space`` ``Box(2,)``
    are those of the single environment; ``observation_space`` ``(num_envs, 6)`` and
    ``action_space`` ``(num_envs, 2)`` batch them. ``control_indices``, ``obs_keys`` and
    ``params`` are as in the single environment; ``get_state()`` returns ``(num_envs, 6)``.

    Seeding: ``reset(seed=s)`` seeds environment ``i`` with ``s + i`` (or ``seed[i]`` for a
    list) through ``gymnasium.utils.seeding.np_random``, like ``SyncVectorEnv``; each
    environment keeps its own generator for later autoresets.

    Reset options: ``"state"``, an exact state ``(num_envs, 6)`` (or ``(6,)`` for all),
    finite and inside ``single_observation_space`` (else ``ValueError``, as for the single
    environment);
    ``"reset_mask"``, a bool ``(num_envs,)`` array: reset only those environments (the
    others keep their state, and their info entries are masked out).

    Autoreset (``autoreset_mode``, gymnasium's :class:`~gymnasium.vector.AutoresetMode`):

    * ``NEXT_STEP`` (default): the step after an environment ended resets it, ignoring its
      action and returning reward 0, not terminated, not truncated and the reset info.
    * ``SAME_STEP``: an environment that ends is reset in the same step; its last
      observation and info are in ``info["final_obs"]`` and ``info["final_info"]``.
    * ``DISABLED``: never reset automatically; reset ended environments with
      ``reset(options={"reset_mask": ended})``. Stepping an ended environment continues
      its physics (finite, never NaN; the crash penalty is not paid twice), where
      ``SyncVectorEnv`` fails an assertion.

    Actions are validated for every environment, including those an autoreset ignores.

    Infos follow the vector format of ``SyncVectorEnv``: for every key of the single
    environment's info (``"is_success"``, ``"distance_to_goal"``, and after a step
    ``"collision"``, ``"out_of_bounds"``, ``"unstable"``) an array over environments plus a
    bool mask ``"_key"`` saying which environments reported it.

    Args:
        num_envs: number of quadrotors.
        max_episode_steps: truncation after this many steps per environment (the
            registration's 100 by default); None for no time limit.
        render_mode: None or ``"rgb_array"``; ``render()`` then returns a tuple of
            ``num_envs`` frames as :meth:`PlanarQuadrotorEnv.render` draws them.
        params: the task's constants, as for the single environment.
        autoreset_mode: an ``AutoresetMode`` or its value (``"NextStep"``, ``"SameStep"``,
            ``"Disabled"``).

    Example:
        >>> import gymnasium as gym, hint_envs
        >>> envs = gym.make_vec("hint_envs/PlanarQuadrotor-v0", num_envs=4)
        >>> obs, info = envs.reset(seed=0)
        >>> obs.shape
        (4, 6)
        >>> obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
    """

    metadata = {
        "render_modes": ["rgb_array"],
        "render_fps": 20,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }
    #: robomimic observation keys -> [start, stop) in the flat observation
    obs_keys: dict[str, tuple[int, int]] = PlanarQuadrotorEnv.obs_keys

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = 100,
        render_mode: str | None = None,
        params: QuadrotorParams | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)):
            raise TypeError(f"num_envs must be a positive integer, got {num_envs!r}")
        if num_envs < 1:
            raise ValueError(f"num_envs must be a positive integer, got {num_envs}")
        if max_episode_steps is not None and (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, (int, np.integer))
            or max_episode_steps < 1
        ):
            raise ValueError(
                f"max_episode_steps must be a positive integer or None, got {max_episode_steps!r}"
            )
        check_render_args(render_mode, self.metadata["render_modes"])
        if params is not None and not isinstance(params, QuadrotorParams):
            raise TypeError(f"params must be a QuadrotorParams, got {type(params).__name__}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError as e:
            raise ValueError(
                f"autoreset_mode must be a gymnasium.vector.AutoresetMode or one of "
                f"{[m.value for m in AutoresetMode]}, got {autoreset_mode!r}"
            ) from e

        self.num_envs = int(num_envs)
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.render_mode = render_mode
        self.params = params if params is not None else QuadrotorParams()
        self.autoreset_mode = mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.control_indices = np.arange(STATE_DIM)

        self.single_action_space = spaces.Box(
            self.params.input_low, self.params.input_high, dtype=np.float64
        )
        low, high = observation_bounds(self.params)
        self.single_observation_space = spaces.Box(low, high, dtype=np.float64)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

        n = self.num_envs
        self._states = np.zeros((n, STATE_DIM))
        self._elapsed = np.zeros(n, dtype=np.int64)
        self._crashed = np.zeros(n, dtype=bool)
        self._ended = np.zeros(n, dtype=bool)  # ended at the last step: autoreset pending
        self._was_reset = np.zeros(n, dtype=bool)
        self._generators: list[np.random.Generator | None] = [None] * n
        self._seeds: list[int | None] = [None] * n
        # rendering: per-env ring of recent positions (oldest first) and its fill
        self._trail = np.zeros((n, TRAIL_LENGTH, 2))
        self._trail_count = np.zeros(n, dtype=np.int64)
        self._renderer: QuadrotorRenderer | None = None

    # -- seeding -------------------------------------------------------------------------

    def _generator(self, i: int) -> np.random.Generator:
        if self._generators[i] is None:
            self._generators[i], self._seeds[i] = seeding.np_random()
        return self._generators[i]

    @property
    def np_random(self) -> tuple[np.random.Generator, ...]:
        """The environments' generators, one per environment (as ``SyncVectorEnv``)."""
        return tuple(self._generator(i) for i in range(self.num_envs))

    @property
    def np_random_seed(self) -> tuple[int, ...]:
        """The seeds of the environments' generators (-1 where unknown)."""
        for i in range(self.num_envs):
            self._generator(i)
        return tuple(self._seeds)

    def _seed_list(self, seed: int | Sequence[int | None] | None) -> list[int | None]:
        if seed is None:
            return [None] * self.num_envs
        if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            return [int(seed) + i for i in range(self.num_envs)]
        if isinstance(seed, (str, bytes)) or not isinstance(seed, Sequence | np.ndarray):
            raise TypeError(
                f"seed must be None, an int or a list of {self.num_envs} ints/None, got {seed!r}"
            )
        seeds = list(seed)
        if len(seeds) != self.num_envs:
            raise ValueError(
                f"a list of seeds must have one per environment ({self.num_envs}), got {len(seeds)}"
            )
        return seeds

    # -- reset and step ------------------------------------------------------------------

    def get_state(self) -> np.ndarray:
        """Copy of the exact simulator states ``(num_envs, 6)`` (equal to the observations)."""
        return self._states.copy()

    def reset(
        self,
        *,
        seed: int | Sequence[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all environments, or those in ``options["reset_mask"]``.

        Returns:
            observations ``(num_envs, 6)`` (environments not reset keep theirs) and the
            vector info (``"is_success"``, ``"distance_to_goal"`` with ``"_key"`` masks
            true for the environments reset).
        """
        seeds = self._seed_list(seed)
        options = dict(options) if options else {}
        mask = options.pop("reset_mask", None)
        unknown = set(options) - {STATE_OPTION}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; supported: ['state', 'reset_mask']"
            )
        mask = self._check_reset_mask(mask)
        states = self._check_state_option(options.get(STATE_OPTION))

        for i in np.flatnonzero(mask):
            if seeds[i] is not None:
                self._generators[i], self._seeds[i] = seeding.np_random(seeds[i])
            if states is None:
                self._states[i] = self._generator(i).uniform(
                    self.params.start_low, self.params.start_high
                )
            else:
                self._states[i] = states[i]
        self._elapsed[mask] = 0
        self._crashed[mask] = False
        self._ended[mask] = False
        self._was_reset[mask] = True
        self._restart_trail(mask)
        return self._states.copy(), self._info_for(mask, self._states, self._crashed)

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every environment with its row of ``actions`` ``(num_envs, 2)``.

        Returns:
            observations ``(num_envs, 6)``, rewards ``(num_envs,)`` float64, terminated and
            truncated ``(num_envs,)`` bool, and the vector info (see the class docstring).

        Raises:
            ValueError: ``actions`` is not ``(num_envs, 2)`` or holds NaN/inf.
            gymnasium.error.ResetNeeded: some environment was never reset.
        """
        if not self._was_reset.all():
            raise gym.error.ResetNeeded(
                f"environments {np.flatnonzero(~self._was_reset).tolist()} were never reset: "
                "call reset() before step()"
            )
        u = np.clip(
            self._check_actions(actions),
            self.single_action_space.low,
            self.single_action_space.high,
        )
        p = self.params
        states = self._states
        next_states = dynamics(states, u, p)
        unstable = ~np.all(np.isfinite(next_states), axis=-1)
        if unstable.any():  # cannot happen with bounded inputs and states, but never emit NaN
            next_states[unstable] = states[unstable]
        rewards = -cost(next_states, u, p)
        hit = collided(next_states, p)
        left = out_of_bounds(next_states, p) | unstable
        terminated = hit | left
        rewards = np.where(terminated & ~self._crashed, rewards - p.crash_penalty, rewards)
        self._crashed |= terminated
        self._elapsed += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:
            truncated = self._elapsed >= self.max_episode_steps
        self._states = next_states
        stepped = np.ones(self.num_envs, dtype=bool)
        infos: dict[str, Any] = {}

        if self.autoreset_mode == AutoresetMode.NEXT_STEP and self._ended.any():
            # environments that ended last step are reset now; their action is ignored
            restart = self._ended
            stepped = ~restart
            rewards[restart] = 0.0
            terminated[restart] = False
            truncated[restart] = False
            self._restart(restart)
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            done = terminated | truncated
            if done.any():
                final_obs = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    final_obs[i] = next_states[i].copy()
                step_info = self._info_for(done, next_states, self._crashed)
                step_info.update(self._step_flags(done, hit, left, unstable))
                infos.update(
                    final_obs=final_obs,
                    _final_obs=done.copy(),
                    final_info=step_info,
                    _final_info=done.copy(),
                )
                stepped = ~done
                self._restart(done)

        self._ended = terminated | truncated
        everyone = np.ones(self.num_envs, dtype=bool)
        infos.update(self._info_for(everyone, self._states, self._crashed))
        if stepped.any():
            infos.update(self._step_flags(stepped, hit, left, unstable))
        self._record_trail(stepped)
        return self._states.copy(), rewards, terminated, truncated, infos

    def render(self) -> tuple[np.ndarray, ...] | None:
        """Return one frame ``(448, 416, 3)`` uint8 per environment (default task), or None
        (with a logged warning) when made without a render mode."""
        if self.render_mode is None:
            logger.warning(
                "render() called on PlanarQuadrotorVectorEnv made without a render mode; make it "
                "with render_mode='rgb_array' to get frames"
            )
            return None
        if self._renderer is None:
            self._renderer = QuadrotorRenderer(self.params)
        return tuple(
            self._renderer.draw(
                self._states[i], self._trail[i, TRAIL_LENGTH - self._trail_count[i] :]
            )
            for i in range(self.num_envs)
        )

    # -- helpers -------------------------------------------------------------------------

    def _restart(self, which: np.ndarray) -> None:
        """Autoreset the environments in the bool mask ``which`` from their generators."""
        for i in np.flatnonzero(which):
            self._states[i] = self._generator(i).uniform(
                self.params.start_low, self.params.start_high
            )
        self._elapsed[which] = 0
        self._crashed[which] = False
        self._restart_trail(which)

    def _info_for(self, which: np.ndarray, states: np.ndarray, crashed: np.ndarray) -> dict:
        """``is_success`` and ``distance_to_goal`` for the environments in ``which``."""
        distance = goal_distance(states, self.params)
        success = (distance < self.params.goal_tolerance) & ~crashed  # reached_goal, not crashed
        return {
            "is_success": np.where(which, success, False),
            "_is_success": which.copy(),
            "distance_to_goal": np.where(which, distance, 0.0),
            "_distance_to_goal": which.copy(),
        }

    @staticmethod
    def _step_flags(which, hit, left, unstable) -> dict:
        """The step-only info keys for the environments in ``which``."""
        info: dict[str, Any] = {}
        for key, value in (("collision", hit), ("out_of_bounds", left), ("unstable", unstable)):
            info[key] = value & which
            info[f"_{key}"] = which.copy()
        return info

    def _check_actions(self, actions: Any) -> np.ndarray:
        array = np.asarray(actions, dtype=np.float64)
        expected = (self.num_envs, INPUT_DIM)
        if array.shape != expected:
            raise ValueError(
                f"actions must have shape {expected} (one (thrust, torque) row per environment), "
                f"got {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            bad = np.flatnonzero(~np.all(np.isfinite(array), axis=-1)).tolist()
            raise ValueError(f"actions contain NaN or inf in the rows of environments {bad}")
        return array

    def _check_reset_mask(self, mask: Any) -> np.ndarray:
        if mask is None:
            return np.ones(self.num_envs, dtype=bool)
        if not isinstance(mask, np.ndarray):
            raise TypeError(f"options['reset_mask'] must be a numpy array, got {type(mask)}")
        if mask.shape != (self.num_envs,):
            raise ValueError(
                f"options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}"
            )
        if mask.dtype != np.bool_:
            raise TypeError(f"options['reset_mask'] must have dtype bool, got {mask.dtype}")
        if not mask.any():
            raise ValueError("options['reset_mask'] must select at least one environment")
        return mask.copy()

    def _check_state_option(self, state: Any) -> np.ndarray | None:
        if state is None:
            return None
        array = np.asarray(state, dtype=np.float64)
        if array.shape not in ((STATE_DIM,), (self.num_envs, STATE_DIM)):
            raise ValueError(
                f"options['state'] must have shape ({self.num_envs}, {STATE_DIM}) (one (x, z, "
                f"theta, xdot, zdot, thetadot) row per environment) or ({STATE_DIM},) for all, "
                f"got shape {array.shape}"
            )
        if not np.all(np.isfinite(array)):
            raise ValueError(f"options['state'] must be finite, got {array}")
        states = np.broadcast_to(array, (self.num_envs, STATE_DIM))
        space = self.single_observation_space
        for i, state in enumerate(states):
            try:  # the observation is the state: it must lie in the observation space
                check_state_bounds(
                    state, space.low, space.high, STATE_FIELDS, "the observation space"
                )
            except ValueError as error:
                raise ValueError(f"{error} (environment {i})") from None
        return states

    def _restart_trail(self, which: np.ndarray) -> None:
        if self.render_mode is None:
            return
        self._trail[which, -1] = self._states[which, :2]
        self._trail_count[which] = 1

    def _record_trail(self, which: np.ndarray) -> None:
        if self.render_mode is None:
            return
        self._trail[which] = np.roll(self._trail[which], -1, axis=1)
        self._trail[which, -1] = self._states[which, :2]
        self._trail_count[which] = np.minimum(self._trail_count[which] + 1, TRAIL_LENGTH)
