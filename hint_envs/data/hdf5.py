"""Demonstration files in robomimic's HDF5 layout, with synthesised controllers beside them.

Layout (``T_i`` steps in demo ``i``; see ``docs/data.md``)::

    file.hdf5
    |- attrs: hint_envs_version, command, split_seed, valid_fraction, metadata (JSON), ...
    |- data/                    attrs: env_args (JSON), total, obs_keys (JSON), and the
    |  |                        env's bounds: action_space_low/high (d_u,),
    |  |                        observation_space_low/high (d_obs,), control_indices (d_x,)
    |  |- demo_0/               attrs: num_samples = T_0, seed, mode, success, metadata (JSON)
    |  |  |- obs/<key>          (T_0, stop - start)  slice [start, stop) of the flat observation
    |  |  |- next_obs/<key>     (T_0, stop - start)  observation after each input
    |  |  |- actions            (T_0, d_u)
    |  |  |- rewards            (T_0,)
    |  |  |- dones              (T_0,)
    |  |  |- states             (T_0, d_state)
    |  |  |- final_obs          (d_obs,)
    |  |  |- final_state        (d_state,)
    |  |  `- primitives/{u_bar (T_0, d_u), x_bar (T_0, d_x), K (T_0, d_u, d_x)}
    |  `- demo_1/ ...
    `- mask/{train, valid}      demo names as bytes (robomimic's filter keys)

robomimic's own readers (``robomimic.utils.dataset.SequenceDataset``,
``robomimic.utils.file_utils.get_env_metadata_from_dataset``) load these files; their
``env_args["type"]`` is robomimic's ``EnvType.GYM_TYPE``.

Integrity: files are written in HDF5's 1.10 format (:data:`LIBVER`; object headers carry
checksums) with every non-empty dataset under the ``fletcher32`` checksum filter and the JSON
attributes (``env_args``, ``obs_keys``, ``metadata``) as fixed-length UTF-8 strings in those
headers (h5py reads them as bytes; ``json.loads`` takes either), so flipped bytes surface as
a :class:`DatasetError` on reading instead of as different numbers. Files
written without checksums (as hint_envs did before) still read; in every file the reader
also checks that each array is finite.

Bounds: the env's action and observation bounds and its ``control_indices``
(:class:`hint_envs.core.EnvBounds`) are stored beside ``env_args``, so training builds the
policy's spaces (and the clipping of its actions) from the file alone, never making the
env. A file written before they were stored reads with ``DemoFile.bounds = None``;
:func:`add_bounds` (``hint-data add-bounds FILE``) adds them in place.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hint_envs._io import DatasetError, atomic_path, write_file
from hint_envs.core import Demonstration, EnvBounds, Primitives, check_file_env_id

logger = logging.getLogger(__name__)

__all__ = [
    "BOUNDS_ATTRS",
    "DatasetError",
    "DemoFile",
    "add_bounds",
    "env_bounds",
    "GZIP_MIN_BYTES",
    "LIBVER",
    "ROBOMIMIC_GYM_TYPE",
    "default_obs_keys",
    "read_demonstrations",
    "write_demonstrations",
]

#: ``robomimic.envs.env_base.EnvType.GYM_TYPE`` (robomimic 0.3): the env type of a gym env.
ROBOMIMIC_GYM_TYPE = 2
#: Attribute holding the exact JSON of a group's metadata (the scalar attrs are a view).
METADATA_ATTR = "metadata"
#: Demo attributes that belong to the layout, not to the expert's metadata.
_RESERVED_DEMO_ATTRS = frozenset({"num_samples", METADATA_ATTR})
_RESERVED_FILE_ATTRS = frozenset({METADATA_ATTR})
_DEMO_NAME = re.compile(r"^demo_(\d+)$")
#: Per-step arrays smaller than this are stored uncompressed whatever ``compression`` says:
#: a compressed (chunked) dataset carries a chunk index of a few KiB, more than gzip saves.
GZIP_MIN_BYTES = 16 * 1024
#: HDF5 format bounds of written files: the 1.10 format (readable by HDF5 >= 1.10, i.e. every
#: h5py >= 2.10) checksums its metadata, and stores a dataset of one chunk without a chunk
#: index, so per-dataset ``fletcher32`` checksums cost a few bytes, not a few KiB.
LIBVER = ("v110", "v110")
#: What h5py raises on bytes it cannot decode (bad signatures, failed checksums or
#: decompression, absurd sizes); :func:`read_demonstrations` turns them into DatasetError.
_H5_ERRORS = (
    OSError,
    RuntimeError,
    KeyError,
    ValueError,
    TypeError,
    IndexError,
    OverflowError,
    MemoryError,
    SystemError,
)
_STEP_DATASETS = ("actions", "rewards", "dones", "states")
#: Attributes of ``data`` holding the env's bounds, by :class:`EnvBounds` field.
BOUNDS_ATTRS = {
    "action_low": "action_space_low",
    "action_high": "action_space_high",
    "observation_low": "observation_space_low",
    "observation_high": "observation_space_high",
    "control_indices": "control_indices",
}
#: What to run on a file without :data:`BOUNDS_ATTRS`.
ADD_BOUNDS_COMMAND = "hint-data add-bounds"
_PRIMITIVE_DATASETS = ("u_bar", "x_bar", "K")


@dataclass
class DemoFile:
    """The contents of a demonstration file.

    Attributes:
        env_id: the gymnasium id the demonstrations were collected in.
        env_kwargs: keyword arguments of ``gym.make`` (``env_args["env_kwargs"]``).
        demos: the demonstrations, in index order ``demo_0, demo_1, ...``.
        train_keys, valid_keys: demo names (``"demo_3"``) of robomimic's ``mask/train``
            and ``mask/valid`` filter keys.
        attrs: file-level metadata (hint_envs version, creation command, seeds, ...).
        obs_keys: observation key -> ``(start, stop)`` slice of the flat observation.
        path: the file read, or None.
        bounds: the env's action and observation bounds and control indices, from which
            the chunk-level spaces are built; None in a file written before hint_envs
            stored them (``hint-data add-bounds FILE`` adds them).
    """

    env_id: str
    env_kwargs: dict[str, Any]
    demos: list[Demonstration]
    train_keys: list[str]
    valid_keys: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    obs_keys: dict[str, tuple[int, int]] = field(default_factory=dict)
    path: Path | None = None
    bounds: EnvBounds | None = None

    def __len__(self) -> int:
        return len(self.demos)

    @property
    def demo_names(self) -> list[str]:
        """``["demo_0", ..., "demo_{N-1}"]``, the names of :attr:`demos` in order."""
        return [f"demo_{i}" for i in range(len(self.demos))]

    def select(self, keys: Sequence[str]) -> list[Demonstration]:
        """The demonstrations named by ``keys`` (e.g. :attr:`train_keys`), in that order."""
        index = {name: demo for name, demo in zip(self.demo_names, self.demos, strict=True)}
        missing = [key for key in keys if key not in index]
        if missing:
            raise KeyError(f"no demonstrations named {missing} in {self.path}")
        return [index[key] for key in keys]


# --------------------------------------------------------------------------- helpers


def _to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays (recursively) to plain Python for JSON."""
    if isinstance(value, Mapping):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _dump_json(value: Any, what: str) -> str:
    try:
        return json.dumps(_to_jsonable(value), sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{what} must be JSON-serialisable (numbers, strings, bools, None, lists, dicts "
            f"and numpy arrays): {err}"
        ) from err


def _write_metadata(obj: h5py.Group, metadata: Mapping[str, Any], reserved: frozenset) -> None:
    """Store ``metadata`` exactly as JSON, and its scalar entries as plain HDF5 attrs too."""
    clean = _to_jsonable(dict(metadata))
    _set_text(obj, METADATA_ATTR, _dump_json(clean, "metadata"))
    for key, value in clean.items():
        if key in reserved:
            continue
        if isinstance(value, (bool, int, float, str)):
            obj.attrs[key] = value


def _set_text(obj: h5py.Group, name: str, text: str) -> None:
    """Store ``text`` as a fixed-length UTF-8 attribute (h5py reads it back as bytes).

    Unlike h5py's default variable-length strings, whose bytes live in an unchecksummed
    global heap, a fixed-length attribute lives in the object header, which the 1.10 format
    checksums: a flipped byte in the JSON that describes the data cannot go unnoticed.
    """
    encoded = text.encode("utf-8")
    obj.attrs.create(name, encoded, dtype=h5py.string_dtype("utf-8", max(len(encoded), 1)))


def _read_metadata(obj: h5py.Group, reserved: frozenset) -> dict[str, Any]:
    if METADATA_ATTR in obj.attrs:
        return json.loads(obj.attrs[METADATA_ATTR])
    return {k: _to_jsonable(v) for k, v in obj.attrs.items() if k not in reserved}


def default_obs_keys(
    env_id: str, d_obs: int, env_kwargs: Mapping[str, Any] | None = None
) -> dict[str, tuple[int, int]]:
    """The env's ``obs_keys`` (key -> ``(start, stop)``), or ``{"obs": (0, d_obs)}``.

    Looks at the env class's ``obs_keys`` attribute first (no env is built), then at a
    ``gym.make(env_id, **env_kwargs)`` instance; the fallback is used when neither has one.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    import hint_envs  # noqa: F401  (registers the environments)

    keys = None
    try:
        entry_point = gym.spec(env_id).entry_point
        creator = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
        keys = getattr(creator, "obs_keys", None)
        if not isinstance(keys, Mapping):
            env = gym.make(env_id, **dict(env_kwargs or {}))
            keys = getattr(env.unwrapped, "obs_keys", None)
            env.close()
    except Exception as err:  # an unknown or unbuildable env: fall back to one key
        logger.info("no obs_keys from %s (%s); storing one key 'obs'", env_id, err)
        keys = None
    if not isinstance(keys, Mapping) or not keys:
        return {"obs": (0, d_obs)}
    return {str(k): (int(v[0]), int(v[1])) for k, v in keys.items()}


def env_bounds(env_id: str, env_kwargs: Mapping[str, Any] | None = None) -> EnvBounds:
    """The bounds of ``gym.make(env_id, **env_kwargs)`` (made once, then closed).

    Raises:
        gymnasium.error.Error: an unknown id, or a missing optional simulator
            (``DependencyNotInstalled`` names the pip extra).
        TypeError: not a control environment with Box spaces.
    """
    import gymnasium as gym

    import hint_envs  # noqa: F401  (registers the environments)

    env = gym.make(env_id, **dict(env_kwargs or {}))
    try:
        return EnvBounds.from_env(env)
    finally:
        env.close()


def _check_bounds(bounds: EnvBounds, d_u: int, d_obs: int, d_x: int | None, what: str) -> None:
    """Require ``bounds`` to fit data with ``d_u`` inputs, ``d_obs`` observation features
    and (if known) ``d_x`` control-state features; ValueError naming ``what`` otherwise."""
    if (bounds.d_u, bounds.d_obs) != (d_u, d_obs) or d_x not in (None, bounds.d_x):
        raise ValueError(
            f"{what}: the bounds have (d_u, d_obs, d_x) = "
            f"{(bounds.d_u, bounds.d_obs, bounds.d_x)} but the demonstrations have "
            f"{(d_u, d_obs, d_x)}; were they collected in another environment?"
        )


def _bounds_for_writing(env_id: str, env_kwargs: Mapping[str, Any]) -> EnvBounds:
    """:func:`env_bounds`, its failures as a ValueError that says how to write anyway."""
    import gymnasium as gym

    try:
        return env_bounds(env_id, env_kwargs)
    except (gym.error.Error, TypeError, ValueError, ImportError) as err:
        raise ValueError(
            f"cannot make {env_id} with env_kwargs {dict(env_kwargs)} here to store its "
            f"bounds ({err}); pass write_demonstrations(..., bounds=EnvBounds.from_env(env)) "
            "with the env the demonstrations were collected in"
        ) from err


def _write_bounds(group: h5py.Group, bounds: EnvBounds) -> None:
    for name, attr in BOUNDS_ATTRS.items():
        group.attrs[attr] = getattr(bounds, name)


def _read_bounds(group: h5py.Group, path: Path) -> EnvBounds | None:
    present = [attr for attr in BOUNDS_ATTRS.values() if attr in group.attrs]
    if not present:
        return None
    if len(present) != len(BOUNDS_ATTRS):
        missing = sorted(set(BOUNDS_ATTRS.values()) - set(present))
        raise _fail(
            path,
            f"'data' holds some bounds attributes but not {missing}; run "
            f"`{ADD_BOUNDS_COMMAND} {path}` on a copy written without them",
        )
    try:
        return EnvBounds(**{name: group.attrs[attr] for name, attr in BOUNDS_ATTRS.items()})
    except (TypeError, ValueError) as err:
        raise _fail(path, f"the bounds attributes of 'data' are malformed ({err})") from err


def _check_obs_keys(obs_keys: Mapping[str, Sequence[int]], d_obs: int) -> list[tuple]:
    """Validate that the slices tile ``[0, d_obs)``; return ``[(key, start, stop)]`` by start."""
    spans = sorted(
        ((str(k), int(v[0]), int(v[1])) for k, v in obs_keys.items()), key=lambda s: s[1]
    )
    position = 0
    for key, start, stop in spans:
        if start != position or stop <= start:
            raise ValueError(
                f"obs_keys must tile the flat observation [0, {d_obs}) with contiguous, "
                f"non-empty slices in order; got {dict(obs_keys)} (problem at {key!r})"
            )
        position = stop
    if position != d_obs:
        raise ValueError(
            f"obs_keys cover [0, {position}) but observations have {d_obs} features; "
            f"got {dict(obs_keys)}"
        )
    return spans


def _check_demo(index: int, demo: Demonstration, d_obs: int) -> None:
    """Shapes a demonstration needs to be written; raises ValueError naming the problem."""
    what = f"demonstration {index}"
    T = len(demo.actions)
    if T < 1:
        raise ValueError(f"{what} has no steps; robomimic needs at least one")
    shapes = {
        "observations": (np.ndim(demo.observations), 2),
        "actions": (np.ndim(demo.actions), 2),
        "rewards": (np.ndim(demo.rewards), 1),
        "dones": (np.ndim(demo.dones), 1),
        "states": (np.ndim(demo.states), 2),
        "final_observation": (np.ndim(demo.final_observation), 1),
        "final_state": (np.ndim(demo.final_state), 1),
    }
    for name, (ndim, expected) in shapes.items():
        if ndim != expected:
            raise ValueError(f"{what}: {name} must have {expected} axes, got {ndim}")
    for name in ("observations", "rewards", "dones", "states"):
        if len(getattr(demo, name)) != T:
            raise ValueError(
                f"{what}: {name} has {len(getattr(demo, name))} steps but actions has {T}"
            )
    if np.shape(demo.observations)[1] != d_obs or np.shape(demo.final_observation) != (d_obs,):
        raise ValueError(
            f"{what}: observations {np.shape(demo.observations)} and final_observation "
            f"{np.shape(demo.final_observation)} must have {d_obs} features like demonstration 0"
        )
    if np.shape(demo.final_state) != np.shape(demo.states)[1:]:
        raise ValueError(
            f"{what}: final_state {np.shape(demo.final_state)} does not match states "
            f"{np.shape(demo.states)}"
        )
    if demo.primitives is not None and len(demo.primitives) != T:
        raise ValueError(f"{what}: {len(demo.primitives)} primitive controllers for {T} steps")


def _split(n: int, valid_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded train/valid split of ``demo_0 .. demo_{n-1}`` (each list in index order)."""
    n_valid = min(int(round(valid_fraction * n)), max(n - 1, 0))
    order = np.random.default_rng(seed).permutation(n)
    valid = set(order[:n_valid].tolist())
    train_keys = [f"demo_{i}" for i in range(n) if i not in valid]
    valid_keys = [f"demo_{i}" for i in range(n) if i in valid]
    return train_keys, valid_keys


def _names(keys: Sequence[str]) -> np.ndarray:
    return np.array([k.encode("utf-8") for k in keys], dtype="S")


# --------------------------------------------------------------------------- writing


def write_demonstrations(
    path: str | os.PathLike,
    demos: Sequence[Demonstration],
    env_id: str,
    env_kwargs: dict | None = None,
    obs_keys: dict | None = None,
    valid_fraction: float = 0.1,
    seed: int = 0,
    attrs: dict | None = None,
    overwrite: bool = False,
    compression: str | None = "gzip",
    bounds: EnvBounds | None = None,
) -> Path:
    """Write ``demos`` to ``path`` in robomimic's layout (module docstring), atomically.

    The file is written to a temporary file in the same directory and moved into place
    with ``os.replace``, so ``path`` never holds a half-written file.

    Args:
        path: the ``.hdf5`` file to write (parent directories are created).
        demos: the demonstrations, stored as ``demo_0, demo_1, ...`` in this order.
        env_id: gymnasium id, stored in ``data.attrs["env_args"]``.
        env_kwargs: ``gym.make`` keyword arguments (JSON-serialisable), default ``{}``.
        obs_keys: observation key -> ``(start, stop)`` slices tiling the flat
            observation; default the env's ``obs_keys`` or ``{"obs": (0, d_obs)}``.
        valid_fraction: fraction of demos in ``mask/valid`` (rounded; at least one
            demo stays in ``mask/train``), in ``[0, 1)``.
        seed: seed of the train/valid split (stored as the ``split_seed`` attr).
        attrs: extra file-level metadata (JSON-serialisable), e.g. the collection seed.
        overwrite: replace an existing file at ``path``.
        compression: HDF5 filter of the per-step arrays: ``"gzip"`` (default: lossless,
            with byte shuffling; h5py and so robomimic read it transparently; the arrays
            of a Robomimic file shrink about 1.6-fold, its MuJoCo states compressing
            least) or None. Arrays under :data:`GZIP_MIN_BYTES` are stored uncompressed
            either way: a compressed dataset's chunk index outweighs what gzip saves on
            them (1000 short PushT demonstrations: 50 MB gzipped, 34 MB as stored).
            Every non-empty dataset carries a ``fletcher32`` checksum whatever this says.
        bounds: the env's bounds (:class:`hint_envs.core.EnvBounds`), stored as attributes
            of ``data``; default: those of ``gym.make(env_id, **env_kwargs)``, made once.

    Returns:
        the absolute path written.

    Raises:
        FileExistsError: ``path`` exists and ``overwrite`` is False.
        ValueError: no demos, inconsistent arrays, bad ``obs_keys``/``valid_fraction``,
            metadata that is not JSON-serialisable, or bounds of other dimensions than
            the demonstrations', or, without ``bounds``, an ``env_id`` that cannot be made
            here (or is not a control environment).
    """
    path = Path(path).expanduser().resolve()
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists; pass overwrite=True (hint-collect: --overwrite) to replace it"
        )
    if not demos:
        raise ValueError("no demonstrations to write")
    if not 0.0 <= float(valid_fraction) < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    env_kwargs = dict(env_kwargs or {})
    d_obs = int(np.shape(demos[0].observations)[-1])
    for index, demo in enumerate(demos):
        _check_demo(index, demo, d_obs)
    if obs_keys is None:
        obs_keys = default_obs_keys(env_id, d_obs, env_kwargs)
    spans = _check_obs_keys(obs_keys, d_obs)
    env_args = _dump_json(
        {"env_name": env_id, "type": ROBOMIMIC_GYM_TYPE, "env_kwargs": env_kwargs}, "env_kwargs"
    )
    file_attrs: dict[str, Any] = {
        "hint_envs_version": _version(),
        "command": shlex.join(sys.argv),
        "split_seed": int(seed),
        "valid_fraction": float(valid_fraction),
    }
    file_attrs.update(_to_jsonable(dict(attrs or {})))
    _dump_json(file_attrs, "attrs")
    train_keys, valid_keys = _split(len(demos), float(valid_fraction), int(seed))
    if compression not in (None, "gzip"):
        raise ValueError(f"compression must be 'gzip' or None, got {compression!r}")
    filters = {"compression": "gzip", "shuffle": True} if compression else {}
    if bounds is None:  # last: every cheap check first
        bounds = _bounds_for_writing(env_id, env_kwargs)
    if not isinstance(bounds, EnvBounds):
        raise TypeError(f"bounds must be an EnvBounds or None, got {type(bounds).__name__}")
    first = demos[0]
    d_x = None if first.primitives is None else first.primitives.x_bar.shape[-1]
    _check_bounds(bounds, int(np.shape(first.actions)[-1]), d_obs, d_x, f"{env_id} at {path}")

    # built in memory (HDF5's "core" driver lays it out byte for byte as on disk), then
    # written in one go, atomically (write_file): HDF5 writing to a full disk can crash the
    # process, while a plain write fails with ENOSPC and leaves nothing behind
    with h5py.File(path.name, "w", driver="core", backing_store=False, libver=LIBVER) as f:
        _write_metadata(f, file_attrs, _RESERVED_FILE_ATTRS)
        data = f.create_group("data")
        _set_text(data, "env_args", env_args)
        data.attrs["total"] = int(sum(len(d) for d in demos))
        _set_text(data, "obs_keys", json.dumps([list(span) for span in spans]))
        _write_bounds(data, bounds)
        for index, demo in enumerate(demos):
            _write_demo(data.create_group(f"demo_{index}"), demo, spans, filters)
        mask = f.create_group("mask")
        for name, keys in (("train", train_keys), ("valid", valid_keys)):
            names = _names(keys).astype("S" + _width(keys))
            _create(mask, name, names, {})
        f.flush()
        image = f.id.get_file_image()
    write_file(path, image)
    logger.info("wrote %d demonstrations (%d steps) to %s", len(demos), sum(map(len, demos)), path)
    return path


def _width(keys: Sequence[str]) -> str:
    return str(max((len(k) for k in keys), default=1))


def _create(group: h5py.Group, name: str, data: np.ndarray, filters: dict) -> None:
    """``group[name] = data``, compressed with ``filters`` if it is large enough to gain,
    and checksummed (``fletcher32``) unless empty (HDF5 cannot chunk an empty array)."""
    data = np.asarray(data)
    if data.size == 0:
        group.create_dataset(name, data=data)
    elif filters and data.nbytes >= GZIP_MIN_BYTES:
        group.create_dataset(name, data=data, fletcher32=True, **filters)
    else:  # one chunk holding the whole array: no chunk index in the 1.10 format
        group.create_dataset(name, data=data, fletcher32=True, chunks=data.shape)


def _write_demo(group: h5py.Group, demo: Demonstration, spans: list[tuple], filters: dict) -> None:
    observations = np.asarray(demo.observations)
    final_obs = np.asarray(demo.final_observation)
    next_obs = np.concatenate([observations[1:], final_obs[None]], axis=0)
    group.attrs["num_samples"] = len(demo)
    _write_metadata(group, demo.attrs, _RESERVED_DEMO_ATTRS)
    for key, start, stop in spans:
        _create(group, f"obs/{key}", observations[:, start:stop], filters)
        _create(group, f"next_obs/{key}", next_obs[:, start:stop], filters)
    for name in _STEP_DATASETS:
        _create(group, name, getattr(demo, name), filters)
    _create(group, "final_obs", final_obs, {})
    _create(group, "final_state", np.asarray(demo.final_state), {})
    if demo.primitives is not None:
        for name in _PRIMITIVE_DATASETS:
            values = getattr(demo.primitives, name)
            _create(group, f"primitives/{name}", values, filters)


def _version() -> str:
    from hint_envs import __version__

    return __version__


# --------------------------------------------------------------------------- reading


def read_demonstrations(path: str | os.PathLike) -> DemoFile:
    """Read a file written by :func:`write_demonstrations`.

    Returns:
        a :class:`DemoFile` whose demonstrations equal those written (arrays bit for bit;
        numpy scalars in metadata come back as plain Python numbers).

    Raises:
        DatasetError: the file is missing, is not HDF5 (or is truncated/corrupt: undecodable
            bytes, a failed checksum, NaN or inf in an array), or is an HDF5 file not in
            this layout; the message names the file, the group or dataset when known, and
            the problem.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetError(
            f"{path}: no such file; generate demonstrations with "
            "`hint-collect ENV_ID --episodes N --out FILE`"
        )
    if path.is_dir():
        raise DatasetError(f"{path}: is a directory, expected an HDF5 demonstration file")
    try:
        f = h5py.File(path, "r")
    except _H5_ERRORS as err:
        raise DatasetError(
            f"{path}: not a readable HDF5 file (truncated, corrupt or another format): {err}; "
            "regenerate it with `hint-collect`"
        ) from err
    try:
        with f:
            return _read(f, path)
    except DatasetError:
        raise
    except _H5_ERRORS as err:  # undecodable bytes outside any one dataset
        raise _corrupt(path, "", err) from err


def _corrupt(path: Path, where: str, err: BaseException) -> DatasetError:
    """The error of bytes h5py cannot decode (at ``where``, an HDF5 name, if known)."""
    at = f" at '{where.lstrip('/')}'" if where else ""
    return DatasetError(
        f"{path}: corrupt file{at} ({type(err).__name__}: {err}); regenerate it with `hint-collect`"
    )


def _fail(path: Path, message: str) -> DatasetError:
    return DatasetError(f"{path}: {message}; is it a demonstration file written by hint_envs?")


def _read(f: h5py.File, path: Path) -> DemoFile:
    try:
        data = _member(f, "data", path)
    except KeyError:
        data = None
    if not isinstance(data, h5py.Group):
        raise _fail(path, "no 'data' group (robomimic layout: data/demo_i/...)")
    if "env_args" not in data.attrs:
        raise _fail(path, "'data' has no 'env_args' attribute")
    try:
        env_args = json.loads(data.attrs["env_args"])
        env_id = env_args["env_name"]
        env_kwargs = env_args.get("env_kwargs", {})
    except (TypeError, ValueError, KeyError) as err:
        raise _fail(path, f"data.attrs['env_args'] is not JSON with an 'env_name' ({err})") from err
    try:
        env_id = check_file_env_id(env_id, "data.attrs['env_args']['env_name']")
    except ValueError as err:
        raise DatasetError(f"{path}: {err}") from None
    if not isinstance(env_kwargs, dict) or not all(isinstance(k, str) for k in env_kwargs):
        raise _fail(
            path, f"data.attrs['env_args']['env_kwargs'] is not a JSON object: {env_kwargs!r}"
        )

    names = list(data.keys())
    bad = [name for name in names if not _DEMO_NAME.match(name)]
    if bad:
        raise _fail(path, f"'data' holds groups not named demo_<i>: {bad[:5]}")
    names.sort(key=lambda name: int(_DEMO_NAME.match(name).group(1)))
    if not names:
        raise _fail(path, "'data' holds no demonstrations")
    expected = [f"demo_{i}" for i in range(len(names))]
    if names != expected:
        raise _fail(path, f"demonstrations must be numbered demo_0 .. demo_{len(names) - 1}")

    if "obs_keys" in data.attrs:
        try:
            spans = [(str(k), int(a), int(b)) for k, a, b in json.loads(data.attrs["obs_keys"])]
        except (TypeError, ValueError) as err:
            raise _fail(path, f"data.attrs['obs_keys'] is malformed ({err})") from err
    else:
        spans = None

    demos = []
    for name in names:
        try:
            demos.append(_read_demo(_member(data, name, path), name, spans, path))
        except DatasetError:
            raise
        except _H5_ERRORS as err:
            raise _corrupt(path, f"data/{name}", err) from err
    if spans is None:
        spans = _spans_from_group(data[names[0]], path, names[0])
    obs_keys = {key: (start, stop) for key, start, stop in spans}
    bounds = _read_bounds(data, path)
    if bounds is not None:
        first = demos[0]
        d_x = None if first.primitives is None else first.primitives.x_bar.shape[-1]
        try:
            what = "data.attrs"
            _check_bounds(bounds, first.actions.shape[-1], first.observations.shape[-1], d_x, what)
        except ValueError as err:
            raise _fail(path, str(err)) from err
        _check_actions_in_bounds(demos, bounds, path)

    if "mask" in f and "train" in f["mask"] and "valid" in f["mask"]:
        train_keys = [k.decode("utf-8") for k in _member(f, "mask/train", path)[()]]
        valid_keys = [k.decode("utf-8") for k in _member(f, "mask/valid", path)[()]]
        unknown = sorted(set(train_keys + valid_keys) - set(names))
        if unknown:
            raise _fail(path, f"mask names demonstrations that are not in 'data': {unknown[:5]}")
    else:
        logger.warning("%s has no mask/train and mask/valid; every demo counts as train", path)
        train_keys, valid_keys = list(names), []
    return DemoFile(
        env_id=env_id,
        env_kwargs=env_kwargs,
        demos=demos,
        train_keys=train_keys,
        valid_keys=valid_keys,
        attrs=_read_metadata(f, _RESERVED_FILE_ATTRS),
        obs_keys=obs_keys,
        path=path.resolve(),
        bounds=bounds,
    )


def _check_actions_in_bounds(demos: list[Demonstration], bounds: EnvBounds, path: Path) -> None:
    """Every recorded input lies in the stored action bounds (experts' inputs are the
    env's, clipped to its action space), so bounds that do not describe the data — e.g.
    edited to ``[0, 1e-9]``, which would become the policy's action bound — are refused."""
    low, high = np.asarray(bounds.action_low), np.asarray(bounds.action_high)
    slack = 1e-6 * np.maximum(1.0, np.abs(high - low))
    for index, demo in enumerate(demos):
        outside = (demo.actions < low - slack) | (demo.actions > high + slack)
        if np.any(outside):
            t, i = map(int, np.argwhere(outside)[0])
            raise DatasetError(
                f"{path}: demo_{index} input {i} at step {t} is {demo.actions[t, i]:.6g}, "
                f"outside the stored action bounds [{low[i]:.6g}, {high[i]:.6g}]; the bounds "
                "attributes do not describe this data: the file was edited or is corrupt"
            )


def _member(group: h5py.Group, key: str, path: Path) -> Any:
    """``group[key]`` (``key`` may be ``"obs/x"``), following only hard links: a file that
    reaches outside itself — an external or soft link, a dataset stored in another (raw)
    file, a virtual dataset mapping other files — is refused. hint_envs writes none of
    these, and reading one would read whatever file it names."""
    node = group
    for part in key.split("/"):
        link = node.get(part, getlink=True)
        where = f"{node.name.rstrip('/')}/{part}".lstrip("/")
        if link is None:
            raise KeyError(where)
        if not isinstance(link, h5py.HardLink):
            raise _outside(path, f"'{where}' is a link ({type(link).__name__})")
        node = node[part]
    if isinstance(node, h5py.Dataset):
        plist = node.id.get_create_plist()
        if plist.get_external_count():
            raise _outside(path, f"'{node.name.lstrip('/')}' is stored in an external file")
        if plist.get_layout() == h5py.h5d.VIRTUAL:
            raise _outside(path, f"'{node.name.lstrip('/')}' is a virtual dataset")
    return node


def _outside(path: Path, what: str) -> DatasetError:
    return DatasetError(
        f"{path}: refused: {what}; demonstration files are read as data, so links to other "
        "files and external storage are not followed"
    )


def _spans_from_group(group: h5py.Group, path: Path, name: str) -> list[tuple]:
    """Observation keys of a file without ``obs_keys`` attr: the obs group's, sorted."""
    if "obs" not in group:
        raise _fail(path, f"{name} has no 'obs' group")
    spans, start = [], 0
    for key in sorted(group["obs"].keys()):
        width = int(np.prod(group["obs"][key].shape[1:], dtype=np.int64))
        spans.append((key, start, start + width))
        start += width
    return spans


def _dataset(group: h5py.Group, key: str, path: Path, name: str) -> np.ndarray:
    """``group[key]`` read whole; a floating-point array must be finite."""
    try:
        try:
            node = _member(group, key, path)
        except KeyError:
            raise _fail(path, f"{name} has no dataset '{key}'") from None
        if not isinstance(node, h5py.Dataset):
            raise _fail(path, f"{name} has no dataset '{key}'")
        value = node[()]
    except DatasetError:
        raise
    except _H5_ERRORS as err:  # e.g. a failed fletcher32 checksum: "filter returned failure"
        raise _corrupt(path, f"{group.name}/{key}", err) from err
    if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
        raise DatasetError(
            f"{path}: '{group.name.lstrip('/')}/{key}' holds NaN or inf, which hint_envs "
            "never writes; the file is corrupt, regenerate it with `hint-collect`"
        )
    return value


def _read_demo(group: h5py.Group, name: str, spans: list[tuple] | None, path: Path):
    if not isinstance(group, h5py.Group):
        raise _fail(path, f"data/{name} is not a group")
    if spans is None:
        spans = _spans_from_group(group, path, name)
    arrays = {key: _dataset(group, key, path, name) for key in _STEP_DATASETS}
    T = len(arrays["actions"])
    if "num_samples" in group.attrs and int(group.attrs["num_samples"]) != T:
        raise _fail(
            path, f"{name}: num_samples = {int(group.attrs['num_samples'])} but {T} actions"
        )
    parts = []
    for key, start, stop in spans:
        part = _dataset(group, f"obs/{key}", path, name)
        part = part.reshape(len(part), -1)
        if part.shape[1] != stop - start:
            raise _fail(path, f"{name}: obs/{key} has {part.shape[1]} features, not {stop - start}")
        parts.append(part)
    observations = np.concatenate(parts, axis=1)
    for key, value in list(arrays.items()) + [("obs", observations)]:
        if len(value) != T:
            raise _fail(path, f"{name}: '{key}' has {len(value)} steps but 'actions' has {T}")
    final_obs = _dataset(group, "final_obs", path, name)
    final_state = _dataset(group, "final_state", path, name)
    if final_obs.shape != observations.shape[1:]:
        raise _fail(path, f"{name}: final_obs {final_obs.shape} vs obs {observations.shape}")
    primitives = None
    if group.get("primitives", getlink=True) is not None:
        primitive_group = _member(group, "primitives", path)
        values = [_dataset(primitive_group, key, path, name) for key in _PRIMITIVE_DATASETS]
        try:
            primitives = Primitives(*values)
        except ValueError as err:
            raise _fail(path, f"{name}: inconsistent primitives ({err})") from err
        if len(primitives) != T:
            raise _fail(path, f"{name}: {len(primitives)} primitive controllers for {T} steps")
    return Demonstration(
        observations=observations,
        actions=arrays["actions"],
        rewards=arrays["rewards"],
        dones=arrays["dones"],
        states=arrays["states"],
        final_observation=final_obs,
        final_state=final_state,
        primitives=primitives,
        attrs=_read_metadata(group, _RESERVED_DEMO_ATTRS),
    )


# --------------------------------------------------------------------------- adding bounds


def add_bounds(path: str | os.PathLike, bounds: EnvBounds | None = None) -> bool:
    """Store the env's bounds in a demonstration file written without them, in place.

    The env is made once from the file's own ``env_args`` (id and kwargs) unless
    ``bounds`` is given. The file is copied to a hidden temporary name beside it, the
    attributes (:data:`BOUNDS_ATTRS`) are added to the copy, the copy is read back whole
    (checksums, bounds against the arrays), and it is moved over the file
    (:func:`hint_envs._io.atomic_path`): the datasets are untouched, and a kill leaves the
    old file.

    Returns:
        True if the bounds were added, False if the file already held the same ones.

    Raises:
        DatasetError: the file is missing or unreadable, or already holds other bounds
            (which are never replaced).
        gymnasium.error.Error, TypeError: the file's env cannot be made here (the message
            names the pip extra) or is not a control environment.
    """
    import shutil

    path = Path(path).expanduser()
    demo_file = read_demonstrations(path)
    if bounds is None:
        bounds = env_bounds(demo_file.env_id, demo_file.env_kwargs)
    first = demo_file.demos[0]
    d_x = None if first.primitives is None else first.primitives.x_bar.shape[-1]
    _check_bounds(
        bounds,
        first.actions.shape[-1],
        first.observations.shape[-1],
        d_x,
        f"{path} ({demo_file.env_id})",
    )
    if demo_file.bounds is not None:
        if demo_file.bounds.equals(bounds):
            logger.info("%s already holds these bounds; left as it is", path)
            return False
        raise DatasetError(
            f"{path} already holds other bounds than {demo_file.env_id} "
            f"{demo_file.env_kwargs or ''} has here (stored: {demo_file.bounds}; here: "
            f"{bounds}); they are never replaced: check the env's version, or write the "
            "demonstrations anew with hint-collect"
        )
    with atomic_path(path) as tmp:
        shutil.copyfile(path, tmp)
        with h5py.File(tmp, "r+", libver=LIBVER) as f:
            _write_bounds(f["data"], bounds)
        written = read_demonstrations(tmp).bounds
        if written is None or not written.equals(bounds):  # pragma: no cover (h5py bug)
            raise DatasetError(f"{path}: the bounds did not read back; the file is unchanged")
    logger.info("added the bounds of %s to %s", demo_file.env_id, path)
    return True
