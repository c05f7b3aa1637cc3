"""Physics of the planar quadrotor task: pure functions over a frozen :class:`QuadrotorParams`.

Everything here works on batches (leading axes) and needs no environment, so experts,
synthesis and tests call it directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: State layout: x (m), z (m), theta (rad), xdot (m/s), zdot (m/s), thetadot (rad/s).
STATE_DIM = 6
#: Names of the state entries, in order (error messages).
STATE_FIELDS = ("x", "z", "theta", "xdot", "zdot", "thetadot")
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
