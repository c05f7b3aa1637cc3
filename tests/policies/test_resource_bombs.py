"""Inputs that would exhaust the machine are refused with the estimate and the limit,
before anything large is allocated or any long work starts."""

from __future__ import annotations

import json

import pytest
from policy_testing import make_policy, tiny_config

from hint_envs._io import ResourceError
from hint_envs.experts import cli as collect_cli
from policies import cli
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.serialization import load_policy, save_policy

DATA = "benchmarks/data/pusht_state_200.hdf5"


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"widths": [200000, 200000]}, ResourceError, r"would need about \d+\.\d GiB of memory"),
        ({"diffusion_steps": 1000000000}, ValueError, "diffusion_steps must be <= 10000"),
    ],
)
def test_a_policy_config_bomb_is_refused_before_allocating(
    demos, tmp_path, changes, error, message
):
    directory = save_policy(make_policy(demos, tiny_config()), tmp_path / "p")
    config = json.loads((directory / "config.json").read_text())
    config["policy_config"].update(changes)
    (directory / "config.json").write_text(json.dumps(config))
    with pytest.raises(error, match=message):
        load_policy(directory)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--widths", "100000,100000"], "would need about"),
        (["--sigma", "0.1", "--n-aug", "10000000"], "n_aug must be <= 10000"),
        (["--sigma", "0.1", "--n-aug", "10000"], "n_aug = 10000 noised copies"),
        (["--threads", "100000"], "num_threads must be <= 1024"),
    ],
)
def test_hint_train_bombs_are_one_line(tmp_path, capsys, extra, message):
    out = tmp_path / "run"
    argv = [DATA, "--out", str(out), "--steps", "2", "--no-progress", *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hint-train: error: ") and err.count("\n") == 1 and message in err
    assert not (out / "config.json").exists()


def test_hint_collect_refuses_a_billion_episodes_before_collecting(tmp_path, capsys):
    out = tmp_path / "d.hdf5"
    argv = ["hint_envs/PlanarQuadrotor-v0", "--episodes", "1000000000", "--out", str(out)]
    with pytest.raises(SystemExit) as stop:
        collect_cli.main(argv)
    assert stop.value.code == 2
    assert "--episodes 1000000000 would" in capsys.readouterr().err
    assert not out.exists()


def test_configs_bound_what_they_cost_before_any_check_of_the_machine():
    with pytest.raises(ValueError, match="diffusion_steps must be <= 10000"):
        DDPMPolicyConfig(diffusion_steps=10**9)
    with pytest.raises(ValueError, match="num_threads must be <= 1024"):
        TrainConfig(num_threads=10**5)
