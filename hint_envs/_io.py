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

Two runs writing one output would replace each other's work: every command takes an
exclusive lock on its output first (:func:`output_lock`: a ``<output>.lock`` file beside
it, holding the holder's pid and host), refused at once while a live process holds it and
taken over, with a message, from a process that no longer runs. The leaderboard takes one
per job (:func:`try_lock`) so two runs of one suite share the work.

Only the standard library is imported here, so every module of the package can use it.
"""

from __future__ import annotations

import errno
import glob
import json
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "DatasetError",
    "OutputLockedError",
    "ResourceError",
    "available_memory",
    "check_memory",
    "lock_is_held",
    "output_lock",
    "release_lock",
    "try_lock",
    "atomic_dir",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "write_file",
    "remove_temporaries",
]


class DatasetError(ValueError):
    """A demonstration file is missing, unreadable, or not in the expected layout.

    Defined here, with no package imports, so that the command-line helpers
    (:mod:`hint_envs._cli`) can catch it without importing :mod:`hint_envs.data`; it is
    exported as ``hint_envs.data.DatasetError``.
    """


logger = logging.getLogger(__name__)


class ResourceError(ValueError):
    """A request the machine cannot hold (memory, disk), refused before any work."""


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(nbytes: float, what: str, advice: str) -> None:
    """Refuse ``what`` if its ``nbytes`` exceed the memory available here (estimate and
    limit in the message, with ``advice``), before anything is allocated.

    Raises:
        ResourceError: it does not fit.
    """
    free = available_memory()
    if free is not None and nbytes > free:
        raise ResourceError(
            f"{what} would need about {nbytes / 2**30:.1f} GiB of memory, more than the "
            f"{free / 2**30:.1f} GiB available here; {advice}"
        )


class OutputLockedError(RuntimeError):
    """Another live process holds the lock on an output (see :func:`output_lock`)."""


def lock_file(target: str | os.PathLike) -> Path:
    """The lock file of an output file or folder: ``<target>.lock`` beside it."""
    target = Path(target).absolute()
    return target.with_name(target.name + ".lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def try_lock(target: str | os.PathLike, what: str = "") -> Path | None:
    """Take the exclusive lock on ``target`` (a file or folder, existing or not).

    Returns:
        the lock file (remove it with :func:`release_lock`), or None if a live process on
        this host holds it. A lock left by a process that no longer runs is taken over, with
        a warning naming it.

    Raises:
        OutputLockedError: the lock belongs to another host (whether it runs is unknown).
        OSError: the lock file cannot be written (an unwritable folder).
    """
    path = lock_file(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(), "what": what}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if not holder and _age(path) < LOCK_WRITE_GRACE_S:
                return None  # being taken this instant: its holder is still writing it
            if holder.get("host") not in (None, mine["host"]):
                raise OutputLockedError(
                    f"{target} is locked by process {holder.get('pid')} on host "
                    f"{holder['host']} ({path}); remove the lock file if that run is over"
                ) from None
            pid = holder.get("pid")
            if pid == os.getpid() or (isinstance(pid, int) and _alive(pid)):
                return None  # held: by a live process, or by this one already
            logger.warning(
                "taking over the lock %s left by process %s, which no longer runs", path, pid
            )
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(mine, f)
        return path
    return None


#: A lock file younger than this whose content cannot be read is being written, not stale.
LOCK_WRITE_GRACE_S = 5.0


def _age(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def _holder(path: Path) -> dict[str, Any]:
    try:
        holder = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # half-written by a process killed while taking it: stale
    return holder if isinstance(holder, dict) else {}


def lock_is_held(path: str | os.PathLike) -> bool:
    """Whether the lock file ``path`` belongs to a live process (on this host, or any
    process on another host)."""
    holder = _holder(Path(path))
    if holder.get("host") not in (None, socket.gethostname()):
        return True
    pid = holder.get("pid")
    return isinstance(pid, int) and _alive(pid)


def release_lock(path: Path | None) -> None:
    """Remove a lock taken by :func:`try_lock` (if it is still this process's)."""
    if path is not None and _holder(path).get("pid") == os.getpid():
        path.unlink(missing_ok=True)


@contextmanager
def output_lock(target: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold the exclusive lock on the output ``target`` for the ``with`` block.

    Raises:
        OutputLockedError: another live process holds it; the message names it, so a
            second command on one output stops at once instead of replacing the first's
            work.
    """
    path = try_lock(target, what)
    if path is None:
        holder = _holder(lock_file(target))
        since = time.strftime("%H:%M:%S", time.localtime(holder.get("since", 0)))
        raise OutputLockedError(
            f"{target} is being written by {holder.get('what') or 'another run'} (process "
            f"{holder.get('pid')}, since {since}); wait for it to finish or choose another "
            "output"
        )
    try:
        yield path
    finally:
        release_lock(path)


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


def write_file(path: str | os.PathLike, data: bytes) -> None:
    """:func:`atomic_write_bytes` after checking the folder has room for ``data``.

    Raises:
        OSError: not enough free space (checked first, ``errno.ENOSPC``) or any write
            error; either way ``path`` is untouched and no temporary file is left.
    """
    path = Path(path)
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if len(data) > free:
        raise OSError(
            errno.ENOSPC,
            f"{len(data) / 2**20:.1f} MiB to write but {free / 2**20:.1f} MiB free on the "
            f"disk of {folder}",
        )
    atomic_write_bytes(path, data)


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
