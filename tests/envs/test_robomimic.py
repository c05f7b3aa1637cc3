"""Robomimic Lift/Can/Square: layout, inputs, exact state reset, instability, missing simulator.

``check_env`` and the seeded-determinism test of every id run in tests/test_registered_envs.py.
"""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("robosuite")

import hint_envs  # noqa: E402, F401  (registers the environments)
from hint_envs.envs.robomimic import HORIZON, RobomimicEnv  # noqa: E402

TASKS = ("Lift", "Can", "Square")
#: robomimic's low-dim "object" sizes
OBJECT_DIMS = {"Lift": 10, "Can": 14, "Square": 14}
#: len(robomimic's "states"): 1 + nq + nv
STATE_DIMS = {"Lift": 32, "Can": 71, "Square": 45}


@pytest.fixture(scope="module")
def envs():
    made = {task: gym.make(f"hint_envs/Robomimic{task}-v0") for task in TASKS}
    yield made
    for env in made.values():
        env.close()


def hold(env) -> np.ndarray:
    """The absolute input that holds the current pose, gripper open."""
    base = env.unwrapped
    return np.concatenate([base._last_obs[:3], base.site_rotvec(), [-1.0]])


@pytest.mark.parametrize("task", TASKS)
def test_layout_matches_robomimic_low_dim_keys(envs, task):
    env = envs[task]
    base = env.unwrapped
    assert env.spec.max_episode_steps == HORIZON == 400
    keys = base.obs_keys
    assert list(keys) == ["robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", "object"]
    assert keys["object"] == (9, 9 + OBJECT_DIMS[task])
    assert env.observation_space.shape == (9 + OBJECT_DIMS[task],)
    assert list(base.control_indices) == [0, 1, 2]
    assert base.state_dim == STATE_DIMS[task]
    obs, info = env.reset(seed=0)
    raw = base.sim._get_observations(force_update=True)
    for key, (start, stop) in keys.items():
        name = "object-state" if key == "object" else key
        np.testing.assert_allclose(obs[start:stop], raw[name])
    site = base.sim.robots[0].eef_site_id["right"]
    np.testing.assert_allclose(obs[:3], base.sim.sim.data.site_xpos[site])
    assert info == {"is_success": False, "unstable": False}


@pytest.mark.parametrize("task", TASKS)
def test_exact_state_reset_reproduces_the_episode(envs, task):
    env = envs[task]
    base = env.unwrapped
    rng = np.random.default_rng(0)
    obs0, _ = env.reset(seed=11)
    state0 = base.get_state()
    start = hold(env)
    inputs = [start + np.r_[rng.uniform(-0.05, 0.05, 3), np.zeros(3), 0.0] for _ in range(15)]
    first = [env.step(u)[0] for u in inputs]
    env.reset(seed=99)  # somewhere else
    obs, _ = env.reset(options={"state": state0})
    np.testing.assert_array_equal(obs, obs0)
    np.testing.assert_array_equal(base.get_state(), state0)
    second = [env.step(u)[0] for u in inputs]
    np.testing.assert_array_equal(np.array(first), np.array(second))
    with pytest.raises(ValueError, match=rf"shape \({STATE_DIMS[task]},\)"):
        env.reset(options={"state": state0[:-1]})
    with pytest.raises(ValueError, match="finite"):
        env.reset(options={"state": np.full_like(state0, np.nan)})


def test_a_mid_episode_state_restores_exactly_with_the_gripper_ramp(envs):
    env = envs["Can"]
    base = env.unwrapped
    env.reset(seed=5)
    close = hold(env)
    close[6] = 1.0  # closing: robosuite ramps the finger command by 0.2 a step
    for _ in range(3):
        env.step(close)
    state, ramp = base.get_state(), base.gripper_action()
    assert 0 < abs(ramp[0]) < 1
    first = [env.step(close)[0] for _ in range(10)]
    env.reset(options={"state": state, "gripper_action": ramp})
    np.testing.assert_array_equal(base.gripper_action(), ramp)
    # MuJoCo's solver warm start (qacc_warmstart) is not in the state either: ~1e-5 apart
    again = np.array([env.step(close)[0] for _ in range(10)])
    np.testing.assert_allclose(again, first, atol=1e-4)
    env.reset(options={"state": state})  # without it the ramp restarts at 0
    assert np.all(base.gripper_action() == 0)
    fingers = slice(*base.obs_keys["robot0_gripper_qpos"])
    ramp_lost = np.array([env.step(close)[0] for _ in range(10)])
    assert np.abs(ramp_lost[:, fingers] - np.array(first)[:, fingers]).max() > 1e-3
    with pytest.raises(ValueError, match="gripper_action"):
        env.reset(options={"state": state, "gripper_action": [2.0, 0.0]})
    with pytest.raises(ValueError, match="needs"):
        env.reset(options={"gripper_action": ramp})


def test_absolute_targets_are_tracked_and_validated(envs):
    env = envs["Lift"]
    env.reset(seed=3)
    target = hold(env) + np.r_[0.05, -0.04, 0.06, np.zeros(4)]
    for _ in range(30):
        obs, *_ = env.step(target)
    assert np.linalg.norm(obs[:3] - target[:3]) < 0.01  # OSC reaches a 9 cm move in 1.5 s
    far = target.copy()
    far[:3] = [5.0, 5.0, 5.0]  # outside the position bounds: clipped, not an error
    obs, *_ = env.step(far)
    assert np.all(np.isfinite(obs))
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.full(7, np.nan))
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(6))
    with pytest.raises(ValueError, match="unknown reset options"):
        env.reset(options={"seed": 1})


def test_delta_actions_are_an_option():
    env = gym.make("hint_envs/RobomimicLift-v0", action_type="delta")
    obs, _ = env.reset(seed=0)
    assert env.action_space.low.tolist() == [-1.0] * 7
    for _ in range(10):
        moved, *_ = env.step(np.r_[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0])  # up, 5 cm a step
    assert moved[2] - obs[2] > 0.1
    env.close()


def test_an_unstable_simulation_ends_the_episode_with_a_flag(envs):
    env = envs["Can"]
    base = env.unwrapped
    obs, _ = env.reset(seed=0)
    state = base.get_state()
    nq = base.sim.sim.model.nq
    state[1 + nq :] = 1e12  # absurd joint velocities: MuJoCo resets its data and warns
    obs, _ = env.reset(options={"state": state})
    obs_next, reward, terminated, truncated, info = env.step(hold(env))
    assert terminated and not truncated and info["unstable"] and not info["is_success"]
    assert reward == 0.0
    assert np.all(np.isfinite(obs_next))
    np.testing.assert_array_equal(obs_next, obs)  # the last good observation
    obs, info = env.reset(seed=0)  # and the env recovers on reset
    assert not info["unstable"]
    assert not env.step(hold(env))[4]["unstable"]


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="task must be one of"):
        RobomimicEnv(task="Transport")
    with pytest.raises(ValueError, match="action_type"):
        RobomimicEnv(task="Lift", action_type="velocity")
    with pytest.raises(ValueError, match="render_mode"):
        RobomimicEnv(task="Lift", render_mode="human")
    with pytest.raises(ValueError, match="camera must be one of"):
        RobomimicEnv(task="Lift", camera="eye_in_the_sky")


def test_missing_robosuite_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "robosuite", None)
    with pytest.raises(gym.error.DependencyNotInstalled, match=r"hint_envs\[robomimic\]"):
        RobomimicEnv(task="Lift")
