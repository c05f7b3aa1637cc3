"""DDPMChunkingPolicy: spaces, predict shapes and dtypes, seeding, the sampler against
diffusers, the denoisers' fast paths, and SB3's evaluate_policy on the chunk-level env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from policy_testing import ENV_ID, make_chunk_env, make_dataset, make_policy, tiny_config
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from hint_envs.wrappers import ReplicaNoiseWrapper
from policies.ddpm import COMPILE_OPTIONS, DDPMChunkingPolicy
from policies.networks import (
    TAPS_MIN_BATCH,
    ConditionalUnet1D,
    MLPDenoiser,
    _Conv1d,
    count_parameters,
    mish,
    winograd_matrices,
    winograd_plan,
)
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


# ---------------------------------------------------------------- denoisers
def test_fast_mish_matches_torch():
    from policies.networks import _FUSED_MISH_BELOW

    x = torch.linspace(-120, 120, 4 * _FUSED_MISH_BELOW + 1)  # large: the closed form
    x[:3] = torch.tensor([-1e30, 1e30, 0.0])  # e^x and n overflow, or vanish
    torch.testing.assert_close(mish(x), F.mish(x), atol=1e-5, rtol=1e-5)
    small = x[:: 2 * _FUSED_MISH_BELOW]  # torch's kernel
    torch.testing.assert_close(mish(small), F.mish(small), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("denoiser", ["mlp", "unet1d"])
def test_precomputed_films_equal_the_plain_forward(denoiser):
    torch.manual_seed(0)
    if denoiser == "mlp":
        net = MLPDenoiser(20, 12, 16, widths=(64, 64), step_embed_dim=16)
    else:
        net = ConditionalUnet1D(20, 12, 16, down_dims=(16, 32, 64), n_groups=4, step_embed_dim=16)
    x, cond = torch.randn(3, 16, 20), torch.randn(3, 12)
    t = torch.tensor([4, 4, 4])
    plain = net(x, t, cond)
    with torch.inference_mode():
        film = net.obs_films(cond) + net.step_films(torch.tensor([9, 4]))[1]
        fast = net.denoise(x, film)
    assert plain.shape == (3, 16, 20)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("batch", [2, TAPS_MIN_BATCH + 1])  # im2col and per-tap GEMMs
def test_unet_equals_a_reference_built_from_torch_convolutions(batch):
    """The time-major GEMM convolutions, group norm and U-Net wiring against torch's
    F.conv1d / F.group_norm / F.conv_transpose1d on (B, C, T)."""
    torch.manual_seed(0)
    net = ConditionalUnet1D(20, 12, 16, down_dims=(16, 32, 64), n_groups=4, kernel_size=5)

    def block(b, x):
        return F.mish(
            F.group_norm(
                F.conv1d(x, b.conv.weight, b.conv.bias, padding=2), 4, b.norm.weight, b.norm.bias
            )
        )

    def res(r, x, film):
        scale, bias = film.view(x.shape[0], 2, -1, 1).unbind(1)
        h = block(r.block2, scale * block(r.block1, x) + bias)
        skip = (
            x
            if isinstance(r.residual, torch.nn.Identity)
            else F.conv1d(x, r.residual.weight, r.residual.bias)
        )
        return h + skip

    x, cond = torch.randn(batch, 16, 20), torch.randn(batch, 12)
    t = torch.arange(batch) * 7
    films = iter((net.obs_films(cond) + net.step_films(t)).split(net.film_sizes, dim=-1))
    h, skips = x.transpose(1, 2), []
    for r1, r2, down in net.down:
        h = res(r2, res(r1, h, next(films)), next(films))
        skips.append(h)
        if not isinstance(down, torch.nn.Identity):
            h = F.conv1d(h, down.weight, down.bias, stride=2, padding=1)
    for r in net.mid:
        h = res(r, h, next(films))
    for r1, r2, up in net.up:
        h = torch.cat([h, skips.pop()], dim=1)
        h = res(r2, res(r1, h, next(films)), next(films))
        h = F.conv_transpose1d(h, up.weight, up.bias, stride=2, padding=1)
    h = F.conv1d(block(net.final_block, h), net.final_conv.weight, net.final_conv.bias)
    torch.testing.assert_close(net(x, t, cond), h.transpose(1, 2), atol=1e-4, rtol=1e-4)
    with torch.inference_mode():  # the cached tap weights give the same
        torch.testing.assert_close(net(x, t, cond), h.transpose(1, 2), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("k", [3, 5])
def test_winograd_matrices_compute_the_correlation(k):
    at, g, bt = winograd_matrices(4, k)
    d, w = torch.randn(4 + k - 1, dtype=torch.float64), torch.randn(k, dtype=torch.float64)
    direct = torch.stack([(w * d[i : i + k]).sum() for i in range(4)])
    torch.testing.assert_close(at @ ((g @ w) * (bt @ d)), direct, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("k", [3, 5])
def test_one_tile_plan_computes_the_same_length_convolution(k):
    """A 4-step sequence is one tile; for k = 5 the transposed problem takes 7 products."""
    at, g, dt = winograd_plan(4, k, single_tile=True)
    assert at.shape[1] == (7 if k == 5 else 4 + k - 1)
    x, w = torch.randn(4, dtype=torch.float64), torch.randn(k, dtype=torch.float64)
    direct = F.conv1d(x.view(1, 1, 4), w.view(1, 1, k), padding=k // 2).view(4)
    torch.testing.assert_close(at @ ((g @ w) * (dt @ x)), direct, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("length", [4, 8, 16])
def test_winograd_convolution_equals_torch_and_follows_weight_changes(length):
    torch.manual_seed(0)
    conv = _Conv1d(24, 40, 5, padding=2)
    x = torch.randn(length, TAPS_MIN_BATCH + 1, 24)

    def reference():
        return F.conv1d(x.permute(1, 2, 0), conv.weight, conv.bias, padding=2).permute(2, 0, 1)

    with torch.inference_mode():
        y = conv(x)
    cache = "_winograd_single_cache" if length == 4 else "_winograd_cache"
    assert getattr(conv, cache) is not None  # this call took the Winograd path
    assert getattr(conv, cache)[0].shape[1] == (7 if length == 4 else 8)  # products per tile
    torch.testing.assert_close(y, reference(), atol=2e-5, rtol=1e-5)
    with torch.no_grad():
        conv.weight.mul_(-0.5)  # an optimiser step or EMA update: the cached transform goes
    with torch.inference_mode():
        torch.testing.assert_close(conv(x), reference(), atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("length", [4, 8, 16])
def test_winograd_pointwise_transforms_equal_torch(length):
    """The compiled graph's Winograd (transforms as sums of slices) run eagerly."""
    torch.manual_seed(0)
    conv = _Conv1d(24, 40, 5, padding=2)
    x = torch.randn(length, TAPS_MIN_BATCH, 24)
    with torch.inference_mode():
        conv.prepare_inference()
        y = conv._winograd_pointwise(x, 2)
    reference = F.conv1d(x.permute(1, 2, 0), conv.weight, conv.bias, padding=2).permute(2, 0, 1)
    torch.testing.assert_close(y, reference, atol=2e-5, rtol=1e-5)


def test_kernels_beyond_winograd_points_use_the_taps():
    conv = _Conv1d(8, 8, 7, padding=3)
    x = torch.randn(8, TAPS_MIN_BATCH, 8)
    with torch.inference_mode():
        y = conv(x)
    assert getattr(conv, "_winograd_cache", None) is None
    reference = F.conv1d(x.permute(1, 2, 0), conv.weight, conv.bias, padding=3).permute(2, 0, 1)
    torch.testing.assert_close(y, reference, atol=2e-5, rtol=1e-5)


def test_unet_gradients_agree_between_the_convolution_schemes(monkeypatch):
    """Training at batch >= TAPS_MIN_BATCH backpropagates through the in-place tap GEMMs."""
    torch.manual_seed(0)
    net = ConditionalUnet1D(20, 12, 16, down_dims=(16, 32, 64), n_groups=4)
    x, cond, t = torch.randn(9, 16, 20), torch.randn(9, 12), torch.arange(9)

    def grads():
        net.zero_grad()
        net(x, t, cond).square().sum().backward()
        return [p.grad.clone() for p in net.parameters()]

    taps = grads()
    monkeypatch.setattr("policies.networks.TAPS_MIN_BATCH", 10)
    for a, b in zip(taps, grads(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_unet_of_the_hint_paper_size():
    net = ConditionalUnet1D(20, 12, 16, down_dims=(64, 128, 256), kernel_size=5, n_groups=8)
    assert 4.0e6 < count_parameters(net) < 4.6e6  # the paper's ~4.2 M


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


def test_compiled_body_serves_every_batch_after_refreshing_caches(demos, monkeypatch):
    """compile_sampler() routes every batch through the compiled body, and the weight
    caches it reads are refreshed once per chunk (checked without compiling)."""
    policy = make_policy(demos, tiny_config(denoiser="unet1d"))
    calls, prepared = [], []

    def fake_compile(body, **kwargs):
        def compiled(*args):
            calls.append(args[0].shape[0])
            return body(*args)

        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    denoiser = policy.inference_denoiser
    monkeypatch.setattr(denoiser, "prepare_inference", lambda: prepared.append(True))
    policy.compile_sampler()
    obs = make_chunk_env(policy.config).reset(seed=0)[0]
    steps = policy.config.num_inference_steps
    for batch in (1, TAPS_MIN_BATCH, 3 * TAPS_MIN_BATCH):
        policy.predict(np.stack([obs] * batch))
    assert calls == [1] * steps + [TAPS_MIN_BATCH] * steps + [3 * TAPS_MIN_BATCH] * steps
    assert len(prepared) == 3


def test_compile_sampler_passes_its_inductor_options_unless_told_otherwise(demos, monkeypatch):
    """COMPILE_OPTIONS reach torch.compile; the caller's options win; with a mode, none."""
    policy = make_policy(demos, tiny_config(denoiser="unet1d"))
    seen = []
    monkeypatch.setattr(torch, "compile", lambda body, **kwargs: seen.append(kwargs) or body)
    policy.compile_sampler()
    policy.compile_sampler(options={"realize_opcount_threshold": 3, "size_asserts": False})
    policy.compile_sampler(mode="max-autotune", dynamic=True)
    assert seen[0] == {"dynamic": False, "options": COMPILE_OPTIONS}
    assert seen[1]["options"] == {"realize_opcount_threshold": 3, "size_asserts": False}
    assert seen[2] == {"mode": "max-autotune", "dynamic": True}


@pytest.mark.slow
def test_compiled_sampler_agrees_with_eager(demos):
    """Batch 1 (im2col) and batch 8 (Winograd with fused transforms), also after the
    weights change under the compiled graph."""
    policy = make_policy(demos, tiny_config(denoiser="unet1d", kernel_size=5))
    obs = make_chunk_env(policy.config).reset(seed=0)[0]
    batch = np.stack([obs + 0.01 * i for i in range(TAPS_MIN_BATCH)])
    eager = [policy.predict(o, deterministic=True)[0] for o in (obs, batch)]
    policy.compile_sampler()
    for o, expected in zip((obs, batch), eager, strict=True):
        np.testing.assert_allclose(policy.predict(o, deterministic=True)[0], expected, atol=1e-4)
    with torch.no_grad():
        for p in policy.inference_denoiser.parameters():
            p.mul_(0.9)
    compiled = policy.predict(batch, deterministic=True)[0]
    policy._compiled_body = None
    np.testing.assert_allclose(compiled, policy.predict(batch, deterministic=True)[0], atol=1e-4)
    assert not np.allclose(compiled, eager[1], atol=1e-4)  # the change did reach the graph
