"""Linear-quadratic regulators: infinite-horizon (DARE) and time-varying (Riccati).

Conventions: the LQR gain ``K_lqr`` acts as ``u = -K_lqr x`` on the linear system
``x' = A x + B u`` with stage cost ``x^T Q x + u^T R u``. A primitive controller of
:mod:`hint_envs.core` uses ``u = u_bar + K (x - x_bar)``, so :func:`synthesize_tvlqr`
stores ``K = -K_lqr``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.optimize

from hint_envs.core import Primitives

__all__ = ["dare", "dlqr", "output_feedback_gain", "tvlqr", "synthesize_tvlqr"]

logger = logging.getLogger(__name__)

#: Relative tolerance for symmetry and for the smallest eigenvalue of PSD/PD weights.
_TOLERANCE = 1e-9


def _check_weight(name: str, M: np.ndarray, n: int, definite: bool) -> np.ndarray:
    """Validate a ``(n, n)`` or ``(..., n, n)`` symmetric weight; return it as float64."""
    M = np.asarray(M, dtype=np.float64)
    if M.ndim < 2 or M.shape[-2:] != (n, n):
        raise ValueError(f"{name} must have shape ({n}, {n}) (or (..., {n}, {n})), got {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name} contains NaN or inf")
    scale = max(1.0, float(np.abs(M).max(initial=0.0)))
    if not np.allclose(M, np.swapaxes(M, -1, -2), rtol=0.0, atol=_TOLERANCE * scale):
        raise ValueError(f"{name} must be symmetric; pass (M + M.T) / 2 if that is what you mean")
    smallest = float(np.linalg.eigvalsh(M).min())
    if definite and smallest <= _TOLERANCE * scale:
        raise ValueError(
            f"{name} must be positive definite (smallest eigenvalue {smallest:.3g}); "
            "every input needs a strictly positive cost"
        )
    if not definite and smallest < -_TOLERANCE * scale:
        raise ValueError(
            f"{name} must be positive semi-definite (smallest eigenvalue {smallest:.3g})"
        )
    return M


def _check_system(A: np.ndarray, B: np.ndarray, time_axis: bool) -> tuple[np.ndarray, np.ndarray]:
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    least = 3 if time_axis else 2
    what = "(..., T, n, n) and (..., T, n, m)" if time_axis else "(n, n) and (n, m)"
    if A.ndim < least or B.ndim < least:
        raise ValueError(f"A and B must have shapes {what}, got {A.shape} and {B.shape}")
    n = A.shape[-1]
    if A.shape[-2] != n or B.shape[-2] != n or A.shape[:-2] != B.shape[:-2]:
        raise ValueError(
            f"A and B must have shapes {what} with matching n and leading axes, "
            f"got {A.shape} and {B.shape}"
        )
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(B))):
        raise ValueError("A or B contains NaN or inf; check the linearisation")
    return A, B


def dlqr(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Infinite-horizon discrete-time LQR gain from the algebraic Riccati equation.

    Args:
        A: ``(n, n)``; B: ``(n, m)``; Q: ``(n, n)`` PSD; R: ``(m, m)`` PD.

    Returns:
        ``K_lqr`` of shape ``(m, n)``: ``u = -K_lqr x`` minimises
        ``sum_t x_t^T Q x_t + u_t^T R u_t``.

    Raises:
        ValueError: bad shapes or weights, or no stabilising solution exists (the pair
            ``(A, B)`` is not stabilisable or ``(A, Q)`` has unobservable modes on the
            unit circle).
    """
    A, B = _check_system(A, B, time_axis=False)
    n, m = B.shape
    Q = _check_weight("Q", Q, n, definite=False)
    R = _check_weight("R", R, m, definite=True)
    try:
        P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    except (np.linalg.LinAlgError, ValueError) as error:
        raise ValueError(
            f"the discrete algebraic Riccati equation has no stabilising solution ({error}); "
            "check that (A, B) is stabilisable"
        ) from error
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


def _output_feedback_cost(
    k: float, A: np.ndarray, B: np.ndarray, C: np.ndarray, Q: np.ndarray, R: float
) -> float:
    A_k = A - k * (B @ C)
    if np.max(np.abs(np.linalg.eigvals(A_k))) >= 1.0:
        return np.inf
    P = scipy.linalg.solve_discrete_lyapunov(A_k.T, Q + (k * k * R) * (C.T @ C))
    return float(np.trace(P))


def output_feedback_gain(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, Q: np.ndarray, R: float, k_max: float = 100.0
) -> float:
    """The scalar static output feedback ``u = -k y``, ``y = C x``, of least LQR cost.

    For a single-input, single-output system ``x' = A x + B u`` whose state is only seen
    through ``y = C x``, LQR's full-state gain is not realisable; among the gains ``k``
    that keep ``A - k B C`` Schur stable this returns the minimiser of ``trace(P(k))``,
    the infinite-horizon cost ``sum_t x_t^T Q x_t + R u_t^2`` averaged over unit-covariance
    initial deviations, where ``P = A_k^T P A_k + Q + k^2 R C^T C``. The end of the stable
    interval is found by bisection (the stable gains are taken to form one interval from
    0), then ``J``, smooth and finite on it, is minimised by a bounded scalar search.

    Args:
        A: ``(n, n)`` Schur stable (the stable gains then form an interval containing 0);
        B: ``(n, 1)``; C: ``(1, n)``; Q: ``(n, n)`` PSD; R: positive weight on ``u``.
        k_max: the largest gain searched.

    Returns:
        ``k >= 0``.

    Raises:
        ValueError: bad shapes or weights, or ``A`` is not Schur stable.
    """
    A, B = _check_system(A, B, time_axis=False)
    n = A.shape[0]
    C = np.asarray(C, dtype=np.float64).reshape(1, n)
    Q = _check_weight("Q", Q, n, definite=False)
    R = float(R)
    if B.shape != (n, 1):
        raise ValueError(f"output_feedback_gain needs a single input: B of shape ({n}, 1)")
    if not R > 0:
        raise ValueError(f"R must be positive, got {R}")
    if not np.isfinite(_output_feedback_cost(0.0, A, B, C, Q, R)):
        raise ValueError(f"A must be Schur stable, its eigenvalues are {np.linalg.eigvals(A)}")
    # the end of the stable interval [0, end], by bisection on stability (to 1e-9 k_max)
    stable, unstable = 0.0, float(k_max)
    if np.isfinite(_output_feedback_cost(unstable, A, B, C, Q, R)):
        stable = unstable
    while unstable - stable > 1e-9 * k_max:
        middle = 0.5 * (stable + unstable)
        if np.isfinite(_output_feedback_cost(middle, A, B, C, Q, R)):
            stable = middle
        else:
            unstable = middle
    end = stable
    result = scipy.optimize.minimize_scalar(
        _output_feedback_cost,
        bounds=(0.0, end),
        args=(A, B, C, Q, R),
        method="bounded",
        options={"xatol": 1e-6},
    )
    return float(result.x)


def dare(A: np.ndarray, B: np.ndarray, Q: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Stabilising solution ``P`` ``(n, n)`` of the discrete algebraic Riccati equation."""
    A, B = _check_system(A, B, time_axis=False)
    n, m = B.shape
    Q = _check_weight("Q", Q, n, definite=False)
    R = _check_weight("R", R, m, definite=True)
    return scipy.linalg.solve_discrete_are(A, B, Q, R)


def tvlqr(
    As: np.ndarray,
    Bs: np.ndarray,
    Q: np.ndarray,
    R: np.ndarray,
    Qf: np.ndarray,
    return_cost_to_go: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Finite-horizon time-varying LQR by the backward Riccati recursion.

    For ``x_{t+1} = A_t x_t + B_t u_t`` and cost
    ``sum_{t<T} (x_t^T Q_t x_t + u_t^T R_t u_t) + x_T^T Qf x_T``::

        P_T = Qf
        K_t = (R_t + B_t^T P_{t+1} B_t)^{-1} B_t^T P_{t+1} A_t
        P_t = Q_t + K_t^T R_t K_t + (A_t - B_t K_t)^T P_{t+1} (A_t - B_t K_t)

    (the Joseph form, which keeps ``P_t`` symmetric PSD in floating point). Leading batch
    axes ``...`` (e.g. several trajectories of the same length) are carried through.

    Args:
        As: ``(..., T, n, n)``; Bs: ``(..., T, n, m)``.
        Q: ``(n, n)`` or ``(..., T, n, n)`` PSD; R: ``(m, m)`` or ``(..., T, m, m)`` PD;
            Qf: ``(n, n)`` or ``(..., n, n)`` PSD.
        return_cost_to_go: also return the cost-to-go matrices ``P``.

    Returns:
        ``K_lqr`` of shape ``(..., T, m, n)`` (``u_t = -K_lqr[t] x_t``), and with
        ``return_cost_to_go`` also ``P`` of shape ``(..., T + 1, n, n)``.
    """
    As, Bs = _check_system(As, Bs, time_axis=True)
    *batch, T, n, m = Bs.shape
    batch = tuple(batch)
    if T < 1:
        raise ValueError("tvlqr needs at least one time step (T >= 1)")
    Q = _check_weight("Q", Q, n, definite=False)
    R = _check_weight("R", R, m, definite=True)
    Qf = _check_weight("Qf", Qf, n, definite=False)
    Q = np.broadcast_to(Q, batch + (T, n, n)) if Q.ndim == 2 else Q
    R = np.broadcast_to(R, batch + (T, m, m)) if R.ndim == 2 else R
    if Q.shape[-3] != T or R.shape[-3] != T:
        raise ValueError(
            f"time-varying Q {Q.shape} and R {R.shape} must have T = {T} steps on axis -3"
        )

    K = np.empty(batch + (T, m, n))
    P = np.empty(batch + (T + 1, n, n))
    P[..., T, :, :] = np.broadcast_to(Qf, batch + (n, n))
    for t in range(T - 1, -1, -1):
        A, B, Pn = As[..., t, :, :], Bs[..., t, :, :], P[..., t + 1, :, :]
        BtP = np.swapaxes(B, -1, -2) @ Pn
        Kt = np.linalg.solve(R[..., t, :, :] + BtP @ B, BtP @ A)
        closed = A - B @ Kt
        Pt = Q[..., t, :, :] + np.swapaxes(Kt, -1, -2) @ R[..., t, :, :] @ Kt
        Pt = Pt + np.swapaxes(closed, -1, -2) @ Pn @ closed
        K[..., t, :, :] = Kt
        P[..., t, :, :] = 0.5 * (Pt + np.swapaxes(Pt, -1, -2))
    return (K, P) if return_cost_to_go else K


def synthesize_tvlqr(
    states: np.ndarray,
    inputs: np.ndarray,
    linearize: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    Q: np.ndarray,
    R: np.ndarray,
    Qf: np.ndarray,
    batched: bool = False,
) -> Primitives:
    """TVLQR primitive controllers along a trajectory (the synthesis oracle).

    The controllers are ``kappa_t(x) = u_t + K_t (x - x_t)`` with ``K_t = -K_lqr[t]`` the
    TVLQR gain of the linearisation ``(A_t, B_t) = linearize(x_t, u_t)``, so they are
    consistent with the trajectory by construction: ``kappa_t(x_t) = u_t`` exactly.

    Args:
        states: ``(T + 1, d_x)`` or ``(T, d_x)`` control states (a final state is not
            needed: the gains depend on ``x_0 .. x_{T-1}`` only).
        inputs: ``(T, d_u)`` inputs.
        linearize: ``(x (d_x,), u (d_u,)) -> (A (d_x, d_x), B (d_x, d_u))``, the Jacobians
            of the discrete-time dynamics; with ``batched=True`` it is called once on
            ``(T, d_x)``, ``(T, d_u)`` arrays and returns ``(T, d_x, d_x)``, ``(T, d_x, d_u)``.
        Q: ``(d_x, d_x)`` PSD tracking weight; R: ``(d_u, d_u)`` PD; Qf: ``(d_x, d_x)`` PSD.
        batched: whether ``linearize`` accepts the whole trajectory at once.

    Returns:
        :class:`~hint_envs.core.Primitives` with ``u_bar (T, d_u)``, ``x_bar (T, d_x)``,
        ``K (T, d_u, d_x)``.
    """
    states = np.asarray(states, dtype=np.float64)
    inputs = np.asarray(inputs, dtype=np.float64)
    if inputs.ndim != 2 or inputs.shape[0] < 1:
        raise ValueError(f"inputs must have shape (T, d_u) with T >= 1, got {inputs.shape}")
    T = inputs.shape[0]
    if states.ndim != 2 or states.shape[0] not in (T, T + 1):
        raise ValueError(
            f"states must have shape (T + 1, d_x) or (T, d_x) with T = {T} (the number of "
            f"inputs), got {states.shape}"
        )
    x_bar = states[:T]
    if batched:
        As, Bs = linearize(x_bar, inputs)
    else:
        pairs = [linearize(x_bar[t], inputs[t]) for t in range(T)]
        As = np.stack([pair[0] for pair in pairs])
        Bs = np.stack([pair[1] for pair in pairs])
    d_x, d_u = x_bar.shape[1], inputs.shape[1]
    As, Bs = np.asarray(As), np.asarray(Bs)
    if As.shape != (T, d_x, d_x) or Bs.shape != (T, d_x, d_u):
        raise ValueError(
            f"linearize returned A {As.shape} and B {Bs.shape}; expected "
            f"{(T, d_x, d_x)} and {(T, d_x, d_u)} over the trajectory"
        )
    K_lqr = tvlqr(As, Bs, Q, R, Qf)
    logger.debug("synthesised %d TVLQR controllers, max |K| %.3g", T, np.abs(K_lqr).max())
    return Primitives(u_bar=inputs.copy(), x_bar=x_bar.copy(), K=-K_lqr)
