"""Rollouts and the evaluation protocol on the real quadrotor, expert and wrappers.

The "policy" is a hover LQR (scipy's DARE on the quadrotor's own Jacobians) packed as
composite actions with :class:`CompositeActionLayout`: with gains it is the primitive
controller ``u = u_hover - K_lqr (x - x_goal)`` (it ignores the observation, the feedback
acts on the true state); without gains it holds ``u_hover - K_lqr (o - x_goal)`` over the
chunk, computed from the (possibly noised) observation ``o``.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import scipy.linalg

import hint_envs  # noqa: F401
from hint_envs.core import CompositeActionLayout, Primitives
from hint_envs.envs.planar_quadrotor import QuadrotorParams, dynamics, jacobians
from hint_envs.evaluation import (
    METRIC_NAMES,
    derive_seed,
    evaluate,
    imitation_loss,
    initial_states_for_seeds,
    make_chunk_env,
    rollout_expert,
    rollout_policy,
    trajectory_error,
)
from hint_envs.wrappers.primitive_controller import PrimitiveControllerWrapper
from hint_envs.wrappers.replica_noise import ReplicaNoiseWrapper

ENV_ID = "hint_envs/PlanarQuadrotor-v0"
CHUNK, HORIZON = 4, 2
#: starts beside the obstacle, from which the hover LQR reaches the goal
SIDE_STARTS = np.array([[1.5, 0.0, 0.0, 0.0, 0.0, 0.0], [-1.5, 0.2, 0.0, 0.0, 0.0, 0.0]])


def hover_gain(params: QuadrotorParams) -> np.ndarray:
    """Discrete LQR gain ``K_lqr (2, 6)`` about the goal hover."""
    A, B = jacobians(params.goal_state, params.hover_input, params)
    Q, R = np.diag([10.0, 10.0, 1.0, 1.0, 1.0, 0.1]), np.diag([0.1, 300.0])
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)


class HoverLQRPolicy:
    """SB3-style ``predict`` returning hover-LQR composite actions; records its calls."""

    def __init__(self, gains: bool = True):
        self.params = QuadrotorParams()
        self.K = hover_gain(self.params)
        self.gains = gains
        self.layout = CompositeActionLayout(d_u=2, d_x=6, chunk_length=CHUNK, gains=gains)
        self.batch_sizes: list[int] = []
        self.seen: list[np.ndarray] = []
        self.episode_starts: list[np.ndarray] = []

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        obs = np.asarray(observation)
        assert obs.ndim == 3 and obs.shape[1:] == (HORIZON, 6)
        B = obs.shape[0]
        self.batch_sizes.append(B)
        self.seen.append(obs.copy())
        self.episode_starts.append(np.asarray(episode_start).copy())
        p = self.params
        if self.gains:
            u_bar = np.broadcast_to(p.hover_input, (B, CHUNK, 2))
        else:  # zero-order hold of the LQR input computed from the observation
            u = p.hover_input - (obs[:, -1] - p.goal_state) @ self.K.T
            u_bar = np.repeat(u[:, None], CHUNK, axis=1)
        x_bar = np.broadcast_to(p.goal_state, (B, CHUNK, 6))
        K = np.broadcast_to(-self.K, (B, CHUNK, 2, 6))
        return self.layout.pack(Primitives(u_bar, x_bar, K)), state


def rollout(policy, seeds, **kwargs):
    kwargs.setdefault("num_envs", 3)
    return rollout_policy(
        policy,
        ENV_ID,
        seeds,
        chunk_length=CHUNK,
        obs_horizon=HORIZON,
        gains=policy.gains,
        progress=False,
        **kwargs,
    )


def assert_same_records(a, b):
    assert [r.seed for r in a] == [r.seed for r in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.states, y.states)
        np.testing.assert_array_equal(x.inputs, y.inputs)
        np.testing.assert_array_equal(x.rewards, y.rewards)
        assert (x.length, x.success, x.terminated, x.truncated) == (
            y.length,
            y.success,
            y.terminated,
            y.truncated,
        )


def test_make_chunk_env_stack():
    env = make_chunk_env(ENV_ID, CHUNK, HORIZON, gains=True)
    assert isinstance(env, PrimitiveControllerWrapper)
    noisy = make_chunk_env(ENV_ID, CHUNK, HORIZON, gains=True, sigma=0.1, noise_scale=2.0)
    assert isinstance(noisy, ReplicaNoiseWrapper)
    assert isinstance(noisy.env, PrimitiveControllerWrapper)
    assert noisy.observation_space.shape == (HORIZON, 6)
    with pytest.raises(ValueError, match="sigma"):
        make_chunk_env(ENV_ID, CHUNK, HORIZON, gains=True, sigma=-1.0)


def test_ordered_by_seed_batched_and_independent_of_num_envs():
    seeds = [5, 0, 3, 7, 1]
    starts = np.concatenate([SIDE_STARTS, initial_states_for_seeds(ENV_ID, seeds[2:])])
    one = HoverLQRPolicy()
    records_1 = rollout(one, seeds, initial_states=starts, num_envs=1)
    three = HoverLQRPolicy()
    records_3 = rollout(three, seeds, initial_states=starts, num_envs=3)
    assert_same_records(records_1, records_3)
    assert [r.seed for r in records_3] == seeds
    # one predict call per decision for all running episodes, never one per env
    decisions = sum(r.extra["decisions"] for r in records_3)
    assert sum(three.batch_sizes) == decisions
    assert max(three.batch_sizes) == 3 and len(three.batch_sizes) < decisions
    assert set(one.batch_sizes) == {1}
    # every episode's first decision is flagged, and only that one
    assert sum(int(s.sum()) for s in three.episode_starts) == len(seeds)
    # both outcomes occur: side starts reach the goal, the default starts hit the obstacle
    assert [r.success for r in records_3] == [True, True, False, False, False]
    assert all(r.truncated for r in records_3[:2])
    assert all(r.terminated for r in records_3[2:])


def test_sigma_zero_equals_the_plain_environment():
    """A rollout equals stepping the bare env with the same control law, step by step."""
    seeds = [11, 12]
    starts = [SIDE_STARTS[0], initial_states_for_seeds(ENV_ID, [12])[0]]  # success, crash
    policy = HoverLQRPolicy()
    records = rollout(policy, seeds, initial_states=starts)
    assert [r.success for r in records] == [True, False]
    env = gym.make(ENV_ID)
    p, K = policy.params, policy.K
    for record, seed, start in zip(records, seeds, starts, strict=True):
        obs, _ = env.reset(seed=seed, options={"state": start})
        states, inputs, rewards = [obs], [], []
        while True:
            u = np.clip(p.hover_input - K @ (obs - p.goal_state), p.input_low, p.input_high)
            obs, reward, terminated, truncated, info = env.step(u)
            states.append(obs)
            inputs.append(u)
            rewards.append(reward)
            if terminated or truncated:
                break
        np.testing.assert_allclose(record.states, np.array(states), rtol=0, atol=1e-12)
        np.testing.assert_allclose(record.inputs, np.array(inputs), rtol=0, atol=1e-12)
        np.testing.assert_allclose(record.rewards, rewards, rtol=0, atol=1e-12)
        assert record.episode_return == pytest.approx(sum(rewards))
        assert (record.terminated, record.truncated) == (terminated, truncated)
        assert record.success == info["is_success"]
        np.testing.assert_array_equal(record.initial_state, states[0])


def test_replica_noise_changes_what_the_policy_sees_only():
    seeds = [3]
    scale = np.array([3.0, 3.25, 1.6, 20.0, 20.0, 20.0])
    clean_policy = HoverLQRPolicy(gains=False)
    clean = rollout(clean_policy, seeds, initial_states=SIDE_STARTS[:1])[0]
    noisy_policy = HoverLQRPolicy(gains=False)
    noisy = rollout(
        noisy_policy, seeds, initial_states=SIDE_STARTS[:1], sigma=0.01, noise_scale=scale
    )[0]
    # without noise the policy sees the true state at each decision time
    seen_clean = np.array([obs[0, -1] for obs in clean_policy.seen])
    np.testing.assert_array_equal(seen_clean, clean.states[:-1:CHUNK])
    # with noise it sees the true state plus sigma * scale * N(0, 1)
    seen_noisy = np.array([obs[0, -1] for obs in noisy_policy.seen])
    z = (seen_noisy - noisy.states[:-1:CHUNK][: len(seen_noisy)]) / (0.01 * scale)
    assert np.all(z != 0)
    assert 0.7 < z.std() < 1.3 and abs(z.mean()) < 0.3
    # recorded states are the true ones: they follow the dynamics exactly, final one too
    np.testing.assert_allclose(
        dynamics(noisy.states[:-1], noisy.inputs, QuadrotorParams()), noisy.states[1:], atol=1e-12
    )
    # the start is not noised, the trajectory is (through the inputs), reproducibly
    np.testing.assert_array_equal(noisy.states[0], clean.states[0])
    assert not np.allclose(noisy.states, clean.states[: len(noisy.states)])
    again = rollout(
        HoverLQRPolicy(gains=False),
        seeds,
        initial_states=SIDE_STARTS[:1],
        sigma=0.01,
        noise_scale=scale,
    )[0]
    assert_same_records([noisy], [again])


def test_initial_states_option():
    records = rollout(HoverLQRPolicy(), [0, 0], initial_states=SIDE_STARTS)
    np.testing.assert_array_equal(np.stack([r.states[0] for r in records]), SIDE_STARTS)
    np.testing.assert_array_equal(np.stack([r.initial_state for r in records]), SIDE_STARTS)
    default = rollout(HoverLQRPolicy(), [0])[0]
    np.testing.assert_array_equal(default.states[0], initial_states_for_seeds(ENV_ID, [0])[0])


def test_rollout_input_errors():
    policy = HoverLQRPolicy()
    with pytest.raises(ValueError, match="2 initial states for 1 seeds"):
        rollout(policy, [0], initial_states=SIDE_STARTS)
    with pytest.raises(ValueError, match="num_envs"):
        rollout(policy, [0], num_envs=0)
    with pytest.raises(ValueError, match="non-negative integers"):
        rollout(policy, [0.5])

    class WrongShape(HoverLQRPolicy):
        def predict(self, observation, state=None, episode_start=None, deterministic=False):
            actions, state = super().predict(observation, state, episode_start, deterministic)
            return actions[0], state  # un-batched

    with pytest.raises(ValueError, match="batch of 2 observations"):
        rollout(WrongShape(), [0, 1])


def test_expert_rollouts_start_where_the_seed_says():
    seeds = [4, 9]
    records = rollout_expert(ENV_ID, seeds, progress=False)
    starts = initial_states_for_seeds(ENV_ID, seeds)
    for record, start in zip(records, starts, strict=True):
        assert record.states.shape == (record.length + 1, 6)
        assert record.inputs.shape == (record.length, 2)
        np.testing.assert_array_equal(record.states[0], start)
        assert record.success and record.truncated and not record.terminated
        assert record.extra["mode"] in ("left", "right")
    given = rollout_expert(ENV_ID, [4], initial_states=SIDE_STARTS[:1], progress=False)[0]
    np.testing.assert_array_equal(given.states[0], SIDE_STARTS[0])


def test_evaluate_protocol_and_metrics():
    seeds = [2, 6]
    result = evaluate(
        HoverLQRPolicy(),
        ENV_ID,
        seeds=seeds,
        chunk_length=CHUNK,
        obs_horizon=HORIZON,
        gains=True,
        rollouts_per_state=2,
        eps=0.5,
        num_envs=4,
        progress=False,
    )
    assert set(result.metrics) == set(METRIC_NAMES)
    assert result.metrics["success"]["mean"] == 0.0  # the LQR flies into the obstacle
    assert result.expert_metrics["success"]["mean"] == 1.0
    # rollouts: (seed, j) with derived seeds, both sides from the same initial states
    assert [(e["state_seed"], e["rollout"]) for e in result.episodes] == [
        (2, 0),
        (2, 1),
        (6, 0),
        (6, 1),
    ]
    assert [e["seed"] for e in result.episodes] == [
        derive_seed(s, j) for s in seeds for j in range(2)
    ]
    assert derive_seed(2, 0) == 2 and derive_seed(2, 1) not in (2, derive_seed(6, 1))
    starts = initial_states_for_seeds(ENV_ID, seeds)
    for k, (imitator, expert) in enumerate(zip(result.records, result.expert_records, strict=True)):
        np.testing.assert_array_equal(imitator.states[0], starts[k // 2])
        np.testing.assert_array_equal(expert.states[0], starts[k // 2])
    # the per-episode trajectory error averages over the expert rollouts of the group
    group = result.expert_records[:2]
    expected = np.mean([trajectory_error(result.records[0], e) for e in group])
    assert result.episodes[0]["trajectory_error"] == pytest.approx(expected)
    assert result.metrics["trajectory_error"]["mean"] > 0.5
    # the imitation loss is that of the grouped trajectories
    curve = imitation_loss(
        [[r.states for r in result.expert_records[g : g + 2]] for g in (0, 2)],
        [[r.states for r in result.records[g : g + 2]] for g in (0, 2)],
        eps=0.5,
    )
    loss = result.metrics["imitation_loss"]
    np.testing.assert_allclose(loss["per_step"], curve)
    assert loss["per_step"][0] == 0.0 and loss["max"] == 1.0
    assert loss["mean"] == pytest.approx(curve.mean())
    json.loads(json.dumps(result.to_dict()))
    assert "success" in str(result)


def test_evaluate_without_expert_or_repeats():
    result = evaluate(
        HoverLQRPolicy(),
        ENV_ID,
        seeds=[1],
        chunk_length=CHUNK,
        obs_horizon=HORIZON,
        gains=True,
        expert=False,
        progress=False,
    )
    assert set(result.metrics) == {"success", "return", "max_reward"}
    assert result.expert_records == []
    with pytest.raises(ValueError, match="rollouts_per_state"):
        evaluate(
            HoverLQRPolicy(), ENV_ID, seeds=[1], chunk_length=CHUNK, obs_horizon=HORIZON,
            gains=True, rollouts_per_state=0,
        )  # fmt: skip
    with pytest.raises(ValueError, match="eps"):
        evaluate(
            HoverLQRPolicy(), ENV_ID, seeds=[1], chunk_length=CHUNK, obs_horizon=HORIZON,
            gains=True, eps=0.0,
        )  # fmt: skip
