"""The scalar linear system's synthesis oracle: TVLQR with the exact (A, B) = (a, b)."""

from __future__ import annotations

import numpy as np
import pytest

import hint_envs  # noqa: F401
from hint_envs.experts.scalar_linear import ScalarLinearExpert
from hint_envs.synthesis import SYNTHESIZERS
from hint_envs.synthesis import synthesize as synthesize_by_id
from hint_envs.synthesis.scalar_linear import synthesize, system_from_attrs

ENV_ID = "hint_envs/ScalarLinear-v0"


@pytest.mark.parametrize("a", [0.9, 2.0, -3.0])
def test_controllers_are_consistent(a):
    demo = ScalarLinearExpert(env_kwargs={"a": a, "noise_std": 0.1}, input_noise_std=0.2)
    demo = demo.demonstrate(seed=1)
    primitives = synthesize_by_id(ENV_ID, demo)
    T = len(demo)
    assert primitives.u_bar.shape == (T, 1) and primitives.K.shape == (T, 1, 1)
    for t in range(T):
        assert np.array_equal(primitives(demo.states[t], t), demo.actions[t])
    assert SYNTHESIZERS[ENV_ID] == "hint_envs.synthesis.scalar_linear:synthesize"


def test_unstable_gains_stabilise_and_equal_the_stationary_lqr_gain():
    demo = ScalarLinearExpert(env_kwargs={"a": 2.0}).demonstrate(seed=0)
    K = synthesize(demo).K[:, 0, 0]
    assert np.all(np.abs(2.0 + 1.0 * K) < 1.0)
    # Q = R = 1: P = 2 + sqrt(5) solves the DARE, K = -a b P / (R + b^2 P) = -(1 + sqrt 5)/2
    assert np.allclose(K, -(1 + np.sqrt(5)) / 2, rtol=1e-12)
    heavy = synthesize(demo, Q=1.0, R=100.0).K[:, 0, 0]
    assert np.all(np.abs(2.0 + heavy) < 1.0) and np.all(np.abs(heavy) < np.abs(K))


def test_gains_follow_b_from_the_attrs():
    demo = ScalarLinearExpert(env_kwargs={"a": 2.0, "b": -4.0}).demonstrate(seed=0)
    K = synthesize(demo).K[:, 0, 0]
    assert np.all(np.abs(2.0 - 4.0 * K) < 1.0) and np.all(K > 0)


def test_missing_or_bad_system_attrs_raise_clear_errors():
    demo = ScalarLinearExpert().demonstrate(seed=0)
    del demo.attrs["a"]
    with pytest.raises(ValueError, match="no 'a'"):
        synthesize(demo)
    with pytest.raises(ValueError, match="'b'] is 0"):
        system_from_attrs({"a": 1.0, "b": 0.0})
    with pytest.raises(ValueError, match="must be a number"):
        system_from_attrs({"a": "x", "b": 1.0})
    demo.attrs["a"] = 0.9
    with pytest.raises(ValueError, match=r"shape \(1, 1\)"):
        synthesize(demo, Q=np.eye(2))
