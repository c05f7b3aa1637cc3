"""Baselines with the DDPM policy's API: MLP behaviour cloning and Diffusion-model-augmented BC.

Both are deterministic Stable-Baselines3 policies over the chunk-level environment of
``PrimitiveControllerWrapper``, like :class:`~policies.ddpm.DDPMChunkingPolicy`::

    observation: (B, T_obs, D_obs)       raw observation chunk (float32 or float64)
    -> normalised, flattened: (B, G)     G = T_obs * D_obs
    -> MLP -> chunk: (B, H, D_ctrl)      H = horizon controllers, normalised
    -> action: (B, T_chunk * D_ctrl)     the first T_chunk controllers, raw units, flat in
                                         the CompositeActionLayout of hint_envs.core

with ``T_obs = obs_horizon``, ``T_chunk = chunk_length`` and ``D_ctrl`` floats per
controller (``d_u + d_x + d_u d_x`` with gains, ``d_u`` without). The MLP predicts the
same ``horizon`` controllers the DDPM policy samples (so both train on the same
:class:`~hint_envs.data.chunks.ChunkDataset`), and the first ``chunk_length`` of them are
executed; ``horizon = chunk_length`` predicts exactly the executed ones.

:class:`MLPBCPolicy` is trained with the MSE between its chunk and the expert's (both
normalised): ``L_BC = mean((pi(o) - a) ** 2)``.

:class:`DiffusionBCPolicy` is DBC (Chen et al., 2024, arXiv 2302.13335). A diffusion
model ``eps_phi`` of the *joint* distribution of ``x = [o, a]`` (normalised observation
chunk and flattened controller chunk, ``D = G + H * D_ctrl`` floats) is trained first, by
epsilon prediction with the noise schedule of ``diffusers``' ``DDPMScheduler``::

    L_diff(o, a; t, eps) = mean_D((eps_phi(sqrt(abar_t) x + sqrt(1 - abar_t) eps, t) - eps) ** 2)

then frozen, and the policy is trained with ``L_BC + lambda * L_DM``, where for a batch of
expert pairs ``(o_i, a_i)`` with one diffusion step ``t_i`` and one noise ``eps_i`` per
pair, shared by both terms::

    L_DM = mean_i max(0, L_diff(o_i, pi(o_i); t_i, eps_i) - L_diff(o_i, a_i; t_i, eps_i))

the policy's denoising loss "normalised" by (minus) the expert's and clipped at zero: the
policy is pushed towards actions the diffusion model finds as likely as the expert's, and
not beyond. (The authors' code clips the batch means, ``max(0, mean_i(...) - mean_i(...))``;
the clipping here is per pair, as in the paper's equation.)
``DiffusionBCConfig(expert_normalization=False)`` uses ``L_DM = mean_i L_diff(o_i,
pi(o_i))``, the paper's ablation.

Replica noise is not added by the policies; like the DDPM policy they can be trained on
noised observations (``config.sigma``, Algorithm 1 of the HINT paper) and evaluated in
``ReplicaNoiseWrapper(env, sigma, scale=policy.noise_scale)``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hint_envs.core import CompositeActionLayout
from hint_envs.data.normalization import NormalizationStats
from policies._torch_utils import count_parameters
from policies.base import ChunkPolicyBase
from policies.config import DiffusionBCConfig, MLPBCConfig, TrainConfig
from policies.networks import JointMLPDenoiser
from policies.sampling import DiffusionSampler
from policies.training import ChunkData, Phase, fit

__all__ = [
    "DiffusionBCPolicy",
    "MLPBCPolicy",
    "build_mlp",
    "train_diffusion_bc",
    "train_mlp_bc",
]

logger = logging.getLogger(__name__)


def build_mlp(in_features: int, widths: tuple[int, ...], out_features: int) -> nn.Sequential:
    """``Linear -> Mish`` per entry of ``widths``, then a linear output layer.

    Shapes: ``(B, in_features) -> (B, out_features)``.
    """
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(in_features, width), nn.Mish()]
        in_features = width
    layers.append(nn.Linear(in_features, out_features))
    return nn.Sequential(*layers)


class MLPBCPolicy(ChunkPolicyBase):
    """Deterministic MLP behaviour cloning of composite actions, as an SB3 policy.

    ``predict(obs, state=None, episode_start=None, deterministic=False)`` (SB3's) maps an
    observation chunk ``(T_obs, D_obs)`` or a batch ``(B, T_obs, D_obs)`` (float32 or
    float64) to a composite action ``(T_chunk * D_ctrl,)`` or ``(B, T_chunk * D_ctrl)``,
    clipped to the action Box; see the module docstring for the shapes. The policy is
    deterministic: ``deterministic`` and :meth:`seed` change nothing.

    Args:
        observation_space: Box of shape ``(obs_horizon, d_obs)`` (the chunk-level env's).
        action_space: Box of shape ``(chunk_length * controller_size,)``.
        config: the policy configuration.
        stats: normalisation statistics of the training data.
        seed: accepted for the DDPM policy's signature; there is nothing to seed (weights
            are initialised from torch's global generator, which :func:`train_mlp_bc`
            seeds).
        env_id: id of the environment the policy was trained for (saved with it).
        env_kwargs: its ``gym.make`` keyword arguments (saved with it; ``evaluate`` uses
            them by default).
        layout: the composite-action layout, if known; checked against config and stats.

    Raises:
        TypeError: a config of another class, or stats that are not NormalizationStats.
        ValueError: spaces that do not match ``config`` and ``stats``.
    """

    config_class: ClassVar[type] = MLPBCConfig

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        config: MLPBCConfig,
        stats: NormalizationStats,
        seed: int = 0,
        env_id: str | None = None,
        layout: CompositeActionLayout | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            observation_space,
            action_space,
            config,
            stats,
            env_id=env_id,
            layout=layout,
            env_kwargs=env_kwargs,
        )
        self.obs_size = config.obs_horizon * self.d_obs
        self.mlp = build_mlp(self.obs_size, config.widths, config.horizon * self.controller_size)
        #: loss history of the trainer (not saved with the policy)
        self.train_history: list[dict[str, float]] = []
        self.seed(seed)
        logger.info(
            "%s: MLP %s with %d parameters",
            type(self).__name__,
            list(config.widths),
            count_parameters(self.mlp),
        )

    def seed(self, seed: int) -> None:
        """Accept a seed like the DDPM policy; a deterministic policy has nothing to reseed."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self._seed = int(seed)

    # ------------------------------------------------------------------ the policy
    def normalized_chunk(self, obs: torch.Tensor) -> torch.Tensor:
        """``(B, T_obs * D_obs)`` normalised observations -> ``(B, H, D_ctrl)`` normalised
        controller chunk (differentiable)."""
        return self.mlp(obs).view(obs.shape[0], self.config.horizon, self.controller_size)

    def action_chunk(self, observation: torch.Tensor | np.ndarray) -> torch.Tensor:
        """The predicted chunk of ``horizon`` controllers, in raw units.

        Args:
            observation: ``(B, T_obs, D_obs)`` (or one ``(T_obs, D_obs)``) raw chunks.

        Returns:
            ``(B, horizon, D_ctrl)`` float64, not clipped to the action Box.
        """
        obs = self._check_obs(torch.as_tensor(observation))
        with torch.inference_mode():
            return self.unnormalize_action(self.normalized_chunk(self.normalize_obs(obs)))

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """``(B, T_obs, D_obs)`` -> ``(B, T_chunk * D_ctrl)`` float64 composite actions."""
        chunk = self.action_chunk(observation)
        return chunk[:, : self.config.chunk_length].reshape(chunk.shape[0], -1)

    def forward(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Same as :meth:`_predict` (composite actions, not clipped)."""
        return self._predict(observation, deterministic)

    # ------------------------------------------------------------------ training
    def bc_loss(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Behaviour-cloning MSE on normalised data.

        Args:
            obs: ``(B, T_obs * D_obs)`` normalised flattened observation chunks.
            action: ``(B, H, D_ctrl)`` normalised expert controller chunks.

        Returns:
            scalar ``mean((pi(obs) - action) ** 2)``.
        """
        return F.mse_loss(self.normalized_chunk(obs), action)

    def loss(
        self, obs: torch.Tensor | np.ndarray, action: torch.Tensor | np.ndarray
    ) -> torch.Tensor:
        """:meth:`bc_loss` on raw data: ``obs (B, T_obs, D_obs)``, ``action (B, H, D_ctrl)``."""
        obs = self._check_obs(torch.as_tensor(obs))
        action = self._check_action_chunk(
            torch.as_tensor(action, device=self.device), self.config.horizon
        )
        return self.bc_loss(self.normalize_obs(obs), self.normalize_action(action))


class DiffusionBCPolicy(MLPBCPolicy):
    """Diffusion-model-augmented behaviour cloning (DBC, arXiv 2302.13335), as an SB3 policy.

    Acts exactly like :class:`MLPBCPolicy` (the same MLP, ``predict`` and shapes); it also
    holds the diffusion model ``eps_phi`` of the joint ``[observation chunk, controller
    chunk]`` distribution that its training loss uses (saved with it). See the module
    docstring for the losses.

    Args: as :class:`MLPBCPolicy`, with a :class:`~policies.config.DiffusionBCConfig`.

    Attributes:
        diffusion: the :class:`~policies.networks.JointMLPDenoiser`, ``(B, D), (B,) ->
            (B, D)`` with ``D = joint_dim``.
        joint_dim: ``obs_horizon * d_obs + horizon * controller_size``.
        schedule: forward noising with ``diffusers``' DDPM schedule
            (:class:`~policies.sampling.DiffusionSampler`).
        diffusion_history: loss history of the diffusion model's training.
    """

    config_class: ClassVar[type] = DiffusionBCConfig

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        config: DiffusionBCConfig,
        stats: NormalizationStats,
        seed: int = 0,
        env_id: str | None = None,
        layout: CompositeActionLayout | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            observation_space,
            action_space,
            config,
            stats,
            seed=seed,
            env_id=env_id,
            layout=layout,
            env_kwargs=env_kwargs,
        )
        self.joint_dim = self.obs_size + config.horizon * self.controller_size
        self.diffusion = JointMLPDenoiser(
            self.joint_dim, config.diffusion_widths, config.step_embed_dim
        )
        self.schedule = DiffusionSampler(
            "ddpm",
            config.diffusion_steps,
            config.diffusion_steps,
            config.beta_schedule,
            clip_sample=False,
        )
        #: loss history of the diffusion model's training (not saved with the policy)
        self.diffusion_history: list[dict[str, float]] = []
        logger.info(
            "DiffusionBCPolicy: joint diffusion model over %d floats with %d parameters",
            self.joint_dim,
            count_parameters(self.diffusion),
        )

    def joint(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """``obs (B, G)`` and ``action (B, H, D_ctrl)`` (normalised) -> ``(B, D)``."""
        return torch.cat([obs, action.flatten(1)], dim=-1)

    def draw_diffusion_noise(
        self, batch: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One diffusion step and one noise per pair: ``t (B,)`` long, ``eps (B, D)``."""
        device = generator.device
        t = torch.randint(
            0, self.config.diffusion_steps, (batch,), generator=generator, device=device
        )
        noise = torch.randn((batch, self.joint_dim), generator=generator, device=device)
        return t, noise

    def denoising_losses(
        self, obs: torch.Tensor, action: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """``L_diff`` of every pair: the diffusion model's epsilon-prediction error.

        Args:
            obs: ``(B, G)`` normalised flattened observation chunks.
            action: ``(B, H, D_ctrl)`` normalised controller chunks.
            t: ``(B,)`` diffusion steps.
            noise: ``(B, D)`` the noise added to the joint vectors.

        Returns:
            ``(B,)`` ``mean_D((eps_phi(x_t, t) - noise) ** 2)`` (differentiable w.r.t.
            ``action`` and the diffusion model).
        """
        noisy = self.schedule.add_noise(self.joint(obs, action), noise, t)
        return (self.diffusion(noisy, t) - noise).square().mean(dim=-1)

    def diffusion_loss(
        self, obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The diffusion model's training loss on expert pairs (normalised), a scalar; the
        steps and noise are drawn from ``generator``."""
        t, noise = self.draw_diffusion_noise(obs.shape[0], generator)
        return self.denoising_losses(obs, action, t, noise).mean()

    def dm_loss(
        self,
        obs: torch.Tensor,
        policy_action: torch.Tensor,
        expert_action: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """DBC's diffusion-model loss ``L_DM`` (see the module docstring).

        Both denoising losses use the same ``t`` and ``noise`` (and the diffusion model
        computes the same numbers with and without gradients), so ``policy_action ==
        expert_action`` gives exactly 0; the expert's term is computed without gradients.

        Args:
            obs: ``(B, G)`` normalised flattened observation chunks.
            policy_action: ``(B, H, D_ctrl)`` the policy's normalised chunks (gradients
                flow into them).
            expert_action: ``(B, H, D_ctrl)`` the expert's normalised chunks (constant).
            t: ``(B,)`` diffusion steps; noise: ``(B, D)``.

        Returns:
            the scalar ``mean_i max(0, L_diff(o_i, pi_i) - L_diff(o_i, a_i))``, or
            ``mean_i L_diff(o_i, pi_i)`` without ``config.expert_normalization``.
        """
        agent = self.denoising_losses(obs, policy_action, t, noise)
        if not self.config.expert_normalization:
            return agent.mean()
        with torch.no_grad():
            expert = self.denoising_losses(obs, expert_action, t, noise)
        return torch.clamp(agent - expert, min=0.0).mean()

    def dbc_loss(
        self, obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The policy's training loss on a batch of normalised expert pairs.

        Args:
            obs: ``(B, G)``; action: ``(B, H, D_ctrl)`` expert chunks.
            generator: source of the diffusion steps and noise of ``L_DM``.

        Returns:
            ``(L_BC + dm_weight * L_DM, L_BC, L_DM)``, scalars.
        """
        predicted = self.normalized_chunk(obs)
        bc = F.mse_loss(predicted, action)
        t, noise = self.draw_diffusion_noise(obs.shape[0], generator)
        dm = self.dm_loss(obs, predicted, action, t, noise)
        return bc + self.config.dm_weight * dm, bc, dm


# ---------------------------------------------------------------------- training
def train_mlp_bc(
    dataset: ChunkData,
    config: MLPBCConfig,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | Path | None = None,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> MLPBCPolicy:
    """Train an :class:`MLPBCPolicy` on ``dataset`` with the BC MSE.

    Args:
        dataset: a :class:`hint_envs.data.chunks.ChunkDataset` built with
            ``obs_horizon=config.obs_horizon``, ``horizon=config.horizon`` and
            ``gains=config.gains``.
        config: the policy configuration (``sigma`` and ``n_aug`` set the data noising).
        train_config: optimisation settings (AdamW, warm-up + cosine LR, gradient clipping,
            as for the DDPM policy; defaults: :class:`TrainConfig`).
        out_dir: if given, the final policy is saved there (``config.json``,
            ``model.safetensors``), checkpoints every ``train_config.checkpoint_every``
            steps under ``out_dir/checkpoints/step_XXXXXXX/``, and ``training.json`` with
            the configs, seed and loss history.
        seed: seed of everything random in training; same seed, data, configs and thread
            count give bit-identical weights on CPU.
        progress: show a tqdm bar.
        tensorboard_dir: if given, TensorBoard scalars of the loss and learning rate go
            there (needs ``tensorboard``).
        on_checkpoint: ``on_checkpoint(step, policy)`` at every checkpoint step
            (:func:`policies.training.fit`).

    Returns:
        the trained policy in eval mode; ``policy.train_history`` is a list of
        ``{"step", "loss", "lr"}`` (mean loss over each ``log_every`` steps).
    """

    def objective(policy: MLPBCPolicy) -> list[Phase]:
        def loss(obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator):
            return policy.bc_loss(obs, action), {}

        return [Phase("mlp_bc", list(policy.mlp.parameters()), loss)]

    result = fit(
        MLPBCPolicy,
        objective,
        dataset,
        config,
        train_config,
        out_dir=out_dir,
        seed=seed,
        progress=progress,
        tensorboard_dir=tensorboard_dir,
        on_checkpoint=on_checkpoint,
    )
    history = result.histories["train"]
    logger.info(
        "MLP BC: %d steps in %.1f s on %d samples; final loss %.5f",
        history[-1]["step"],
        result.seconds["train"],
        result.num_samples,
        history[-1]["loss"],
    )
    return result.policy


def train_diffusion_bc(
    dataset: ChunkData,
    config: DiffusionBCConfig,
    train_config: TrainConfig | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    tensorboard_dir: str | Path | None = None,
    on_checkpoint: Callable[[int, Any], None] | None = None,
) -> DiffusionBCPolicy:
    """Train a :class:`DiffusionBCPolicy`: the diffusion model first, then the policy.

    1. ``config.diffusion_train_steps`` (default ``train_config.steps``) steps of the
       diffusion model's epsilon-prediction loss on expert (observation chunk, controller
       chunk) pairs, with its own AdamW and learning-rate schedule;
    2. the diffusion model is frozen, and ``train_config.steps`` steps of the policy's
       ``L_BC + config.dm_weight * L_DM``.

    Both phases draw batches from the same data (noised as ``config.sigma`` says) and
    share one generator, so the run is bit-reproducible on CPU for a seed.

    Args: as :func:`train_mlp_bc`; checkpoints are taken during the policy phase.

    Returns:
        the trained policy in eval mode; ``policy.train_history`` is the policy phase's
        ``{"step", "loss", "lr", "bc_loss", "dm_loss"}`` list (``loss`` the weighted
        sum), ``policy.diffusion_history`` the diffusion phase's ``{"step", "loss",
        "lr"}``; ``training.json`` holds both.
    """

    def objectives(policy: DiffusionBCPolicy) -> list[Phase]:
        def diffusion_loss(obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator):
            return policy.diffusion_loss(obs, action, generator), {}

        def policy_loss(obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator):
            total, bc, dm = policy.dbc_loss(obs, action, generator)
            return total, {"bc_loss": bc.item(), "dm_loss": dm.item()}

        return [
            Phase(
                "diffusion_bc: diffusion model",
                list(policy.diffusion.parameters()),
                diffusion_loss,
                steps=config.diffusion_train_steps,
                freeze=True,
                record="diffusion",
            ),
            Phase("diffusion_bc: policy", list(policy.mlp.parameters()), policy_loss),
        ]

    result = fit(
        DiffusionBCPolicy,
        objectives,
        dataset,
        config,
        train_config,
        out_dir=out_dir,
        seed=seed,
        progress=progress,
        tensorboard_dir=tensorboard_dir,
        on_checkpoint=on_checkpoint,
    )
    policy, history = result.policy, result.histories["train"]
    policy.diffusion_history = diffusion_history = result.histories["diffusion"]
    logger.info(
        "Diffusion BC: diffusion model %d steps in %.1f s (final loss %.4f), policy %d steps "
        "in %.1f s (final BC loss %.5f, L_DM %.5f)",
        diffusion_history[-1]["step"],
        result.seconds["diffusion"],
        diffusion_history[-1]["loss"],
        history[-1]["step"],
        result.seconds["train"],
        history[-1]["bc_loss"],
        history[-1]["dm_loss"],
    )
    return policy
