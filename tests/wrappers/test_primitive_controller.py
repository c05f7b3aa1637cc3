"""PrimitiveControllerWrapper: a stub control env records exactly what reached it."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

import hint_envs  # noqa: F401  (registers the env ids)
from hint_envs.core import Primitives, is_control_env
from hint_envs.wrappers import PrimitiveControllerWrapper

QUAD = "hint_envs/PlanarQuadrotor-v0"


class StubControlEnv(gym.Env):
    """Linear control env ``s' = A s + B u`` that records every input and prior state.

    Observation = state ``(3,)``; ``control_indices`` as given; inputs clipped to
    ``[-1, 1] x [-2, 2]`` as a real environment does; terminates after ``terminate_at``
    steps (never if None).
    """

    A = np.array([[1.0, 0.1, 0.0], [0.0, 0.9, 0.2], [0.05, 0.0, 0.95]])
    B = np.array([[0.0, 0.1], [0.3, 0.0], [0.1, -0.2]])

    def __init__(self, control_indices=(0, 1), terminate_at: int | None = None):
        self.observation_space = spaces.Box(-50.0, 50.0, shape=(3,), dtype=np.float64)
        self.action_space = spaces.Box(
            np.array([-1.0, -2.0]), np.array([1.0, 2.0]), dtype=np.float64
        )
        self.control_indices = np.asarray(control_indices)
        self.terminate_at = terminate_at
        self.received: list[np.ndarray] = []
        self.states_before: list[np.ndarray] = []
        self._state = np.zeros(3)
        self._t = 0

    def get_state(self) -> np.ndarray:
        return self._state.copy()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if options and options.get("state") is not None:
            self._state = np.asarray(options["state"], dtype=np.float64).copy()
        else:
            self._state = self.np_random.uniform(-1.0, 1.0, size=3)
        self._t = 0
        return self._state.copy(), {"t": 0}

    def step(self, action):
        self.received.append(np.array(action, copy=True))
        self.states_before.append(self._state.copy())
        u = np.clip(action, self.action_space.low, self.action_space.high)
        self._state = self.A @ self._state + self.B @ u
        self._t += 1
        reward = -float(self._state @ self._state) - 0.1 * float(u @ u)
        terminated = self.terminate_at is not None and self._t >= self.terminate_at
        return self._state.copy(), reward, terminated, False, {"t": self._t}


def composite(layout, u_bar, x_bar=None, K=None) -> np.ndarray:
    """Pack ``(T, d_u)`` nominal inputs (and optional ``x_bar``, ``K``) into one action."""
    T = u_bar.shape[0]
    x_bar = np.zeros((T, layout.d_x)) if x_bar is None else x_bar
    K = np.zeros((T, layout.d_u, layout.d_x)) if K is None else K
    return layout.pack(Primitives(u_bar, x_bar, K))


def raw_rollout(env: gym.Env, seed: int, inputs: np.ndarray, options: dict | None = None):
    """Step ``env`` one raw input at a time until the inputs run out or the episode ends."""
    obs, _ = env.reset(seed=seed, options=options)
    observations, rewards, ends = [obs], [], []
    for u in inputs:
        obs, reward, terminated, truncated, _ = env.step(u)
        observations.append(obs)
        rewards.append(reward)
        ends.append((terminated, truncated))
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), ends


def chunk_rollout(
    env: PrimitiveControllerWrapper, seed: int, inputs: np.ndarray, options: dict | None = None
):
    """Step the chunk env with K = 0 and ``u_bar`` = consecutive chunks of ``inputs``.

    Needs ``obs_horizon >= chunk_length`` so each chunk holds every new inner observation.
    """
    T = env.chunk_length
    assert env.obs_horizon >= T
    obs, _ = env.reset(seed=seed, options=options)
    observations, rewards, ends, chunk_rewards = [obs[-1]], [], [], []
    rng = np.random.default_rng(123)
    for start in range(0, len(inputs), T):
        # x_bar is arbitrary: with K = 0 it must not matter
        x_bar = rng.uniform(-1, 1, size=(T, env.layout.d_x))
        action = composite(env.layout, inputs[start : start + T], x_bar)
        obs, reward, terminated, truncated, info = env.step(action)
        n = info["steps_executed"]
        inner = info["inner_rewards"]
        assert np.all(np.isnan(inner[n:])) and not np.any(np.isnan(inner[:n]))
        observations.extend(obs[-n:])
        rewards.extend(inner[:n])
        chunk_rewards.append((reward, inner[:n]))
        ends.extend([(False, False)] * (n - 1) + [(terminated, truncated)])
        if terminated or truncated:
            break
    return np.array(observations), np.array(rewards), ends, chunk_rewards


# -- (a) exact reproduction and the control law ---------------------------------------------


def test_zero_gains_reproduce_raw_stepping_exactly_on_stub():
    T = 4
    inputs = np.random.default_rng(0).uniform(-1.0, 1.0, size=(22, 2))
    raw_env = StubControlEnv(terminate_at=19)
    raw_obs, raw_rewards, raw_ends = raw_rollout(raw_env, 7, inputs)

    stub = StubControlEnv(terminate_at=19)
    env = PrimitiveControllerWrapper(stub, chunk_length=T, obs_horizon=T)
    obs, rewards, ends, chunk_rewards = chunk_rollout(env, 7, inputs)

    np.testing.assert_array_equal(np.array(stub.received), np.array(raw_env.received))
    np.testing.assert_array_equal(obs, raw_obs)
    np.testing.assert_array_equal(rewards, raw_rewards)
    assert ends == raw_ends and ends[-1] == (True, False) and len(ends) == 19
    for total, inner in chunk_rewards:  # chunk reward: inner rewards summed in order
        assert total == sum(float(r) for r in inner)


@pytest.mark.parametrize(
    "options, torque_noise, n_steps, end",
    [
        # level start, no torque: hovers until the 100-step limit truncates the 13th chunk
        ({"state": np.zeros(6)}, 0.0, 100, (False, True)),
        # seeded start, noisy torque: crashes in the middle of the 8th chunk
        (None, 0.001, 63, (True, False)),
    ],
)
def test_zero_gains_reproduce_raw_stepping_exactly_on_quadrotor(
    options, torque_noise, n_steps, end
):
    T = 8
    params = gym.make(QUAD).unwrapped.params
    rng = np.random.default_rng(1)
    inputs = params.hover_input + rng.normal(size=(104, 2)) * np.array([0.05, torque_noise])
    raw_obs, raw_rewards, raw_ends = raw_rollout(gym.make(QUAD), 3, inputs, options)
    env = PrimitiveControllerWrapper(gym.make(QUAD), chunk_length=T, obs_horizon=T)
    obs, rewards, ends, _ = chunk_rollout(env, 3, inputs, options)
    assert len(raw_ends) == n_steps and raw_ends[-1] == end
    np.testing.assert_array_equal(obs, raw_obs)
    np.testing.assert_array_equal(rewards, raw_rewards)
    assert ends == raw_ends


def test_gains_feed_back_the_true_state():
    T = 5
    stub = StubControlEnv(control_indices=(2, 0))  # non-contiguous, out of order
    env = PrimitiveControllerWrapper(stub, chunk_length=T, obs_horizon=2, gain_bound=10.0)
    env.reset(seed=0)
    rng = np.random.default_rng(2)
    u_bar = rng.uniform(-0.5, 0.5, size=(T, 2))
    x_bar = rng.uniform(-0.5, 0.5, size=(T, 2))
    K = rng.uniform(-1, 1, size=(T, 2, 2))
    _, _, _, _, info = env.step(composite(env.layout, u_bar, x_bar, K))
    states = np.array(stub.states_before)[:, [2, 0]]
    expected = u_bar + np.einsum("tij,tj->ti", K, states - x_bar)
    expected = np.clip(expected, stub.action_space.low, stub.action_space.high)
    np.testing.assert_allclose(np.array(stub.received), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(info["inner_states"], states)
    np.testing.assert_array_equal(info["inner_inputs"], np.array(stub.received))
    assert info["steps_executed"] == T and info["t"] == T  # last inner info carried
    assert np.any(K != 0) and not np.allclose(expected, u_bar)  # the gains mattered


def test_termination_mid_chunk_stops_the_chunk():
    stub = StubControlEnv(terminate_at=5)
    env = PrimitiveControllerWrapper(stub, chunk_length=4, obs_horizon=3)
    env.reset(seed=1)
    action = composite(env.layout, np.full((4, 2), 0.3))
    obs1, _, terminated, truncated, info1 = env.step(action)
    assert (terminated, truncated, info1["steps_executed"]) == (False, False, 4)
    obs2, reward, terminated, truncated, info = env.step(action)
    assert (terminated, truncated) == (True, False)
    assert info["steps_executed"] == 1 and len(stub.received) == 5
    assert reward == info["inner_rewards"][0]
    assert np.all(np.isnan(info["inner_rewards"][1:])) and np.all(
        np.isnan(info["inner_inputs"][1:])
    )
    assert np.all(np.isnan(info["inner_states"][1:]))
    # the chunk ends at the terminal observation, preceded by the last ones of chunk 1
    np.testing.assert_array_equal(obs2[-1], stub.get_state())
    np.testing.assert_array_equal(obs2[:-1], obs1[-2:])


def test_truncation_mid_chunk_stops_the_chunk():
    env = PrimitiveControllerWrapper(
        gym.wrappers.TimeLimit(StubControlEnv(), max_episode_steps=6), chunk_length=4, obs_horizon=1
    )
    env.reset(seed=0)
    action = composite(env.layout, np.zeros((4, 2)))
    assert env.step(action)[3] is False
    _, _, terminated, truncated, info = env.step(action)
    assert (terminated, truncated, info["steps_executed"]) == (False, True, 2)


def test_gains_false_layout_sends_the_raw_inputs():
    stub = StubControlEnv()
    env = PrimitiveControllerWrapper(stub, chunk_length=3, obs_horizon=1, gains=False)
    assert env.layout.size == 3 * 2 and env.action_space.shape == (6,)
    np.testing.assert_array_equal(env.action_space.low, np.tile([-1.0, -2.0], 3))
    env.reset(seed=0)
    u = np.array([[0.1, -0.2], [0.3, 0.4], [-0.5, 1.5]])
    env.step(u.reshape(-1))
    np.testing.assert_array_equal(np.array(stub.received), u)


def test_inputs_are_sent_in_the_inner_action_dtype():
    stub = StubControlEnv()
    stub.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    env = PrimitiveControllerWrapper(stub, chunk_length=2, obs_horizon=1)
    env.reset(seed=0)
    u = np.array([[0.1, 0.2], [0.3, -0.7]])
    _, _, _, _, info = env.step(composite(env.layout, u))
    assert all(r.dtype == np.float32 for r in map(np.asarray, stub.received))
    np.testing.assert_array_equal(info["inner_inputs"], u.astype(np.float32))


def test_action_space_bounds_per_controller():
    base = gym.make(QUAD)
    env = PrimitiveControllerWrapper(base, chunk_length=2, obs_horizon=2, gain_bound=7.0)
    inner_a, inner_o = base.action_space, base.observation_space
    per = env.layout.controller_size
    assert per == 2 + 6 + 12 and env.action_space.shape == (2 * per,)
    assert env.action_space.dtype == np.float64
    for k in range(2):
        low, high = env.action_space.low[k * per :], env.action_space.high[k * per :]
        np.testing.assert_array_equal(low[:2], inner_a.low)
        np.testing.assert_array_equal(high[:2], inner_a.high)
        np.testing.assert_array_equal(low[2:8], inner_o.low)
        np.testing.assert_array_equal(high[2:8], inner_o.high)
        np.testing.assert_array_equal(low[8:per], -7.0)
        np.testing.assert_array_equal(high[8:per], 7.0)
    assert env.observation_space.shape == (2, 6)
    np.testing.assert_array_equal(env.observation_space.low, np.tile(inner_o.low, (2, 1)))


def test_composite_actions_are_clipped_to_the_action_space():
    stub = StubControlEnv()
    env = PrimitiveControllerWrapper(stub, chunk_length=1, obs_horizon=1, gain_bound=0.5)
    obs, _ = env.reset(seed=4)
    # u_bar beyond the input bounds, x_bar beyond the observation bounds, K beyond R
    u_bar, x_bar = np.array([[3.0, -0.1]]), np.array([[80.0, 0.0]])
    K = np.array([[[5.0, 0.0], [0.0, -9.0]]])
    env.step(composite(env.layout, u_bar, x_bar, K))
    x = obs[-1][:2]
    u = np.array([1.0, -0.1]) + np.diag([0.5, -0.5]) @ (x - np.array([50.0, 0.0]))
    np.testing.assert_allclose(stub.received[0], np.clip(u, [-1, -2], [1, 2]), atol=1e-12)


def test_observation_history_and_padding():
    stub = StubControlEnv()
    env = PrimitiveControllerWrapper(stub, chunk_length=2, obs_horizon=3)
    obs, _ = env.reset(seed=5)
    first = stub.get_state()
    np.testing.assert_array_equal(obs, np.tile(first, (3, 1)))
    seen = [first]
    for _ in range(2):
        obs, *_ = env.step(composite(env.layout, np.full((2, 2), 0.2)))
        seen.extend(stub.states_before[len(seen) :] + [stub.get_state()])
        np.testing.assert_array_equal(obs, np.array(seen[-3:]))
    obs[:] = 1e6  # mutating a returned chunk must not corrupt the wrapper's history
    obs2, *_ = env.step(composite(env.layout, np.zeros((2, 2))))
    assert np.all(obs2 < 1e6)


def test_exact_state_reset_passes_through():
    env = PrimitiveControllerWrapper(gym.make(QUAD), chunk_length=4, obs_horizon=2)
    state = np.array([0.3, -0.2, 0.05, 0.1, 0.0, -0.1])
    obs, _ = env.reset(options={"state": state})
    np.testing.assert_array_equal(obs, np.tile(state, (2, 1)))
    np.testing.assert_array_equal(env.unwrapped.get_state(), state)


def test_chunk_env_is_not_a_control_env_and_cannot_be_chunked_twice():
    env = PrimitiveControllerWrapper(StubControlEnv(), chunk_length=2, obs_horizon=1)
    assert env.control_indices is None and not is_control_env(env)
    with pytest.raises(TypeError, match="not a control environment"):
        PrimitiveControllerWrapper(env, chunk_length=2, obs_horizon=1)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
def test_check_env_and_spec_round_trip_on_quadrotor():
    env = PrimitiveControllerWrapper(gym.make(QUAD), chunk_length=4, obs_horizon=2)
    check_env(env, skip_render_check=True)
    # RecordConstructorArgs: the spec rebuilds the same stack
    rebuilt = gym.make(env.spec)
    assert isinstance(rebuilt, PrimitiveControllerWrapper)
    assert rebuilt.layout == env.layout
    action = env.action_space.sample()
    a = env.reset(seed=9)[0], env.step(action)[0]
    b = rebuilt.reset(seed=9)[0], rebuilt.step(action)[0]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


# -- (d) every bad input gives a clear error ------------------------------------------------


def test_wrong_composite_shape_is_rejected():
    env = PrimitiveControllerWrapper(StubControlEnv(), chunk_length=2, obs_horizon=1)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"composite action must have shape \(16,\)"):
        env.step(np.zeros(15))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_composite_is_rejected(bad):
    stub = StubControlEnv()
    env = PrimitiveControllerWrapper(stub, chunk_length=2, obs_horizon=1)
    env.reset(seed=0)
    action = np.zeros(env.layout.size)
    action[3] = bad
    with pytest.raises(ValueError, match=r"NaN or inf at index \[3\]"):
        env.step(action)
    assert stub.received == []  # nothing reached the simulator


def test_non_control_env_is_rejected():
    with pytest.raises(TypeError, match="not a control environment"):
        PrimitiveControllerWrapper(gym.make("Pendulum-v1"), chunk_length=2, obs_horizon=1)


def test_non_box_spaces_are_rejected():
    stub = StubControlEnv()
    stub.action_space = spaces.Discrete(3)
    with pytest.raises(TypeError, match="Box action space.*Discrete"):
        PrimitiveControllerWrapper(stub, chunk_length=2, obs_horizon=1)
    stub = StubControlEnv()
    stub.observation_space = spaces.Dict({"a": spaces.Box(-1, 1, (3,))})
    with pytest.raises(TypeError, match="Box observation space.*Dict"):
        PrimitiveControllerWrapper(stub, chunk_length=2, obs_horizon=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"chunk_length": 0, "obs_horizon": 1}, "chunk_length must be an integer >= 1, got 0"),
        ({"chunk_length": 2.0, "obs_horizon": 1}, "chunk_length must be an integer"),
        ({"chunk_length": 2, "obs_horizon": 0}, "obs_horizon must be an integer >= 1, got 0"),
        ({"chunk_length": 2, "obs_horizon": 1, "gain_bound": 0.0}, "gain_bound must be"),
        ({"chunk_length": 2, "obs_horizon": 1, "gain_bound": np.nan}, "gain_bound must be"),
    ],
)
def test_bad_sizes_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PrimitiveControllerWrapper(StubControlEnv(), **kwargs)


def test_bad_control_indices_are_rejected():
    with pytest.raises(ValueError, match="must index an observation of size 3"):
        PrimitiveControllerWrapper(StubControlEnv(control_indices=(0, 3)), 2, 1)


def test_step_before_reset_is_rejected():
    env = PrimitiveControllerWrapper(StubControlEnv(), chunk_length=2, obs_horizon=1)
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        env.step(np.zeros(env.layout.size))
