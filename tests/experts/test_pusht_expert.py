"""Tests of the PushT MPC expert (:mod:`hint_envs.experts.pusht`); a few short episodes."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from hint_envs.experts import make_expert  # noqa: E402
from hint_envs.experts.pusht import (  # noqa: E402
    FACES,
    PlannerSettings,
    PushTExpert,
    contact_face,
)

#: A cheap planner: a 300-step episode takes well under a second.
FAST = dict(samples=8, iterations=1, horizon=8, knots=4, replan_every=4)


@pytest.fixture(scope="module")
def expert() -> PushTExpert:
    return PushTExpert(**FAST)


@pytest.fixture(scope="module")
def demo(expert):
    return expert.demonstrate(3)


def test_registered():
    assert isinstance(make_expert("hint_envs/PushT-v0", **FAST), PushTExpert)


def test_demonstration_layout(demo):
    T = len(demo)
    assert 1 <= T <= 300
    assert demo.observations.shape == (T, 5)
    assert demo.actions.shape == (T, 2) and demo.states.shape == (T, 10)
    assert demo.rewards.shape == demo.dones.shape == (T,)
    assert demo.dones[-1] == 1 and demo.dones[:-1].sum() == 0
    assert demo.final_state.shape == (10,) and demo.final_observation.shape == (5,)
    assert np.all((demo.actions >= 0) & (demo.actions <= 512))
    assert demo.primitives is None
    a = demo.attrs
    assert a["seed"] == 3 and a["steps"] == T
    face, turn = a["mode"].split("/")
    assert face in (*FACES, "none") and turn in ("cw", "ccw")
    assert 0.0 <= a["final_coverage"] <= a["max_coverage"] <= 1.0
    assert a["success"] == (a["final_coverage"] > 0.95)
    assert a["planner_samples"] == FAST["samples"]


def test_states_replay_observations(expert, demo):
    """states[t] restores the observation the expert saw."""
    env = expert.env
    obs, _ = env.reset(options={"state": demo.states[5]})
    np.testing.assert_allclose(obs[:4], demo.observations[5][:4])


def test_deterministic_whatever_ran_before(expert, demo):
    again = expert.demonstrate(3)
    for name in ("observations", "actions", "dones", "states", "final_state"):
        np.testing.assert_array_equal(getattr(again, name), getattr(demo, name))
    # rewards come from shapely's polygon intersection, which can differ by an ulp for
    # identical poses; everything the expert computes is bit-identical
    np.testing.assert_allclose(again.rewards, demo.rewards, rtol=1e-12, atol=1e-15)
    coverage = ("final_coverage", "max_coverage")
    assert {k: v for k, v in again.attrs.items() if k not in coverage} == {
        k: v for k, v in demo.attrs.items() if k not in coverage
    }
    for key in coverage:
        assert again.attrs[key] == pytest.approx(demo.attrs[key], rel=1e-12)
    expert.demonstrate(4)
    after_other = expert.demonstrate(3)
    np.testing.assert_array_equal(after_other.actions, demo.actions)
    fresh = PushTExpert(**FAST).demonstrate(3)
    np.testing.assert_array_equal(fresh.actions, demo.actions)


def test_initial_state(expert, demo):
    d = expert.demonstrate(3, initial_state=demo.states[0])
    np.testing.assert_array_equal(d.states[0], demo.states[0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"samples": 1},
        {"horizon": 0},
        {"knots": 3},
        {"knots": 30, "horizon": 20},
        {"replan_every": 25},
        {"sigma_min": 0.0},
        {"sigma": 2.0, "sigma_min": 4.0},
        {"temperature": 0.0},
        {"agent_weight": -1.0},
        {"push_fraction": 0.9},
        {"iterations": 1.5},
    ],
)
def test_invalid_settings(kwargs):
    with pytest.raises(ValueError):
        PlannerSettings(**kwargs)


def test_unknown_setting():
    with pytest.raises(ValueError, match="unknown"):
        PushTExpert(sample=4)


def test_contact_face():
    pose = np.array([256.0, 256.0, 0.0])  # bar along x at y in [0, 30], stem to y = 120
    assert contact_face(np.array([256.0, 256.0 - 15.0]), pose) == "top"
    assert contact_face(np.array([256.0 + 75.0, 256.0 + 15.0]), pose) == "bar_end"
    assert contact_face(np.array([256.0 + 40.0, 256.0 + 45.0]), pose) == "underside"
    assert contact_face(np.array([256.0 - 30.0, 256.0 + 90.0]), pose) == "stem_side"
    assert contact_face(np.array([256.0, 256.0 + 135.0]), pose) == "stem_tip"
    assert contact_face(np.array([256.0, 256.0 - 40.0]), pose) is None


def test_collection_with_synthesis_is_identical_for_any_number_of_workers():
    from hint_envs.experts.collect import collect_demonstrations

    runs = [
        collect_demonstrations(
            "hint_envs/PushT-v0", 2, seed=40, workers=w, progress=False, expert_kwargs=FAST
        )
        for w in (1, 2)
    ]
    for one, two in zip(*runs, strict=True):
        np.testing.assert_array_equal(one.actions, two.actions)
        np.testing.assert_array_equal(one.states, two.states)
        np.testing.assert_array_equal(one.primitives.K, two.primitives.K)
        np.testing.assert_array_equal(one.primitives.x_bar, one.observations[:, :2])
