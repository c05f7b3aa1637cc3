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
from hint_envs.envs.robomimic import (  # noqa: E402
    HORIZON,
    RobomimicEnv,
    matrix_to_rot6d,
    quat_to_rot6d,
    rot6d_to_matrix,
)

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
    with pytest.raises(ValueError, match="rotation must be one of"):
        RobomimicEnv(task="Lift", rotation="euler")


def test_rot6d_is_continuous_and_inverts():
    from scipy.spatial.transform import Rotation

    rotations = Rotation.random(50, random_state=0)
    matrices = rotations.as_matrix()
    np.testing.assert_allclose(rot6d_to_matrix(matrix_to_rot6d(matrices)), matrices, atol=1e-12)
    # q and -q are one rotation: one representation
    quats = rotations.as_quat()
    np.testing.assert_allclose(quat_to_rot6d(quats), quat_to_rot6d(-quats), atol=1e-12)
    # a top-down grip (a half turn) tilting through it: the rotation vector jumps from
    # pi n to -pi n, the 6-D form does not
    turn = [Rotation.from_euler("x", np.pi + tilt) for tilt in np.linspace(-0.1, 0.1, 21)]
    rotvecs = np.array([r.as_rotvec() for r in turn])
    six = np.array([matrix_to_rot6d(r.as_matrix()) for r in turn])
    assert np.abs(np.diff(rotvecs, axis=0)).max() > 3.0
    assert np.abs(np.diff(six, axis=0)).max() < 0.02
    # any two non-parallel columns give a rotation (Gram-Schmidt)
    m = rot6d_to_matrix(np.array([2.0, 0.1, 0.0, 0.3, 1.0, 0.2]))
    np.testing.assert_allclose(m.T @ m, np.eye(3), atol=1e-12)
    assert np.linalg.det(m) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-parallel"):
        rot6d_to_matrix(np.array([1.0, 0.0, 0.0, 2.0, 0.0, 0.0]))


@pytest.mark.parametrize("task", TASKS)
def test_rot6d_observes_and_commands_the_same_simulation(envs, task):
    """``rotation="rot6d"`` changes the representation, not the physics: the same
    commands, given in either form, move the arm identically."""
    from scipy.spatial.transform import Rotation

    plain = envs[task]
    six = gym.make(f"hint_envs/Robomimic{task}-v0", rotation="rot6d")
    base = six.unwrapped
    assert six.action_space.shape == (10,)
    assert six.observation_space.shape == (23 if task == "Lift" else 29,)
    assert list(base.obs_keys)[1] == "robot0_eef_rot6d"
    obs, _ = six.reset(seed=3)
    obs_plain, _ = plain.reset(seed=3)
    assert six.observation_space.contains(obs)
    np.testing.assert_allclose(obs[3:9], quat_to_rot6d(obs_plain[3:7]), atol=1e-12)
    for name, (a, b) in base.object_keys.items():
        first = base.obs_keys["object"][0]
        if name.endswith("rot6d"):
            a_plain, b_plain = plain.unwrapped.object_keys[name.replace("rot6d", "quat")]
            quat = obs_plain[9 + a_plain : 9 + b_plain]
            np.testing.assert_allclose(obs[first + a : first + b], quat_to_rot6d(quat), atol=1e-9)
    goal = Rotation.from_rotvec(base.site_rotvec()) * Rotation.from_euler("z", 0.3)
    target = obs[:3] + np.array([0.03, -0.02, 0.02])
    for _ in range(8):
        obs, *_ = six.step(base.absolute_action(target, goal, 1.0))
        obs_plain, *_ = plain.step(plain.unwrapped.absolute_action(target, goal, 1.0))
    np.testing.assert_allclose(obs[:3], obs_plain[:3], atol=1e-9)
    np.testing.assert_allclose(obs[3:9], quat_to_rot6d(obs_plain[3:7]), atol=1e-9)
    # a degenerate 6-D orientation holds the current one instead of failing
    u = base.absolute_action(target, goal, 1.0)
    u[3:9] = 0.0
    obs, _, _, _, info = six.step(u)
    assert not info["unstable"] and six.observation_space.contains(obs)
    six.close()


def test_missing_robosuite_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "robosuite", None)
    with pytest.raises(gym.error.DependencyNotInstalled, match=r"hint_envs\[robomimic\]"):
        RobomimicEnv(task="Lift")


def test_mujoco_warnings_are_logged_not_written_to_the_working_folder(
    tmp_path, monkeypatch, caplog
) -> None:
    """MuJoCo's default handler appends to ./MUJOCO_LOG.TXT; the env routes warnings to
    the logging module instead."""
    import mujoco

    env = RobomimicEnv("Lift")
    env.close()
    monkeypatch.chdir(tmp_path)
    model = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><freejoint/><geom size='0.1'/></body></worldbody></mujoco>"
    )
    data = mujoco.MjData(model)
    data.qvel[:] = np.nan  # MuJoCo warns: bad qvel
    with caplog.at_level("WARNING", logger="hint_envs.envs.robomimic"):
        mujoco.mj_step(model, data)
    assert "MuJoCo:" in caplog.text
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
