"""Leaderboard suites: TOML files, their validation, and the runs and jobs they expand to.

A suite names, per environment, the policies, noise levels sigma, demonstration counts
N, seeds, the model and training settings and the evaluation protocol::

    name = "quick"                      # used in the default output folder
    description = "..."                 # one line for the report
    seed = 0                            # suite seed: training and sampling randomness
    report = "docs/leaderboard.md"      # where the Markdown report goes (plots beside it)

    [[env]]                             # one block per environment
    id = "hint_envs/PlanarQuadrotor-v0"
    policies = ["hint", "ddpm_no_gains", "ddpm_train_noise"]
    sigmas = [0.0, 0.1]                 # normalised units
    noise_laws = ["gaussian"]           # laws of the sigma > 0 noise (the default)
    num_demos = [1, 10]
    seeds = [0, 1]
    metric = "success"                  # the metric plotted and sorted by

    [env.policy]                        # DDPMPolicyConfig fields (not gains, sigma)
    denoiser = "mlp"
    [env.train]                         # TrainConfig fields (not num_threads)
    steps = 500
    [env.eval]                          # EvalSettings fields
    episodes = 20

A *run* is one (env, policy, sigma, N, seed) and produces one record. A *job* is one
trained model: the runs whose training is identical (same trainer, gains, training
noise, N, seed and settings — e.g. ``hint`` and ``ddpm_train_noise`` at the same sigma)
share a job, which trains once and evaluates once per run.

Seeds. Run seed ``s`` uses the expert demonstrations of seeds ``DEMO_SEED_STRIDE * s,
DEMO_SEED_STRIDE * s + 1, ...`` (the first N successful ones) — or, in a block with a
``dataset`` (a committed reference file, for environments whose expert is slow), the
first N demonstrations of that file for every seed, as Diffusion Policy's N-demo runs
do — trains with
``derive_seed(suite seed, s)`` and samples during evaluation with ``derive_seed(suite
seed, s, 1)``; every run is evaluated from the same initial states, seeds ``eval.seed_start
.. eval.seed_start + episodes - 1``. So a record depends only on the suite, never on
where or in which order it was computed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hint_envs.evaluation.metrics import METRIC_NAMES

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from .registry import POLICIES, TRAINERS, EvalSettings, make_train_config, policy_available

__all__ = [
    "DEMO_SEED_STRIDE",
    "REPO_ROOT",
    "SUITES_DIR",
    "DemoSet",
    "EnvBlock",
    "Job",
    "RunSpec",
    "Suite",
    "SuiteError",
    "derive_seed",
    "expand",
    "load_suite",
    "resolve_suite_path",
]

#: The repository the leaderboard runs from (``benchmarks/``'s parent); a suite's
#: ``dataset`` paths are relative to it.
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Folder of the named suites (``--suite quick`` is ``SUITES_DIR / "quick.toml"``).
SUITES_DIR = REPO_ROOT / "benchmarks" / "suites"
#: Demonstration seeds of run seed ``s`` start at ``DEMO_SEED_STRIDE * s``.
DEMO_SEED_STRIDE = 1000
#: Version of the record layout (stored in every record and in the run hash).
RECORD_SCHEMA = 1

_TOP_KEYS = {
    "name": "suite name (used in the default output folder)",
    "description": "one line describing the suite",
    "seed": "suite seed (training and sampling randomness)",
    "report": "path of the Markdown report (plots go to img/ beside it)",
    "findings": "what the results show, in words (Markdown; the report's first section)",
    "env": "array of [[env]] blocks",
}
_ENV_KEYS = {
    "id": "gymnasium id of a hint_envs environment",
    "policies": "list of policy names",
    "sigmas": "list of noise levels (normalised units, >= 0)",
    "noise_laws": "list of noise laws of the sigma > 0 runs (default ['gaussian']; "
    "'uniform' is the authors' code, 'uniform_centered' its unbiased control)",
    "num_demos": "list of demonstration counts",
    "seeds": "list of run seeds",
    "metric": "metric the report plots (default 'success')",
    "dataset": "reference demonstration file (path from the repository root): every run "
    "trains on its first N demonstrations instead of collecting its own",
    "train": "TrainConfig fields",
    "eval": "evaluation settings",
}


class SuiteError(ValueError):
    """A suite file that cannot be run; the message names the file and the bad entry."""


def derive_seed(*words: int) -> int:
    """A 31-bit seed from integers, ``SeedSequence(words)`` (stable across platforms)."""
    return int(np.random.SeedSequence([int(w) for w in words]).generate_state(1)[0] >> 1)


def _slug(env_id: str) -> str:
    return env_id.split("/")[-1]


def _sigma_text(sigma: float) -> str:
    return f"{sigma:g}"


@dataclass(frozen=True)
class EnvBlock:
    """One validated ``[[env]]`` block.

    Attributes:
        env_id: the environment.
        policies: policy names, in the suite's order.
        sigmas: noise levels in normalised units.
        noise_laws: the laws the noise of the sigma > 0 runs is drawn from.
        num_demos: demonstration counts.
        seeds: run seeds.
        metric: the metric the report plots.
        dataset: reference demonstration file (repository-relative path), or None to
            collect demonstrations per seed.
        tables: model settings per trainer table (``{"policy": {...}, ...}``), as given.
        train: the ``[env.train]`` table, as given.
        eval: the evaluation settings.
    """

    env_id: str
    policies: tuple[str, ...]
    sigmas: tuple[float, ...]
    num_demos: tuple[int, ...]
    seeds: tuple[int, ...]
    metric: str
    tables: dict[str, dict[str, Any]]
    train: dict[str, Any]
    eval: EvalSettings
    dataset: str | None = None
    noise_laws: tuple[str, ...] = ("gaussian",)


@dataclass(frozen=True)
class Suite:
    """A validated suite file.

    Attributes:
        name, description, seed, report: the top-level keys (``report`` may be None).
        path: the file it was read from.
        envs: the ``[[env]]`` blocks, in file order.
        findings: what the results show, written after they are in (Markdown; empty
            until then); the report shows it under "What it shows".
    """

    name: str
    description: str
    seed: int
    report: str | None
    path: Path
    envs: tuple[EnvBlock, ...]
    findings: str = ""


@dataclass(frozen=True)
class DemoSet:
    """The demonstrations a job trains on: the first ``count`` successful expert episodes
    from seed ``first_seed`` on, in the file cached at ``file_name`` under the output
    folder's ``demos/`` — or, with ``dataset``, the first ``count`` of that reference file
    (a repository-relative path)."""

    env_id: str
    first_seed: int
    count: int
    dataset: str | None = None

    @property
    def file_name(self) -> str:
        """Cache file name, e.g. ``PlanarQuadrotor-v0_seed1000_n10.hdf5``."""
        return f"{_slug(self.env_id)}_seed{self.first_seed}_n{self.count}.hdf5"


@dataclass(frozen=True)
class RunSpec:
    """One run: one (env, policy, sigma, N, seed); one JSON record.

    Attributes:
        env_id, policy, sigma, num_demos, seed: the grid point (``sigma`` is 0 for
            policies that ignore it).
        trainer, gains, train_sigma, test_sigma: what the policy name means here.
        noise_law: the law of the run's noise (``"gaussian"`` whenever it has none).
        test_shift: constant shift of its test observations, normalised units.
        suite_seed: the suite's seed.
        train_seed: seed of training (weights, batches, data noise).
        sample_seed: seed of the policy's sampler before evaluation.
        demo_first_seed: first expert seed of the demonstrations (0 with a dataset).
        model: the resolved model configuration (all fields, JSON).
        train: the resolved training configuration (all fields but ``num_threads``, JSON).
        eval: the evaluation settings (JSON).
        run_hash: short hash of everything above (changes when any setting does).
    """

    env_id: str
    policy: str
    sigma: float
    num_demos: int
    seed: int
    trainer: str
    gains: bool
    train_sigma: float
    test_sigma: float
    suite_seed: int
    train_seed: int
    sample_seed: int
    demo_first_seed: int
    model: dict[str, Any]
    train: dict[str, Any]
    eval: dict[str, Any]
    dataset: str | None = None
    noise_law: str = "gaussian"
    test_shift: float = 0.0
    run_hash: str = ""

    def config(self) -> dict[str, Any]:
        """Everything that determines the run's result, as JSON-ready data."""
        data = asdict(self)
        data.pop("run_hash")
        if data["dataset"] is None:  # collected demonstrations: the layout before datasets
            data.pop("dataset")
        if data["test_shift"] == 0:  # the layout before shifted arms
            data.pop("test_shift")
        data["record_schema"] = RECORD_SCHEMA
        return data

    @property
    def name(self) -> str:
        """Human-readable id, e.g. ``PlanarQuadrotor-v0/hint/sigma0.1_n10_seed0`` (with the
        noise law after sigma when it is not Gaussian: ``sigma0.1_uniform_n10_seed0``)."""
        law = "" if self.noise_law == "gaussian" else f"_{self.noise_law}"
        return (
            f"{_slug(self.env_id)}/{self.policy}/"
            f"sigma{_sigma_text(self.sigma)}{law}_n{self.num_demos}_seed{self.seed}"
        )

    @property
    def record_path(self) -> str:
        """Record file, relative to the output folder's ``records/``."""
        return f"{self.name}_{self.run_hash}.json"

    @property
    def train_key(self) -> str:
        """Runs with the same key train the same model (they share a :class:`Job`)."""
        data = self.config()
        for key in ("policy", "sigma", "test_sigma", "test_shift", "eval"):
            data.pop(key, None)
        return _hash(data)

    @property
    def demos(self) -> DemoSet:
        """The demonstrations the run trains on."""
        return DemoSet(self.env_id, self.demo_first_seed, self.num_demos, self.dataset)


@dataclass
class Job:
    """One trained model and the runs evaluated with it (same :attr:`RunSpec.train_key`)."""

    runs: list[RunSpec] = field(default_factory=list)

    @property
    def spec(self) -> RunSpec:
        """The first run (every run of the job trains identically)."""
        return self.runs[0]

    @property
    def name(self) -> str:
        """The runs' names, joined."""
        return " + ".join(run.name for run in self.runs)


def _hash(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


# ----------------------------------------------------------------------------- loading
def resolve_suite_path(suite: str | Path) -> Path:
    """The file of ``suite``: a name in :data:`SUITES_DIR` (``"quick"``) or a path.

    Raises:
        SuiteError: no such file (the message lists the named suites).
    """
    text = str(suite)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text).expanduser()
    else:
        path = SUITES_DIR / f"{text}.toml"
    if not path.is_file():
        named = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
        raise SuiteError(
            f"no suite file {path}; give a path to a .toml file or one of the named suites {named}"
        )
    return path.resolve()


def load_suite(suite: str | Path, only: list[str] | None = None, check_env: bool = True) -> Suite:
    """Read and validate a suite; nothing is run.

    Args:
        suite: a named suite or a path (:func:`resolve_suite_path`).
        only: keep only the env blocks whose id (``hint_envs/PushT-v0``) or name
            (``PushT-v0``) is listed; every block is still checked for unknown keys and
            bad types, but only the kept ones for a missing simulator or expert.
        check_env: check that each kept environment can be made here and has an expert.

    Returns:
        the :class:`Suite` (only the kept env blocks).

    Raises:
        SuiteError: the first problem found, naming the file and the entry.
    """
    path = resolve_suite_path(suite)
    where = f"suite {path.name}"
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise SuiteError(f"{where} is not valid TOML: {error}") from None
    _unknown_keys(data, _TOP_KEYS, where)
    name = _typed(data.get("name", path.stem), str, f"{where}: name")
    description = _typed(data.get("description", ""), str, f"{where}: description")
    seed = _int(data.get("seed", 0), f"{where}: seed", low=0)
    findings = _typed(data.get("findings", ""), str, f"{where}: findings").strip()
    report = data.get("report")
    if report is not None:
        report = _typed(report, str, f"{where}: report")
    blocks = data.get("env")
    if not isinstance(blocks, list) or not blocks:
        raise SuiteError(
            f"{where} has no [[env]] blocks; add at least one (see docs/benchmarks.md)"
        )

    envs = [_env_block(block, f"{where}: env[{i}]") for i, block in enumerate(blocks)]
    ids = [env.env_id for env in envs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SuiteError(f"{where}: env {duplicates[0]!r} has more than one [[env]] block")
    if only:
        wanted = {o.strip() for o in only if o.strip()}
        envs = [e for e in envs if e.env_id in wanted or _slug(e.env_id) in wanted]
        matched = {e.env_id for e in envs} | {_slug(e.env_id) for e in envs}
        missing = sorted(wanted - matched)
        if missing:
            raise SuiteError(f"--only {missing} matches no env of {where}; its envs are {ids}")
    if check_env:
        for env in envs:
            _check_env_available(env.env_id, f"{where}: env[{ids.index(env.env_id)}]")
    return Suite(name, description, seed, report, path, tuple(envs), findings)


def _unknown_keys(data: dict[str, Any], known: dict[str, str] | list[str], where: str) -> None:
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise SuiteError(f"{where}: unknown key {unknown[0]!r}; known keys: {sorted(known)}")


def _typed(value: Any, kind: type, where: str) -> Any:
    if not isinstance(value, kind):
        raise SuiteError(f"{where} must be a {kind.__name__}, got {value!r}")
    return value


def _int(value: Any, where: str, low: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SuiteError(f"{where} must be an integer, got {value!r}")
    if low is not None and value < low:
        raise SuiteError(f"{where} must be >= {low}, got {value!r}")
    return value


def _list(block: dict[str, Any], key: str, where: str) -> list[Any]:
    if key not in block:
        raise SuiteError(f"{where}: missing key {key!r} ({_ENV_KEYS[key]})")
    value = block[key]
    if not isinstance(value, list) or not value:
        raise SuiteError(f"{where}: {key} must be a non-empty list, got {value!r}")
    if len(set(map(repr, value))) != len(value):
        raise SuiteError(f"{where}: {key} lists a value twice: {value!r}")
    return value


def _env_block(block: Any, where: str) -> EnvBlock:
    if not isinstance(block, dict):
        raise SuiteError(f"{where} must be a table, got {block!r}")
    env_id = _typed(block.get("id"), str, f"{where}: id")
    _check_env_registered(env_id, where)
    where = f"{where} ({env_id})"
    tables = {t.table: t for t in TRAINERS.values()}
    _unknown_keys(block, list(_ENV_KEYS) + list(tables), where)

    policies = _list(block, "policies", where)
    for name in policies:
        if name not in POLICIES:
            raise SuiteError(
                f"{where}: unknown policy {name!r} in policies; known policies: {list(POLICIES)}"
            )
    sigmas = []
    for value in _list(block, "sigmas", where):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and value >= 0)
        ):
            raise SuiteError(f"{where}: sigmas must be numbers >= 0, got {value!r}")
        sigmas.append(float(value))
    num_demos = [
        _int(n, f"{where}: num_demos entry", low=1) for n in _list(block, "num_demos", where)
    ]
    for n in num_demos:
        if n > DEMO_SEED_STRIDE:
            raise SuiteError(
                f"{where}: num_demos entry {n} is above {DEMO_SEED_STRIDE}, the number of "
                "expert seeds reserved per run seed"
            )
    seeds = [_int(s, f"{where}: seeds entry", low=0) for s in _list(block, "seeds", where)]
    noise_laws = ["gaussian"]
    if "noise_laws" in block:
        from hint_envs.core import NOISE_LAWS

        noise_laws = _list(block, "noise_laws", where)
        for law in noise_laws:
            if law not in NOISE_LAWS:
                raise SuiteError(
                    f"{where}: unknown noise law {law!r} in noise_laws; choose from "
                    f"{list(NOISE_LAWS)}"
                )
    metric = _typed(block.get("metric", "success"), str, f"{where}: metric")
    if metric not in METRIC_NAMES:
        raise SuiteError(f"{where}: unknown metric {metric!r}; choose one of {list(METRIC_NAMES)}")

    settings = {}
    for key in ("train", "eval", *tables):
        value = block.get(key, {})
        settings[key] = dict(_typed(value, dict, f"{where}: [{key}]"))
    eval_settings = _make(EvalSettings, settings["eval"], f"{where}: [eval]")
    dataset = block.get("dataset")
    if dataset is not None:
        dataset = _check_dataset(_typed(dataset, str, f"{where}: dataset"), max(num_demos), where)
    last_demo_seed = DEMO_SEED_STRIDE * (max(seeds) + 1)
    if dataset is None and last_demo_seed > eval_settings.seed_start:
        raise SuiteError(
            f"{where}: run seed {max(seeds)} would train on expert seeds up to "
            f"{last_demo_seed - 1}, overlapping the evaluation seeds from "
            f"{eval_settings.seed_start}; use smaller seeds or raise eval.seed_start"
        )
    from .registry import train_config_fields

    _unknown_keys(settings["train"], train_config_fields(), f"{where}: [train]")
    try:
        make_train_config(settings["train"])
    except (TypeError, ValueError) as error:
        raise SuiteError(f"{where}: [train]: {error}") from None
    used_trainers = {POLICIES[p].trainer for p in policies}
    for trainer in TRAINERS.values():
        table = settings[trainer.table]
        if table and trainer.name not in used_trainers:
            raise SuiteError(
                f"{where}: [{trainer.table}] is given but no policy of the block uses it"
            )
        if trainer.name not in used_trainers:
            continue
        for name in policies:
            if POLICIES[name].trainer == trainer.name:
                reason = policy_available(name)
                if reason is not None:
                    raise SuiteError(f"{where}: {reason}")
        _unknown_keys(table, trainer.config_fields(), f"{where}: [{trainer.table}]")
        for gains in (True, False):
            try:
                trainer.make_config(table, gains, 0.0)
            except (TypeError, ValueError) as error:
                raise SuiteError(f"{where}: [{trainer.table}]: {error}") from None
    return EnvBlock(
        env_id=env_id,
        policies=tuple(policies),
        sigmas=tuple(sigmas),
        num_demos=tuple(num_demos),
        seeds=tuple(seeds),
        metric=metric,
        tables={t.table: settings[t.table] for t in TRAINERS.values()},
        train=settings["train"],
        eval=eval_settings,
        dataset=dataset,
        noise_laws=tuple(noise_laws),
    )


def _check_dataset(dataset: str, count: int, where: str) -> str:
    """Check that the reference file exists and holds at least ``count`` demonstrations."""
    import h5py

    path = (REPO_ROOT / dataset).resolve()
    if not path.is_file():
        raise SuiteError(
            f"{where}: dataset {dataset!r} does not exist (looked for {path}); regenerate it "
            "with the command in docs/data.md or drop the dataset key to collect demonstrations"
        )
    try:
        with h5py.File(path, "r") as f:
            held = sum(1 for key in f["data"] if key.startswith("demo_"))
    except (OSError, KeyError) as error:
        raise SuiteError(
            f"{where}: dataset {dataset!r} is not a demonstration file: {error}"
        ) from None
    if held < count:
        raise SuiteError(
            f"{where}: dataset {dataset!r} holds {held} demonstrations but num_demos asks for "
            f"{count}"
        )
    return dataset


def _make(cls: type, table: dict[str, Any], where: str) -> Any:
    _unknown_keys(table, cls.field_names(), where)
    try:
        return cls(**table)
    except (TypeError, ValueError) as error:
        raise SuiteError(f"{where}: {error}") from None


def _check_env_registered(env_id: str, where: str) -> None:
    """Raise :class:`SuiteError` unless ``env_id`` is a registered gymnasium id."""
    import gymnasium as gym

    import hint_envs  # noqa: F401  (registers the ids)

    if env_id not in gym.registry:
        known = sorted(i for i in gym.registry if i.startswith("hint_envs/"))
        raise SuiteError(f"{where}: unknown env id {env_id!r}; registered ids: {known}")


def _check_env_available(env_id: str, where: str) -> None:
    """Raise :class:`SuiteError` unless ``env_id`` can be made here and has an expert."""
    import gymnasium as gym

    from hint_envs.experts import EXPERTS

    try:
        gym.make(env_id).close()
    except gym.error.DependencyNotInstalled as error:
        raise SuiteError(
            f"{where} ({env_id}): its simulator is not installed ({error}); install the extra "
            "it names, or leave the env out with --only"
        ) from None
    if env_id not in EXPERTS:
        raise SuiteError(
            f"{where} ({env_id}): no expert collects demonstrations for it; experts exist for "
            f"{sorted(EXPERTS)}"
        )


# ----------------------------------------------------------------------------- expansion
def expand(suite: Suite) -> list[Job]:
    """The suite's runs, grouped into jobs (one trained model each).

    Order: env blocks, then seeds, demonstration counts, noise laws, policies and sigmas,
    so that an interrupted leaderboard has complete seeds rather than complete policies.
    Policies that ignore sigma run once, at sigma 0; runs at sigma 0 have no noise and so
    no law (they run once, as ``"gaussian"``); a policy entry limited to some laws runs
    only under those.

    Returns:
        the jobs; every run appears in exactly one.
    """
    jobs: dict[str, Job] = {}
    for block in suite.envs:
        grid = itertools.product(block.seeds, block.num_demos, block.noise_laws)
        for seed, n, law in grid:
            for name in block.policies:
                entry = POLICIES[name]
                if entry.noise_laws is not None and law not in entry.noise_laws:
                    continue
                trainer = TRAINERS[entry.trainer]
                sigmas = block.sigmas if entry.uses_sigma else (0.0,)
                for sigma in sigmas:
                    noiseless = sigma == 0 or not entry.uses_sigma
                    if noiseless and law != block.noise_laws[0]:
                        continue  # no noise, no law: once
                    run_law = "gaussian" if noiseless else law
                    train_sigma = entry.train_sigma(sigma)
                    model = trainer.make_config(
                        block.tables[trainer.table], entry.gains, train_sigma, run_law
                    )
                    spec = RunSpec(
                        env_id=block.env_id,
                        policy=name,
                        sigma=float(sigma),
                        num_demos=n,
                        seed=seed,
                        trainer=trainer.name,
                        gains=entry.gains,
                        train_sigma=train_sigma,
                        test_sigma=entry.test_sigma(sigma),
                        suite_seed=suite.seed,
                        train_seed=derive_seed(suite.seed, seed),
                        sample_seed=derive_seed(suite.seed, seed, 1),
                        demo_first_seed=0 if block.dataset else DEMO_SEED_STRIDE * seed,
                        model=model.to_dict(),
                        train={
                            k: v
                            for k, v in make_train_config(block.train).to_dict().items()
                            if k != "num_threads"
                        },
                        eval=asdict(block.eval),
                        dataset=block.dataset,
                        noise_law=run_law,
                        test_shift=entry.test_shift(sigma),
                    )
                    spec = _with_hash(spec)
                    jobs.setdefault(spec.train_key, Job()).runs.append(spec)
    return list(jobs.values())


def _with_hash(spec: RunSpec) -> RunSpec:
    from dataclasses import replace

    return replace(spec, run_hash=_hash(spec.config()))
