"""The planar quadrotor's offline expert, and the generic iLQR it plans with."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401
from hint_envs.envs.planar_quadrotor import QuadrotorParams
from hint_envs.experts import make_expert
from hint_envs.experts.ilqr import ILQROptions, QuadraticCost, ilqr, rollout
from hint_envs.experts.quadrotor import ObstacleCost, QuadrotorExpert, side_taken
from hint_envs.synthesis.lqr import tvlqr

ENV_ID = "hint_envs/PlanarQuadrotor-v0"
SEEDS = range(20)


@pytest.fixture(scope="module")
def expert():
    return QuadrotorExpert()


@pytest.fixture(scope="module")
def demos(expert):
    return [expert.demonstrate(seed) for seed in SEEDS]


# -- the expert -------------------------------------------------------------------------


def test_most_demonstrations_succeed_and_both_modes_occur(demos):
    success = [d.success for d in demos]
    assert sum(success) >= 19, [d.attrs for d in demos if not d.success]
    modes = [d.attrs["mode"] for d in demos]
    assert set(modes) == {"left", "right"}
    for demo in demos:
        if demo.success:
            assert demo.attrs["side"] == demo.attrs["mode"]  # the plan keeps to its side
            assert demo.attrs["min_clearance"] > 0.0
            assert not demo.attrs["collision"]
    # the side really differs: left demonstrations pass at negative x
    for demo in demos:
        path = demo.states[:, :2]
        at_obstacle = path[np.argmin(np.abs(path[:, 1] - 1.5)), 0]
        assert np.sign(at_obstacle) == (-1 if demo.attrs["mode"] == "left" else 1)


def test_demonstration_arrays_follow_the_contract(demos):
    demo = demos[0]
    T = len(demo)
    assert T == 100  # the whole episode, to truncation
    assert demo.observations.shape == (T, 6) and demo.states.shape == (T, 6)
    assert demo.actions.shape == (T, 2) and demo.rewards.shape == (T,)
    np.testing.assert_array_equal(demo.dones, np.r_[np.zeros(T - 1), 1.0])
    np.testing.assert_array_equal(demo.observations, demo.states)
    space = gym.make(ENV_ID).action_space
    assert np.all(demo.actions >= space.low) and np.all(demo.actions <= space.high)
    assert demo.primitives is None
    json.dumps(demo.attrs)  # JSON-serialisable metadata
    assert demo.attrs["seed"] == 0
    # it ends hovering at the goal
    assert np.linalg.norm(demo.final_state[:2] - [0.0, 3.0]) < 0.05
    assert np.abs(demo.final_state[3:]).max() < 0.1


def test_actions_reproduce_the_states_in_the_env(demos):
    demo = demos[3]
    env = gym.make(ENV_ID)
    obs, _ = env.reset(options={"state": demo.states[0]})
    for t in range(len(demo)):
        np.testing.assert_array_equal(obs, demo.observations[t])
        obs, *_ = env.step(demo.actions[t])
    np.testing.assert_array_equal(obs, demo.final_observation)


def test_same_seed_gives_an_identical_demonstration(expert, demos):
    again = QuadrotorExpert().demonstrate(5)  # a fresh expert, too
    first = demos[5]
    for name in ("observations", "actions", "rewards", "dones", "states", "final_state"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name))
    assert again.attrs == first.attrs
    np.testing.assert_array_equal(expert.demonstrate(5).actions, first.actions)


def test_different_seeds_differ(demos):
    for a, b in zip(demos[:-1], demos[1:], strict=True):
        assert not np.array_equal(a.states[0], b.states[0])
        assert not np.array_equal(a.actions, b.actions)


def test_initial_state_is_the_env_reset_state(demos):
    env = gym.make(ENV_ID)
    for demo in demos[:5]:
        obs, _ = env.reset(seed=demo.attrs["seed"])
        np.testing.assert_array_equal(demo.states[0], obs)


def test_process_noise_makes_demonstrations_stochastic(expert):
    start = np.array([0.1, 0.0, 0.0, 0.0, 0.0, 0.0])
    by_seed = {seed: expert.demonstrate(seed, initial_state=start) for seed in range(6)}
    for demo in by_seed.values():
        np.testing.assert_array_equal(demo.states[0], start)
    same_mode = [d for d in by_seed.values() if d.attrs["mode"] == by_seed[0].attrs["mode"]]
    assert len(same_mode) >= 2
    a, b = same_mode[:2]
    assert not np.array_equal(a.actions, b.actions)  # same start, same plan, other noise
    quiet = QuadrotorExpert(process_noise=0.0)
    nominal = [
        quiet.demonstrate(seed, initial_state=start) for seed in (a.attrs["seed"], b.attrs["seed"])
    ]
    np.testing.assert_array_equal(nominal[0].actions, nominal[1].actions)


def test_with_primitives_synthesises_consistent_controllers(expert):
    demo = expert.demonstrate(7, with_primitives=True)
    assert demo.primitives is not None and len(demo.primitives) == len(demo)
    for t in range(len(demo)):
        np.testing.assert_allclose(
            demo.primitives(demo.states[t], t), demo.actions[t], atol=1e-12, rtol=0
        )


def test_registry_builds_the_expert():
    expert = make_expert(ENV_ID, process_noise=0.01)
    assert isinstance(expert, QuadrotorExpert)
    assert expert.env_id == ENV_ID and expert.process_noise == 0.01


def test_non_default_params_are_used_and_stored():
    params = QuadrotorParams(mass=0.55)
    demo = QuadrotorExpert(params=params).demonstrate(0)
    assert json.loads(demo.attrs["params"])["mass"] == 0.55
    assert demo.success
    assert "params" not in QuadrotorExpert().demonstrate(0).attrs


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="process_noise"):
        QuadrotorExpert(process_noise=-0.1)
    with pytest.raises(TypeError, match="QuadrotorParams"):
        QuadrotorExpert(params={"mass": 1.0})
    with pytest.raises(ValueError, match="mode"):
        QuadrotorExpert().reference_path(np.zeros(6), "up")


def test_side_taken():
    path = np.array([[0.0, 0.0], [-0.4, 1.0], [-0.8, 2.0], [0.0, 3.0]])
    assert side_taken(path, 1.5) == "left"
    assert side_taken(path * [-1, 1], 1.5) == "right"
    assert side_taken(path[:2], 1.5) == "none"


# -- the iLQR it plans with -------------------------------------------------------------


def test_ilqr_on_a_linear_quadratic_problem_finds_the_lqr_optimum():
    rng = np.random.default_rng(0)
    n, m, T = 4, 2, 40
    A = np.eye(n) + 0.1 * rng.standard_normal((n, n))
    B = 0.3 * rng.standard_normal((n, m))
    Q, R, Qf = np.eye(n), 0.1 * np.eye(m), 5 * np.eye(n)
    x0 = rng.standard_normal(n)
    result = ilqr(
        lambda x, u: x @ A.T + u @ B.T,
        lambda x, u: (np.broadcast_to(A, (len(x), n, n)), np.broadcast_to(B, (len(x), n, m))),
        QuadraticCost(Q, R, Qf, np.zeros(n), np.zeros(m)),
        x0,
        np.zeros((T, m)),
        options=ILQROptions(mu_init=1e-10, mu_min=1e-10),  # a Newton step is exact here
    )
    K = tvlqr(np.broadcast_to(A, (T, n, n)), np.broadcast_to(B, (T, n, m)), Q, R, Qf)
    x, optimal = x0, []
    for t in range(T):
        optimal.append(-K[t] @ x)
        x = A @ x + B @ optimal[-1]
    np.testing.assert_allclose(result.inputs, np.asarray(optimal), atol=1e-8)
    assert result.converged and result.iterations <= 3
    np.testing.assert_allclose(
        result.states, rollout(lambda x, u: x @ A.T + u @ B.T, x0, result.inputs), atol=1e-12
    )


def test_ilqr_respects_the_input_box_and_never_raises_the_cost():
    # double integrator pushed far away with a small force limit: the box binds
    dt = 0.1
    A = np.array([[1.0, dt], [0.0, 1.0]])
    B = np.array([[0.5 * dt * dt], [dt]])
    cost = QuadraticCost(
        np.diag([1.0, 0.1]), 0.01 * np.eye(1), 100 * np.eye(2), np.array([5.0, 0.0]), np.zeros(1)
    )
    result = ilqr(
        lambda x, u: x @ A.T + u @ B.T,
        lambda x, u: (np.broadcast_to(A, (len(x), 2, 2)), np.broadcast_to(B, (len(x), 2, 1))),
        cost,
        np.zeros(2),
        np.zeros((50, 1)),
        u_low=[-1.0],
        u_high=[1.0],
        options=ILQROptions(max_iterations=50),
    )
    assert np.all(np.abs(result.inputs) <= 1.0)
    assert np.isclose(np.abs(result.inputs).max(), 1.0)  # the limit is used
    assert np.all(np.diff(result.costs) <= 0)
    assert result.costs[-1] < 0.5 * result.costs[0]
    with pytest.raises(ValueError, match="both u_low and u_high"):
        ilqr(lambda x, u: x, lambda x, u: (x, u), cost, np.zeros(2), np.zeros((3, 1)), u_low=[0])


def test_obstacle_cost_derivatives_match_finite_differences():
    params = QuadrotorParams()
    quadratic = QuadraticCost(
        np.eye(6), np.eye(2), np.eye(6), params.goal_state, params.hover_input
    )
    cost = ObstacleCost(quadratic, np.array([0.0, 1.5]), 0.8, 100.0)
    x = np.array([[0.3, 1.1, 0.1, 0.2, -0.1, 0.0], [1.5, 1.5, 0.0, 0.0, 0.0, 0.0]])
    u = np.array([[4.0, 0.01], [5.0, 0.0]])
    d = cost.running_derivatives(x, u)
    eps = 1e-6
    for i in range(2):
        grad = [
            (cost.running(x[i] + eps * e, u[i]) - cost.running(x[i] - eps * e, u[i])) / (2 * eps)
            for e in np.eye(6)
        ]
        np.testing.assert_allclose(d.lx[i], grad, rtol=1e-6, atol=1e-6)
    assert cost.running(x[:1], u[:1])[0] > quadratic.running(x[:1], u[:1])[0]  # inside
    np.testing.assert_allclose(cost.running(x[1:], u[1:]), quadratic.running(x[1:], u[1:]))
    assert np.all(np.linalg.eigvalsh(d.lxx) >= -1e-12)  # Gauss-Newton: PSD
