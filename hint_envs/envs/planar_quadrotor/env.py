"""The single planar quadrotor environment, a thin shell around :mod:`.physics`."""

from __future__ import annotations

import logging
from collections import deque

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hint_envs.core import (
    STATE_OPTION,
    EpisodeGuard,
    check_action,
    check_render_args,
    check_state,
    check_state_bounds,
)
from hint_envs.envs.planar_quadrotor.physics import (
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


class PlanarQuadrotorEnv(gym.Env):
    """Planar quadrotor that must fly past a disk obstacle to hover at a goal.

    ## Description
    A planar (x-z) quadrotor, after Drake's ``Quadrotor2D`` (R. Tedrake, *Underactuated
    Robotics*, ch. 3), as in the HINT paper (Block et al., 2023, arXiv 2307.14619). It
    starts at rest near the origin and must reach a hover at the goal ``(0, 3)`` m. A disk
    obstacle of radius 0.4 m centred at ``(0, 1.5)`` m sits on the straight line between,
    so a pilot passes left or right of it: the bifurcation of the paper's Fig. 1.

    The dynamics are the pure function :func:`dynamics` (semi-implicit Euler at
    ``dt = 0.05`` s) of :class:`QuadrotorParams`:
    ``xddot = -F sin(theta) / m``, ``zddot = F cos(theta) / m - g``,
    ``thetaddot = tau / I``, with analytic Jacobians in :func:`jacobians`.

    This is a *control environment* (``hint_envs.core``): ``control_indices`` names the
    whole state, ``reset(options={"state": s})`` puts it into an exact state and
    ``get_state()`` returns the current one.

    ## Action Space
    ``Box(2,)`` float64, the raw input: total thrust ``F`` in ``[0, 2.5 m g]`` N and torque
    ``tau`` in ``[-0.1, 0.1]`` N m. Inputs outside the box are clipped to it; an action of
    the wrong shape or with NaN/inf raises ``ValueError``.

    ## Observation Space
    ``Box(6,)`` float64, the full state (also ``get_state()``):

    | Num | Observation | Unit | Episode ends beyond |
    |-----|-------------|------|---------------------|
    | 0 | x, horizontal position | m | [-3, 3] |
    | 1 | z, height | m | [-1.5, 5] |
    | 2 | theta, pitch (0 = level) | rad | [-pi/2, pi/2] |
    | 3 | xdot | m/s | [-20, 20] |
    | 4 | zdot | m/s | [-20, 20] |
    | 5 | thetadot | rad/s | [-20, 20] |

    The space's bounds are these limits widened by one step of the largest acceleration
    (:func:`observation_bounds`), since the last observation of an episode may lie past
    them. robomimic observation key: ``"state"`` (all six).

    ## Rewards
    ``-(dx^T Q dx + du^T R du)`` about the hover at the goal, ``Q = diag(1, 1, 0.1, 0.1,
    0.1, 0.01)``, ``R = diag(0.01, 1)``, and ``-100`` once on a crash (collision or
    leaving the bounds).

    ## Starting State
    At rest, uniform in ``x in [-0.5, 0.5]``, ``z in [-0.25, 0.25]``,
    ``theta in [-0.1, 0.1]`` (one draw from ``self.np_random``), or exactly
    ``options["state"]``: a ``(6,)`` state, finite and inside the observation space (it is
    the first observation), else ``ValueError`` naming the entries out of bounds. A state
    beyond the flight bounds of the table below (but inside the observation space) is a
    terminal one: the first ``step()`` ends the episode.

    ## Episode End
    Terminated when the body (a disk of radius 0.25 m, the arm length) touches the
    obstacle or the state leaves the bounds above; truncated after 100 steps (5 s, set in
    the registration). ``info["is_success"]`` is true while the body is within 0.25 m of
    the goal and has not crashed; an episode succeeds if it ends that way.

    ## Arguments
    ``gym.make("hint_envs/PlanarQuadrotor-v0", render_mode="rgb_array",
    params=QuadrotorParams(...))``: ``params`` replaces any constant above.
    ``render_mode="rgb_array"`` makes ``render()`` return a ``(448, 416, 3)`` uint8 frame
    drawn with numpy only (:class:`QuadrotorRenderer`: flight box, obstacle, goal and its
    tolerance circle, the body bar with its rotors, and the last 40 positions);
    ``render()`` returns None without a render mode.

    ``gym.make_vec("hint_envs/PlanarQuadrotor-v0", num_envs=N)`` gives the native batched
    :class:`PlanarQuadrotorVectorEnv`, which reproduces ``SyncVectorEnv`` of N of these
    environments exactly.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    #: robomimic observation keys -> [start, stop) in the flat observation
    obs_keys: dict[str, tuple[int, int]] = {"state": (0, STATE_DIM)}

    def __init__(self, render_mode: str | None = None, params: QuadrotorParams | None = None):
        check_render_args(render_mode, self.metadata["render_modes"])
        self._guard = EpisodeGuard("hint_envs/PlanarQuadrotor-v0")
        if params is not None and not isinstance(params, QuadrotorParams):
            raise TypeError(f"params must be a QuadrotorParams, got {type(params).__name__}")
        self.params = params if params is not None else QuadrotorParams()
        self.render_mode = render_mode
        self.control_indices = np.arange(STATE_DIM)
        self.action_space = spaces.Box(
            self.params.input_low, self.params.input_high, dtype=np.float64
        )
        low, high = observation_bounds(self.params)
        self.observation_space = spaces.Box(low, high, dtype=np.float64)
        self._state = np.zeros(STATE_DIM)
        self._crashed = False
        # rendering: recent positions, and the painter (made on the first render)
        self._trail: deque[np.ndarray] = deque(maxlen=TRAIL_LENGTH)
        self._renderer: QuadrotorRenderer | None = None

    def get_state(self) -> np.ndarray:
        """Copy of the exact simulator state ``(6,)`` (equal to the observation)."""
        return self._state.copy()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {STATE_OPTION}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: ['state']")
        if options.get(STATE_OPTION) is not None:
            state = check_state(
                options[STATE_OPTION], STATE_DIM, "(x, z, theta, xdot, zdot, thetadot)"
            )
            # the observation is the state: it must lie in the observation space
            check_state_bounds(
                state,
                self.observation_space.low,
                self.observation_space.high,
                STATE_FIELDS,
                "the observation space (the state is the observation)",
            )
            self._state = state
        else:
            self._state = self.np_random.uniform(self.params.start_low, self.params.start_high)
        self._crashed = False
        self._trail.clear()
        self._record_trail()
        self._guard.reset()
        return self._state.copy(), self._info()

    def step(self, action):
        self._guard.before_step()
        u = np.clip(
            check_action(action, self.action_space), self.action_space.low, self.action_space.high
        )
        next_state = dynamics(self._state, u, self.params)
        unstable = not np.all(np.isfinite(next_state))
        if unstable:  # cannot happen with bounded inputs and states, but never emit NaN
            next_state = self._state.copy()
        reward = -float(cost(next_state, u, self.params))
        self._state = next_state
        hit = bool(collided(next_state, self.params))
        left = bool(out_of_bounds(next_state, self.params)) or unstable
        terminated = hit or left
        if terminated and not self._crashed:
            reward -= self.params.crash_penalty
        self._crashed = self._crashed or terminated
        self._record_trail()
        info = self._info()
        info.update(collision=hit, out_of_bounds=left, unstable=unstable)
        self._guard.after_step(terminated)
        return self._state.copy(), reward, terminated, False, info

    def close(self) -> None:
        self._guard.close()
        super().close()

    def render(self) -> np.ndarray | None:
        """Return the current frame, ``(448, 416, 3)`` uint8 for the default task.

        Drawn with numpy only (:class:`QuadrotorRenderer`): flight box, obstacle, goal with
        its tolerance circle, the quadrotor and the trail of its last positions. Returns
        None (and logs a warning) when the environment was made without a render mode.
        """
        if self.render_mode is None:
            logger.warning(
                "render() called on PlanarQuadrotorEnv made without a render mode; make it with "
                "render_mode='rgb_array' to get frames"
            )
            return None
        if self._renderer is None:
            self._renderer = QuadrotorRenderer(self.params)
        return self._renderer.draw(self._state, np.asarray(self._trail))

    def _record_trail(self) -> None:
        if self.render_mode is not None:
            self._trail.append(self._state[:2].copy())

    def _info(self) -> dict:
        distance = float(goal_distance(self._state, self.params))
        return {
            "is_success": bool(distance < self.params.goal_tolerance and not self._crashed),
            "distance_to_goal": distance,
        }
