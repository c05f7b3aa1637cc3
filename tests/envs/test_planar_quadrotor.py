"""Planar quadrotor: pure dynamics, the single env, rendering and the native vector env."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.envs.planar_quadrotor import (
    PlanarQuadrotorEnv,
    PlanarQuadrotorVectorEnv,
    QuadrotorParams,
    collided,
    cost,
    dynamics,
    jacobians,
    observation_bounds,
    out_of_bounds,
)

ENV_ID = "hint_envs/PlanarQuadrotor-v0"
PARAMS = QuadrotorParams()


def random_states_inputs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` states inside the flight box and inputs inside the input box."""
    low, high = PARAMS.state_bound
    states = rng.uniform(low, high, size=(n, 6))
    inputs = rng.uniform(PARAMS.input_low, PARAMS.input_high, size=(n, 2))
    return states, inputs


# --------------------------------------------------------------------------- dynamics


def test_jacobians_match_central_finite_differences():
    rng = np.random.default_rng(0)
    states, inputs = random_states_inputs(rng, 20)
    A, B = jacobians(states, inputs, PARAMS)
    assert A.shape == (20, 6, 6) and B.shape == (20, 6, 2)
    eps = 1e-6
    for s, u, a, b in zip(states, inputs, A, B, strict=True):
        fd_a = np.stack(
            [
                (dynamics(s + eps * e, u, PARAMS) - dynamics(s - eps * e, u, PARAMS)) / (2 * eps)
                for e in np.eye(6)
            ],
            axis=-1,
        )
        fd_b = np.stack(
            [
                (dynamics(s, u + eps * e, PARAMS) - dynamics(s, u - eps * e, PARAMS)) / (2 * eps)
                for e in np.eye(2)
            ],
            axis=-1,
        )
        np.testing.assert_allclose(a, fd_a, atol=1e-6, rtol=0)
        np.testing.assert_allclose(b, fd_b, atol=1e-6, rtol=0)


def test_batched_functions_equal_their_rows_bit_for_bit():
    rng = np.random.default_rng(1)
    states, inputs = random_states_inputs(rng, 64)
    rows = np.array([dynamics(s, u, PARAMS) for s, u in zip(states, inputs, strict=True)])
    assert np.array_equal(dynamics(states, inputs, PARAMS), rows)
    rows = np.array([cost(s, u, PARAMS) for s, u in zip(states, inputs, strict=True)])
    assert np.array_equal(cost(states, inputs, PARAMS), rows)


# --------------------------------------------------------------------------- single env


def test_reset_into_exact_state_and_step_follows_dynamics():
    env = PlanarQuadrotorEnv()
    state = np.array([0.3, -0.2, 0.05, 0.1, -0.2, 0.3])
    obs, info = env.reset(seed=0, options={"state": state})
    assert np.array_equal(obs, state) and np.array_equal(env.get_state(), state)
    assert info["distance_to_goal"] == pytest.approx(np.hypot(0.3, 3.2))
    u = np.array([5.0, 0.01])
    obs, reward, terminated, truncated, info = env.step(u)
    assert np.array_equal(obs, dynamics(state, u, PARAMS))
    assert reward == -cost(obs, u, PARAMS)
    assert not terminated and not truncated
    assert set(info) == {"is_success", "distance_to_goal", "collision", "out_of_bounds", "unstable"}


def test_random_reset_draws_from_start_region():
    env = PlanarQuadrotorEnv()
    starts = np.array([env.reset(seed=seed)[0] for seed in range(50)])
    assert np.all(starts >= PARAMS.start_low) and np.all(starts <= PARAMS.start_high)
    assert np.ptp(starts[:, 0]) > 0.5  # really random in x
    assert np.array_equal(env.reset(seed=3)[0], env.reset(seed=3)[0])


def test_out_of_range_inputs_are_clipped_to_the_action_space():
    state = np.array([0.0, 0.0, 0.1, 0.0, 0.0, 0.0])
    for raw, clipped in [
        ([100.0, 5.0], PARAMS.input_high),
        ([-3.0, -5.0], PARAMS.input_low),
        ([-3.0, 5.0], [PARAMS.input_low[0], PARAMS.input_high[1]]),
    ]:
        env = PlanarQuadrotorEnv()
        env.reset(options={"state": state})
        obs, reward, *_ = env.step(np.array(raw))
        assert np.array_equal(obs, dynamics(state, np.asarray(clipped), PARAMS))
        assert reward == -cost(obs, np.asarray(clipped), PARAMS)


@pytest.mark.parametrize(
    "action, message",
    [
        ([np.nan, 0.0], "NaN or inf"),
        ([1.0, np.inf], "NaN or inf"),
        ([1.0, 0.0, 0.0], r"shape \(2,\)"),
        ([[1.0, 0.0]], r"shape \(2,\)"),
    ],
)
def test_bad_actions_raise_clear_errors(action, message):
    env = PlanarQuadrotorEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(np.array(action))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"state": np.zeros(5)}, r"shape \(6,\)"),
        ({"state": np.zeros((2, 6))}, r"shape \(6,\)"),
        ({"state": np.array([0, 0, 0, 0, np.nan, 0])}, "finite"),
        ({"start": np.zeros(6)}, "unknown reset options"),
    ],
)
def test_bad_reset_options_raise_clear_errors(options, message):
    with pytest.raises(ValueError, match=message):
        PlanarQuadrotorEnv().reset(options=options)


def test_collision_terminates_with_penalty_once_and_finite_observation():
    env = PlanarQuadrotorEnv()
    # just below the obstacle, flying up into it
    start = np.array([0.0, 1.5 - 0.4 - 0.25 - 0.05, 0.0, 0.0, 3.0, 0.0])
    env.reset(options={"state": start})
    hover = PARAMS.hover_input
    obs, reward, terminated, truncated, info = env.step(hover)
    assert terminated and not truncated
    assert info["collision"] and not info["out_of_bounds"] and not info["is_success"]
    assert np.all(np.isfinite(obs)) and env.observation_space.contains(obs)
    assert reward == -cost(obs, hover, PARAMS) - PARAMS.crash_penalty
    # stepping on (no wrapper stops it): physics continue, the penalty is not paid again
    obs, reward, terminated, _, _ = env.step(hover)
    assert terminated and reward == -cost(obs, hover, PARAMS)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_leaving_the_bounds_terminates_with_penalty(sign):
    env = PlanarQuadrotorEnv()
    low, high = PARAMS.state_bound
    edge = (high if sign > 0 else low) * 0.999  # every bound nearly reached at full speed
    env.reset(options={"state": edge})
    u = np.array([PARAMS.input_high[0], sign * PARAMS.max_torque])
    obs, reward, terminated, _, info = env.step(u)
    assert terminated and info["out_of_bounds"] and not info["collision"]
    assert np.all(np.isfinite(obs)) and env.observation_space.contains(obs)
    assert reward == -cost(obs, u, PARAMS) - PARAMS.crash_penalty
    assert out_of_bounds(obs, PARAMS)


def test_every_last_observation_lies_in_the_observation_space():
    """From every corner of the state bounds, with every extreme input: obs stays in space."""
    env = PlanarQuadrotorEnv()
    low, high = PARAMS.state_bound
    signs = np.array(np.meshgrid(*[[0, 1]] * 6)).reshape(6, -1).T  # 64 corners
    inputs = [
        [a, b]
        for a in PARAMS.input_low[:1].tolist() + PARAMS.input_high[:1].tolist()
        for b in (-PARAMS.max_torque, PARAMS.max_torque)
    ]
    ended = 0
    for corner in signs:
        state = np.where(corner == 1, high, low) * 0.999
        for u in inputs:
            env.reset(options={"state": state})
            obs, _, terminated, _, _ = env.step(np.array(u))
            assert env.observation_space.contains(obs), (state, u, obs)
            assert terminated == bool(out_of_bounds(obs, PARAMS) or collided(obs, PARAMS))
            ended += terminated
    assert ended > 0


def test_observation_bounds_contain_the_state_bounds():
    low, high = observation_bounds(PARAMS)
    assert np.all(low < PARAMS.state_bound[0]) and np.all(high > PARAMS.state_bound[1])


def test_success_is_reported_at_the_goal():
    env = PlanarQuadrotorEnv()
    _, info = env.reset(options={"state": PARAMS.goal_state})
    assert info["is_success"] and info["distance_to_goal"] == 0.0
    _, reward, terminated, _, info = env.step(PARAMS.hover_input)
    assert info["is_success"] and not terminated
    assert reward == 0.0  # exact hover at the goal costs nothing


# --------------------------------------------------------------------------- rendering


def test_render_draws_the_quadrotor_and_returns_none_without_mode():
    assert PlanarQuadrotorEnv().render() is None
    env = PlanarQuadrotorEnv(render_mode="rgb_array")
    env.reset(options={"state": np.array([-2.0, 0.0, 0.0, 0.0, 0.0, 0.0])})
    left = env.render()
    assert left.shape == (448, 416, 3) and left.dtype == np.uint8
    env.reset(options={"state": np.array([2.0, 0.0, 0.5, 0.0, 0.0, 0.0])})
    right = env.render()
    changed = np.any(left != right, axis=-1)
    columns = np.flatnonzero(changed.any(axis=0))
    # only the two bodies differ: around x = -2 m (col ~80) and x = +2 m (col ~336)
    assert columns.min() > 40 and columns.max() < 376
    assert changed[:, :208].any() and changed[:, 208:].any()


def test_render_shows_a_trail_and_is_fast():
    env = PlanarQuadrotorEnv(render_mode="rgb_array")
    env.reset(options={"state": np.array([0.0, 0.0, 0.0, 1.0, 1.0, 0.0])})
    for _ in range(10):
        obs, *_ = env.step(PARAMS.hover_input)
    with_trail = env.render()
    fresh = PlanarQuadrotorEnv(render_mode="rgb_array")
    fresh.reset(options={"state": obs})
    without_trail = fresh.render()
    # the same quadrotor, so only the trail differs: it starts at (0, 0) m = pixel (335, 207)
    differs = np.any(with_trail != without_trail, axis=-1)
    assert differs[333:338, 205:210].any()
    rows, cols = np.nonzero(differs)
    assert rows.max() <= 338 and cols.min() >= 205  # nothing outside the path from (0, 0)
    start = time.perf_counter()
    for _ in range(20):
        env.render()
    assert (time.perf_counter() - start) / 20 < 0.02  # measured ~2 ms on 2 CPU cores


# --------------------------------------------------------------------------- vector env


def make_native(n: int, mode: AutoresetMode, **kwargs) -> PlanarQuadrotorVectorEnv:
    return gym.make_vec(
        ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs
    )


def make_sync(n: int, mode: AutoresetMode, **kwargs) -> gym.vector.SyncVectorEnv:
    return gym.vector.SyncVectorEnv(
        [lambda: gym.make(ENV_ID, **kwargs) for _ in range(n)], autoreset_mode=mode
    )


def test_make_vec_returns_the_native_vector_env():
    envs = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="vector_entry_point")
    assert type(envs) is PlanarQuadrotorVectorEnv
    assert envs.num_envs == 4 and envs.max_episode_steps == 100
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    single = gym.make(ENV_ID)
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    assert envs.observation_space.shape == (4, 6) and envs.action_space.shape == (4, 2)
    assert np.array_equal(envs.control_indices, single.unwrapped.control_indices)
    assert envs.obs_keys == single.unwrapped.obs_keys
    obs, _ = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    assert np.array_equal(envs.get_state(), obs)
    sync = gym.make_vec(ENV_ID, num_envs=4, vectorization_mode="sync")
    assert sync.observation_space == envs.observation_space
    assert sync.action_space == envs.action_space


def steady_or_wild(obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random actions ``(4, 2)``: envs 0-1 hold a noisy hover with PD feedback (they reach
    the time limit), envs 2-3 get wild, partly out-of-range inputs (they crash)."""
    z, theta, zdot, thetadot = obs[:, 1], obs[:, 2], obs[:, 4], obs[:, 5]
    pd = np.stack([-PARAMS.mass * (4.0 * z + 3.0 * zdot), -0.1 * theta - 0.027 * thetadot], axis=-1)
    noise = np.array([[0.3, 0.002], [0.3, 0.002], [4.0, 0.15], [4.0, 0.15]])
    steady = np.array([[1.0], [1.0], [0.0], [0.0]])
    return PARAMS.hover_input + steady * pd + noise * rng.standard_normal((4, 2))


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_native_vector_env_reproduces_sync_vector_env(mode):
    """Same seeds, same random actions, 220 steps: identical outputs, infos and autoresets."""
    n, steps = 4, 220
    native, sync = make_native(n, mode), make_sync(n, mode)
    assert native.metadata["autoreset_mode"] == sync.metadata["autoreset_mode"] == mode
    obs, info = sync.reset(seed=11)
    assert data_equivalence(native.reset(seed=11), (obs, info), exact=True)
    rng = np.random.default_rng(5)
    ended = {"terminated": 0, "truncated": 0}
    for t in range(steps):
        actions = steady_or_wild(obs, rng)
        out_native, out_sync = native.step(actions), sync.step(actions)
        assert data_equivalence(out_native, out_sync, exact=True), f"step {t}"
        obs, _, terminated, truncated, _ = out_sync
        ended["terminated"] += int(terminated.sum())
        ended["truncated"] += int(truncated.sum())
        done = terminated | truncated
        if mode == AutoresetMode.DISABLED and done.any():
            seeds = [int(s) for s in rng.integers(0, 2**31, size=n)]
            reset_native = native.reset(seed=seeds, options={"reset_mask": done.copy()})
            reset_sync = sync.reset(seed=seeds, options={"reset_mask": done.copy()})
            assert data_equivalence(reset_native, reset_sync, exact=True), f"reset at {t}"
            obs = reset_sync[0]
    assert ended["terminated"] >= 3 and ended["truncated"] >= 2, ended  # both kinds of end


def test_same_step_reports_final_observation():
    envs = make_native(2, AutoresetMode.SAME_STEP, max_episode_steps=3)
    envs.reset(seed=0)
    for _ in range(2):
        _, _, _, truncated, info = envs.step(np.tile(PARAMS.hover_input, (2, 1)))
        assert not truncated.any() and "final_obs" not in info
    before = envs.get_state()
    obs, reward, _, truncated, info = envs.step(np.tile(PARAMS.hover_input, (2, 1)))
    assert truncated.all() and info["_final_obs"].all()
    np.testing.assert_allclose(
        info["final_obs"][0], dynamics(before[0], PARAMS.hover_input, PARAMS)
    )
    assert np.all(obs[:, 3:] == 0.0)  # already reset: at rest in the start region
    assert set(info["final_info"]) >= {"is_success", "collision", "_collision"}


def test_time_limit_is_tracked_per_environment():
    envs = make_native(2, AutoresetMode.DISABLED, max_episode_steps=5)
    envs.reset(seed=0)
    hover = np.tile(PARAMS.hover_input, (2, 1))
    for _ in range(3):
        envs.step(hover)
    envs.reset(seed=1, options={"reset_mask": np.array([False, True])})
    truncations = [envs.step(hover)[3].tolist() for _ in range(5)]
    assert truncations == [[False, False], [True, False]] + [[True, False]] * 2 + [[True, True]]


def test_disabled_mode_continues_physics_of_ended_environments():
    envs = make_native(3, AutoresetMode.DISABLED)
    state = np.tile([0.0, 0.6, 0.0, 0.0, 3.0, 0.0], (3, 1))  # flies up into the obstacle
    envs.reset(options={"state": state})
    u = np.tile([PARAMS.input_high[0], 0.0], (3, 1))  # full thrust, straight up
    crashed_at = None
    for t in range(300):
        obs, reward, terminated, truncated, _ = envs.step(u)
        assert np.array_equal(obs, dynamics(state, u, PARAMS))  # physics go on
        assert np.all(np.isfinite(obs)) and np.all(np.isfinite(reward))
        penalty = PARAMS.crash_penalty if terminated.all() and crashed_at is None else 0.0
        assert np.array_equal(reward, -cost(obs, u, PARAMS) - penalty)  # penalty paid once
        if terminated.all() and crashed_at is None:
            crashed_at = t
        state = obs
    assert crashed_at is not None and crashed_at < 5 and truncated.all()
    assert obs[0, 1] > PARAMS.z_bounds[1]  # flew on through the obstacle and out of the box


def test_vector_reset_state_option_and_errors():
    envs = make_native(3, AutoresetMode.NEXT_STEP)
    states = np.arange(18, dtype=float).reshape(3, 6) / 100
    obs, info = envs.reset(options={"state": states})
    assert np.array_equal(obs, states) and info["_is_success"].all()
    obs, _ = envs.reset(options={"state": states[0]})
    assert np.array_equal(obs, np.tile(states[0], (3, 1)))
    with pytest.raises(ValueError, match=r"shape \(3, 6\)"):
        envs.reset(options={"state": np.zeros((2, 6))})
    with pytest.raises(ValueError, match="finite"):
        envs.reset(options={"state": np.full((3, 6), np.inf)})
    with pytest.raises(ValueError, match="unknown reset options"):
        envs.reset(options={"start": states})
    with pytest.raises(ValueError, match="one per environment"):
        envs.reset(seed=[1, 2])
    with pytest.raises(TypeError, match="dtype bool"):
        envs.reset(options={"reset_mask": np.ones(3, dtype=int)})


def test_vector_step_validates_and_clips_actions():
    envs = make_native(2, AutoresetMode.NEXT_STEP)
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(np.zeros((2, 2)))
    start = np.zeros(6)
    envs.reset(options={"state": start})
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        envs.step(np.zeros(2))
    with pytest.raises(ValueError, match=r"NaN or inf in the rows of environments \[1\]"):
        envs.step(np.array([[1.0, 0.0], [np.nan, 0.0]]))
    obs, reward, *_ = envs.step(np.array([[100.0, 1.0], [-1.0, -1.0]]))
    assert np.array_equal(obs[0], dynamics(start, PARAMS.input_high, PARAMS))
    assert np.array_equal(obs[1], dynamics(start, PARAMS.input_low, PARAMS))
    assert np.array_equal(
        reward, -cost(obs, np.stack([PARAMS.input_high, PARAMS.input_low]), PARAMS)
    )


def test_vector_render_returns_one_frame_per_environment():
    envs = make_native(3, AutoresetMode.NEXT_STEP, render_mode="rgb_array")
    single = PlanarQuadrotorEnv(render_mode="rgb_array")
    envs.reset(seed=4)
    single.reset(seed=5)  # the seed of env 1
    for _ in range(5):
        envs.step(np.tile(PARAMS.hover_input, (3, 1)))
        single.step(PARAMS.hover_input)
    frames = envs.render()
    assert len(frames) == 3 and all(f.shape == (448, 416, 3) for f in frames)
    assert np.array_equal(frames[1], single.render())  # same state and trail
    assert make_native(1, AutoresetMode.NEXT_STEP).render() is None


def test_invalid_constructor_arguments():
    with pytest.raises(ValueError, match="autoreset_mode"):
        PlanarQuadrotorVectorEnv(2, autoreset_mode="sometimes")
    with pytest.raises(ValueError, match="max_episode_steps"):
        PlanarQuadrotorVectorEnv(2, max_episode_steps=0)
    with pytest.raises(ValueError, match="num_envs"):
        PlanarQuadrotorVectorEnv(0)
    with pytest.raises(ValueError, match="render_mode"):
        PlanarQuadrotorVectorEnv(2, render_mode="human")
