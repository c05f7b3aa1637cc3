"""Worker processes for collection and evaluation, with errors a user can act on.

The pools are *spawned* (safe with threads, the same on every platform). A spawned
process starts by re-importing the script that launched it, so a script that calls
``collect_demonstrations(..., workers=2)`` or ``evaluate(..., workers=2)`` at its top
level, without an ``if __name__ == "__main__":`` guard, would start the work again in
every worker. Python then either breaks the pool or, when a large argument is being sent
to a worker that already died, waits forever. :func:`spawn_pool` recognises that case
before it starts a process and says how to fix it.

Workers ignore Ctrl-C; the calling process reports it and stops them at once
(:func:`worker_pool`, used by collection and by the rollouts of evaluation).
"""

from __future__ import annotations

import ast
import contextlib
import multiprocessing
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "check_workers",
    "ignore_sigint",
    "spawn_pool",
    "stop_workers",
    "worker_errors",
    "worker_pool",
]

_GUARD_HINT = (
    'put the call under `if __name__ == "__main__":` (spawned workers re-import the '
    "script that starts them), or pass workers=1"
)


def check_workers(workers: Any) -> int:
    """``workers`` as an int, or ValueError unless it is an integer >= 1."""
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    return int(workers)


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    operands = [test.left, *test.comparators]
    names = [o.id for o in operands if isinstance(o, ast.Name)]
    constants = [o.value for o in operands if isinstance(o, ast.Constant)]
    return names == ["__name__"] and constants == ["__main__"]


def unguarded_main_line() -> tuple[str, int] | None:
    """``(script, line)`` if this call comes from top-level code of the ``__main__`` script
    outside an ``if __name__ == "__main__":`` block (which a spawned worker would run
    again), else None. Interactive sessions and ``python -c`` have no script to re-run."""
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script is None:
        return None
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            break
        frame = frame.f_back
    if frame is None:
        return None
    line = frame.f_lineno
    try:
        tree = ast.parse(Path(frame.f_code.co_filename).read_text())
    except (OSError, SyntaxError, ValueError):
        return None  # cannot tell: do not stand in the way
    for node in tree.body:
        if _is_main_guard(node) and node.lineno <= line <= (node.end_lineno or node.lineno):
            return None
    return frame.f_code.co_filename, line


def spawn_pool(
    workers: int, initializer: Callable[..., Any] | None = None, initargs: tuple = ()
) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each set up once by
    ``initializer(*initargs)``. The workers ignore Ctrl-C: the calling process reports it
    and stops them (:func:`worker_pool`).

    Raises:
        RuntimeError: the call comes from a script's top level without a
            ``__main__`` guard (see the module docstring); nothing is started.
    """
    where = unguarded_main_line()
    if where is not None:
        script, line = where
        raise RuntimeError(
            f"workers={workers} was asked for at {script}:{line}, outside an "
            f'`if __name__ == "__main__":` block: {_GUARD_HINT}'
        )
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(initializer, initargs),
    )


def _start_worker(initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    ignore_sigint()
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def worker_errors(what: str) -> Iterator[None]:
    """Turn a broken pool (a worker process died: killed, out of memory, or failed to
    start) into a RuntimeError that says what was running."""
    try:
        yield
    except BrokenProcessPool as error:
        raise RuntimeError(
            f"a worker process of {what} died before finishing (killed, out of memory, or "
            f"it failed to start: if its error above mentions bootstrapping, {_GUARD_HINT})"
        ) from error


def ignore_sigint() -> None:
    """Make this process ignore SIGINT: the initializer of worker processes.

    Ctrl-C in a terminal signals every process of the job; workers ignoring it let the
    main process alone report the interruption and stop them, instead of each worker
    printing its own traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def stop_workers(pool: Any) -> None:
    """Stop a ``concurrent.futures.ProcessPoolExecutor`` now, killing running tasks.

    ``pool.shutdown`` alone waits for the running tasks to finish, which after Ctrl-C can
    take minutes (the workers ignore SIGINT, :func:`ignore_sigint`); Python 3.14 has
    ``pool.terminate_workers()`` for this.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()
    pool.shutdown(wait=True)  # the pool's thread sees its workers gone and frees its queues


@contextlib.contextmanager
def worker_pool(
    workers: int,
    what: str,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
) -> Iterator[ProcessPoolExecutor | None]:
    """:func:`spawn_pool` for a ``with`` block (None when ``workers == 1``: run in this
    process). A dead worker becomes a RuntimeError naming ``what``; Ctrl-C stops the
    workers at once; on leaving, the pool is shut down without starting queued tasks."""
    if workers == 1:
        yield None
        return
    pool = spawn_pool(workers, initializer, initargs)
    try:
        with worker_errors(what):
            yield pool
    except KeyboardInterrupt:
        stop_workers(pool)
        raise
    finally:
        pool.shutdown(cancel_futures=True)
