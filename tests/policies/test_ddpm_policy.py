"""DDPMChunkingPolicy: spaces, predict shapes and dtypes, seeding, the sampler against
diffusers, compile_sampler, and SB3's evaluate_policy on the chunk-level env (the denoisers
themselves: test_networks.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from policy_testing import ENV_ID, make_chunk_env, make_dataset, make_policy, tiny_config
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from hint_envs.wrappers import ReplicaNoiseWrapper
from policies.cpu_inference import TimeMajorUnet1D
from policies.ddpm import DDPMChunkingPolicy
from policies.sampling import DiffusionSampler


@pytest.fixture(params=["mlp", "unet1d"])
def policy(request, demos):
    return make_policy(demos, tiny_config(denoiser=request.param))


# ---------------------------------------------------------------- construction
def test_rejects_observation_space_of_wrong_shape(demos):
    config = tiny_config()
    data = make_dataset(demos, config)
    env = make_chunk_env(tiny_config(obs_horizon=3))
    with pytest.raises(ValueError, match=r"observation space shape \(3, 6\) .* expected \(2, 6\)"):
        DDPMChunkingPolicy(env.observation_space, env.action_space, config, data.stats)


def test_rejects_action_space_without_gains(demos):
    config = tiny_config()
    data = make_dataset(demos, config)
    env = make_chunk_env(tiny_config(gains=False))
    with pytest.raises(ValueError, match=r"action space shape \(8,\) .* expected \(80,\)"):
        DDPMChunkingPolicy(env.observation_space, env.action_space, config, data.stats)


# ---------------------------------------------------------------- predict
def test_predict_shapes_dtypes_and_bounds(policy):
    env = make_chunk_env(policy.config)
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs)
    assert state is None
    assert action.shape == env.action_space.shape == (4 * 20,)
    assert env.action_space.contains(action)
    batch = np.stack([obs, obs + 0.01, obs - 0.01])
    actions, _ = policy.predict(batch)
    assert actions.shape == (3, 80) and actions.dtype == np.float64
    # float32 observations give the same actions as float64 ones (cast inside)
    a64, _ = policy.predict(batch, deterministic=True)
    a32, _ = policy.predict(batch.astype(np.float32), deterministic=True)
    np.testing.assert_allclose(a32, a64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_predict_rejects_non_finite_observations(policy, bad):
    """A NaN observation used to come back as an all-NaN composite action."""
    obs, _ = make_chunk_env(policy.config).reset(seed=0)
    batch = np.stack([obs, obs, obs])
    batch[1, 0, 2] = bad
    with pytest.raises(
        ValueError, match=r"observation batch contains NaN or inf \(batch rows \[1\]\)"
    ):
        policy.predict(batch)
    single = obs.copy()
    single[-1, -1] = bad
    with pytest.raises(ValueError, match=r"contains NaN or inf \(batch rows \[0\]\)"):
        policy.predict(single, deterministic=True)


def test_evaluate_rejects_a_policy_made_for_another_chunk_env_before_any_rollout(
    demos, monkeypatch
):
    """The policy's spaces are checked against the chunk env's (the same check as
    load_policy(dir, env=...)), instead of failing inside the network mid-rollout."""
    from hint_envs.evaluation import evaluate, rollout

    policy = make_policy(demos, tiny_config())  # (2, 6) observations, 4 x 20 actions

    class NoRollouts:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a rollout started")

    monkeypatch.setattr(rollout, "_GroupRunner", NoRollouts)
    common = dict(seeds=[0], expert=False, progress=False)
    with pytest.raises(ValueError, match=r"action space has shape \(40,\) .* \(80,\)"):
        evaluate(policy, ENV_ID, chunk_length=2, obs_horizon=2, gains=True, **common)
    with pytest.raises(ValueError, match=r"observation space has shape \(3, 6\) .* \(2, 6\)"):
        evaluate(policy, ENV_ID, chunk_length=4, obs_horizon=3, gains=True, **common)
    with pytest.raises(ValueError, match=r"action space has shape \(8,\) .* \(80,\)"):
        evaluate(policy, ENV_ID, chunk_length=4, obs_horizon=2, gains=False, **common)
    pytest.importorskip("gym_pusht")
    with pytest.raises(ValueError, match=r"observation space has shape \(2, 5\) .* \(2, 6\)"):
        evaluate(policy, "hint_envs/PushT-v0", chunk_length=4, obs_horizon=2, gains=True, **common)


def test_predict_first_chunk_length_controllers_of_the_sampled_chunk(policy):
    obs, _ = make_chunk_env(policy.config).reset(seed=1)
    chunk = policy.sample_chunk(obs[None], deterministic=True).numpy()
    assert chunk.shape == (1, policy.config.horizon, policy.controller_size)
    action = policy._predict(torch.as_tensor(obs[None]), deterministic=True).numpy()
    np.testing.assert_array_equal(action[0], chunk[0, : policy.config.chunk_length].reshape(-1))


def test_randomness_is_seeded(policy):
    obs = np.repeat(make_chunk_env(policy.config).reset(seed=2)[0][None], 4, axis=0)
    policy.seed(7)
    first, _ = policy.predict(obs)
    policy.seed(7)
    again, _ = policy.predict(obs)
    np.testing.assert_array_equal(first, again)
    other, _ = policy.predict(obs)  # the generator moved on
    assert not np.array_equal(first, other)
    assert not np.array_equal(first[0], first[1])  # rows get their own noise
    det1, _ = policy.predict(obs, deterministic=True)
    policy.seed(123)
    det2, _ = policy.predict(obs, deterministic=True)
    np.testing.assert_array_equal(det1, det2)


def test_noise_scale_is_the_observation_normaliser_half_range(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    expected = make_dataset(demos, config).stats.obs.noise_scale
    np.testing.assert_array_equal(policy.noise_scale, expected)
    assert policy.noise_scale.shape == (6,)


def test_loss_checks_shapes_and_is_differentiable(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    data = make_dataset(demos, config)
    loss = policy.loss(data.observations[:16], data.actions[:16], torch.Generator().manual_seed(0))
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.requires_grad
    with pytest.raises(ValueError, match=r"action batch must have shape \(B, 8, 20\)"):
        policy.loss(data.observations[:16], data.actions[:16, :4])


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
def test_loss_regresses_the_prediction_target(demos, prediction):
    policy = make_policy(demos, tiny_config(prediction_type=prediction))
    data = make_dataset(demos, policy.config)
    obs = policy.normalize_obs(torch.as_tensor(data.observations[:16]))
    action = policy.normalize_action(torch.as_tensor(data.actions[:16]))
    loss = policy.normalized_loss(obs, action, torch.Generator().manual_seed(5))
    generator = torch.Generator().manual_seed(5)  # the same draws, in the same order
    t = torch.randint(0, policy.config.diffusion_steps, (16,), generator=generator)
    noise = torch.randn(action.shape, generator=generator)
    output = policy.denoiser(policy.sampler.add_noise(action, noise, t), t, obs)
    target = noise if prediction == "epsilon" else action
    torch.testing.assert_close(loss, torch.mean((output - target) ** 2))
    other = action if prediction == "epsilon" else noise
    assert not torch.allclose(loss, torch.mean((output - other) ** 2))


def test_ema_follows_diffusion_policy_schedule(demos):
    policy = make_policy(demos, tiny_config())
    with torch.no_grad():
        for p in policy.denoiser.parameters():
            p.add_(1.0)
    assert policy.update_ema() == 0.0  # the first two updates copy the weights
    raw_params = list(policy.denoiser.parameters())
    for raw, ema in zip(raw_params, policy.ema_denoiser.parameters(), strict=True):
        torch.testing.assert_close(raw, ema)
    assert policy.update_ema() == 0.0
    with torch.no_grad():
        before = [p.clone() for p in policy.ema_denoiser.parameters()]
        for p in raw_params:
            p.add_(1.0)
    decay = policy.update_ema()
    assert decay == pytest.approx(1 - 2.0**-0.75)
    for old, raw, ema in zip(before, raw_params, policy.ema_denoiser.parameters(), strict=True):
        torch.testing.assert_close(ema, decay * old + (1 - decay) * raw)


# ---------------------------------------------------------------- sampler
@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
@pytest.mark.parametrize(("kind", "steps"), [("ddpm", 100), ("ddpm", 20), ("ddim", 10)])
def test_sampler_matches_diffusers_step_by_step(kind, steps, prediction):
    sampler = DiffusionSampler(kind, 100, steps, prediction_type=prediction)
    assert sampler.scheduler.config.prediction_type == prediction
    weight = torch.randn(5, 5, generator=torch.Generator().manual_seed(1)) * 0.5

    def model(x, t):  # beyond [-1, 1]: a predicted clean sample gets clipped
        return 1.5 * torch.tanh(x @ weight + t / 100)

    ours = sampler.sample(
        lambda x, i: model(x, float(sampler.timesteps[i])),
        (3, 4, 5),
        torch.Generator().manual_seed(0),
    )
    scheduler = sampler.scheduler
    generator = torch.Generator().manual_seed(0)
    x = torch.randn((3, 4, 5), generator=generator)
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, float(t)), t, x, generator=generator).prev_sample
    torch.testing.assert_close(ours, x, atol=2e-5, rtol=1e-5)
    assert ours.abs().max() <= 1.0  # clip_sample


def test_set_sampler_swaps_the_reverse_process_and_keeps_the_weights(demos):
    policy = make_policy(demos, tiny_config(scheduler="ddpm"))
    obs = np.stack([make_chunk_env(policy.config).reset(seed=s)[0] for s in range(3)])
    before = policy.predict(obs, deterministic=True)[0]
    weights = {k: v.clone() for k, v in policy.state_dict().items()}
    policy.set_sampler("ddim", 4)
    assert policy.config.scheduler == "ddim" and policy.config.num_inference_steps == 4
    assert len(policy.sampler.timesteps) == 4
    after = policy.predict(obs, deterministic=True)[0]
    assert after.shape == before.shape and not np.array_equal(after, before)
    for key, value in policy.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    policy.set_sampler("ddpm")  # back to the full reverse process: the same draw as before
    np.testing.assert_array_equal(policy.predict(obs, deterministic=True)[0], before)
    with pytest.raises(ValueError, match="unknown scheduler 'euler'"):
        policy.set_sampler("euler")
    with pytest.raises(ValueError, match="inference_steps"):
        policy.set_sampler("ddim", 11)
    assert policy.config.scheduler == "ddpm"  # a rejected change leaves the policy as it was


def test_add_noise_matches_diffusers():
    sampler = DiffusionSampler("ddpm", 100, 100)
    g = torch.Generator().manual_seed(0)
    clean, noise = torch.randn(6, 8, 3, generator=g), torch.randn(6, 8, 3, generator=g)
    t = torch.tensor([0, 5, 17, 50, 98, 99])
    torch.testing.assert_close(
        sampler.add_noise(clean, noise, t), sampler.scheduler.add_noise(clean, noise, t)
    )


# ---------------------------------------------------------------- SB3 evaluation
def test_evaluate_policy_on_the_chunk_env(demos):
    config = tiny_config(sigma=0.05)
    policy = make_policy(demos, config)
    env = Monitor(ReplicaNoiseWrapper(make_chunk_env(config), config.sigma, policy.noise_scale))
    env.reset(seed=0)
    rewards, lengths = evaluate_policy(
        policy, env, n_eval_episodes=2, deterministic=False, return_episode_rewards=True
    )
    assert len(rewards) == len(lengths) == 2
    assert all(np.isfinite(rewards)) and all(1 <= n <= 25 for n in lengths)


def test_evaluate_policy_on_a_vector_of_chunk_envs(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    venv = DummyVecEnv([lambda: Monitor(make_chunk_env(config)) for _ in range(3)])
    venv.seed(0)
    mean, std = evaluate_policy(policy, venv, n_eval_episodes=3, deterministic=True)
    assert np.isfinite(mean) and np.isfinite(std)


def test_policy_spaces_equal_the_chunk_env_spaces(demos):
    config = tiny_config()
    policy = make_policy(demos, config)
    env = make_chunk_env(config)
    assert policy.observation_space == env.observation_space
    assert policy.action_space == env.action_space
    assert gym.make(ENV_ID).observation_space.shape == (6,)


def test_compile_sampler_samples_the_cpu_inference_model_at_every_batch(demos, monkeypatch):
    """compile_sampler() routes every batch through the compiled CPU inference model, a copy
    of the policy's weights that samples what the plain model samples (checked without
    compiling); kwargs reach torch.compile; training mode and loads drop it."""
    policy = make_policy(demos, tiny_config(denoiser="unet1d", kernel_size=5))
    obs = make_chunk_env(policy.config).reset(seed=0)[0]
    batches = [np.stack([obs + 0.01 * i for i in range(b)]) for b in (1, 9)]
    plain = [policy.predict(b, deterministic=True)[0] for b in batches]
    calls, seen = [], []

    def fake_compile(body, **kwargs):
        seen.append((body.__self__, kwargs))

        def compiled(*args):
            calls.append(args[0].shape[0])
            return body(*args)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    policy.compile_sampler(mode="max-autotune")
    model, kwargs = seen[0]
    assert kwargs == {"mode": "max-autotune", "dynamic": False}
    assert model is not policy.inference_denoiser
    assert isinstance(model, TimeMajorUnet1D)
    steps = policy.config.num_inference_steps
    for b, expected in zip(batches, plain, strict=True):
        np.testing.assert_allclose(policy.predict(b, deterministic=True)[0], expected, atol=1e-5)
    assert calls == [1] * steps + [9] * steps
    policy.set_training_mode(True)  # as fit() does: the weights are about to change
    policy.set_training_mode(False)
    policy.predict(batches[0], deterministic=True)
    assert calls == [1] * steps + [9] * steps  # eager again
    policy.compile_sampler()
    policy.load_state_dict(policy.state_dict())
    policy.predict(batches[0], deterministic=True)
    assert calls == [1] * steps + [9] * steps


@pytest.mark.slow
def test_compiled_sampler_agrees_with_eager(demos):
    """Batch 1 and batch 8; the compiled sampler is a snapshot of the weights, dropped when
    new weights are loaded."""
    policy = make_policy(demos, tiny_config(denoiser="unet1d", kernel_size=5))
    obs = make_chunk_env(policy.config).reset(seed=0)[0]
    batch = np.stack([obs + 0.01 * i for i in range(8)])
    eager = [policy.predict(o, deterministic=True)[0] for o in (obs, batch)]
    policy.compile_sampler()
    for o, expected in zip((obs, batch), eager, strict=True):
        np.testing.assert_allclose(policy.predict(o, deterministic=True)[0], expected, atol=1e-4)
    state = {k: v * 0.9 if v.is_floating_point() else v for k, v in policy.state_dict().items()}
    policy.load_state_dict(state)
    changed = policy.predict(batch, deterministic=True)[0]
    assert not np.allclose(changed, eager[1], atol=1e-4)
    policy.compile_sampler()
    np.testing.assert_allclose(policy.predict(batch, deterministic=True)[0], changed, atol=1e-4)
