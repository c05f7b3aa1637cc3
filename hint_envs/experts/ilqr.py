"""A small, generic iterative LQR (iLQR) trajectory optimiser in pure numpy.

Minimises ``J(u) = sum_{t<T} l(x_t, u_t) + l_f(x_T)`` subject to ``x_{t+1} = f(x_t, u_t)``,
``x_0`` given and an optional input box ``u_low <= u <= u_high``, after Tassa, Erez and
Todorov, *Synthesis and stabilization of complex behaviors through online trajectory
optimization* (IROS 2012):

- backward pass with Levenberg-Marquardt regularisation of the input Hessian
  (``Q_uu + mu I`` for the gains; the cost-to-go update uses the unregularised terms, as
  in their paper), raised when it is not positive definite or no step improves;
- the input box is handled as in their box-constrained DDP, simplified: a step that would
  leave the box is clamped, the free inputs are re-solved with the clamped ones fixed,
  and the clamped inputs get no feedback; the forward pass clips to the box, so every
  iterate is feasible;
- a backtracking line search on the step size, with all candidate step sizes rolled out
  at once (the dynamics are called on a batch of states), accepting the largest step
  whose actual decrease is a fair share of the predicted one.

The dynamics, Jacobians and cost are callables/objects supplied by the caller
(:class:`ILQRCost`); :class:`QuadraticCost` is a ready-made quadratic tracking cost.
Everything is deterministic.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "CostDerivatives",
    "ILQRCost",
    "QuadraticCost",
    "ILQROptions",
    "ILQRResult",
    "ilqr",
    "rollout",
]

logger = logging.getLogger(__name__)

Dynamics = Callable[[np.ndarray, np.ndarray], np.ndarray]
Jacobians = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class CostDerivatives:
    """Derivatives of the running cost along a trajectory of ``T`` steps.

    Attributes:
        lx: ``(T, n)``; lu: ``(T, m)``; lxx: ``(T, n, n)``; luu: ``(T, m, m)``;
        lux: ``(T, m, n)``. Hessians should be positive semi-definite (use a Gauss-Newton
        approximation for non-convex terms); the optimiser regularises what is not.
    """

    lx: np.ndarray
    lu: np.ndarray
    lxx: np.ndarray
    luu: np.ndarray
    lux: np.ndarray


class ILQRCost(Protocol):
    """Cost of a trajectory: running cost per step plus a terminal cost.

    ``running`` and ``terminal`` must accept leading batch axes (the line search evaluates
    several candidate trajectories at once).
    """

    def running(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Running cost: ``x (..., T, n)``, ``u (..., T, m)`` -> ``(..., T)``."""
        ...

    def terminal(self, x: np.ndarray) -> np.ndarray:
        """Terminal cost: ``x (..., n)`` -> ``(...)``."""
        ...

    def running_derivatives(self, x: np.ndarray, u: np.ndarray) -> CostDerivatives:
        """Derivatives of the running cost at ``x (T, n)``, ``u (T, m)``."""
        ...

    def terminal_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient ``(n,)`` and Hessian ``(n, n)`` of the terminal cost at ``x (n,)``."""
        ...


@dataclass
class QuadraticCost:
    """``(x - x_ref)^T Q (x - x_ref) + (u - u_ref)^T R (u - u_ref)``, terminal with ``Qf``.

    Attributes:
        Q: ``(n, n)``; R: ``(m, m)``; Qf: ``(n, n)`` symmetric PSD weights.
        x_ref: ``(n,)`` or ``(T, n)`` state reference (the terminal cost uses its last row).
        u_ref: ``(m,)`` or ``(T, m)`` input reference.
    """

    Q: np.ndarray
    R: np.ndarray
    Qf: np.ndarray
    x_ref: np.ndarray
    u_ref: np.ndarray

    def __post_init__(self) -> None:
        for name in ("Q", "R", "Qf", "x_ref", "u_ref"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=np.float64))
        n, m = self.Q.shape[-1], self.R.shape[-1]
        if self.Q.shape != (n, n) or self.Qf.shape != (n, n) or self.R.shape != (m, m):
            raise ValueError(
                f"Q, Qf must be (n, n) and R (m, m); got {self.Q.shape}, {self.Qf.shape}, "
                f"{self.R.shape}"
            )
        if self.x_ref.shape[-1] != n or self.u_ref.shape[-1] != m:
            raise ValueError(
                f"x_ref must end in n = {n} and u_ref in m = {m}; got {self.x_ref.shape}, "
                f"{self.u_ref.shape}"
            )

    def running(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        dx, du = x - self.x_ref, u - self.u_ref
        return np.einsum("...i,ij,...j->...", dx, self.Q, dx) + np.einsum(
            "...i,ij,...j->...", du, self.R, du
        )

    def terminal(self, x: np.ndarray) -> np.ndarray:
        dx = x - self.x_ref.reshape(-1, self.x_ref.shape[-1])[-1]
        return np.einsum("...i,ij,...j->...", dx, self.Qf, dx)

    def running_derivatives(self, x: np.ndarray, u: np.ndarray) -> CostDerivatives:
        T, n = x.shape
        m = u.shape[-1]
        return CostDerivatives(
            lx=2.0 * (x - self.x_ref) @ self.Q,
            lu=2.0 * (u - self.u_ref) @ self.R,
            lxx=np.broadcast_to(2.0 * self.Q, (T, n, n)).copy(),
            luu=np.broadcast_to(2.0 * self.R, (T, m, m)).copy(),
            lux=np.zeros((T, m, n)),
        )

    def terminal_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dx = x - self.x_ref.reshape(-1, self.x_ref.shape[-1])[-1]
        return 2.0 * self.Qf @ dx, 2.0 * self.Qf


@dataclass(frozen=True)
class ILQROptions:
    """Settings of :func:`ilqr`.

    Attributes:
        max_iterations: most backward/forward pass pairs.
        tolerance: stop when an accepted step lowers the cost by less than this fraction.
        mu_init: initial regularisation of ``Q_uu``.
        mu_min: regularisation floor (reached after successful steps).
        mu_max: give up (return the best trajectory so far) above this.
        mu_factor: multiply/divide ``mu`` by this after a failed/successful iteration.
        step_sizes: line-search step sizes, largest first (all rolled out at once).
        min_decrease_ratio: accept a step if actual / predicted decrease exceeds this.
    """

    max_iterations: int = 100
    tolerance: float = 1e-5
    mu_init: float = 1e-3
    mu_min: float = 1e-6
    mu_max: float = 1e10
    mu_factor: float = 10.0
    step_sizes: tuple[float, ...] = (1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.001)
    min_decrease_ratio: float = 1e-4

    def __post_init__(self) -> None:
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be >= 1, got {self.max_iterations}")
        if not (0.0 < self.mu_min <= self.mu_init <= self.mu_max):
            raise ValueError(
                f"need 0 < mu_min <= mu_init <= mu_max, got {self.mu_min}, {self.mu_init}, "
                f"{self.mu_max}"
            )
        if self.mu_factor <= 1.0:
            raise ValueError(f"mu_factor must be > 1, got {self.mu_factor}")
        if not self.step_sizes or any(not (0.0 < a <= 1.0) for a in self.step_sizes):
            raise ValueError(f"step_sizes must be in (0, 1], got {self.step_sizes}")


@dataclass
class ILQRResult:
    """Outcome of :func:`ilqr`.

    Attributes:
        states: ``(T + 1, n)`` the optimised trajectory, ``states[0] = x0``.
        inputs: ``(T, m)`` its inputs (inside the box, if one was given).
        costs: ``(iterations + 1,)`` cost of the initial and each accepted iterate.
        K: ``(T, m, n)`` feedback gains of the last backward pass (``u = u_t + K_t dx``).
        converged: whether the relative decrease fell below the tolerance.
        iterations: backward passes run.
        mu: final regularisation.
    """

    states: np.ndarray
    inputs: np.ndarray
    costs: np.ndarray
    K: np.ndarray
    converged: bool
    iterations: int
    mu: float = 0.0

    @property
    def cost(self) -> float:
        """Final cost."""
        return float(self.costs[-1])


def rollout(
    dynamics: Dynamics,
    x0: np.ndarray,
    inputs: np.ndarray,
) -> np.ndarray:
    """States ``(..., T + 1, n)`` visited from ``x0 (..., n)`` under ``inputs (..., T, m)``."""
    x0 = np.asarray(x0, dtype=np.float64)
    inputs = np.asarray(inputs, dtype=np.float64)
    T = inputs.shape[-2]
    lead = np.broadcast_shapes(x0.shape[:-1], inputs.shape[:-2])
    states = np.empty(lead + (T + 1, x0.shape[-1]))
    states[..., 0, :] = x0
    for t in range(T):
        states[..., t + 1, :] = dynamics(states[..., t, :], inputs[..., t, :])
    return states


def _total_cost(cost: ILQRCost, states: np.ndarray, inputs: np.ndarray) -> np.ndarray:
    total = cost.running(states[..., :-1, :], inputs).sum(axis=-1) + cost.terminal(
        states[..., -1, :]
    )
    return np.where(np.isfinite(total), total, np.inf)


def _pd_inverse(M: np.ndarray) -> np.ndarray | None:
    """Inverse of a symmetric ``(m, m)`` matrix, or None if it is not positive definite.

    Closed form for ``m <= 2`` (the backward pass calls this once per step, where numpy's
    per-call overhead dominates); Cholesky otherwise.
    """
    m = M.shape[0]
    if m == 1:
        return None if M[0, 0] <= 0.0 else 1.0 / M
    if m == 2:
        a, b, c = M[0, 0], M[0, 1], M[1, 1]
        det = a * c - b * b
        if a <= 0.0 or det <= 0.0:
            return None
        return np.array([[c, -b], [-b, a]]) / det
    try:
        L_inv = np.linalg.inv(np.linalg.cholesky(M))
    except np.linalg.LinAlgError:
        return None
    return L_inv.T @ L_inv


def _backward_pass(
    F: np.ndarray,
    H: np.ndarray,
    g: np.ndarray,
    lfx: np.ndarray,
    lfxx: np.ndarray,
    inputs: np.ndarray,
    u_low: np.ndarray | None,
    u_high: np.ndarray | None,
    mu: float,
) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """One backward pass of iLQR.

    Args:
        F: ``(T, n, n + m)`` stacked Jacobians ``[A_t | B_t]``.
        H: ``(T, n + m, n + m)`` running-cost Hessians ``[[lxx, lux^T], [lux, luu]]``.
        g: ``(T, n + m)`` running-cost gradients ``[lx, lu]``.
        lfx, lfxx: terminal gradient ``(n,)`` and Hessian ``(n, n)``.
        inputs: ``(T, m)`` nominal inputs (for the box); mu: regularisation of ``Q_uu``.

    Returns:
        ``(k (T, m), K (T, m, n), dV1, dV2)`` with the predicted decrease
        ``-(alpha dV1 + alpha^2 dV2)`` of step size ``alpha``; None if a regularised
        ``Q_uu`` is not positive definite.
    """
    T, n, nm = F.shape
    m = nm - n
    k = np.zeros((T, m))
    K = np.zeros((T, m, n))
    Vx, Vxx = lfx, lfxx
    dV1 = dV2 = 0.0
    reg = mu * np.eye(m)
    G = np.zeros((nm, n))  # [I; K_t], so that V_xx = G^T Q G and V_x = G^T (q + Q_:u k)
    G[:n] = np.eye(n)
    for t in range(T - 1, -1, -1):
        Ft = F[t]
        FtT = Ft.T
        Qall = H[t] + FtT @ Vxx @ Ft  # [[Qxx, Qxu], [Qux, Quu]]
        q = g[t] + FtT @ Vx  # [Qx, Qu]
        Qu, Quu, Qux = q[n:], Qall[n:, n:], Qall[n:, :n]
        Quu_reg = Quu + reg
        Quu_inv = _pd_inverse(Quu_reg)
        if Quu_inv is None:
            return None
        kt = -Quu_inv @ Qu
        Kt = -Quu_inv @ Qux
        if u_low is not None:
            lo, hi = u_low - inputs[t], u_high - inputs[t]
            clamped = (kt < lo) | (kt > hi)
            if clamped.any():
                kt = np.clip(kt, lo, hi)
                free = ~clamped
                Kt = Kt.copy()
                Kt[clamped] = 0.0
                if free.any():
                    # a principal submatrix of a PD matrix is PD
                    Quu_ff_inv = _pd_inverse(Quu_reg[np.ix_(free, free)])
                    rhs = Qu[free] + Quu_reg[np.ix_(free, clamped)] @ kt[clamped]
                    kt[free] = np.clip(-Quu_ff_inv @ rhs, lo[free], hi[free])
                    Kt[free] = -Quu_ff_inv @ Qux[free]
        k[t], K[t] = kt, Kt
        Quu_k = Quu @ kt
        dV1 += float(kt @ Qu)
        dV2 += float(0.5 * (kt @ Quu_k))
        G[n:] = Kt
        GT = G.T
        Vx = GT @ (q + Qall[:, n:] @ kt)
        Vxx = GT @ Qall @ G
        Vxx = 0.5 * (Vxx + Vxx.T)
    return k, K, dV1, dV2


def ilqr(
    dynamics: Dynamics,
    jacobians: Jacobians,
    cost: ILQRCost,
    x0: np.ndarray,
    u_init: np.ndarray,
    u_low: np.ndarray | Sequence[float] | None = None,
    u_high: np.ndarray | Sequence[float] | None = None,
    options: ILQROptions | None = None,
) -> ILQRResult:
    """Optimise the inputs of a trajectory from ``x0`` by iterative LQR.

    Args:
        dynamics: ``f(x (..., n), u (..., m)) -> (..., n)``, batched over leading axes.
        jacobians: ``(x (T, n), u (T, m)) -> (A (T, n, n), B (T, n, m))`` of ``f``.
        cost: an :class:`ILQRCost` (e.g. :class:`QuadraticCost`).
        x0: ``(n,)`` initial state.
        u_init: ``(T, m)`` initial inputs (the warm start; clipped into the box).
        u_low, u_high: ``(m,)`` input box, both or neither.
        options: :class:`ILQROptions` (defaults if None).

    Returns:
        :class:`ILQRResult` with ``states (T + 1, n)``, ``inputs (T, m)``, the cost history
        and the last feedback gains.
    """
    options = options or ILQROptions()
    x0 = np.asarray(x0, dtype=np.float64)
    inputs = np.asarray(u_init, dtype=np.float64).copy()
    if x0.ndim != 1 or inputs.ndim != 2 or inputs.shape[0] < 1:
        raise ValueError(
            f"x0 must have shape (n,) and u_init (T, m) with T >= 1, got {x0.shape} and "
            f"{inputs.shape}"
        )
    if (u_low is None) != (u_high is None):
        raise ValueError("give both u_low and u_high for an input box, or neither")
    m = inputs.shape[1]
    if u_low is not None:
        u_low = np.asarray(u_low, dtype=np.float64)
        u_high = np.asarray(u_high, dtype=np.float64)
        if u_low.shape != (m,) or u_high.shape != (m,) or np.any(u_low > u_high):
            raise ValueError(
                f"u_low and u_high must be ({m},) with u_low <= u_high, got {u_low} and {u_high}"
            )
        inputs = np.clip(inputs, u_low, u_high)
    states = rollout(dynamics, x0, inputs)
    current = float(_total_cost(cost, states, inputs))
    if not np.isfinite(current):
        raise ValueError("the warm start's rollout has an infinite or NaN cost; start elsewhere")
    alphas = np.asarray(options.step_sizes, dtype=np.float64)
    costs = [current]
    mu = options.mu_init
    converged = False
    K = np.zeros((inputs.shape[0], m, x0.shape[0]))
    iteration = 0
    while iteration < options.max_iterations:
        iteration += 1
        As, Bs = jacobians(states[:-1], inputs)
        d = cost.running_derivatives(states[:-1], inputs)
        lfx, lfxx = cost.terminal_derivatives(states[-1])
        F = np.concatenate([As, Bs], axis=-1)
        H = np.concatenate(
            [
                np.concatenate([d.lxx, np.swapaxes(d.lux, -1, -2)], axis=-1),
                np.concatenate([d.lux, d.luu], axis=-1),
            ],
            axis=-2,
        )
        g = np.concatenate([d.lx, d.lu], axis=-1)
        result = _backward_pass(F, H, g, lfx, lfxx, inputs, u_low, u_high, mu)
        if result is None:
            mu *= options.mu_factor
            if mu > options.mu_max:
                break
            continue
        k, K, dV1, dV2 = result
        if -(dV1 + dV2) < options.tolerance * 1e-3 * max(1.0, abs(current)):
            converged = True  # no predicted decrease left: a (local) optimum
            break
        # forward pass, every step size at once: (n_alpha, T + 1, n)
        new_states = np.empty((len(alphas),) + states.shape)
        new_inputs = np.empty((len(alphas),) + inputs.shape)
        new_states[:, 0] = x0
        for t in range(inputs.shape[0]):
            u = inputs[t] + alphas[:, None] * k[t] + (new_states[:, t] - states[t]) @ K[t].T
            if u_low is not None:
                u = np.minimum(np.maximum(u, u_low), u_high)
            new_inputs[:, t] = u
            new_states[:, t + 1] = dynamics(new_states[:, t], u)
        candidate = _total_cost(cost, new_states, new_inputs)
        expected = -(alphas * dV1 + alphas**2 * dV2)
        ratio = (current - candidate) / np.maximum(expected, 1e-300)
        accepted = np.flatnonzero((ratio > options.min_decrease_ratio) & (candidate < current))
        if accepted.size == 0:
            mu *= options.mu_factor
            if mu > options.mu_max:
                break
            continue
        best = accepted[0]
        decrease = current - float(candidate[best])
        states, inputs = new_states[best], new_inputs[best]
        current = float(candidate[best])
        costs.append(current)
        mu = max(options.mu_min, mu / options.mu_factor)
        if decrease < options.tolerance * max(1.0, abs(current)):
            converged = True
            break
    logger.debug(
        "iLQR: %d iterations, cost %.4g -> %.4g, converged=%s, mu=%.2g",
        iteration,
        costs[0],
        costs[-1],
        converged,
        mu,
    )
    return ILQRResult(
        states=states,
        inputs=inputs,
        costs=np.asarray(costs),
        K=K,
        converged=converged,
        iterations=iteration,
        mu=mu,
    )
