"""The baselines MLPBCPolicy and DiffusionBCPolicy: configs, training (loss falls, seeds
reproduce), DBC's diffusion-model loss, predict, SB3's evaluate_policy, save/load, and the
leaderboard's mlp_bc / diffusion_bc trainers."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from policy_testing import ENV_ID, make_chunk_env, make_dataset
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from hint_envs.data.hdf5 import write_demonstrations
from policies.baselines import DiffusionBCPolicy, MLPBCPolicy, train_diffusion_bc, train_mlp_bc
from policies.config import DiffusionBCConfig, MLPBCConfig, TrainConfig
from policies.ddpm import DDPMChunkingPolicy
from policies.serialization import load_policy, save_policy
from policies.step_adapter import StepLevelPolicy

REPO = Path(__file__).resolve().parents[2]
FAST = TrainConfig(steps=60, batch_size=64, lr=3e-3, warmup_steps=5, log_every=10, num_threads=1)
TINY = dict(obs_horizon=2, horizon=8, chunk_length=4, widths=(64, 64))
TINY_DM = dict(diffusion_widths=(192, 192), step_embed_dim=16, diffusion_steps=20)


def mlp_config(**overrides) -> MLPBCConfig:
    return MLPBCConfig(**{**TINY, **overrides})


def dbc_config(**overrides) -> DiffusionBCConfig:
    return DiffusionBCConfig(**{**TINY, **TINY_DM, **overrides})


TRAINERS = {"mlp_bc": (mlp_config, train_mlp_bc), "diffusion_bc": (dbc_config, train_diffusion_bc)}


def _train(demos, name, steps=60, seed=0, **overrides):
    make_config, train = TRAINERS[name]
    config = make_config(**overrides)
    settings = TrainConfig(**{**FAST.to_dict(), "steps": steps})
    return train(make_dataset(demos, config), config, settings, seed=seed, progress=False)


@pytest.fixture(scope="module")
def trained(demos):
    """One trained policy of each kind (module-wide: the tests below only read them)."""
    return {name: _train(demos, name, steps=150) for name in TRAINERS}


@pytest.fixture(params=list(TRAINERS))
def policy(request, trained):
    return trained[request.param]


def _observations(config, n=3):
    env = make_chunk_env(config)
    return np.stack([env.reset(seed=s)[0] for s in range(n)])


# ---------------------------------------------------------------- configs
@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (MLPBCConfig, dict(chunk_length=17, horizon=16), r"chunk_length \(executed .*, 17\)"),
        (MLPBCConfig, dict(obs_horizon=0), "obs_horizon must be a positive integer, got 0"),
        (MLPBCConfig, dict(horizon=2.5), "horizon must be a positive integer, got 2.5"),
        (MLPBCConfig, dict(widths=()), "widths must not be empty"),
        (MLPBCConfig, dict(widths=(64, 0)), "every entry of widths must be a positive integer"),
        (MLPBCConfig, dict(sigma=-0.1), r"sigma must be a finite number >= 0, got -0.1"),
        (MLPBCConfig, dict(n_aug=0), "n_aug must be a positive integer, got 0"),
        (DiffusionBCConfig, dict(dm_weight=-1.0), r"dm_weight \(lambda\) must be >= 0.0"),
        (DiffusionBCConfig, dict(dm_weight=float("nan")), "dm_weight .* must be a finite"),
        (DiffusionBCConfig, dict(expert_normalization=1), "expert_normalization must be True"),
        (DiffusionBCConfig, dict(diffusion_widths=[]), "diffusion_widths must not be empty"),
        (DiffusionBCConfig, dict(step_embed_dim=15), "step_embed_dim must be even"),
        (DiffusionBCConfig, dict(diffusion_steps=0), "diffusion_steps must be a positive"),
        (DiffusionBCConfig, dict(beta_schedule="cosine"), "unknown beta_schedule 'cosine'"),
        (DiffusionBCConfig, dict(diffusion_train_steps=0), "diffusion_train_steps must be"),
        (DiffusionBCConfig, dict(chunk_length=9, horizon=8), r"must be <= horizon"),
    ],
)
def test_configs_reject_bad_values(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MLPBCConfig, DiffusionBCConfig])
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(gains="False"), r"gains must be True or False, got 'False' \(str\)"),
        (dict(sigma="0.1"), r"sigma must be a real number >= 0 .*got '0.1' \(str\)"),
    ],
)
def test_configs_reject_wrong_types(cls, kwargs, message):
    with pytest.raises(TypeError, match=message):
        cls(**kwargs)


@pytest.mark.parametrize("cls", [MLPBCConfig, DiffusionBCConfig])
def test_configs_round_trip_through_json_and_reject_unknown_keys(cls):
    config = cls(widths=[32, 16], gains=False, sigma=0.05)
    assert config.widths == (32, 16)
    again = cls.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match=rf"unknown {cls.__name__} fields \['lr'\]"):
        cls.from_dict({**config.to_dict(), "lr": 1e-3})


def test_policies_check_their_config_class_and_spaces(demos):
    config = mlp_config()
    data = make_dataset(demos, config)
    env = make_chunk_env(config)
    with pytest.raises(TypeError, match="config must be a MLPBCConfig, got DiffusionBCConfig"):
        MLPBCPolicy(env.observation_space, env.action_space, dbc_config(), data.stats)
    with pytest.raises(TypeError, match="config must be a DiffusionBCConfig, got MLPBCConfig"):
        DiffusionBCPolicy(env.observation_space, env.action_space, config, data.stats)
    other = make_chunk_env(mlp_config(gains=False))
    with pytest.raises(ValueError, match=r"action space shape \(8,\) .* expected \(80,\)"):
        MLPBCPolicy(other.observation_space, other.action_space, config, data.stats)
    with pytest.raises(TypeError, match="config must be a MLPBCConfig"):
        train_mlp_bc(data, dbc_config(), FAST, progress=False)
    with pytest.raises(ValueError, match="dataset gains=True but config.gains=False"):
        train_diffusion_bc(data, dbc_config(gains=False), FAST, progress=False)


# ---------------------------------------------------------------- training
def test_mlp_bc_loss_falls(trained):
    history = trained["mlp_bc"].train_history
    assert [e["step"] for e in history] == list(range(10, 151, 10))
    assert set(history[0]) == {"step", "loss", "lr"}
    assert history[-1]["loss"] < 0.3 * history[0]["loss"]
    assert not trained["mlp_bc"].training


def test_diffusion_bc_trains_the_diffusion_model_then_the_policy(trained):
    policy = trained["diffusion_bc"]
    diffusion, history = policy.diffusion_history, policy.train_history
    assert len(diffusion) == len(history) == 15  # diffusion_train_steps None: the same steps
    assert diffusion[-1]["loss"] < 0.6 * diffusion[0]["loss"]
    assert history[-1]["bc_loss"] < 0.3 * history[0]["bc_loss"]
    for entry in history:
        weighted = entry["bc_loss"] + policy.config.dm_weight * entry["dm_loss"]
        assert entry["loss"] == pytest.approx(weighted, rel=1e-6)
        assert entry["dm_loss"] >= 0.0
    assert not any(p.requires_grad for p in policy.diffusion.parameters())  # frozen


@pytest.mark.parametrize("name", list(TRAINERS))
def test_training_is_deterministic_for_a_seed(demos, name):
    overrides = dict(sigma=0.1, n_aug=2)
    if name == "diffusion_bc":
        overrides["diffusion_train_steps"] = 20
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    first = _train(demos, name, steps=30, seed=3, **overrides)
    torch.testing.assert_close(torch.rand(3), expected)  # the global generator is left alone
    second = _train(demos, name, steps=30, seed=3, **overrides)
    other = _train(demos, name, steps=30, seed=4, **overrides)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert first.train_history == second.train_history
    assert not torch.equal(first.mlp[0].weight, other.mlp[0].weight)


def test_out_dir_gets_the_policy_checkpoints_and_both_histories(demos, tmp_path):
    config = dbc_config(diffusion_train_steps=10)
    settings = TrainConfig(**{**FAST.to_dict(), "steps": 20, "checkpoint_every": 10})
    run = tmp_path / "run"
    policy = train_diffusion_bc(
        make_dataset(demos, config), config, settings, out_dir=run, seed=1, progress=False
    )
    assert (run / "checkpoints" / "step_0000010" / "model.safetensors").is_file()
    log = json.loads((run / "training.json").read_text())
    assert log["seed"] == 1 and log["policy_config"] == config.to_dict()
    assert log["history"] == policy.train_history
    assert log["diffusion_history"] == policy.diffusion_history
    assert [e["step"] for e in log["diffusion_history"]] == [10]
    assert isinstance(load_policy(run), DiffusionBCPolicy)


# ---------------------------------------------------------------- DBC's L_DM
def _expert_batch(policy, demos, n=48):
    data = make_dataset(demos, policy.config)
    obs = policy.normalize_obs(torch.as_tensor(data.observations[:n]))
    action = policy.normalize_action(torch.as_tensor(data.actions[:n]))
    return obs, action


def test_dm_loss_is_zero_for_the_expert_action_and_positive_otherwise(trained, demos):
    policy = trained["diffusion_bc"]
    obs, expert = _expert_batch(policy, demos)
    t, noise = policy.draw_diffusion_noise(len(obs), torch.Generator().manual_seed(0))
    # the policy outputting exactly the expert action, with gradients as in training
    same = expert.clone().requires_grad_(True)
    assert policy.dm_loss(obs, same, expert, t, noise).item() == 0.0

    off = expert + 0.5 * torch.randn(expert.shape, generator=torch.Generator().manual_seed(1))
    agent = policy.denoising_losses(obs, off, t, noise)
    expert_losses = policy.denoising_losses(obs, expert, t, noise)
    assert agent.mean() > expert_losses.mean()  # the trained model tells them apart
    dm = policy.dm_loss(obs, off, expert, t, noise)
    assert dm.item() > 0.0
    torch.testing.assert_close(dm, torch.relu(agent - expert_losses).mean())

    # roles swapped: the mean difference is negative, but L_DM clips each pair at 0
    swapped = policy.dm_loss(obs, expert, off, t, noise)
    assert (expert_losses - agent).mean() < 0 <= swapped.item()
    assert swapped.item() < dm.item()
    torch.testing.assert_close(swapped, torch.relu(expert_losses - agent).mean())


def test_dm_loss_gradient_reaches_the_action_only(trained, demos):
    policy = trained["diffusion_bc"]
    obs, expert = _expert_batch(policy, demos, n=16)
    t, noise = policy.draw_diffusion_noise(len(obs), torch.Generator().manual_seed(2))
    action = (expert + 0.5).requires_grad_(True)
    policy.dm_loss(obs, action, expert, t, noise).backward()
    assert action.grad is not None and action.grad.abs().sum() > 0
    assert all(p.grad is None for p in policy.diffusion.parameters())


def test_dm_loss_without_expert_normalization_is_the_policy_denoising_loss(trained, demos):
    policy = trained["diffusion_bc"]
    obs, expert = _expert_batch(policy, demos, n=16)
    t, noise = policy.draw_diffusion_noise(len(obs), torch.Generator().manual_seed(3))
    config = policy.config
    try:
        policy.config = dataclasses.replace(config, expert_normalization=False)
        plain = policy.dm_loss(obs, expert, expert, t, noise)
    finally:
        policy.config = config
    torch.testing.assert_close(plain, policy.denoising_losses(obs, expert, t, noise).mean())
    assert plain.item() > 0.0


def test_dbc_loss_shares_steps_and_noise_between_the_two_terms(trained, demos):
    policy = trained["diffusion_bc"]
    obs, expert = _expert_batch(policy, demos, n=16)
    total, bc, dm = policy.dbc_loss(obs, expert, torch.Generator().manual_seed(4))
    t, noise = policy.draw_diffusion_noise(len(obs), torch.Generator().manual_seed(4))
    predicted = policy.normalized_chunk(obs)
    torch.testing.assert_close(bc, torch.nn.functional.mse_loss(predicted, expert))
    torch.testing.assert_close(dm, policy.dm_loss(obs, predicted, expert, t, noise))
    torch.testing.assert_close(total, bc + policy.config.dm_weight * dm)


# ---------------------------------------------------------------- predict
def test_predict_shapes_dtypes_and_bounds(policy):
    env = make_chunk_env(policy.config)
    obs, _ = env.reset(seed=0)
    action, state = policy.predict(obs)
    assert state is None and action.shape == env.action_space.shape == (80,)
    assert env.action_space.contains(action)
    batch = _observations(policy.config)
    actions, _ = policy.predict(batch)
    assert actions.shape == (3, 80) and actions.dtype == np.float64
    chunk = policy.action_chunk(batch).numpy()
    assert chunk.shape == (3, policy.config.horizon, policy.controller_size)
    low, high = env.action_space.low, env.action_space.high
    np.testing.assert_array_equal(actions, np.clip(chunk[:, :4].reshape(3, -1), low, high))
    single, _ = policy.predict(batch[1])  # one chunk: the same, to float32 rounding
    np.testing.assert_allclose(single, actions[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(actions, policy.predict(batch, deterministic=True)[0])
    a32, _ = policy.predict(batch.astype(np.float32))
    np.testing.assert_allclose(a32, actions, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"observation batch must have shape \(B, 2, 6\)"):
        policy.action_chunk(np.zeros((3, 4, 6)))


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_predict_clips_to_the_action_box(demos, sign):
    config = mlp_config(gains=False)
    data = make_dataset(demos, config)
    env = make_chunk_env(config)
    policy = MLPBCPolicy(env.observation_space, env.action_space, config, data.stats)
    with torch.no_grad():
        policy.mlp[-1].bias.fill_(sign * 1e4)
    actions, _ = policy.predict(_observations(config))
    bound = env.action_space.high if sign > 0 else env.action_space.low
    np.testing.assert_array_equal(actions, np.broadcast_to(bound, actions.shape))


def test_evaluate_policy_on_the_chunk_env(policy):
    env = Monitor(make_chunk_env(policy.config))
    env.reset(seed=0)
    rewards, lengths = evaluate_policy(policy, env, n_eval_episodes=2, return_episode_rewards=True)
    assert len(rewards) == 2 and all(np.isfinite(rewards)) and all(n >= 1 for n in lengths)
    venv = DummyVecEnv([lambda: Monitor(make_chunk_env(policy.config)) for _ in range(2)])
    venv.seed(0)
    mean, std = evaluate_policy(policy, venv, n_eval_episodes=2)
    assert np.isfinite(mean) and np.isfinite(std)


def test_step_level_adapter_drives_the_unwrapped_env(policy):
    import gymnasium as gym

    env = gym.make(ENV_ID)
    adapter = StepLevelPolicy(policy, env.unwrapped.control_indices, env.action_space)
    obs, _ = env.reset(seed=0)
    u, _ = adapter.predict(obs, episode_start=np.array([True]))
    assert u.shape == (2,) and env.action_space.contains(u)
    np.testing.assert_array_equal(adapter.queue_lengths, [policy.config.chunk_length - 1])


# ---------------------------------------------------------------- save / load
def test_reload_gives_bit_identical_actions(policy, tmp_path):
    directory = save_policy(policy, tmp_path / "p")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    saved = json.loads((directory / "config.json").read_text())
    name = type(policy).__name__
    assert saved["policy_class"] == name and saved["format"] == f"policies.{name}/1"
    assert saved["hint_envs_version"] and saved["policy_config"] == policy.config.to_dict()
    assert not (directory / "model.safetensors").read_bytes().startswith((b"\x80", b"PK"))

    loaded = load_policy(directory, env=make_chunk_env(policy.config))
    assert type(loaded) is type(policy) and loaded.config == policy.config
    assert loaded.observation_space == policy.observation_space
    assert loaded.action_space == policy.action_space and loaded.layout == policy.layout
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    obs = _observations(policy.config)
    np.testing.assert_array_equal(policy.predict(obs)[0], loaded.predict(obs)[0])
    again = type(policy).load(str(directory))  # SB3-style, same format
    np.testing.assert_array_equal(policy.predict(obs)[0], again.predict(obs)[0])


def test_load_checks_the_policy_class(trained, tmp_path):
    directory = save_policy(trained["diffusion_bc"], tmp_path / "dbc")
    assert any(k.startswith("diffusion.") for k in load_policy(directory).state_dict())
    assert isinstance(MLPBCPolicy.load(str(directory)), DiffusionBCPolicy)  # a DBC is one
    with pytest.raises(TypeError, match="holds a DiffusionBCPolicy, not a DDPMChunkingPolicy"):
        DDPMChunkingPolicy.load(str(directory))
    mlp = save_policy(trained["mlp_bc"], tmp_path / "mlp")
    with pytest.raises(TypeError, match="holds a MLPBCPolicy, not a DiffusionBCPolicy"):
        DiffusionBCPolicy.load(str(mlp))
    config = json.loads((directory / "config.json").read_text())
    config["policy_class"] = "MLPBCPolicy"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="names policy class 'MLPBCPolicy' but has the format"):
        load_policy(directory)


# ---------------------------------------------------------------- leaderboard
def _leaderboard():
    sys.path.insert(0, str(REPO / "benchmarks"))
    from leaderboard_lib import registry, runs, suite

    return registry, runs, suite


SUITE = """
name = "baselines"
seed = 0

[[env]]
id = "hint_envs/PlanarQuadrotor-v0"
policies = ["mlp_bc", "diffusion_bc"]
sigmas = [0.0, 0.1]
num_demos = [1]
seeds = [0]

[env.mlp_bc]
horizon = 8
chunk_length = 4
widths = [32, 32]

[env.diffusion_bc]
horizon = 8
chunk_length = 4
widths = [32, 32]
diffusion_widths = [64, 64]
step_embed_dim = 16
diffusion_steps = 10
dm_weight = 0.5

[env.train]
steps = 5
batch_size = 16
warmup_steps = 1

[env.eval]
episodes = 1
num_envs = 1
expert = false
"""


def test_a_suite_naming_the_baselines_validates_and_expands(tmp_path):
    registry, _, suite = _leaderboard()
    for name in ("mlp_bc", "diffusion_bc"):
        assert registry.policy_available(name) is None
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    jobs = suite.expand(suite.load_suite(path))
    runs = {run.policy: run for job in jobs for run in job.runs}
    assert len(jobs) == 2 and sorted(runs) == ["diffusion_bc", "mlp_bc"]  # sigma ignored: once
    assert runs["mlp_bc"].model == {**mlp_config(widths=(32, 32)).to_dict()}
    assert runs["diffusion_bc"].model["dm_weight"] == 0.5 and runs["diffusion_bc"].gains

    for bad, message in [
        (("widths = [32, 32]\n", "width = 32\n"), r"\[mlp_bc\]: unknown key 'width'"),
        (("dm_weight = 0.5", "dm_weight = -0.5"), r"\[diffusion_bc\]: dm_weight \(lambda\)"),
        (("dm_weight = 0.5", "sigma = 0.1"), r"\[diffusion_bc\]: unknown key 'sigma'"),
        (('"mlp_bc", "diffusion_bc"', '"diffusion_bc"'), r"\[mlp_bc\] is given but no policy"),
    ]:
        path.write_text(SUITE.replace(*bad, 1))
        with pytest.raises(suite.SuiteError, match=message):
            suite.load_suite(path)


def test_leaderboard_jobs_train_and_evaluate_the_baselines(demos, tmp_path):
    registry, runs_module, suite = _leaderboard()
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    demo_file = write_demonstrations(tmp_path / "demos.hdf5", demos[:1], ENV_ID)
    for job in suite.expand(suite.load_suite(path)):
        (record,) = runs_module.run_job(job, demo_file, threads=1)
        assert record["metrics"]["success"]["count"] == 1
        assert record["training"]["parameters"] > 0 and record["timing"]["train_s"] > 0
        if job.spec.policy == "diffusion_bc":
            assert record["training"]["final_dm_loss"] >= 0
            assert record["training"]["diffusion_parameters"] > 0
