"""Scalar linear system: pure dynamics, the env, its checks, rendering and the wrappers on it."""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from gymnasium.utils.env_checker import data_equivalence
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.core import CompositeActionLayout, Primitives, get_control_indices
from hint_envs.envs.scalar_linear import (
    ScalarLinearEnv,
    ScalarLinearParams,
    jacobians,
    observation_limit,
    step,
)
from hint_envs.wrappers import PrimitiveControllerWrapper, ReplicaNoiseWrapper

ENV_ID = "hint_envs/ScalarLinear-v0"
#: checker advice that does not apply by design: the action is the raw input u in float64,
#: like every hint_envs environment, not a normalised float32 one
ALLOWED_CHECKER_WARNINGS = (
    "symmetric and normalized",  # gymnasium's and SB3's wording
    "we recommend using np.float32",  # SB3: float64 action dtype
)


def complaints(caught: list[warnings.WarningMessage]) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if not any(allowed in str(w.message) for allowed in ALLOWED_CHECKER_WARNINGS)
    ]


# --------------------------------------------------------------------------- dynamics


def test_step_is_the_formula_batched():
    params = ScalarLinearParams(a=2.0, b=-0.5)
    rng = np.random.default_rng(0)
    x, u, w = rng.normal(size=(3, 7, 4, 1))
    assert np.array_equal(step(x, u, params, w), 2.0 * x + -0.5 * u + w)
    assert np.array_equal(step(x, u, params), 2.0 * x - 0.5 * u)
    assert step(x[0, 0], u[0, 0], params).shape == (1,)
    A, B = jacobians(params)
    assert A.shape == B.shape == (1, 1)
    assert A[0, 0] == 2.0 and B[0, 0] == -0.5


def test_env_step_equals_the_formula_exactly():
    env = gym.make(ENV_ID, a=1.7, b=0.3, noise_std=0.25)
    env.reset(seed=5, options={"state": np.array([0.4])})  # draws nothing from np_random
    generator, _ = gym.utils.seeding.np_random(5)  # the env's generator after reset(seed=5)
    x = 0.4
    for u in (0.1, -2.0, 0.0, 5.5):
        w = 0.25 * generator.standard_normal(1)[0]
        expected = 1.7 * x + 0.3 * u + w
        obs, reward, terminated, truncated, info = env.step(np.array([u]))
        assert obs[0] == expected and reward == -(expected**2)
        assert not terminated and not truncated
        x = expected


def test_noiseless_env_follows_a_power_law_and_noise_is_zero():
    env = gym.make(ENV_ID, a=0.9)
    obs, _ = env.reset(seed=1, options={"state": np.array([1.0])})
    for t in range(1, 6):
        obs, *_ = env.step(np.zeros(1))
        assert obs[0] == pytest.approx(0.9**t, rel=1e-15)
    exact = 1.0
    for _ in range(5):
        exact = 0.9 * exact + 1.0 * 0.0 + 0.0
    assert obs[0] == exact


def test_noise_is_reproducible_per_seed():
    def trajectory(seed: int, noise_std: float) -> np.ndarray:
        env = gym.make(ENV_ID, noise_std=noise_std)
        states = [env.reset(seed=seed)[0]]
        for _ in range(10):
            states.append(env.step(np.zeros(1))[0])
        return np.concatenate(states)

    first, again, other = trajectory(3, 0.5), trajectory(3, 0.5), trajectory(4, 0.5)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    clean = trajectory(3, 0.0)
    # same start (same seed), and the noise is the only difference
    assert clean[0] == first[0]
    assert not np.allclose(clean, first)
    assert np.array_equal(clean[1:], 0.9 * clean[:-1])


# --------------------------------------------------------------------------- the env


def test_spaces_and_control_contract():
    env = gym.make(ENV_ID, a=2.0, action_limit=3.0, state_limit=10.0, noise_std=0.1)
    base = env.unwrapped
    assert env.action_space == gym.spaces.Box(-3.0, 3.0, (1,), np.float64)
    limit = observation_limit(base.params)
    assert limit == 2.0 * 10.0 + 3.0 + 10 * 0.1
    assert env.observation_space == gym.spaces.Box(-limit, limit, (1,), np.float64)
    assert np.array_equal(get_control_indices(env), [0])
    assert env.spec.max_episode_steps == 50
    obs, info = env.reset(seed=0)
    assert np.array_equal(obs, base.get_state()) and base.get_state().shape == (1,)
    assert base.get_state().dtype == np.float64


def test_exact_state_reset_and_uniform_start():
    env = gym.make(ENV_ID, initial_scale=0.5)
    obs, info = env.reset(seed=0, options={"state": [0.123456789]})
    assert obs[0] == 0.123456789 and env.unwrapped.get_state()[0] == 0.123456789
    starts = np.array([env.reset(seed=s)[0][0] for s in range(200)])
    assert np.all(np.abs(starts) <= 0.5) and starts.std() > 0.2
    with pytest.raises(ValueError, match=r"shape \(1,\)"):
        env.reset(options={"state": [0.0, 1.0]})
    with pytest.raises(ValueError, match="finite"):
        env.reset(options={"state": [np.nan]})
    with pytest.raises(ValueError, match="outside the observation space"):
        env.reset(options={"state": [1e30]})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"start": [0.0]})


def test_success_band_and_termination_past_the_state_limit():
    env = gym.make(ENV_ID, a=2.0, state_limit=10.0, success_tolerance=0.1)
    _, info = env.reset(seed=0, options={"state": [0.05]})
    assert info["is_success"]
    obs, reward, terminated, _, info = env.step(np.zeros(1))
    assert obs[0] == 0.1 and info["is_success"] and not terminated  # |x| <= tol counts
    obs, _, terminated, _, info = env.step(np.zeros(1))
    assert not info["is_success"]
    env.reset(options={"state": [6.0]})
    obs, reward, terminated, truncated, info = env.step(np.zeros(1))
    assert obs[0] == 12.0 and reward == -144.0
    assert terminated and not truncated and info["out_of_bounds"] and not info["is_success"]
    env.reset(options={"state": [5.0]})
    obs, _, terminated, _, _ = env.step(np.zeros(1))
    assert obs[0] == 10.0 and not terminated  # exactly at the limit is still inside


def test_unstable_open_loop_grows_like_two_to_the_t_and_truncates_at_50():
    env = gym.make(ENV_ID, a=2.0)
    env.reset(seed=0, options={"state": [1e-6]})
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        obs, _, terminated, truncated, _ = env.step(np.zeros(1))
        steps += 1
    assert terminated and steps == 40 and obs[0] == 1e-6 * 2.0**40  # 2^40 1e-6 > 1e6
    obs, _ = env.reset(seed=0)
    for _ in range(50):
        obs, _, terminated, truncated, _ = env.step(-1.5 * obs)  # pole 0.5
    assert truncated and not terminated and abs(obs[0]) < 1e-12


def test_actions_are_clipped_and_bad_ones_rejected():
    env = gym.make(ENV_ID, a=0.0, action_limit=2.0).unwrapped
    env.reset(seed=0, options={"state": [0.0]})
    assert env.step(np.array([5.0]))[0][0] == 2.0
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.array([np.inf]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="numbers"):
        env.step(np.array(["1"]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"b": 0.0}, ValueError, "b must be non-zero"),
        ({"a": np.nan}, ValueError, "a must be finite"),
        ({"noise_std": -0.1}, ValueError, "noise_std must be >= 0"),
        ({"initial_scale": -1.0}, ValueError, "initial_scale must be >= 0"),
        ({"state_limit": 0.0}, ValueError, "state_limit must be > 0"),
        ({"action_limit": -1.0}, ValueError, "action_limit must be > 0"),
        ({"success_tolerance": -1e-3}, ValueError, "success_tolerance must be >= 0"),
        ({"state_limit": 1e200}, ValueError, "too large"),
        ({"a": "2"}, TypeError, "a must be a real number"),
        ({"noise_std": True}, TypeError, "noise_std must be a real number"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
    ],
)
def test_bad_kwargs_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ScalarLinearEnv(**kwargs)
    if "render_mode" not in kwargs:  # gym.make wraps "human" in HumanRendering first
        with pytest.raises(error, match=match):
            gym.make(ENV_ID, **kwargs)


def test_unknown_kwargs_are_rejected():
    with pytest.raises(TypeError, match="unexpected keyword"):
        ScalarLinearEnv(c=1.0)


@pytest.mark.parametrize("kwargs", [{}, {"a": 2.0, "noise_std": 0.3}])
def test_gymnasium_and_sb3_checkers_pass(kwargs):
    env = gym.make(ENV_ID, render_mode="rgb_array", **kwargs).unwrapped
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gymnasium_check_env(env)
        sb3_check_env(env, warn=True)
    assert not complaints(caught), complaints(caught)
    # with a unit input range, only the float64 dtype advice is left
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check_env(gym.make(ENV_ID, action_limit=1.0, **kwargs).unwrapped, warn=True)
    assert [str(w.message) for w in caught if "float32" not in str(w.message)] == []


def test_render_draws_the_state_on_a_number_line():
    env = gym.make(ENV_ID, render_mode="rgb_array")
    env.reset(options={"state": [0.0]})
    center = env.render()
    assert center.shape == (48, 256, 3) and center.dtype == np.uint8
    env.unwrapped.reset(options={"state": [1.5]})
    right = env.render()
    env.unwrapped.reset(options={"state": [1e5]})  # beyond the view: at the edge, in red
    far = env.render()
    assert not np.array_equal(center, right) and not np.array_equal(right, far)
    marker = lambda frame: np.flatnonzero((frame[12] == (96, 140, 222)).all(-1))  # noqa: E731
    assert marker(center).mean() == pytest.approx(127.5, abs=2)
    assert marker(right).mean() > 200 and marker(far).size == 0
    assert (far[12, -8:] == (196, 78, 64)).all(-1).any()
    assert gym.make(ENV_ID).unwrapped.render() is None


# --------------------------------------------------------------------------- wrappers


def test_wrappers_run_and_feedback_chunks_stabilise_the_unstable_system():
    layout = CompositeActionLayout(d_u=1, d_x=1, chunk_length=5)
    stack = ReplicaNoiseWrapper(
        PrimitiveControllerWrapper(gym.make(ENV_ID, a=2.0), chunk_length=5, obs_horizon=2),
        sigma=0.05,
    )
    obs, _ = stack.reset(seed=0, options={"state": [1.0]})
    assert obs.shape == (2, 1)
    feedback = layout.pack(Primitives(np.zeros((5, 1)), np.zeros((5, 1)), np.full((5, 1, 1), -1.5)))
    for _ in range(10):
        obs, reward, terminated, truncated, info = stack.step(feedback)
    assert truncated and not terminated and info["is_success"]
    assert np.allclose(info["inner_states"][:, 0], 0.5 ** np.arange(45, 50))
    # replica noise reached the policy's view, not the state
    assert not np.allclose(obs[-1], 0.5**50)

    raw = PrimitiveControllerWrapper(gym.make(ENV_ID, a=2.0), 5, 2, gains=False)
    raw.reset(seed=0, options={"state": [1.0]})
    obs, *_ = raw.step(np.zeros(5))
    assert obs[-1, 0] == 2.0**5  # open loop, no gains: the state doubles each step


def test_seeded_rollouts_through_the_stack_are_identical():
    def run(seed: int) -> list:
        stack = ReplicaNoiseWrapper(
            PrimitiveControllerWrapper(gym.make(ENV_ID, noise_std=0.1), 4, 2), sigma=0.1
        )
        stack.action_space.seed(seed)
        record = [stack.reset(seed=seed)]
        for _ in range(5):
            record.append(stack.step(stack.action_space.sample() * 1e-6))
        return record

    assert data_equivalence(run(7), run(7), exact=True)
