"""Minari datasets: export demonstrations to Farama's offline-data standard, read them back.

`Minari <https://minari.farama.org>`_ stores episodes of a Gymnasium environment with the
environment's spec, so ``minari.load_dataset(id).recover_environment()`` makes the very
environment (id and ``gym.make`` kwargs) the data came from. :func:`write_minari` writes a
:class:`~hint_envs.data.hdf5.DemoFile` (or demonstrations) as a local Minari dataset;
:func:`read_minari` reads one back into a ``DemoFile``, so
``ChunkDataset("minari:<dataset id>", ...)`` and ``hint-train minari:<dataset id>`` train
on it. Nothing is downloaded: datasets live under Minari's local root
(``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``).

Per episode of ``T`` steps, Minari's arrays and what they hold here:

========================  ======================================================
``observations``          ``(T + 1, d_obs)``: o_0 .. o_T (the final one included)
``actions``               ``(T, d_u)``: the raw inputs as applied
``rewards``               ``(T,)``
``terminations``          true at the last step of a successful episode
``truncations``           true at the last step of an unsuccessful one
``infos["state"]``        ``(T + 1, d_state)``: exact simulator states s_0 .. s_T
``infos["u_bar"]``        ``(T + 1, d_u)``: the primitive controller applied from
``infos["x_bar"]``        observation ``t`` (row ``t``; the final row, after the last
``infos["K"]``            input, is NaN): ``u_t = u_bar_t + K_t (x_t - x_bar_t)``
========================  ======================================================

The episode's seed is Minari's episode ``seed``. What Minari has no place for — each
demonstration's metadata (``mode``, ``success``, ...), the observation keys, the
train/valid split, the file's metadata and the env's bounds
(:class:`~hint_envs.core.EnvBounds`, from the file or else from the env Minari records) —
is kept as JSON in the dataset metadata under
:data:`METADATA_KEY`, so HDF5 -> Minari -> :func:`read_minari` gives the demonstrations
back bit for bit.

``minari`` is an optional dependency (``pip install "hint_envs[minari]"``; minari 0.5.1-0.5.3,
since 0.5.4 needs numpy 2 and robosuite numpy 1).
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from hint_envs._io import ResourceError
from hint_envs.core import Demonstration, EnvBounds, Primitives, check_file_env_id
from hint_envs.data.hdf5 import (
    BOUNDS_ATTRS,
    DatasetError,
    DemoFile,
    _to_jsonable,
    read_demonstrations,
)

__all__ = ["MINARI_SCHEME", "METADATA_KEY", "is_minari_source", "read_minari", "write_minari"]

#: Prefix that names a Minari dataset where a demonstration file is expected.
MINARI_SCHEME = "minari:"
#: Key of the dataset metadata holding what Minari has no field for (JSON).
METADATA_KEY = "hint_envs"
PIP_EXTRA = 'pip install "hint_envs[minari]"'


def _import_minari():
    try:
        import minari
        from minari.data_collector import EpisodeBuffer
    except ImportError as err:
        raise ImportError(f"Minari datasets need the minari package ({err}); {PIP_EXTRA}") from err
    return minari, EpisodeBuffer


def _with_nan_row(array: np.ndarray) -> np.ndarray:
    return np.concatenate([array, np.full((1,) + array.shape[1:], np.nan)])


def _episode_buffer(index: int, demo: Demonstration, buffer_class: Any) -> Any:
    if demo.primitives is None:
        raise ValueError(
            f"demonstration {index} has no primitive controllers; synthesise them first "
            "(hint-collect does unless --no-synthesize)"
        )
    T = len(demo)
    terminations = [False] * T
    truncations = [False] * T
    terminations[-1] = demo.success
    truncations[-1] = not demo.success
    seed = demo.attrs.get("seed")
    return buffer_class(
        id=index,
        seed=None if seed is None else int(seed),
        observations=np.concatenate([demo.observations, demo.final_observation[None]]),
        actions=np.asarray(demo.actions),
        rewards=[float(r) for r in demo.rewards],
        terminations=terminations,
        truncations=truncations,
        infos={
            "state": np.concatenate([demo.states, demo.final_state[None]]),
            "u_bar": _with_nan_row(demo.primitives.u_bar),
            "x_bar": _with_nan_row(demo.primitives.x_bar),
            "K": _with_nan_row(demo.primitives.K),
        },
    )


def write_minari(
    source: str | os.PathLike | DemoFile,
    dataset_id: str,
    *,
    description: str | None = None,
    author: str = "hint_envs",
    overwrite: bool = False,
) -> Any:
    """Write a demonstration file as a local Minari dataset.

    Args:
        source: a demonstration file written by ``hint-collect`` (path) or a
            :class:`~hint_envs.data.hdf5.DemoFile`.
        dataset_id: Minari's id, ``"<namespace>/<name>-v<version>"``, e.g.
            ``"hint_envs/pusht-keypoints-v0"``.
        description: the dataset's description (default: names the source file).
        author: Minari's ``author`` field.
        overwrite: replace a local dataset of that id.

    Returns:
        the ``minari.MinariDataset`` written.

    Raises:
        ImportError: minari is not installed (the message names the extra).
        FileExistsError: a local dataset of that id exists and ``overwrite`` is False.
        ValueError: a demonstration without primitives, or a malformed id.
        DatasetError: the source file is missing or unreadable.
    """
    minari, buffer_class = _import_minari()
    demo_file = source if isinstance(source, DemoFile) else read_demonstrations(source)
    from minari.dataset.minari_dataset import parse_dataset_id

    try:
        parse_dataset_id(dataset_id)
    except Exception as err:  # minari raises its own error types for a bad id
        raise ValueError(
            f"{dataset_id!r} is not a Minari dataset id ('namespace/name-v0'): {err}"
        ) from err
    if dataset_id in minari.list_local_datasets():
        if not overwrite:
            raise FileExistsError(
                f"a local Minari dataset {dataset_id!r} exists; pass overwrite=True "
                "(--overwrite) to replace it"
            )
        minari.delete_dataset(dataset_id)
    buffers = [
        _episode_buffer(i, demo, buffer_class) for i, demo in enumerate(demo_file.demos)
    ]  # all checked before anything is written
    extra = {
        "demo_attrs": [demo.attrs for demo in demo_file.demos],
        "obs_keys": demo_file.obs_keys,
        "train_keys": demo_file.train_keys,
        "valid_keys": demo_file.valid_keys,
        "attrs": demo_file.attrs,
        "source": None if demo_file.path is None else str(demo_file.path),
    }
    root = Path(os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")).expanduser()
    need = 2 * sum(  # Minari's files hold every array once, plus its own bookkeeping
        demo.observations.nbytes + demo.actions.nbytes + demo.states.nbytes
        + demo.primitives.K.nbytes + demo.primitives.x_bar.nbytes + demo.primitives.u_bar.nbytes
        for demo in demo_file.demos
    )  # fmt: skip
    folder = root
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if need > free:  # h5py can crash the process on a full disk: refuse before writing
        raise ResourceError(
            f"the Minari dataset {dataset_id!r} needs about {need / 2**20:.1f} MiB but the "
            f"disk of {root} has {free / 2**20:.1f} MiB free"
        )
    env = gym.make(demo_file.env_id, **demo_file.env_kwargs)
    bounds = demo_file.bounds if demo_file.bounds is not None else EnvBounds.from_env(env)
    extra["bounds"] = {name: getattr(bounds, name) for name in BOUNDS_ATTRS}
    try:
        with warnings.catch_warnings():  # minari warns about empty optional fields
            warnings.simplefilter("ignore", UserWarning)
            dataset = minari.create_dataset_from_buffers(
                dataset_id,
                buffers,
                env=env,
                algorithm_name="hint_envs offline expert with synthesised primitive controllers",
                author=author,
                description=description
                or f"{demo_file.env_id} demonstrations from {demo_file.path or 'hint_envs'}",
            )
        dataset.storage.update_metadata({METADATA_KEY: json.dumps(_to_jsonable(extra))})
    except BaseException:  # no incomplete dataset is left under the id
        if dataset_id in minari.list_local_datasets():
            minari.delete_dataset(dataset_id)
        raise
    finally:
        env.close()
    return dataset


def read_minari(dataset_id: str) -> DemoFile:
    """Read a local Minari dataset written by :func:`write_minari` into a ``DemoFile``.

    ``env_id`` and ``env_kwargs`` come from the dataset's env spec.

    Raises:
        ImportError: minari is not installed.
        DatasetError: no local dataset of that id, or one not written by hint_envs (no
            primitive controllers in its infos).
    """
    minari, _ = _import_minari()
    if dataset_id.startswith(MINARI_SCHEME):
        dataset_id = dataset_id[len(MINARI_SCHEME) :]
    if dataset_id not in minari.list_local_datasets():
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        raise DatasetError(
            f"no local Minari dataset {dataset_id!r} under {root} (MINARI_DATASETS_PATH); "
            "write one with `hint-minari FILE.hdf5 DATASET_ID`"
        )
    dataset = minari.load_dataset(dataset_id)
    spec = dataset.spec.env_spec
    if spec is None:
        raise DatasetError(f"Minari dataset {dataset_id!r} records no environment spec")
    try:  # the id is looked up in gymnasium's registry; the file's entry point is never used
        env_id = check_file_env_id(spec.id, f"Minari dataset {dataset_id!r}: env_spec.id")
    except ValueError as err:
        raise DatasetError(str(err)) from None
    if not isinstance(spec.kwargs, dict) or not all(isinstance(k, str) for k in spec.kwargs):
        raise DatasetError(f"Minari dataset {dataset_id!r}: env_spec.kwargs is not a mapping")
    metadata = dataset.storage.metadata
    extra = json.loads(metadata[METADATA_KEY]) if METADATA_KEY in metadata else {}
    demo_attrs = extra.get("demo_attrs")
    demos = []
    for i, episode in enumerate(dataset.iterate_episodes()):
        infos = episode.infos
        missing = {"state", "u_bar", "x_bar", "K"} - set(infos)
        if missing:
            raise DatasetError(
                f"Minari dataset {dataset_id!r}, episode {i}: infos lack {sorted(missing)}; "
                "only datasets written by hint_envs (write_minari) carry the primitive "
                "controllers and states training needs"
            )
        observations = np.asarray(episode.observations, dtype=np.float64)
        T = len(episode.actions)
        dones = np.zeros(T)
        dones[-1] = 1.0
        if demo_attrs:
            attrs = dict(demo_attrs[i])
        else:  # a dataset without our metadata: what Minari itself records
            attrs = {"seed": episode.seed, "success": bool(episode.terminations[-1])}
        demos.append(
            Demonstration(
                observations=observations[:-1],
                actions=np.asarray(episode.actions, dtype=np.float64),
                rewards=np.asarray(episode.rewards, dtype=np.float64),
                dones=dones,
                states=np.asarray(infos["state"][:-1], dtype=np.float64),
                final_observation=observations[-1],
                final_state=np.asarray(infos["state"][-1], dtype=np.float64),
                primitives=Primitives(
                    np.asarray(infos["u_bar"][:-1], dtype=np.float64),
                    np.asarray(infos["x_bar"][:-1], dtype=np.float64),
                    np.asarray(infos["K"][:-1], dtype=np.float64),
                ),
                attrs=attrs,
            )
        )
    names = [f"demo_{i}" for i in range(len(demos))]
    bounds = None
    if "bounds" in extra:  # (datasets written before hint_envs stored them have none)
        try:
            bounds = EnvBounds(**extra["bounds"])
        except (TypeError, ValueError) as err:
            raise DatasetError(
                f"Minari dataset {dataset_id!r}: malformed bounds in its metadata ({err})"
            ) from err
    obs_keys = {k: (int(a), int(b)) for k, (a, b) in extra.get("obs_keys", {}).items()}
    return DemoFile(
        env_id=env_id,
        env_kwargs=dict(spec.kwargs),
        demos=demos,
        train_keys=list(extra.get("train_keys", names)),
        valid_keys=list(extra.get("valid_keys", [])),
        attrs=dict(extra.get("attrs", {})),
        obs_keys=obs_keys or {"obs": (0, demos[0].observations.shape[1])},
        path=Path(dataset.storage.data_path) if hasattr(dataset.storage, "data_path") else None,
        bounds=bounds,
    )


def is_minari_source(source: Any) -> bool:
    """Whether ``source`` names a Minari dataset (``"minari:<id>"``)."""
    return isinstance(source, str) and source.startswith(MINARI_SCHEME)
