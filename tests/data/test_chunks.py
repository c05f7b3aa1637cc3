"""ChunkDataset: windows, padding at both ends, layouts, demo selection, statistics."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.core import CompositeActionLayout, Primitives
from hint_envs.data import ChunkDataset, NormalizationStats, read_demonstrations
from hint_envs.data.hdf5 import write_demonstrations
from hint_envs.experts.base import Demonstration

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


def rollout(seed: int, steps: int) -> Demonstration:
    """A real quadrotor episode under seeded random inputs around hover, with seeded gains."""
    env = gym.make(ENV_ID)
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards, states = [], [], [], []
    for _ in range(steps):
        u = np.clip(
            base.params.hover_input + rng.normal(0.0, [0.5, 0.02]),
            env.action_space.low,
            env.action_space.high,
        )
        observations.append(obs)
        states.append(base.get_state())
        obs, reward, terminated, truncated, _ = env.step(u)
        actions.append(u)
        rewards.append(reward)
        if terminated or truncated:
            break
    T = len(actions)
    dones = np.zeros(T)
    dones[-1] = 1
    return Demonstration(
        observations=np.asarray(observations),
        actions=np.asarray(actions),
        rewards=np.asarray(rewards),
        dones=dones,
        states=np.asarray(states),
        final_observation=obs,
        final_state=base.get_state(),
        primitives=Primitives(np.asarray(actions), np.asarray(states), rng.normal(size=(T, 2, 6))),
        attrs={"seed": seed},
    )


@pytest.fixture(scope="module")
def demos() -> list[Demonstration]:
    return [rollout(seed, 5 + seed) for seed in range(4)]  # 5, 6, 7, 8 steps


def controller(demo: Demonstration, k: int) -> np.ndarray:
    """Controller ``k`` of ``demo`` packed by hand: [u_bar, x_bar, K row-major]."""
    p = demo.primitives
    return np.concatenate([p.u_bar[k], p.x_bar[k], p.K[k].reshape(-1)])


def test_windows_padded_at_both_ends_by_hand(demos: list[Demonstration]) -> None:
    demo = demos[0]  # 5 steps
    data = ChunkDataset([demo], obs_horizon=3, horizon=4)
    assert len(data) == 5
    o = demo.observations
    expected_obs = {
        0: [0, 0, 0],  # before the start: the first observation repeated
        1: [0, 0, 1],
        2: [0, 1, 2],
        4: [2, 3, 4],
    }
    expected_controllers = {
        0: [0, 1, 2, 3],
        1: [1, 2, 3, 4],
        2: [2, 3, 4, 4],  # past the end: the last controller repeated
        4: [4, 4, 4, 4],
    }
    for t, rows in expected_obs.items():
        obs, action = data[t]
        np.testing.assert_allclose(obs, o[rows].astype(np.float32))
        hand = np.stack([controller(demo, k) for k in expected_controllers[t]])
        np.testing.assert_allclose(action, hand.astype(np.float32))
        assert data.timesteps[t] == t and data.episode_ids[t] == 0
    assert data.observations.dtype == np.float32 and data.actions.dtype == np.float32


def test_shapes_layout_and_episode_index(demos: list[Demonstration]) -> None:
    data = ChunkDataset(demos, obs_horizon=2, horizon=8, env_id=ENV_ID)
    M = sum(len(d) for d in demos)
    size = 2 + 6 + 2 * 6
    assert data.observations.shape == (M, 2, 6)
    assert data.actions.shape == (M, 8, size)
    assert data.layout == CompositeActionLayout(2, 6, 8, True)
    assert data.layout.chunk_length == data.horizon == 8
    np.testing.assert_array_equal(np.bincount(data.episode_ids), [len(d) for d in demos])
    # a window's flat action unpacks (through the one layout helper) to its controllers
    i = int(np.flatnonzero((data.episode_ids == 2) & (data.timesteps == 3))[0])
    unpacked = data.layout.unpack(data.actions[i].reshape(-1))
    np.testing.assert_allclose(unpacked.K[0], demos[2].primitives.K[3], rtol=1e-6)
    np.testing.assert_allclose(unpacked.u_bar[3], demos[2].primitives.u_bar[6], rtol=1e-6)
    assert data.env_id == ENV_ID


def test_gains_false_is_u_bar_only(demos: list[Demonstration]) -> None:
    data = ChunkDataset(demos[:1], obs_horizon=1, horizon=3, gains=False)
    assert data.layout == CompositeActionLayout(2, 6, 3, False)
    assert data.actions.shape == (len(demos[0]), 3, 2)
    u_bar = demos[0].primitives.u_bar
    np.testing.assert_allclose(data[3][1], u_bar[[3, 4, 4]].astype(np.float32))
    assert data.stats.action.dim == 2
    np.testing.assert_allclose(data.stats.action.low, u_bar.min(axis=0))


def test_num_demos_selects_the_first(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    from_file = ChunkDataset(path, obs_horizon=2, horizon=4, num_demos=2)
    assert from_file.env_id == ENV_ID
    assert len(from_file) == len(demos[0]) + len(demos[1])
    assert set(from_file.episode_ids.tolist()) == {0, 1}
    direct = ChunkDataset(demos[:2], obs_horizon=2, horizon=4)
    np.testing.assert_array_equal(from_file.observations, direct.observations)
    np.testing.assert_array_equal(from_file.actions, direct.actions)
    from_demofile = ChunkDataset(read_demonstrations(path), obs_horizon=2, horizon=4)
    assert len(from_demofile) == sum(len(d) for d in demos)
    with pytest.raises(ValueError, match="num_demos=5 but .* holds 4"):
        ChunkDataset(path, obs_horizon=2, horizon=4, num_demos=5)
    with pytest.raises(ValueError, match="num_demos=0"):
        ChunkDataset(demos, obs_horizon=2, horizon=4, num_demos=0)


def test_stats_bound_the_selected_data(demos: list[Demonstration]) -> None:
    data = ChunkDataset(demos, obs_horizon=2, horizon=4, num_demos=3)
    assert isinstance(data.stats, NormalizationStats)
    observations = np.concatenate([d.observations for d in demos[:3]])
    np.testing.assert_array_equal(data.stats.obs.low, observations.min(axis=0))
    np.testing.assert_array_equal(data.stats.obs.high, observations.max(axis=0))
    controllers = np.concatenate(
        [np.stack([controller(d, k) for k in range(len(d))]) for d in demos[:3]]
    )
    np.testing.assert_array_equal(data.stats.action.low, controllers.min(axis=0))
    np.testing.assert_array_equal(data.stats.action.high, controllers.max(axis=0))
    assert data.stats.action.dim == data.layout.controller_size
    # every window lies in [-1, 1] once normalised (float32 rounding aside)
    assert np.abs(data.stats.obs.normalize(data.observations)).max() <= 1 + 1e-5
    assert np.abs(data.stats.action.normalize(data.actions)).max() <= 1 + 1e-5
    # the 4th demo is not in the statistics: it leaves the range somewhere
    fourth = ChunkDataset(demos[3:], obs_horizon=1, horizon=1)
    outside = np.abs(data.stats.action.normalize(fourth.actions)).max()
    assert outside > 1


def test_rejects_bad_arguments(demos: list[Demonstration]) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="obs_horizon must be an integer >= 1"):
            ChunkDataset(demos, obs_horizon=bad, horizon=2)
        with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
            ChunkDataset(demos, obs_horizon=1, horizon=bad)
    bare = Demonstration(**{**vars(demos[1]), "primitives": None})
    with pytest.raises(ValueError, match=r"demonstrations \[1\] .* no primitive controllers"):
        ChunkDataset([demos[0], bare], obs_horizon=1, horizon=2)
    with pytest.raises(TypeError, match="sequence of Demonstration"):
        ChunkDataset([np.zeros(3)], obs_horizon=1, horizon=2)


def test_values_beyond_float32_are_rejected(demos: list[Demonstration]) -> None:
    # finite in the float64 file, inf once cast to the float32 training arrays
    huge = Demonstration(**vars(demos[1]))
    huge.observations = huge.observations.copy()
    huge.observations[3, 0] = 1e300
    with pytest.raises(ValueError, match=r"demonstration 1 .* beyond float32's range \(step 3"):
        ChunkDataset([demos[0], huge], obs_horizon=1, horizon=2)
