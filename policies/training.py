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

import logging
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from diffusers.optimization import get_cosine_schedule_with_warmup
from tqdm.auto import tqdm

import hint_envs
from hint_envs.core import CompositeActionLayout
from hint_envs.data.normalization import NormalizationStats
from hint_envs.wrappers.replica_noise import add_replica_noise
from policies.config import DDPMPolicyConfig, TrainConfig
from policies.ddpm import DDPMChunkingPolicy
from policies.logging_tb import TensorBoardWriter
from policies.serialization import atomic_write_json, save_policy

__all__ = ["train", "chunk_env_spaces", "noised_observations"]

logger = logging.getLogger(__name__)

#: File in ``out_dir`` with the training configuration and the loss history.
TRAINING_LOG = "training.json"


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

    Returns:
        the history, a list of ``{"step", "loss", "lr", **extras}``, and the seconds taken.
    """
    board = None
    if tensorboard_dir is not None:  # tags like train/loss, diffusion_bc/policy/loss
        board = TensorBoardWriter(tensorboard_dir, desc.replace(": ", "/").replace(" ", "_"))
    lr_schedule = get_cosine_schedule_with_warmup(optimizer, train_config.warmup_steps, steps)
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    history: list[dict[str, float]] = []
    running: dict[str, float] = {}
    count = 0
    start = time.perf_counter()
    bar = tqdm(range(1, steps + 1), desc=desc, disable=not progress)
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

        for key, value in (("loss", loss.item()), *extras.items()):
            running[key] = running.get(key, 0.0) + value
        count += 1
        if step % train_config.log_every == 0 or step == steps:
            entry = {"step": step, "loss": running.pop("loss") / count}
            entry["lr"] = lr_schedule.get_last_lr()[0]
            entry.update({key: total / count for key, total in running.items()})
            history.append(entry)
            if board is not None:
                board.scalars(step, entry)
            bar.set_postfix(loss=f"{entry['loss']:.4f}")
            running, count = {}, 0
        if (
            checkpoint is not None
            and train_config.checkpoint_every
            and step % train_config.checkpoint_every == 0
            and step != steps
        ):
            checkpoint(step)
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

    device = torch.device(train_config.device)
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

        def step_loss() -> tuple[torch.Tensor, dict[str, float]]:
            return policy.normalized_loss(*batches.next(), generator), {}

        def checkpoint(step: int) -> None:
            if out_dir is not None:
                save_policy(policy, out_dir / "checkpoints" / f"step_{step:07d}")

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
        save_policy(policy, out_dir)
        atomic_write_json(
            out_dir / TRAINING_LOG,
            _training_record(dataset, config, train_config, seed, history, elapsed),
        )
    return policy


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
