"""Save and load a :class:`~policies.ddpm.DDPMChunkingPolicy` without pickle.

A saved policy is a directory with two files:

``config.json``
    format tag, ``hint_envs`` version, the policy config, normalisation statistics,
    observation and action spaces (shape, bounds, dtype), env id, composite-action
    layout, and the SHA-256 of the weights file.
``model.safetensors``
    every tensor of the policy's ``state_dict``: raw weights (``denoiser.*``), EMA
    weights (``ema_denoiser.*``) and the normaliser buffers.

Each file is written to a temporary name and renamed into place (atomic on POSIX), the
weights first, so a reader never sees a config that points at half-written weights.
Reloading gives bit-identical actions for a fixed seed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import hint_envs
from hint_envs.core import CompositeActionLayout
from hint_envs.data.normalization import NormalizationStats
from policies.config import DDPMPolicyConfig
from policies.ddpm import DDPMChunkingPolicy

__all__ = ["save_policy", "load_policy", "atomic_write_bytes", "atomic_write_json", "FORMAT"]

#: Format tag written into ``config.json``.
FORMAT = "hint_envs.policies.DDPMChunkingPolicy/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (no NaN/inf allowed)."""
    atomic_write_bytes(path, (json.dumps(data, indent=2, allow_nan=False) + "\n").encode())


def _encode_floats(array: np.ndarray) -> list:
    """Nested lists with infinities as the strings ``"inf"`` / ``"-inf"`` (valid JSON)."""

    def encode(value: float) -> float | str:
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if math.isnan(value):
            raise ValueError("space bounds must not be NaN")
        return float(value)

    return np.vectorize(encode, otypes=[object])(np.asarray(array, dtype=np.float64)).tolist()


def _decode_floats(data: Any) -> np.ndarray:
    return np.asarray(data, dtype=object).astype(np.float64)


def _box_to_dict(space: gym.spaces.Box) -> dict[str, Any]:
    return {
        "shape": list(space.shape),
        "low": _encode_floats(space.low),
        "high": _encode_floats(space.high),
        "dtype": np.dtype(space.dtype).name,
    }


def _box_from_dict(data: dict[str, Any]) -> gym.spaces.Box:
    shape = tuple(data["shape"])
    low = _decode_floats(data["low"]).reshape(shape)
    high = _decode_floats(data["high"]).reshape(shape)
    return gym.spaces.Box(low, high, shape=shape, dtype=np.dtype(data["dtype"]))


def _state_dict(policy: DDPMChunkingPolicy) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}


def save_policy(policy: DDPMChunkingPolicy, directory: str | os.PathLike) -> Path:
    """Write ``policy`` into ``directory`` (created if needed) as JSON + safetensors.

    Returns:
        the directory.
    """
    if not isinstance(policy, DDPMChunkingPolicy):
        raise TypeError(f"save_policy needs a DDPMChunkingPolicy, got {type(policy).__name__}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_path = directory / WEIGHTS_FILE
    weights = save_safetensors(_state_dict(policy), metadata={"format": FORMAT})
    atomic_write_bytes(weights_path, weights)
    layout = policy.layout
    config = {
        "format": FORMAT,
        "hint_envs_version": hint_envs.__version__,
        "torch_version": torch.__version__,
        "env_id": policy.env_id,
        "policy_config": policy.config.to_dict(),
        "stats": policy.stats.to_dict(),
        "observation_space": _box_to_dict(policy.observation_space),
        "action_space": _box_to_dict(policy.action_space),
        "layout": None
        if layout is None
        else {"d_u": layout.d_u, "d_x": layout.d_x, "gains": layout.gains},
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest()},
    }
    atomic_write_json(directory / CONFIG_FILE, config)
    return directory


def _read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_FILE
    if not directory.is_dir():
        raise FileNotFoundError(f"no saved policy at {directory}: not a directory")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: {directory} is not a saved policy (expected {CONFIG_FILE} and "
            f"{WEIGHTS_FILE}, written by policies.serialization.save_policy)"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}); the file is corrupt") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{path} has format {got!r}, expected {FORMAT!r}")
    return data


def _check_env(env: Any, observation_space: gym.spaces.Box, action_space: gym.spaces.Box) -> None:
    env_obs = getattr(env, "observation_space", None)
    env_act = getattr(env, "action_space", None)
    if env_obs is None or env_act is None:
        raise TypeError(f"env must have observation_space and action_space, got {env!r}")
    if tuple(env_obs.shape) != tuple(observation_space.shape):
        raise ValueError(
            f"the env's observation space has shape {tuple(env_obs.shape)} but the policy was "
            f"trained on observations of shape {tuple(observation_space.shape)} "
            "(obs_horizon, d_obs); wrap the env in PrimitiveControllerWrapper with the policy's "
            "obs_horizon"
        )
    if tuple(env_act.shape) != tuple(action_space.shape):
        raise ValueError(
            f"the env's action space has shape {tuple(env_act.shape)} but the policy outputs "
            f"composite actions of shape {tuple(action_space.shape)}; wrap the env in "
            "PrimitiveControllerWrapper with the policy's chunk_length and gains setting"
        )


def load_policy(
    directory: str | os.PathLike, env: Any = None, device: str | torch.device = "cpu"
) -> DDPMChunkingPolicy:
    """Load a policy written by :func:`save_policy`.

    Args:
        directory: the saved policy's directory.
        env: optional env (or VecEnv) the policy will act in; its observation and action
            space shapes must match the saved ones.
        device: torch device to put the policy on (``"auto"``: CUDA if available).

    Returns:
        the policy in eval mode, sampling generator seeded with 0 (call ``seed``).

    Raises:
        FileNotFoundError: missing directory or files.
        ValueError: corrupt files (bad JSON, checksum mismatch, unreadable safetensors,
            missing or unexpected tensors), or an ``env`` whose spaces do not match.
    """
    directory = Path(directory)
    data = _read_config(directory)
    try:
        config = DDPMPolicyConfig.from_dict(data["policy_config"])
        stats = NormalizationStats.from_dict(data["stats"])
        observation_space = _box_from_dict(data["observation_space"])
        action_space = _box_from_dict(data["action_space"])
        weights_info = data["weights"]
        layout_data = data.get("layout")
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{directory / CONFIG_FILE} is incomplete or invalid ({type(error).__name__}: "
            f"{error}); the file is corrupt or from an incompatible version"
        ) from None
    if env is not None:
        _check_env(env, observation_space, action_space)
    layout = None
    if layout_data is not None:
        layout = CompositeActionLayout(
            int(layout_data["d_u"]),
            int(layout_data["d_x"]),
            config.chunk_length,
            bool(layout_data["gains"]),
        )
    weights_path = directory / weights_info.get("file", WEIGHTS_FILE)
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path} is missing; the saved policy is incomplete")
    raw = weights_path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != weights_info.get("sha256"):
        raise ValueError(
            f"{weights_path} does not match the checksum in {CONFIG_FILE} "
            f"(sha256 {digest[:12]}... vs {str(weights_info.get('sha256'))[:12]}...): the "
            "weights are corrupt or belong to another save"
        )
    try:
        state = load_safetensors(raw)
    except (SafetensorError, ValueError) as error:
        raise ValueError(f"cannot read {weights_path}: {error}") from None
    policy = DDPMChunkingPolicy(
        observation_space,
        action_space,
        config,
        stats,
        env_id=data.get("env_id"),
        layout=layout,
    )
    expected = set(policy.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{weights_path} does not fit the saved config: missing tensors {missing[:5]}, "
            f"unexpected tensors {unexpected[:5]}"
        )
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{weights_path} does not fit the saved config: {error}") from None
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    policy.to(device)
    policy.set_training_mode(False)
    return policy
