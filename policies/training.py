"""Train a :class:`~policies.ddpm.DDPMChunkingPolicy` on a chunk dataset (HINT step 4).

Data noising follows Algorithm 1 of the HINT paper (Block et al., 2023): every training
observation chunk ``o`` is replaced by ``n_aug`` noised copies
``o + sigma * scale * eps`` drawn once before training with
:func:`hint_envs.wrappers.replica_noise.add_replica_noise` — the very function the
test-time ``ReplicaNoiseWrapper`` calls — with ``scale = stats.obs.noise_scale``, so sigma
is in normalised units. Each copy is paired with the chunk's clean composite action. With
``TrainConfig.resample_noise`` the noise is drawn afresh for every batch instead.

Optimisation: AdamW, linear warm-up then cosine decay of the learning rate, gradient-norm
clipping, an EMA of the weights after every step (the EMA weights are what the policy
samples with). Everything random comes from the seed: weights are initialised under
``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the global generator is
restored afterwards), batches, diffusion steps and diffusion noise from a local
``torch.Generator``, data noise from a ``numpy.random.Generator``; with the same seed,
data, configs and thread count, two runs give bit-identical weights.

The batching (:class:`_Batches`) and the gradient loop (:func:`_optimize`) are shared with
the baselines' trainers in :mod:`policies.baselines`.
"""

from __future__ import annotations

import hashlib
import json
import logging
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
from tqdm.auto import tqdm

import hint_envs
from hint_envs._io import atomic_dir, remove_temporaries
from hint_envs.core import CompositeActionLayout
from hint_envs.data.normalization import NormalizationStats
from hint_envs.wrappers.replica_noise import add_replica_noise
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.ddpm import DDPMChunkingPolicy
from policies.devices import check_device
from policies.logging_tb import TensorBoardWriter
from policies.serialization import atomic_write_json, load_policy, save_policy

__all__ = [
    "train",
    "chunk_env_spaces",
    "noised_observations",
    "latest_checkpoints",
    "CheckpointMismatchError",
]

logger = logging.getLogger(__name__)

#: File in ``out_dir`` with the training configuration and the loss history.
TRAINING_LOG = "training.json"
#: Folder in ``out_dir`` with one ``step_XXXXXXX`` folder per checkpoint.
CHECKPOINTS = "checkpoints"
#: Files of a checkpoint beside its saved policy: what continuing the training needs.
STATE_FILE = "training_state.json"
STATE_TENSORS = "training_state.safetensors"
STATE_FORMAT = "hint_envs.policies.TrainingState/1"
#: Train settings a resumed run may change: they do not change the schedule.
RESUMABLE_CHANGES = ("checkpoint_every", "num_threads", "device")


class CheckpointMismatchError(ValueError):
    """A checkpoint was written by a training run with other settings or data."""


class ChunkData(Protocol):
    """What :func:`train` reads from a :class:`hint_envs.data.chunks.ChunkDataset`."""

    observations: np.ndarray  # (M, obs_horizon, d_obs)
    actions: np.ndarray  # (M, horizon, controller_size)
    layout: CompositeActionLayout
    stats: NormalizationStats
    env_id: str | None
    env_kwargs: dict[str, Any]


class ChunkConfig(Protocol):
    """The chunking settings every policy configuration has (DDPM and baselines)."""

    obs_horizon: int
    horizon: int
    chunk_length: int
    gains: bool


def chunk_env_spaces(
    env_id: str | None,
    config: ChunkConfig,
    d_obs: int,
    controller_size: int,
    env_kwargs: dict[str, Any] | None = None,
) -> tuple[gym.spaces.Box, gym.spaces.Box]:
    """The observation and action spaces of the chunk-level env the policy will act in.

    Built from ``PrimitiveControllerWrapper(gym.make(env_id, **env_kwargs), ...)`` (the
    kwargs the demonstration file recorded) so the bounds (and the
    clipping of sampled actions) are exactly the env's. Without an env id, or if the env
    cannot be made here, unbounded Boxes of the right shapes.
    """
    if env_id is not None:
        try:
            from hint_envs.wrappers import PrimitiveControllerWrapper

            env = PrimitiveControllerWrapper(
                gym.make(env_id, **(env_kwargs or {})),
                chunk_length=config.chunk_length,
                obs_horizon=config.obs_horizon,
                gains=config.gains,
            )
            spaces = (env.observation_space, env.action_space)
            env.close()
            return spaces
        except (gym.error.Error, ImportError, TypeError) as error:
            logger.warning("cannot make %s (%s); using unbounded spaces", env_id, error)
    obs = gym.spaces.Box(-np.inf, np.inf, (config.obs_horizon, d_obs), np.float64)
    act = gym.spaces.Box(-np.inf, np.inf, (config.chunk_length * controller_size,), np.float64)
    return obs, act


def noised_observations(
    observations: np.ndarray,
    sigma: float,
    n_aug: int,
    scale: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Algorithm 1's augmented observations: ``n_aug`` noised copies of every chunk.

    Args:
        observations: ``(M, T_obs, D_obs)`` raw chunks.
        sigma: noise level in normalised units.
        n_aug: copies per chunk (1 copy, un-noised, when ``sigma == 0``).
        scale: ``(D_obs,)`` raw units per normalised unit.
        rng: the generator the noise is drawn from.

    Returns:
        ``(n_aug * M, T_obs, D_obs)`` float64; row ``j * M + i`` is copy ``j`` of chunk ``i``.
    """
    observations = np.asarray(observations, dtype=np.float64)
    if sigma == 0:
        return observations.copy()
    copies = np.broadcast_to(observations, (n_aug,) + observations.shape)
    noised = add_replica_noise(copies, sigma, scale, rng)
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
        self.obs_raw, self.sigma = obs_raw, config.sigma
        self.scale = policy.stats.obs.noise_scale
        self.num_windows = len(obs_raw)
        with torch.no_grad():
            self.actions = policy.normalize_action(torch.from_numpy(actions_raw).to(device))
            self.observations: torch.Tensor | None
            if train_config.resample_noise and config.sigma > 0:
                self.observations = None
                self.n_total = self.num_windows
            else:
                noised = noised_observations(obs_raw, config.sigma, config.n_aug, self.scale, rng)
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
                self.obs_raw[index.cpu().numpy()], self.sigma, self.scale, self.rng
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
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(parameters, train_config.grad_clip)
            optimizer.step()
            lr_schedule.step()
            if after_step is not None:
                after_step()

            running = state.running
            for key, value in (("loss", loss.item()), *extras.items()):
                running[key] = running.get(key, 0.0) + value
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


def train(
    dataset: ChunkData,
    config: DDPMPolicyConfig,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | Path | None = None,
    resume: bool = False,
) -> DDPMChunkingPolicy:
    """Train a DDPM chunking policy on ``dataset``.

    Args:
        dataset: a :class:`hint_envs.data.chunks.ChunkDataset` built with
            ``obs_horizon=config.obs_horizon``, ``horizon=config.horizon`` and
            ``gains=config.gains``.
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

    Returns:
        the trained policy in eval mode; ``policy.train_history`` is the loss history, a
        list of ``{"step", "loss", "lr"}`` (mean loss over each ``log_every`` steps), and
        ``policy.train_seconds`` the seconds the gradient loop took.
    """
    train_config = train_config if train_config is not None else TrainConfig()
    if not isinstance(config, DDPMPolicyConfig):
        raise TypeError(f"config must be a DDPMPolicyConfig, got {type(config).__name__}")
    if not isinstance(train_config, TrainConfig):
        raise TypeError(f"train_config must be a TrainConfig, got {type(train_config).__name__}")
    check_device(train_config.device)  # before any work: a clear error, not torch's
    _check_dataset(dataset, config)
    stats = dataset.stats
    env_id = getattr(dataset, "env_id", None)
    env_kwargs = dict(getattr(dataset, "env_kwargs", None) or {})
    obs_raw = np.asarray(dataset.observations, dtype=np.float64)
    actions_raw = np.asarray(dataset.actions, dtype=np.float64)
    M = len(obs_raw)
    obs_space, act_space = chunk_env_spaces(
        env_id, config, stats.obs.dim, stats.action.dim, env_kwargs
    )
    out_dir = Path(out_dir) if out_dir is not None else None
    if resume and out_dir is None:
        raise ValueError("resume=True needs the out_dir whose checkpoints it continues from")
    if out_dir is not None:  # what a killed run may have left half-written
        remove_temporaries(out_dir)
        remove_temporaries(out_dir / CHECKPOINTS)
    fingerprint = _fingerprint(config, train_config, seed, obs_raw, actions_raw)

    device = check_device(train_config.device)  # checked above; resolves "auto"
    with _torch_threads(train_config.num_threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            policy = DDPMChunkingPolicy(
                obs_space,
                act_space,
                config,
                stats,
                seed=seed,
                env_id=env_id,
                layout=dataset.layout,
                env_kwargs=env_kwargs,
            )
        policy.to(device)
        policy.set_training_mode(True)
        generator = torch.Generator(device=device).manual_seed(seed)
        rng = np.random.default_rng(seed)
        batches = _Batches(
            policy, obs_raw, actions_raw, config, train_config, generator, rng, device
        )
        optimizer = torch.optim.AdamW(
            policy.denoiser.parameters(),
            lr=train_config.lr,
            betas=train_config.betas,
            weight_decay=train_config.weight_decay,
        )

        loop = LoopState()
        if resume:
            assert out_dir is not None
            trainer = (policy, optimizer, generator, rng, batches)
            loop = _resume(out_dir / CHECKPOINTS, trainer, fingerprint, train_config.steps)
        resumed_from = loop.step or None

        def step_loss() -> tuple[torch.Tensor, dict[str, float]]:
            return policy.normalized_loss(*batches.next(), generator), {}

        def checkpoint(step: int) -> None:
            if out_dir is not None:
                path = out_dir / CHECKPOINTS / f"step_{step:07d}"
                trainer = (policy, optimizer, generator, rng, batches)
                _save_checkpoint(path, trainer, loop, fingerprint)

        history, elapsed = _optimize(
            optimizer,
            step_loss,
            train_config,
            train_config.steps,
            desc="train",
            progress=progress,
            after_step=policy.update_ema,
            checkpoint=checkpoint,
            tensorboard_dir=tensorboard_dir,
            state=loop,
        )
        n_total = batches.n_total

    policy.set_training_mode(False)
    policy.train_history = history
    policy.train_seconds = elapsed
    logger.info(
        "trained %d steps in %.1f s on %d samples (%d windows x %d copies); final loss %.4f",
        train_config.steps,
        elapsed,
        n_total,
        M,
        n_total // M,
        history[-1]["loss"],
    )
    if out_dir is not None:
        _save_trained(
            policy,
            out_dir,
            dataset,
            config,
            train_config,
            seed,
            history,
            elapsed,
            resumed_from_step=resumed_from,
        )
    return policy


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
    path: Path, trainer: tuple, loop: LoopState, fingerprint: dict[str, Any]
) -> None:
    """The policy and everything needed to continue training it, as one folder.

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
        **fingerprint,
    }
    with atomic_dir(path) as tmp:
        save_policy(policy, tmp)
        (tmp / STATE_TENSORS).write_bytes(save_safetensors(tensors))
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1, allow_nan=False) + "\n")


def _load_checkpoint(path: Path, trainer: tuple, fingerprint: dict[str, Any]) -> LoopState:
    """Restore ``trainer`` to the checkpoint at ``path``; returns its loop state."""
    policy, optimizer, generator, rng, batches = trainer
    state = json.loads((path / STATE_FILE).read_text())
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
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
    generator_state, permutation = tensors["generator"], tensors["permutation"]
    numpy_state, cursor = state["numpy_rng"], state["cursor"]
    # everything read: only now change the trainer (a failed read leaves it as it was)
    policy.load_state_dict(policy_saved.state_dict())
    optimizer.load_state_dict(optimizer_state)
    generator.set_state(generator_state)
    rng.bit_generator.state = numpy_state
    batches.set_state(permutation, cursor)
    return loop


def _resume(folder: Path, trainer: tuple, fingerprint: dict[str, Any], steps: int) -> LoopState:
    """Load the latest readable checkpoint in ``folder`` into ``trainer``.

    Unreadable checkpoints are skipped with a warning (the next older one is tried);
    one written with other settings raises :class:`CheckpointMismatchError`.

    Returns:
        its loop state, or a fresh one (step 0) if there is no readable checkpoint.
    """
    for path in latest_checkpoints(folder):
        try:
            loop = _load_checkpoint(path, trainer, fingerprint)
        except CheckpointMismatchError:
            raise
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
            logger.warning("skipping unreadable checkpoint %s (%s)", path, error)
            continue
        logger.info("resuming from %s: step %d of %d", path, loop.step, steps)
        return loop
    logger.info("no checkpoint in %s yet; training from scratch", folder)
    return LoopState()


def _save_trained(
    policy: Any,
    out_dir: Path,
    dataset: ChunkData,
    config: Any,
    train_config: TrainConfig,
    seed: int,
    history: list[dict[str, float]],
    elapsed: float,
    **extra: Any,
) -> None:
    """Save the trained ``policy`` and its ``training.json`` record into ``out_dir``."""
    save_policy(policy, out_dir)
    record = _training_record(dataset, config, train_config, seed, history, elapsed, **extra)
    atomic_write_json(out_dir / TRAINING_LOG, record)


def _training_record(
    dataset: ChunkData,
    config: Any,
    train_config: TrainConfig,
    seed: int,
    history: list[dict[str, float]],
    elapsed: float,
    **extra: Any,
) -> dict[str, Any]:
    demos = getattr(dataset, "demos", None)
    return {
        "hint_envs_version": hint_envs.__version__,
        "env_id": getattr(dataset, "env_id", None),
        "env_kwargs": dict(getattr(dataset, "env_kwargs", None) or {}),
        "seed": seed,
        "num_windows": int(len(dataset.observations)),
        "num_demos": len(demos) if demos is not None else None,
        "policy_config": config.to_dict(),
        "train_config": train_config.to_dict(),
        "seconds": elapsed,
        "history": history,
        **extra,
    }
