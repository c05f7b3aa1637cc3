"""What every chunking policy of :mod:`policies` shares: spaces, normaliser, persistence.

:class:`ChunkPolicyBase` is a Stable-Baselines3 ``BasePolicy`` over the chunk-level
environment of ``PrimitiveControllerWrapper``::

    observation: (B, T_obs, D_obs)    raw observation chunk (float32 or float64)
    -> action:   (B, T_chunk * D_ctrl) flat composite action, raw units, in the
                                       CompositeActionLayout of hint_envs.core

It checks the spaces against the configuration and the normalisation statistics, keeps the
statistics in float64 buffers (saved with the weights), and normalises observation chunks
and controller chunks. Subclasses — :class:`~policies.ddpm.DDPMChunkingPolicy`,
:class:`~policies.baselines.MLPBCPolicy`, :class:`~policies.baselines.DiffusionBCPolicy` —
build their networks and implement ``_predict``; SB3's ``predict`` does the batching,
``no_grad``, clipping to the action Box and un-batching.

The configuration of a subclass must have ``obs_horizon``, ``chunk_length`` and ``gains``
(and ``to_dict`` / ``from_dict``); its class is the subclass's :attr:`config_class`.

Save and load live on the base, as in Stable-Baselines3: every subclass that sets
:attr:`config_class` registers itself on definition (``__init_subclass__``) under its
format tag ``<package>.<ClassName>/<format_version>``, and
:func:`policies.serialization.load_policy` rebuilds whichever class a saved directory
names. No table of classes is kept anywhere.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.policies import BasePolicy

from hint_envs.core import CompositeActionLayout
from hint_envs.data.normalization import NormalizationStats
from policies.serialization import load_policy, register_policy_class, save_policy

__all__ = ["ChunkPolicyBase"]


class ChunkPolicyBase(BasePolicy):
    """Spaces, normaliser buffers and save/load of a policy over composite actions.

    Args:
        observation_space: Box of shape ``(obs_horizon, d_obs)`` (the chunk-level env's).
        action_space: Box of shape ``(chunk_length * controller_size,)``.
        config: the policy configuration (an instance of :attr:`config_class`).
        stats: normalisation statistics of the training data (``stats.obs`` per
            observation feature, ``stats.action`` per controller feature).
        env_id: id of the environment the policy was trained for (saved with it).
        env_kwargs: its ``gym.make`` keyword arguments (saved with it; ``evaluate`` uses
            them by default).
        layout: the composite-action layout (``d_u``, ``d_x``) if known; checked against
            ``config`` and ``stats``.

    Raises:
        TypeError: ``config`` or ``stats`` of the wrong type.
        ValueError: spaces that do not match ``config`` and ``stats``.
    """

    #: The configuration dataclass of the policy (set by every subclass).
    config_class: ClassVar[type]
    #: Version of the saved format of the class (bump on incompatible changes); part of
    #: its format tag, e.g. ``policies.DDPMChunkingPolicy/1``.
    format_version: ClassVar[int] = 1

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register every subclass with a :attr:`config_class` for save/load."""
        super().__init_subclass__(**kwargs)
        if getattr(cls, "config_class", None) is not None:
            register_policy_class(cls)

    def __init__(
        self,
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        config: Any,
        stats: NormalizationStats,
        env_id: str | None = None,
        layout: CompositeActionLayout | None = None,
        env_kwargs: dict[str, Any] | None = None,
    ):
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"config must be a {self.config_class.__name__}, got {type(config).__name__}"
            )
        if not isinstance(stats, NormalizationStats):
            raise TypeError(f"stats must be a NormalizationStats, got {type(stats).__name__}")
        super().__init__(observation_space, action_space, normalize_images=False)
        d_obs, controller_size = stats.obs.dim, stats.action.dim
        self._check_spaces(observation_space, action_space, config, d_obs, controller_size)
        if layout is not None:
            if layout.controller_size != controller_size or layout.gains != config.gains:
                raise ValueError(
                    f"layout {layout} (controller_size {layout.controller_size}, gains "
                    f"{layout.gains}) does not match the statistics' controller size "
                    f"{controller_size} and config.gains={config.gains}"
                )
            layout = CompositeActionLayout(
                layout.d_u, layout.d_x, config.chunk_length, layout.gains
            )
        self.config = config
        self.stats = stats
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.layout = layout
        self.d_obs = d_obs
        self.controller_size = controller_size
        f64 = dict(dtype=torch.float64)
        self.register_buffer("obs_center", torch.as_tensor(stats.obs.center, **f64))
        self.register_buffer("obs_scale", torch.as_tensor(stats.obs.noise_scale, **f64))
        self.register_buffer("action_center", torch.as_tensor(stats.action.center, **f64))
        self.register_buffer("action_scale", torch.as_tensor(stats.action.noise_scale, **f64))

    @staticmethod
    def _check_spaces(
        observation_space: gym.spaces.Space,
        action_space: gym.spaces.Space,
        config: Any,
        d_obs: int,
        controller_size: int,
    ) -> None:
        if not isinstance(observation_space, gym.spaces.Box):
            raise ValueError(f"observation space must be a Box, got {observation_space}")
        if not isinstance(action_space, gym.spaces.Box):
            raise ValueError(f"action space must be a Box, got {action_space}")
        expected_obs = (config.obs_horizon, d_obs)
        if tuple(observation_space.shape) != expected_obs:
            raise ValueError(
                f"observation space shape {observation_space.shape} does not match the policy: "
                f"expected {expected_obs} = (config.obs_horizon={config.obs_horizon}, d_obs="
                f"{d_obs} from the normalisation statistics); wrap the env in "
                f"PrimitiveControllerWrapper(env, obs_horizon={config.obs_horizon}, ...)"
            )
        expected_action = (config.chunk_length * controller_size,)
        if tuple(action_space.shape) != expected_action:
            raise ValueError(
                f"action space shape {action_space.shape} does not match the policy: expected "
                f"{expected_action} = config.chunk_length={config.chunk_length} controllers x "
                f"{controller_size} floats (gains={config.gains}); wrap the env in "
                f"PrimitiveControllerWrapper(env, chunk_length={config.chunk_length}, "
                f"gains={config.gains})"
            )

    # ------------------------------------------------------------------ normalisation
    @property
    def noise_scale(self) -> np.ndarray:
        """``(d_obs,)`` raw units per normalised unit, the ``scale`` of ReplicaNoiseWrapper."""
        return self.stats.obs.noise_scale.copy()

    def normalize_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw ``(B, T_obs, D_obs)`` -> normalised, flattened ``(B, T_obs * D_obs)`` float32."""
        obs = obs.to(torch.float64)
        return ((obs - self.obs_center) / self.obs_scale).flatten(1).to(torch.float32)

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        """Raw ``(B, H, D_ctrl)`` -> normalised ``(B, H, D_ctrl)`` float32."""
        action = action.to(torch.float64)
        return ((action - self.action_center) / self.action_scale).to(torch.float32)

    def unnormalize_action(self, action: torch.Tensor) -> torch.Tensor:
        """Normalised ``(B, H, D_ctrl)`` -> raw ``(B, H, D_ctrl)`` float64."""
        return action.to(torch.float64) * self.action_scale + self.action_center

    def _check_obs(self, obs: torch.Tensor) -> torch.Tensor:
        """``(T_obs, D_obs)`` or ``(B, T_obs, D_obs)`` -> ``(B, T_obs, D_obs)`` floats on the
        policy's device; other shapes, and NaN or inf entries, raise ``ValueError``."""
        expected = (self.config.obs_horizon, self.d_obs)
        if obs.dim() == 2 and tuple(obs.shape) == expected:
            obs = obs.unsqueeze(0)
        if obs.dim() != 3 or tuple(obs.shape[1:]) != expected:
            raise ValueError(
                f"observation batch must have shape (B, {expected[0]}, {expected[1]}), "
                f"got {tuple(obs.shape)}"
            )
        if not torch.is_floating_point(obs):
            obs = obs.to(torch.float64)
        finite = torch.isfinite(obs)
        if not bool(finite.all()):
            rows = torch.nonzero(~finite.flatten(1).all(dim=1)).flatten().tolist()
            raise ValueError(
                f"observation batch contains NaN or inf (batch rows {rows}); a policy cannot "
                "act on it: check what produced the observation (the environment, or a noise "
                "wrapper with a non-finite scale)"
            )
        return obs.to(self.device)

    def _check_action_chunk(self, action: torch.Tensor, horizon: int) -> torch.Tensor:
        """Raise ``ValueError`` unless ``action`` is ``(B, horizon, D_ctrl)``."""
        expected = (horizon, self.controller_size)
        if action.dim() != 3 or tuple(action.shape[1:]) != expected:
            raise ValueError(
                f"action batch must have shape (B, {expected[0]}, {expected[1]}), "
                f"got {tuple(action.shape)}"
            )
        return action

    # ------------------------------------------------------------------ persistence
    def set_training_mode(self, mode: bool) -> None:
        """SB3's mode switch (``predict`` calls it every time), skipped when the policy is
        already in ``mode``: the switch walks every module, a per-chunk cost at batch 1.
        (Sampling puts the denoiser it uses in eval mode itself.)"""
        if self.training != mode:
            super().set_training_mode(mode)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.pop("normalize_images", None)
        data.update(
            config=self.config,
            stats=self.stats,
            env_id=self.env_id,
            layout=self.layout,
            env_kwargs=self.env_kwargs,
        )
        return data

    def save(self, path: str) -> None:
        """Save to the directory ``path`` (JSON + safetensors, no pickle); see
        :func:`policies.serialization.save_policy`."""
        save_policy(self, path)

    @classmethod
    def load(cls, path: str, device: Any = "cpu", env: gym.Env | None = None) -> Any:
        """Load from the directory ``path``; see :func:`policies.serialization.load_policy`.

        Raises:
            TypeError: the directory holds another kind of policy.
        """
        policy = load_policy(path, env=env, device=device)
        if not isinstance(policy, cls):
            raise TypeError(
                f"{path} holds a {type(policy).__name__}, not a {cls.__name__}; load it with "
                f"{type(policy).__name__}.load or policies.load_policy"
            )
        return policy
