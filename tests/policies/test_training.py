"""train(): the loss falls, runs are reproducible, data noising is Algorithm 1 through
add_replica_noise, outputs land in out_dir, and the hint-train CLI works end to end."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from policy_testing import ENV_ID, make_chunk_env, make_dataset, tiny_config

from hint_envs.data import ChunkDataset, DatasetError
from hint_envs.data.hdf5 import BOUNDS_ATTRS, write_demonstrations
from hint_envs.wrappers.replica_noise import add_replica_noise
from policies import cli
from policies.config import TrainConfig
from policies.serialization import load_policy
from policies.training import noised_observations, train

FAST = TrainConfig(steps=60, batch_size=64, lr=3e-3, warmup_steps=5, log_every=10, num_threads=1)


def test_loss_falls_on_a_small_dataset(demos):
    config = tiny_config()
    data = make_dataset(demos, config)
    policy = train(data, config, TrainConfig(**{**FAST.to_dict(), "steps": 150}), progress=False)
    losses = [entry["loss"] for entry in policy.train_history]
    assert len(losses) == 15 and [e["step"] for e in policy.train_history][-1] == 150
    assert losses[-1] < 0.5 * losses[0]
    assert not policy.training  # returned in eval mode


def test_training_is_deterministic_for_a_seed(demos):
    config = tiny_config(sigma=0.1, n_aug=2)
    data = make_dataset(demos, config)
    first = train(data, config, FAST, seed=3, progress=False)
    second = train(data, config, FAST, seed=3, progress=False)
    other = train(data, config, FAST, seed=4, progress=False)
    for key, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[key]), key
    assert not torch.equal(first.denoiser.output.weight, other.denoiser.output.weight)
    assert first.train_history == second.train_history


def test_training_leaves_the_global_torch_generator_alone(demos):
    config = tiny_config()
    data = make_dataset(demos, config)
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    train(data, config, TrainConfig(**{**FAST.to_dict(), "steps": 2}), progress=False)
    torch.testing.assert_close(torch.rand(3), expected)


def test_data_noising_is_algorithm_1_through_add_replica_noise(demos):
    data = make_dataset(demos, tiny_config())
    scale = data.stats.obs.noise_scale
    noised = noised_observations(data.observations, 0.2, 3, scale, np.random.default_rng(5))
    M = len(data.observations)
    assert noised.shape == (3 * M,) + data.observations.shape[1:]
    copies = np.broadcast_to(data.observations.astype(np.float64), (3,) + data.observations.shape)
    direct = add_replica_noise(copies, 0.2, scale, np.random.default_rng(5))
    np.testing.assert_array_equal(noised, direct.reshape(noised.shape))
    # copies differ from each other, and the noise is sigma in normalised units
    assert not np.array_equal(noised[:M], noised[M : 2 * M])
    normalised = (noised[:M] - data.observations) / scale
    assert abs(normalised.std() - 0.2) < 0.02
    clean = noised_observations(data.observations, 0.0, 3, scale, np.random.default_rng(5))
    np.testing.assert_array_equal(clean, data.observations)


def test_resampled_noise_trains_too(demos):
    config = tiny_config(sigma=0.1)
    data = make_dataset(demos, config)
    settings = TrainConfig(**{**FAST.to_dict(), "steps": 20, "resample_noise": True})
    policy = train(data, config, settings, progress=False)
    assert np.isfinite(policy.train_history[-1]["loss"])


@pytest.mark.parametrize(("resample", "draws"), [(False, 1), (True, 7)])
def test_resample_noise_draws_fresh_noise_for_every_batch(demos, monkeypatch, resample, draws):
    """Algorithm 1 draws the noised copies once; ``resample_noise`` draws a batch's worth
    of noise at every step, through the same add_replica_noise."""
    calls = []

    def spy(observations, sigma, scale, rng, law):
        calls.append(np.shape(observations))
        return add_replica_noise(observations, sigma, scale, rng, law)

    monkeypatch.setattr("policies.training.add_replica_noise", spy)
    config = tiny_config(sigma=0.1, n_aug=3)
    data = make_dataset(demos, config)
    settings = TrainConfig(**{**FAST.to_dict(), "steps": 7, "resample_noise": resample})
    policy = train(data, config, settings, seed=2, progress=False)
    assert len(calls) == draws
    if resample:  # one batch of windows each time
        assert calls == [(settings.batch_size,) + data.observations.shape[1:]] * draws
    else:  # n_aug copies of every window, once
        assert calls == [(3,) + data.observations.shape]
    monkeypatch.undo()
    other = train(
        data,
        config,
        TrainConfig(**{**settings.to_dict(), "resample_noise": not resample}),
        seed=2,
        progress=False,
    )
    assert not torch.equal(policy.denoiser.output.weight, other.denoiser.output.weight)


def test_training_builds_no_env_and_refuses_a_file_without_bounds(
    demos, tmp_path, monkeypatch, capsys
):
    """The policy's spaces come from the bounds the file stores: training never makes the
    env; a file written before the bounds were stored names the command that adds them."""
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    config = tiny_config()
    data = ChunkDataset(path, config.obs_horizon, config.horizon)
    expected = make_chunk_env(config)

    def no_env(*args, **kwargs):
        raise AssertionError("training made an environment")

    monkeypatch.setattr("gymnasium.make", no_env)
    settings = TrainConfig(**{**FAST.to_dict(), "steps": 2})
    policy = train(data, config, settings, progress=False)
    assert policy.action_space == expected.action_space
    assert policy.observation_space == expected.observation_space
    with h5py.File(path, "a") as f:
        for attr in BOUNDS_ATTRS.values():
            del f["data"].attrs[attr]
    old = ChunkDataset(path, config.obs_horizon, config.horizon)
    with pytest.raises(DatasetError, match=f"hint-data add-bounds {path}"):
        train(old, config, settings, progress=False)
    monkeypatch.undo()
    assert cli.main([str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hint-train: error: the demonstration file") and err.count("\n") == 1
    assert f"hint-data add-bounds {path}" in err and not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(obs_horizon=3), "dataset observation chunks have 2 frames but config.obs_horizon"),
        (dict(horizon=4, chunk_length=4), "have 8 controllers but config.horizon is 4"),
        (dict(gains=False), "dataset gains=True but config.gains=False"),
    ],
)
def test_dataset_and_config_must_agree(demos, overrides, message):
    data = make_dataset(demos, tiny_config())
    with pytest.raises(ValueError, match=message):
        train(data, tiny_config(**overrides), FAST, progress=False)


def test_out_dir_gets_policy_checkpoints_and_log(demos, tmp_path):
    config = tiny_config()
    data = make_dataset(demos, config)
    settings = TrainConfig(**{**FAST.to_dict(), "steps": 20, "checkpoint_every": 10})
    policy = train(data, config, settings, out_dir=tmp_path / "run", seed=1, progress=False)
    run = tmp_path / "run"
    assert (run / "config.json").is_file() and (run / "model.safetensors").is_file()
    assert (run / "checkpoints" / "step_0000010" / "model.safetensors").is_file()
    log = json.loads((run / "training.json").read_text())
    assert log["seed"] == 1 and log["env_id"] == ENV_ID and log["history"] == policy.train_history
    loaded = load_policy(run)
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert not list(run.glob("**/*.tmp"))  # atomic writes leave no temporary files


def test_cli_trains_from_a_demonstration_file(demos, tmp_path, capsys):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    out = tmp_path / "run"
    status = cli.main(
        [
            str(path), "--out", str(out), "--num-demos", "2", "--sigma", "0.05",
            "--horizon", "8", "--chunk-length", "4", "--widths", "32,32", "--steps", "5",
            "--batch-size", "16", "--diffusion-steps", "10", "--threads", "1", "--no-progress",
            "--no-gains",
        ]
    )  # fmt: skip
    assert status == 0
    assert "saved to" in capsys.readouterr().out
    policy = load_policy(out)
    assert policy.config.gains is False and policy.config.sigma == 0.05
    assert policy.action_space.shape == (4 * 2,)
    assert json.loads((out / "training.json").read_text())["num_demos"] == 2


def test_cli_reports_bad_arguments(tmp_path, capsys):
    assert cli.main([str(tmp_path / "missing.hdf5"), "--out", str(tmp_path)]) == 2
    assert "no demonstration file" in capsys.readouterr().err
    assert cli.main(["x.hdf5", "--out", str(tmp_path), "--chunk-length", "32"]) == 2
    assert "chunk_length (executed controllers, 32) must be <= horizon" in capsys.readouterr().err


def test_cli_refuses_to_overwrite_a_saved_policy(demos, tmp_path, capsys, monkeypatch):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.json").write_text("{}")  # what save_policy leaves
    monkeypatch.setattr("hint_envs.data.chunks.ChunkDataset.__init__", _must_not_run)
    assert cli.main([str(path), "--out", str(out)]) == 2
    assert "already holds a saved policy; pass --overwrite" in capsys.readouterr().err
    assert (out / "config.json").read_text() == "{}"
    (tmp_path / "file").write_text("")
    assert cli.main([str(path), "--out", str(tmp_path / "file")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def _must_not_run(*args, **kwargs):
    raise AssertionError("data was read before the arguments were checked")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without a usable GPU")
def test_unavailable_device_fails_before_any_work(demos, tmp_path, capsys, monkeypatch):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    monkeypatch.setattr("hint_envs.data.chunks.ChunkDataset.__init__", _must_not_run)
    assert cli.main([str(path), "--out", str(tmp_path / "run"), "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hint-train: error: --device: device 'cuda' is not available")
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="'cuda:0' is not available"):
        load_policy(tmp_path / "no policy here", device="cuda:0")
    with pytest.raises(ValueError, match="'gpu' is not a torch device"):
        load_policy(tmp_path / "no policy here", device="gpu")


def test_cli_reports_a_corrupt_file_and_ctrl_c_in_one_line(demos, tmp_path, capsys, monkeypatch):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    with h5py.File(path) as f:
        offset = f["data/demo_0/states"].id.get_chunk_info(0).byte_offset
    corrupt = bytearray(path.read_bytes())
    corrupt[offset] ^= 0xFF
    path.write_bytes(bytes(corrupt))
    assert cli.main([str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "corrupt file at 'data/demo_0/states'" in err and len(err.strip().splitlines()) == 1

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hint_envs.data.chunks.ChunkDataset.__init__", interrupt)
    assert cli.main([str(path), "--out", str(tmp_path / "run")]) == 130
    err = capsys.readouterr().err
    assert err.startswith("hint-train: interrupted; no checkpoint written yet")
    assert err.count("\n") == 1
    monkeypatch.setattr("policies.serialization.load_policy", interrupt)
    assert cli.eval_main([str(tmp_path / "run")]) == 130
    assert capsys.readouterr().err == "hint-eval: interrupted\n"


@pytest.mark.parametrize("parser", [cli.build_parser(), cli.build_eval_parser()])
def test_every_option_has_help_and_its_default(parser):
    text = parser.format_help()
    for action in parser._actions:
        if action.dest == "help":
            continue
        assert action.help, action.dest
        if action.option_strings and not action.required:
            assert "default" in parser._get_formatter()._get_help_string(action), action.dest
    assert "(default: None)" not in text.replace("\n", " ").replace("  ", " ")


def test_train_checks_the_device_before_reading_the_data() -> None:
    """``train`` itself (not only hint-train) refuses a device this machine lacks before it
    touches the dataset or builds a model."""
    from policies import DDPMPolicyConfig, TrainConfig, train
    from policies.baselines import MLPBCConfig, train_mlp_bc

    no_data = object()  # would fail the dataset check if the device were not checked first
    with pytest.raises(ValueError, match="'cuda:99' is not available"):
        train(no_data, DDPMPolicyConfig(), TrainConfig(device="cuda:99"))
    with pytest.raises(ValueError, match="'cuda:99' is not available"):
        train_mlp_bc(no_data, MLPBCConfig(), TrainConfig(device="cuda:99"))
