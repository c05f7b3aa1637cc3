"""Files that survive a kill, and the error for a file that cannot be read.

Every file a long job leaves for a later run to trust (demonstration files, saved
policies, training checkpoints, leaderboard records) is written through :func:`atomic_path`
or :func:`atomic_dir`: first under a hidden temporary name in the target's folder
(``.<name>.<32 hex>.tmp``), then moved over the target with ``os.replace``, atomic on
POSIX within one file system. A kill at any moment leaves the target absent, as it was,
or complete, never half-written; at worst a hidden ``.tmp`` entry stays behind, which no
reader looks at and :func:`remove_temporaries` deletes.

(Ctrl-C: the commands report it with :func:`hint_envs._cli.interrupted`; worker processes
ignore it and are stopped by :mod:`hint_envs._workers`.)

Only the standard library is imported here, so every module of the package can use it.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetError",
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "remove_temporaries",
]


class DatasetError(ValueError):
    """A demonstration file is missing, unreadable, or not in the expected layout.

    Defined here, with no package imports, so that the command-line helpers
    (:mod:`hint_envs._cli`) can catch it without importing :mod:`hint_envs.data`; it is
    exported as ``hint_envs.data.DatasetError``.
    """


def _temporary_name(path: Path) -> Path:
    return path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"


def _fsync(path: Path) -> None:
    """Flush ``path``'s data to disk, so a crash after the rename cannot leave it empty."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to; moved over ``path`` on success.

    The temporary path is a fresh hidden name in ``path``'s folder (created if needed) and
    does not exist yet, so the writer may create it exclusively (``open(tmp, "xb")``,
    ``h5py.File(tmp, "x")``). When the block ends normally the file is flushed to disk and
    renamed over ``path``; when it raises (Ctrl-C included), the temporary file is
    deleted and ``path`` is untouched.

    Example::

        with atomic_path("out/demos.hdf5") as tmp:
            with h5py.File(tmp, "x") as f:
                ...
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Like :func:`atomic_path` for a folder: fill the yielded empty folder, it becomes ``path``.

    A folder ``path`` that already exists is replaced: it is renamed to a temporary name,
    the new folder renamed into place, and the old one deleted; a kill in between leaves
    ``path`` absent (never a mixture of old and new files) and the old folder under its
    hidden temporary name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    tmp.mkdir()
    try:
        yield tmp
        for file in tmp.iterdir():
            if file.is_file():
                _fsync(file)
        if path.exists():
            old = _temporary_name(path)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "xb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike, data: Any, indent: int = 2) -> None:
    """Write ``data`` as JSON (strict: no NaN or infinity) to ``path`` atomically."""
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    atomic_write_bytes(path, text.encode())


def remove_temporaries(
    folder: str | os.PathLike, recursive: bool = False, name: str | None = None
) -> list[Path]:
    """Delete the hidden ``.<name>.<hex>.tmp`` files and folders a killed writer left.

    Args:
        folder: where to look.
        recursive: also in its subfolders.
        name: only the temporaries of the target of this file name (default: all).

    Only call this while no other process writes into ``folder`` (or to ``name``).

    Returns:
        the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{glob.escape(name)}.*.tmp" if name is not None else ".*.tmp"
    found = folder.rglob(pattern) if recursive else folder.glob(pattern)
    removed = []
    for path in sorted(found):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed
