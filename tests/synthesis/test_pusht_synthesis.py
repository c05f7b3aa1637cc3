"""PushT's synthesis oracle: output feedback on the agent position from its exact model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("gym_pusht")

import hint_envs  # noqa: E402, F401
from hint_envs.envs.pusht import AgentParams, agent_matrices  # noqa: E402
from hint_envs.experts.base import Demonstration  # noqa: E402
from hint_envs.synthesis import synthesize as synthesize_by_id  # noqa: E402
from hint_envs.synthesis.pusht import output_feedback_gain, synthesize  # noqa: E402

ENV_ID = "hint_envs/PushT-v0"


def scripted_demo(seed: int = 4, steps: int = 25) -> Demonstration:
    """Targets sweeping towards the goal: a short, honest PushT episode."""
    env = gym.make(ENV_ID).unwrapped
    obs, _ = env.reset(seed=seed)
    observations, actions, states, rewards = [], [], [], []
    for t in range(steps):
        target = obs[:2] + (np.array([256.0, 256.0]) - obs[:2]) * min(1.0, 0.1 * (t + 1))
        observations.append(obs)
        states.append(env.get_state())
        actions.append(target)
        obs, reward, *_ = env.step(target)
        rewards.append(reward)
    dones = np.zeros(steps)
    dones[-1] = 1
    return Demonstration(
        np.array(observations),
        np.array(actions),
        np.array(rewards),
        dones,
        np.array(states),
        obs,
        env.get_state(),
    )


def closed_loop_contraction(k: float) -> float:
    A, B = agent_matrices(AgentParams())
    return float(np.max(np.abs(np.linalg.eigvals(A - k * B @ np.array([[1.0, 0.0]])))))


def test_gain_is_stabilising_and_improves_on_the_open_loop():
    k = output_feedback_gain()
    assert 0.0 < k < 1.0
    assert closed_loop_contraction(k) < closed_loop_contraction(0.0) < 1.0
    # a much heavier input weight means a smaller correction
    assert output_feedback_gain(R=1.0) < k


def test_primitives_are_consistent_with_the_demonstration():
    demo = scripted_demo()
    primitives = synthesize_by_id(ENV_ID, demo)
    assert primitives.u_bar.shape == (25, 2) and primitives.K.shape == (25, 2, 2)
    for t in range(len(demo)):
        np.testing.assert_allclose(primitives(demo.observations[t, :2], t), demo.actions[t])
    np.testing.assert_allclose(primitives.K[0], -output_feedback_gain() * np.eye(2))


def test_gains_shrink_an_agent_position_error_faster_than_pure_targets():
    demo = scripted_demo(seed=9)
    env = gym.make(ENV_ID).unwrapped

    def error_after(gain: float) -> float:
        primitives = synthesize(demo, gain=gain)
        start = demo.states[0].copy()
        start[:2] += [12.0, -9.0]  # displaced agent, same block
        obs, _ = env.reset(options={"state": start})
        for t in range(5):
            obs = env.step(primitives(obs[:2], t))[0]
        return float(np.linalg.norm(obs[:2] - demo.observations[5, :2]))

    assert error_after(output_feedback_gain()) < error_after(0.0)


def test_bad_inputs_raise():
    demo = scripted_demo(steps=3)
    with pytest.raises(ValueError, match="gain"):
        synthesize(demo, gain=-1.0)
    with pytest.raises(ValueError, match="R must be positive"):
        output_feedback_gain(R=0.0)
