"""Save and load the policies of :mod:`policies` without pickle.

:class:`~policies.ddpm.DDPMChunkingPolicy` and the baselines
:class:`~policies.baselines.MLPBCPolicy` and :class:`~policies.baselines.DiffusionBCPolicy`
are saved alike. A saved policy is a directory with two files:

``config.json``
    format tag (one per policy class, ``policies.<ClassName>/<version>``, see
    :func:`format_tag`), the policy class and its module, ``hint_envs`` and torch
    versions, the policy config, normalisation statistics, observation and action spaces
    (shape, bounds, dtype), env id, composite-action layout, and the SHA-256 of the weights
    file. :func:`load_policy` rebuilds the class the format names.
``model.safetensors``
    every tensor of the policy's ``state_dict``: for the DDPM policy raw weights
    (``denoiser.*``), EMA weights (``ema_denoiser.*``); for the baselines the MLP
    (``mlp.*``) and, for DBC, the diffusion model (``diffusion.*``); and the normaliser
    buffers.

Each file is written to a temporary name and renamed into place (atomic on POSIX;
:func:`hint_envs._io.atomic_write_bytes`, re-exported here), the weights first, so a
reader never sees a config that points at half-written weights.
Reloading gives bit-identical actions for a fixed seed.

Which class a format tag names is looked up in a registry that subclassing fills: every
concrete subclass of :class:`~policies.base.ChunkPolicyBase` registers itself
(:func:`register_policy_class`, called by ``ChunkPolicyBase.__init_subclass__``). A saved
policy is data, never code: nothing a file says is imported. Before the lookup, loading
imports this package's own policy modules (:data:`POLICY_MODULES`, a fixed list); a
policy class of another package must be imported by the caller first. Files written
before the package was renamed carry tags ``hint_envs.policies.<ClassName>/<version>``;
they load as ``policies.<ClassName>/...``.

The rest of a file is checked before anything is built from it: the env id is a
registered ``hint_envs/`` id (:func:`hint_envs.core.check_file_env_id`), the weights file
is a plain name inside the policy folder, and the normaliser statistics in
``config.json`` equal the normaliser buffers in the weights (docs/policies.md, "Sharing
policies and data safely").
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

import hint_envs
from hint_envs._io import ResourceError, atomic_write_bytes, atomic_write_json
from hint_envs.core import (
    CompositeActionLayout,
    check_file_env_id,
    check_flag,
    check_policy_spaces,
)
from hint_envs.data.normalization import NormalizationStats
from policies.devices import check_device

__all__ = [
    "save_policy",
    "load_policy",
    "format_tag",
    "register_policy_class",
    "registered_formats",
    "atomic_write_bytes",
    "atomic_write_json",
]

#: Policy classes by format tag, filled by :func:`register_policy_class`.
_REGISTRY: dict[str, type] = {}
#: Prefix of the format tags written before the package ``hint_envs.policies`` became
#: ``policies``; such tags are read as ``policies.*``.
_LEGACY_TAG_PREFIX = "hint_envs.policies."
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: This package's modules that define policy classes: imported (whatever a file says)
#: before a format tag is looked up, so a fresh interpreter finds their classes.
POLICY_MODULES = ("policies.ddpm", "policies.baselines")
#: The normaliser buffers every policy's weights hold; they must equal ``config.json``'s stats.
NORMALIZER_BUFFERS = ("obs_center", "obs_scale", "action_center", "action_scale")


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


def _state_dict(policy: Any) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}


def _count(value: Any) -> int:
    """A JSON value that must be a non-negative integer (not a bool, a float or text)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected an integer >= 0, got {value!r}")
    return value


def _not_finite(state: dict[str, torch.Tensor]) -> list[str]:
    """The floating tensors of ``state`` holding NaN or inf."""
    return [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]


def format_tag(policy_class: type) -> str:
    """The format tag of a policy class: ``<package>.<ClassName>/<format_version>``.

    For the policies of this package e.g. ``"policies.DDPMChunkingPolicy/1"``. A class
    bumps its ``format_version`` when its saved tensors or config change incompatibly.
    """
    package = policy_class.__module__.partition(".")[0]
    return f"{package}.{policy_class.__name__}/{policy_class.format_version}"


def register_policy_class(policy_class: type) -> str:
    """Let :func:`load_policy` rebuild ``policy_class`` from its :func:`format_tag`.

    Called by ``ChunkPolicyBase.__init_subclass__`` for every subclass with a
    ``config_class``; there is no need to call it by hand.

    Returns:
        the class's format tag.

    Raises:
        TypeError: another class (not a reloaded version of this one) holds the tag.
    """
    tag = format_tag(policy_class)
    held = _REGISTRY.get(tag)
    if held is not None and held.__qualname__ != policy_class.__qualname__:
        raise TypeError(
            f"format tag {tag!r} of {policy_class.__module__}.{policy_class.__qualname__} is "
            f"already used by {held.__module__}.{held.__qualname__}; rename the class"
        )
    _REGISTRY[tag] = policy_class
    return tag


def registered_formats() -> dict[str, type]:
    """The policy classes :func:`load_policy` can rebuild now, by format tag."""
    return dict(_REGISTRY)


def _current_tag(tag: Any) -> Any:
    """A tag of this version for ``tag`` (tags of files written before the rename, which
    start with ``hint_envs.policies.``, are mapped to ``policies.``)."""
    if isinstance(tag, str) and tag.startswith(_LEGACY_TAG_PREFIX):
        return "policies." + tag[len(_LEGACY_TAG_PREFIX) :]
    return tag


def _class_for(tag: Any, path: Path) -> type:
    """The registered class of ``tag``; this package's policy modules are imported first
    (:data:`POLICY_MODULES`), and nothing the file names is ever imported."""
    if tag not in _REGISTRY:
        for module in POLICY_MODULES:
            importlib.import_module(module)
    if not isinstance(tag, str) or tag not in _REGISTRY:
        raise ValueError(
            f"{path} has format {tag!r}, which names no known policy class; known formats: "
            f"{sorted(_REGISTRY)} (a saved policy never makes the loader import a module: "
            "import the module that defines a policy class of another package first)"
        )
    return _REGISTRY[tag]


def save_policy(policy: Any, directory: str | os.PathLike) -> Path:
    """Write ``policy`` into ``directory`` (created if needed) as JSON + safetensors.

    Args:
        policy: a :class:`~policies.base.ChunkPolicyBase` subclass instance, e.g.
            :class:`~policies.ddpm.DDPMChunkingPolicy`,
            :class:`~policies.baselines.MLPBCPolicy` or
            :class:`~policies.baselines.DiffusionBCPolicy`.
        directory: where to write ``config.json`` and ``model.safetensors``.

    Returns:
        the directory.

    Raises:
        TypeError: ``policy`` is not of a registered policy class.
    """
    cls = type(policy)
    tag = format_tag(cls) if hasattr(cls, "format_version") else None
    if tag is None or _REGISTRY.get(tag) is not cls:
        raise TypeError(
            f"save_policy needs a policy of a registered class (a subclass of "
            f"policies.base.ChunkPolicyBase), got {cls.__name__}; registered: "
            f"{sorted(c.__name__ for c in _REGISTRY.values())}"
        )
    name = cls.__name__
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = _state_dict(policy)
    bad = _not_finite(state)
    if bad:
        raise ValueError(
            f"refusing to save a policy whose weights hold NaN or inf ({bad[:3]}): its "
            "training diverged"
        )
    weights_path = directory / WEIGHTS_FILE
    weights = save_safetensors(state, metadata={"format": tag})
    atomic_write_bytes(weights_path, weights)
    layout = policy.layout
    config = {
        "format": tag,
        "policy_class": name,
        "policy_module": cls.__module__,
        "hint_envs_version": hint_envs.__version__,
        "torch_version": torch.__version__,
        "env_id": policy.env_id,
        "env_kwargs": policy.env_kwargs,
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
    if not isinstance(data, dict) or not isinstance(data.get("format"), str):
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise ValueError(
            f"{path} has format {got!r}, expected a policy format tag such as "
            f"'policies.DDPMChunkingPolicy/1'; known: {sorted(_REGISTRY)}"
        )
    return data


def load_policy(
    directory: str | os.PathLike, env: Any = None, device: str | torch.device = "cpu"
) -> Any:
    """Load a policy written by :func:`save_policy`, as the class its format names.

    Args:
        directory: the saved policy's directory.
        env: optional env (or VecEnv) the policy will act in; its observation and action
            space shapes must match the saved ones.
        device: torch device to put the policy on (``"auto"``: CUDA if available).

    Returns:
        the policy (a :class:`~policies.ddpm.DDPMChunkingPolicy`,
        :class:`~policies.baselines.MLPBCPolicy` or
        :class:`~policies.baselines.DiffusionBCPolicy`) in eval mode; a DDPM policy's
        sampling generator is seeded with 0 (call ``seed``).

    Raises:
        FileNotFoundError: missing directory or files.
        ValueError: corrupt files (bad JSON, checksum mismatch, unreadable safetensors,
            missing or unexpected tensors), a format tag of no known policy class, an
            ``env`` whose spaces do not match, or a ``device`` this machine does not have
            (checked before anything is read).
    """
    device = check_device(device)
    directory = Path(directory)
    data = _read_config(directory)
    policy_class = _class_for(_current_tag(data["format"]), directory / CONFIG_FILE)
    name = policy_class.__name__
    if data.get("policy_class", name) != name:
        raise ValueError(
            f"{directory / CONFIG_FILE} names policy class {data['policy_class']!r} but has "
            f"the format of a {name}; the file is corrupt"
        )
    try:
        config = policy_class.config_class.from_dict(data["policy_config"])
        stats = NormalizationStats.from_dict(data["stats"])
        observation_space = _box_from_dict(data["observation_space"])
        action_space = _box_from_dict(data["action_space"])
        weights_info = data["weights"]
        layout_data = data.get("layout")
    except ResourceError:
        raise  # its own message: the estimate and the limit
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{directory / CONFIG_FILE} is incomplete or invalid ({type(error).__name__}: "
            f"{error}); the file is corrupt or from an incompatible version"
        ) from None
    where = directory / CONFIG_FILE
    env_id = data.get("env_id")
    if env_id is not None:
        env_id = check_file_env_id(env_id, f"{where}: env_id")
    env_kwargs = data.get("env_kwargs") or {}
    if not isinstance(env_kwargs, dict) or not all(isinstance(k, str) for k in env_kwargs):
        raise ValueError(f"{where}: env_kwargs must be a JSON object, got {env_kwargs!r}")
    if env is not None:
        check_policy_spaces(env, observation_space, action_space)
    layout = None
    if layout_data is not None:
        try:
            layout = CompositeActionLayout(
                _count(layout_data["d_u"]),
                _count(layout_data["d_x"]),
                config.chunk_length,
                check_flag("layout.gains", layout_data["gains"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: layout is invalid ({error}); the file is corrupt") from None
    name = weights_info.get("file", WEIGHTS_FILE) if isinstance(weights_info, dict) else None
    if not isinstance(name, str) or name in ("", ".", "..") or Path(name).name != name:
        raise ValueError(
            f"{where}: weights.file must be the name of a file inside the policy folder "
            f"(such as {WEIGHTS_FILE!r}), got {name!r}"
        )
    weights_path = directory / name
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
    bad = _not_finite(state)
    if bad:
        raise ValueError(f"{weights_path} holds NaN or inf in {bad[:3]}: not a usable policy")
    try:
        policy = policy_class(
            observation_space,
            action_space,
            config,
            stats,
            env_id=env_id,
            layout=layout,
            env_kwargs=env_kwargs,
        )
    except (TypeError, RuntimeError, IndexError) as error:  # ValueError passes as it is
        raise ValueError(
            f"{where} does not describe a policy that can be built ({type(error).__name__}: "
            f"{error}); the file is corrupt or from an incompatible version"
        ) from None
    expected = set(policy.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"{weights_path} does not fit the saved config: missing tensors {missing[:5]}, "
            f"unexpected tensors {unexpected[:5]}"
        )
    for key in NORMALIZER_BUFFERS:  # the stats the config shows are the ones the weights use
        if key in state and not torch.equal(state[key].to(torch.float64), policy.state_dict()[key]):
            raise ValueError(
                f"{where}: the normaliser statistics ('stats') disagree with the weights' "
                f"{key!r} buffer; the files were edited or mixed from two saves"
            )
    try:
        policy.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{weights_path} does not fit the saved config: {error}") from None
    policy.to(device)
    policy.set_training_mode(False)
    return policy
