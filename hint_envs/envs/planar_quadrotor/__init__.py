"""Planar quadrotor with a disk obstacle between the start region and the goal.

The task in four modules, read in this order:

- :mod:`.physics`: the physics, pure functions over a frozen :class:`QuadrotorParams`
  (``dynamics``, ``jacobians``, ``cost``, ``collided``, ...), batched, no environment;
- :mod:`.render`: :class:`QuadrotorRenderer`, RGB frames painted with numpy;
- :mod:`.env`: :class:`PlanarQuadrotorEnv`, the Gymnasium environment, a thin shell
  around the physics;
- :mod:`.vector`: :class:`PlanarQuadrotorVectorEnv`, its native vector form.

Every public name is re-exported here, so ``hint_envs.envs.planar_quadrotor:PlanarQuadrotorEnv``
(the registered entry point) and ``from hint_envs.envs.planar_quadrotor import dynamics``
work as before.
"""

from __future__ import annotations

from hint_envs.envs.planar_quadrotor.env import PlanarQuadrotorEnv
from hint_envs.envs.planar_quadrotor.physics import (
    INPUT_DIM,
    STATE_DIM,
    STATE_FIELDS,
    QuadrotorParams,
    accelerations,
    collided,
    cost,
    dynamics,
    goal_distance,
    jacobians,
    observation_bounds,
    out_of_bounds,
    reached_goal,
)
from hint_envs.envs.planar_quadrotor.render import RENDER_SCALE, TRAIL_LENGTH, QuadrotorRenderer
from hint_envs.envs.planar_quadrotor.vector import PlanarQuadrotorVectorEnv

__all__ = [
    "INPUT_DIM",
    "RENDER_SCALE",
    "STATE_DIM",
    "STATE_FIELDS",
    "TRAIL_LENGTH",
    "PlanarQuadrotorEnv",
    "PlanarQuadrotorVectorEnv",
    "QuadrotorParams",
    "QuadrotorRenderer",
    "accelerations",
    "collided",
    "cost",
    "dynamics",
    "goal_distance",
    "jacobians",
    "observation_bounds",
    "out_of_bounds",
    "reached_goal",
]
