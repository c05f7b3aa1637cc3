"""A diverging run stops at the step it diverges, keeps its last good checkpoint, and no
NaN policy is ever saved or loaded."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from policy_testing import ENV_ID, make_dataset, make_policy, tiny_config
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from hint_envs.data.hdf5 import write_demonstrations
from policies import cli
from policies.config import TrainConfig
from policies.serialization import load_policy, save_policy
from policies.training import CHECKPOINTS, TrainingDivergedError, latest_checkpoints, train


def test_a_diverging_hint_train_stops_in_one_line_and_keeps_its_checkpoints(
    demos, tmp_path, capsys
):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    out = tmp_path / "run"
    status = cli.main(
        [
            str(path), "--out", str(out), "--lr", "1e30", "--steps", "200",
            "--checkpoint-every", "1", "--horizon", "8", "--chunk-length", "4",
            "--widths", "32,32", "--batch-size", "16", "--diffusion-steps", "10",
            "--threads", "1", "--no-progress",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith("hint-train: error: training diverged at step ") and err.count("\n") == 1
    assert "the last checkpoint is" in err
    assert not (out / "config.json").exists()  # no NaN policy saved
    kept = latest_checkpoints(out / CHECKPOINTS)
    assert kept and f"{kept[0]}" in err
    policy = load_policy(kept[0])  # the last checkpoint is a good policy
    assert all(torch.isfinite(v).all() for v in policy.state_dict().values())


def test_the_divergence_names_its_step_and_no_nan_policy_saves_or_loads(demos, tmp_path):
    config = tiny_config()
    data = make_dataset(demos, config)
    settings = TrainConfig(steps=50, batch_size=16, lr=1e30, warmup_steps=0, num_threads=1)
    with pytest.raises(TrainingDivergedError, match=r"diverged at step \d+: .*(loss|NaN)"):
        train(data, config, settings, progress=False)
    policy = make_policy(demos, config)
    with torch.no_grad():
        next(policy.denoiser.parameters()).fill_(float("nan"))
    with pytest.raises(ValueError, match="refusing to save a policy whose weights hold NaN"):
        save_policy(policy, tmp_path / "nan")
    good = save_policy(make_policy(demos, config), tmp_path / "good")
    tensors = load_safetensors((good / "model.safetensors").read_bytes())
    name = next(k for k, v in tensors.items() if v.is_floating_point() and k.startswith("denoiser"))
    tensors[name] = torch.full_like(tensors[name], float("nan"))
    weights = save_safetensors(tensors, metadata={"format": "x"})
    (good / "model.safetensors").write_bytes(weights)
    config_file = good / "config.json"
    saved = json.loads(config_file.read_text())
    saved["weights"]["sha256"] = hashlib.sha256(weights).hexdigest()
    config_file.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="holds NaN or inf"):
        load_policy(good)
