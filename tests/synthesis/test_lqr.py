"""LQR, TVLQR and the generic TVLQR synthesis oracle (hint_envs.synthesis.lqr)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from hint_envs.core import Primitives
from hint_envs.synthesis.lqr import dlqr, synthesize_tvlqr, tvlqr


def _system(seed: int = 0, n: int = 4, m: int = 2) -> tuple[np.ndarray, ...]:
    """A random (controllable, open-loop unstable) system and PD weights."""
    rng = np.random.default_rng(seed)
    A = np.eye(n) + 0.2 * rng.standard_normal((n, n))
    B = rng.standard_normal((n, m))
    L = rng.standard_normal((n, n))
    Q = L @ L.T / n + 0.1 * np.eye(n)
    R = np.diag(rng.uniform(0.5, 2.0, m))
    return A, B, Q, R


def test_dlqr_solves_the_riccati_equation_and_stabilises():
    A, B, Q, R = _system()
    K = dlqr(A, B, Q, R)
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    np.testing.assert_allclose(K, np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A), atol=1e-10)
    # P is the fixed point of the Riccati map under K
    closed = A - B @ K
    np.testing.assert_allclose(Q + K.T @ R @ K + closed.T @ P @ closed, P, rtol=1e-9)
    assert np.abs(np.linalg.eigvals(A)).max() > 1.0  # the open loop is unstable ...
    assert np.abs(np.linalg.eigvals(closed)).max() < 1.0  # ... and K stabilises it


def test_tvlqr_on_a_long_horizon_equals_dlqr_early():
    A, B, Q, R = _system(seed=1)
    T = 400
    K, P = tvlqr(
        np.broadcast_to(A, (T, 4, 4)),
        np.broadcast_to(B, (T, 4, 2)),
        Q,
        R,
        Q,
        return_cost_to_go=True,
    )
    assert K.shape == (T, 2, 4) and P.shape == (T + 1, 4, 4)
    K_inf = dlqr(A, B, Q, R)
    for t in (0, 10, 100):
        np.testing.assert_allclose(K[t], K_inf, atol=1e-8, rtol=0)
    np.testing.assert_allclose(P[0], scipy.linalg.solve_discrete_are(A, B, Q, R), rtol=1e-8)
    # near the end the finite horizon shows: the last gain is the one-step gain
    np.testing.assert_allclose(K[-1], np.linalg.solve(R + B.T @ Q @ B, B.T @ Q @ A), atol=1e-12)
    assert not np.allclose(K[-1], K_inf, atol=1e-3)


def test_tvlqr_cost_to_go_is_the_closed_loop_cost_on_a_time_varying_system():
    rng = np.random.default_rng(2)
    T, n, m = 30, 3, 2
    As = np.eye(n) + 0.3 * rng.standard_normal((T, n, n))
    Bs = rng.standard_normal((T, n, m))
    Q, R, Qf = np.eye(n), 0.5 * np.eye(m), 3.0 * np.eye(n)
    K, P = tvlqr(As, Bs, Q, R, Qf, return_cost_to_go=True)
    x0 = rng.standard_normal(n)
    x, total = x0.copy(), 0.0
    for t in range(T):
        u = -K[t] @ x
        total += x @ Q @ x + u @ R @ u
        x = As[t] @ x + Bs[t] @ u
    total += x @ Qf @ x
    np.testing.assert_allclose(total, x0 @ P[0] @ x0, rtol=1e-10)
    # and no other gain does better: perturbing one gain raises the cost
    K_bad = K.copy()
    K_bad[5] += 0.05
    x, worse = x0.copy(), 0.0
    for t in range(T):
        u = -K_bad[t] @ x
        worse += x @ Q @ x + u @ R @ u
        x = As[t] @ x + Bs[t] @ u
    worse += x @ Qf @ x
    assert worse > total


def test_tvlqr_carries_batch_axes():
    rng = np.random.default_rng(3)
    As = np.eye(3) + 0.1 * rng.standard_normal((2, 5, 3, 3))
    Bs = rng.standard_normal((2, 5, 3, 1))
    Q, R = np.eye(3), np.eye(1)
    K = tvlqr(As, Bs, Q, R, Q)
    assert K.shape == (2, 5, 1, 3)
    for i in range(2):
        np.testing.assert_allclose(K[i], tvlqr(As[i], Bs[i], Q, R, Q), atol=1e-14)


@pytest.mark.parametrize(
    ("Q", "R", "match"),
    [
        (np.array([[1.0, 0.5], [0.0, 1.0]]), np.eye(1), "symmetric"),
        (np.diag([1.0, -1.0]), np.eye(1), "positive semi-definite"),
        (np.eye(2), np.zeros((1, 1)), "positive definite"),
        (np.eye(3), np.eye(1), r"shape \(2, 2\)"),
    ],
)
def test_bad_weights_are_rejected_with_a_message(Q, R, match):
    A, B = np.eye(2), np.ones((2, 1))
    with pytest.raises(ValueError, match=match):
        tvlqr(A[None], B[None], Q, R, np.eye(2))


def test_bad_system_shapes_are_rejected():
    with pytest.raises(ValueError, match="matching n"):
        tvlqr(np.zeros((4, 3, 3)), np.zeros((4, 2, 1)), np.eye(3), np.eye(1), np.eye(3))
    with pytest.raises(ValueError, match="stabilisable"):
        dlqr(2.0 * np.eye(2), np.array([[1.0], [0.0]]), np.eye(2), np.eye(1))


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("with_final_state", [False, True])
def test_synthesize_tvlqr_is_consistent(batched, with_final_state):
    A, B, Q, R = _system(seed=4)
    T = 12
    rng = np.random.default_rng(5)
    inputs = rng.standard_normal((T, 2))
    states = [rng.standard_normal(4)]
    for t in range(T):
        states.append(A @ states[-1] + B @ inputs[t])
    states = np.asarray(states)[: T + 1 if with_final_state else T]

    def linearize(x, u):
        lead = x.shape[:-1]
        return np.broadcast_to(A, lead + A.shape), np.broadcast_to(B, lead + B.shape)

    primitives = synthesize_tvlqr(states, inputs, linearize, Q, R, Q, batched=batched)
    assert isinstance(primitives, Primitives)
    assert primitives.K.shape == (T, 2, 4) and primitives.x_bar.shape == (T, 4)
    for t in range(T):
        np.testing.assert_allclose(primitives(states[t], t), inputs[t], atol=1e-12, rtol=0)
    # the stored gain is minus the LQR gain
    np.testing.assert_allclose(
        primitives.K[0], -tvlqr(A[None].repeat(T, 0), B[None].repeat(T, 0), Q, R, Q)[0]
    )


def test_synthesize_tvlqr_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="states must have shape"):
        synthesize_tvlqr(
            np.zeros((5, 2)),
            np.zeros((3, 1)),
            lambda x, u: (np.eye(2), np.ones((2, 1))),
            np.eye(2),
            np.eye(1),
            np.eye(2),
        )
