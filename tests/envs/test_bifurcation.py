"""hint_envs/Bifurcation-v0: the double integrator round a disc, left or right."""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import hint_envs  # noqa: F401  (registers the ids)
from hint_envs.envs.bifurcation import (
    BifurcationEnv,
    BifurcationParams,
    applied_input,
    collided,
    jacobians,
    observation_bounds,
    obstacle_distance,
    segment_collided,
    step,
)
from hint_envs.wrappers import PrimitiveControllerWrapper, ReplicaNoiseWrapper

ENV_ID = "hint_envs/Bifurcation-v0"


def make(**kwargs) -> BifurcationEnv:
    return gym.make(ENV_ID, **kwargs).unwrapped


# -- pure physics -----------------------------------------------------------------------


def test_step_is_the_exact_zero_order_hold_double_integrator():
    params = BifurcationParams(dt=0.25)
    rng = np.random.default_rng(0)
    state, u = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    nxt = step(state, u, params)
    dt = 0.25
    np.testing.assert_allclose(nxt[:, :2], state[:, :2] + dt * state[:, 2:] + dt**2 / 2 * u)
    np.testing.assert_allclose(nxt[:, 2:], state[:, 2:] + dt * u)
    A, B = jacobians(params)
    assert A.shape == (4, 4) and B.shape == (4, 2)
    np.testing.assert_allclose(nxt, state @ A.T + u @ B.T, atol=1e-14)
    # the exact discretisation of a held acceleration: integrate finely and compare
    fine = state[0].copy()
    for _ in range(1000):
        fine[:2] += dt / 1000 * fine[2:] + 0.5 * (dt / 1000) ** 2 * u[0]
        fine[2:] += dt / 1000 * u[0]
    np.testing.assert_allclose(nxt[0], fine, atol=1e-12)


def test_applied_input_clips_to_the_box_and_the_speed_limit():
    params = BifurcationParams()
    state = np.array([[0, 0, 0, 0], [0, 0, 2.95, -3.0]], dtype=float)
    u = applied_input(state, np.array([[5.0, -0.3], [1.0, -1.0]]), params)
    np.testing.assert_allclose(u, [[1.0, -0.3], [0.5, 0.0]])
    assert np.all(np.abs(step(state, u, params)[:, 2:]) <= params.speed_limit + 1e-12)


def test_signed_distance_and_collision():
    params = BifurcationParams()
    points = np.array([[2.0, 0.0], [2.0, 0.5], [2.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(obstacle_distance(points, params), [-0.5, 0.0, 0.5, 1.5])
    np.testing.assert_array_equal(collided(points, params), [True, False, False, False])
    # a segment that jumps over the edge of the disc collides, one beside it does not
    assert segment_collided(np.array([1.6, 0.4]), np.array([2.4, 0.4]), params)
    assert not segment_collided(np.array([1.6, 0.6]), np.array([2.4, 0.6]), params)


# -- the environment --------------------------------------------------------------------


def test_kwargs_are_the_params_fields_with_the_same_defaults():
    signature = inspect.signature(BifurcationEnv.__init__).parameters
    for field in dataclasses.fields(BifurcationParams):
        assert signature[field.name].default == field.default, field.name
    env = gym.make(ENV_ID, start_width=0.2, goal=[3.5, 0.0])  # a JSON list is accepted
    assert env.unwrapped.params.start_width == 0.2
    assert env.unwrapped.params.goal == (3.5, 0.0)
    ys = [env.reset(seed=s)[0][1] for s in range(50)]
    assert max(np.abs(ys)) <= 0.2 and np.ptp(ys) > 0.2


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"dt": 0.0}, ValueError, "dt must be a finite number > 0"),
        ({"max_accel": -1.0}, ValueError, "max_accel must be a finite number > 0"),
        ({"start_width": float("nan")}, ValueError, "start_width must be a finite number >= 0"),
        ({"dt": "0.1"}, TypeError, "dt must be a number"),
        ({"goal": (1.0,)}, TypeError, "goal must be a pair of numbers"),
        ({"x_bounds": (3.0, 1.0)}, ValueError, "x_bounds must be (low, high) with low < high"),
        ({"goal": (2.0, 0.1)}, ValueError, "overlaps the obstacle"),
        ({"start_width": 3.0}, ValueError, "must lie inside the arena"),
        ({"obstacle_center": (0.2, 0.0)}, ValueError, "start band"),
        ({"no_such_kwarg": 1}, TypeError, "no_such_kwarg"),
    ],
)
def test_bad_kwargs_raise_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        gym.make(ENV_ID, **kwargs)


def test_unknown_render_modes_are_refused():
    with pytest.raises(ValueError, match="render_mode must be one of"):
        BifurcationEnv(render_mode="human")


def test_reset_puts_the_env_into_an_exact_state_and_validates_it():
    env = make()
    state = np.array([1.0, -1.2, 0.3, -0.7])
    obs, info = env.reset(options={"state": state})
    np.testing.assert_array_equal(obs, state)
    np.testing.assert_array_equal(env.get_state(), state)
    assert obs is not env._state and not info["collision"]
    with pytest.raises(ValueError, match=r"vx=4 not in \[-3, 3\]"):
        env.reset(options={"state": [0.0, 0.0, 4.0, 0.0]})
    with pytest.raises(ValueError, match=r"shape \(4,\) = \(px, py, vx, vy\)"):
        env.reset(options={"state": [0.0, 0.0]})
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"mode": "left"})
    obs, _ = env.reset(seed=3)
    assert obs[0] == 0.0 and abs(obs[1]) <= 0.5 and np.all(obs[2:] == 0.0)


def test_actions_are_validated():
    env = make()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(3))
    with pytest.raises(TypeError, match="must hold numbers"):
        env.step(np.array(["0", "0"]))
    obs, *_ = env.step(np.array([100.0, -100.0]))  # clipped to the box
    np.testing.assert_allclose(obs[2:], [0.1, -0.1])


def test_collision_terminates_with_info_and_penalty():
    env = make()
    env.reset(options={"state": [1.2, 0.0, 1.0, 0.0]})
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(np.zeros(2))
        if terminated:
            break
    assert terminated and not truncated
    assert info["collision"] and not info["is_success"] and not info["out_of_bounds"]
    assert reward == pytest.approx(-np.linalg.norm(obs[:2] - [4.0, 0.0]) - 10.0)


def test_leaving_the_arena_terminates_inside_the_observation_space():
    env = make()
    env.reset(options={"state": [4.9, 1.9, 3.0, 3.0]})
    obs, _, terminated, _, info = env.step(np.ones(2, dtype=np.float32))
    assert terminated and info["out_of_bounds"] and not info["collision"]
    assert env.observation_space.contains(obs)


def test_success_at_the_goal_every_step():
    env = make()
    obs, info = env.reset(options={"state": [3.9, 0.0, 0.0, 0.0]})
    assert info["is_success"]
    for _ in range(3):
        obs, reward, terminated, _, info = env.step(np.zeros(2))
        assert info["is_success"] and not terminated and not info["collision"]
        assert reward == pytest.approx(-0.1)
    obs, _, _, _, info = env.step(np.array([-1.0, 0.0]))  # drifts away at 0.1 m/s
    for _ in range(15):
        obs, _, _, _, info = env.step(np.zeros(2))
    assert not info["is_success"] and info["distance_to_goal"] > 0.2


def test_truncated_by_the_registered_time_limit():
    env = gym.make(ENV_ID)
    env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.zeros(2))
        assert not terminated
        steps += 1
    assert steps == gym.spec(ENV_ID).max_episode_steps == 70


def test_random_rollouts_stay_inside_the_observation_space():
    env = make()
    env.action_space.seed(0)
    low, high = observation_bounds(env.params)
    for seed in range(20):
        env.reset(seed=seed)
        for _ in range(70):
            obs, _, terminated, _, _ = env.step(np.sign(env.action_space.sample()))
            assert np.all(obs >= low) and np.all(obs <= high)
            if terminated:
                break


def test_gymnasium_and_stable_baselines3_checkers_pass_without_warnings():
    env = gym.make(ENV_ID, render_mode="rgb_array").unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env)
        sb3_check_env(env, warn=True)


def test_render_returns_a_uint8_frame_with_the_scene():
    env = make(render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.array([1.0, 0.5]))
    frame = env.render()
    assert frame.shape == (288, 416, 3) and frame.dtype == np.uint8
    renderer = env._renderer
    col, row = np.round(renderer.to_pixels(np.array([2.0, 0.0]))).astype(int)
    assert tuple(frame[row, col]) == (196, 78, 64)  # the obstacle's centre is red
    col, row = np.round(renderer.to_pixels(env.get_state()[:2])).astype(int)
    assert tuple(frame[row, col]) == (28, 44, 110)  # the agent
    assert make().render() is None


def test_wrappers_run_on_it():
    env = gym.make(ENV_ID)
    chunk = PrimitiveControllerWrapper(env, chunk_length=4, obs_horizon=2)
    noisy = ReplicaNoiseWrapper(chunk, sigma=0.1, scale=1.0)
    obs, _ = noisy.reset(seed=0)
    assert obs.shape == (2, 4)
    start = env.unwrapped.get_state()
    # four controllers holding the start state: u = 0 + K (x - x_start), K = -I-ish
    d_u, d_x = 2, 4
    K = np.zeros((d_u, d_x))
    K[0, 2] = K[1, 3] = -1.0
    per = np.concatenate([np.zeros(d_u), start, K.ravel()])
    obs, reward, terminated, truncated, info = noisy.step(np.tile(per, 4))
    assert obs.shape == (2, 4) and not terminated
    np.testing.assert_allclose(env.unwrapped.get_state(), start)  # at rest: nothing moved
    assert np.isfinite(reward) and info["steps_executed"] == 4
    np.testing.assert_array_equal(info["inner_inputs"], np.zeros((4, 2)))
