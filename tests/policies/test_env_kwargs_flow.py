"""The env kwargs a demonstration file records reach collection, training, saving and
evaluation: a PushT file collected with ``obs_type="keypoints"`` trains and evaluates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gym_pusht")

from hint_envs.data import ChunkDataset, read_demonstrations  # noqa: E402
from hint_envs.evaluation import evaluate  # noqa: E402
from hint_envs.experts.cli import main as collect_main  # noqa: E402
from policies import DDPMPolicyConfig, TrainConfig, load_policy  # noqa: E402
from policies.cli import eval_main  # noqa: E402
from policies.training import train  # noqa: E402

ENV_ID = "hint_envs/PushT-v0"
KEYPOINTS = {"obs_type": "keypoints"}


@pytest.fixture(scope="module")
def keypoint_file(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kp") / "kp.hdf5"
    argv = [ENV_ID, "--env-kwarg", "obs_type=keypoints", "--episodes", "2", "--out", str(out)]
    assert collect_main([*argv, "--quiet"]) == 0
    return out


def test_collect_records_the_env_kwargs_and_the_keypoint_observations(keypoint_file):
    demos = read_demonstrations(keypoint_file)
    assert demos.env_kwargs == KEYPOINTS
    assert all(d.observations.shape[1] == 18 for d in demos.demos)
    assert ChunkDataset(keypoint_file, obs_horizon=2, horizon=8).env_kwargs == KEYPOINTS


def test_a_bad_env_kwarg_is_refused_before_any_collection(tmp_path, capsys):
    out = tmp_path / "never.hdf5"
    with pytest.raises(SystemExit) as exit_info:
        collect_main(
            [ENV_ID, "--env-kwarg", "obs_typ=keypoints", "--episodes", "1", "--out", str(out)]
        )
    assert exit_info.value.code == 2
    assert "obs_typ" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        collect_main([ENV_ID, "--env-kwarg", "keypoints", "--episodes", "1", "--out", str(out)])
    assert "KEY=VALUE" in capsys.readouterr().err


def test_train_save_load_and_evaluate_on_a_keypoint_file(keypoint_file, tmp_path):
    config = DDPMPolicyConfig(horizon=8, chunk_length=4, widths=(64,), diffusion_steps=5)
    dataset = ChunkDataset(keypoint_file, config.obs_horizon, config.horizon)
    policy = train(dataset, config, TrainConfig(steps=3, batch_size=8), tmp_path, progress=False)
    assert policy.env_kwargs == KEYPOINTS
    assert policy.observation_space.shape == (2, 18)
    loaded = load_policy(tmp_path)
    assert loaded.env_kwargs == KEYPOINTS
    # evaluate makes the env with the policy's kwargs when none are given
    result = evaluate(
        loaded,
        ENV_ID,
        seeds=[100000],
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=True,
        expert=False,
        progress=False,
    )
    assert result.config["env_kwargs"] == {"obs_type": repr("keypoints")}
    assert np.isfinite(result.metrics["max_reward"]["mean"])
    # and hint-eval does the same from the command line
    out = tmp_path / "eval.json"
    argv = [str(tmp_path), "--episodes", "1", "--threads", "1", "--json", str(out)]
    assert eval_main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["config"]["seeds"] == [100000]
    assert saved["config"]["env_kwargs"] == {"obs_type": repr("keypoints")}


def test_hint_eval_refuses_what_it_cannot_evaluate(tmp_path, capsys):
    assert eval_main([str(tmp_path / "missing")]) == 2
    assert "cannot load" in capsys.readouterr().err
    assert eval_main([str(tmp_path), "--episodes", "0"]) == 2
    assert "--episodes must be >= 1" in capsys.readouterr().err
