"""The scalar linear system's expert: zero input when contractive, pole placement when not."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401
from hint_envs.evaluation.rollout import rollout_expert
from hint_envs.experts import EXPERTS, make_expert
from hint_envs.experts.scalar_linear import ScalarLinearExpert

ENV_ID = "hint_envs/ScalarLinear-v0"


def test_registered():
    assert isinstance(make_expert(ENV_ID), ScalarLinearExpert)
    assert EXPERTS[ENV_ID] == "hint_envs.experts.scalar_linear:ScalarLinearExpert"


@pytest.mark.parametrize("seed", range(5))
def test_contractive_system_expert_inputs_are_exactly_zero(seed):
    demo = ScalarLinearExpert().demonstrate(seed)
    assert len(demo) == 50 and demo.actions.shape == (50, 1)
    assert np.all(demo.actions == 0.0) and not np.signbit(demo.actions).any()
    x0 = demo.states[0, 0]
    assert np.allclose(demo.states[:, 0], x0 * 0.9 ** np.arange(50), rtol=1e-13, atol=0)
    assert demo.attrs["mode"] == "stabilise" and demo.attrs["pole"] == 0.9
    assert demo.attrs["a"] == 0.9 and demo.attrs["b"] == 1.0 and demo.attrs["gain"] == 0.0
    assert demo.success and demo.attrs["truncated"] and not demo.attrs["terminated"]
    assert demo.dones[-1] == 1.0 and demo.dones[:-1].sum() == 0


def test_unstable_system_expert_places_the_pole_at_one_half():
    expert = make_expert(ENV_ID, {"a": 2.0, "b": 0.5})
    demo = expert.demonstrate(seed=3)
    x, u = demo.states[:, 0], demo.actions[:, 0]
    assert np.allclose(u, -(2.0 - 0.5) / 0.5 * x, rtol=0, atol=0)
    next_x = np.append(x[1:], demo.final_state[0])
    assert np.allclose(next_x, 0.5 * x, rtol=1e-12, atol=1e-300)
    assert demo.attrs["pole"] == 0.5 and demo.attrs["a"] == 2.0 and demo.attrs["b"] == 0.5
    assert demo.success and abs(demo.final_state[0]) < 1e-12


def test_same_seed_same_demo_and_the_initial_state_option():
    expert = ScalarLinearExpert(env_kwargs={"a": 2.0, "noise_std": 0.1}, input_noise_std=0.05)
    first, again, other = expert.demonstrate(4), expert.demonstrate(4), expert.demonstrate(5)
    assert np.array_equal(first.actions, again.actions)
    assert np.array_equal(first.states, again.states)
    assert not np.allclose(first.actions, other.actions)
    exact = expert.demonstrate(4, initial_state=np.array([0.7]))
    assert exact.states[0, 0] == 0.7
    # the seeded start comes from env.reset(seed=seed): evaluations start there too
    env = gym.make(ENV_ID, a=2.0, noise_std=0.1)
    assert env.reset(seed=4)[0][0] == first.states[0, 0]


def test_expert_rollouts_for_evaluation():
    records = rollout_expert(ENV_ID, [0, 1], env_kwargs={"a": 2.0}, progress=False)
    assert [r.success for r in records] == [True, True]
    assert records[0].states.shape == (51, 1) and records[0].truncated


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"pole": 1.0}, ValueError, "pole must be a finite number in"),
        ({"pole": "0.5"}, TypeError, "pole must be a real number"),
        ({"input_noise_std": -1.0}, ValueError, "input_noise_std"),
        ({"env_id": "hint_envs/PlanarQuadrotor-v0"}, TypeError, "needs a ScalarLinearEnv"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        ScalarLinearExpert(**kwargs)
