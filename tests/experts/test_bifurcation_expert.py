"""The bifurcation task's two-mode expert."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401
from hint_envs.envs.bifurcation import BifurcationParams, step
from hint_envs.experts import EXPERTS, make_expert
from hint_envs.experts.bifurcation import BifurcationExpert, side_taken

ENV_ID = "hint_envs/Bifurcation-v0"
#: starts across the band: both edges, zero and either side of it
EDGE_STARTS = [-0.5, -0.25, -1e-9, 0.0, 1e-9, 0.25, 0.5]


@pytest.fixture(scope="module")
def expert():
    return BifurcationExpert()


@pytest.fixture(scope="module")
def demos(expert):
    return [expert.demonstrate(seed) for seed in range(40)]


def check_clean(demo, limit: float = 1.0) -> None:
    """Succeeds, never collides, keeps its side and keeps inputs within the limits."""
    attrs = demo.attrs
    assert demo.success and not attrs["collision"] and not attrs["out_of_bounds"], attrs
    assert attrs["min_clearance"] > 0.2, attrs
    assert attrs["side"] == attrs["mode"], attrs
    assert np.all(np.abs(demo.actions) <= limit), np.abs(demo.actions).max()
    assert len(demo) == 70


def test_registered_and_made_by_id():
    assert ENV_ID in EXPERTS
    expert = make_expert(ENV_ID, {"start_width": 0.3}, boundary_width=0.1)
    assert isinstance(expert, BifurcationExpert)
    assert expert.params.start_width == 0.3 and expert.boundary_width == 0.1


def test_the_side_follows_the_sign_of_y0_and_every_demo_is_clean(demos):
    modes = {d.attrs["mode"] for d in demos}
    assert modes == {"left", "right"}
    for demo in demos:
        y0 = demo.states[0, 1]
        assert demo.attrs["mode"] == ("left" if y0 > 0 else "right")
        assert not demo.attrs["by_coin"]
        check_clean(demo)
        # the recorded inputs are the ones applied: replaying them gives the states
        np.testing.assert_allclose(
            step(demo.states, demo.actions, BifurcationParams())[:-1], demo.states[1:], atol=1e-12
        )
        np.testing.assert_array_equal(demo.observations, demo.states)


@pytest.mark.parametrize("boundary_width", [0.0, 1.0])
def test_clean_from_the_edges_of_the_band_and_the_boundary(boundary_width):
    expert = BifurcationExpert(boundary_width=boundary_width, input_noise_std=0.1)
    for y0 in EDGE_STARTS:
        for seed in range(3):
            demo = expert.demonstrate(seed, initial_state=np.array([0.0, y0, 0.0, 0.0]))
            check_clean(demo)


def test_the_coin_decides_inside_the_band_reproducibly_per_seed():
    expert = BifurcationExpert(boundary_width=0.4)
    start = np.array([0.0, 0.1, 0.0, 0.0])  # inside the band, above the boundary
    modes = [expert.demonstrate(s, initial_state=start).attrs["mode"] for s in range(20)]
    assert set(modes) == {"left", "right"}  # the coin, not the sign, decides
    again = [expert.demonstrate(s, initial_state=start).attrs["mode"] for s in range(20)]
    assert modes == again
    # outside the band the sign decides whatever the coin says
    outside = [
        expert.demonstrate(s, initial_state=np.array([0.0, -0.3, 0, 0])).attrs for s in range(10)
    ]
    assert all(a["mode"] == "right" and not a["by_coin"] for a in outside)
    # exactly on the boundary the coin decides even with boundary_width 0
    zero = BifurcationExpert()
    on = [zero.demonstrate(s, initial_state=np.zeros(4)).attrs for s in range(20)]
    assert {a["mode"] for a in on} == {"left", "right"} and all(a["by_coin"] for a in on)


def test_demonstrations_are_deterministic_given_the_seed():
    expert = BifurcationExpert(input_noise_std=0.2)
    first, second = expert.demonstrate(7), expert.demonstrate(7)
    np.testing.assert_array_equal(first.actions, second.actions)
    assert not np.array_equal(first.actions, expert.demonstrate(8).actions)


def test_the_reference_arrives_at_rest_within_the_acceleration_budget(expert):
    assert expert.arrival_time == pytest.approx(6.2)
    for y0 in (-0.5, 0.5):
        for mode in ("left", "right"):
            states, feedforward = expert.reference(np.array([0.0, y0, 0, 0]), mode)
            assert np.abs(feedforward).max() <= 0.8 + 1e-9
            np.testing.assert_allclose(states[62:], [[4.0, 0.0, 0.0, 0.0]] * 9, atol=1e-12)


def test_side_taken():
    params = BifurcationParams()
    above = np.array([[0.0, 0.0], [1.5, 0.7], [2.5, 0.7], [4.0, 0.0]])
    assert side_taken(above, params) == "left"
    assert side_taken(above * [1, -1], params) == "right"
    assert side_taken(np.array([[0.0, 0.3], [1.0, 0.3]]), params) == "none"


def test_non_default_params_are_recorded_for_synthesis():
    expert = make_expert(ENV_ID, {"start_width": 0.3, "goal": [4.5, 0.0]})
    demo = expert.demonstrate(0, with_primitives=True)
    assert json.loads(demo.attrs["params"])["goal"] == [4.5, 0.0]
    assert demo.success and demo.primitives is not None
    assert "params" not in BifurcationExpert().demonstrate(0).attrs


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"boundary_width": -0.1}, ValueError, "boundary_width must be a finite number >= 0"),
        ({"input_noise_std": "0.1"}, TypeError, "input_noise_std must be a number"),
        ({"accel_fraction": 1.5}, ValueError, "accel_fraction must be in"),
        ({"arrival_time": 60.0}, ValueError, "takes 60 s to reach the goal"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        BifurcationExpert(**kwargs)


def test_refuses_other_environments():
    with pytest.raises(TypeError, match="needs a BifurcationEnv"):
        BifurcationExpert("hint_envs/PlanarQuadrotor-v0")
    gym.make(ENV_ID).close()
