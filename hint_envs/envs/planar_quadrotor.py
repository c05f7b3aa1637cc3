"""Planar quadrotor with a disk obstacle between the start region and the goal.

Physics are pure functions over a frozen :class:`QuadrotorParams`; the environment
classes below are thin shells around them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hint_envs.core import STATE_OPTION, check_action

#: State layout: x (m), z (m), theta (rad), xdot (m/s), zdot (m/s), thetadot (rad/s).
STATE_DIM = 6
#: Input layout: total thrust (N), torque (N m).
INPUT_DIM = 2


@dataclass(frozen=True)
class QuadrotorParams:
    """Physical constants, task geometry and limits of the planar quadrotor.

    Mass, inertia and arm length are those of Drake's ``Quadrotor2D`` example (R. Tedrake,
    *Underactuated Robotics*, ch. 3), the same planar model the HINT paper's quadrotor
    experiments use.
    """

    mass: float = 0.486  # kg (Drake Quadrotor2D)
    inertia: float = 0.00383  # kg m^2 (Drake Quadrotor2D)
    arm_length: float = 0.25  # m (Drake Quadrotor2D); also the collision radius of the body
    gravity: float = 9.81  # m/s^2
    dt: float = 0.05  # s, one control step (20 Hz), semi-implicit Euler
    max_thrust_factor: float = 2.5  # thrust in [0, max_thrust_factor * m g]
    max_torque: float = 0.1  # N m, |torque| <= max_torque
    goal: tuple[float, float] = (0.0, 3.0)  # m, (x, z) hover target
    goal_tolerance: float = 0.25  # m, success radius around the goal
    obstacle_center: tuple[float, float] = (0.0, 1.5)  # m
    obstacle_radius: float = 0.4  # m
    x_bounds: tuple[float, float] = (-3.0, 3.0)  # m, leaving them terminates
    z_bounds: tuple[float, float] = (-1.5, 5.0)  # m
    max_abs_theta: float = float(np.pi / 2)  # rad, flipping past it terminates
    max_speed: float = 20.0  # m/s and rad/s bound on each velocity component
    # start region: uniform box around the origin, at rest
    start_low: tuple[float, ...] = (-0.5, -0.25, -0.1, 0.0, 0.0, 0.0)
    start_high: tuple[float, ...] = (0.5, 0.25, 0.1, 0.0, 0.0, 0.0)
    # reward: -(dx^T Q dx + du^T R du), dx from the hover state at the goal
    state_cost: tuple[float, ...] = (1.0, 1.0, 0.1, 0.1, 0.1, 0.01)
    input_cost: tuple[float, ...] = (0.01, 1.0)
    crash_penalty: float = 100.0  # subtracted once on collision or leaving the bounds

    @property
    def hover_thrust(self) -> float:
        """Thrust that balances gravity, ``m g`` (N)."""
        return self.mass * self.gravity

    @property
    def input_low(self) -> np.ndarray:
        return np.array([0.0, -self.max_torque])

    @property
    def input_high(self) -> np.ndarray:
        return np.array([self.max_thrust_factor * self.hover_thrust, self.max_torque])

    @property
    def goal_state(self) -> np.ndarray:
        """Hover state at the goal, ``(6,)``."""
        return np.array([self.goal[0], self.goal[1], 0.0, 0.0, 0.0, 0.0])

    @property
    def hover_input(self) -> np.ndarray:
        """Input that holds a hover, ``(2,)``."""
        return np.array([self.hover_thrust, 0.0])

    @property
    def state_bound(self) -> np.ndarray:
        """Bounds of the state as a ``(2, 6)`` array of ``(low, high)`` rows."""
        low = [self.x_bounds[0], self.z_bounds[0], -self.max_abs_theta] + [-self.max_speed] * 3
        high = [self.x_bounds[1], self.z_bounds[1], self.max_abs_theta] + [self.max_speed] * 3
        return np.array([low, high])


def accelerations(state: np.ndarray, action: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Continuous-time accelerations ``(xddot, zddot, thetaddot)``, batched: ``(..., 3)``."""
    theta = state[..., 2]
    thrust, torque = action[..., 0], action[..., 1]
    return np.stack(
        [
            -thrust * np.sin(theta) / params.mass,
            thrust * np.cos(theta) / params.mass - params.gravity,
            torque / params.inertia,
        ],
        axis=-1,
    )


def dynamics(state: np.ndarray, action: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """One control step of the discrete-time dynamics (semi-implicit Euler).

    ``v' = v + dt a(s, u)``, ``q' = q + dt v'``, with ``q = (x, z, theta)`` and
    ``v = (xdot, zdot, thetadot)``. The input is used as given (no clipping: the
    environment clips to its action space before calling this).

    Args:
        state: ``(..., 6)``; action: ``(..., 2)``.

    Returns:
        next state ``(..., 6)``.
    """
    state = np.asarray(state, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    velocity = state[..., 3:] + params.dt * accelerations(state, action, params)
    position = state[..., :3] + params.dt * velocity
    return np.concatenate([position, velocity], axis=-1)


def jacobians(
    state: np.ndarray, action: np.ndarray, params: QuadrotorParams
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic Jacobians of :func:`dynamics`, batched.

    Returns:
        ``A = d next_state / d state`` of shape ``(..., 6, 6)`` and
        ``B = d next_state / d action`` of shape ``(..., 6, 2)``.
    """
    state = np.asarray(state, dtype=np.float64)
    action = np.asarray(action, dtype=np.float64)
    batch = np.broadcast_shapes(state.shape[:-1], action.shape[:-1])
    dt, m = params.dt, params.mass
    theta = state[..., 2]
    thrust = action[..., 0]
    sin, cos = np.sin(theta), np.cos(theta)
    # d acceleration / d theta and d acceleration / d input
    da_dtheta = np.zeros(batch + (3,))
    da_dtheta[..., 0] = -thrust * cos / m
    da_dtheta[..., 1] = -thrust * sin / m
    da_du = np.zeros(batch + (3, 2))
    da_du[..., 0, 0] = -sin / m
    da_du[..., 1, 0] = cos / m
    da_du[..., 2, 1] = 1.0 / params.inertia

    A = np.zeros(batch + (6, 6))
    A[..., :, :] = np.eye(6)
    # velocity rows: v' = v + dt a
    A[..., 3:, 2] += dt * da_dtheta
    # position rows: q' = q + dt v' = q + dt v + dt^2 a
    A[..., :3, 3:] += dt * np.eye(3)
    A[..., :3, 2] += dt * dt * da_dtheta
    B = np.zeros(batch + (6, 2))
    B[..., 3:, :] = dt * da_du
    B[..., :3, :] = dt * dt * da_du
    return A, B


def collided(state: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Whether the body (a disk of radius ``arm_length``) touches the obstacle: ``(...,)``."""
    offset = state[..., :2] - np.asarray(params.obstacle_center)
    return np.linalg.norm(offset, axis=-1) < params.obstacle_radius + params.arm_length


def out_of_bounds(state: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Whether the state left the flight box, flipped, over-sped or is not finite: ``(...,)``."""
    low, high = params.state_bound
    finite = np.all(np.isfinite(state), axis=-1)
    inside = np.all((state >= low) & (state <= high), axis=-1)
    return ~(finite & inside)


def reached_goal(state: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Whether the body is within ``goal_tolerance`` of the goal: ``(...,)``."""
    offset = state[..., :2] - np.asarray(params.goal)
    return np.linalg.norm(offset, axis=-1) < params.goal_tolerance


def cost(state: np.ndarray, action: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Quadratic running cost ``dx^T Q dx + du^T R du`` about the goal hover: ``(...,)``."""
    dx = state - params.goal_state
    du = action - params.hover_input
    return dx**2 @ np.asarray(params.state_cost) + du**2 @ np.asarray(params.input_cost)


def observation_bounds(params: QuadrotorParams) -> np.ndarray:
    """Finite bounds that every emitted observation lies in, ``(2, 6)``.

    Episodes end as soon as the state leaves :attr:`QuadrotorParams.state_bound`, so an
    observation is at most one step of the largest acceleration beyond it.
    """
    max_acc = np.array(
        [
            params.input_high[0] / params.mass + params.gravity,
            params.input_high[0] / params.mass + params.gravity,
            params.max_torque / params.inertia,
        ]
    )
    dv = params.dt * max_acc
    dq = params.dt * (params.max_speed + dv)
    margin = np.concatenate([dq, dv])
    low, high = params.state_bound
    return np.array([low - margin, high + margin])


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
    ``options["state"]``.

    ## Episode End
    Terminated when the body (a disk of radius 0.25 m, the arm length) touches the
    obstacle or the state leaves the bounds above; truncated after 100 steps (5 s, set in
    the registration). ``info["is_success"]`` is true while the body is within 0.25 m of
    the goal and has not crashed; an episode succeeds if it ends that way.

    ## Arguments
    ``gym.make("hint_envs/PlanarQuadrotor-v0", render_mode="rgb_array",
    params=QuadrotorParams(...))``: ``params`` replaces any constant above.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}
    #: robomimic observation keys -> [start, stop) in the flat observation
    obs_keys: dict[str, tuple[int, int]] = {"state": (0, STATE_DIM)}

    def __init__(self, render_mode: str | None = None, params: QuadrotorParams | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}"
            )
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
            state = np.asarray(options[STATE_OPTION], dtype=np.float64)
            if state.shape != (STATE_DIM,):
                raise ValueError(
                    f"options['state'] must have shape ({STATE_DIM},) = (x, z, theta, xdot, "
                    f"zdot, thetadot), got shape {state.shape}"
                )
            if not np.all(np.isfinite(state)):
                raise ValueError(f"options['state'] must be finite, got {state}")
            self._state = state.copy()
        else:
            self._state = self.np_random.uniform(self.params.start_low, self.params.start_high)
        self._crashed = False
        return self._state.copy(), self._info()

    def step(self, action):
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
        info = self._info()
        info.update(collision=hit, out_of_bounds=left, unstable=unstable)
        return self._state.copy(), reward, terminated, False, info

    def _info(self) -> dict:
        distance = float(np.linalg.norm(self._state[:2] - np.asarray(self.params.goal)))
        return {
            "is_success": bool(distance < self.params.goal_tolerance and not self._crashed),
            "distance_to_goal": distance,
        }
