"""The synthesis oracle: primitive controllers (u_bar, x_bar, K) along a trajectory.

``synthesize(env_id, demo)`` dispatches to the per-environment synthesiser registered in
:data:`SYNTHESIZERS`, imported lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hint_envs.core import Demonstration, Primitives

#: env id -> "module:function(demo, **kwargs) -> Primitives"
SYNTHESIZERS: dict[str, str] = {
    "hint_envs/PlanarQuadrotor-v0": "hint_envs.synthesis.quadrotor:synthesize",
    "hint_envs/PushT-v0": "hint_envs.synthesis.pusht:synthesize",
    "hint_envs/RobomimicLift-v0": "hint_envs.synthesis.robomimic:synthesize",
    "hint_envs/RobomimicCan-v0": "hint_envs.synthesis.robomimic:synthesize",
    "hint_envs/RobomimicSquare-v0": "hint_envs.synthesis.robomimic:synthesize",
    "hint_envs/ScalarLinear-v0": "hint_envs.synthesis.scalar_linear:synthesize",
    "hint_envs/Bifurcation-v0": "hint_envs.synthesis.bifurcation:synthesize",
}


def synthesize(env_id: str, demo: Demonstration, **kwargs: Any) -> Primitives:
    """Primitive controllers along ``demo``, consistent with it: ``kappa_t(x_t) = u_t``.

    Raises:
        KeyError: no synthesiser is registered for ``env_id``.
    """
    if env_id not in SYNTHESIZERS:
        raise KeyError(f"no synthesiser for {env_id!r}; registered: {sorted(SYNTHESIZERS)}")
    module, name = SYNTHESIZERS[env_id].split(":")
    return getattr(importlib.import_module(module), name)(demo, **kwargs)


__all__ = ["SYNTHESIZERS", "synthesize"]
