"""The environments, one per module, each a thin shell around pure dynamics functions.

- :mod:`hint_envs.envs.planar_quadrotor`: ``hint_envs/PlanarQuadrotor-v0``
  (:class:`PlanarQuadrotorEnv`, its batched :class:`PlanarQuadrotorVectorEnv`, and the
  pure functions over :class:`QuadrotorParams`).
- :mod:`hint_envs.envs.scalar_linear`: ``hint_envs/ScalarLinear-v0``
  (:class:`ScalarLinearEnv`, the scalar system ``x' = a x + b u + w`` of the theory's
  compounding-error example, and its pure functions over :class:`ScalarLinearParams`).
- :mod:`hint_envs.envs.bifurcation`: ``hint_envs/Bifurcation-v0``
  (:class:`BifurcationEnv`, a 2-D double integrator round a disc obstacle, and the pure
  functions over :class:`BifurcationParams`).
- :mod:`hint_envs.envs.pusht`: ``hint_envs/PushT-v0`` (:class:`~hint_envs.envs.pusht.PushTEnv`
  around gym-pusht's own environment, and the agent's exact linear model); needs the
  ``pusht`` extra, so it is not imported here.
- :mod:`hint_envs.envs.robomimic`: ``hint_envs/RobomimicLift-v0``, ``RobomimicCan-v0``,
  ``RobomimicSquare-v0`` (:class:`~hint_envs.envs.robomimic.RobomimicEnv` around
  robosuite's own environments); needs the ``robomimic`` extra, so it is not imported here.

Modules that need an optional simulator (pymunk, robosuite) are not imported here, so
importing this package stays cheap; ``gym.make`` imports them through the string entry
points registered in :mod:`hint_envs`.
"""

from __future__ import annotations

from hint_envs.envs.bifurcation import BifurcationEnv, BifurcationParams
from hint_envs.envs.planar_quadrotor import (
    PlanarQuadrotorEnv,
    PlanarQuadrotorVectorEnv,
    QuadrotorParams,
    QuadrotorRenderer,
)
from hint_envs.envs.scalar_linear import ScalarLinearEnv, ScalarLinearParams

__all__ = [
    "BifurcationEnv",
    "BifurcationParams",
    "PlanarQuadrotorEnv",
    "PlanarQuadrotorVectorEnv",
    "QuadrotorParams",
    "QuadrotorRenderer",
    "ScalarLinearEnv",
    "ScalarLinearParams",
]
