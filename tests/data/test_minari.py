"""Minari export and import: HDF5 -> Minari -> training data, identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

minari = pytest.importorskip("minari")

from hint_envs.data import ChunkDataset, DatasetError, read_demonstrations  # noqa: E402
from hint_envs.data.cli import main as minari_main  # noqa: E402
from hint_envs.data.hdf5 import write_demonstrations  # noqa: E402
from hint_envs.data.minari_io import read_minari, write_minari  # noqa: E402
from hint_envs.experts.collect import collect_demonstrations  # noqa: E402

ENV_ID = "hint_envs/PlanarQuadrotor-v0"
DATASET = "hint_envs/quadrotor-test-v0"


@pytest.fixture(scope="module")
def demo_path(tmp_path_factory) -> Path:
    demos = collect_demonstrations(ENV_ID, 4, seed=0, progress=False)
    path = tmp_path_factory.mktemp("demos") / "quad.hdf5"
    return write_demonstrations(path, demos, ENV_ID, env_kwargs={}, attrs={"note": "test"})


@pytest.fixture(autouse=True)
def minari_root(tmp_path, monkeypatch) -> Path:
    """Every test writes its datasets under its own folder, never ~/.minari."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def test_round_trip_gives_the_same_demonstrations_and_training_data(demo_path):
    dataset = write_minari(demo_path, DATASET)
    assert dataset.total_episodes == 4
    original = read_demonstrations(demo_path)
    back = read_minari(DATASET)
    assert (back.env_id, back.env_kwargs) == (original.env_id, original.env_kwargs)
    assert back.obs_keys == original.obs_keys and back.attrs == original.attrs
    assert (back.train_keys, back.valid_keys) == (original.train_keys, original.valid_keys)
    for a, b in zip(original.demos, back.demos, strict=True):
        for name in ("observations", "actions", "rewards", "dones", "states"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        np.testing.assert_array_equal(a.final_observation, b.final_observation)
        np.testing.assert_array_equal(a.final_state, b.final_state)
        for name in ("u_bar", "x_bar", "K"):
            np.testing.assert_array_equal(getattr(a.primitives, name), getattr(b.primitives, name))
        assert a.attrs == b.attrs
    from_file = ChunkDataset(demo_path, 2, 8)
    from_minari = ChunkDataset(f"minari:{DATASET}", 2, 8)
    np.testing.assert_array_equal(from_file.observations, from_minari.observations)
    np.testing.assert_array_equal(from_file.actions, from_minari.actions)
    assert from_minari.env_id == ENV_ID
    assert from_minari.bounds.equals(from_file.bounds)  # the bounds travel too


def test_minari_own_api_loads_it_and_recovers_the_environment(demo_path):
    write_minari(demo_path, DATASET)
    dataset = minari.load_dataset(DATASET)
    episode = next(dataset.iterate_episodes())
    demo = read_demonstrations(demo_path).demos[0]
    assert episode.observations.shape == (len(demo) + 1, 6)
    assert set(episode.infos) == {"state", "u_bar", "x_bar", "K"}
    assert np.all(np.isnan(episode.infos["K"][-1]))  # no controller after the last input
    env = dataset.recover_environment()
    assert env.spec.id == ENV_ID
    obs, _ = env.reset(seed=int(demo.attrs["seed"]))
    np.testing.assert_array_equal(obs, demo.observations[0])  # the same start
    env.close()


def test_errors_are_clear(demo_path):
    write_minari(demo_path, DATASET)
    with pytest.raises(FileExistsError, match="overwrite"):
        write_minari(demo_path, DATASET)
    write_minari(demo_path, DATASET, overwrite=True)
    with pytest.raises(DatasetError, match="no local Minari dataset"):
        read_minari("hint_envs/nothing-v0")
    with pytest.raises(ValueError, match="not a Minari dataset id"):
        write_minari(demo_path, "no id at all")


def test_hint_minari_command(demo_path, minari_root, capsys):
    assert minari_main([str(demo_path), DATASET]) == 0
    assert "episodes: 4" in capsys.readouterr().out
    assert (minari_root / DATASET).is_dir()
    with pytest.raises(SystemExit):
        minari_main([str(demo_path), DATASET])  # exists: refused without --overwrite
    assert "exists" in capsys.readouterr().err


def test_hint_minari_interrupt_and_help(demo_path, capsys, monkeypatch):
    from hint_envs.data import cli

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("hint_envs.data.minari_io.write_minari", interrupt)
    assert minari_main([str(demo_path), DATASET]) == 130
    assert capsys.readouterr().err == "hint-minari: interrupted\n"
    parser = cli.build_parser()
    for action in parser._actions:
        assert action.help, action.dest
    assert "None" not in parser.format_help()
