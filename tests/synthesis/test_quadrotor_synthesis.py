"""The quadrotor's synthesis oracle: TVLQR along expert demonstrations."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401
from hint_envs.core import Primitives
from hint_envs.envs.planar_quadrotor import QuadrotorParams, dynamics, jacobians
from hint_envs.experts.quadrotor import QuadrotorExpert
from hint_envs.synthesis import synthesize as synthesize_by_id
from hint_envs.synthesis.quadrotor import DEFAULT_Q, DEFAULT_R, params_from_attrs, synthesize

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


@pytest.fixture(scope="module")
def demos():
    expert = QuadrotorExpert()
    return [expert.demonstrate(seed) for seed in range(4)]


def replay(primitives: Primitives, start: np.ndarray, gains: bool) -> np.ndarray:
    """States visited executing ``primitives`` in the env from ``start`` (stops on a crash)."""
    env = gym.make(ENV_ID).unwrapped
    obs, _ = env.reset(options={"state": start})
    states = [obs]
    for t in range(len(primitives)):
        obs, _, terminated, _, _ = env.step(primitives(obs, t) if gains else primitives.u_bar[t])
        states.append(obs)
        if terminated:
            break
    return np.asarray(states)


def test_analytic_jacobians_match_finite_differences():
    params = QuadrotorParams()
    rng = np.random.default_rng(0)
    x = rng.uniform([-1, 0, -0.6, -2, -2, -3], [1, 3, 0.6, 2, 2, 3])
    u = np.array([5.5, 0.03])
    A, B = jacobians(x, u, params)
    eps = 1e-6
    A_fd = np.stack(
        [
            (dynamics(x + eps * e, u, params) - dynamics(x - eps * e, u, params)) / (2 * eps)
            for e in np.eye(6)
        ],
        axis=-1,
    )
    B_fd = np.stack(
        [
            (dynamics(x, u + eps * e, params) - dynamics(x, u - eps * e, params)) / (2 * eps)
            for e in np.eye(2)
        ],
        axis=-1,
    )
    np.testing.assert_allclose(A, A_fd, atol=1e-7)
    np.testing.assert_allclose(B, B_fd, atol=1e-7)


def test_synthesize_is_consistent_with_the_demonstration(demos):
    for demo in demos:
        primitives = synthesize(demo)
        T = len(demo)
        assert primitives.u_bar.shape == (T, 2)
        assert primitives.x_bar.shape == (T, 6)
        assert primitives.K.shape == (T, 2, 6)
        np.testing.assert_array_equal(primitives.x_bar, demo.states)
        for t in range(T):
            np.testing.assert_allclose(
                primitives(demo.states[t], t), demo.actions[t], atol=1e-12, rtol=0
            )


def test_registry_dispatches_to_the_quadrotor_synthesiser(demos):
    by_id = synthesize_by_id(ENV_ID, demos[0])
    direct = synthesize(demos[0])
    np.testing.assert_array_equal(by_id.K, direct.K)


def test_gains_stabilise_the_hover_and_follow_the_weights(demos):
    demo = demos[0]
    primitives = synthesize(demo)
    params = QuadrotorParams()
    # at the end the demonstration hovers at the goal: the last gain stabilises the hover
    A, B = jacobians(demo.states[-1], demo.actions[-1], params)
    assert np.abs(np.linalg.eigvals(A + B @ primitives.K[-1])).max() < 0.95
    # heavier torque weight, smaller torque gains
    softer = synthesize(demo, R=np.diag([DEFAULT_R[0, 0], 10 * DEFAULT_R[1, 1]]))
    assert np.abs(softer.K[:, 1]).max() < np.abs(primitives.K[:, 1]).max()
    with pytest.raises(ValueError, match="shape"):
        synthesize(demo, Q=np.eye(3))
    assert DEFAULT_Q.shape == (6, 6)


def test_params_are_read_from_the_demonstration_attrs(demos):
    demo = demos[1]
    heavy = QuadrotorParams(mass=0.6)
    stored = dataclasses.replace(
        demo, attrs={**demo.attrs, "params": json.dumps(dataclasses.asdict(heavy))}
    )
    assert params_from_attrs(stored.attrs) == heavy
    np.testing.assert_allclose(synthesize(stored).K, synthesize(demo, params=heavy).K)
    assert not np.allclose(synthesize(stored).K, synthesize(demo).K)
    with pytest.raises(ValueError, match="unknown fields"):
        params_from_attrs({"params": {"mass": 1.0, "wings": 2}})


@pytest.mark.parametrize(
    "offset",
    [np.array([0.05, 0.05, 0, 0, 0, 0]), np.array([0.05, 0.05, 0.02, 0, 0, 0])],
    ids=["position", "position+pitch"],
)
def test_closed_loop_recovers_from_perturbed_starts_and_open_loop_does_not(demos, offset):
    for demo in demos:
        primitives = synthesize(demo)
        reference = np.vstack([demo.states, demo.final_state[None]])
        errors = {}
        for gains in (True, False):
            path = replay(primitives, demo.states[0] + offset, gains)
            errors[gains] = np.linalg.norm(path[-1, :2] - reference[len(path) - 1, :2])
        assert errors[False] >= 0.05, errors  # open loop keeps (at least) the offset
        assert errors[True] < 0.2 * errors[False], errors
