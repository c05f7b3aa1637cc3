"""Policies for the chunk-level environments of :mod:`hint_envs`.

:class:`DDPMChunkingPolicy` is a Stable-Baselines3 policy that samples composite actions
(chunks of primitive controllers) with a denoising diffusion model; :func:`train` fits it
to a :class:`hint_envs.data.chunks.ChunkDataset`; :func:`save_policy` /
:func:`load_policy` persist it as JSON + safetensors; :class:`StepLevelPolicy` drives an
unwrapped control environment with it one raw input at a time. The baselines
:class:`MLPBCPolicy` (MLP behaviour cloning) and :class:`DiffusionBCPolicy`
(Diffusion-model-augmented BC) have the same API and are trained by :func:`train_mlp_bc`
and :func:`train_diffusion_bc`. See docs/policies.md.

The names are imported lazily, so ``import policies.config`` (and the ``hint-train`` CLI
before it has parsed its arguments) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from policies.baselines import (
        DiffusionBCPolicy,
        MLPBCPolicy,
        train_diffusion_bc,
        train_mlp_bc,
    )
    from policies.config import DDPMPolicyConfig, DiffusionBCConfig, MLPBCConfig, TrainConfig
    from policies.ddpm import DDPMChunkingPolicy
    from policies.evaluation import evaluate_trained
    from policies.serialization import load_policy, save_policy
    from policies.step_adapter import StepLevelPolicy
    from policies.training import train

_EXPORTS = {
    "DDPMChunkingPolicy": "policies.ddpm",
    "DDPMPolicyConfig": "policies.config",
    "DiffusionBCConfig": "policies.config",
    "DiffusionBCPolicy": "policies.baselines",
    "MLPBCConfig": "policies.config",
    "MLPBCPolicy": "policies.baselines",
    "TrainConfig": "policies.config",
    "StepLevelPolicy": "policies.step_adapter",
    "evaluate_trained": "policies.evaluation",
    "load_policy": "policies.serialization",
    "save_policy": "policies.serialization",
    "train": "policies.training",
    "train_diffusion_bc": "policies.baselines",
    "train_mlp_bc": "policies.baselines",
}

__all__ = [
    "DDPMChunkingPolicy",
    "DDPMPolicyConfig",
    "DiffusionBCConfig",
    "DiffusionBCPolicy",
    "MLPBCConfig",
    "MLPBCPolicy",
    "StepLevelPolicy",
    "TrainConfig",
    "evaluate_trained",
    "load_policy",
    "save_policy",
    "train",
    "train_diffusion_bc",
    "train_mlp_bc",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'policies' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
