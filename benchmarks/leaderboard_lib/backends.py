"""Where the leaderboard's jobs execute: this process, a local process pool, or Ray.

Every backend calls the same :func:`~.runs.run_job` on the same jobs and yields
``(job, records)`` (or ``(job, exception)``) as jobs finish, in completion order. Records
depend only on the job (every seed comes from the suite), so the backends give the same
records; only timings and the host differ.

* ``local`` with ``workers == 1``: jobs run one after another in this process.
* ``local`` with ``workers > 1``: a ``ProcessPoolExecutor`` of ``workers`` spawned
  processes.
* ``ray``: one Ray task per job, ``num_cpus = threads``, on the cluster at ``address``
  (``ray.init()`` starts a local one when None). The demonstration files travel as bytes
  through Ray's object store, and the code of ``hint_envs``, ``policies`` and this package
  travels with the tasks (``runtime_env={"py_modules": ...}``), so cluster nodes need
  only the third-party dependencies (``pip install "hint_envs[policies]"`` or the same
  requirements) — no shared file system and no checkout.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from hint_envs._workers import ignore_sigint, stop_workers

from .runs import run_job
from .suite import Job

__all__ = ["BACKENDS", "execute"]

logger = logging.getLogger(__name__)

#: Backend names ``--backend`` accepts.
BACKENDS = ("local", "ray")

Outcome = tuple[Job, "list[dict[str, Any]] | BaseException"]


def execute(
    jobs: list[Job],
    demo_paths: list[Path],
    *,
    backend: str = "local",
    workers: int = 1,
    threads: int = 1,
    address: str | None = None,
    gpus: float = 0.0,
    progress: bool = False,
    tensorboard: Path | None = None,
    claim: Callable[[Job], bool] | None = None,
) -> Iterator[Outcome]:
    """Run ``jobs``, yielding each with its records (or the exception it raised).

    Args:
        jobs: the jobs to run.
        demo_paths: the demonstration file of each job (same order as ``jobs``).
        backend: ``"local"`` or ``"ray"``.
        workers: local processes (``1``: this process); ignored by Ray, which runs as
            many tasks at once as the cluster has CPUs for.
        threads: torch threads per job (Ray: CPUs reserved per task).
        address: Ray cluster address (None: start a local Ray).
        gpus: GPUs Ray reserves per task (local jobs share whatever GPU they find).
        progress: show each job's own training/evaluation bars (only useful with one
            local worker).
        tensorboard: folder of TensorBoard runs, one per job (local backend only).
        claim: called for each job just before it starts (the local backend starts a job
            when a worker is free); a job it returns False for is skipped — e.g. one that
            another leaderboard on the same folder is computing.

    Yields:
        ``(job, records)`` or ``(job, exception)`` as jobs finish.
    """
    paths = list(demo_paths)
    if len(paths) != len(jobs):
        raise ValueError(f"{len(jobs)} jobs but {len(paths)} demonstration files")
    claim = claim or (lambda job: True)
    if backend == "local":
        if workers == 1:
            yield from _in_process(jobs, paths, threads, progress, tensorboard, claim)
        else:
            yield from _process_pool(jobs, paths, workers, threads, tensorboard, claim)
    elif backend == "ray":
        if tensorboard is not None:
            raise ValueError("TensorBoard logs are written by the local backend only")
        claimed = [(job, path) for job, path in zip(jobs, paths, strict=True) if claim(job)]
        yield from _ray([j for j, _ in claimed], [p for _, p in claimed], threads, address, gpus)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")


def _in_process(
    jobs: list[Job],
    paths: list[Path],
    threads: int,
    progress: bool,
    tensorboard: Path | None,
    claim: Callable[[Job], bool],
) -> Iterator[Outcome]:
    for job, path in zip(jobs, paths, strict=True):
        if not claim(job):
            continue
        try:
            yield job, run_job(job, path, threads, progress, tensorboard)
        except Exception as error:  # a failed job must not stop the others
            logger.exception("job %s failed", job.name)
            yield job, error


def _process_pool(
    jobs: list[Job],
    paths: list[Path],
    workers: int,
    threads: int,
    tensorboard: Path | None,
    claim: Callable[[Job], bool],
) -> Iterator[Outcome]:
    # spawn: a fresh interpreter per worker (no forked torch state); same on every OS.
    # Workers ignore Ctrl-C: the driver reports it and stops them (below). Jobs are
    # submitted one at a time as workers come free, each claimed just before it starts.
    context = multiprocessing.get_context("spawn")
    queue = list(zip(jobs, paths, strict=True))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=ignore_sigint) as pool:
        futures: dict[Any, Job] = {}

        def fill() -> None:
            while queue and len(futures) < workers:
                job, path = queue.pop(0)
                if claim(job):
                    futures[pool.submit(run_job, job, str(path), threads, False, tensorboard)] = job

        try:
            fill()
            while futures:
                done, _ = wait(set(futures), return_when=FIRST_COMPLETED)
                for future in done:
                    job = futures.pop(future)
                    error = future.exception()
                    yield job, error if error is not None else future.result()
                fill()
        except (KeyboardInterrupt, GeneratorExit):  # Ctrl-C here or in the caller's loop:
            # stop the running jobs now rather than wait for them
            stop_workers(pool)
            raise
        finally:
            for future in futures:
                future.cancel()


def _ray(
    jobs: list[Job], paths: list[Path], threads: int, address: str | None, gpus: float
) -> Iterator[Outcome]:
    try:
        import ray
    except ImportError:
        raise ImportError(
            "--backend ray needs Ray: pip install 'ray[default]' (or the distributed extra, "
            "pip install -e '.[distributed]')"
        ) from None
    import hint_envs
    import policies

    from . import __file__ as package_file

    modules = [Path(hint_envs.__file__).parent, Path(policies.__file__).parent]
    modules.append(Path(package_file).parent)
    started_here = not ray.is_initialized()
    if started_here:
        # a Ray started here listens on the loopback interface only
        local = {"_node_ip_address": "127.0.0.1"} if address is None else {}
        ray.init(
            address=address,
            runtime_env={"py_modules": [str(m) for m in modules]},
            **local,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    logger.info("ray: %s CPUs available", ray.available_resources().get("CPU"))
    try:
        task = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=0)(run_job)
        blobs = {path: ray.put(path.read_bytes()) for path in set(paths)}
        refs = {
            task.remote(job, blobs[path], threads): job
            for job, path in zip(jobs, paths, strict=True)
        }
        remaining = list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            for ref in done:
                try:
                    yield refs[ref], ray.get(ref)
                except Exception as error:  # RayTaskError wraps the task's exception
                    yield refs[ref], error
    finally:
        if started_here:
            ray.shutdown()
