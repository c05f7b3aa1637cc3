"""Helpers of the policy tests: tiny configs, real datasets, envs and policies."""

from __future__ import annotations

import gymnasium as gym
import torch

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs.data.chunks import ChunkDataset
from hint_envs.wrappers import PrimitiveControllerWrapper
from policies.config import DDPMPolicyConfig

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


def tiny_config(**overrides) -> DDPMPolicyConfig:
    """A policy small enough to train in seconds on one core."""
    values = dict(
        obs_horizon=2,
        horizon=8,
        chunk_length=4,
        widths=(192, 192),
        step_embed_dim=16,
        diffusion_steps=10,
        down_dims=(16, 32),
        n_groups=4,
        kernel_size=3,
        # the stochastic sampler these mechanics tests were written for (the library's
        # default, clean-chunk prediction with DDIM, nearly collapses an untrained
        # denoiser's samples onto the clip bounds)
        prediction_type="epsilon",
        scheduler="ddpm",
    )
    values.update(overrides)
    return DDPMPolicyConfig(**values)


def make_dataset(demos, config: DDPMPolicyConfig) -> ChunkDataset:
    return ChunkDataset(
        demos, config.obs_horizon, config.horizon, gains=config.gains, env_id=ENV_ID
    )


def make_chunk_env(config: DDPMPolicyConfig) -> PrimitiveControllerWrapper:
    return PrimitiveControllerWrapper(
        gym.make(ENV_ID),
        chunk_length=config.chunk_length,
        obs_horizon=config.obs_horizon,
        gains=config.gains,
    )


def make_policy(demos, config: DDPMPolicyConfig, seed: int = 0):
    """An untrained policy on the real chunk env's spaces and real data statistics."""
    from policies.ddpm import DDPMChunkingPolicy

    data = make_dataset(demos, config)
    env = make_chunk_env(config)
    torch.manual_seed(seed)
    return DDPMChunkingPolicy(
        env.observation_space,
        env.action_space,
        config,
        data.stats,
        seed=seed,
        env_id=ENV_ID,
        layout=data.layout,
    )
