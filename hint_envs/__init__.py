"""hint_envs: Gymnasium environments and wrappers for generative behavior cloning with
low-level stability (HINT: Hierarchical Imitation via Noising at Inference Time).

Importing the package registers every environment id under the ``hint_envs/`` namespace
with string entry points, so it imports no simulator (pymunk, robosuite) and no torch.
"""

from __future__ import annotations

from gymnasium.envs.registration import register

__version__ = "0.1.0"

register(
    id="hint_envs/PlanarQuadrotor-v0",
    entry_point="hint_envs.envs.planar_quadrotor:PlanarQuadrotorEnv",
    vector_entry_point="hint_envs.envs.planar_quadrotor:PlanarQuadrotorVectorEnv",
    max_episode_steps=100,
)

register(
    id="hint_envs/PushT-v0",
    entry_point="hint_envs.envs.pusht:PushTEnv",
    max_episode_steps=300,
)

for _task in ("Lift", "Can", "Square"):
    register(
        id=f"hint_envs/Robomimic{_task}-v0",
        entry_point="hint_envs.envs.robomimic:RobomimicEnv",
        kwargs={"task": _task},
        max_episode_steps=400,  # hint_envs.envs.robomimic.HORIZON: robomimic's rollout horizon
    )

register(
    id="hint_envs/ScalarLinear-v0",
    entry_point="hint_envs.envs.scalar_linear:ScalarLinearEnv",
    max_episode_steps=50,
)

register(
    id="hint_envs/Bifurcation-v0",
    entry_point="hint_envs.envs.bifurcation:BifurcationEnv",
    max_episode_steps=70,  # 7 s: the expert arrives after 6.2 s (its default timing)
)

__all__ = ["__version__"]
