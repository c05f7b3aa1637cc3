"""PushT: the same task as gym-pusht, the control-environment contract, exact state reset."""

from __future__ import annotations

import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

pytest.importorskip("gym_pusht")

import hint_envs  # noqa: E402, F401  (registers the environments)
from hint_envs.envs.pusht import (  # noqa: E402
    STATE_DIM,
    AgentParams,
    PushTEnv,
    agent_dynamics,
    agent_matrices,
    observation_bounds,
)

ENV_ID = "hint_envs/PushT-v0"
#: Diffusion Policy's PushT test seeds
TEST_SEEDS = range(100000, 100050)


def raw_env():
    from gym_pusht.envs.pusht import PushTEnv as RawPushTEnv

    return RawPushTEnv(obs_type="state")


@pytest.mark.parametrize("obs_type", ["state", "keypoints"])
def test_check_env_and_seeded_determinism_for_both_observation_types(obs_type):
    env = gym.make(ENV_ID, obs_type=obs_type, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    complaints = [  # the target is in pixels, as gym-pusht's: not a normalised action
        str(w.message)
        for w in caught
        if "WARN:" in str(w.message) and "symmetric and normalized" not in str(w.message)
    ]
    assert not complaints, complaints
    assert env.observation_space.shape == ({"state": 5, "keypoints": 18}[obs_type],)
    frame = env.unwrapped.render()
    assert frame.shape == (680, 680, 3) and frame.dtype == np.uint8

    def rollout(seed):
        env = gym.make(ENV_ID, obs_type=obs_type)
        env.action_space.seed(seed)
        record = [env.reset(seed=seed)]
        record += [env.step(env.action_space.sample()) for _ in range(30)]
        return record

    assert data_equivalence(rollout(7), rollout(7), exact=True)
    assert not data_equivalence(rollout(7)[0][0], rollout(8)[0][0])


def test_initial_states_equal_gym_pushts_for_the_diffusion_policy_test_seeds():
    env, raw = gym.make(ENV_ID).unwrapped, raw_env()
    for seed in TEST_SEEDS:
        obs, info = env.reset(seed=seed)
        raw_obs, raw_info = raw.reset(seed=seed)
        np.testing.assert_array_equal(obs, raw_obs)
        np.testing.assert_array_equal(info["block_pose"], raw_info["block_pose"])
        assert info["coverage"] == raw._get_coverage()
    # unseeded resets continue the same stream as gym-pusht's
    np.testing.assert_array_equal(env.reset()[0], raw.reset()[0])


def test_steps_reward_coverage_and_success_are_gym_pushts():
    env, raw = gym.make(ENV_ID).unwrapped, raw_env()
    env.reset(seed=3)
    raw.reset(seed=3)
    rng = np.random.default_rng(0)
    for target in rng.uniform(0, 512, size=(40, 2)):
        obs, reward, terminated, truncated, info = env.step(target)
        r_obs, r_reward, r_terminated, r_truncated, r_info = raw.step(target)
        np.testing.assert_array_equal(obs, r_obs)
        assert (reward, terminated, truncated) == (r_reward, r_terminated, r_truncated)
        assert info["coverage"] == r_info["coverage"] and info["is_success"] == r_info["is_success"]


def test_keypoint_observation_is_the_flat_gym_pusht_keypoints():
    env = gym.make(ENV_ID, obs_type="keypoints").unwrapped
    obs, _ = env.reset(seed=11)
    sim = env.sim
    np.testing.assert_array_equal(obs[:2], np.asarray(sim.agent.position))
    np.testing.assert_array_equal(obs[2:], sim.get_keypoints(sim._block_shapes).ravel())
    assert env.obs_keys == {"agent_pos": (0, 2), "keypoints": (2, 18)}


def test_agent_dynamics_are_exactly_the_linear_model_whatever_the_block_does():
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=0)
    A, B = agent_matrices(AgentParams())
    rng = np.random.default_rng(1)
    for target in rng.uniform(0, 512, size=(60, 2)):  # random targets: many contacts
        state = env.get_state()
        p, v = agent_dynamics(state[:2], state[2:4], target, AgentParams())
        z = np.stack([state[:2], state[2:4]])  # (2: p, v; 2 axes)
        z_next = A @ z + B @ target[None, :]
        env.step(target)
        after = env.get_state()
        np.testing.assert_allclose(after[:2], p, rtol=0, atol=1e-9)
        np.testing.assert_allclose(after[2:4], v, rtol=0, atol=1e-9)
        np.testing.assert_allclose(z_next[0], p, rtol=0, atol=1e-9)
        np.testing.assert_allclose(z_next[1], v, rtol=0, atol=1e-9)


def test_exact_state_reset_restores_bodies_and_replays_a_contact_free_episode():
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=5)
    state = env.get_state()
    assert state.shape == (STATE_DIM,)
    moved = state.copy()
    moved[[2, 3, 7, 8, 9]] = [30.0, -20.0, 1.5, -2.5, 0.3]  # moving agent and block
    obs, info = env.reset(options={"state": moved})
    np.testing.assert_array_equal(env.get_state(), moved)
    assert np.isclose(obs[4], moved[6] % (2 * np.pi))
    # seed 5 with these targets never touches the block: replay is bit for bit
    targets = np.tile([[400.0, 60.0]], (20, 1))
    env.reset(seed=5)
    first = [env.step(t)[0] for t in targets]
    env.reset(options={"state": state})
    second = [env.step(t)[0] for t in targets]
    np.testing.assert_array_equal(np.array(first), np.array(second))


def test_out_of_range_targets_are_clipped_and_bad_inputs_raise():
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=2)
    a = env.step(np.array([900.0, -50.0]))[0]
    env.reset(seed=2)
    b = env.step(np.array([512.0, 0.0]))[0]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="NaN"):
        env.step(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(ValueError, match="options\\['state'\\]"):
        env.reset(options={"state": np.zeros(5)})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"reset_to_state": [1, 2, 3, 4, 5]})
    with pytest.raises(ValueError, match="obs_type"):
        PushTEnv(obs_type="pixels")


def test_observations_stay_inside_the_declared_bounds_under_bang_bang_targets():
    env = gym.make(ENV_ID).unwrapped
    obs, _ = env.reset(seed=0)
    low, high = observation_bounds("state")
    for k in range(400):  # alternate corners every 3 steps: the largest overshoots
        obs = env.step(np.array([0.0, 512.0]) if (k // 3) % 2 else np.array([512.0, 0.0]))[0]
        assert np.all(obs >= low) and np.all(obs <= high)


def test_missing_gym_pusht_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gym_pusht.envs", None)
    with pytest.raises(gym.error.DependencyNotInstalled, match=r"hint_envs\[pusht\]"):
        PushTEnv()
