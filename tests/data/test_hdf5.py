"""Demonstration files: round trip, atomic writes, validation, robomimic compatibility."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.core import Primitives
from hint_envs.data import DatasetError, DemoFile, hdf5, read_demonstrations, write_demonstrations
from hint_envs.data.hdf5 import ROBOMIMIC_GYM_TYPE
from hint_envs.experts.base import Demonstration

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


def rollout(seed: int, steps: int) -> Demonstration:
    """A real quadrotor episode under seeded random inputs around hover, with seeded gains."""
    env = gym.make(ENV_ID)
    base = env.unwrapped
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    record: dict[str, list] = {k: [] for k in ("obs", "actions", "rewards", "states")}
    for _ in range(steps):
        u = base.params.hover_input + rng.normal(0.0, [0.5, 0.02])
        u = np.clip(u, env.action_space.low, env.action_space.high)
        record["obs"].append(obs)
        record["states"].append(base.get_state())
        obs, reward, terminated, truncated, info = env.step(u)
        record["actions"].append(u)
        record["rewards"].append(reward)
        if terminated or truncated:
            break
    T = len(record["actions"])
    dones = np.zeros(T)
    dones[-1] = 1
    states = np.asarray(record["states"])
    actions = np.asarray(record["actions"])
    return Demonstration(
        observations=np.asarray(record["obs"]),
        actions=actions,
        rewards=np.asarray(record["rewards"]),
        dones=dones,
        states=states,
        final_observation=obs,
        final_state=base.get_state(),
        primitives=Primitives(actions, states, rng.normal(size=(T, 2, 6))),
        attrs={
            "seed": seed,
            "mode": "left" if seed % 2 else "right",
            "success": bool(info["is_success"]),
            "noise": np.float64(0.5),  # numpy scalars come back as Python numbers
            "params": json.dumps({"mass": 0.486}),
            "waypoints": [[0.0, 1.0], [2.0, 3.0]],
        },
    )


@pytest.fixture(scope="module")
def demos() -> list[Demonstration]:
    return [rollout(seed, 6 + seed % 4) for seed in range(6)]


def assert_same_demo(a: Demonstration, b: Demonstration) -> None:
    for name in ("observations", "actions", "rewards", "dones", "states"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name
    np.testing.assert_array_equal(a.final_observation, b.final_observation)
    np.testing.assert_array_equal(a.final_state, b.final_state)
    for name in ("u_bar", "x_bar", "K"):
        np.testing.assert_array_equal(getattr(a.primitives, name), getattr(b.primitives, name))
    assert a.attrs == b.attrs


def test_round_trip_every_array_and_attr(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = write_demonstrations(
        tmp_path / "demos.hdf5", demos, ENV_ID, valid_fraction=0.34, seed=3, attrs={"seed": 7}
    )
    loaded = read_demonstrations(path)
    assert isinstance(loaded, DemoFile)
    assert loaded.env_id == ENV_ID and loaded.env_kwargs == {}
    assert loaded.obs_keys == {"state": (0, 6)}  # the env's obs_keys
    assert len(loaded.demos) == len(demos)
    for written, read in zip(demos, loaded.demos, strict=True):
        assert_same_demo(written, read)
    assert loaded.demos[0].attrs["noise"] == 0.5
    assert loaded.attrs["seed"] == 7 and loaded.attrs["split_seed"] == 3
    assert loaded.attrs["hint_envs_version"] == hint_envs.__version__
    # masks: a seeded split of every demo, 2 of 6 in valid
    assert len(loaded.valid_keys) == 2
    assert sorted(loaded.train_keys + loaded.valid_keys) == sorted(loaded.demo_names)
    assert loaded.select(loaded.valid_keys)[0] is loaded.demos[int(loaded.valid_keys[0][5:])]
    again = read_demonstrations(
        write_demonstrations(tmp_path / "b.hdf5", demos, ENV_ID, valid_fraction=0.34, seed=3)
    )
    assert again.valid_keys == loaded.valid_keys


def test_compression_is_lossless_and_optional(
    tmp_path: Path, demos: list[Demonstration], monkeypatch
) -> None:
    monkeypatch.setattr(hdf5, "GZIP_MIN_BYTES", 0)  # compress every per-step array
    gzip = write_demonstrations(tmp_path / "gzip.hdf5", demos, ENV_ID)
    plain = write_demonstrations(tmp_path / "plain.hdf5", demos, ENV_ID, compression=None)
    with h5py.File(gzip) as f, h5py.File(plain) as g:
        assert f["data/demo_0/states"].compression == "gzip"
        assert g["data/demo_0/states"].compression is None
    for a, b in zip(read_demonstrations(gzip).demos, demos, strict=True):
        assert_same_demo(a, b)
    for a, b in zip(read_demonstrations(plain).demos, demos, strict=True):
        assert_same_demo(a, b)
    with pytest.raises(ValueError, match="compression"):
        write_demonstrations(tmp_path / "c.hdf5", demos, ENV_ID, compression="lzf")
    assert not (tmp_path / "c.hdf5").exists()


def test_arrays_too_small_to_gain_from_gzip_are_stored_plain(
    tmp_path: Path, demos: list[Demonstration], monkeypatch
) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    with h5py.File(path) as f:
        small = f["data/demo_0/dones"]
        assert small.nbytes < hdf5.GZIP_MIN_BYTES and small.compression is None
        nbytes = small.nbytes
    monkeypatch.setattr(hdf5, "GZIP_MIN_BYTES", nbytes)  # now it is large enough
    write_demonstrations(path, demos, ENV_ID, overwrite=True)
    with h5py.File(path) as f:
        assert f["data/demo_0/dones"].compression == "gzip"
    for a, b in zip(read_demonstrations(path).demos, demos, strict=True):
        assert_same_demo(a, b)


def test_robomimic_layout(tmp_path: Path, demos: list[Demonstration]) -> None:
    with pytest.raises(ValueError, match="unexpected keyword argument 'a'"):
        write_demonstrations(tmp_path / "demos.hdf5", demos, ENV_ID, env_kwargs={"a": 1})
    bounds = hdf5.env_bounds(ENV_ID)  # what kwargs the env does not take cannot give
    path = write_demonstrations(
        tmp_path / "demos.hdf5", demos, ENV_ID, env_kwargs={"a": 1}, bounds=bounds
    )
    with h5py.File(path, "r") as f:
        env_args = json.loads(f["data"].attrs["env_args"])
        assert env_args == {"env_name": ENV_ID, "type": ROBOMIMIC_GYM_TYPE, "env_kwargs": {"a": 1}}
        assert f["data"].attrs["total"] == sum(len(d) for d in demos)
        demo = f["data/demo_1"]
        assert demo.attrs["num_samples"] == len(demos[1])
        assert demo.attrs["mode"] == "left" and demo.attrs["seed"] == 1  # plain attrs too
        np.testing.assert_array_equal(demo["obs/state"][()], demos[1].observations)
        # next_obs[t] = obs[t + 1], the last one the final observation
        np.testing.assert_array_equal(demo["next_obs/state"][:-1], demos[1].observations[1:])
        np.testing.assert_array_equal(demo["next_obs/state"][-1], demos[1].final_observation)
        assert demo["primitives/K"].shape == (len(demos[1]), 2, 6)
        assert f["mask/train"].dtype.kind == "S"
        assert set(f["mask/train"][()]) | set(f["mask/valid"][()]) == {
            f"demo_{i}".encode() for i in range(len(demos))
        }


def test_obs_keys_split_and_reassemble(tmp_path: Path, demos: list[Demonstration]) -> None:
    keys = {"velocity": (3, 6), "pose": (0, 3)}
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID, obs_keys=keys)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(
            f["data/demo_0/obs/velocity"][()], demos[0].observations[:, 3:]
        )
    loaded = read_demonstrations(path)
    assert loaded.obs_keys == {"pose": (0, 3), "velocity": (3, 6)}
    np.testing.assert_array_equal(loaded.demos[2].observations, demos[2].observations)
    with pytest.raises(ValueError, match="tile"):
        write_demonstrations(
            tmp_path / "e.hdf5", demos, ENV_ID, obs_keys={"a": (0, 2), "b": (3, 6)}
        )
    with pytest.raises(ValueError, match="cover"):
        write_demonstrations(tmp_path / "e.hdf5", demos, ENV_ID, obs_keys={"a": (0, 5)})


def test_demos_without_primitives_round_trip(tmp_path: Path, demos: list[Demonstration]) -> None:
    bare = [Demonstration(**{**vars(d), "primitives": None}) for d in demos[:2]]
    loaded = read_demonstrations(write_demonstrations(tmp_path / "d.hdf5", bare, ENV_ID))
    assert all(d.primitives is None for d in loaded.demos)
    np.testing.assert_array_equal(loaded.demos[1].actions, demos[1].actions)


def test_refuses_overwrite(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos[:2], ENV_ID)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_demonstrations(path, demos[2:4], ENV_ID)
    assert path.read_bytes() == before
    write_demonstrations(path, demos[2:5], ENV_ID, overwrite=True)
    assert len(read_demonstrations(path).demos) == 3


def test_failed_write_leaves_no_file(tmp_path: Path, demos: list[Demonstration]) -> None:
    good = demos[0]
    # demo 1 passes the shape checks but cannot be stored (object arrays have no HDF5
    # type): the failure happens after demo 0 was written to the temporary file
    broken = Demonstration(**{**vars(demos[1]), "rewards": np.array([object()] * len(demos[1]))})
    path = tmp_path / "d.hdf5"
    with pytest.raises(TypeError):
        write_demonstrations(path, [good, broken], ENV_ID)
    assert list(tmp_path.iterdir()) == []  # neither the file nor the temporary one
    # inconsistent lengths (mutated after construction) are rejected before writing
    short = Demonstration(**vars(demos[2]))
    short.states = short.states[:-1]
    with pytest.raises(ValueError, match="states has"):
        write_demonstrations(path, [good, short], ENV_ID)
    assert list(tmp_path.iterdir()) == []
    # an existing file survives a failed overwrite untouched
    write_demonstrations(path, [good], ENV_ID)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_demonstrations(path, [good, broken], ENV_ID, overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.hdf5"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file"):
        read_demonstrations(tmp_path / "nothing.hdf5")


def test_truncated_file(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DatasetError, match="d.hdf5.*not a readable HDF5"):
        read_demonstrations(path)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "notes.hdf5"
    path.write_text("these are not demonstrations\n")
    with pytest.raises(DatasetError, match="notes.hdf5"):
        read_demonstrations(path)
    assert issubclass(DatasetError, ValueError)


def test_foreign_hdf5(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = tmp_path / "foreign.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("images", data=np.zeros((3, 4)))
    with pytest.raises(DatasetError, match="foreign.hdf5.*no 'data' group"):
        read_demonstrations(path)

    def broken_copy(name: str, edit) -> Path:
        target = write_demonstrations(tmp_path / name, demos[:2], ENV_ID)
        with h5py.File(target, "a") as f:
            edit(f)
        return target

    cases = {
        "env_args": lambda f: f["data"].attrs.__delitem__("env_args"),
        "no dataset 'actions'": lambda f: f.__delitem__("data/demo_1/actions"),
        "no dataset 'final_state'": lambda f: f.__delitem__("data/demo_0/final_state"),
        "num_samples": lambda f: f["data/demo_0"].attrs.__setitem__("num_samples", 99),
        "'rewards' has": lambda f: (
            f.__delitem__("data/demo_0/rewards"),
            f.create_dataset("data/demo_0/rewards", data=np.zeros(2)),
        ),
        "not named demo_": lambda f: f.create_group("data/extra"),
        "inconsistent primitives": lambda f: (
            f.__delitem__("data/demo_0/primitives/K"),
            f.create_dataset("data/demo_0/primitives/K", data=np.zeros((len(demos[0]), 3, 3))),
        ),
    }
    for i, (message, edit) in enumerate(cases.items()):
        with pytest.raises(DatasetError, match=message):
            read_demonstrations(broken_copy(f"case{i}.hdf5", edit))


def test_write_rejects_bad_input(tmp_path: Path, demos: list[Demonstration]) -> None:
    with pytest.raises(ValueError, match="no demonstrations"):
        write_demonstrations(tmp_path / "a.hdf5", [], ENV_ID)
    with pytest.raises(ValueError, match="valid_fraction"):
        write_demonstrations(tmp_path / "a.hdf5", demos, ENV_ID, valid_fraction=1.0)
    with pytest.raises(ValueError, match="JSON"):
        write_demonstrations(tmp_path / "a.hdf5", demos, ENV_ID, env_kwargs={"f": object()})
    assert list(tmp_path.iterdir()) == []


def test_robomimic_sequence_dataset_reads_the_file(
    tmp_path: Path, demos: list[Demonstration]
) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("robomimic")
    ObsUtils = pytest.importorskip("robomimic.utils.obs_utils")
    SequenceDataset = pytest.importorskip("robomimic.utils.dataset").SequenceDataset
    from robomimic.envs.env_base import EnvType

    assert EnvType.GYM_TYPE == ROBOMIMIC_GYM_TYPE
    path = write_demonstrations(tmp_path / "d.hdf5", demos, ENV_ID, valid_fraction=0.34)
    ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": ["state"]}})
    dataset = SequenceDataset(
        hdf5_path=str(path),
        obs_keys=["state"],
        dataset_keys=["actions", "rewards", "dones"],
        frame_stack=1,
        seq_length=3,
        hdf5_cache_mode="low_dim",
        filter_by_attribute="train",
    )
    loaded = read_demonstrations(path)
    train = loaded.select(loaded.train_keys)
    assert len(dataset) == sum(len(d) for d in train)
    item = dataset[1]  # step 1 of the first training demo
    np.testing.assert_allclose(item["actions"], train[0].actions[1:4], rtol=1e-6)
    np.testing.assert_allclose(item["obs"]["state"], train[0].observations[1:4], rtol=1e-6)
    np.testing.assert_allclose(item["next_obs"]["state"], train[0].observations[2:5], rtol=1e-6)
    import torch

    batch = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4)))
    assert tuple(batch["actions"].shape) == (4, 3, 2)
    assert tuple(batch["obs"]["state"].shape) == (4, 3, 6)


def _same_arrays(a: Demonstration, b: Demonstration) -> bool:
    arrays = ["observations", "actions", "rewards", "dones", "states"]
    arrays += ["final_observation", "final_state"]
    same = all(np.array_equal(getattr(a, n), getattr(b, n)) for n in arrays)
    if a.primitives is None or b.primitives is None:
        return same and a.primitives is b.primitives
    return same and all(
        np.array_equal(getattr(a.primitives, n), getattr(b.primitives, n))
        for n in ("u_bar", "x_bar", "K")
    )


def _flip_and_read(path: Path, offsets: range) -> dict[str, int]:
    """Flip the byte at each offset of ``path`` (one at a time) and read the file: counts
    of outcomes ``ok`` (same arrays and metadata), ``different`` (readable, but other data)
    and ``error`` (DatasetError). Any other exception fails the calling test."""
    original = path.read_bytes()
    reference = read_demonstrations(path)
    outcomes = {"ok": 0, "different": 0, "error": 0}
    for offset in offsets:
        corrupt = bytearray(original)
        corrupt[offset] ^= 0xFF
        path.write_bytes(bytes(corrupt))
        try:
            loaded = read_demonstrations(path)
        except DatasetError:
            outcomes["error"] += 1
            continue
        for demo in loaded.demos:
            for name in ("observations", "actions", "states", "final_observation"):
                assert np.all(np.isfinite(getattr(demo, name))), (offset, name)
        same = all(map(_same_arrays, loaded.demos, reference.demos))
        same = same and [d.attrs for d in loaded.demos] == [d.attrs for d in reference.demos]
        same = same and (loaded.attrs, loaded.env_id, loaded.obs_keys) == (
            reference.attrs,
            reference.env_id,
            reference.obs_keys,
        )
        outcomes["ok" if same else "different"] += 1
    path.write_bytes(original)
    return outcomes


def test_written_datasets_are_checksummed(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos[:2], ENV_ID, valid_fraction=0.5)
    datasets: list[h5py.Dataset] = []
    with h5py.File(path) as f:
        f.visititems(lambda _, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
        assert len(datasets) > 20
        assert [d.name for d in datasets if d.size and not d.fletcher32] == []
        assert isinstance(f["data"].attrs["env_args"], bytes)  # in the checksummed header
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == ENV_ID


def test_flipped_bytes_raise_dataset_error_or_change_nothing(
    tmp_path: Path, demos: list[Demonstration]
) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos[:2], ENV_ID)
    size = path.stat().st_size
    outcomes = _flip_and_read(path, range(0, size, 19))
    assert outcomes["different"] == 0, outcomes  # checksums catch every change
    assert outcomes["error"] > size // 19 // 2, outcomes


def test_flipped_bytes_in_a_file_without_checksums_raise_only_dataset_error(
    tmp_path: Path, demos: list[Demonstration], monkeypatch
) -> None:
    # the files hint_envs wrote before checksums: earliest format, plain datasets
    monkeypatch.setattr(hdf5, "LIBVER", ("earliest", "v110"))
    monkeypatch.setattr(hdf5, "_set_text", lambda obj, name, text: obj.attrs.create(name, text))
    monkeypatch.setattr(
        hdf5, "_create", lambda group, name, data, filters: group.create_dataset(name, data=data)
    )
    path = write_demonstrations(tmp_path / "old.hdf5", demos[:2], ENV_ID)
    with h5py.File(path) as f:
        assert not f["data/demo_0/actions"].fletcher32
    monkeypatch.undo()
    assert all(map(_same_arrays, read_demonstrations(path).demos, demos[:2]))
    # different data may pass unnoticed here, but never another exception type
    outcomes = _flip_and_read(path, range(0, path.stat().st_size, 29))
    assert outcomes["error"] > 0, outcomes


def test_committed_file_without_checksums_reads() -> None:
    path = Path(__file__).parents[2] / "benchmarks" / "data" / "pusht_state_200.hdf5"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    with h5py.File(path) as f:
        assert not f["data/demo_0/actions"].fletcher32
    loaded = read_demonstrations(path)
    assert len(loaded.demos) == 200 and loaded.demos[0].primitives is not None


def test_corrupt_chunk_names_the_dataset(tmp_path: Path, demos: list[Demonstration]) -> None:
    path = write_demonstrations(tmp_path / "d.hdf5", demos[:2], ENV_ID)
    with h5py.File(path) as f:
        offset = f["data/demo_1/actions"].id.get_chunk_info(0).byte_offset
    corrupt = bytearray(path.read_bytes())
    corrupt[offset + 3] ^= 0x10  # one bit of one action
    path.write_bytes(bytes(corrupt))
    with pytest.raises(DatasetError, match=r"d\.hdf5: corrupt file at 'data/demo_1/actions'"):
        read_demonstrations(path)


def test_nan_or_inf_in_an_array_is_a_dataset_error(
    tmp_path: Path, demos: list[Demonstration]
) -> None:
    for name, value in (("actions", np.nan), ("states", np.inf), ("obs/state", -np.inf)):
        path = write_demonstrations(tmp_path / "d.hdf5", demos[:2], ENV_ID, overwrite=True)
        with h5py.File(path, "a") as f:
            values = f[f"data/demo_1/{name}"][()]
            values[-1, 0] = value
            del f[f"data/demo_1/{name}"]
            f.create_dataset(f"data/demo_1/{name}", data=values)
        with pytest.raises(DatasetError, match=f"'data/demo_1/{name}' holds NaN or inf"):
            read_demonstrations(path)
