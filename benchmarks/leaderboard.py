"""Run a benchmark suite and publish its leaderboard.

A suite (``benchmarks/suites/*.toml``) is a grid env × policy × sigma × demonstrations ×
seed. Every point is one *run*: train a policy on N expert demonstrations, evaluate it on
fixed initial states, and store one JSON record (written atomically; a run that has its
record is skipped, so a killed leaderboard resumes where it stopped). Then the Markdown
leaderboard and the Fig. 5 / Fig. 6 style plots are regenerated from the records.

Usage::

    python benchmarks/leaderboard.py --suite quick               # ~15 min on 2 CPU cores
    python benchmarks/leaderboard.py --suite quick --workers 2   # 2 processes
    python benchmarks/leaderboard.py --suite paper --backend ray --address auto
    python benchmarks/leaderboard.py --suite fig5_quadrotor --report-to docs/results/quadrotor.md
    python benchmarks/leaderboard.py --suite quick --report-only # redraw from the records

See docs/benchmarks.md for the suites, the record layout and the expected costs.
"""

from __future__ import annotations

import os

# Sleeping OpenMP workers (set before torch is imported anywhere): spinning ones slow torch
# down by an order of magnitude when other processes compete for the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from leaderboard_lib.backends import execute
from leaderboard_lib.report import load_records, write_report
from leaderboard_lib.runs import (
    git_commit,
    log_session,
    pending,
    prepare_demos,
    provenance,
    record_file,
    remove_partial_files,
    write_record,
)
from leaderboard_lib.suite import SUITES_DIR, Job, SuiteError, expand, load_suite
from tqdm import tqdm

from hint_envs._cli import check_output_file, interrupted
from hint_envs._io import release_lock, try_lock


@dataclass
class Args:
    suite: str = "quick"
    """a suite of benchmarks/suites/ (its file name without .toml, e.g. quick) or a .toml path"""
    workers: int = 0
    """local processes running jobs in parallel (0: one per CPU core; 1: this process)"""
    out: str | None = None
    """folder of records and cached demonstrations (None: runs/leaderboard/<suite name>)"""
    only: str | None = None
    """comma-separated env ids or names to run (None: every env of the suite)"""
    resume: bool = True
    """skip runs that already have a record (--no-resume recomputes and replaces them)"""
    backend: Literal["local", "ray"] = "local"
    """where jobs run: local (this machine) or ray (a Ray cluster)"""
    address: str | None = None
    """Ray cluster address, e.g. auto or ray://host:10001 (None: start a local Ray)"""
    threads: int = 1
    """torch threads per job; results depend on it, so keep it fixed to compare records"""
    gpus_per_job: float = 0.0
    """GPUs Ray reserves per job (for suites training on train.device = "cuda")"""
    report_to: str | None = None
    """Markdown report path (None: the suite's report, else <out>/leaderboard.md)"""
    report_only: bool = False
    """run nothing: regenerate the report from the existing records"""
    dry_run: bool = False
    """validate the suite, list the runs still to do, and exit"""
    tensorboard: str | None = None
    """folder for TensorBoard scalars: loss, learning rate, evaluation scores (one per job)"""


def parse_args(argv: list[str] | None = None) -> Args:
    """The command line, one option per field of :class:`Args` (``tyro``: types, defaults
    and help text come from the dataclass and its field docstrings)."""
    import tyro

    suites = ", ".join(sorted(p.stem for p in SUITES_DIR.glob("*.toml")))
    description = f"{__doc__.split(chr(10) * 2)[0]} Suites: {suites}."
    args = tyro.cli(Args, args=argv, description=description)
    if args.workers < 0 or args.threads < 1 or args.gpus_per_job < 0:
        _usage_error("--workers and --gpus-per-job must be >= 0, --threads >= 1")
    if args.tensorboard is not None:
        if args.backend != "local":
            _usage_error("--tensorboard works with the local backend only")
        try:
            import tensorboard  # noqa: F401  (checked before any long work)
        except ImportError:
            _usage_error("--tensorboard needs the tensorboard package: pip install tensorboard")
    return args


def _usage_error(message: str) -> None:
    print(f"leaderboard.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main() -> int:
    """Run the suite the command line names and write its report; returns the exit status
    (130 after Ctrl-C, the runs finished so far keeping their records)."""
    args = parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()

    # --- the suite: validated in full before anything runs
    try:
        suite = load_suite(args.suite, only=args.only.split(",") if args.only else None)
    except SuiteError as error:
        sys.exit(f"error: {error}")
    if args.backend == "local" and not args.report_only and not args.dry_run:
        cuda = [b.env_id for b in suite.envs if b.train.get("device", "cpu").startswith("cuda")]
        if cuda:
            import torch

            if not torch.cuda.is_available():
                sys.exit(
                    f"error: suite {suite.name} trains {cuda} on train.device = cuda, but torch "
                    "sees no GPU here; run it on a GPU machine, or on a Ray cluster with GPUs "
                    "(--backend ray --address ADDR --gpus-per-job 0.25)"
                )
    out_dir = Path(args.out or Path("runs") / "leaderboard" / suite.name)
    report_path = Path(args.report_to or suite.report or out_dir / "leaderboard.md")
    if not args.report_only:  # an unwritable --out is found now, not after the first job
        problem = check_output_file(out_dir / "records" / "x.json", overwrite=True, option="--out")
        if problem is not None:
            sys.exit(f"error: {problem}")
    jobs = expand(suite)
    remove_partial_files(out_dir)  # what a killed run may have left half-written
    total = sum(len(job.runs) for job in jobs)
    missing = sum(len(job.runs) for job in pending(jobs, out_dir))
    todo = [] if args.report_only else pending(jobs, out_dir, resume=args.resume)
    todo_runs = sum(len(job.runs) for job in todo)
    print(
        f"suite {suite.name} ({suite.path}): {total} runs in {len(jobs)} trained models; "
        f"{total - missing} already recorded in {out_dir}, {todo_runs} to run"
    )
    if args.dry_run:
        for job in todo:
            print(" ", job.name)
        sys.exit(0)

    # --- seeding: nothing to do here. Every run's randomness derives from (suite.seed,
    # run seed): expert seeds, training seed and sampler seed are fixed in its RunSpec,
    # and evaluation uses the same initial states for every run (see leaderboard_lib.suite).

    # --- parallelism: jobs side by side, each with a fixed number of torch threads.
    # Float sums in torch's kernels depend on the thread count, so --threads (default 1)
    # is the same for every job whatever --workers or --backend: the records then are too.
    workers = args.workers or min(os.cpu_count() or 1, max(len(todo), 1))

    # --- demonstrations: collected once per (env, expert seeds), cached under out/demos
    failures, bar = [], None
    locks: dict[int, Path] = {}  # the jobs this run computes, each locked until recorded
    elsewhere: list[Job] = []
    try:
        if todo:
            try:
                demo_files = prepare_demos(
                    [job.spec.demos for job in todo], out_dir, workers=workers
                )
            except OSError as error:  # a full disk: nothing is left behind
                sys.exit(f"error: cannot write demonstrations under {out_dir}: {error}")
            commit = git_commit()
            where = f"{args.backend} backend" + (
                f", {workers} worker(s)"
                if args.backend == "local"
                else f" at {args.address or 'a local Ray'}"
            )
            print(
                f"running {len(todo)} jobs on the {where}, {args.threads} torch thread(s) per job"
            )

            # --- the loop: run jobs, write each record as soon as its job is done. Each
            # job is locked just before it starts (a lock file beside its first record),
            # so a second leaderboard on the same folder computes the other jobs.
            def claim(job: Job) -> bool:
                if not pending([job], out_dir):  # recorded meanwhile by another run
                    elsewhere.append(job)
                    return False
                lock = try_lock(record_file(out_dir, job.runs[0]), f"leaderboard {suite.name}")
                if lock is None:
                    elsewhere.append(job)
                    tqdm.write(f"{job.spec.name}: being computed by another leaderboard; skipped")
                    return False
                locks[id(job)] = lock
                return True

            bar = tqdm(total=total, initial=total - todo_runs, desc="runs", unit="run", smoothing=0)
            outcomes = execute(
                todo,
                [demo_files[job.spec.demos] for job in todo],
                backend=args.backend,
                workers=workers,
                threads=args.threads,
                address=args.address,
                gpus=args.gpus_per_job,
                tensorboard=None if args.tensorboard is None else Path(args.tensorboard),
                claim=claim,
            )
            for job, outcome in outcomes:
                if isinstance(outcome, BaseException):
                    failures.append(job)
                    release_lock(locks.pop(id(job), None))
                    tqdm.write(f"FAILED {job.name}: {type(outcome).__name__}: {outcome}")
                    continue
                for run, record in zip(job.runs, outcome, strict=True):
                    record["provenance"] = provenance(suite.path, args.backend, commit)
                    try:
                        write_record(record_file(out_dir, run), record)
                    except OSError as error:  # a full disk: stop, keeping what is recorded
                        bar.close()
                        sys.exit(
                            f"error: cannot write the record of {run.name} under {out_dir}: "
                            f"{error}; the runs recorded so far are kept, rerun to resume"
                        )
                    metric = next(b.metric for b in suite.envs if b.env_id == run.env_id)
                    value = record["metrics"].get(metric, {}).get("mean", float("nan"))
                    timing = record["timing"]
                    tqdm.write(
                        f"{run.name}: {metric} {value:.3f} "
                        f"(train {timing['train_s']:.0f} s, eval {timing['eval_s']:.0f} s)"
                    )
                    bar.update(1)
                release_lock(locks.pop(id(job), None))
            bar.close()
            if elsewhere:
                print(f"{len(elsewhere)} jobs were computed by another leaderboard on {out_dir}")
            log_session(
                out_dir,
                {
                    "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                    "wall_s": time.perf_counter() - started,
                    "runs": bar.n - bar.initial,
                    "failed_jobs": len(failures),
                    "where": f"{where}, {args.threads} thread(s) per job",
                    "host": platform.node(),
                    "cpus": os.cpu_count(),
                },
            )
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        recorded = total - sum(len(job.runs) for job in pending(jobs, out_dir))
        return interrupted(
            "leaderboard",
            f"{recorded} of {total} runs recorded in {out_dir}; rerun the same command to "
            "resume from there",
        )
    finally:  # whatever stopped the loop, no job stays locked by this run
        for lock in locks.values():
            release_lock(lock)

    # --- the report, regenerated from every record of the suite (all envs, even with --only)
    full_suite = load_suite(args.suite, check_env=False) if args.only else suite
    all_jobs = expand(full_suite) if args.only else jobs
    records = load_records(all_jobs, out_dir)
    all_runs = sum(len(job.runs) for job in all_jobs)
    command = f"python benchmarks/leaderboard.py --suite {args.suite}"
    if args.report_to:
        command += f" --report-to {args.report_to}"
    written = write_report(full_suite, records, all_runs, report_path, command, out_dir)
    print(f"leaderboard: {written[0]}")
    for path in written[1:]:
        print(f"plot: {path}")
    print(f"records: {out_dir / 'records'} ({len(records)} of {all_runs} runs)")
    print(f"wall time: {time.perf_counter() - started:.0f} s")
    if failures:
        sys.exit(f"{len(failures)} jobs failed; rerun the same command to retry them")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before or after the runs: no record was being computed
        sys.exit(interrupted("leaderboard", "no run was in progress; rerun the same command"))
