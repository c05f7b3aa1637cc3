"""The policies a leaderboard suite can name, and how each is trained and evaluated.

A *policy name* (``"hint"``, ``"ddpm_no_gains"``, ...) is a :class:`PolicyEntry`: which
*trainer* fits it, whether its composite actions carry gains, and where the run's noise
level sigma goes — into training (data noising), into evaluation (replica noise), both or
neither. A *trainer* (:class:`Trainer`) is one small function
``(demo file, config table, gains, sigma, seed, ...) -> trained policy`` with the settings
its evaluation needs.

Several names train the **same** model: ``"hint"`` and ``"ddpm_train_noise"`` both train
a DDPM with gains on data noised with sigma, and differ only in the test-time noise. The
leaderboard trains such a model once and evaluates it once per name (see
:mod:`.suite`'s jobs), which is why a name is split into a training part
(:meth:`PolicyEntry.train_sigma`) and an evaluation part (:meth:`PolicyEntry.test_sigma`).

=====================  =====  ===============  ==============  =========================
name                   gains  training noise   test noise      paper
=====================  =====  ===============  ==============  =========================
``hint``               yes    sigma            sigma (replica) HINT (Fig. 5 and 6)
``ddpm_train_noise``   yes    sigma            none            "deconvolution" (Fig. 6)
``ddpm_no_gains``      no     sigma            sigma (replica) diffusing u only (Fig. 5)
``ddpm_no_noise``      yes    none             none            sigma = 0 reference
``mlp_bc``             yes    none             none            MLP behaviour cloning
``diffusion_bc``       yes    none             none            diffusion-augmented BC
``ddpm_train_noise_    yes    sigma            none, inputs    the uniform law's bias on
shifted``                     (gaussian)       moved -sigma/2  a Gaussian model (fig6.md)
``ddpm_train_noise_    yes    sigma            none, inputs    train-only without the
debiased``                    (uniform)        moved +sigma/2  uniform law's bias
=====================  =====  ===============  ==============  =========================

A suite's ``noise_laws`` (default ``["gaussian"]``) says which laws the noise of the
sigma > 0 runs is drawn from (:data:`hint_envs.core.NOISE_LAWS`); the law is part of the
trained model (``config.noise_law``) and replica noise at test time uses the same law.
The two shifted arms isolate the mechanism of docs/results/fig6.md: they run only under
the law named in their entry.

The baselines (``mlp_bc``, ``diffusion_bc``: :mod:`policies.baselines`) ignore sigma, so
they run once per (N, seed), at sigma 0. Their trainers read the suite's ``[env.mlp_bc]``
and ``[env.diffusion_bc]`` tables (fields of ``policies.config.MLPBCConfig`` /
``DiffusionBCConfig`` but ``gains`` and ``sigma``) and the shared ``[env.train]`` table.
A policy whose trainer cannot be imported here is rejected with the reason.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "POLICIES",
    "TRAINERS",
    "EvalSettings",
    "PolicyEntry",
    "TrainedPolicy",
    "Trainer",
    "make_train_config",
    "policy_available",
    "train_config_fields",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyEntry:
    """One policy name of the leaderboard.

    Attributes:
        name: the name suites use.
        summary: one line for the documentation and the report.
        trainer: key of :data:`TRAINERS` that fits it.
        gains: composite actions are ``(u_bar, x_bar, K)`` chunks (else ``u_bar`` only).
        train_noise: trained on observations noised with the run's sigma (else clean).
        test_noise: evaluated with replica noise of the run's sigma (else clean).
        shift: the observations it is evaluated on are moved by ``shift * sigma`` in
            normalised units (0: not moved).
        noise_laws: the only noise laws it runs under (None: every law of the suite).
    """

    name: str
    summary: str
    trainer: str
    gains: bool
    train_noise: bool
    test_noise: bool
    shift: float = 0.0
    noise_laws: tuple[str, ...] | None = None

    @property
    def uses_sigma(self) -> bool:
        """Whether sigma changes anything; if not the policy runs once, at sigma 0."""
        return self.train_noise or self.test_noise

    def train_sigma(self, sigma: float) -> float:
        """The data-noise level the policy is trained with for a run at ``sigma``."""
        return float(sigma) if self.train_noise else 0.0

    def test_sigma(self, sigma: float) -> float:
        """The replica-noise level the policy is evaluated with for a run at ``sigma``."""
        return float(sigma) if self.test_noise else 0.0

    def test_shift(self, sigma: float) -> float:
        """The constant shift of its test observations (normalised units) at ``sigma``."""
        return float(self.shift * sigma)


#: Every policy name, in the order the report lists them.
POLICIES: dict[str, PolicyEntry] = {
    entry.name: entry
    for entry in (
        PolicyEntry(
            "hint",
            "DDPM over (ū, x̄, K) chunks, trained with noise σ, replica noise σ at test time",
            "ddpm",
            gains=True,
            train_noise=True,
            test_noise=True,
        ),
        PolicyEntry(
            "ddpm_train_noise",
            "DDPM over (ū, x̄, K) chunks, trained with noise σ, clean at test time (deconvolution)",
            "ddpm",
            gains=True,
            train_noise=True,
            test_noise=False,
        ),
        PolicyEntry(
            "ddpm_no_gains",
            "DDPM over raw input chunks ū (no gains), noise σ in training and at test time",
            "ddpm",
            gains=False,
            train_noise=True,
            test_noise=True,
        ),
        PolicyEntry(
            "ddpm_no_noise",
            "DDPM over (ū, x̄, K) chunks without any noise (σ = 0)",
            "ddpm",
            gains=True,
            train_noise=False,
            test_noise=False,
        ),
        PolicyEntry(
            "ddpm_train_noise_shifted",
            "DDPM over (ū, x̄, K) chunks, trained with Gaussian noise σ, clean at test time but "
            "every input moved by −σ/2 (the bias the uniform law's train-only arm meets)",
            "ddpm",
            gains=True,
            train_noise=True,
            test_noise=False,
            shift=-0.5,
            noise_laws=("gaussian",),
        ),
        PolicyEntry(
            "ddpm_train_noise_debiased",
            "DDPM over (ū, x̄, K) chunks, trained with uniform noise σ·U[0, 1), clean at test "
            "time moved by +σ/2, the noise's mean (train-only without the uniform law's bias)",
            "ddpm",
            gains=True,
            train_noise=True,
            test_noise=False,
            shift=0.5,
            noise_laws=("uniform",),
        ),
        PolicyEntry(
            "mlp_bc",
            "MLP behaviour cloning of (ū, x̄, K) chunks (deterministic, MSE)",
            "mlp_bc",
            gains=True,
            train_noise=False,
            test_noise=False,
        ),
        PolicyEntry(
            "diffusion_bc",
            "diffusion-model-augmented behaviour cloning of (ū, x̄, K) chunks (arXiv 2302.13335)",
            "diffusion_bc",
            gains=True,
            train_noise=False,
            test_noise=False,
        ),
    )
}


@dataclass(frozen=True)
class EvalSettings:
    """How every run of an env block is evaluated (the suite's ``[env.eval]`` table).

    Attributes:
        episodes: initial states evaluated (seeds ``seed_start .. seed_start + episodes -
            1``, the same for every run of the suite).
        seed_start: first evaluation seed; demonstrations never use seeds this high.
        rollouts_per_state: imitator (and expert) rollouts per initial state; ``> 1`` adds
            the imitation loss L_marg,eps to the metrics.
        eps: imitation-loss threshold (None: ``hint_envs.evaluation.DEFAULT_EPS``).
        num_envs: episodes rolled out at once (the ``predict`` batch size).
        deterministic: passed to ``predict``.
        expert: also roll out the expert (trajectory error, imitation loss).
        sample_seeds: sampler seeds each run is evaluated with (the sampler's spread is
            as large as the training seeds': docs/results/fig6.md); the record's metrics
            pool every episode, ``by_sample_seed`` keeps each seed's.
        checkpoint_every: the paper's protocol when ``> 0``: every this many training steps
            the model is evaluated too (each run's arm, the first sampler seed), and the
            record keeps each checkpoint's metrics (``checkpoints``) beside the final
            model's (``metrics``).
    """

    episodes: int = 20
    seed_start: int = 100_000
    rollouts_per_state: int = 1
    eps: float | None = None
    num_envs: int = 8
    deterministic: bool = False
    expert: bool = True
    sample_seeds: int = 1
    checkpoint_every: int = 0

    def __post_init__(self) -> None:
        for name in ("episodes", "rollouts_per_state", "num_envs", "sample_seeds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if (
            isinstance(self.seed_start, bool)
            or not isinstance(self.seed_start, int)
            or self.seed_start < 0
        ):
            raise ValueError(f"seed_start must be an integer >= 0, got {self.seed_start!r}")
        every = self.checkpoint_every
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"checkpoint_every must be an integer >= 0, got {every!r}")
        if self.eps is not None and (
            isinstance(self.eps, bool)
            or not isinstance(self.eps, (int, float))
            or not np.isfinite(self.eps)
            or self.eps <= 0
        ):
            raise ValueError(f"eps must be a number > 0, got {self.eps!r}")
        for name in ("deterministic", "expert"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be true or false, got {getattr(self, name)!r}")

    @classmethod
    def field_names(cls) -> list[str]:
        """The keys the ``[env.eval]`` table accepts."""
        return [f.name for f in fields(cls)]

    @property
    def seeds(self) -> list[int]:
        """The evaluation seeds, one initial state each."""
        return list(range(self.seed_start, self.seed_start + self.episodes))


@dataclass
class TrainedPolicy:
    """What a trainer returns.

    Attributes:
        policy: an object with SB3's ``predict`` on chunk-level observations
            ``(B, obs_horizon, d_obs) -> (B, action_dim)``, and ``seed(int)`` reseeding
            its sampler.
        chunk_length, obs_horizon, gains: the chunk-level env it acts in.
        noise_scale: ``(d_obs,)`` raw units per normalised unit (replica-noise scale).
        example_obs: ``(B, obs_horizon, d_obs)`` observations to time ``predict`` on.
        train_info: JSON-serialisable training facts (windows, final loss, parameters).
    """

    policy: Any
    chunk_length: int
    obs_horizon: int
    gains: bool
    noise_scale: np.ndarray
    example_obs: np.ndarray
    train_info: dict[str, Any]


@dataclass(frozen=True)
class Trainer:
    """A way of fitting a policy to demonstrations.

    Attributes:
        name: key in :data:`TRAINERS`.
        table: the suite's table of model settings for it (``[env.<table>]``).
        requires: ``"module:attribute"`` that must be importable for it to be available.
        extra: the pip extra that provides ``requires``.
        make_config: ``(table, gains, sigma, noise_law="gaussian") -> config`` — builds
            (and so validates) the model configuration from the suite's table; raises
            ``ValueError``/``TypeError``.
        config_fields: the keys the table accepts.
        fit: ``(demo_path, num_demos, config, train_table, seed, threads, progress,
            tensorboard_dir=None, on_checkpoint=None) -> TrainedPolicy``;
            ``on_checkpoint(step, policy)`` runs every ``checkpoint_every`` steps of
            ``train_table``.
    """

    name: str
    table: str
    requires: str
    extra: str
    make_config: Callable[..., Any]
    config_fields: Callable[[], list[str]]
    fit: Callable[..., TrainedPolicy]


def policy_available(name: str) -> str | None:
    """``None`` if policy ``name`` can be trained here, else the reason it cannot."""
    trainer = TRAINERS[POLICIES[name].trainer]
    module, attribute = trainer.requires.split(":")
    try:
        found = hasattr(importlib.import_module(module), attribute)
    except ModuleNotFoundError as error:
        if error.name == module:  # the module itself is missing, not a dependency
            return (
                f"policy {name!r} is not available: this version has no {module}; "
                f"leave {name!r} out of the suite"
            )
        return (
            f"policy {name!r} needs {trainer.requires}, which cannot be imported ({error}); "
            f"install the extra: pip install -e '.[{trainer.extra}]'"
        )
    except ImportError as error:
        return (
            f"policy {name!r} needs {trainer.requires}, which cannot be imported ({error}); "
            f"install the extra: pip install -e '.[{trainer.extra}]'"
        )
    if not found:
        return (
            f"policy {name!r} is not available: {module} has no {attribute} yet; "
            f"leave {name!r} out of the suite"
        )
    return None


# ----------------------------------------------------------------------------- DDPM
#: DDPMPolicyConfig fields the leaderboard sets itself, per policy name and run.
DDPM_RESERVED = ("gains", "sigma", "noise_law")


def _ddpm_fields() -> list[str]:
    from policies.config import DDPMPolicyConfig

    return [f.name for f in fields(DDPMPolicyConfig) if f.name not in DDPM_RESERVED]


def _ddpm_config(
    table: dict[str, Any], gains: bool, sigma: float, noise_law: str = "gaussian"
) -> Any:
    from policies.config import DDPMPolicyConfig

    data = dict(table)
    for key in ("widths", "down_dims"):  # TOML arrays -> the tuples the config holds
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return DDPMPolicyConfig(**data, gains=gains, sigma=float(sigma), noise_law=noise_law)


def _train(
    train: Callable[..., Any],
    demo_path: str | Path,
    num_demos: int,
    config: Any,
    train_table: dict[str, Any],
    seed: int,
    threads: int,
    progress: bool,
    tensorboard_dir: Path | None,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> tuple[Any, Any]:
    """``(dataset, policy)``: ``train`` (a trainer of :mod:`policies`) run on the first
    ``num_demos`` demonstrations of ``demo_path`` with the suite's training table."""
    from hint_envs.data import ChunkDataset
    from policies.config import TrainConfig

    dataset = ChunkDataset(
        demo_path, config.obs_horizon, config.horizon, gains=config.gains, num_demos=num_demos
    )
    train_config = TrainConfig(**_train_config_data(train_table), num_threads=threads)
    policy = train(
        dataset,
        config,
        train_config,
        out_dir=None,
        seed=seed,
        progress=progress,
        tensorboard_dir=tensorboard_dir,
        on_checkpoint=on_checkpoint,
    )
    return dataset, policy


def _fit_ddpm(
    demo_path: str | Path,
    num_demos: int,
    config: Any,
    train_table: dict[str, Any],
    seed: int,
    threads: int,
    progress: bool,
    tensorboard_dir: Path | None = None,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> TrainedPolicy:
    """Train :class:`policies.ddpm.DDPMChunkingPolicy` on the first ``num_demos`` demos."""
    from policies.networks import count_parameters
    from policies.training import train

    dataset, policy = _train(
        train,
        demo_path,
        num_demos,
        config,
        train_table,
        seed,
        threads,
        progress,
        tensorboard_dir,
        on_checkpoint,
    )
    history = policy.train_history
    return TrainedPolicy(
        policy=policy,
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
        noise_scale=np.asarray(policy.noise_scale, dtype=float),
        example_obs=np.asarray(dataset.observations, dtype=np.float64),
        train_info={
            "windows": len(dataset),
            "final_loss": history[-1]["loss"] if history else None,
            "parameters": int(count_parameters(policy.denoiser)),
        },
    )


def _train_config_data(table: dict[str, Any]) -> dict[str, Any]:
    data = dict(table)
    if isinstance(data.get("betas"), list):
        data["betas"] = tuple(data["betas"])
    return data


def train_config_fields() -> list[str]:
    """The keys the ``[env.train]`` table accepts (TrainConfig's, but ``num_threads``,
    which the leaderboard sets from ``--threads``)."""
    from policies.config import TrainConfig

    return [f.name for f in fields(TrainConfig) if f.name != "num_threads"]


def make_train_config(table: dict[str, Any]) -> Any:
    """Validate the ``[env.train]`` table: the :class:`policies.config.TrainConfig` it gives."""
    from policies.config import TrainConfig

    return TrainConfig(**_train_config_data(table), num_threads=1)


# ----------------------------------------------------------------------------- baselines
#: Baseline config fields the leaderboard sets itself, per policy name and run.
BASELINE_RESERVED = ("gains", "sigma", "noise_law")


def _baseline_config_class(name: str) -> type:
    from policies import config

    return getattr(config, name)


def _baseline_fields(config_class: str) -> list[str]:
    cls = _baseline_config_class(config_class)
    return [f.name for f in fields(cls) if f.name not in BASELINE_RESERVED]


def _baseline_config(
    config_class: str,
    table: dict[str, Any],
    gains: bool,
    sigma: float,
    noise_law: str = "gaussian",
) -> Any:
    cls = _baseline_config_class(config_class)
    data = dict(table)
    for key, value in data.items():  # TOML arrays -> the tuples the config holds
        if isinstance(value, list):
            data[key] = tuple(value)
    return cls(**data, gains=gains, sigma=float(sigma), noise_law=noise_law)


def _fit_baseline(
    train_function: str,
    demo_path: str | Path,
    num_demos: int,
    config: Any,
    train_table: dict[str, Any],
    seed: int,
    threads: int,
    progress: bool,
    tensorboard_dir: Path | None = None,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> TrainedPolicy:
    """Train a baseline of :mod:`policies.baselines` (``train_function`` names its trainer,
    ``train_mlp_bc`` or ``train_diffusion_bc``) on the first ``num_demos`` demos."""
    from policies import baselines

    train = getattr(baselines, train_function)
    dataset, policy = _train(
        train,
        demo_path,
        num_demos,
        config,
        train_table,
        seed,
        threads,
        progress,
        tensorboard_dir,
        on_checkpoint,
    )
    history = policy.train_history
    info: dict[str, Any] = {
        "windows": len(dataset),
        "final_loss": history[-1]["loss"] if history else None,
        "parameters": sum(p.numel() for p in policy.mlp.parameters()),
    }
    if hasattr(policy, "diffusion"):
        info["final_bc_loss"] = history[-1]["bc_loss"] if history else None
        info["final_dm_loss"] = history[-1]["dm_loss"] if history else None
        info["diffusion_final_loss"] = (
            policy.diffusion_history[-1]["loss"] if policy.diffusion_history else None
        )
        info["diffusion_parameters"] = sum(p.numel() for p in policy.diffusion.parameters())
    return TrainedPolicy(
        policy=policy,
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
        noise_scale=np.asarray(policy.noise_scale, dtype=float),
        example_obs=np.asarray(dataset.observations, dtype=np.float64),
        train_info=info,
    )


#: Every trainer, by name.
TRAINERS: dict[str, Trainer] = {
    "ddpm": Trainer(
        name="ddpm",
        table="policy",
        requires="policies.training:train",
        extra="policies",
        make_config=_ddpm_config,
        config_fields=_ddpm_fields,
        fit=_fit_ddpm,
    ),
    "mlp_bc": Trainer(
        name="mlp_bc",
        table="mlp_bc",
        requires="policies.baselines:train_mlp_bc",
        extra="policies",
        make_config=partial(_baseline_config, "MLPBCConfig"),
        config_fields=partial(_baseline_fields, "MLPBCConfig"),
        fit=partial(_fit_baseline, "train_mlp_bc"),
    ),
    "diffusion_bc": Trainer(
        name="diffusion_bc",
        table="diffusion_bc",
        requires="policies.baselines:train_diffusion_bc",
        extra="policies",
        make_config=partial(_baseline_config, "DiffusionBCConfig"),
        config_fields=partial(_baseline_fields, "DiffusionBCConfig"),
        fit=partial(_fit_baseline, "train_diffusion_bc"),
    ),
}
