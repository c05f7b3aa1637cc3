"""The bifurcation task's synthesis oracle: TVLQR along expert demonstrations."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401
from hint_envs.core import CompositeActionLayout, Primitives
from hint_envs.envs.bifurcation import BifurcationParams
from hint_envs.experts.bifurcation import BifurcationExpert
from hint_envs.synthesis import SYNTHESIZERS
from hint_envs.synthesis import synthesize as synthesize_by_id
from hint_envs.synthesis.bifurcation import params_from_attrs, synthesize
from hint_envs.wrappers import PrimitiveControllerWrapper

ENV_ID = "hint_envs/Bifurcation-v0"


@pytest.fixture(scope="module")
def demos():
    expert = BifurcationExpert(input_noise_std=0.1)
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


def test_registered_and_consistent(demos):
    assert ENV_ID in SYNTHESIZERS
    for demo in demos:
        primitives = synthesize_by_id(ENV_ID, demo)
        assert primitives.K.shape == (len(demo), 2, 4)
        for t in range(len(demo)):
            np.testing.assert_allclose(primitives(demo.states[t], t), demo.actions[t], atol=1e-12)
        # replaying them from the demo's start gives the demonstration back
        np.testing.assert_allclose(replay(primitives, demo.states[0], True)[:-1], demo.states)


def test_the_closed_loop_returns_to_the_demonstrated_path_after_a_perturbation(demos):
    demo = demos[0]
    primitives = synthesize(demo)
    start = demo.states[0] + np.array([0.0, 0.15, 0.2, -0.2])  # pushed towards the boundary
    closed = replay(primitives, start, gains=True)
    opened = replay(primitives, start, gains=False)
    path = np.vstack([demo.states, demo.final_state])[:, :2]
    error_closed = np.linalg.norm(closed[:, :2] - path[: len(closed)], axis=1)
    error_open = np.linalg.norm(opened[:, :2] - path[: len(opened)], axis=1)
    assert len(closed) == len(path)  # no crash
    assert error_closed[0] == pytest.approx(0.15)
    assert error_closed[-20:].max() < 0.01  # back on the demonstrated path
    assert error_open[-1] > 0.5  # the same inputs without the gains drift away


def test_the_wrapper_executes_synthesised_chunks_like_the_replay(demos):
    demo = demos[1]
    primitives = synthesize(demo)
    layout = CompositeActionLayout(d_u=2, d_x=4, chunk_length=10)
    env = PrimitiveControllerWrapper(gym.make(ENV_ID), chunk_length=10, obs_horizon=1)
    env.reset(options={"state": demo.states[0]})
    visited = []
    for k in range(7):
        _, _, terminated, truncated, info = env.step(layout.pack(primitives[10 * k : 10 * k + 10]))
        visited.append(info["inner_states"])
    np.testing.assert_allclose(np.concatenate(visited)[: len(demo)], demo.states, atol=1e-12)
    assert truncated and info["is_success"]


def test_params_from_attrs_and_custom_weights(demos):
    params = BifurcationParams(dt=0.05)
    stored = json.dumps(dataclasses.asdict(params))
    assert params_from_attrs({"params": stored}) == params
    assert params_from_attrs({}) == BifurcationParams()
    with pytest.raises(ValueError, match="unknown fields"):
        params_from_attrs({"params": {"mass": 1.0}})
    soft = synthesize(demos[0], Q=np.eye(4), R=100 * np.eye(2))
    stiff = synthesize(demos[0])
    assert np.abs(soft.K).max() < np.abs(stiff.K).max()
    with pytest.raises(ValueError, match="states of shape"):
        synthesize(dataclasses.replace(demos[0], states=demos[0].states[:, :2]))
