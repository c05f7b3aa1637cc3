"""Synthesis oracle of the planar quadrotor: TVLQR along a demonstration.

The controllers linearise :func:`hint_envs.envs.planar_quadrotor.dynamics` with its
analytic :func:`~hint_envs.envs.planar_quadrotor.jacobians` at each demonstrated
``(x_t, u_t)`` and track the demonstration with time-varying LQR. The quadrotor's
``control_indices`` are its whole state, so ``d_x = 6`` and ``d_u = 2``.

Default weights (Bryson's rule, ``1 / acceptable deviation^2``)::

    Q = diag(10, 10, 1, 1, 1, 0.1)   # x, z: 0.32 m; theta: 1 rad; xdot, zdot: 1 m/s;
                                     # thetadot: 3.2 rad/s
    R = diag(0.1, 100)               # thrust: 3.2 N (hover is 4.8 N); torque: 0.1 N m
    Qf = stabilising DARE solution at the final (x, u) (infinite-horizon cost-to-go)

At the hover these give closed-loop poles of modulus 0.66 to 0.85 per 50 ms step (time
constants of 0.15 to 0.3 s) with gains that keep the torque inside its +-0.1 N m limit
for position errors up to about 0.3 m.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from hint_envs.core import Demonstration, Primitives, stored_params
from hint_envs.envs.planar_quadrotor import STATE_DIM, QuadrotorParams, jacobians
from hint_envs.synthesis.lqr import dare, synthesize_tvlqr

__all__ = ["DEFAULT_Q", "DEFAULT_R", "params_from_attrs", "synthesize"]

#: Default TVLQR state weight (x, z, theta, xdot, zdot, thetadot); see the module docstring.
DEFAULT_Q = np.diag([10.0, 10.0, 1.0, 1.0, 1.0, 0.1])
#: Default TVLQR input weight (thrust, torque).
DEFAULT_R = np.diag([0.1, 100.0])


def params_from_attrs(attrs: dict[str, Any]) -> QuadrotorParams:
    """The :class:`QuadrotorParams` stored in a demonstration's ``attrs["params"]`` (a
    ``QuadrotorParams``, a dict of its fields or that dict as JSON; absent: the defaults), by
    :func:`hint_envs.core.stored_params`."""
    return stored_params(attrs, QuadrotorParams)


def synthesize(
    demo: Demonstration,
    Q: np.ndarray | None = None,
    R: np.ndarray | None = None,
    params: QuadrotorParams | None = None,
) -> Primitives:
    """TVLQR primitive controllers along a quadrotor demonstration.

    Args:
        demo: a demonstration of ``hint_envs/PlanarQuadrotor-v0`` (``states (T, 6)``,
            ``actions (T, 2)``).
        Q: ``(6, 6)`` state weight, default :data:`DEFAULT_Q`.
        R: ``(2, 2)`` input weight, default :data:`DEFAULT_R`.
        params: the dynamics' constants; default ``demo.attrs["params"]`` if stored there
            (see :func:`params_from_attrs`), else ``QuadrotorParams()``.

    Returns:
        ``T`` primitive controllers ``u_bar (T, 2)``, ``x_bar (T, 6)``, ``K (T, 2, 6)``,
        consistent with the demonstration: ``kappa_t(states[t]) == actions[t]``.
    """
    if params is None:
        params = params_from_attrs(demo.attrs)
    Q = DEFAULT_Q if Q is None else np.asarray(Q, dtype=np.float64)
    R = DEFAULT_R if R is None else np.asarray(R, dtype=np.float64)
    states = np.asarray(demo.states, dtype=np.float64)
    actions = np.asarray(demo.actions, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != STATE_DIM:
        raise ValueError(
            f"quadrotor demonstrations have states of shape (T, {STATE_DIM}), got {states.shape}"
        )
    linearize = partial(jacobians, params=params)
    A_final, B_final = linearize(states[-1], actions[-1])
    try:
        Qf = dare(A_final, B_final, Q, R)
    except (np.linalg.LinAlgError, ValueError):  # final linearisation not stabilisable
        Qf = Q
    return synthesize_tvlqr(states, actions, linearize, Q, R, Qf, batched=True)
