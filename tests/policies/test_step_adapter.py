"""StepLevelPolicy: it reproduces the chunk-level env's inputs (bit for bit, through the
wrappers' executor), keeps one queue and one history per env, and clears them on
episode_start."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode
from policy_testing import ENV_ID, make_chunk_env, make_policy, tiny_config

from hint_envs.core import control_law
from hint_envs.wrappers import PrimitiveControllerVectorWrapper, PrimitiveControllerWrapper
from policies.step_adapter import StepLevelPolicy


@pytest.mark.parametrize("gains", [True, False])
def test_reproduces_the_chunk_env_inputs_for_the_same_chunks(demos, gains):
    config = tiny_config(gains=gains)
    policy = make_policy(demos, config)
    chunk_env = make_chunk_env(config)
    obs, _ = chunk_env.reset(seed=5)
    chunk_inputs, done = [], False
    while not done:
        action, _ = policy.predict(obs, deterministic=True)
        obs, _, terminated, truncated, info = chunk_env.step(action)
        chunk_inputs.append(info["inner_inputs"][: info["steps_executed"]])
        done = terminated or truncated
    chunk_inputs = np.concatenate(chunk_inputs)

    env = gym.make(ENV_ID)
    adapter = StepLevelPolicy(policy, env.unwrapped.control_indices, env.action_space, sigma=0.0)
    obs, _ = env.reset(seed=5)
    step_inputs, done, start = [], False, True
    while not done:
        u, _ = adapter.predict(obs, episode_start=np.array([start]), deterministic=True)
        step_inputs.append(u)
        obs, _, terminated, truncated, _ = env.step(u)
        done, start = terminated or truncated, False
    assert len(step_inputs) == len(chunk_inputs) >= config.chunk_length
    np.testing.assert_allclose(np.array(step_inputs), chunk_inputs, rtol=0, atol=1e-12)


def test_queues_histories_and_episode_start(demos):
    config = tiny_config()  # chunk_length 4, obs_horizon 2
    policy = make_policy(demos, config)
    env = gym.make(ENV_ID)
    adapter = StepLevelPolicy(policy, env.unwrapped.control_indices)
    obs = np.stack([env.reset(seed=s)[0] for s in (0, 1)])
    u, state = adapter.predict(obs)
    assert u.shape == (2, 2) and state is None
    np.testing.assert_array_equal(adapter.queue_lengths, [3, 3])
    np.testing.assert_array_equal(adapter.observation_chunks(), np.stack([obs, obs], axis=1))
    first_controllers = adapter._u_bar.copy()
    # the control law of the queued controller at the current state
    adapter2_obs = obs + 0.01
    u, _ = adapter.predict(adapter2_obs)
    expected = control_law(
        adapter._u_bar[:, 1], adapter._x_bar[:, 1], adapter._K[:, 1], adapter2_obs
    )
    np.testing.assert_allclose(u, expected)
    np.testing.assert_array_equal(adapter.queue_lengths, [2, 2])
    np.testing.assert_array_equal(adapter.observation_chunks()[:, 0], obs)
    np.testing.assert_array_equal(adapter.observation_chunks()[:, 1], adapter2_obs)

    # a new episode in env 1: its queue and history are cleared, env 0 carries on
    new = obs.copy()
    new[1] += 0.5
    adapter.predict(new, episode_start=np.array([False, True]))
    np.testing.assert_array_equal(adapter.queue_lengths, [1, 3])
    np.testing.assert_array_equal(adapter.observation_chunks()[1], np.stack([new[1], new[1]]))
    np.testing.assert_array_equal(adapter._u_bar[0], first_controllers[0])
    assert not np.array_equal(adapter._u_bar[1], first_controllers[1])
    adapter.predict(new)  # env 0 empties its queue here ...
    np.testing.assert_array_equal(adapter.queue_lengths, [0, 2])
    adapter.predict(new)  # ... and samples a new chunk on the next step
    np.testing.assert_array_equal(adapter.queue_lengths, [3, 1])
    assert not np.array_equal(adapter._u_bar[0], first_controllers[0])


def test_single_observation_and_clipping(demos):
    config = tiny_config(gains=False)
    policy = make_policy(demos, config)
    env = gym.make(ENV_ID)
    adapter = StepLevelPolicy(policy, env.unwrapped.control_indices, env.action_space)
    obs, _ = env.reset(seed=0)
    u, _ = adapter.predict(obs)
    assert u.shape == (2,) and env.action_space.contains(u)
    np.testing.assert_array_equal(u, np.clip(adapter._u_bar[0, 0], env.action_space.low,
                                              env.action_space.high))  # fmt: skip
    with pytest.raises(ValueError, match=r"observations must have shape \(N, 6\)"):
        adapter.predict(np.zeros(5))


def test_replica_noise_on_the_observed_chunks_only(demos):
    config = tiny_config(sigma=0.2, denoiser="unet1d")  # the MLP starts blind to observations
    policy = make_policy(demos, config)
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=0)
    chunks = []
    for noise_seed in (0, 0, 1):
        adapter = StepLevelPolicy(policy, env.unwrapped.control_indices, noise_seed=noise_seed)
        assert adapter.sigma == 0.2  # the policy's sigma by default
        adapter.predict(obs, deterministic=True)
        chunks.append(adapter._u_bar.copy())
    np.testing.assert_array_equal(chunks[0], chunks[1])
    assert not np.array_equal(chunks[0], chunks[2])


class FixedChunkPolicy:
    """A stand-in chunking policy that always proposes the same composite action."""

    def __init__(self, layout, obs_horizon: int, d_obs: int, composite: np.ndarray):
        self.layout = layout
        self.controller_size = layout.controller_size
        self.config = SimpleNamespace(
            obs_horizon=obs_horizon, chunk_length=layout.chunk_length, gains=layout.gains
        )
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_horizon, d_obs))
        self.composite = composite

    def predict(self, obs, deterministic=False):
        return np.tile(self.composite, (len(obs), 1)), None


@pytest.mark.parametrize("gains", [True, False])
def test_wrappers_and_adapter_execute_a_chunk_identically(gains):
    """The single wrapper, the vector wrapper and the step adapter share one executor: the
    same composite actions give bit-identical inner states and inputs."""
    chunk_length, obs_horizon, n_chunks, seeds = 5, 2, 3, [0, 1]
    single = PrimitiveControllerWrapper(gym.make(ENV_ID), chunk_length, obs_horizon, gains)
    layout = single.layout
    base = gym.make(ENV_ID).unwrapped
    rng = np.random.default_rng(0)
    prim = layout.unpack(np.zeros(layout.size))
    prim.u_bar[:] = base.params.hover_input + rng.normal(0, 0.5, prim.u_bar.shape)
    prim.x_bar[:] = rng.normal(0, 0.1, prim.x_bar.shape)
    prim.K[:] = rng.normal(0, 0.5, prim.K.shape)
    composite = np.clip(layout.pack(prim), single.action_space.low, single.action_space.high)

    expected = {}  # seed -> (states, inputs) of the single wrapper
    for seed in seeds:
        single.reset(seed=seed)
        states, inputs = [], []
        for _ in range(n_chunks):
            _, _, terminated, truncated, info = single.step(composite)
            states.append(info["inner_states"][: info["steps_executed"]])
            inputs.append(info["inner_inputs"][: info["steps_executed"]])
            if terminated or truncated:
                break
        expected[seed] = (np.concatenate(states), np.concatenate(inputs))

    inner = gym.make_vec(
        ENV_ID,
        num_envs=len(seeds),
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
    )
    vector = PrimitiveControllerVectorWrapper(inner, chunk_length, obs_horizon, gains)
    vector.reset(seed=seeds[0])
    vector_states, vector_inputs = [[] for _ in seeds], [[] for _ in seeds]
    ended = np.zeros(len(seeds), dtype=bool)
    for _ in range(n_chunks):
        _, _, terms, truncs, infos = vector.step(np.tile(composite, (len(seeds), 1)))
        for i in np.flatnonzero(~ended):
            n = infos["steps_executed"][i]
            vector_states[i].append(infos["inner_states"][i, :n])
            vector_inputs[i].append(infos["inner_inputs"][i, :n])
        ended |= terms | truncs

    for i, seed in enumerate(seeds):
        np.testing.assert_array_equal(np.concatenate(vector_states[i]), expected[seed][0])
        np.testing.assert_array_equal(np.concatenate(vector_inputs[i]), expected[seed][1])

        env = gym.make(ENV_ID)
        policy = FixedChunkPolicy(layout, obs_horizon, env.observation_space.shape[0], composite)
        adapter = StepLevelPolicy(policy, base.control_indices, env.action_space, sigma=0.0)
        obs, _ = env.reset(seed=seed)
        states, inputs = [], []
        for t in range(len(expected[seed][1])):
            states.append(obs[base.control_indices])
            u, _ = adapter.predict(obs, episode_start=np.array([t == 0]))
            inputs.append(u)
            obs, *_ = env.step(u)
        np.testing.assert_array_equal(np.array(states), expected[seed][0])
        np.testing.assert_array_equal(np.array(inputs), expected[seed][1])
