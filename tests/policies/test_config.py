"""DDPMPolicyConfig / TrainConfig: validation messages and JSON round trips."""

from __future__ import annotations

import json

import pytest

from policies.config import DDPMPolicyConfig, TrainConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(chunk_length=17, horizon=16), r"chunk_length \(executed controllers, 17\)"),
        (dict(sigma=-0.1), r"sigma must be a finite number >= 0, got -0.1"),
        (dict(sigma=float("nan")), "sigma must be a finite number"),
        (dict(denoiser="transformer"), r"unknown denoiser 'transformer'"),
        (dict(scheduler="euler"), r"unknown scheduler 'euler'"),
        (dict(obs_horizon=0), "obs_horizon must be a positive integer, got 0"),
        (dict(horizon=2.5), "horizon must be a positive integer, got 2.5"),
        (dict(n_aug=0), "n_aug must be a positive integer, got 0"),
        (dict(widths=()), r"widths must not be empty"),
        (dict(widths=(64, -1)), "every entry of widths must be a positive integer, got -1"),
        (dict(kernel_size=4), "kernel_size must be odd"),
        (dict(n_groups=3, down_dims=(64, 128)), r"n_groups \(3\) must divide"),
        (dict(denoiser="unet1d", horizon=10, chunk_length=8), "multiple of 4"),
        (dict(inference_steps=200, diffusion_steps=100), r"inference_steps \(200\) must be <="),
        (dict(beta_schedule="cosine"), "unknown beta_schedule 'cosine'"),
        (dict(prediction_type="v_prediction"), "unknown prediction_type 'v_prediction'"),
        (dict(ema_max_decay=1.5), "ema_max_decay must be <= 1.0, got 1.5"),
        (dict(step_embed_dim=15), "step_embed_dim must be even"),
    ],
)
def test_policy_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DDPMPolicyConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(gains="yes"), r"gains must be True or False, got 'yes' \(str\)"),
        (dict(gains="False"), r"gains must be True or False, got 'False' \(str\)"),
        (dict(ema=1), r"ema must be True or False, got 1 \(int\)"),
        (dict(sigma="0.1"), r"sigma must be a real number >= 0 .*got '0.1' \(str\)"),
        (dict(sigma=True), r"sigma must be a real number >= 0 .*got True \(bool\)"),
    ],
)
def test_policy_config_rejects_wrong_types(kwargs, message):
    with pytest.raises(TypeError, match=message):
        DDPMPolicyConfig(**kwargs)


def test_policy_config_accepts_numpy_scalars():
    import numpy as np

    config = DDPMPolicyConfig(gains=np.bool_(False), sigma=np.float32(0.25))
    assert config.gains is False and type(config.sigma) is float and config.sigma == 0.25


def test_policy_config_defaults_are_the_cpu_defaults():
    config = DDPMPolicyConfig()
    assert (config.obs_horizon, config.horizon, config.chunk_length) == (2, 16, 8)
    assert config.denoiser == "mlp" and config.widths == (512, 512, 512)
    assert config.down_dims == (64, 128, 256)
    # the CPU recipe (docs/results/recipe.md): clean-chunk prediction, DDIM in 10 steps
    assert config.prediction_type == "sample" and config.scheduler == "ddim"
    assert config.num_inference_steps == 10
    assert DDPMPolicyConfig(scheduler="ddpm").num_inference_steps == 100
    assert DDPMPolicyConfig(scheduler="ddim", inference_steps=5).num_inference_steps == 5


def test_a_config_saved_before_prediction_type_loads_as_epsilon_prediction():
    data = DDPMPolicyConfig(prediction_type="sample").to_dict()
    assert data["prediction_type"] == "sample"
    del data["prediction_type"]  # what config.json files written before the option hold
    assert DDPMPolicyConfig.from_dict(data).prediction_type == "epsilon"


def test_policy_config_json_round_trip():
    config = DDPMPolicyConfig(
        denoiser="unet1d", widths=[32, 32], sigma=0.1, n_aug=4, scheduler="ddim", gains=False
    )
    assert config.widths == (32, 32)  # lists are normalised to tuples
    again = DDPMPolicyConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_policy_config_from_dict_rejects_unknown_keys():
    data = DDPMPolicyConfig().to_dict()
    data["learning_rate"] = 1.0
    with pytest.raises(ValueError, match=r"unknown DDPMPolicyConfig fields \['learning_rate'\]"):
        DDPMPolicyConfig.from_dict(data)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(steps=0), "steps must be a positive integer, got 0"),
        (dict(lr=0.0), "lr must be > 0"),
        (dict(lr=float("inf")), "lr must be a finite number"),
        (dict(betas=(0.9,)), "betas must be two numbers"),
        (dict(warmup_steps=-1), "warmup_steps must be an integer >= 0, got -1"),
        (dict(grad_clip=0.0), "grad_clip must be > 0 or None"),
        (dict(num_threads=0), "num_threads must be a positive integer"),
        (dict(weight_decay=-1e-3), "weight_decay must be >= 0.0"),
        (dict(device="gpu"), "device must be 'cpu', 'cuda' or 'cuda:N', got 'gpu'"),
    ],
)
def test_train_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_train_config_json_round_trip():
    config = TrainConfig(steps=10, batch_size=8, grad_clip=None, resample_noise=True)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
