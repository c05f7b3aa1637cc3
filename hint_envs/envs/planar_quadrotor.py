"""Planar quadrotor with a disk obstacle between the start region and the goal.

Physics are pure functions over a frozen :class:`QuadrotorParams`; the environment
classes below are thin shells around them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from hint_envs.core import (
    STATE_OPTION,
    check_action,
    check_render_args,
    check_state,
    check_state_bounds,
)
from hint_envs.envs._draw import paint_disk, paint_segment

logger = logging.getLogger(__name__)

#: State layout: x (m), z (m), theta (rad), xdot (m/s), zdot (m/s), thetadot (rad/s).
STATE_DIM = 6
#: Names of the state entries, in order (error messages).
STATE_FIELDS = ("x", "z", "theta", "xdot", "zdot", "thetadot")
#: Input layout: total thrust (N), torque (N m).
INPUT_DIM = 2
#: Pixels per metre of rendered frames.
RENDER_SCALE = 64.0
#: Number of recent positions drawn as the trail of a rendered frame (2 s at 20 Hz).
TRAIL_LENGTH = 40


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


def goal_distance(state: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Distance (m) of the body's centre from the goal: ``(...,)``."""
    offset = np.asarray(state, dtype=np.float64)[..., :2] - np.asarray(params.goal)
    return np.linalg.norm(offset, axis=-1)


def reached_goal(state: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Whether the body is within ``goal_tolerance`` of the goal: ``(...,)``."""
    return goal_distance(state, params) < params.goal_tolerance


def cost(state: np.ndarray, action: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """Quadratic running cost ``dx^T Q dx + du^T R du`` about the goal hover: ``(...,)``.

    Summed elementwise over the last axis rather than with a BLAS product, so a row of a
    batch gets bit-for-bit the cost of that row alone (the native vector env relies on it).
    """
    dx = np.asarray(state, dtype=np.float64) - params.goal_state
    du = np.asarray(action, dtype=np.float64) - params.hover_input
    return (dx**2 * np.asarray(params.state_cost)).sum(axis=-1) + (
        du**2 * np.asarray(params.input_cost)
    ).sum(axis=-1)


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


# ---------------------------------------------------------------------------------------
# Rendering: anti-aliased shapes painted with numpy only (no pygame or matplotlib).

_COLORS = {
    "outside": (226, 226, 232),
    "inside": (255, 255, 255),
    "grid": (234, 234, 240),
    "box": (90, 90, 104),
    "obstacle": (196, 78, 64),
    "collision": (232, 176, 166),
    "goal": (40, 150, 70),
    "trail": (96, 140, 222),
    "body": (28, 44, 110),
    "rotor": (236, 128, 32),
}


class QuadrotorRenderer:
    """Draws RGB frames of the planar quadrotor task with numpy only.

    A frame shows the flight box (leaving it ends the episode) on a 1 m grid, the obstacle
    disk with the ring the body's centre must stay out of (obstacle radius + arm length),
    the goal marker with its tolerance circle, a trail of recent positions and the
    quadrotor: a body bar of length ``2 * arm_length`` rotated by ``theta`` with a rotor
    at each end, on the side the thrust pushes to.

    Args:
        params: the task whose geometry is drawn.
        scale: pixels per metre.
        margin: metres shown around the flight box.

    Frames are ``(height, width, 3)`` uint8 with ``height = round((z range + 2 margin) *
    scale)``, ``width = round((x range + 2 margin) * scale)``: ``(448, 416, 3)`` for the
    default task.
    """

    def __init__(self, params: QuadrotorParams, scale: float = RENDER_SCALE, margin: float = 0.25):
        self.params = params
        self.scale = float(scale)
        self._x_min = params.x_bounds[0] - margin
        self._z_max = params.z_bounds[1] + margin
        self.width = int(round((params.x_bounds[1] - params.x_bounds[0] + 2 * margin) * scale))
        self.height = int(round((params.z_bounds[1] - params.z_bounds[0] + 2 * margin) * scale))
        self._background = self._draw_background()

    def to_pixels(self, xz: np.ndarray) -> np.ndarray:
        """World ``(..., 2)`` points ``(x, z)`` in metres -> ``(..., 2)`` ``(col, row)`` pixels."""
        xz = np.asarray(xz, dtype=np.float64)
        col = (xz[..., 0] - self._x_min) * self.scale - 0.5
        row = (self._z_max - xz[..., 1]) * self.scale - 0.5
        return np.stack([col, row], axis=-1)

    def _draw_background(self) -> np.ndarray:
        p = self.params
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[:] = _COLORS["outside"]
        # top-left and bottom-right corners of the flight box, in pixels
        c0, r0 = self.to_pixels(np.array([p.x_bounds[0], p.z_bounds[1]]))
        c1, r1 = self.to_pixels(np.array([p.x_bounds[1], p.z_bounds[0]]))
        box = (
            slice(int(np.ceil(r0)), int(np.floor(r1)) + 1),
            slice(int(np.ceil(c0)), int(np.floor(c1)) + 1),
        )
        frame[box] = _COLORS["inside"]
        for x in range(int(np.ceil(p.x_bounds[0])), int(np.floor(p.x_bounds[1])) + 1):
            col = int(round(self.to_pixels(np.array([x, 0.0]))[0]))
            frame[box[0], col] = _COLORS["grid"]
        for z in range(int(np.ceil(p.z_bounds[0])), int(np.floor(p.z_bounds[1])) + 1):
            row = int(round(self.to_pixels(np.array([0.0, z]))[1]))
            frame[row, box[1]] = _COLORS["grid"]
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
        for start, end in zip(corners[:-1], corners[1:], strict=True):
            paint_segment(frame, start, end, 1.0, _COLORS["box"])
        obstacle = self.to_pixels(np.asarray(p.obstacle_center))
        paint_disk(
            frame,
            obstacle,
            (p.obstacle_radius + p.arm_length) * self.scale,
            _COLORS["collision"],
            ring_width=1.5,
        )
        paint_disk(frame, obstacle, p.obstacle_radius * self.scale, _COLORS["obstacle"])
        goal = self.to_pixels(np.asarray(p.goal))
        paint_disk(frame, goal, p.goal_tolerance * self.scale, _COLORS["goal"], ring_width=2.0)
        paint_disk(frame, goal, 3.5, _COLORS["goal"])
        return frame

    def draw(self, state: np.ndarray, trail: np.ndarray | None = None) -> np.ndarray:
        """Return the frame ``(height, width, 3)`` uint8 for ``state`` ``(6,)``.

        Args:
            state: the quadrotor state ``(x, z, theta, xdot, zdot, thetadot)``.
            trail: recent positions ``(k, 2)`` in metres, oldest first (drawn fading in).
        """
        frame = self._background.copy()
        if trail is not None and len(trail) > 1:
            points = self.to_pixels(trail)
            for k, point in enumerate(points[:-1]):
                opacity = 0.2 + 0.7 * (k + 1) / len(points)
                paint_disk(frame, point, 2.0, _COLORS["trail"], opacity=opacity)
        x, z, theta = (float(v) for v in np.asarray(state)[:3])
        along = np.array([np.cos(theta), np.sin(theta)])  # body axis
        up = np.array([-np.sin(theta), np.cos(theta)])  # thrust direction
        center = np.array([x, z])
        arm = self.params.arm_length
        ends = self.to_pixels(np.stack([center - arm * along, center + arm * along]))
        paint_segment(frame, ends[0], ends[1], 2.5, _COLORS["body"])
        for end in (center - arm * along, center + arm * along):
            top = end + 0.07 * up
            paint_segment(frame, *self.to_pixels(np.stack([end, top])), 1.0, _COLORS["body"])
            rotor = self.to_pixels(np.stack([top - 0.09 * along, top + 0.09 * along]))
            paint_segment(frame, rotor[0], rotor[1], 2.0, _COLORS["rotor"])
        paint_disk(frame, self.to_pixels(center), 4.0, _COLORS["body"])
        return frame


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
        self._record_trail()
        info = self._info()
        info.update(collision=hit, out_of_bounds=left, unstable=unstable)
        return self._state.copy(), reward, terminated, False, info

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
