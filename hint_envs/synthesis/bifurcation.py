"""Synthesis oracle of the bifurcation task: TVLQR along a demonstration.

The double integrator of :mod:`hint_envs.envs.bifurcation` is linear, ``x' = A x + B u``
with the constant :func:`~hint_envs.envs.bifurcation.jacobians`, so the linearisation is
exact everywhere and the controllers' only approximation is the input limit. The
environment's ``control_indices`` are its whole state, so ``d_x = 4`` and ``d_u = 2``.

Default weights (Bryson's rule, ``1 / acceptable deviation^2``)::

    Q = diag(10, 10, 1, 1)   # px, py: 0.32 m; vx, vy: 1 m/s
    R = diag(1, 1)           # ax, ay: 1 m/s^2 (the default max_accel)
    Qf = stabilising DARE solution (infinite-horizon cost-to-go)

At ``dt = 0.1`` s these give closed-loop poles of modulus 0.87 per step (a time constant
of about 0.75 s) and gains of 2.8 m/s^2 per metre of position error and 2.5 m/s^2 per m/s
of velocity error, so a 0.2 m deviation asks for about half the default input range.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hint_envs.core import Demonstration, Primitives, stored_params
from hint_envs.envs.bifurcation import STATE_DIM, BifurcationParams, jacobians
from hint_envs.synthesis.lqr import dare, synthesize_tvlqr

__all__ = ["DEFAULT_Q", "DEFAULT_R", "params_from_attrs", "synthesize"]

#: Default TVLQR state weight (px, py, vx, vy); see the module docstring.
DEFAULT_Q = np.diag([10.0, 10.0, 1.0, 1.0])
#: Default TVLQR input weight (ax, ay).
DEFAULT_R = np.diag([1.0, 1.0])


def params_from_attrs(attrs: dict[str, Any]) -> BifurcationParams:
    """The :class:`BifurcationParams` stored in a demonstration's ``attrs["params"]`` (a
    ``BifurcationParams``, a dict of its fields or that dict as JSON; absent: the defaults), by
    :func:`hint_envs.core.stored_params`."""
    return stored_params(attrs, BifurcationParams)


def synthesize(
    demo: Demonstration,
    Q: np.ndarray | None = None,
    R: np.ndarray | None = None,
    params: BifurcationParams | None = None,
) -> Primitives:
    """TVLQR primitive controllers along a bifurcation demonstration.

    Args:
        demo: a demonstration of ``hint_envs/Bifurcation-v0`` (``states (T, 4)``,
            ``actions (T, 2)``).
        Q: ``(4, 4)`` state weight, default :data:`DEFAULT_Q`.
        R: ``(2, 2)`` input weight, default :data:`DEFAULT_R`.
        params: the task's constants (only ``dt`` enters ``A`` and ``B``); default
            ``demo.attrs["params"]`` if stored there (see :func:`params_from_attrs`), else
            ``BifurcationParams()``.

    Returns:
        ``T`` primitive controllers ``u_bar (T, 2)``, ``x_bar (T, 4)``, ``K (T, 2, 4)``,
        consistent with the demonstration: ``kappa_t(states[t]) == actions[t]``.

    Raises:
        ValueError: states or actions of the wrong shape, or bad weights.
    """
    if params is None:
        params = params_from_attrs(demo.attrs)
    Q = DEFAULT_Q if Q is None else np.asarray(Q, dtype=np.float64)
    R = DEFAULT_R if R is None else np.asarray(R, dtype=np.float64)
    states = np.asarray(demo.states, dtype=np.float64)
    actions = np.asarray(demo.actions, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != STATE_DIM:
        raise ValueError(
            f"bifurcation demonstrations have states of shape (T, {STATE_DIM}), got {states.shape}"
        )
    A, B = jacobians(params)

    def linearize(x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        count = len(x)
        return np.broadcast_to(A, (count, *A.shape)), np.broadcast_to(B, (count, *B.shape))

    Qf = dare(A, B, Q, R)
    return synthesize_tvlqr(states, actions, linearize, Q, R, Qf, batched=True)
