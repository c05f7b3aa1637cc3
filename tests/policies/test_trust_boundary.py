"""Files from others are data, never code: a crafted policy folder or demonstration file is
refused, naming the field, and nothing it names is imported or read."""

from __future__ import annotations

import json
import sys

import h5py
import numpy as np
import pytest
from policy_testing import ENV_ID, make_policy, tiny_config

from hint_envs.data import DatasetError, read_demonstrations
from hint_envs.data.hdf5 import write_demonstrations
from policies.serialization import load_policy, save_policy

RECORDER = """\
from pathlib import Path
Path(__file__).with_suffix(".imported").write_text("imported")
"""


@pytest.fixture
def recorder(tmp_path, monkeypatch):
    """A module ``evilmod`` on sys.path that leaves a mark when imported."""
    (tmp_path / "evilmod.py").write_text(RECORDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "evilmod.imported"
    sys.modules.pop("evilmod", None)


@pytest.fixture
def saved(demos, tmp_path):
    return save_policy(make_policy(demos, tiny_config(sigma=0.1)), tmp_path / "policy")


def _edit(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        node, *rest = key.split(".")
        if rest:
            config[node][rest[0]] = value
        else:
            config[node] = value
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "evilmod.Foo/1", "policy_module": "evilmod"}, "'evilmod.Foo/1', which names"),
        ({"format": "unittest.Foo/1", "policy_module": "unittest.__main__"}, "names no known"),
        ({"env_id": "evilmod:PlanarQuadrotor-v0"}, r"env_id: env id 'evilmod:Planar"),
        ({"env_id": "CartPole-v1"}, "is not a registered hint_envs id"),
        ({"weights.file": "/etc/passwd"}, "weights.file must be the name of a file inside"),
        ({"weights.file": "../policy/model.safetensors"}, "weights.file must be"),
        ({"env_kwargs": ["x"]}, "env_kwargs must be a JSON object"),
    ],
)
def test_a_crafted_policy_config_is_refused_and_imports_nothing(saved, recorder, changes, message):
    _edit(saved, **changes)
    with pytest.raises(ValueError, match=message):
        load_policy(saved)
    assert not recorder.exists() and "evilmod" not in sys.modules


def test_edited_stats_that_disagree_with_the_weights_are_refused(saved):
    config = json.loads((saved / "config.json").read_text())
    stats = config["stats"]["obs"]
    key = next(k for k, v in stats.items() if isinstance(v, list))
    stats[key] = (np.asarray(stats[key], dtype=float) * 500).tolist()
    (saved / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="disagree with the weights' 'obs_"):
        load_policy(saved)


def test_a_demo_file_naming_a_module_in_its_env_id_is_refused(demos, tmp_path, recorder):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    with h5py.File(path, "a") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        env_args["env_name"] = "evilmod:PlanarQuadrotor-v0"
        f["data"].attrs["env_args"] = json.dumps(env_args)
    with pytest.raises(DatasetError, match=r"env_name'\]: env id 'evilmod:PlanarQuadrotor-v0'"):
        read_demonstrations(path)
    assert not recorder.exists() and "evilmod" not in sys.modules


def test_a_demo_file_reaching_outside_itself_is_refused(demos, tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(1000, dtype=np.float64).tobytes())
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    external = tmp_path / "external.hdf5"
    with h5py.File(path, "a") as f:
        rewards = f["data/demo_0/rewards"]
        shape, dtype = rewards.shape, rewards.dtype
        del f["data/demo_0/rewards"]
        f.create_dataset(
            "data/demo_0/rewards", shape, dtype, external=[(str(secret), 0, h5py.h5f.UNLIMITED)]
        )
    with pytest.raises(DatasetError, match="rewards' is stored in an external file"):
        read_demonstrations(path)
    path = write_demonstrations(tmp_path / "linked.hdf5", demos, ENV_ID)
    with h5py.File(external, "w") as f:
        f["dones"] = np.zeros(len(demos[1].actions), dtype=bool)
    with h5py.File(path, "a") as f:
        del f["data/demo_1/dones"]
        f["data/demo_1/dones"] = h5py.ExternalLink(str(external), "dones")
    with pytest.raises(DatasetError, match=r"dones' is a link \(ExternalLink\)"):
        read_demonstrations(path)


def test_bounds_that_do_not_describe_the_data_are_refused(demos, tmp_path):
    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    with h5py.File(path, "a") as f:
        low = np.zeros_like(f["data"].attrs["action_space_low"])
        f["data"].attrs["action_space_low"] = low
        f["data"].attrs["action_space_high"] = low + 1e-9
    with pytest.raises(DatasetError, match="outside the stored action bounds"):
        read_demonstrations(path)


def test_hint_train_refuses_data_labelled_with_another_env(demos, tmp_path, capsys):
    from policies import cli

    path = write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID)
    with h5py.File(path, "a") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        env_args["env_name"] = "hint_envs/Bifurcation-v0"  # quadrotor data, another label
        f["data"].attrs["env_args"] = json.dumps(env_args)
    assert cli.main([str(path), "--out", str(tmp_path / "run"), "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "labelled hint_envs/Bifurcation-v0 but does not fit it" in err
    assert not (tmp_path / "run" / "config.json").exists()
