"""save_policy / load_policy: bit-identical reloads, no pickle, clear errors, format tags
from the registry, files of the previous version."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from policy_testing import make_chunk_env, make_policy, tiny_config
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from policies.ddpm import DDPMChunkingPolicy
from policies.serialization import format_tag, load_policy, registered_formats, save_policy


@pytest.fixture(params=["mlp", "unet1d"])
def policy(request, demos):
    policy = make_policy(demos, tiny_config(denoiser=request.param, sigma=0.1))
    with torch.no_grad():  # make EMA and raw weights differ, as after training
        for p in policy.denoiser.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return policy


def _observations(config, n=3):
    env = make_chunk_env(config)
    return np.stack([env.reset(seed=s)[0] for s in range(n)])


def test_reload_gives_bit_identical_actions(policy, tmp_path):
    save_policy(policy, tmp_path / "p")
    loaded = load_policy(tmp_path / "p", env=make_chunk_env(policy.config))
    obs = _observations(policy.config)
    for model in (policy, loaded):
        model.seed(42)
    a, _ = policy.predict(obs)
    b, _ = loaded.predict(obs)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(
        policy.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    for key, value in policy.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert loaded.config == policy.config and loaded.env_id == policy.env_id
    assert loaded.observation_space == policy.observation_space
    assert loaded.action_space == policy.action_space
    assert loaded.layout == policy.layout
    np.testing.assert_array_equal(loaded.noise_scale, policy.noise_scale)
    # raw and EMA weights are both saved, and sampling uses the EMA ones
    raw, ema = loaded.denoiser.state_dict(), loaded.ema_denoiser.state_dict()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    assert loaded.inference_denoiser is loaded.ema_denoiser


def test_saved_files_are_json_and_safetensors_without_pickle(policy, tmp_path):
    directory = save_policy(policy, tmp_path / "p")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    config = json.loads((directory / "config.json").read_text())
    assert config["policy_config"]["sigma"] == 0.1
    assert config["hint_envs_version"] and config["env_id"] == policy.env_id
    assert config["observation_space"]["shape"] == [2, 6]
    raw = (directory / "model.safetensors").read_bytes()
    header_len = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + header_len])  # safetensors: u64 length + JSON header
    assert any(k.startswith("ema_denoiser.") for k in header)
    assert any(k.startswith("denoiser.") for k in header)
    for path in directory.iterdir():
        data = path.read_bytes()
        assert not data.startswith(b"\x80")  # pickle protocol 2+ opcode
        assert not data.startswith(b"PK")  # torch.save zip archive
        assert b"cpickle" not in data.lower()


def test_sb3_style_save_and_load_use_the_same_format(policy, tmp_path):
    policy.save(str(tmp_path / "sb3"))
    loaded = DDPMChunkingPolicy.load(str(tmp_path / "sb3"))
    obs = _observations(policy.config, 2)
    np.testing.assert_array_equal(
        policy.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_loading_onto_an_env_without_gains_names_both_shapes(policy, tmp_path):
    save_policy(policy, tmp_path / "p")
    env = make_chunk_env(tiny_config(gains=False))
    with pytest.raises(ValueError, match=r"action space has shape \(8,\) .* shape \(80,\)"):
        load_policy(tmp_path / "p", env=env)


def test_loading_onto_an_env_with_other_observation_chunks(policy, tmp_path):
    save_policy(policy, tmp_path / "p")
    env = make_chunk_env(tiny_config(obs_horizon=3))
    with pytest.raises(ValueError, match=r"observation space has shape \(3, 6\) .* \(2, 6\)"):
        load_policy(tmp_path / "p", env=env)


def test_missing_and_corrupt_files(demos, tmp_path):
    policy = make_policy(demos, tiny_config())
    with pytest.raises(FileNotFoundError, match="not a directory"):
        load_policy(tmp_path / "nothing")
    directory = save_policy(policy, tmp_path / "p")

    weights = (directory / "model.safetensors").read_bytes()
    (directory / "model.safetensors").write_bytes(weights[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="does not match the checksum"):
        load_policy(directory)
    (directory / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        load_policy(directory)

    save_policy(policy, directory)
    (directory / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="is not valid JSON"):
        load_policy(directory)
    (directory / "config.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="has format 'something else'"):
        load_policy(directory)
    (directory / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json is missing"):
        load_policy(directory)


def test_weights_that_do_not_fit_the_config(demos, tmp_path):
    small = save_policy(make_policy(demos, tiny_config()), tmp_path / "small")
    big = save_policy(make_policy(demos, tiny_config(widths=(256, 256, 256))), tmp_path / "big")
    config = json.loads((small / "config.json").read_text())
    config["weights"] = json.loads((big / "config.json").read_text())["weights"]
    (small / "config.json").write_text(json.dumps(config))
    (small / "model.safetensors").write_bytes((big / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not fit the saved config"):
        load_policy(small)
    # same tensor names, other shapes
    wide = save_policy(make_policy(demos, tiny_config(widths=(256, 256))), tmp_path / "wide")
    config["weights"] = json.loads((wide / "config.json").read_text())["weights"]
    (small / "config.json").write_text(json.dumps(config))
    (small / "model.safetensors").write_bytes((wide / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="does not fit the saved config"):
        load_policy(small)


def _write_the_previous_way(directory) -> None:
    """Rewrite a saved policy as the previous version wrote it: format tags
    ``hint_envs.policies.<Class>/1`` (config and weights metadata), no ``policy_module``."""
    config = json.loads((directory / "config.json").read_text())
    old_tag = "hint_envs.policies." + config["format"].removeprefix("policies.")
    config["format"] = old_tag
    del config["policy_module"]
    tensors = load_safetensors((directory / "model.safetensors").read_bytes())
    weights = save_safetensors(tensors, metadata={"format": old_tag})
    (directory / "model.safetensors").write_bytes(weights)
    config["weights"]["sha256"] = hashlib.sha256(weights).hexdigest()
    (directory / "config.json").write_text(json.dumps(config))


def test_format_tags_name_the_package_and_come_from_the_registry(policy, tmp_path):
    directory = save_policy(policy, tmp_path / "p")
    config = json.loads((directory / "config.json").read_text())
    assert config["format"] == format_tag(DDPMChunkingPolicy) == "policies.DDPMChunkingPolicy/1"
    assert config["policy_class"] == "DDPMChunkingPolicy"
    assert config["policy_module"] == "policies.ddpm"
    assert registered_formats()["policies.DDPMChunkingPolicy/1"] is DDPMChunkingPolicy


def test_policies_saved_by_the_previous_version_still_load(policy, tmp_path):
    directory = save_policy(policy, tmp_path / "old")
    _write_the_previous_way(directory)
    assert json.loads((directory / "config.json").read_text())["format"].startswith("hint_envs.")
    loaded = load_policy(directory)
    assert type(loaded) is DDPMChunkingPolicy
    obs = _observations(policy.config, 2)
    np.testing.assert_array_equal(
        policy.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_a_fresh_interpreter_finds_the_class_a_file_names(policy, tmp_path):
    """Loading imports the policy's module itself: the registry is filled on import."""
    new = save_policy(policy, tmp_path / "new")
    old = save_policy(policy, tmp_path / "old")
    _write_the_previous_way(old)
    script = (
        "import sys\n"
        "from policies.serialization import load_policy\n"
        "assert 'policies.ddpm' not in sys.modules\n"
        "print(*(type(load_policy(d)).__name__ for d in sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(new), str(old)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["DDPMChunkingPolicy", "DDPMChunkingPolicy"]


def test_a_format_of_no_known_class(policy, tmp_path):
    directory = save_policy(policy, tmp_path / "p")
    config = json.loads((directory / "config.json").read_text())
    config["format"] = "policies.NoSuchPolicy/1"
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'policies.NoSuchPolicy/1', which names no known"):
        load_policy(directory)
