"""Evaluation over worker processes: the same episodes, whatever the worker count.

A stochastic policy (an untrained DDPM policy sampling with DDPM noise) is the hard case:
its samples come from a generator that :func:`rollout_policy` reseeds per group of
``num_envs`` episodes, so moving groups to other processes must change nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from policy_testing import ENV_ID, make_policy, tiny_config

from hint_envs.evaluation import evaluate, rollout_expert, rollout_policy

SEEDS = [0, 1, 2, 3, 4]


def assert_same(a, b) -> None:
    assert [r.seed for r in a] == [r.seed for r in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.states, y.states)
        np.testing.assert_array_equal(x.inputs, y.inputs)
        assert (x.length, x.success) == (y.length, y.success)


def rollout(policy, config, **kwargs):
    return rollout_policy(
        policy,
        ENV_ID,
        SEEDS,
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
        num_envs=2,
        progress=False,
        **kwargs,
    )


def test_one_and_two_workers_give_identical_episodes(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    one = rollout(policy, config, workers=1)
    two = rollout(policy, config, workers=2)
    assert_same(one, two)
    # the policy is stochastic: another sampler seed gives other episodes ...
    other = rollout(policy, config, workers=1, sample_seed=1)
    assert any(not np.array_equal(x.inputs, y.inputs) for x, y in zip(one, other, strict=True))
    # ... and the same seed the same ones again (the sampler is reseeded per group)
    assert_same(one, rollout(policy, config, workers=1))


def test_evaluate_with_workers_matches_one_process(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    settings = dict(
        seeds=SEEDS[:3],
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
        num_envs=1,
        progress=False,
    )
    one = evaluate(policy, ENV_ID, workers=1, **settings)
    two = evaluate(policy, ENV_ID, workers=2, **settings)
    assert one.episodes == two.episodes
    assert one.metrics == two.metrics
    assert one.expert_metrics == two.expert_metrics


def test_expert_rollouts_with_workers():
    one = rollout_expert(ENV_ID, SEEDS[:3], progress=False)
    two = rollout_expert(ENV_ID, SEEDS[:3], progress=False, workers=2)
    assert_same(one, two)


def test_bad_worker_settings(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    with pytest.raises(ValueError, match="workers"):
        rollout(policy, config, workers=0)
    with pytest.raises(ValueError, match="sample_seed"):
        rollout(policy, config, sample_seed=-1)
    with pytest.raises(ValueError, match="workers"):
        rollout_expert(ENV_ID, [0], workers=True)


class WrongShapePolicy:
    """A policy whose actions have the wrong shape (picklable: defined at module level)."""

    def predict(self, observation, state=None, episode_start=None, deterministic=False):
        return np.zeros((len(observation), 3)), state


def test_an_error_in_a_worker_reaches_the_caller():
    with pytest.raises(ValueError, match="actions of shape"):
        rollout_policy(
            WrongShapePolicy(),
            ENV_ID,
            SEEDS,
            chunk_length=4,
            obs_horizon=2,
            gains=True,
            num_envs=2,
            workers=2,
            progress=False,
        )


def test_evaluate_trained_takes_everything_from_the_policy(demos):
    from policies.evaluation import evaluate_trained

    config = tiny_config(sigma=0.1)
    policy = make_policy(demos, config)
    explicit = evaluate(
        policy,
        ENV_ID,
        seeds=SEEDS[:2],
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
        sigma=0.1,
        noise_scale=np.asarray(policy.noise_scale, dtype=float),
        expert=False,
        progress=False,
    )
    short = evaluate_trained(policy, SEEDS[:2], expert=False, progress=False)
    assert short.episodes == explicit.episodes and short.config == explicit.config
    assert (
        evaluate_trained(policy, SEEDS[:2], sigma=0.0, expert=False, progress=False).config["sigma"]
        == 0.0
    )
