"""Robomimic synthesis: the least-squares arm model, its output-feedback gains, consistency."""

from __future__ import annotations

import numpy as np
import pytest

from hint_envs.experts.base import Demonstration
from hint_envs.synthesis import lqr
from hint_envs.synthesis.robomimic import (
    INPUT_DIMS,
    fit_arm_model,
    position_gains,
    synthesize,
)

TRUE = np.array([[1.75, -0.80, 0.05, 0.001], [1.70, -0.76, 0.06, 0.0], [1.6, -0.67, 0.07, 0.009]])


def simulate(coefficients: np.ndarray, T: int, seed: int, noise: float = 0.0):
    """Positions (T + 1, 3) of the per-axis model driven by random smooth targets."""
    rng = np.random.default_rng(seed)
    u = np.cumsum(rng.normal(0.0, 0.01, (T, 3)), axis=0) + 1.0
    p = np.ones((T + 1, 3))
    for t in range(1, T):
        a, b, c, d = coefficients.T
        p[t + 1] = a * p[t] + b * p[t - 1] + c * u[t] + d + noise * rng.normal(size=3)
    p[1] = p[0]
    return p, u


def test_the_fit_recovers_a_known_model():
    p, u = simulate(TRUE, 200, seed=0)
    model = fit_arm_model(p, u)
    np.testing.assert_allclose(model.coefficients, TRUE, atol=1e-8)
    assert np.all(model.fit_rms < 1e-10) and np.all(model.fit_r2 > 0.999999)
    noisy = fit_arm_model(*simulate(TRUE, 400, seed=1, noise=1e-4))
    assert np.all(np.abs(noisy.fit_rms - 1e-4) < 2e-5)  # the residual is the noise


def test_gains_minimise_the_closed_loop_cost_and_stabilise():
    model = fit_arm_model(*simulate(TRUE, 200, seed=0))
    k = position_gains(model)
    assert np.all(k > 0)
    C = np.array([[1.0, 0.0]])
    for i in range(3):
        A, B = model.matrices(i)
        assert np.max(np.abs(np.linalg.eigvals(A - k[i] * B @ C))) < 1.0
        Q, R = np.diag([1e4, 0.0]), 2500.0
        best = lqr._output_feedback_cost(k[i], A, B, C, Q, R)
        for other in (0.0, 0.5 * k[i], 1.5 * k[i]):
            assert best <= lqr._output_feedback_cost(other, A, B, C, Q, R) + 1e-9


def test_synthesis_is_consistent_and_acts_on_position_rows_only():
    T = 60
    p, u = simulate(TRUE, T, seed=2)
    observations = np.concatenate([p[:-1], np.zeros((T, 16))], axis=1)
    actions = np.concatenate([u, np.zeros((T, 3)), np.ones((T, 1))], axis=1)
    demo = Demonstration(
        observations=observations,
        actions=actions,
        rewards=np.zeros(T),
        dones=np.r_[np.zeros(T - 1), 1.0],
        states=np.zeros((T, 4)),
        final_observation=np.concatenate([p[-1], np.zeros(16)]),
        final_state=np.zeros(4),
    )
    primitives = synthesize(demo)
    assert primitives.K.shape == (T, INPUT_DIMS[0], 3)
    for t in range(T):
        np.testing.assert_allclose(primitives(observations[t, :3], t), actions[t])
    assert np.all(primitives.K[:, 3:] == 0)
    assert len(demo.attrs["synthesis_fit_rms"]) == 3 and demo.attrs["synthesis_gain"][0] > 0
    assert np.all(synthesize(demo, gain=0.0).K == 0)
    with pytest.raises(ValueError, match="gain"):
        synthesize(demo, gain=-1.0)
    with pytest.raises(ValueError, match="at least"):
        fit_arm_model(p[:5], u[:4])
    with pytest.raises(ValueError, match="not identifiable"):
        fit_arm_model(np.ones((T + 1, 3)), np.ones((T, 3)))


def test_fitted_gains_return_a_pushed_arm_to_the_demonstration_faster():
    """On robosuite itself: a scripted reach, then the same reach with a 5.8 cm push for
    the first 5 steps; with the fitted gains the arm is back within 1.5 cm well before
    it is with K = 0 (pure position commands)."""
    pytest.importorskip("robosuite")
    import gymnasium as gym

    import hint_envs  # noqa: F401

    env = gym.make("hint_envs/RobomimicLift-v0").unwrapped
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    rotation, start = env.site_rotvec(), env.get_state()
    observations, actions, states = [], [], []
    position = obs[:3].copy()
    for _ in range(4):  # four straight 15-step moves of up to 10 cm per axis
        goal = position + rng.uniform(-0.1, 0.1, 3)
        goal[2] = np.clip(goal[2], 0.9, 1.15)
        for j in range(15):
            u = np.concatenate([position + (goal - position) * (j + 1) / 15, rotation, [-1.0]])
            observations.append(obs)
            states.append(env.get_state())
            actions.append(u)
            obs, *_ = env.step(u)
        position = goal
    T = len(actions)
    demo = Demonstration(
        np.array(observations),
        np.array(actions),
        np.zeros(T),
        np.r_[np.zeros(T - 1), 1.0],
        np.array(states),
        obs,
        env.get_state(),
    )
    targets = np.concatenate([demo.observations[1:, :3], demo.final_observation[None, :3]])
    recovered = {}
    for name, gain in (("fitted", None), ("zero", 0.0)):
        primitives = synthesize(demo, gain=gain)
        env.reset(options={"state": start})
        obs = env._last_obs
        errors = []
        for t in range(T):
            u = primitives(obs[:3], t)
            if t < 5:
                u = u + np.r_[0.04, -0.03, 0.03, np.zeros(4)]
            obs, *_ = env.step(u)
            errors.append(np.linalg.norm(obs[:3] - targets[t]))
        recovered[name] = 5 + int(np.argmax(np.array(errors[5:]) < 0.015))
    assert demo.attrs["synthesis_fit_r2"][0] > 0.95
    assert recovered["fitted"] + 3 <= recovered["zero"], recovered
    env.close()
