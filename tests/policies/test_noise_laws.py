"""The noise law of a policy: recorded in its config, drawn in training and by hint-eval,
old policies load as Gaussian; and the checkpoint hook of the trainer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from policy_testing import ENV_ID, make_dataset, tiny_config

from hint_envs.data.hdf5 import write_demonstrations
from hint_envs.wrappers import ReplicaNoiseWrapper
from policies import cli
from policies.baselines import MLPBCConfig
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.serialization import load_policy
from policies.training import noised_observations, train

SAVED = Path(__file__).parent / "data" / "policies_0.x"
FAST = TrainConfig(steps=12, batch_size=32, lr=3e-3, warmup_steps=2, log_every=4, num_threads=1)


def test_the_law_is_a_validated_config_field_and_old_configs_mean_gaussian():
    assert DDPMPolicyConfig().noise_law == "gaussian" and MLPBCConfig().noise_law == "gaussian"
    assert DDPMPolicyConfig(sigma=0.1, noise_law="uniform").to_dict()["noise_law"] == "uniform"
    old = DDPMPolicyConfig().to_dict()
    del old["noise_law"]
    assert DDPMPolicyConfig.from_dict(old).noise_law == "gaussian"
    with pytest.raises(ValueError, match="noise_law must be one of"):
        DDPMPolicyConfig(noise_law="normal")
    with pytest.raises(ValueError, match="noise_law must be one of"):
        MLPBCConfig(noise_law=None)


def test_policies_saved_before_the_law_existed_load_as_gaussian():
    for name in ("mlp", "unet1d"):
        assert "noise_law" not in (SAVED / name / "config.json").read_text()
        assert load_policy(SAVED / name).config.noise_law == "gaussian"


def test_training_draws_the_configured_law(demos):
    data = make_dataset(demos, tiny_config())
    scale = data.stats.obs.noise_scale
    rng = np.random.default_rng(0)
    noised = noised_observations(data.observations, 0.2, 4, scale, rng, "uniform")
    eps = (noised.reshape((4,) + data.observations.shape) - data.observations) / (0.2 * scale)
    assert eps.min() >= 0 and eps.max() < 1 and abs(eps.mean() - 0.5) < 0.02
    # the law changes what is learnt
    first = train(data, tiny_config(sigma=0.2, noise_law="uniform"), FAST, progress=False)
    second = train(data, tiny_config(sigma=0.2), FAST, progress=False)
    assert not torch.equal(first.denoiser.output.weight, second.denoiser.output.weight)


def _noise_seen_at_test_time(monkeypatch, argv):
    """Run hint-eval with ``argv``; the replica noise every observation got, in units of
    sigma * scale."""
    seen = []
    observation = ReplicaNoiseWrapper.observation

    def spy(self, clean):
        noised = observation(self, clean)
        seen.append((noised - clean) / (self.sigma * self.scale))
        return noised

    monkeypatch.setattr(ReplicaNoiseWrapper, "observation", spy)
    assert cli.eval_main(argv) == 0
    monkeypatch.undo()
    return np.concatenate([s.ravel() for s in seen])


def test_hint_train_noise_uniform_then_hint_eval_draws_uniform_noise(
    demos, tmp_path, capsys, monkeypatch
):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    out = tmp_path / "run"
    status = cli.main(
        [
            str(path), "--out", str(out), "--sigma", "0.1", "--noise", "uniform",
            "--horizon", "8", "--chunk-length", "4", "--widths", "32,32", "--steps", "5",
            "--batch-size", "16", "--diffusion-steps", "10", "--threads", "1", "--no-progress",
        ]
    )  # fmt: skip
    assert status == 0
    assert load_policy(out).config.noise_law == "uniform"
    argv = [str(out), "--episodes", "4", "--threads", "1"]
    eps = _noise_seen_at_test_time(monkeypatch, argv)
    assert eps.size > 60 and eps.min() >= 0 and eps.max() < 1  # the policy's law
    assert "σ = 0.1 (uniform)" in capsys.readouterr().out
    eps = _noise_seen_at_test_time(monkeypatch, [*argv, "--noise", "gaussian"])
    assert eps.min() < -1 and eps.max() > 1  # told otherwise


def test_the_checkpoint_hook_sees_every_checkpoint_and_changes_nothing(demos):
    config = tiny_config(sigma=0.1)
    data = make_dataset(demos, config)
    settings = TrainConfig(**{**FAST.to_dict(), "checkpoint_every": 5, "resample_noise": True})
    steps = []

    def hook(step, policy):
        steps.append((step, policy.training))
        policy.seed(123)
        policy.predict(data.observations[:3])  # samples, draws from the global generator
        torch.rand(5)

    hooked = train(data, config, settings, seed=1, progress=False, on_checkpoint=hook)
    plain = train(data, config, settings, seed=1, progress=False)
    assert steps == [(5, False), (10, False)]
    for key, value in plain.state_dict().items():
        assert torch.equal(value, hooked.state_dict()[key]), key
