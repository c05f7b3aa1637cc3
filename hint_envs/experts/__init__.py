"""Offline experts that generate demonstrations (see :mod:`hint_envs.experts.base`).

Experts are looked up by environment id and imported lazily, so that asking for the
quadrotor's expert never imports pymunk or robosuite.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from hint_envs.core import Demonstration
from hint_envs.experts.base import Expert

#: env id -> "module:ExpertClass"
EXPERTS: dict[str, str] = {
    "hint_envs/PlanarQuadrotor-v0": "hint_envs.experts.quadrotor:QuadrotorExpert",
    "hint_envs/PushT-v0": "hint_envs.experts.pusht:PushTExpert",
    "hint_envs/RobomimicLift-v0": "hint_envs.experts.robomimic:RobomimicLiftExpert",
    "hint_envs/RobomimicCan-v0": "hint_envs.experts.robomimic:RobomimicCanExpert",
    "hint_envs/RobomimicSquare-v0": "hint_envs.experts.robomimic:RobomimicSquareExpert",
    "hint_envs/ScalarLinear-v0": "hint_envs.experts.scalar_linear:ScalarLinearExpert",
    "hint_envs/Bifurcation-v0": "hint_envs.experts.bifurcation:BifurcationExpert",
}


def make_expert(env_id: str, env_kwargs: Mapping[str, Any] | None = None, **kwargs: Any) -> Expert:
    """Build the offline expert registered for ``env_id``.

    Args:
        env_id: a registered ``hint_envs/`` id with an expert (:data:`EXPERTS`).
        env_kwargs: ``gym.make`` keyword arguments of the environment the expert acts in
            (e.g. ``{"obs_type": "keypoints"}`` for PushT); the demonstrations record
            that environment's observations.
        **kwargs: the expert's own settings.

    Raises:
        KeyError: no expert is registered for ``env_id`` (the message lists those that are).
    """
    if env_id not in EXPERTS:
        raise KeyError(f"no expert for {env_id!r}; experts exist for: {sorted(EXPERTS)}")
    module, name = EXPERTS[env_id].split(":")
    expert_class = getattr(importlib.import_module(module), name)
    return expert_class(env_id=env_id, env_kwargs=dict(env_kwargs or {}), **kwargs)


__all__ = ["Demonstration", "Expert", "EXPERTS", "make_expert"]
