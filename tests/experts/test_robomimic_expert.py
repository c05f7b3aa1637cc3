"""Scripted Robomimic experts: one demonstration, its arrays, determinism, exact replay."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("robosuite")

from hint_envs.experts import EXPERTS, make_expert  # noqa: E402
from hint_envs.experts.robomimic import (  # noqa: E402
    RobomimicCanExpert,
    RobomimicLiftExpert,
    down_rotation,
)


@pytest.fixture(scope="module")
def lift() -> RobomimicLiftExpert:
    expert = make_expert("hint_envs/RobomimicLift-v0")
    yield expert
    expert.close()


@pytest.fixture(scope="module")
def lift_demo(lift):
    return lift.demonstrate(0)


def _replay(env, demo) -> tuple[bool, int]:
    """Apply a demonstration's actions from its first saved state: (success, steps)."""
    env.reset(options={"state": demo.states[0]})
    for t, u in enumerate(demo.actions):
        _, _, terminated, truncated, info = env.step(u)
        if terminated or truncated:
            return bool(info["is_success"]), t + 1
    return False, len(demo.actions)


def test_registered():
    for task in ("Lift", "Can", "Square"):
        assert f"hint_envs/Robomimic{task}-v0" in EXPERTS


def test_down_rotation_points_the_grip_site_down():
    m = down_rotation(0.3).as_matrix()
    np.testing.assert_allclose(m[:, 2], [0.0, 0.0, -1.0], atol=1e-12)
    np.testing.assert_allclose(m[:, 0], [-np.sin(0.3), np.cos(0.3), 0.0], atol=1e-12)


def test_lift_demo_succeeds_with_consistent_arrays(lift, lift_demo):
    demo = lift_demo
    env = lift.env
    T = len(demo)
    assert demo.success and demo.attrs["success"] is True
    assert demo.attrs["seed"] == 0 and demo.attrs["steps"] == T
    assert isinstance(demo.attrs["mode"], str) and "/" in demo.attrs["mode"]
    assert 0 < T <= 400
    assert demo.observations.shape == (T, env.observation_space.shape[0])
    assert demo.actions.shape == (T, 7)
    assert demo.states.shape == (T, env.unwrapped.state_dim)
    assert demo.rewards.shape == demo.dones.shape == (T,)
    assert demo.dones[-1] == 1 and demo.dones[:-1].sum() == 0
    assert demo.rewards[-1] == 1.0
    assert np.all(demo.actions >= env.action_space.low)
    assert np.all(demo.actions <= env.action_space.high)
    assert demo.final_observation.shape == (env.observation_space.shape[0],)
    assert demo.final_state.shape == (env.unwrapped.state_dim,)
    # smooth targets: the position target moves at most a couple of cm per step
    assert np.abs(np.diff(demo.actions[:, :3], axis=0)).max() < 0.02


def test_same_seed_same_demo(lift, lift_demo):
    lift.demonstrate(5)  # whatever ran before
    again = lift.demonstrate(0)
    np.testing.assert_array_equal(again.actions, lift_demo.actions)
    assert again.attrs == lift_demo.attrs


def test_lift_replay_from_first_state_succeeds(lift, lift_demo):
    success, steps = _replay(lift.env, lift_demo)
    assert success and steps == len(lift_demo)


def test_can_demo_replays():
    expert = RobomimicCanExpert()
    try:
        demo = expert.demonstrate(1)
        assert demo.success and demo.attrs["mode"] in ("front", "back")
        success, steps = _replay(expert.env, demo)
        assert success and steps == len(demo)
    finally:
        expert.close()


def test_unknown_setting_raises():
    with pytest.raises(ValueError, match="unknown"):
        RobomimicLiftExpert(no_such_setting=1)


@pytest.mark.parametrize("task", ["Lift", "Can"])
def test_demo_in_rot6d_is_the_same_demo(task):
    """The expert commands the same targets whatever the env's orientation form (and
    reads the fingers from the observation layout of either)."""
    from hint_envs.envs.robomimic import matrix_to_rot6d

    expert = make_expert(f"hint_envs/Robomimic{task}-v0", {"rotation": "rot6d"})
    try:
        six = expert.demonstrate(0)
    finally:
        expert.close()
    plain = make_expert(f"hint_envs/Robomimic{task}-v0")
    try:
        demo = plain.demonstrate(0)
    finally:
        plain.close()
    assert six.success and six.actions.shape == (len(demo), 10)
    # the orientation's round trip through 6-D (1e-16) grows to ~1e-5 m through the
    # contacts of a long episode; a different script would differ by centimetres
    np.testing.assert_allclose(six.actions[:, :3], demo.actions[:, :3], atol=1e-4)
    from scipy.spatial.transform import Rotation

    rot6d = matrix_to_rot6d(Rotation.from_rotvec(demo.actions[:, 3:6]).as_matrix())
    np.testing.assert_allclose(six.actions[:, 3:9], rot6d, atol=1e-4)
