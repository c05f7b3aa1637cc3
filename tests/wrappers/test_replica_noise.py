"""ReplicaNoiseWrapper: noise statistics, seeding, the simulator state, and errors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

import hint_envs  # noqa: F401  (registers the env ids)
from hint_envs.wrappers import (
    REPLICA_NOISE_STREAM,
    PrimitiveControllerWrapper,
    ReplicaNoiseVectorWrapper,
    ReplicaNoiseWrapper,
    add_replica_noise,
)

QUAD = "hint_envs/PlanarQuadrotor-v0"


class ConstantObsEnv(gym.Env):
    """Stub that always observes ``value`` and records every action it receives."""

    def __init__(self, value: np.ndarray, dtype=np.float64):
        value = np.asarray(value, dtype=dtype)
        self.observation_space = spaces.Box(-10.0, 10.0, shape=value.shape, dtype=dtype)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float64)
        self.value = value
        self.received: list[np.ndarray] = []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self.value.copy(), {"from": "reset"}

    def step(self, action):
        self.received.append(np.array(action, copy=True))
        return self.value.copy(), 0.0, False, False, {"from": "step"}


def noise_draws(env: ReplicaNoiseWrapper, n_steps: int, seed: int) -> np.ndarray:
    """``noisy - clean`` over one reset and ``n_steps`` steps: ``(n_steps + 1, *obs_shape)``."""
    obs, info = env.reset(seed=seed)
    draws = [obs - info["clean_obs"]]
    for _ in range(n_steps):
        obs, _, _, _, info = env.step(env.action_space.sample())
        draws.append(obs - info["clean_obs"])
    return np.array(draws)


def hover_chunks(env: gym.Env, n: int) -> list[np.ndarray]:
    """``n`` composite actions holding the hover input with zero gains."""
    layout = env.get_wrapper_attr("layout")
    prim = layout.unpack(np.zeros(layout.size))
    prim.u_bar[:] = env.unwrapped.params.hover_input
    return [layout.pack(prim)] * n


# -- (b) statistics ------------------------------------------------------------------------


def test_noise_has_zero_mean_and_std_sigma_times_scale_per_feature():
    sigma, scale = 0.3, np.array([0.5, 2.0, 4.0])
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.zeros((4, 3))), sigma=sigma, scale=scale)
    draws = noise_draws(env, 4999, seed=0).reshape(-1, 3)  # 20,000 draws per feature
    n = draws.shape[0]
    expected_std = sigma * scale
    # mean: |mean| < 5 standard errors; std: relative standard error 1/sqrt(2n) = 0.5%,
    # so 4% is 8 standard errors
    assert np.all(np.abs(draws.mean(axis=0)) < 5 * expected_std / np.sqrt(n))
    np.testing.assert_allclose(draws.std(axis=0), expected_std, rtol=0.04)
    # per feature, not pooled: the features really differ
    assert draws.std(axis=0)[2] > 6 * draws.std(axis=0)[0]


def test_chunk_observations_get_per_feature_scale_on_every_row():
    base = gym.make(QUAD)
    scale = np.array([1.0, 2.0, 0.5, 4.0, 4.0, 8.0])
    env = ReplicaNoiseWrapper(PrimitiveControllerWrapper(base, 4, 3), sigma=0.1, scale=scale)
    obs, info = env.reset(seed=0)
    draws = [obs - info["clean_obs"]]
    for action in hover_chunks(env, 24):
        obs, _, terminated, truncated, info = env.step(action)
        draws.append(obs - info["clean_obs"])
        if terminated or truncated:
            obs, info = env.reset()
            draws.append(obs - info["clean_obs"])
    draws = np.array(draws)  # (n, 3, 6)
    assert draws.shape[1:] == (3, 6)
    ratio = draws.std(axis=0) / (0.1 * scale)  # per row and feature, ~1 (n >= 25)
    assert np.all((ratio > 0.5) & (ratio < 1.6)), ratio
    # rows of one chunk get independent noise, not one draw broadcast over the horizon
    assert not np.allclose(draws[:, 0], draws[:, 1])


def test_noise_is_the_documented_stream_not_the_env_stream():
    sigma, scale = 0.2, np.array([1.0, 3.0])
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(2)), sigma=sigma, scale=scale)
    draws = noise_draws(env, 2, seed=11)
    rng = np.random.default_rng(np.random.SeedSequence([11, REPLICA_NOISE_STREAM]))
    np.testing.assert_allclose(draws, sigma * scale * rng.standard_normal((3, 2)), atol=1e-15)
    env_stream = np.random.default_rng(11).standard_normal((3, 2))
    assert not np.allclose(draws, sigma * scale * env_stream)


# -- (b) the simulator state is untouched ------------------------------------------------


def test_noise_never_reaches_the_simulator_state():
    noisy = ReplicaNoiseWrapper(PrimitiveControllerWrapper(gym.make(QUAD), 4, 2), sigma=0.5)
    clean = PrimitiveControllerWrapper(gym.make(QUAD), 4, 2)
    obs_n, info_n = noisy.reset(seed=3)
    obs_c, _ = clean.reset(seed=3)
    np.testing.assert_array_equal(info_n["clean_obs"], obs_c)
    assert not np.allclose(obs_n, obs_c)
    rng = np.random.default_rng(0)
    for _ in range(6):
        action = noisy.action_space.sample()
        prim = noisy.get_wrapper_attr("layout").unpack(action)
        prim.K *= 0.01 * rng.uniform()
        prim.u_bar[:] = noisy.unwrapped.params.hover_input
        action = noisy.get_wrapper_attr("layout").pack(prim)
        obs_n, r_n, te_n, tr_n, info_n = noisy.step(action)
        obs_c, r_c, te_c, tr_c, info_c = clean.step(action)
        np.testing.assert_array_equal(noisy.unwrapped.get_state(), clean.unwrapped.get_state())
        np.testing.assert_array_equal(info_n["clean_obs"], obs_c)
        # the feedback used the true state, not the noised observation
        np.testing.assert_array_equal(info_n["inner_states"], info_c["inner_states"])
        np.testing.assert_array_equal(info_n["inner_inputs"], info_c["inner_inputs"])
        assert (r_n, te_n, tr_n) == (r_c, te_c, tr_c)
        if te_c or tr_c:
            break


def test_clean_obs_is_in_info_and_inner_info_is_kept():
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.full(3, 2.0)), sigma=0.1)
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["clean_obs"], np.full(3, 2.0))
    assert info["from"] == "reset"
    _, _, _, _, info = env.step(np.zeros(1))
    np.testing.assert_array_equal(info["clean_obs"], np.full(3, 2.0))
    assert info["from"] == "step"


# -- (b) seeding ----------------------------------------------------------------------------


def test_same_seed_same_noise_different_seed_different_noise():
    def make():
        return ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(5)), sigma=1.0)

    a, b, c = noise_draws(make(), 20, 4), noise_draws(make(), 20, 4), noise_draws(make(), 20, 5)
    np.testing.assert_array_equal(a, b)
    assert not np.any(np.isclose(a, c))


def test_reset_without_seed_continues_and_unseeded_is_fresh():
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(4)), sigma=1.0)
    first = env.reset(seed=1)[0]
    second = env.reset()[0]
    assert not np.allclose(first, second)
    again = ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(4)), sigma=1.0)
    np.testing.assert_array_equal(again.reset(seed=1)[0], first)
    np.testing.assert_array_equal(again.reset()[0], second)  # continuation is deterministic
    fresh = [ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(4)), 1.0).reset()[0] for _ in range(2)]
    assert not np.allclose(fresh[0], fresh[1])


# -- (c) whole-stack determinism on the quadrotor ------------------------------------------


def test_quadrotor_with_both_wrappers_is_deterministic_given_a_seed():
    scale = np.array([3.0, 3.25, 1.6, 20.0, 20.0, 20.0])

    def run() -> list[np.ndarray]:
        env = ReplicaNoiseWrapper(
            PrimitiveControllerWrapper(gym.make(QUAD), chunk_length=8, obs_horizon=2),
            sigma=0.05,
            scale=scale,
        )
        env.action_space.seed(0)
        obs, info = env.reset(seed=42)
        out = [obs, info["clean_obs"]]
        for _ in range(30):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            out += [obs, np.array([reward, terminated, truncated])]
            out += [info["inner_states"], info["inner_inputs"], info["clean_obs"]]
            if terminated or truncated:
                obs, info = env.reset()
                out += [obs, info["clean_obs"]]
        return out

    a, b = run(), run()
    assert len(a) == len(b) > 10
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)


# -- spaces and sigma ------------------------------------------------------------------------


def test_observation_space_is_honest():
    inner = ConstantObsEnv(np.zeros((2, 3)), dtype=np.float32)
    env = ReplicaNoiseWrapper(inner, sigma=0.0)
    assert env.observation_space is inner.observation_space
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, info["clean_obs"])  # sigma = 0: no noise
    env.set_sigma(0.5)
    space = env.observation_space
    assert isinstance(space, spaces.Box) and space.shape == (2, 3) and space.dtype == np.float32
    assert np.all(np.isneginf(space.low)) and np.all(np.isposinf(space.high))
    obs = env.step(np.zeros(1))[0]
    assert obs.dtype == np.float32 and obs in space
    env.set_sigma(0.0)
    assert env.observation_space is inner.observation_space


# -- (d) errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [-0.1, np.nan, np.inf])
def test_bad_sigma_is_rejected_with_its_value(sigma):
    with pytest.raises(ValueError, match=f"sigma must be a finite number >= 0, got {sigma!r}"):
        ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(2)), sigma=sigma)
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(2)), sigma=0.1)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
        env.set_sigma(sigma)
    assert env.sigma == 0.1


def test_non_numeric_sigma_is_rejected():
    with pytest.raises(TypeError, match="sigma must be a real number"):
        ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(2)), sigma="0.1x")


def test_non_box_observation_space_is_rejected():
    with pytest.raises(TypeError, match="Box observation space.*Discrete"):
        ReplicaNoiseWrapper(gym.make("FrozenLake-v1"), sigma=0.1)


@pytest.mark.parametrize(
    "scale, match",
    [
        (np.ones(4), r"shape \(3,\).*got shape \(4,\)"),
        (np.ones((2, 3)), r"got shape \(2, 3\)"),
        (np.array([1.0, -1.0, 1.0]), "finite and >= 0"),
        (np.array([1.0, np.nan, 1.0]), "finite and >= 0"),
    ],
)
def test_bad_scale_is_rejected(scale, match):
    with pytest.raises(ValueError, match=match):
        ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(3)), sigma=0.1, scale=scale)


# -- (b') noise laws ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("law", "mean", "std", "low", "high"),
    [
        ("gaussian", 0.0, 1.0, -np.inf, np.inf),
        ("uniform", 0.5, 12**-0.5, 0.0, 1.0),  # the authors' code: sigma * U[0, 1)
        ("uniform_centered", 0.0, 12**-0.5, -0.5, 0.5),
    ],
)
def test_each_noise_law_has_its_mean_std_and_support_per_feature(law, mean, std, low, high):
    sigma, scale = 0.3, np.array([0.5, 2.0, 4.0])
    env = ReplicaNoiseWrapper(
        ConstantObsEnv(np.zeros((4, 3))), sigma=sigma, scale=scale, noise_law=law
    )
    draws = noise_draws(env, 4999, seed=0).reshape(-1, 3)  # 20,000 draws per feature
    eps = draws / (sigma * scale)  # back to the law's own units, per feature
    n = eps.shape[0]
    # mean within 5 standard errors; std within 4% (8 relative standard errors)
    assert np.all(np.abs(eps.mean(axis=0) - mean) < 5 * std / np.sqrt(n))
    np.testing.assert_allclose(eps.std(axis=0), std, rtol=0.04)
    assert np.all(eps >= low) and np.all(eps < high)


def test_the_noise_law_is_recorded_and_an_unknown_law_is_refused():
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(3)), sigma=0.1, noise_law="uniform")
    assert env.noise_law == "uniform"
    with pytest.raises(ValueError, match=r"noise_law must be one of \['gaussian', 'uniform'"):
        ReplicaNoiseWrapper(ConstantObsEnv(np.zeros(3)), sigma=0.1, noise_law="laplace")
    with pytest.raises(ValueError, match="noise_law must be one of"):
        add_replica_noise(np.zeros(3), 0.1, 1.0, np.random.default_rng(0), law="Gaussian")


def test_the_vector_wrapper_draws_the_same_law_as_single_wrappers():
    make = lambda: ConstantObsEnv(np.zeros(3))  # noqa: E731
    vector = ReplicaNoiseVectorWrapper(
        gym.vector.SyncVectorEnv([make, make]), sigma=0.2, scale=2.0, noise_law="uniform"
    )
    singles = [ReplicaNoiseWrapper(make(), sigma=0.2, scale=2.0, noise_law="uniform") for _ in "ab"]
    obs, _ = vector.reset(seed=7)
    expected = [env.reset(seed=7 + i)[0] for i, env in enumerate(singles)]
    np.testing.assert_array_equal(obs, np.stack(expected))
    assert np.all(obs >= 0) and np.all(obs < 0.4)


def test_a_shift_moves_every_feature_by_shift_times_scale():
    scale = np.array([1.0, 10.0])
    env = ReplicaNoiseWrapper(ConstantObsEnv(np.ones(2)), sigma=0.0, scale=scale, shift=-0.05)
    obs, info = env.reset(seed=0)
    np.testing.assert_allclose(obs - info["clean_obs"], [-0.05, -0.5])
    assert env.observation_space.bounded_below.sum() == 0  # shifted: honestly unbounded
    with pytest.raises(ValueError, match="shift must be finite"):
        ReplicaNoiseWrapper(ConstantObsEnv(np.ones(2)), sigma=0.0, shift=np.inf)
