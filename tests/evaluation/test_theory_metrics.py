"""TV_eps, D_train,eps and D_test,eps: hand-computable cases and the defining properties."""

from __future__ import annotations

import numpy as np
import pytest

from hint_envs.evaluation import d_test_eps, d_train_eps, tv_eps


def test_tv_eps_hand_cases():
    # P = {0, 0, 1, 1}, Q = {0, 1, 1, 1}: one atom of mass 1/4 must move
    assert tv_eps([0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0]) == pytest.approx(0.25)
    # the same with every atom of Q displaced by 0.05: eps = 0.1 forgives the shift ...
    assert tv_eps([0.0, 0.0, 1.0, 1.0], [0.05, 1.05, 1.05, 1.05], eps=0.1) == pytest.approx(0.25)
    # ... eps = 0 does not: the plain TV of disjoint supports is 1
    assert tv_eps([0.0, 0.0, 1.0, 1.0], [0.05, 1.05, 1.05, 1.05]) == pytest.approx(1.0)
    assert tv_eps([[0.0, 0.0]], [[3.0, 4.0]], eps=5.0) == 0.0  # distance exactly 5 is not > 5
    assert tv_eps([[0.0, 0.0]], [[3.0, 4.0]], eps=4.99) == 1.0


def test_tv_eps_unequal_sizes_and_discrete_tv():
    # empirical TV of Bernoulli(1/3) vs Bernoulli(1/2) samples: |1/3 - 1/2| = 1/6
    p = [1.0, 0.0, 0.0]
    q = [1.0, 0.0]
    assert tv_eps(p, q) == pytest.approx(1 / 6)
    assert tv_eps(q, p) == pytest.approx(1 / 6)


def test_tv_eps_is_a_metric_on_random_samples():
    rng = np.random.default_rng(0)
    a, b, c = (rng.normal(size=(6, 2)) for _ in range(3))
    eps = 0.3
    assert tv_eps(a, a, eps) == 0.0
    assert tv_eps(a, b, eps) == pytest.approx(tv_eps(b, a, eps))
    # TV_eps satisfies a relaxed triangle inequality: TV_2eps(a, c) <= TV_eps(a, b) + TV_eps(b, c)
    assert tv_eps(a, c, 2 * eps) <= tv_eps(a, b, eps) + tv_eps(b, c, eps) + 1e-12
    # and it can only shrink as eps grows
    values = [tv_eps(a, b, e) for e in (0.0, 0.5, 1.0, 2.0, 10.0)]
    assert values == sorted(values, reverse=True) and values[-1] == 0.0


def test_d_train_is_the_mean_over_states():
    expert = np.array([[0.0], [1.0]])  # one deterministic expert action per state
    policy = np.array([[[0.0], [0.0], [5.0], [5.0]], [[1.0], [1.0], [1.0], [1.0]]])
    # state 0: half the samples are far; state 1: none
    assert d_train_eps(policy, expert, eps=0.5) == pytest.approx(0.25)
    assert d_train_eps(policy, expert[:, None, :], eps=0.5) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="same N states"):
        d_train_eps(policy, expert[:1], eps=0.5)


def test_d_test_pools_rollouts_per_time_step():
    # expert: half go up, half go down; the imitator always goes up
    t = np.arange(4.0)[:, None]
    up, down = np.hstack([t, t]), np.hstack([t, -t])
    expert = [up, down, up, down]
    imitator = [up, up, up, up]
    curve = d_test_eps(imitator, expert, eps=0.5)
    assert curve.shape == (4,)
    assert curve[0] == 0.0  # same start
    np.testing.assert_allclose(curve[1:], 0.5)  # half the mass is on the other branch
    # marginals, not pairs: the imitator matches the expert's marginal in another order
    assert np.all(d_test_eps([down, up, down, up], expert, eps=0.5) == 0.0)


@pytest.mark.parametrize(
    "bad, match",
    [
        (-0.1, "eps must be a finite number >= 0"),
        (float("nan"), "eps must be"),
        ("0.1", "eps must"),
    ],
)
def test_bad_eps_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        tv_eps([0.0], [1.0], bad)


def test_bad_samples_are_clear_errors():
    with pytest.raises(ValueError, match="non-empty"):
        tv_eps([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        tv_eps([np.nan], [1.0])
    with pytest.raises(ValueError, match="differ in dimension"):
        tv_eps(np.zeros((2, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        d_test_eps([np.zeros((2, 1))], [np.zeros((2, 1))], eps=0.0)
