"""Validated configuration of the policies and of their training.

:class:`DDPMPolicyConfig` says *what* the DDPM chunking policy is (horizons, denoiser,
noise schedule, replica-noise level); :class:`MLPBCConfig` and :class:`DiffusionBCConfig`
say what the two baselines of :mod:`policies.baselines` are; :class:`TrainConfig` says
*how* any of them is trained (optimiser, steps, batch size, checkpoints). All reject bad
values in ``__post_init__`` with a message that shows what they got, and round-trip
through JSON with ``to_dict`` / ``from_dict``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from hint_envs._io import check_memory
from hint_envs.core import check_flag, check_noise_law, check_noise_level

__all__ = [
    "DDPMPolicyConfig",
    "DiffusionBCConfig",
    "MLPBCConfig",
    "TrainConfig",
    "BETA_SCHEDULES",
    "DENOISERS",
    "PREDICTION_TYPES",
    "SCHEDULERS",
]

#: Denoiser networks: a 1-D temporal conditional U-Net (Diffusion Policy) or a residual MLP.
DENOISERS = ("unet1d", "mlp")
#: Samplers: ancestral DDPM or deterministic DDIM (eta = 0), both from ``diffusers``.
SCHEDULERS = ("ddpm", "ddim")
#: Denoiser targets: the added noise (Diffusion Policy's default) or the clean sample.
PREDICTION_TYPES = ("epsilon", "sample")
#: ``diffusers`` beta schedules the configurations accept.
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")

_C = TypeVar("_C")


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _int_tuple(name: str, value: Any) -> tuple[int, ...]:
    try:
        result = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}") from None
    if not result:
        raise ValueError(f"{name} must not be empty, got {value!r}")
    for item in result:
        _positive_int(f"every entry of {name}", item)
    return result


def _finite(name: str, value: Any, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value!r}")
    return float(value)


#: Bounds on settings whose cost is paid before any check of the machine could run.
MAX_DIFFUSION_STEPS = 10_000
MAX_THREADS = 1024
MAX_N_AUG = 10_000


def _from_dict(cls: type[_C], data: dict[str, Any]) -> _C:
    if not isinstance(data, dict):
        raise TypeError(f"{cls.__name__}.from_dict needs a dict, got {type(data).__name__}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {unknown}; known fields: {sorted(known)}")
    return cls(**data)


@dataclass
class DDPMPolicyConfig:
    """What the DDPM chunking policy is.

    The defaults are the measured CPU recipe (docs/results/recipe.md): a three-block MLP
    denoiser of width 512 trained to predict the clean chunk, sampled with DDIM in 10
    steps. Set ``denoiser="unet1d"`` and ``prediction_type="epsilon"`` for the paper's and
    Diffusion Policy's model (a GPU's work).

    Timeline (Diffusion Policy's notation; ``|o|`` observed, ``|a|`` executed, ``|p|``
    predicted but not executed), with ``obs_horizon = 2``, ``horizon = 16``,
    ``chunk_length = 8``::

        step:      t-1  t   t+1 ...  t+7  t+8 ... t+14
        observed:  |o|  |o|
        executed:       |a| |a| ...  |a|
        predicted:      |p| |p| ...  |p|  |p| ...  |p|

    Attributes:
        obs_horizon: tau_obs, observation frames the policy conditions on.
        horizon: number of primitive controllers the denoiser predicts per sample.
        chunk_length: tau_chunk, controllers executed per decision (``<= horizon``); the
            first ``chunk_length`` predicted controllers are the composite action.
        gains: whether a controller is ``(u_bar, x_bar, K)`` (True) or just ``u_bar``.
        denoiser: ``"mlp"`` (residual MLP, the CPU default) or ``"unet1d"`` (Diffusion
            Policy's 1-D temporal conditional U-Net, FiLM-conditioned).
        widths: hidden sizes of the MLP denoiser's residual blocks (keep them at least
            ``horizon * controller_size``, the flattened chunk: 128 on PushT; 688 on
            Robomimic, measured with ``(1024, 1024)``).
        down_dims: channel widths of the U-Net's levels; ``(64, 128, 256)`` with kernel 5
            is the HINT paper's size (about 4.2 M parameters on the quadrotor).
        kernel_size: U-Net temporal convolution kernel size (odd).
        n_groups: U-Net GroupNorm groups (must divide every entry of ``down_dims``).
        step_embed_dim: size of the sinusoidal diffusion-step embedding (even).
        diffusion_steps: training diffusion steps of the noise schedule.
        scheduler: ``"ddpm"`` (ancestral sampling) or ``"ddim"`` (deterministic, eta 0).
        inference_steps: denoising steps at sampling time; None means ``diffusion_steps``
            for DDPM and 10 for DDIM.
        beta_schedule: ``diffusers`` beta schedule (``squaredcos_cap_v2`` as in
            Diffusion Policy).
        clip_sample: clip the predicted clean chunk to the normalised range [-1, 1].
        prediction_type: what the denoiser is trained to predict: ``"sample"`` (the clean
            chunk: the default, which learns far faster at CPU scale and holds up with few
            deterministic DDIM steps; docs/results/recipe.md) or ``"epsilon"`` (the added
            noise, Diffusion Policy's and the paper's setting).
        ema: keep an exponential moving average of the weights and sample with it.
        ema_power, ema_inv_gamma, ema_min_decay, ema_max_decay, ema_update_after_step:
            the warm-up schedule of Diffusion Policy's ``EMAModel``:
            ``decay = 1 - (1 + step / inv_gamma) ** -power`` clamped to
            ``[min_decay, max_decay]``, and 0 until ``update_after_step``.
        sigma: replica / data noise level in normalised units (``>= 0``), the HINT
            paper's sigma. Training noises observations with it; evaluation wraps the env
            in ``ReplicaNoiseWrapper(env, sigma, scale=policy.noise_scale, noise_law=...)``.
        noise_law: the law of the noise ``eps`` per normalised dimension, in training and
            at test time: ``"gaussian"`` N(0, 1) (the paper's text, the default),
            ``"uniform"`` U[0, 1) (the authors' code: mean 1/2), ``"uniform_centered"``
            U[-1/2, 1/2) (docs/results/fig6.md). Policies saved before the option
            existed load as ``"gaussian"``.
        n_aug: N_aug, noised copies of every training sample (the paper's Algorithm 1).
        deterministic_seed: seed of the fresh generator each ``predict(...,
            deterministic=True)`` call samples with (same batch in, same actions out).
    """

    obs_horizon: int = 2
    horizon: int = 16
    chunk_length: int = 8
    gains: bool = True
    denoiser: str = "mlp"
    widths: tuple[int, ...] = (512, 512, 512)
    down_dims: tuple[int, ...] = (64, 128, 256)
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 128
    diffusion_steps: int = 100
    scheduler: str = "ddim"
    inference_steps: int | None = None
    beta_schedule: str = "squaredcos_cap_v2"
    clip_sample: bool = True
    prediction_type: str = "sample"
    ema: bool = True
    ema_power: float = 0.75
    ema_inv_gamma: float = 1.0
    ema_min_decay: float = 0.0
    ema_max_decay: float = 0.9999
    ema_update_after_step: int = 0
    sigma: float = 0.0
    noise_law: str = "gaussian"
    n_aug: int = 1
    deterministic_seed: int = 0

    def __post_init__(self) -> None:
        _check_chunking(self)
        _check_schedule(self)
        for name in ("clip_sample", "ema"):
            setattr(self, name, check_flag(name, getattr(self, name)))
        if self.denoiser not in DENOISERS:
            raise ValueError(f"unknown denoiser {self.denoiser!r}; choose one of {DENOISERS}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {self.scheduler!r}; choose one of {SCHEDULERS}")
        self.widths = _int_tuple("widths", self.widths)
        self.down_dims = _int_tuple("down_dims", self.down_dims)
        _check_network_size(self)
        _positive_int("kernel_size", self.kernel_size)
        if self.kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd (same-length convolutions), got {self.kernel_size}"
            )
        _positive_int("n_groups", self.n_groups)
        bad = [d for d in self.down_dims if d % self.n_groups]
        if bad:
            raise ValueError(
                f"n_groups ({self.n_groups}) must divide every entry of down_dims "
                f"{self.down_dims}; it does not divide {bad}"
            )
        if self.denoiser == "unet1d":
            factor = 2 ** (len(self.down_dims) - 1)
            if self.horizon % factor:
                raise ValueError(
                    f"the U-Net halves the horizon {len(self.down_dims) - 1} times, so horizon "
                    f"must be a multiple of {factor}; got horizon={self.horizon} with "
                    f"down_dims={self.down_dims}"
                )
        if self.inference_steps is not None:
            _positive_int("inference_steps", self.inference_steps)
            if self.inference_steps > self.diffusion_steps:
                raise ValueError(
                    f"inference_steps ({self.inference_steps}) must be <= diffusion_steps "
                    f"({self.diffusion_steps})"
                )
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"unknown prediction_type {self.prediction_type!r}; "
                f"choose one of {PREDICTION_TYPES}"
            )
        self.ema_power = _finite("ema_power", self.ema_power, low=0.0)
        self.ema_inv_gamma = _finite("ema_inv_gamma", self.ema_inv_gamma)
        if self.ema_inv_gamma <= 0:
            raise ValueError(f"ema_inv_gamma must be > 0, got {self.ema_inv_gamma!r}")
        self.ema_min_decay = _finite("ema_min_decay", self.ema_min_decay, 0.0, 1.0)
        self.ema_max_decay = _finite("ema_max_decay", self.ema_max_decay, 0.0, 1.0)
        if self.ema_min_decay > self.ema_max_decay:
            raise ValueError(
                f"ema_min_decay ({self.ema_min_decay}) must be <= ema_max_decay "
                f"({self.ema_max_decay})"
            )
        if (
            isinstance(self.ema_update_after_step, bool)
            or not isinstance(self.ema_update_after_step, int)
            or self.ema_update_after_step < 0
        ):
            raise ValueError(
                f"ema_update_after_step must be an integer >= 0, got {self.ema_update_after_step!r}"
            )
        if isinstance(self.deterministic_seed, bool) or not isinstance(
            self.deterministic_seed, int
        ):
            raise ValueError(
                f"deterministic_seed must be an integer, got {self.deterministic_seed!r}"
            )

    @property
    def num_inference_steps(self) -> int:
        """Denoising steps used at sampling time (resolves ``inference_steps=None``)."""
        if self.inference_steps is not None:
            return self.inference_steps
        return self.diffusion_steps if self.scheduler == "ddpm" else min(10, self.diffusion_steps)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["widths"] = list(self.widths)
        data["down_dims"] = list(self.down_dims)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DDPMPolicyConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``. A dict without
        ``prediction_type`` (saved before the option existed) means ``"epsilon"``."""
        if isinstance(data, dict):
            data = {"prediction_type": "epsilon", **data}
        return _from_dict(cls, data)


def _check_network_size(config: Any) -> None:
    """Refuse a denoiser whose hidden layers alone (a lower bound on its size, known before
    the data is read) cannot fit in memory with their EMA copy; the exact size is checked
    again when the model is built (:class:`policies.ddpm.DDPMChunkingPolicy`)."""
    if config.denoiser == "mlp":
        widths = config.widths
        weights = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    else:
        dims = config.down_dims
        weights = sum(config.kernel_size * d * d for d in dims)
    check_memory(
        2 * 4 * weights,
        f"a denoiser of widths {config.widths} / down_dims {config.down_dims}",
        "choose smaller widths (or down_dims)",
    )


def _check_chunking(config: Any) -> None:
    """The horizon, noising and ``gains`` checks every policy configuration shares."""
    for name in ("obs_horizon", "horizon", "chunk_length", "n_aug"):
        _positive_int(name, getattr(config, name))
    if config.n_aug > MAX_N_AUG:
        raise ValueError(
            f"n_aug must be <= {MAX_N_AUG} (noised copies of every sample, held in memory; "
            f"use TrainConfig.resample_noise for fresh noise every batch), got {config.n_aug}"
        )
    if config.chunk_length > config.horizon:
        raise ValueError(
            f"chunk_length (executed controllers, {config.chunk_length}) must be <= horizon "
            f"(predicted controllers, {config.horizon})"
        )
    config.gains = check_flag("gains", config.gains)
    config.sigma = check_noise_level(config.sigma)
    config.noise_law = check_noise_law(config.noise_law)


def _check_schedule(config: Any) -> None:
    """The diffusion checks the DDPM policy and DBC's diffusion model share: the step
    embedding, the number of diffusion steps and the beta schedule."""
    _positive_int("step_embed_dim", config.step_embed_dim)
    if config.step_embed_dim % 2 or config.step_embed_dim < 4:
        raise ValueError(f"step_embed_dim must be even and >= 4, got {config.step_embed_dim}")
    _positive_int("diffusion_steps", config.diffusion_steps)
    if config.diffusion_steps > MAX_DIFFUSION_STEPS:  # its schedule tables are built eagerly
        raise ValueError(
            f"diffusion_steps must be <= {MAX_DIFFUSION_STEPS}, got {config.diffusion_steps} "
            "(Diffusion Policy and the HINT paper use 100)"
        )
    if config.beta_schedule not in BETA_SCHEDULES:
        raise ValueError(
            f"unknown beta_schedule {config.beta_schedule!r}; choose one of {BETA_SCHEDULES}"
        )


@dataclass
class _BCConfig:
    """Fields shared by the two baselines (see :class:`MLPBCConfig`)."""

    obs_horizon: int = 2
    horizon: int = 16
    chunk_length: int = 8
    gains: bool = True
    widths: tuple[int, ...] = (256, 256, 256)
    sigma: float = 0.0
    noise_law: str = "gaussian"
    n_aug: int = 1

    def __post_init__(self) -> None:
        _check_chunking(self)
        self.widths = _int_tuple("widths", self.widths)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data


@dataclass
class MLPBCConfig(_BCConfig):
    """What the MLP behaviour-cloning baseline is (:class:`policies.baselines.MLPBCPolicy`).

    A deterministic MLP maps the normalised, flattened observation chunk to the normalised
    chunk of ``horizon`` controllers; the first ``chunk_length`` are executed (as for the
    DDPM policy, so both train on the same :class:`~hint_envs.data.chunks.ChunkDataset`;
    ``horizon = chunk_length`` predicts exactly the executed controllers). Timeline with
    ``obs_horizon = 2``, ``horizon = 16``, ``chunk_length = 8``::

        step:      t-1  t   t+1 ...  t+7  t+8 ... t+14
        observed:  |o|  |o|
        executed:       |a| |a| ...  |a|
        predicted:      |p| |p| ...  |p|  |p| ...  |p|

    Attributes:
        obs_horizon: tau_obs, observation frames the policy sees.
        horizon: controllers the MLP predicts (its output is ``horizon * controller_size``
            floats), trained with MSE on all of them.
        chunk_length: tau_chunk, controllers executed per decision (``<= horizon``).
        gains: controllers are ``(u_bar, x_bar, K)`` (True) or just ``u_bar``.
        widths: hidden-layer sizes of the MLP (Linear + Mish each).
        sigma: data noise on the training observation chunks, in normalised units
            (Algorithm 1 of the HINT paper, as for the DDPM policy; 0: clean data).
        noise_law: the law of that noise, as :attr:`DDPMPolicyConfig.noise_law`.
        n_aug: noised copies of every training sample when ``sigma > 0``.
    """

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MLPBCConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _from_dict(cls, data)


@dataclass
class DiffusionBCConfig(_BCConfig):
    """What Diffusion-model-augmented BC is (:class:`policies.baselines.DiffusionBCPolicy`).

    Chen et al., "Diffusion Model-Augmented Behavioral Cloning" (arXiv 2302.13335): the
    same deterministic MLP policy as :class:`MLPBCConfig` (all its fields mean the same),
    trained with ``BC MSE + dm_weight * L_DM`` after a diffusion model of the joint
    (observation chunk, controller chunk) distribution has been trained and frozen.

    Attributes:
        dm_weight: lambda, the weight of the diffusion-model loss L_DM (0 gives plain BC;
            1.0, the default, weighs the two terms equally).
        expert_normalization: L_DM is ``max(0, L_diff(o, pi(o)) - L_diff(o, a))``, the
            policy's denoising loss minus the expert's (True, the paper's method), or
            ``L_diff(o, pi(o))`` alone (False, the paper's ablation).
        diffusion_widths: hidden sizes of the diffusion model's MLP layers
            (:class:`~policies.networks.JointMLPDenoiser`; keep them near or above the
            joint size ``obs_horizon * d_obs + horizon * controller_size``, 332 for the
            quadrotor with gains).
        step_embed_dim: size of its sinusoidal diffusion-step embedding (even, ``>= 4``).
        diffusion_steps: diffusion steps of its noise schedule (``diffusers``'
            ``DDPMScheduler``).
        beta_schedule: the ``diffusers`` beta schedule.
        diffusion_train_steps: gradient steps of the diffusion model before the policy is
            trained (None: ``TrainConfig.steps``, the policy's own).
    """

    dm_weight: float = 1.0
    expert_normalization: bool = True
    diffusion_widths: tuple[int, ...] = (384, 384)
    step_embed_dim: int = 64
    diffusion_steps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    diffusion_train_steps: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.dm_weight = _finite("dm_weight (lambda)", self.dm_weight, low=0.0)
        if not isinstance(self.expert_normalization, bool):
            raise ValueError(
                f"expert_normalization must be True or False, got {self.expert_normalization!r}"
            )
        self.diffusion_widths = _int_tuple("diffusion_widths", self.diffusion_widths)
        _check_schedule(self)
        if self.diffusion_train_steps is not None:
            _positive_int("diffusion_train_steps", self.diffusion_train_steps)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiffusionBCConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _from_dict(cls, data)


@dataclass
class TrainConfig:
    """How the DDPM chunking policy is trained (AdamW, cosine LR with warm-up, EMA).

    The defaults are the measured CPU recipe (docs/results/recipe.md): 32000 steps of batch
    256 take about 32 minutes on a 2-core CPU with the default policy (a second thread adds
    little to so small a network).

    Attributes:
        steps: gradient steps.
        batch_size: samples per gradient step.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear LR warm-up steps before the cosine decay.
        grad_clip: max gradient norm (None: no clipping).
        checkpoint_every: save a checkpoint every this many steps (0: only the final one).
        log_every: record the mean loss every this many steps.
        num_threads: torch CPU threads while training (None: leave torch's setting).
        resample_noise: False (default): Algorithm 1 of the HINT paper, ``n_aug`` noised
            copies of every sample drawn once before training; True: fresh noise for
            every batch.
        device: torch device to train on, ``"cpu"`` or ``"cuda"`` / ``"cuda:N"`` (runs
            are bit-reproducible on CPU; on CUDA only up to its nondeterministic kernels).
    """

    steps: int = 32000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    warmup_steps: int = 100
    grad_clip: float | None = 1.0
    checkpoint_every: int = 0
    log_every: int = 50
    num_threads: int | None = 2
    resample_noise: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every"):
            _positive_int(name, getattr(self, name))
        self.lr = _finite("lr", self.lr)
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr!r}")
        self.weight_decay = _finite("weight_decay", self.weight_decay, low=0.0)
        try:
            betas = tuple(float(b) for b in self.betas)
        except (TypeError, ValueError):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}") from None
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        self.betas = betas  # type: ignore[assignment]
        for name in ("warmup_steps", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
        if self.grad_clip is not None:
            self.grad_clip = _finite("grad_clip", self.grad_clip)
            if self.grad_clip <= 0:
                raise ValueError(f"grad_clip must be > 0 or None, got {self.grad_clip!r}")
        if self.num_threads is not None:
            _positive_int("num_threads", self.num_threads)
            if self.num_threads > MAX_THREADS:
                raise ValueError(
                    f"num_threads must be <= {MAX_THREADS} (this machine has "
                    f"{os.cpu_count()} cores), got {self.num_threads}"
                )
        if not isinstance(self.device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {self.device!r}")
        if not isinstance(self.resample_noise, bool):
            raise ValueError(f"resample_noise must be True or False, got {self.resample_noise!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["betas"] = list(self.betas)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ``ValueError``."""
        return _from_dict(cls, data)
