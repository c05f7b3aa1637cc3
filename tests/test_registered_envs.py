"""Every registered ``hint_envs/`` id passes Gymnasium's ``check_env`` and is deterministic.

New ids are covered automatically: the tests iterate ``gym.registry``. An id whose
simulator is an optional extra is skipped (only) when that package is missing; list it in
``REQUIRED_MODULES``.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence

import hint_envs  # noqa: F401  (registers the environments)

#: id prefix -> module the environment needs beyond the base install (default: none)
REQUIRED_MODULES = {
    "hint_envs/PushT": "gym_pusht",
    "hint_envs/Robomimic": "robosuite",
}
#: check_env advice that does not apply by design: the action is the raw
#: physical input (thrust in N, torque in N m; a target in px), not a normalised one
ALLOWED_CHECKER_WARNINGS = ("we recommend using a symmetric and normalized space",)

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("hint_envs/"))


def require_simulator(env_id: str) -> None:
    """Skip the test if ``env_id``'s optional simulator package is not installed."""
    for prefix, module in REQUIRED_MODULES.items():
        if env_id.startswith(prefix):
            pytest.importorskip(module)


def test_the_quadrotor_is_registered():
    assert "hint_envs/PlanarQuadrotor-v0" in ENV_IDS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes(env_id):
    require_simulator(env_id)
    env = gym.make(env_id, render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    complaints = [
        str(w.message)
        for w in caught
        if "WARN:" in str(w.message)  # gymnasium.logger.warn: the checker's findings
        and not any(allowed in str(w.message) for allowed in ALLOWED_CHECKER_WARNINGS)
    ]
    assert not complaints, complaints
    frame = env.unwrapped.render()
    assert frame.ndim == 3 and frame.shape[-1] == 3 and frame.dtype == np.uint8
    env.close()


def rollout(env_id: str, seed: int, steps: int = 50) -> list:
    """Everything a fresh ``gym.make(env_id)`` returns over ``steps`` seeded random actions."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    record = [env.reset(seed=seed)]
    for _ in range(steps):
        step = env.step(env.action_space.sample())
        record.append(step)
        if step[2] or step[3]:
            record.append(env.reset())
    env.close()
    return record


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_seeded_rollouts_are_identical(env_id):
    require_simulator(env_id)
    first, second = rollout(env_id, 123), rollout(env_id, 123)
    assert data_equivalence(first, second, exact=True)
    other = rollout(env_id, 124, steps=0)
    assert not data_equivalence(first[0][0], other[0][0], exact=True)  # the seed matters


@pytest.mark.parametrize(
    "env_id", [i for i in ENV_IDS if gym.registry[i].vector_entry_point is not None]
)
def test_vector_entry_point_matches_the_single_env(env_id):
    require_simulator(env_id)
    envs = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point")
    single = gym.make(env_id)
    assert envs.num_envs == 3
    assert envs.single_observation_space == single.observation_space
    assert envs.single_action_space == single.action_space
    obs, _ = envs.reset(seed=7)
    assert envs.observation_space.contains(obs)
    assert data_equivalence(obs[1], single.reset(seed=8)[0], exact=True)
    envs.close()
    single.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_before_reset_or_after_close_is_a_clear_error(env_id):
    """Not an AttributeError from inside the simulator (gym.make's OrderEnforcing catches
    the first case too; the env itself must, for code that builds the class directly)."""
    require_simulator(env_id)
    env = gym.make(env_id).unwrapped
    action = env.action_space.sample()
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        env.step(action)
    env.reset(seed=0)
    env.step(action)
    env.close()
    with pytest.raises(gym.error.ClosedEnvironmentError, match="was closed"):
        env.step(action)


def test_stepping_after_termination_warns_once(caplog):
    env = gym.make("hint_envs/PlanarQuadrotor-v0").unwrapped
    env.reset(seed=0)
    fall = np.zeros(env.action_space.shape)  # no thrust: the quadrotor falls out of bounds
    terminated, steps = False, 0
    while not terminated:
        _, _, terminated, _, _ = env.step(fall)
        steps += 1
        assert steps < 500
    assert "already returned terminated = True" not in caplog.text
    env.step(fall)
    env.step(fall)
    assert caplog.text.count("already returned terminated = True") == 1
    env.reset(seed=1)
    env.step(fall)
    assert caplog.text.count("already returned terminated = True") == 1  # a new episode
