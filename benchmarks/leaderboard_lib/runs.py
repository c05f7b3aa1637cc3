"""Running a job, caching demonstrations, and the JSON records of the leaderboard.

:func:`run_job` is what a worker executes — in this process, in a process pool or as a
Ray task: it trains one policy (:class:`~.suite.Job`) and evaluates it once per run of
the job, returning one record per run. Records are written by the process that drives
the leaderboard (:func:`write_record`, atomic), never by workers, so a worker on another
machine needs no shared file system and a killed leaderboard never leaves a partial
record: a run either has its complete record or none.

Record layout (JSON, one file per run, ``records/<env>/<policy>/sigma.._n.._seed.._<hash>.json``)::

    schema, run, run_hash
    config          everything that determines the result (RunSpec.config())
    metrics         aggregated over episodes: success, return, trajectory_error,
                    imitation_loss (as hint_envs.evaluation.evaluate returns them)
    expert_metrics  the expert's success and return from the same initial states
    episodes        one dict per evaluation episode, with its seed and state_seed
    evaluation      the evaluation protocol's settings (EvaluationResult.config)
    training        windows, final loss, parameter count, runs sharing the model
    timing          train_s, eval_s, sampling_latency (median of timed predict calls)
    environment     package versions, python, platform, host, torch threads
    provenance      git commit (dirty flag), suite file, backend, when written
"""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from hint_envs._io import atomic_write_json, remove_temporaries

from .registry import TRAINERS, EvalSettings, TrainedPolicy
from .suite import REPO_ROOT, DemoSet, Job, RunSpec

__all__ = [
    "REPO_ROOT",
    "cpu_name",
    "git_commit",
    "log_session",
    "package_versions",
    "pending",
    "prepare_demos",
    "provenance",
    "read_record",
    "read_sessions",
    "remove_partial_files",
    "record_file",
    "run_job",
    "sampling_latency",
    "write_record",
]

logger = logging.getLogger(__name__)

#: ``predict`` calls timed for the sampling latency (after one warm-up call).
LATENCY_REPEATS = 5
#: Packages whose versions every record carries.
PACKAGES = (
    "hint_envs",
    "numpy",
    "scipy",
    "gymnasium",
    "torch",
    "diffusers",
    "stable_baselines3",
    "ray",
)


# ----------------------------------------------------------------------------- records
def record_file(out_dir: str | Path, run: RunSpec) -> Path:
    """Where the record of ``run`` lives under the output folder."""
    return Path(out_dir) / "records" / run.record_path


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value


def write_record(path: str | Path, record: dict[str, Any]) -> Path:
    """Write ``record`` as JSON to ``path`` atomically.

    The JSON goes to a hidden temporary file in the same folder, is flushed to disk, and
    is moved over ``path`` with ``os.replace`` (:func:`hint_envs._io.atomic_path`):
    ``path`` is either absent, its previous content, or the complete new record — never
    a partial file, even if the process is killed mid-write.

    Returns:
        ``path``.
    """
    atomic_write_json(path, _finite(record), indent=1)
    return Path(path)


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if there is none (or it is not a valid record)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        logger.warning("ignoring unreadable record %s (%s); the run will be redone", path, error)
        return None
    if not isinstance(record, dict) or "metrics" not in record or "config" not in record:
        logger.warning("ignoring %s: not a leaderboard record; the run will be redone", path)
        return None
    return record


def remove_partial_files(out_dir: str | Path) -> list[Path]:
    """Delete the temporary files a killed leaderboard left under ``out_dir``.

    Records and demonstration files are written to hidden ``.<name>.<hex>.tmp`` files
    first and renamed when complete; a process killed in between leaves one behind.
    Nothing is removed while another leaderboard works in ``out_dir`` (a job lock held by
    a live process): its temporaries may be files it is writing.

    Returns:
        the files removed.
    """
    from hint_envs._io import lock_is_held

    if any(lock_is_held(lock) for lock in Path(out_dir).glob("records/**/*.lock")):
        return []
    removed = []
    for folder in ("records", "demos"):
        removed += remove_temporaries(Path(out_dir) / folder, recursive=True)
    return removed


def pending(jobs: Iterable[Job], out_dir: str | Path, resume: bool = True) -> list[Job]:
    """The jobs that still have runs without a record, keeping only those runs.

    With ``resume=False`` every run is pending (records are recomputed and replaced).
    """
    todo = []
    for job in jobs:
        runs = [
            run for run in job.runs if not resume or read_record(record_file(out_dir, run)) is None
        ]
        if runs:
            todo.append(Job(runs))
    return todo


# ----------------------------------------------------------------------------- demos
def prepare_demos(
    demo_sets: Iterable[DemoSet], out_dir: str | Path, workers: int = 1, progress: bool = True
) -> dict[DemoSet, Path]:
    """Collect (or find cached) demonstration files for ``demo_sets``.

    Demonstrations are cached under ``out_dir/demos/`` by (env, first expert seed,
    count); one file per (env, first seed) holds the largest count asked for, and a
    smaller count uses its first demonstrations (collection is deterministic, so they
    are exactly the demonstrations a file of that count would hold). An existing file
    with at least the needed count is reused. Files are written atomically. A demo set
    with a ``dataset`` is its reference file (repository-relative), collected by no one.

    Returns:
        a path for every demo set (a file holding at least ``count`` demonstrations).
    """
    from hint_envs.data import write_demonstrations
    from hint_envs.experts.collect import collect_demonstrations

    folder = Path(out_dir) / "demos"
    demo_sets = list(demo_sets)
    found = {demo: REPO_ROOT / demo.dataset for demo in demo_sets if demo.dataset}
    largest: dict[tuple[str, int], int] = {}
    for demo in demo_sets:
        if demo.dataset:  # a reference file: nothing to collect
            continue
        key = (demo.env_id, demo.first_seed)
        largest[key] = max(largest.get(key, 0), demo.count)
    paths: dict[tuple[str, int], Path] = {}
    for (env_id, first_seed), count in sorted(largest.items()):
        cached = _cached_demo_file(folder, DemoSet(env_id, first_seed, count))
        if cached is None:
            demos = collect_demonstrations(
                env_id,
                count,
                seed=first_seed,
                workers=workers,
                only_success=True,
                progress=progress,
            )
            cached = folder / DemoSet(env_id, first_seed, count).file_name
            write_demonstrations(
                cached,
                demos,
                env_id,
                attrs={"first_seed": first_seed, "count": count},
                overwrite=True,
            )
            logger.info("collected %d %s demonstrations into %s", count, env_id, cached)
        paths[(env_id, first_seed)] = cached
    return {
        demo: found[demo] if demo.dataset else paths[(demo.env_id, demo.first_seed)]
        for demo in demo_sets
    }


def _cached_demo_file(folder: Path, demo: DemoSet) -> Path | None:
    """An existing cache file of ``demo``'s env and first seed with at least its count."""
    stem = DemoSet(demo.env_id, demo.first_seed, 0).file_name.rsplit("_n", 1)[0]
    best = None
    for path in folder.glob(f"{stem}_n*.hdf5"):
        try:
            count = int(path.stem.rsplit("_n", 1)[1])
        except ValueError:
            continue
        if count >= demo.count and (best is None or count < best[0]):
            best = (count, path)
    return best[1] if best else None


# ----------------------------------------------------------------------------- one job
def sampling_latency(
    policy: Any, observations: np.ndarray, batch_size: int, repeats: int = LATENCY_REPEATS
) -> dict[str, Any]:
    """Time batched ``predict`` calls of ``policy`` (wall clock).

    Args:
        policy: the trained policy.
        observations: ``(M, obs_horizon, d_obs)`` observation chunks; the first
            ``batch_size`` (repeated if fewer) form the batch.
        batch_size: the batch (the evaluation's ``num_envs``).
        repeats: timed calls, after one untimed warm-up call.

    Returns:
        ``{"median_s", "min_s", "batch_size", "repeats"}``.
    """
    index = np.arange(batch_size) % len(observations)
    batch = np.asarray(observations[index])
    policy.predict(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        policy.predict(batch)
        times.append(time.perf_counter() - start)
    return {
        "median_s": float(np.median(times)),
        "min_s": float(np.min(times)),
        "batch_size": int(batch_size),
        "repeats": int(repeats),
    }


def run_job(
    job: Job,
    demos: str | Path | bytes,
    threads: int = 1,
    progress: bool = False,
    tensorboard: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Train the job's policy once and evaluate it for each of its runs.

    Args:
        job: the runs sharing one trained model.
        demos: the demonstration file (path), or its bytes (a worker on another machine).
        threads: torch threads for training and sampling.
        progress: show tqdm bars for training and evaluation.
        tensorboard: if given, TensorBoard scalars go to ``<tensorboard>/<first run's
            name>_<hash>``: the training loss and learning rate, then each run's
            evaluation scores as ``eval/<run name>/<metric>`` at the last training step.

    Returns:
        one record per run of ``job`` (in its order), without ``provenance`` (the
        driver adds it when writing).
    """
    import torch

    import hint_envs  # noqa: F401  (registers the envs in this process)

    torch.set_num_threads(threads)
    spec = job.spec
    trainer = TRAINERS[spec.trainer]
    table = {k: v for k, v in spec.model.items() if k not in ("gains", "sigma", "noise_law")}
    config = trainer.make_config(table, spec.gains, spec.train_sigma, spec.noise_law)
    settings = EvalSettings(**spec.eval)
    train_table = dict(spec.train)
    checkpoints: dict[str, list[dict[str, Any]]] = {run.name: [] for run in job.runs}
    on_checkpoint = None
    if settings.checkpoint_every:  # the paper's protocol: every arm at every checkpoint
        train_table["checkpoint_every"] = settings.checkpoint_every

        def on_checkpoint(step: int, policy: Any) -> None:
            scores: dict[tuple, dict[str, Any]] = {}
            for run in job.runs:
                key = _evaluation_key(run)
                if key not in scores:
                    result = _evaluate(policy, run, settings, run.sample_seed, False)
                    scores[key] = _summary_metrics(result.records)
                checkpoints[run.name].append({"step": step, "metrics": scores[key]})
            logger.info("checkpoint %d of %s evaluated", step, job.name)

    tmp_file = None
    if isinstance(demos, bytes):
        handle, tmp_name = tempfile.mkstemp(suffix=".hdf5")
        with os.fdopen(handle, "wb") as f:
            f.write(demos)
        demos = tmp_file = Path(tmp_name)
    try:
        start = time.perf_counter()
        board_dir = None
        if tensorboard is not None:
            board_dir = Path(tensorboard) / f"{spec.name}_{spec.run_hash}"
        trained: TrainedPolicy = trainer.fit(
            demos,
            spec.num_demos,
            config,
            train_table,
            spec.train_seed,
            threads,
            progress,
            tensorboard_dir=board_dir,
            on_checkpoint=on_checkpoint,
        )
        train_s = time.perf_counter() - start
    finally:
        if tmp_file is not None:
            tmp_file.unlink(missing_ok=True)
    latency = sampling_latency(trained.policy, trained.example_obs, settings.num_envs)

    environment = {
        "versions": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "host": platform.node(),
        "cpu": cpu_name(),
        "torch_threads": torch.get_num_threads(),
    }
    evaluated: dict[tuple, tuple[dict[str, Any], float]] = {}
    records = []
    for run in job.runs:
        key = _evaluation_key(run)
        if key not in evaluated:  # identical evaluations are done once
            start = time.perf_counter()
            evaluated[key] = (
                _evaluate_sampler_seeds(trained, run, settings, progress),
                time.perf_counter() - start,
            )
        result_dict, eval_s = evaluated[key]
        record = {
            "schema": run.config()["record_schema"],
            "run": run.name,
            "run_hash": run.run_hash,
            "config": run.config(),
            "metrics": result_dict["metrics"],
            "expert_metrics": result_dict["expert_metrics"],
            "episodes": result_dict["episodes"],
            "evaluation": result_dict["config"],
            "training": {
                **trained.train_info,
                "shared_with": [r.name for r in job.runs if r is not run],
            },
            "timing": {"train_s": train_s, "eval_s": eval_s, "sampling_latency": latency},
            "environment": environment,
        }
        if "by_sample_seed" in result_dict:
            record["by_sample_seed"] = result_dict["by_sample_seed"]
        if settings.checkpoint_every:
            record["checkpoints"] = checkpoints[run.name]
        records.append(record)
    if board_dir is not None:
        _write_eval_scalars(board_dir, records, int(spec.train.get("steps", 0)))
    return records


def sample_seeds(run: RunSpec, settings: EvalSettings) -> list[int]:
    """The sampler seeds ``run`` is evaluated with: its own ``sample_seed`` first, then
    ``derive_seed(suite seed, seed, 1, j)`` for ``j = 1 .. sample_seeds - 1``."""
    from .suite import derive_seed

    extra = [derive_seed(run.suite_seed, run.seed, 1, j) for j in range(1, settings.sample_seeds)]
    return [run.sample_seed, *extra]


def _evaluation_key(run: RunSpec) -> tuple:
    """Runs of one job with the same key have the same evaluation (done once)."""
    law = run.noise_law if run.test_sigma > 0 else None
    return (run.test_sigma, law, run.test_shift)


def _evaluate(
    policy: Any, run: RunSpec, settings: EvalSettings, sample_seed: int, progress: bool
) -> Any:
    """One evaluation of ``policy`` on the env, chunking and noise scale it records
    (:func:`policies.evaluation.evaluate_trained`), with ``run``'s test noise and shift."""
    from hint_envs.evaluation import DEFAULT_EPS
    from policies.evaluation import evaluate_trained

    return evaluate_trained(
        policy,
        settings.seeds,
        sigma=run.test_sigma,
        noise_law=run.noise_law,
        obs_shift=run.test_shift,
        rollouts_per_state=settings.rollouts_per_state,
        eps=settings.eps if settings.eps is not None else DEFAULT_EPS,
        expert=settings.expert,
        num_envs=settings.num_envs,
        deterministic=settings.deterministic,
        progress=progress,
        sample_seed=sample_seed,
    )


def _summary_metrics(records: list[Any]) -> dict[str, Any]:
    """Success, return and max reward of episode records, pooled."""
    from hint_envs.evaluation.metrics import mean_max_reward, mean_return, success_rate

    return {
        "success": success_rate(records).to_dict(),
        "return": mean_return(records).to_dict(),
        "max_reward": mean_max_reward(records).to_dict(),
    }


def _evaluate_sampler_seeds(
    trained: TrainedPolicy, run: RunSpec, settings: EvalSettings, progress: bool
) -> dict[str, Any]:
    """Evaluate ``run`` once per sampler seed; the first evaluation's dict with the
    episodes of every seed (each tagged with its ``sample_seed`` and ``max_reward``), and,
    with more than one seed, the pooled success / return / max reward in ``metrics`` and
    each seed's in ``by_sample_seed``."""
    results = [
        _evaluate(trained.policy, run, settings, seed, progress)
        for seed in sample_seeds(run, settings)
    ]
    out = results[0].to_dict()
    episodes = []
    for seed, result in zip(sample_seeds(run, settings), results, strict=True):
        for episode, record in zip(result.to_dict()["episodes"], result.records, strict=True):
            rewards = np.asarray(record.rewards, dtype=float)
            episodes.append(
                {
                    **episode,
                    "sample_seed": seed,
                    "max_reward": float(rewards.max()) if rewards.size else 0.0,
                }
            )
    out["episodes"] = episodes
    if len(results) > 1:
        out["metrics"] = {
            **out["metrics"],
            **_summary_metrics([r for result in results for r in result.records]),
        }
        out["by_sample_seed"] = [
            {"sample_seed": seed, "metrics": _summary_metrics(result.records)}
            for seed, result in zip(sample_seeds(run, settings), results, strict=True)
        ]
    return out


def _write_eval_scalars(log_dir: Path, records: list[dict[str, Any]], step: int) -> None:
    """Each record's metric means as TensorBoard scalars ``eval/<run>/<metric>``."""
    from policies.logging_tb import TensorBoardWriter

    board = TensorBoardWriter(log_dir, prefix="eval")
    try:
        for record in records:
            means = {
                name: value["mean"]
                for name, value in record["metrics"].items()
                if isinstance(value, dict) and "mean" in value
            }
            board.scalars(step, means, prefix=f"eval/{record['run']}")
    finally:
        board.close()


# ----------------------------------------------------------------------------- sessions
#: File under the output folder with one JSON line per leaderboard session that ran jobs.
SESSIONS_FILE = "sessions.jsonl"


def log_session(out_dir: str | Path, session: dict[str, Any]) -> None:
    """Append ``session`` (wall time, runs computed, workers, ...) to the sessions log."""
    path = Path(out_dir) / SESSIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(_finite(session)) + "\n")


def read_sessions(out_dir: str | Path) -> list[dict[str, Any]]:
    """The sessions logged under ``out_dir`` (unreadable lines skipped)."""
    path = Path(out_dir) / SESSIONS_FILE
    if not path.exists():
        return []
    sessions = []
    for line in path.read_text().splitlines():
        try:
            sessions.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a kill
    return sessions


# ----------------------------------------------------------------------------- provenance
def cpu_name() -> str:
    """The CPU's model name (``lscpu``'s) and core count, else the machine type."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_versions() -> dict[str, str | None]:
    """Installed versions of :data:`PACKAGES` (None for those missing)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            module = sys.modules.get(name)
            versions[name] = getattr(module, "__version__", None) if module else None
    if versions["hint_envs"] is None:
        import hint_envs

        versions["hint_envs"] = hint_envs.__version__
    return versions


def git_commit(repo: str | Path = REPO_ROOT) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the repository at ``repo``."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repo,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": sha, "dirty": bool(status.strip())}


def provenance(suite_path: Path, backend: str, commit: dict[str, Any]) -> dict[str, Any]:
    """What the driver adds to every record it writes."""
    return {
        **commit,
        "suite_file": str(suite_path),
        "backend": backend,
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
