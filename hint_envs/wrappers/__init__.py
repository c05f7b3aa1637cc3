"""Wrappers that define the suite: chunk-level control and replica noise.

Stack order: ``ReplicaNoiseWrapper(PrimitiveControllerWrapper(base_env, ...), sigma, scale)``;
the vector forms stack the same way over a vector env with autoreset disabled. See
docs/wrappers.md.
"""

from __future__ import annotations

from hint_envs.wrappers.primitive_controller import (
    PrimitiveControllerVectorWrapper,
    PrimitiveControllerWrapper,
    composite_action_bounds,
)
from hint_envs.wrappers.replica_noise import (
    REPLICA_NOISE_STREAM,
    ReplicaNoiseVectorWrapper,
    ReplicaNoiseWrapper,
    add_replica_noise,
    draw_noise,
)

__all__ = [
    "PrimitiveControllerWrapper",
    "PrimitiveControllerVectorWrapper",
    "ReplicaNoiseWrapper",
    "ReplicaNoiseVectorWrapper",
    "REPLICA_NOISE_STREAM",
    "add_replica_noise",
    "draw_noise",
    "composite_action_bounds",
]
