"""The analytic learners of the compounding-error example (policies.analytic)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import hint_envs  # noqa: F401  (registers the environments)
from policies.analytic import ConditionalSamplingLearner, MeanParametrisedLearner


def test_mean_learner_is_the_affine_map():
    learner = MeanParametrisedLearner(slope=0.15, offset=0.01)
    action, state = learner.predict(np.array([2.0]))
    assert state is None and action.shape == (1,)
    assert action[0] == pytest.approx(0.31)
    batch, _ = learner.predict(np.array([[0.0], [1.0]]))
    np.testing.assert_allclose(batch, [[0.01], [0.16]])


def test_sampling_learner_has_the_same_mean_and_is_seeded():
    learner = ConditionalSamplingLearner(slope=0.15, offset=0.01, seed=3)
    obs = np.full((20000, 1), 2.0)  # p = 0.3
    actions, _ = learner.predict(obs)
    assert set(np.unique(actions)) == {0.01, 1.01}
    assert actions.mean() == pytest.approx(MeanParametrisedLearner().mean(2.0), abs=0.01)
    again = ConditionalSamplingLearner(slope=0.15, offset=0.01, seed=3).predict(obs)[0]
    np.testing.assert_array_equal(actions, again)
    # on the expert's data (x = 0) it never errs by more than the offset
    zeros, _ = learner.predict(np.zeros((1000, 1)))
    np.testing.assert_array_equal(zeros, 0.01)
    # deterministic: the most likely action
    assert learner.predict(np.array([2.0]), deterministic=True)[0][0] == 0.01
    assert learner.predict(np.array([5.0]), deterministic=True)[0][0] == 1.01


def test_learners_run_in_sb3_evaluate_policy():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    env = make_vec_env(
        "hint_envs/ScalarLinear-v0", n_envs=2, seed=0, env_kwargs={"initial_scale": 0.0}
    )
    mean_return, _ = evaluate_policy(MeanParametrisedLearner(offset=0.01), env, n_eval_episodes=2)
    sampling_return, _ = evaluate_policy(
        ConditionalSamplingLearner(offset=0.01, seed=0), env, n_eval_episodes=2
    )
    # the regression learner drifts away (reward -x^2), the sampling learner mostly does not
    assert mean_return < sampling_return < 0
    env.close()


def test_the_regression_learner_compounds_in_the_env():
    env = gym.make("hint_envs/ScalarLinear-v0", a=0.9, initial_scale=0.0, max_episode_steps=100)
    obs, _ = env.reset(seed=0)
    learner = MeanParametrisedLearner(slope=0.15, offset=0.01)
    states = [obs[0]]
    for _ in range(100):
        obs, *_ = env.step(learner.predict(obs)[0])
        states.append(obs[0])
    t = np.arange(101)
    np.testing.assert_allclose(states, 0.01 / 0.05 * (1.05**t - 1), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bad", [[1.0, 2.0], [[np.nan]], np.zeros((2, 2))])
def test_bad_observations_are_clear_errors(bad):
    with pytest.raises(ValueError, match="observation"):
        MeanParametrisedLearner().predict(np.asarray(bad))


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="finite"):
        MeanParametrisedLearner(slope=float("inf"))
    with pytest.raises(TypeError, match="number"):
        ConditionalSamplingLearner(offset="0.1")
    with pytest.raises(ValueError, match="seed"):
        ConditionalSamplingLearner(seed=-1)
