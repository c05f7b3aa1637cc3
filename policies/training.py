"""The one trainer of :mod:`policies`, and :func:`train` for the DDPM chunking policy.

Every policy — :class:`~policies.ddpm.DDPMChunkingPolicy` (:func:`train`) and the
baselines (:func:`policies.baselines.train_mlp_bc`, :func:`~policies.baselines.train_diffusion_bc`)
— is trained by :func:`fit`. A policy supplies only its objective: one or more
:class:`Phase` s, each a loss of a normalised batch, the parameters it trains, and an
optional hook after every step (the DDPM policy's EMA update). :func:`fit` does the rest,
the same way for every policy:

1. checks the configurations' types, the device, that the dataset and configuration
   agree, and that the dataset carries the env's bounds (before any long work);
2. builds the policy's spaces from the dataset's bounds (:func:`chunk_spaces`; the env is
   never made) and the policy, weights initialised under ``torch.manual_seed(seed)``
   inside ``torch.random.fork_rng`` (the global generator is restored afterwards);
3. draws the training batches (:class:`_Batches`, data noising below);
4. per phase: AdamW, linear warm-up then cosine decay of the learning rate, gradient-norm
   clipping, the phase's hook after every step (:func:`_optimize`), checkpoints in the
   last phase, from which ``resume`` continues bit-identically;
5. saves the policy and ``training.json`` into ``out_dir``.

Data noising follows Algorithm 1 of the HINT paper (Block et al., 2023): every training
observation chunk ``o`` is replaced by ``n_aug`` noised copies
``o + sigma * scale * eps`` (``eps`` from ``config.noise_law``) drawn once before training with
:func:`hint_envs.wrappers.replica_noise.add_replica_noise` — the very function the
test-time ``ReplicaNoiseWrapper`` calls — with ``scale = stats.obs.noise_scale``, so sigma
is in normalised units. Each copy is paired with the chunk's clean composite action. With
``TrainConfig.resample_noise`` the noise is drawn afresh for every batch instead.

Everything random comes from the seed: weights from ``torch.manual_seed(seed)``, batches,
diffusion steps and diffusion noise from a local ``torch.Generator``, data noise from a
``numpy.random.Generator``; with the same seed, data, configs and thread count, two runs
give bit-identical weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn
from tqdm.auto import tqdm

import hint_envs
from hint_envs._io import (
    DatasetError,
    atomic_dir,
    atomic_write_json,
    check_memory,
    remove_temporaries,
)
from hint_envs.core import CompositeActionLayout, EnvBounds
from hint_envs.data.normalization import NormalizationStats
from hint_envs.wrappers.replica_noise import add_replica_noise
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.ddpm import DDPMChunkingPolicy
from policies.devices import check_device
from policies.logging_tb import TensorBoardWriter
from policies.serialization import load_policy, save_policy

__all__ = [
    "train",
    "fit",
    "Phase",
    "TrainResult",
    "chunk_spaces",
    "noised_observations",
    "latest_checkpoints",
    "CheckpointMismatchError",
    "TrainingDivergedError",
]

logger = logging.getLogger(__name__)

#: File in ``out_dir`` with the training configuration and the loss history.
TRAINING_LOG = "training.json"
#: Folder in ``out_dir`` with one ``step_XXXXXXX`` folder per checkpoint.
CHECKPOINTS = "checkpoints"
#: Files of a checkpoint beside its saved policy: what continuing the training needs.
STATE_FILE = "training_state.json"
STATE_TENSORS = "training_state.safetensors"
STATE_FORMAT = "policies.TrainingState/1"
#: The same format as written before the package was named ``policies`` in its tags.
_LEGACY_STATE_FORMATS = ("hint_envs.policies.TrainingState/1",)
#: Train settings a resumed run may change: they do not change the schedule.
RESUMABLE_CHANGES = ("checkpoint_every", "num_threads", "device")


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by a training run with other settings or data."""


class TrainingDivergedError(RuntimeError):
    """The loss (or the weights) stopped being finite: training stopped there, nothing
    was saved, and the checkpoints written before are kept.

    Attributes:
        step: the step at which it was found.
    """

    def __init__(self, step: int, what: str, lr: float):
        self.step = step
        super().__init__(
            f"training diverged at step {step}: {what}; it stopped there and saved no "
            f"policy (checkpoints written before are kept). Try a smaller learning rate "
            f"(now {lr:g}) or gradient clipping (TrainConfig.grad_clip), and check the data"
        )


def _check_finite_weights(module: nn.Module, step: int, lr: float) -> None:
    """Raise :class:`TrainingDivergedError` if a floating tensor of ``module`` is not finite."""
    for name, tensor in module.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise TrainingDivergedError(step, f"{name} holds NaN or inf", lr)


class ChunkData(Protocol):
    """What the trainer reads from a :class:`hint_envs.data.chunks.ChunkDataset`."""

    observations: np.ndarray  # (M, obs_horizon, d_obs)
    actions: np.ndarray  # (M, horizon, controller_size)
    layout: CompositeActionLayout
    stats: NormalizationStats
    env_id: str | None
    env_kwargs: dict[str, Any]
    bounds: EnvBounds | None
    path: Path | None


class ChunkConfig(Protocol):
    """The chunking settings every policy configuration has (DDPM and baselines)."""

    obs_horizon: int
    horizon: int
    chunk_length: int
    gains: bool


def chunk_spaces(dataset: ChunkData, config: ChunkConfig) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """The observation and action spaces of the chunk-level env the policy will act in.

    Built from the env's bounds the dataset carries (stored in the demonstration file at
    collection) with :meth:`hint_envs.core.EnvBounds.chunk_spaces`, the function
    ``PrimitiveControllerWrapper`` builds its own spaces with: the policy's Boxes, and so
    the clipping of its actions, are the env's, on any machine; no env is made. A dataset
    with no env id at all (demonstrations of an unnamed env) gets unbounded Boxes.

    Raises:
        DatasetError: the dataset names an env but carries no bounds (a file written
            before hint_envs stored them); the message names the command that adds them.
    """
    bounds = getattr(dataset, "bounds", None)
    if bounds is not None:
        return bounds.chunk_spaces(config.chunk_length, config.obs_horizon, config.gains)
    env_id = getattr(dataset, "env_id", None)
    if env_id is not None:
        path = getattr(dataset, "path", None)
        where = f"the demonstration file {path}" if path is not None else "the dataset"
        raise DatasetError(
            f"{where} ({env_id}) carries no env bounds, which the policy's action space and "
            f"clipping are built from (files written before hint_envs stored them); add "
            f"them once with `hint-data add-bounds {path or 'FILE'}`, which makes the env "
            "from the file (a Minari dataset: export it again with hint-minari from such a "
            "file), or pass ChunkDataset(..., bounds=EnvBounds.from_env(env))"
        )
    logger.info("the dataset names no env: training with unbounded spaces (no clipping)")
    d_obs, controller_size = dataset.stats.obs.dim, dataset.stats.action.dim
    obs = gym.spaces.Box(-np.inf, np.inf, (config.obs_horizon, d_obs), np.float64)
    act = gym.spaces.Box(-np.inf, np.inf, (config.chunk_length * controller_size,), np.float64)
    return obs, act


def noised_observations(
    observations: np.ndarray,
    sigma: float,
    n_aug: int,
    scale: np.ndarray,
    rng: np.random.Generator,
    law: str = "gaussian",
) -> np.ndarray:
    """Algorithm 1's augmented observations: ``n_aug`` noised copies of every chunk.

    Args:
        observations: ``(M, T_obs, D_obs)`` raw chunks.
        sigma: noise level in normalised units.
        n_aug: copies per chunk (1 copy, un-noised, when ``sigma == 0``).
        scale: ``(D_obs,)`` raw units per normalised unit.
        rng: the generator the noise is drawn from.
        law: the noise law (:data:`hint_envs.core.NOISE_LAWS`).

    Returns:
        ``(n_aug * M, T_obs, D_obs)`` float64; row ``j * M + i`` is copy ``j`` of chunk ``i``.
    """
    observations = np.asarray(observations, dtype=np.float64)
    if sigma == 0:
        return observations.copy()
    copies = np.broadcast_to(observations, (n_aug,) + observations.shape)
    noised = add_replica_noise(copies, sigma, scale, rng, law)
    return noised.reshape((n_aug * observations.shape[0],) + observations.shape[1:])


@contextmanager
def _torch_threads(num_threads: int | None):
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_dataset(dataset: ChunkData, config: ChunkConfig) -> None:
    obs, actions = np.asarray(dataset.observations), np.asarray(dataset.actions)
    if obs.ndim != 3 or actions.ndim != 3 or len(obs) != len(actions) or len(obs) == 0:
        raise ValueError(
            f"dataset must hold observations (M, obs_horizon, d_obs) and actions (M, horizon, "
            f"controller_size) with M >= 1, got {obs.shape} and {actions.shape}"
        )
    if obs.shape[1] != config.obs_horizon:
        raise ValueError(
            f"dataset observation chunks have {obs.shape[1]} frames but config.obs_horizon is "
            f"{config.obs_horizon}; build ChunkDataset(..., obs_horizon={config.obs_horizon})"
        )
    if actions.shape[1] != config.horizon:
        raise ValueError(
            f"dataset composite actions have {actions.shape[1]} controllers but config.horizon "
            f"is {config.horizon}; build ChunkDataset(..., horizon={config.horizon})"
        )
    if dataset.layout.gains != config.gains:
        raise ValueError(
            f"dataset gains={dataset.layout.gains} but config.gains={config.gains}; build "
            f"ChunkDataset(..., gains={config.gains})"
        )
    if actions.shape[2] != dataset.stats.action.dim or obs.shape[2] != dataset.stats.obs.dim:
        raise ValueError(
            f"dataset statistics (obs {dataset.stats.obs.dim}, action {dataset.stats.action.dim} "
            f"features) do not match its arrays {obs.shape}, {actions.shape}"
        )


class _Batches:
    """Minibatches of normalised (observation chunk, composite action) training pairs.

    Algorithm 1 of the HINT paper: ``config.n_aug`` noised copies of every observation
    chunk (noise ``config.sigma`` in normalised units, from ``rng``) are drawn once here,
    each paired with its chunk's clean action; with ``train_config.resample_noise`` (and
    ``sigma > 0``) every batch gets fresh noise instead. Batches walk through a random
    permutation of the pairs (from ``generator``), redrawn when it runs out.

    Attributes:
        n_total: training pairs (windows times copies).
        batch_size: pairs per batch (``train_config.batch_size``, at most ``n_total``).
    """

    def __init__(
        self,
        policy: Any,
        obs_raw: np.ndarray,
        actions_raw: np.ndarray,
        config: Any,
        train_config: TrainConfig,
        generator: torch.Generator,
        rng: np.random.Generator,
        device: torch.device,
    ):
        self.policy, self.generator, self.rng, self.device = policy, generator, rng, device
        self.obs_raw, self.sigma, self.law = obs_raw, config.sigma, config.noise_law
        self.scale = policy.stats.obs.noise_scale
        self.num_windows = len(obs_raw)
        with torch.no_grad():
            self.actions = policy.normalize_action(torch.from_numpy(actions_raw).to(device))
            self.observations: torch.Tensor | None
            if train_config.resample_noise and config.sigma > 0:
                self.observations = None
                self.n_total = self.num_windows
            else:
                copies = config.n_aug if config.sigma > 0 else 1
                check_memory(  # the noise, the noised copies and their temporaries (float64),
                    40 * copies * obs_raw.size,  # then the normalised copy: ~40 B per entry
                    f"n_aug = {copies} noised copies of {len(obs_raw)} observation chunks",
                    "lower n_aug, or draw fresh noise per batch (resample_noise)",
                )
                noised = noised_observations(
                    obs_raw, config.sigma, config.n_aug, self.scale, rng, config.noise_law
                )
                self.observations = policy.normalize_obs(torch.from_numpy(noised).to(device))
                self.n_total = len(self.observations)
        self.batch_size = min(train_config.batch_size, self.n_total)
        self._perm = torch.empty(0, dtype=torch.long, device=device)
        self._cursor = 0

    def get_state(self) -> tuple[torch.Tensor, int]:
        """The current permutation and the position in it (for a checkpoint)."""
        return self._perm, self._cursor

    def set_state(self, permutation: torch.Tensor, cursor: int) -> None:
        """Continue from a :meth:`get_state` of a batcher built alike."""
        self._perm, self._cursor = permutation.to(self.device), int(cursor)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next batch: ``obs (B, T_obs * D_obs)`` and ``action (B, H, D_ctrl)``, both
        normalised float32."""
        if self._cursor + self.batch_size > len(self._perm):
            self._perm = torch.randperm(self.n_total, generator=self.generator, device=self.device)
            self._cursor = 0
        index = self._perm[self._cursor : self._cursor + self.batch_size]
        self._cursor += self.batch_size
        action_batch = self.actions[index % self.num_windows]
        if self.observations is None:
            raw = add_replica_noise(
                self.obs_raw[index.cpu().numpy()], self.sigma, self.scale, self.rng, self.law
            )
            obs_batch = self.policy.normalize_obs(torch.from_numpy(raw).to(self.device))
        else:
            obs_batch = self.observations[index]
        return obs_batch, action_batch


@dataclass
class LoopState:
    """Where :func:`_optimize` stands: what a checkpoint needs to continue the loop.

    Attributes:
        step: gradient steps done.
        history: the loss history so far (entries as :func:`_optimize` returns them).
        running: sums of the loss (and extras) since the last history entry.
        count: steps summed in ``running``.
        seconds: seconds spent in the loop so far (over every session).
        lr_schedule: the learning-rate scheduler's ``state_dict()`` (plain numbers).
    """

    step: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    running: dict[str, float] = field(default_factory=dict)
    count: int = 0
    seconds: float = 0.0
    lr_schedule: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoopState:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


def _optimize(
    optimizer: torch.optim.Optimizer,
    step_loss: Callable[[], tuple[torch.Tensor, dict[str, float]]],
    train_config: TrainConfig,
    steps: int,
    desc: str,
    progress: bool,
    after_step: Callable[[], Any] | None = None,
    checkpoint: Callable[[int], None] | None = None,
    tensorboard_dir: str | Path | None = None,
    state: LoopState | None = None,
) -> tuple[list[dict[str, float]], float]:
    """The gradient loop every trainer of :mod:`policies` runs.

    ``steps`` steps of: ``loss, extras = step_loss()``, backward, gradient-norm clipping
    (``train_config.grad_clip``) of the optimiser's parameters, optimiser step, learning-rate
    step (linear warm-up over ``train_config.warmup_steps``, then cosine decay to 0 at
    ``steps``), ``after_step()``. Every ``train_config.log_every`` steps (and at the last)
    the mean loss and mean of each ``extras`` entry are recorded; every
    ``train_config.checkpoint_every`` steps but the last, ``checkpoint(step)``. With
    ``tensorboard_dir``, every recorded entry also goes to TensorBoard as ``<desc>/loss``,
    ``<desc>/lr``, ... (:class:`policies.logging_tb.TensorBoardWriter`).

    ``state`` is kept up to date while the loop runs (``checkpoint`` saves it with the
    optimiser); given one from a checkpoint (its ``step > 0``), the loop continues after
    that step with the learning rate the schedule had there (the optimiser must hold its
    state of that step).

    Returns:
        the history, a list of ``{"step", "loss", "lr", **extras}``, and the seconds taken
        (over every session of a resumed loop).
    """
    state = state if state is not None else LoopState()
    board = None
    if tensorboard_dir is not None:  # tags like train/loss, diffusion_bc/policy/loss
        board = TensorBoardWriter(tensorboard_dir, desc.replace(": ", "/").replace(" ", "_"))
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, train_config.warmup_steps, steps)
    if state.lr_schedule is not None:
        lr_schedule.load_state_dict(dict(state.lr_schedule))  # (it pops from its argument)
        for group, lr in zip(optimizer.param_groups, lr_schedule.get_last_lr(), strict=True):
            group["lr"] = lr
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    history = state.history
    start = time.perf_counter() - state.seconds
    bar = tqdm(
        range(state.step + 1, steps + 1),
        desc=desc,
        disable=not progress,
        total=steps,
        initial=state.step,
    )
    try:
        for step in bar:
            loss, extras = step_loss()
            value = loss.item()
            if not math.isfinite(value):  # before the update: the weights stay as they were
                raise TrainingDivergedError(
                    step, f"the loss is {value}", optimizer.param_groups[0]["lr"]
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, train_config.grad_clip)
            optimizer.step()
            lr_schedule.step()
            if after_step is not None:
                after_step()

            running = state.running
            for key, number in (("loss", value), *extras.items()):
                running[key] = running.get(key, 0.0) + number
            state.count += 1
            if step % train_config.log_every == 0 or step == steps:
                entry = {"step": step, "loss": running.pop("loss") / state.count}
                entry["lr"] = lr_schedule.get_last_lr()[0]
                entry.update({key: total / state.count for key, total in running.items()})
                history.append(entry)
                if board is not None:
                    board.scalars(step, entry)
                bar.set_postfix(loss=f"{entry['loss']:.4f}")
                state.running, state.count = {}, 0
            state.step = step
            if (
                checkpoint is not None
                and train_config.checkpoint_every
                and step % train_config.checkpoint_every == 0
                and step != steps
            ):
                state.seconds = time.perf_counter() - start
                state.lr_schedule = lr_schedule.state_dict()
                checkpoint(step)
    finally:  # also on Ctrl-C: the bar ends its line before the caller reports
        bar.close()
        if board is not None:
            board.close()
    optimizer.zero_grad(set_to_none=True)  # the trained model keeps no stale gradients
    return history, time.perf_counter() - start


#: A phase's objective: ``loss(obs, action, generator) -> (loss, extras)`` on a normalised
#: batch (``obs (B, T_obs * D_obs)``, ``action (B, H, D_ctrl)``), the diffusion steps and
#: noise drawn from ``generator``; ``extras`` are floats recorded beside the loss.
Objective = Callable[
    [torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, dict[str, float]]
]


@dataclass
class Phase:
    """One optimisation phase: what a policy supplies to :func:`fit`.

    Attributes:
        name: the progress bar's label and the TensorBoard tag prefix (``"train"`` gives
            ``train/loss``; ``"diffusion_bc: policy"`` gives ``diffusion_bc/policy/loss``).
        parameters: the parameters the phase's AdamW updates.
        loss: the phase's :data:`Objective`.
        steps: gradient steps (None: ``TrainConfig.steps``).
        after_step: called after every optimiser step (the DDPM policy's EMA update).
        freeze: stop the gradients of ``parameters`` when the phase ends (DBC's diffusion
            model, before the policy is trained against it).
        record: the key of the phase's history in ``training.json`` and of its seconds,
            ``<record>_history`` and ``<record>_seconds``; the last phase's are
            ``history`` and ``seconds``.
    """

    name: str
    parameters: list[nn.Parameter]
    loss: Objective
    steps: int | None = None
    after_step: Callable[[], Any] | None = None
    freeze: bool = False
    record: str = "train"


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        policy: the trained policy, in eval mode; ``policy.train_history`` and
            ``policy.train_seconds`` are the last phase's.
        histories: per phase (by :attr:`Phase.record`), the list of ``{"step", "loss",
            "lr", **extras}`` entries, the means over each ``log_every`` steps.
        seconds: per phase, the seconds its gradient loop took (over every session of a
            resumed run).
        num_samples: training pairs (windows times noised copies).
        resumed_from_step: the last phase's step the run resumed from (None: from scratch).
    """

    policy: Any
    histories: dict[str, list[dict[str, float]]]
    seconds: dict[str, float]
    num_samples: int
    resumed_from_step: int | None


def _check_configs(config: Any, config_class: type, train_config: Any) -> TrainConfig:
    """``train_config`` (a default one for None), after checking both configurations' types.

    Raises:
        TypeError: ``config`` is not a ``config_class``, or ``train_config`` not a
            :class:`TrainConfig`.
    """
    train_config = train_config if train_config is not None else TrainConfig()
    if not isinstance(config, config_class):
        raise TypeError(f"config must be a {config_class.__name__}, got {type(config).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig, got {type(train_config).__name__}")
    return train_config


def fit(
    policy_class: type,
    phases: Callable[[Any], list[Phase]],
    dataset: ChunkData,
    config: Any,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | Path | None = None,
    resume: bool = False,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> TrainResult:
    """Train a policy of ``policy_class`` on ``dataset``: the one training loop of the package.

    Args:
        policy_class: the policy's class (its ``config_class`` is what ``config`` must be);
            built as ``policy_class(obs_space, act_space, config, stats, seed=seed,
            env_id=..., layout=..., env_kwargs=...)``.
        phases: ``phases(policy) -> [Phase, ...]``, the policy's objective(s), run in order.
        dataset: the chunk dataset, as for :func:`train`.
        config: the policy's configuration (an instance of ``policy_class.config_class``).
        train_config: optimisation settings, as for :func:`train`.
        out_dir: where the policy, its checkpoints and ``training.json`` go, as for
            :func:`train`. Checkpoints are taken, and resumed from, in the last phase; a
            checkpoint holds the earlier phases' histories, so a resumed run skips them.
        seed: seed of everything random in training.
        progress: show a tqdm bar.
        tensorboard_dir: TensorBoard scalars go there, as for :func:`train`.
        resume: continue from the latest checkpoint under ``out_dir``, as for :func:`train`.
        on_checkpoint: called as ``on_checkpoint(step, policy)`` at every checkpoint step
            of the last phase (every ``train_config.checkpoint_every`` steps but the last;
            with or without ``out_dir``), with the policy in eval mode; e.g. to evaluate
            every checkpoint (the HINT paper's protocol). It must not touch the training
            generators: training continues bit-identically whatever it does.

    Returns:
        the :class:`TrainResult`.

    Raises:
        TypeError: configurations of the wrong types.
        ValueError: an unavailable device, a dataset that does not match ``config``,
            ``resume`` without ``out_dir``.
        DatasetError: a dataset without the env's bounds (:func:`chunk_spaces`).
        CheckpointMismatchError: ``resume`` from a checkpoint of other settings or data.
    """
    train_config = _check_configs(config, policy_class.config_class, train_config)
    check_device(train_config.device)  # before any work: a clear error, not torch's
    _check_dataset(dataset, config)
    obs_space, act_space = chunk_spaces(dataset, config)  # the bounds, before any work
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir whose checkpoints it continues from")
    env_id = getattr(dataset, "env_id", None)
    env_kwargs = dict(getattr(dataset, "env_kwargs", None) or {})
    obs_raw = np.asarray(dataset.observations, dtype=np.float64)
    actions_raw = np.asarray(dataset.actions, dtype=np.float64)
    if out_dir is not None:  # what a killed run may have left half-written
        remove_temporaries(out_dir)
        remove_temporaries(out_dir / CHECKPOINTS)
    fingerprint = _fingerprint(config, train_config, seed, obs_raw, actions_raw)

    device = check_device(train_config.device)  # checked above; resolves "auto"
    with _torch_threads(train_config.num_threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            policy = policy_class(
                obs_space,
                act_space,
                config,
                dataset.stats,
                seed=seed,
                env_id=env_id,
                layout=dataset.layout,
                env_kwargs=env_kwargs,
            )
        weights = sum(p.numel() * p.element_size() for p in policy.parameters())
        check_memory(  # gradients and AdamW's two moments, beside the weights built above
            3 * weights,
            f"training {policy_class.__name__} ({weights / 2**20:.0f} MiB of weights)",
            "choose a smaller model",
        )
        policy.to(device)
        policy.set_training_mode(True)
        generator = torch.Generator(device=device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        batches = _Batches(
            policy, obs_raw, actions_raw, config, train_config, generator, rng, device
        )
        plan = phases(policy)
        last = plan[-1]
        optimizer = _adamw(last.parameters, train_config)  # (takes no random numbers)

        loop, finished = LoopState(), []
        if resume:
            assert out_dir is not None
            trainer = (policy, optimizer, generator, rng, batches)
            loop, finished = _resume(out_dir / CHECKPOINTS, trainer, fingerprint, train_config)
        resumed_from = loop.step or None
        histories: dict[str, list[dict[str, float]]] = {}
        seconds: dict[str, float] = {}
        for index, phase in enumerate(plan[:-1]):
            if index < len(finished):  # done before the checkpoint resumed from
                histories[phase.record] = finished[index]["history"]
                seconds[phase.record] = finished[index]["seconds"]
            else:
                histories[phase.record], seconds[phase.record] = _optimize(
                    _adamw(phase.parameters, train_config),
                    _step_loss(phase, batches, generator),
                    train_config,
                    phase.steps or train_config.steps,
                    desc=phase.name,
                    progress=progress,
                    after_step=phase.after_step,
                    tensorboard_dir=tensorboard_dir,
                )
            if phase.freeze:
                for parameter in phase.parameters:
                    parameter.requires_grad_(False)
        done = [{"history": histories[p.record], "seconds": seconds[p.record]} for p in plan[:-1]]

        def checkpoint(step: int) -> None:
            # a checkpoint is only ever of finite weights (a NaN gradient makes NaN weights
            # one step before the loss shows it)
            _check_finite_weights(policy, step, optimizer.param_groups[0]["lr"])
            if out_dir is not None:
                path = out_dir / CHECKPOINTS / f"step_{step:07d}"
                trainer = (policy, optimizer, generator, rng, batches)
                _save_checkpoint(path, trainer, loop, fingerprint, done)
            if on_checkpoint is not None:
                policy.set_training_mode(False)
                with torch.random.fork_rng(devices=[]):  # the hook's draws stay its own
                    on_checkpoint(step, policy)
                policy.set_training_mode(True)

        histories[last.record], seconds[last.record] = _optimize(
            optimizer,
            _step_loss(last, batches, generator),
            train_config,
            last.steps or train_config.steps,
            desc=last.name,
            progress=progress,
            after_step=last.after_step,
            checkpoint=checkpoint,
            tensorboard_dir=tensorboard_dir,
            state=loop,
        )

    _check_finite_weights(policy, loop.step, train_config.lr)  # no NaN policy is returned
    policy.set_training_mode(False)
    policy.train_history = histories[last.record]
    policy.train_seconds = seconds[last.record]
    result = TrainResult(policy, histories, seconds, batches.n_total, resumed_from)
    if out_dir is not None:
        save_policy(policy, out_dir)
        record = _training_record(dataset, config, train_config, seed, plan, result)
        atomic_write_json(out_dir / TRAINING_LOG, record)
    return result


def _adamw(parameters: Any, train_config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with ``train_config``'s learning rate, betas and weight decay."""
    return torch.optim.AdamW(
        parameters,
        lr=train_config.lr,
        betas=train_config.betas,
        weight_decay=train_config.weight_decay,
    )


def _step_loss(
    phase: Phase, batches: _Batches, generator: torch.Generator
) -> Callable[[], tuple[torch.Tensor, dict[str, float]]]:
    """The phase's loss of the next batch, as :func:`_optimize` calls it."""

    def step_loss() -> tuple[torch.Tensor, dict[str, float]]:
        obs, action = batches.next()
        return phase.loss(obs, action, generator)

    return step_loss


def train(
    dataset: ChunkData,
    config: DDPMPolicyConfig,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | Path | None = None,
    resume: bool = False,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> DDPMChunkingPolicy:
    """Train a DDPM chunking policy on ``dataset`` (its denoising loss and EMA, by :func:`fit`).

    Args:
        dataset: a :class:`hint_envs.data.chunks.ChunkDataset` built with
            ``obs_horizon=config.obs_horizon``, ``horizon=config.horizon`` and
            ``gains=config.gains``, carrying the env's bounds (a file written by hint_envs
            does; see ``docs/data.md``).
        config: the policy configuration (``sigma`` and ``n_aug`` set the data noising).
        train_config: optimisation settings (defaults: :class:`TrainConfig`).
        out_dir: if given, the final policy is saved there (``config.json``,
            ``model.safetensors``), checkpoints every ``train_config.checkpoint_every``
            steps under ``out_dir/checkpoints/step_XXXXXXX/``, and ``training.json`` with
            the configs, seed and loss history.
        seed: seed of everything random in training (and of the policy's sampler).
        progress: show a tqdm bar.
        tensorboard_dir: if given, TensorBoard scalars ``train/loss`` and ``train/lr``
            every ``train_config.log_every`` steps go there (needs ``tensorboard``).
        resume: continue from the latest readable checkpoint under
            ``out_dir/checkpoints`` (from scratch, logging so, if there is none). Each
            checkpoint holds the weights, EMA weights, AdamW moments, learning-rate
            schedule, random generators and batch order, so with the same settings, data
            and thread count the resumed run gives bit-identical weights to one never
            interrupted. A checkpoint written with other settings or data raises
            :class:`CheckpointMismatchError` (only ``checkpoint_every``, ``num_threads``
            and ``device`` may change).
        on_checkpoint: ``on_checkpoint(step, policy)`` at every checkpoint step (see
            :func:`fit`).

    Returns:
        the trained policy in eval mode; ``policy.train_history`` is the loss history, a
        list of ``{"step", "loss", "lr"}`` (mean loss over each ``log_every`` steps), and
        ``policy.train_seconds`` the seconds the gradient loop took.

    Raises:
        DatasetError: a dataset without the env's bounds; the message names the fix
            (``hint-data add-bounds FILE``).
    """

    def objective(policy: DDPMChunkingPolicy) -> list[Phase]:
        def loss(obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator):
            return policy.normalized_loss(obs, action, generator), {}

        parameters = list(policy.denoiser.parameters())
        return [Phase("train", parameters, loss, after_step=policy.update_ema)]

    result = fit(
        DDPMChunkingPolicy,
        objective,
        dataset,
        config,
        train_config,
        out_dir=out_dir,
        seed=seed,
        progress=progress,
        tensorboard_dir=tensorboard_dir,
        resume=resume,
        on_checkpoint=on_checkpoint,
    )
    history, M = result.histories["train"], len(dataset.observations)
    logger.info(
        "trained %d steps in %.1f s on %d samples (%d windows x %d copies); final loss %.4f",
        history[-1]["step"],
        result.seconds["train"],
        result.num_samples,
        M,
        result.num_samples // M,
        history[-1]["loss"],
    )
    return result.policy


# ----------------------------------------------------------------------------- checkpoints
def _fingerprint(
    config: Any,
    train_config: TrainConfig,
    seed: int,
    observations: np.ndarray,
    actions: np.ndarray,
) -> dict[str, Any]:
    """What a checkpoint must share with the run resuming from it."""
    digest = hashlib.sha256()
    for array in (observations, actions):
        digest.update(np.ascontiguousarray(array).tobytes())
    settings = train_config.to_dict()
    for name in RESUMABLE_CHANGES:
        settings.pop(name)
    return {
        "policy_config": config.to_dict(),
        "train_config": settings,
        "seed": seed,
        "data_sha256": digest.hexdigest(),
    }


def latest_checkpoints(folder: str | Path) -> list[Path]:
    """The ``step_XXXXXXX`` checkpoint folders in ``folder``, latest first."""
    found = []
    for path in Path(folder).glob("step_*"):
        suffix = path.name.removeprefix("step_")
        if path.is_dir() and suffix.isdigit():
            found.append((int(suffix), path))
    return [path for _, path in sorted(found, reverse=True)]


def _save_checkpoint(
    path: Path,
    trainer: tuple,
    loop: LoopState,
    fingerprint: dict[str, Any],
    finished: list[dict[str, Any]],
) -> None:
    """The policy and everything needed to continue training it, as one folder.

    ``finished`` holds the ``{"history", "seconds"}`` of the phases before the last
    (whose weights are in the policy's), so a resumed run skips them.

    Written into a hidden temporary folder renamed to ``path`` when complete
    (:func:`hint_envs._io.atomic_dir`): a checkpoint folder is never partial.
    """
    policy, optimizer, generator, rng, batches = trainer
    permutation, cursor = batches.get_state()
    tensors = {"generator": generator.get_state(), "permutation": permutation.cpu()}
    for index, values in optimizer.state_dict()["state"].items():
        for key, value in values.items():
            tensors[f"optimizer.{index}.{key}"] = value.detach().cpu().contiguous()
    state = {
        "format": STATE_FORMAT,
        "loop": loop.to_dict(),
        "numpy_rng": rng.bit_generator.state,
        "cursor": cursor,
        "finished_phases": finished,
        **fingerprint,
    }
    with atomic_dir(path) as tmp:
        save_policy(policy, tmp)
        (tmp / STATE_TENSORS).write_bytes(save_safetensors(tensors))
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1, allow_nan=False) + "\n")


def _load_checkpoint(
    path: Path, trainer: tuple, fingerprint: dict[str, Any]
) -> tuple[LoopState, list[dict[str, Any]]]:
    """Restore ``trainer`` to the checkpoint at ``path``; returns its loop state and the
    finished phases' ``{"history", "seconds"}``."""
    policy, optimizer, generator, rng, batches = trainer
    state = json.loads((path / STATE_FILE).read_text())
    if not isinstance(state, dict) or state.get("format") not in (
        STATE_FORMAT,
        *_LEGACY_STATE_FORMATS,
    ):
        raise ValueError(f"{path / STATE_FILE} is not a training state ({STATE_FORMAT})")
    differ = []
    for key, value in fingerprint.items():
        saved = state.get(key)
        if key == "data_sha256" and saved != value:
            differ.append("other demonstrations")
        elif isinstance(value, dict) and isinstance(saved, dict):
            differ += [
                f"{name}={saved.get(name)!r} (now {value.get(name)!r})"
                for name in sorted(set(value) | set(saved))
                if saved.get(name) != value.get(name)
            ]
        elif saved != value:
            differ.append(f"{key}={saved!r} (now {value!r})")
    if differ:
        raise CheckpointMismatchError(
            f"the checkpoint {path} was written with {', '.join(differ)}; resume with the "
            f"settings and demonstrations it was trained with (only "
            f"{', '.join(RESUMABLE_CHANGES)} may change), or train into another --out"
        )
    policy_saved = load_policy(path)  # checks the weights against their SHA-256
    tensors = load_safetensors((path / STATE_TENSORS).read_bytes())
    optimizer_state = optimizer.state_dict()
    optimizer_state["state"] = {}
    for name, tensor in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            optimizer_state["state"].setdefault(int(index), {})[key] = tensor
    loop = LoopState.from_dict(state["loop"])
    finished = list(state.get("finished_phases", []))
    generator_state, permutation = tensors["generator"], tensors["permutation"]
    numpy_state, cursor = state["numpy_rng"], state["cursor"]
    # everything read: only now change the trainer (a failed read leaves it as it was)
    policy.load_state_dict(policy_saved.state_dict())
    optimizer.load_state_dict(optimizer_state)
    generator.set_state(generator_state)
    rng.bit_generator.state = numpy_state
    batches.set_state(permutation, cursor)
    return loop, finished


def _resume(
    folder: Path, trainer: tuple, fingerprint: dict[str, Any], train_config: TrainConfig
) -> tuple[LoopState, list[dict[str, Any]]]:
    """Load the latest readable checkpoint in ``folder`` into ``trainer``.

    Unreadable checkpoints are skipped with a warning (the next older one is tried);
    one written with other settings raises :class:`CheckpointMismatchError`.

    Returns:
        its loop state and finished phases, or a fresh state (step 0) and none if there is
        no readable checkpoint.
    """
    steps = train_config.steps
    for path in latest_checkpoints(folder):
        try:
            loop, finished = _load_checkpoint(path, trainer, fingerprint)
        except CheckpointMismatchError:
            raise
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
            logger.warning("skipping unreadable checkpoint %s (%s)", path, error)
            continue
        logger.info("resuming from %s: step %d of %d", path, loop.step, steps)
        return loop, finished
    logger.info("no checkpoint in %s yet; training from scratch", folder)
    return LoopState(), []


def _training_record(
    dataset: ChunkData,
    config: Any,
    train_config: TrainConfig,
    seed: int,
    phases: list[Phase],
    result: TrainResult,
) -> dict[str, Any]:
    """The ``training.json`` of a run: provenance, configurations, histories."""
    demos = getattr(dataset, "demos", None)
    record = {
        "hint_envs_version": hint_envs.__version__,
        "env_id": getattr(dataset, "env_id", None),
        "env_kwargs": dict(getattr(dataset, "env_kwargs", None) or {}),
        "seed": seed,
        "num_windows": int(len(dataset.observations)),
        "num_demos": len(demos) if demos is not None else None,
        "policy_config": config.to_dict(),
        "train_config": train_config.to_dict(),
        "seconds": result.seconds[phases[-1].record],
        "history": result.histories[phases[-1].record],
    }
    for phase in phases[:-1]:
        record[f"{phase.record}_history"] = result.histories[phase.record]
        record[f"{phase.record}_seconds"] = result.seconds[phase.record]
    record["resumed_from_step"] = result.resumed_from_step
    return record
