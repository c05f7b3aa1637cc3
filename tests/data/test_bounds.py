"""The env's bounds travel with the data: stored at collection, read back, added to old
files by ``hint-data add-bounds``, and the one source of the chunk-level spaces."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.core import EnvBounds
from hint_envs.data import ChunkDataset, DatasetError, read_demonstrations, write_demonstrations
from hint_envs.data.cli import data_main
from hint_envs.data.hdf5 import BOUNDS_ATTRS, add_bounds, env_bounds
from hint_envs.experts.collect import collect_one
from hint_envs.wrappers import PrimitiveControllerWrapper

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


@pytest.fixture(scope="module")
def demos():
    return [collect_one(ENV_ID, seed) for seed in range(2)]


def _strip_bounds(path: Path) -> None:
    """Make ``path`` look like a file written before the bounds were stored."""
    with h5py.File(path, "a") as f:
        for attr in BOUNDS_ATTRS.values():
            del f["data"].attrs[attr]


@pytest.mark.parametrize(
    "env_id", [ENV_ID, "hint_envs/ScalarLinear-v0", "hint_envs/Bifurcation-v0"]
)
@pytest.mark.parametrize("gains", [True, False])
def test_chunk_spaces_from_bounds_are_the_wrappers(env_id: str, gains: bool) -> None:
    env = gym.make(env_id)
    wrapped = PrimitiveControllerWrapper(env, chunk_length=3, obs_horizon=2, gains=gains)
    obs_space, act_space = EnvBounds.from_env(env).chunk_spaces(3, 2, gains)
    assert obs_space == wrapped.observation_space and act_space == wrapped.action_space


def test_bounds_are_written_and_read_back(tmp_path: Path, demos) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    loaded = read_demonstrations(path)
    assert loaded.bounds is not None and loaded.bounds.equals(env_bounds(ENV_ID))
    data = ChunkDataset(path, obs_horizon=2, horizon=4)
    assert data.bounds.equals(loaded.bounds) and data.path == path


def test_bounds_of_other_dimensions_are_refused(tmp_path: Path, demos) -> None:
    other = env_bounds("hint_envs/ScalarLinear-v0")
    with pytest.raises(ValueError, match=r"\(d_u, d_obs, d_x\) = \(1, 1, 1\)"):
        write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID, bounds=other)
    with pytest.raises(ValueError, match="the bounds have"):
        ChunkDataset(demos, obs_horizon=2, horizon=4, bounds=other)
    assert not (tmp_path / "d.hdf5").exists()


def test_in_memory_demos_get_the_bounds_of_their_env(demos) -> None:
    assert ChunkDataset(demos, 2, 4, env_id=ENV_ID).bounds.equals(env_bounds(ENV_ID))
    assert ChunkDataset(demos, 2, 4).bounds is None  # no env named: nothing to bound by


def test_add_bounds_adds_only_the_attributes(tmp_path: Path, demos) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    _strip_bounds(path)
    old = read_demonstrations(path)
    assert old.bounds is None
    assert add_bounds(path) is True
    new = read_demonstrations(path)
    assert new.bounds.equals(env_bounds(ENV_ID))
    for a, b in zip(old.demos, new.demos, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.primitives.K, b.primitives.K)
    assert add_bounds(path) is False  # the same bounds again: left as it is
    assert not list(tmp_path.glob(".*.tmp"))


def test_add_bounds_refuses_other_bounds(tmp_path: Path, demos) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    stored = read_demonstrations(path).bounds
    other = EnvBounds(
        stored.action_low - 1.0,
        stored.action_high,
        stored.observation_low,
        stored.observation_high,
        stored.control_indices,
    )
    before = path.read_bytes()
    with pytest.raises(DatasetError, match="already holds other bounds"):
        add_bounds(path, other)
    assert path.read_bytes() == before


def test_partial_bounds_are_a_dataset_error(tmp_path: Path, demos) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    with h5py.File(path, "a") as f:
        del f["data"].attrs["control_indices"]
    with pytest.raises(DatasetError, match=r"not \['control_indices'\]"):
        read_demonstrations(path)


def test_hint_data_add_bounds_command(tmp_path: Path, demos, capsys) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    _strip_bounds(path)
    assert data_main(["add-bounds", str(path)]) == 0
    assert data_main(["add-bounds", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{path}: bounds added", f"{path}: already holds these bounds"]
    assert data_main(["add-bounds", str(tmp_path / "missing.hdf5")]) == 2
    assert "hint-data: error:" in capsys.readouterr().err
