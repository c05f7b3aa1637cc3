"""Synthesis oracle of the Robomimic tasks: position gains from a fitted model of the arm.

With absolute inputs, the Panda under robosuite's operational-space controller is a
closed loop from the commanded end-effector position ``u`` to the measured one ``p``. Its
dynamics are not available in closed form (joint-space inertia, OSC's null-space terms,
the 25 MuJoCo sub-steps per control step), so the oracle fits a **local linear model** to
the demonstration itself, by least squares, one axis ``i`` at a time::

    p_{t+1} = a p_t + b p_{t-1} + c u_t + d          (per axis; t = 1 .. T-1)

a second-order autoregressive model with the input: the critically damped OSC response
(kp = 150, so omega = 12 rad/s) lasts about two control steps of 50 ms, so one lag of
position stands in for the velocity the environment does not observe. In state-space form
with ``z_t = (p_t, p_{t-1})``::

    z_{t+1} = A z_t + B u_t + e,    A = [[a, b], [1, 0]],   B = [c, 0]^T.

The control state is the end-effector position alone (``control_indices = [0, 1, 2]``), so
a primitive controller is a static **output** feedback ``u = u_bar + K (p - p_bar)``.
Along the demonstration ``u_bar_t = u_t`` and ``p_bar_t = p_t`` (consistency), and a
deviation evolves as ``dz_{t+1} = (A - k B C) dz_t`` with ``C = [1, 0]`` and ``K = -k``
on that axis. ``k`` minimises the LQR cost ``trace P(k)`` of that closed loop
(:func:`hint_envs.synthesis.lqr.output_feedback_gain`) with Bryson weights: 1 cm of
position deviation, 2 cm of target correction::

    Q = diag(1e4, 0) (1/m^2),   R = 2500 (1/m^2).

``K`` is diagonal on the position rows of the input (7-D, or 10-D with a 6-D
orientation); orientation and gripper rows are zero. ``gain=0`` gives pure position
commands (K = 0), as do the wrappers' ``gains=False``.

The fit error (RMS one-step prediction error in metres, and R² of the predicted step
``p_{t+1} - p_t``) is returned by :func:`fit_arm_model` and stored, per axis, in the
demonstration's ``attrs`` by :func:`synthesize` (``synthesis_fit_rms``,
``synthesis_fit_r2``, ``synthesis_gain``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hint_envs.core import Demonstration, Primitives
from hint_envs.synthesis import lqr

__all__ = ["DEFAULT_Q", "DEFAULT_R", "ArmModel", "fit_arm_model", "position_gains", "synthesize"]

#: Weight on the deviation ``(p_t, p_{t-1})`` of one axis (1 / m^2): 1 cm by Bryson's rule.
DEFAULT_Q = np.diag([1e4, 0.0])
#: Weight on the target correction (1 / m^2): 2 cm.
DEFAULT_R = 2500.0
#: Input dimensions (orientation as a rotation vector or in 6-D, see
#: :data:`hint_envs.envs.robomimic.ROTATIONS`) and the position rows of the input.
INPUT_DIMS = (7, 10)
POSITION_DIM = 3
#: Fewest fitted transitions per axis (four parameters each).
MIN_SAMPLES = 12


@dataclass(frozen=True)
class ArmModel:
    """Per-axis second-order model ``p' = a p + b p_prev + c u + d`` (module docstring).

    Attributes:
        coefficients: ``(3, 4)`` rows ``(a, b, c, d)`` for x, y, z.
        fit_rms: ``(3,)`` RMS one-step prediction error (m).
        fit_r2: ``(3,)`` R² of the predicted step ``p_{t+1} - p_t``.
        samples: transitions fitted per axis.
    """

    coefficients: np.ndarray
    fit_rms: np.ndarray
    fit_r2: np.ndarray
    samples: int

    def matrices(self, axis: int) -> tuple[np.ndarray, np.ndarray]:
        """``A (2, 2)`` and ``B (2, 1)`` of one axis in ``z = (p_t, p_{t-1})``."""
        a, b, c, _ = self.coefficients[axis]
        return np.array([[a, b], [1.0, 0.0]]), np.array([[c], [0.0]])


def fit_arm_model(positions: np.ndarray, targets: np.ndarray) -> ArmModel:
    """Least-squares fit of the per-axis model to one trajectory.

    Args:
        positions: ``(T + 1, 3)`` end-effector positions ``p_0 .. p_T``.
        targets: ``(T, 3)`` commanded positions ``u_0 .. u_{T-1}``.

    Raises:
        ValueError: wrong shapes, too few steps, or a rank-deficient fit (e.g. the arm did
            not move along an axis).
    """
    p = np.asarray(positions, dtype=np.float64)
    u = np.asarray(targets, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != POSITION_DIM or u.shape != (len(p) - 1, POSITION_DIM):
        raise ValueError(
            f"need positions (T + 1, 3) and targets (T, 3), got {p.shape} and {u.shape}"
        )
    samples = len(u) - 1
    if samples < MIN_SAMPLES:
        raise ValueError(
            f"fitting the arm model needs at least {MIN_SAMPLES + 1} steps, got {len(u)}"
        )
    coefficients = np.zeros((POSITION_DIM, 4))
    rms = np.zeros(POSITION_DIM)
    r2 = np.zeros(POSITION_DIM)
    for i in range(POSITION_DIM):
        X = np.stack([p[1:-1, i], p[:-2, i], u[1:, i], np.ones(samples)], axis=1)
        y = p[2:, i]
        theta, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
        if rank < 4:
            raise ValueError(
                f"the arm model is not identifiable on axis {'xyz'[i]} (rank {rank} < 4): "
                "the demonstration does not excite it"
            )
        residual = y - X @ theta
        step = y - p[1:-1, i]
        coefficients[i] = theta
        rms[i] = np.sqrt(np.mean(residual**2))
        r2[i] = 1.0 - np.sum(residual**2) / max(np.sum((step - step.mean()) ** 2), 1e-300)
    return ArmModel(coefficients, rms, r2, samples)


def position_gains(
    model: ArmModel, Q: np.ndarray | None = None, R: float | None = None
) -> np.ndarray:
    """Per-axis output-feedback gains ``k (3,)`` (``K = -diag(k)`` on the position rows).

    Raises:
        ValueError: the fitted model of an axis is not stable (then no gain is safe).
    """
    Q = DEFAULT_Q if Q is None else np.asarray(Q, dtype=np.float64)
    R = DEFAULT_R if R is None else float(R)
    gains = np.zeros(POSITION_DIM)
    for i in range(POSITION_DIM):
        A, B = model.matrices(i)
        gains[i] = lqr.output_feedback_gain(A, B, np.array([[1.0, 0.0]]), Q, R, k_max=10.0)
    return gains


def synthesize(
    demo: Demonstration,
    gain: float | None = None,
    Q: np.ndarray | None = None,
    R: float | None = None,
) -> Primitives:
    """Primitive controllers along a Robomimic demonstration (absolute inputs).

    Args:
        demo: a ``hint_envs/Robomimic*-v0`` demonstration with ``actions (T, 7)`` or
            ``(T, 10)`` (absolute targets, rotation vector or 6-D orientation) and the
            end-effector position in ``observations[:, :3]``.
        gain: one gain ``k`` for all axes instead of the fitted ones; ``0`` gives pure
            position commands.
        Q, R: weights of :func:`position_gains`.

    Returns:
        ``T`` controllers: ``u_bar = actions``, ``x_bar`` = the observed end-effector
        positions, ``K (T, d_u, 3)`` zero but ``-diag(k)`` on the position rows; consistent:
        ``kappa_t(x_t) = u_t``. The fit error and the gains go into ``demo.attrs``.
    """
    actions = np.asarray(demo.actions, dtype=np.float64)
    observations = np.asarray(demo.observations, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] not in INPUT_DIMS:
        raise ValueError(
            f"Robomimic demonstrations have actions (T, 7) or, with rotation='rot6d', "
            f"(T, 10); got {actions.shape}"
        )
    if observations.ndim != 2 or observations.shape[0] != len(actions):
        raise ValueError(f"observations {observations.shape} do not match actions {actions.shape}")
    positions = observations[:, :POSITION_DIM]
    if gain is None:
        final = np.asarray(demo.final_observation, dtype=np.float64)[None, :POSITION_DIM]
        model = fit_arm_model(np.concatenate([positions, final]), actions[:, :POSITION_DIM])
        k = position_gains(model, Q, R)
        demo.attrs["synthesis_fit_rms"] = model.fit_rms.tolist()
        demo.attrs["synthesis_fit_r2"] = model.fit_r2.tolist()
    else:
        k = np.full(POSITION_DIM, float(gain))
        if not np.all(np.isfinite(k)) or np.any(k < 0):
            raise ValueError(f"gain must be a finite number >= 0, got {gain!r}")
    demo.attrs["synthesis_gain"] = k.tolist()
    T = len(actions)
    K = np.zeros((T, actions.shape[1], POSITION_DIM))
    K[:, np.arange(POSITION_DIM), np.arange(POSITION_DIM)] = -k
    return Primitives(actions.copy(), positions.copy(), K)
