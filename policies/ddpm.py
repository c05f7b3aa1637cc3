"""The DDPM chunking policy: a Stable-Baselines3 policy that samples composite actions.

Shapes::

    observation: (B, T_obs, D_obs)  raw observation chunk (float32 or float64)
    -> sampled chunk: (B, H, D_ctrl)  H = horizon primitive controllers, normalised
    -> action: (B, T_chunk * D_ctrl)  the first T_chunk controllers, raw units, flat in
                                      the CompositeActionLayout of hint_envs.core

with ``T_obs = obs_horizon``, ``T_chunk = chunk_length`` and ``D_ctrl`` floats per
controller (``d_u + d_x + d_u d_x`` with gains, ``d_u`` without). Timeline of one
decision (``obs_horizon = 2``, ``horizon = 16``, ``chunk_length = 8``)::

    env step:   t-1  t   t+1  ...  t+7  t+8  ...  t+14
    observed:   |o|  |o|
    executed:        |a|  |a|  ... |a|
    predicted:       |p|  |p|  ... |p|  |p|  ...  |p|

The chunk-level environment (``PrimitiveControllerWrapper``) executes the ``T_chunk``
controllers ``u = u_bar + K (x - x_bar)`` on the true state and returns the next
observation chunk.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from hint_envs._io import check_memory
from hint_envs.core import CompositeActionLayout
from hint_envs.data.normalization import NormalizationStats
from policies.base import ChunkPolicyBase
from policies.config import DDPMPolicyConfig
from policies.cpu_inference import cpu_inference_model
from policies.networks import ConditionalUnet1D, Denoiser, MLPDenoiser, count_parameters
from policies.sampling import DiffusionSampler

__all__ = ["DDPMChunkingPolicy", "build_denoiser", "make_sampler"]

logger = logging.getLogger(__name__)


def build_denoiser(config: DDPMPolicyConfig, controller_size: int, obs_size: int) -> Denoiser:
    """The denoiser named by ``config.denoiser``.

    Args:
        controller_size: floats per primitive controller (channels of the chunk).
        obs_size: ``obs_horizon * d_obs``, the flattened observation chunk.
    """
    if config.denoiser == "unet1d":
        return ConditionalUnet1D(
            controller_size,
            obs_size,
            config.horizon,
            down_dims=config.down_dims,
            kernel_size=config.kernel_size,
            n_groups=config.n_groups,
            step_embed_dim=config.step_embed_dim,
        )
    return MLPDenoiser(
        controller_size,
        obs_size,
        config.horizon,
        widths=config.widths,
        step_embed_dim=config.step_embed_dim,
    )


def make_sampler(config: DDPMPolicyConfig) -> DiffusionSampler:
    """The reverse-diffusion sampler ``config`` names (scheduler, steps, schedule)."""
    return DiffusionSampler(
        config.scheduler,
        config.diffusion_steps,
        config.num_inference_steps,
        config.beta_schedule,
        config.clip_sample,
        config.prediction_type,
    )


class DDPMChunkingPolicy(ChunkPolicyBase):
    """Diffusion policy over chunks of primitive controllers (HINT), as an SB3 policy.

    ``predict(obs, state=None, episode_start=None, deterministic=False)`` (SB3's) maps an
    observation chunk ``(T_obs, D_obs)`` or a batch ``(B, T_obs, D_obs)`` to a composite
    action ``(T_chunk * D_ctrl,)`` or ``(B, T_chunk * D_ctrl)``, clipped to the action
    Box; see the module docstring for the timeline. The whole batch is denoised at once.

    Randomness: stochastic sampling (``deterministic=False``) draws from the policy's own
    ``torch.Generator``, seeded by ``seed`` and reseeded by :meth:`seed` (moving the policy
    to another device restarts it from the last seed, on that device).
    ``deterministic=True`` samples with a fresh generator seeded with
    ``config.deterministic_seed`` on every call, so the same batch of observations
    always gives the same actions (a fixed draw of the diffusion noise, not a mean).

    Replica noise is not added here: evaluate in
    ``ReplicaNoiseWrapper(env, config.sigma, scale=policy.noise_scale)``.

    Args:
        observation_space: Box of shape ``(obs_horizon, d_obs)`` (the chunk-level env's).
        action_space: Box of shape ``(chunk_length * controller_size,)``.
        config: the policy configuration.
        stats: normalisation statistics of the training data (``stats.obs`` per
            observation feature, ``stats.action`` per controller feature).
        seed: seed of the sampling generator (and nothing else: weights are initialised
            from torch's global generator; :func:`policies.training.train` seeds it).
        env_id: id of the environment the policy was trained for (saved with it).
        env_kwargs: its ``gym.make`` keyword arguments (saved with it; ``evaluate`` uses
            them by default).
        layout: the composite-action layout (``d_u``, ``d_x``) if known; checked against
            ``config`` and ``stats``.

    Raises:
        ValueError: spaces that do not match ``config`` and ``stats``.
    """

    config_class: ClassVar[type[DDPMPolicyConfig]] = DDPMPolicyConfig

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        config: DDPMPolicyConfig,
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
        d_obs, controller_size = self.d_obs, self.controller_size
        with torch.device("meta"):  # its size first, allocating nothing
            probe = build_denoiser(config, controller_size, config.obs_horizon * d_obs)
        self.denoiser_bytes = sum(p.numel() * p.element_size() for p in probe.parameters())
        check_memory(
            self.denoiser_bytes * (2 if config.ema else 1),
            f"a denoiser of widths {config.widths} / down_dims {config.down_dims}",
            "choose smaller widths (or down_dims)",
        )
        self.denoiser = build_denoiser(config, controller_size, config.obs_horizon * d_obs)
        self.ema_denoiser: Denoiser | None = None
        if config.ema:
            self.ema_denoiser = copy.deepcopy(self.denoiser)
            self.ema_denoiser.requires_grad_(False)
            self.ema_denoiser.eval()
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

        self.sampler = make_sampler(config)
        #: loss history of :func:`policies.training.train` (not saved with the policy)
        self.train_history: list[dict[str, float]] = []
        self._generator: torch.Generator | None = None
        self._compiled_body: Any = None
        self._compiled_device: torch.device | None = None
        self.seed(seed)
        logger.info(
            "DDPMChunkingPolicy: %s denoiser with %d parameters, %s sampling in %d steps",
            config.denoiser,
            count_parameters(self.denoiser),
            config.scheduler,
            config.num_inference_steps,
        )

    # ------------------------------------------------------------------ randomness
    def seed(self, seed: int) -> None:
        """Reseed the generator that stochastic sampling (``deterministic=False``) uses."""
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        self._seed = int(seed)
        self._generator = torch.Generator(device=self.device).manual_seed(self._seed)

    @property
    def generator(self) -> torch.Generator:
        """The stochastic-sampling generator, on the policy's device."""
        if self._generator is None or self._generator.device != self.device:
            self._generator = torch.Generator(device=self.device).manual_seed(self._seed)
        return self._generator

    # ------------------------------------------------------------------ training
    @property
    def inference_denoiser(self) -> Denoiser:
        """The weights sampling uses: the EMA copy if ``config.ema``, else the raw ones."""
        return self.ema_denoiser if self.ema_denoiser is not None else self.denoiser

    def normalized_loss(
        self,
        obs: torch.Tensor,
        action: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Denoising MSE on normalised data.

        Args:
            obs: ``(B, T_obs * D_obs)`` normalised flattened observation chunks.
            action: ``(B, H, D_ctrl)`` normalised controller chunks.
            generator: source of the diffusion steps and noise (default: the policy's).

        Returns:
            scalar ``mean((eps_theta(x_t, t, obs) - eps) ** 2)`` (with
            ``prediction_type="sample"``, the clean chunk ``action`` in place of ``eps``).
        """
        generator = generator if generator is not None else self.generator
        batch, device = action.shape[0], generator.device
        t = torch.randint(
            0, self.config.diffusion_steps, (batch,), generator=generator, device=device
        )
        noise = torch.randn(action.shape, generator=generator, dtype=action.dtype, device=device)
        noisy = self.sampler.add_noise(action, noise, t)
        return F.mse_loss(self.denoiser(noisy, t, obs), self.sampler.target(action, noise))

    def loss(
        self,
        obs: torch.Tensor | np.ndarray,
        action: torch.Tensor | np.ndarray,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Denoising MSE of the raw denoiser on raw data.

        Args:
            obs: ``(B, T_obs, D_obs)`` raw (already noised, if training with sigma > 0)
                observation chunks.
            action: ``(B, H, D_ctrl)`` raw controller chunks (``H = config.horizon``).
            generator: source of the diffusion steps and noise (default: the policy's).

        Returns:
            the scalar normalised denoising loss (differentiable w.r.t. the denoiser).
        """
        obs = torch.as_tensor(obs)
        action = torch.as_tensor(action, device=self.device)
        self._check_action_chunk(action, self.config.horizon)
        obs = self._check_obs(obs)
        return self.normalized_loss(
            self.normalize_obs(obs), self.normalize_action(action), generator
        )

    @torch.no_grad()
    def update_ema(self) -> float:
        """One EMA step of the inference weights towards the raw weights.

        Decay (Diffusion Policy's ``EMAModel``): with ``k = updates so far -
        ema_update_after_step - 1``, 0 while ``k <= 0`` (the EMA copies the weights), then
        ``1 - (1 + k / inv_gamma) ** -power`` clamped to ``[ema_min_decay, ema_max_decay]``.
        Returns the decay used (no-op returning 0 without EMA).
        """
        if self.ema_denoiser is None:
            return 0.0
        cfg = self.config
        step = int(self.ema_updates) - cfg.ema_update_after_step - 1
        self.ema_updates += 1
        if step <= 0:
            decay = 0.0
        else:
            decay = 1.0 - (1.0 + step / cfg.ema_inv_gamma) ** -cfg.ema_power
            decay = min(max(decay, cfg.ema_min_decay), cfg.ema_max_decay)
        ema = list(self.ema_denoiser.parameters())
        raw = list(self.denoiser.parameters())
        torch._foreach_lerp_(ema, raw, 1.0 - decay)
        return decay

    # ------------------------------------------------------------------ sampling
    def sample_chunk(
        self,
        observation: torch.Tensor | np.ndarray,
        deterministic: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample the full predicted chunk of ``horizon`` controllers, in raw units.

        Args:
            observation: ``(B, T_obs, D_obs)`` (or one ``(T_obs, D_obs)``) raw chunks.
            deterministic: use a fresh generator seeded with ``config.deterministic_seed``.
            generator: explicit generator (overrides both of the above).

        Returns:
            ``(B, horizon, D_ctrl)`` float64 controllers, not clipped to the action Box.
        """
        obs = self._check_obs(torch.as_tensor(observation))
        if generator is None:
            generator = (
                torch.Generator(device=self.device).manual_seed(self.config.deterministic_seed)
                if deterministic
                else self.generator
            )
        model = self.inference_denoiser
        was_training = model.training
        if was_training:  # (eval() walks every module: skip it when already in eval mode)
            model.eval()
        if self._compiled_body is not None and self._compiled_device != self.device:
            self._drop_compiled_sampler(f"the policy moved to {self.device}")
        body = model.denoise if self._compiled_body is None else self._compiled_body
        try:
            with torch.inference_mode():
                cond = self.normalize_obs(obs)
                obs_film = model.obs_films(cond)  # once per chunk
                step_films = model.step_films(self.sampler.timesteps.to(cond.device))

                def denoise(x: torch.Tensor, i: int) -> torch.Tensor:
                    return body(x, obs_film + step_films[i])

                shape = (obs.shape[0], self.config.horizon, self.controller_size)
                chunk = self.sampler.sample(denoise, shape, generator)
                return self.unnormalize_action(chunk)
        finally:
            if was_training:
                model.train()

    def set_sampler(self, scheduler: str, inference_steps: int | None = None) -> DDPMChunkingPolicy:
        """Sample the trained model with another sampler (returns self).

        The noise schedule the denoiser was trained on is kept; only the reverse process
        changes, e.g. ``policy.set_sampler("ddim", 10)`` for deterministic DDIM in 10
        steps on a model trained (and first sampled) with DDPM in 100. ``config`` is
        updated (and validated), so a saved policy reloads with the new sampler.
        """
        config = DDPMPolicyConfig.from_dict(
            {**self.config.to_dict(), "scheduler": scheduler, "inference_steps": inference_steps}
        )
        self.sampler = make_sampler(config)
        self.config = config
        return self

    def compile_sampler(self, **kwargs: Any) -> DDPMChunkingPolicy:
        """Sample through ``torch.compile`` of the denoiser's current weights (opt-in; returns
        self).

        On CPU it compiles :func:`policies.cpu_inference.cpu_inference_model` of the inference
        weights (a copy of them, laid out once; the U-Net run time-major with its convolutions
        as GEMMs, and Mish in closed form); elsewhere the plain denoiser. Inductor fuses the
        elementwise work between the matrix products (group norm, FiLM, Mish, the
        convolutions' gathers), most of a U-Net call on CPU. The compiled sampler is a
        snapshot: training mode (``train()``, ``set_training_mode(True)``, as
        :func:`policies.training.fit` sets it), ``load_state_dict`` and moving the policy to
        another device drop it, and sampling is eager again until the next call.
        Each new batch size compiles once (``dynamic=False`` by default), from half a minute
        to two minutes on 2 cores; measure with ``benchmarks/sampling_latency.py --compile``.
        Results agree with eager sampling to float32 rounding, not bit for bit. ``kwargs``
        go to ``torch.compile``.
        """
        kwargs.setdefault("dynamic", False)
        model = self.inference_denoiser
        if self.device.type == "cpu":
            model = cpu_inference_model(model)
        self._compiled_body = torch.compile(model.denoise, **kwargs)
        self._compiled_device = self.device
        return self

    def _drop_compiled_sampler(self, reason: str) -> None:
        if self._compiled_body is not None:
            logger.info("compiled sampler dropped (%s); call compile_sampler() again", reason)
            self._compiled_body = None

    def train(self, mode: bool = True) -> DDPMChunkingPolicy:
        """``nn.Module.train``; training mode drops the compiled sampler (its weights are
        about to change)."""
        if mode:
            self._drop_compiled_sampler("training mode")
        return super().train(mode)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        """``nn.Module.load_state_dict``; drops the compiled sampler (new weights)."""
        self._drop_compiled_sampler("new weights loaded")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def _predict(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """``(B, T_obs, D_obs)`` -> ``(B, T_chunk * D_ctrl)`` float64 composite actions."""
        chunk = self.sample_chunk(observation, deterministic=deterministic)
        return chunk[:, : self.config.chunk_length].reshape(chunk.shape[0], -1)

    def forward(self, observation: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Same as :meth:`_predict` (composite actions, not clipped)."""
        return self._predict(observation, deterministic)
