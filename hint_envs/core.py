"""The control-environment contract and the composite-action layout.

A *control environment* is a Gymnasium environment whose action is the raw input
``u_t`` and which names, through the attribute ``control_indices``, the part of its
flat observation that primitive controllers feed back on: ``x_t = obs[control_indices]``.
It can also be put into an exact simulator state with ``reset(options={"state": s})``
and reports its current simulator state through ``get_state()``.

A *primitive controller* is the affine feedback law ``u = u_bar + K (x - x_bar)``.
A *composite action* is ``chunk_length`` primitive controllers laid out flat, per
controller ``k``::

    [ u_bar_k (d_u) | x_bar_k (d_x) | K_k row-major (d_u * d_x) ]

concatenated over ``k``. With ``gains=False`` a composite action is just the
``chunk_length`` raw inputs ``u_bar_k`` (the "no gains" baseline of the HINT paper's
Fig. 5). :class:`CompositeActionLayout` is the one place that packs and unpacks it.

A :class:`Demonstration` is one expert episode (with its synthesised
:class:`Primitives`, once synthesis ran): the record experts produce, synthesis
annotates and :mod:`hint_envs.data` stores.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import numbers
from dataclasses import dataclass, field
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np

#: a frozen dataclass of task constants (``QuadrotorParams``, ``BifurcationParams``, ...)
_P = TypeVar("_P")

__all__ = [
    "Primitives",
    "Demonstration",
    "CompositeActionLayout",
    "DEFAULT_GAIN_BOUND",
    "EnvBounds",
    "composite_action_bounds",
    "control_law",
    "get_control_indices",
    "is_control_env",
    "check_action",
    "check_state",
    "check_state_bounds",
    "check_flag",
    "check_noise_level",
    "check_noise_law",
    "check_file_env_id",
    "EpisodeGuard",
    "NOISE_LAWS",
    "check_policy_spaces",
    "check_render_args",
    "STATE_OPTION",
    "stored_params",
]

#: Key of the ``reset`` option that puts a control environment into an exact state.
STATE_OPTION = "state"
#: Bound ``R`` on every gain entry of a composite action, unless a wrapper is told otherwise.
DEFAULT_GAIN_BOUND = 1e3


@dataclass
class Primitives:
    """A sequence of primitive controllers ``u = u_bar + K (x - x_bar)``.

    Attributes:
        u_bar: ``(..., T, d_u)`` nominal inputs.
        x_bar: ``(..., T, d_x)`` nominal control states.
        K: ``(..., T, d_u, d_x)`` feedback gains (an LQR gain enters as ``K = -K_lqr``).
    """

    u_bar: np.ndarray
    x_bar: np.ndarray
    K: np.ndarray

    def __post_init__(self) -> None:
        self.u_bar = np.asarray(self.u_bar, dtype=np.float64)
        self.x_bar = np.asarray(self.x_bar, dtype=np.float64)
        self.K = np.asarray(self.K, dtype=np.float64)
        d_u, d_x = self.u_bar.shape[-1], self.x_bar.shape[-1]
        if self.K.shape[-2:] != (d_u, d_x) or self.K.shape[:-2] != self.u_bar.shape[:-1]:
            raise ValueError(
                f"inconsistent primitive shapes: u_bar {self.u_bar.shape}, "
                f"x_bar {self.x_bar.shape}, K {self.K.shape}; expected K of shape "
                f"{self.u_bar.shape[:-1] + (d_u, d_x)}"
            )
        if self.x_bar.shape[:-1] != self.u_bar.shape[:-1]:
            raise ValueError(
                f"u_bar {self.u_bar.shape} and x_bar {self.x_bar.shape} differ in leading shape"
            )

    def __len__(self) -> int:
        return self.u_bar.shape[-2]

    def __getitem__(self, index: Any) -> Primitives:
        """Slice along the time axis (the last batch axis)."""
        return Primitives(
            self.u_bar[..., index, :], self.x_bar[..., index, :], self.K[..., index, :, :]
        )

    def __call__(self, x: np.ndarray, t: int) -> np.ndarray:
        """Evaluate controller ``t`` at control state ``x``: returns ``(..., d_u)``."""
        return control_law(self.u_bar[..., t, :], self.x_bar[..., t, :], self.K[..., t, :, :], x)


@dataclass
class Demonstration:
    """One expert episode, in the arrays that robomimic's HDF5 layout stores.

    ``T`` is the number of steps taken. Observation ``t`` is what the policy saw before
    input ``t``; ``states[t]`` is the exact simulator state at that moment, so
    ``env.reset(options={"state": states[t]})`` restores it.

    Attributes:
        observations: ``(T, d_obs)`` flat observations o_0 .. o_{T-1}.
        actions: ``(T, d_u)`` raw inputs u_0 .. u_{T-1} as applied (after clipping).
        rewards: ``(T,)``.
        dones: ``(T,)`` 1 at the final step, else 0 (robomimic's convention).
        states: ``(T, d_state)`` simulator states s_0 .. s_{T-1}.
        final_observation: ``(d_obs,)`` o_T, after the last input.
        final_state: ``(d_state,)`` s_T.
        primitives: synthesised controllers along the demonstration (``T`` of them,
            consistent: ``primitives(x_t, t) == actions[t]``), or None before synthesis.
        attrs: metadata: ``seed`` (int), ``mode`` (str, e.g. "left"/"right"),
            ``success`` (bool), and anything expert-specific (JSON-serialisable).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray
    final_observation: np.ndarray
    final_state: np.ndarray
    primitives: Primitives | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        T = len(self.actions)
        for name in ("observations", "rewards", "dones", "states"):
            if len(getattr(self, name)) != T:
                raise ValueError(
                    f"demonstration arrays disagree in length: actions has {T} steps, "
                    f"{name} has {len(getattr(self, name))}"
                )
        if self.primitives is not None and len(self.primitives) != T:
            raise ValueError(f"{len(self.primitives)} primitives for {T} steps")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def success(self) -> bool:
        return bool(self.attrs.get("success", False))


def control_law(u_bar: np.ndarray, x_bar: np.ndarray, K: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Return ``u = u_bar + K (x - x_bar)``, batched over leading axes.

    Args:
        u_bar: ``(..., d_u)``; x_bar: ``(..., d_x)``; K: ``(..., d_u, d_x)``; x: ``(..., d_x)``.
    """
    return u_bar + np.einsum("...ij,...j->...i", K, x - x_bar)


@dataclass(frozen=True)
class CompositeActionLayout:
    """Flat layout of ``chunk_length`` primitive controllers (see the module docstring).

    Args:
        d_u: input dimension.
        d_x: control-state dimension (``len(control_indices)``).
        chunk_length: number of controllers per composite action (tau_chunk).
        gains: if False, a composite action holds only the nominal inputs ``u_bar``.
    """

    d_u: int
    d_x: int
    chunk_length: int
    gains: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "gains", check_flag("gains", self.gains))
        for name in ("d_u", "d_x", "chunk_length"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")

    @classmethod
    def infer(
        cls, controller_size: int, d_x: int, chunk_length: int, gains: bool = True
    ) -> CompositeActionLayout:
        """The layout whose controllers have ``controller_size`` floats for ``d_x`` states.

        The inverse of :attr:`controller_size`: with gains ``controller_size = d_u + d_x +
        d_u d_x``, so ``d_u = (controller_size - d_x) / (1 + d_x)``; without,
        ``d_u = controller_size``. Used where only sizes are known (a policy saved without
        its layout, normalisation statistics).

        Returns:
            the layout.

        Raises:
            ValueError: no integer ``d_u >= 1`` fits.
        """
        if not gains:
            return cls(controller_size, d_x, chunk_length, gains=False)
        d_u, rest = divmod(controller_size - d_x, 1 + d_x)
        if rest or d_u < 1:
            raise ValueError(
                f"controllers of {controller_size} floats do not fit control states of size "
                f"{d_x} with gains (size = d_u + d_x + d_u * d_x); check control_indices"
            )
        return cls(d_u, d_x, chunk_length, gains=True)

    @property
    def controller_size(self) -> int:
        """Number of floats per primitive controller."""
        return self.d_u + self.d_x + self.d_u * self.d_x if self.gains else self.d_u

    @property
    def size(self) -> int:
        """Number of floats in one composite action."""
        return self.chunk_length * self.controller_size

    def pack(self, primitives: Primitives) -> np.ndarray:
        """Pack ``(..., chunk_length)`` controllers into ``(..., size)`` floats."""
        if primitives.u_bar.shape[-2:] != (self.chunk_length, self.d_u):
            raise ValueError(
                f"expected u_bar of shape (..., {self.chunk_length}, {self.d_u}), "
                f"got {primitives.u_bar.shape}"
            )
        if not self.gains:
            return primitives.u_bar.reshape(primitives.u_bar.shape[:-2] + (self.size,))
        if primitives.x_bar.shape[-1] != self.d_x:
            raise ValueError(
                f"expected x_bar with last axis {self.d_x}, got {primitives.x_bar.shape}"
            )
        lead = primitives.u_bar.shape[:-1]
        per = np.concatenate(
            [
                primitives.u_bar,
                primitives.x_bar,
                primitives.K.reshape(lead + (self.d_u * self.d_x,)),
            ],
            axis=-1,
        )
        return per.reshape(per.shape[:-2] + (self.size,))

    def unpack(self, flat: np.ndarray) -> Primitives:
        """Unpack ``(..., size)`` floats into ``(..., chunk_length)`` controllers.

        With ``gains=False`` the gains are zero and ``x_bar`` is zero, so the control law
        reduces to ``u = u_bar``.
        """
        flat = np.asarray(flat, dtype=np.float64)
        if flat.shape[-1:] != (self.size,):
            raise ValueError(
                f"composite action must have last axis {self.size} "
                f"({self.chunk_length} controllers x {self.controller_size} floats), "
                f"got shape {flat.shape}"
            )
        per = flat.reshape(flat.shape[:-1] + (self.chunk_length, self.controller_size))
        lead = per.shape[:-1]
        u_bar = per[..., : self.d_u]
        if not self.gains:
            return Primitives(
                u_bar, np.zeros(lead + (self.d_x,)), np.zeros(lead + (self.d_u, self.d_x))
            )
        x_bar = per[..., self.d_u : self.d_u + self.d_x]
        K = per[..., self.d_u + self.d_x :].reshape(lead + (self.d_u, self.d_x))
        return Primitives(u_bar, x_bar, K)


def composite_action_bounds(
    layout: CompositeActionLayout,
    input_low: np.ndarray,
    input_high: np.ndarray,
    state_low: np.ndarray,
    state_high: np.ndarray,
    gain_bound: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of a flat composite action, ``(low, high)`` each of shape ``(layout.size,)``.

    Per controller: ``u_bar`` in the input bounds ``(d_u,)``, ``x_bar`` in the control-state
    bounds ``(d_x,)`` and every gain entry in ``[-gain_bound, gain_bound]``; with
    ``layout.gains=False`` only the ``u_bar`` part. The one definition of the chunk-level
    action bounds: ``PrimitiveControllerWrapper`` builds its action space with it, and
    :meth:`EnvBounds.chunk_spaces` (what training uses, from a demonstration file's
    bounds) too.
    """
    if layout.gains:
        n_gain = layout.d_u * layout.d_x
        low = np.concatenate([input_low, state_low, np.full(n_gain, -gain_bound)])
        high = np.concatenate([input_high, state_high, np.full(n_gain, gain_bound)])
    else:
        low, high = np.asarray(input_low), np.asarray(input_high)
    return (
        np.tile(low.astype(np.float64), layout.chunk_length),
        np.tile(high.astype(np.float64), layout.chunk_length),
    )


@dataclass(frozen=True, eq=False)
class EnvBounds:
    """The bounds of a control environment that its chunk-level spaces are built from.

    What a demonstration file stores at collection (``docs/data.md``), so that training
    builds the policy's observation and action Boxes — and so the clipping of its sampled
    actions — without making the environment.

    Attributes:
        action_low, action_high: ``(d_u,)`` the raw input bounds (the env's action space).
        observation_low, observation_high: ``(d_obs,)`` the observation space's bounds.
        control_indices: ``(d_x,)`` the env's ``control_indices``; the control-state bounds
            are the observation bounds there (:attr:`state_low`, :attr:`state_high`).

    Raises:
        ValueError: arrays that are not 1-D, lows and highs of different shapes, a low above
            its high (or NaN), or indices outside the observation.
    """

    action_low: np.ndarray
    action_high: np.ndarray
    observation_low: np.ndarray
    observation_high: np.ndarray
    control_indices: np.ndarray

    def __post_init__(self) -> None:
        for name in ("action_low", "action_high", "observation_low", "observation_high"):
            value = _numeric_array(getattr(self, name), name)
            if value.ndim != 1 or value.size == 0:
                raise ValueError(f"{name} must be a non-empty 1-D array, got shape {value.shape}")
            object.__setattr__(self, name, value)
        for kind in ("action", "observation"):
            low, high = getattr(self, f"{kind}_low"), getattr(self, f"{kind}_high")
            if low.shape != high.shape:
                raise ValueError(
                    f"{kind}_low {low.shape} and {kind}_high {high.shape} differ in shape"
                )
            if not np.all(low <= high):  # also rejects NaN
                raise ValueError(f"{kind}_low must be <= {kind}_high, got {low} and {high}")
        indices = np.asarray(self.control_indices)
        if (
            indices.ndim != 1
            or indices.size == 0
            or indices.dtype.kind not in "iu"
            or np.any(indices < 0)
            or np.any(indices >= self.observation_low.size)
        ):
            raise ValueError(
                f"control_indices must be a non-empty 1-D array of integers indexing an "
                f"observation of size {self.observation_low.size}, got {indices!r}"
            )
        object.__setattr__(self, "control_indices", indices.astype(np.int64))

    @classmethod
    def from_env(cls, env: gym.Env) -> EnvBounds:
        """The bounds of a control environment with flat Box spaces (through wrappers).

        Raises:
            TypeError: ``env`` is not a control environment, or its spaces are not Boxes.
        """
        indices = get_control_indices(env)
        obs_space, act_space = env.observation_space, env.action_space
        if not isinstance(obs_space, gym.spaces.Box) or not isinstance(act_space, gym.spaces.Box):
            raise TypeError(
                f"{env} must have Box observation and action spaces, got {obs_space} and "
                f"{act_space}"
            )
        return cls(act_space.low, act_space.high, obs_space.low, obs_space.high, indices)

    @property
    def d_u(self) -> int:
        """Input dimension."""
        return self.action_low.size

    @property
    def d_obs(self) -> int:
        """Observation dimension."""
        return self.observation_low.size

    @property
    def d_x(self) -> int:
        """Control-state dimension."""
        return self.control_indices.size

    @property
    def state_low(self) -> np.ndarray:
        """``(d_x,)`` lower bounds of the control state ``obs[control_indices]``."""
        return self.observation_low[self.control_indices]

    @property
    def state_high(self) -> np.ndarray:
        """``(d_x,)`` upper bounds of the control state."""
        return self.observation_high[self.control_indices]

    def equals(self, other: EnvBounds) -> bool:
        """Whether ``other`` holds the same bounds and indices (every entry, inf included)."""
        return all(
            np.array_equal(getattr(self, name), getattr(other, name))
            for name in (
                "action_low",
                "action_high",
                "observation_low",
                "observation_high",
                "control_indices",
            )
        )

    def chunk_spaces(
        self,
        chunk_length: int,
        obs_horizon: int,
        gains: bool = True,
        gain_bound: float = DEFAULT_GAIN_BOUND,
    ) -> tuple[gym.spaces.Box, gym.spaces.Box]:
        """The observation and action spaces of the chunk-level environment.

        The Boxes ``PrimitiveControllerWrapper(env, chunk_length, obs_horizon, gains,
        gain_bound)`` has (float64): observation ``(obs_horizon, d_obs)``, the observation
        bounds tiled; action ``(chunk_length * controller_size,)`` from
        :func:`composite_action_bounds`.
        """
        layout = CompositeActionLayout(self.d_u, self.d_x, int(chunk_length), gains)
        low, high = composite_action_bounds(
            layout, self.action_low, self.action_high, self.state_low, self.state_high, gain_bound
        )
        observation = gym.spaces.Box(
            np.tile(self.observation_low, (obs_horizon, 1)),
            np.tile(self.observation_high, (obs_horizon, 1)),
            dtype=np.float64,
        )
        return observation, gym.spaces.Box(low, high, dtype=np.float64)


def get_control_indices(env: gym.Env) -> np.ndarray:
    """Return ``env``'s ``control_indices`` (looked up through wrappers).

    Raises:
        TypeError: if ``env`` is not a control environment.
    """
    try:
        indices = env.get_wrapper_attr("control_indices")
    except AttributeError:
        indices = None
    if indices is None:
        raise TypeError(
            f"{env} is not a control environment: it has no `control_indices` attribute naming "
            "the part of its observation that primitive controllers feed back on "
            "(see hint_envs.core)"
        )
    return np.asarray(indices, dtype=np.int64)


def is_control_env(env: gym.Env) -> bool:
    """Whether ``env`` (or an env it wraps) declares ``control_indices``."""
    try:
        get_control_indices(env)
    except TypeError:
        return False
    return True


def _numeric_array(value: Any, what: str) -> np.ndarray:
    """``value`` as a float64 array if it holds numbers (bool, int or float), else TypeError:
    ``np.asarray(["0", "0"], dtype=float)`` would quietly read strings as numbers."""
    try:
        raw = np.asarray(value)
    except ValueError as error:  # ragged nesting
        raise ValueError(f"{what} must be an array of numbers: {error}") from None
    if raw.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers, got {raw.dtype} values: {value!r}")
    return raw.astype(np.float64, copy=False)


def check_action(action: Any, space: gym.spaces.Box, what: str = "action") -> np.ndarray:
    """Validate an action against a Box's shape and finiteness; return it as float64.

    Raises:
        TypeError: not numbers (strings, objects), which numpy would otherwise convert.
        ValueError: wrong shape, or NaN/inf entries (values out of bounds are allowed:
            environments clip them, and document that they do).
    """
    array = _numeric_array(action, what)
    if array.shape != space.shape:
        raise ValueError(f"{what} must have shape {space.shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        bad = np.argwhere(~np.isfinite(array)).ravel().tolist()
        raise ValueError(f"{what} contains NaN or inf at index {bad}: {array}")
    return array


def check_state(state: Any, dim: int, layout: str) -> np.ndarray:
    """Validate an exact state for ``reset(options={"state": ...})``; return a float64 copy.

    Args:
        state: the state given.
        dim: its length.
        layout: what its entries are, for the error message (e.g. ``"(x, z, theta)"``).

    Raises:
        ValueError: not of shape ``(dim,)``, or NaN/inf entries.
    """
    array = _numeric_array(state, f"options['{STATE_OPTION}']").copy()
    if array.shape != (dim,):
        raise ValueError(
            f"options['{STATE_OPTION}'] must have shape ({dim},) = {layout}, "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"options['{STATE_OPTION}'] must be finite, got {array}")
    return array


def check_render_args(
    render_mode: str | None, render_modes: list[str], render_size: int | None = None
) -> None:
    """Validate an environment's ``render_mode`` (and ``render_size`` in pixels, if any).

    Raises:
        ValueError: a render mode not in ``render_modes`` (None is allowed), or a size that
            is not an integer >= 8.
    """
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be one of {render_modes} or None, got {render_mode!r}")
    if render_size is not None and (
        isinstance(render_size, bool) or not isinstance(render_size, int) or render_size < 8
    ):
        raise ValueError(f"render_size must be an integer >= 8 (pixels), got {render_size!r}")


def check_state_bounds(
    state: np.ndarray, low: np.ndarray, high: np.ndarray, fields: Any, why: str
) -> None:
    """Require every entry of an exact state (or of the observation it gives) in bounds.

    Args:
        state: ``(dim,)`` values to check.
        low: ``(dim,)`` lower bounds.
        high: ``(dim,)`` upper bounds.
        fields: ``dim`` names of the entries, for the error message.
        why: what the bounds are, e.g. ``"the observation space"``.

    Raises:
        ValueError: naming every entry outside ``[low, high]``, its value and its bounds.
    """
    low = np.broadcast_to(np.asarray(low, dtype=np.float64), state.shape)
    high = np.broadcast_to(np.asarray(high, dtype=np.float64), state.shape)
    bad = np.flatnonzero((state < low) | (state > high))
    if bad.size:
        names = list(fields)
        offending = ", ".join(
            f"{names[i]}={state[i]:.6g} not in [{low[i]:.6g}, {high[i]:.6g}]" for i in bad
        )
        raise ValueError(f"options['{STATE_OPTION}'] is outside {why}: {offending}")


def check_flag(name: str, value: Any) -> bool:
    """Require a real bool (``numpy.bool_`` too); returns it as a Python bool.

    Raises:
        TypeError: anything else, e.g. the string ``"False"`` (which ``bool()`` makes True).
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_noise_level(value: Any, name: str = "sigma") -> float:
    """Require a noise level: a real number (not a bool or a string), finite, ``>= 0``.

    Returns:
        it as a float.

    Raises:
        TypeError: not a real number (``"0.1"``, ``True``, None, an array).
        ValueError: NaN, inf or negative.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a real number >= 0 (noise level in normalised units), got "
            f"{value!r} ({type(value).__name__})"
        )
    number = float(value)
    if not np.isfinite(number) or number < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


#: The laws replica / data noise ``eps`` can be drawn from, per normalised dimension:
#: ``"gaussian"`` N(0, 1) (the HINT paper's text; the default), ``"uniform"`` U[0, 1) (the
#: authors' code: mean 1/2, std 1/sqrt(12)), ``"uniform_centered"`` U[-1/2, 1/2) (the same
#: spread as ``"uniform"`` without its bias: the control that separates the two).
NOISE_LAWS = ("gaussian", "uniform", "uniform_centered")


def check_noise_law(value: Any, name: str = "noise_law") -> str:
    """Require one of :data:`NOISE_LAWS` (a string); returns it.

    Raises:
        ValueError: anything else, naming the laws.
    """
    if not isinstance(value, str) or value not in NOISE_LAWS:
        raise ValueError(f"{name} must be one of {list(NOISE_LAWS)}, got {value!r}")
    return value


class EpisodeGuard:
    """What every control environment does around ``step``, as Gymnasium's own envs do.

    ``step`` before the first ``reset`` raises ``gymnasium.error.ResetNeeded`` and after
    ``close`` ``gymnasium.error.ClosedEnvironmentError`` (instead of an ``AttributeError``
    from inside the simulator); a ``step`` after the episode terminated warns once, in
    CartPole's words, and goes on (Gymnasium leaves such steps undefined).
    """

    def __init__(self, name: str):
        self.name = name
        self.phase = "new"  # new | running | terminated | closed
        self._warned = False

    def reset(self) -> None:
        """Call at the end of ``reset``."""
        self.phase, self._warned = "running", False

    def before_step(self) -> None:
        """Call first thing in ``step``."""
        if self.phase == "new":
            raise gym.error.ResetNeeded(f"{self.name}: call reset() before step()")
        if self.phase == "closed":
            raise gym.error.ClosedEnvironmentError(
                f"{self.name} was closed; make a new environment to step"
            )
        if self.phase == "terminated" and not self._warned:
            self._warned = True
            logging.getLogger("hint_envs").warning(
                "%s: You are calling 'step()' even though this environment has already "
                "returned terminated = True. You should always call 'reset()' once you "
                "receive 'terminated = True' -- any further steps are undefined behavior.",
                self.name,
            )

    def after_step(self, terminated: bool) -> None:
        """Call with the step's ``terminated``."""
        if terminated:
            self.phase = "terminated"

    def close(self) -> None:
        """Call in ``close``."""
        self.phase = "closed"


def check_file_env_id(value: Any, source: str) -> str:
    """Require an env id read from a file (a policy's ``config.json``, a demonstration
    file's ``env_args``): a registered ``hint_envs/`` id with no ``module:`` part.

    ``gym.make("pkg:Name-v0")`` imports ``pkg``, so an id taken from a file someone else
    wrote could run code; ids from files are therefore data, checked against gymnasium's
    registry as it is. To use another environment, pass it explicitly (``evaluate(policy,
    env_id=...)``), never through a file.

    Args:
        value: the id as read.
        source: what it was read from, for the message (e.g. the file and field).

    Returns:
        the id.

    Raises:
        ValueError: anything else, naming ``source`` and the value.
    """
    import hint_envs  # noqa: F401  (registers the ids)

    if not isinstance(value, str):
        raise ValueError(f"{source}: the env id must be a string, got {value!r}")
    if ":" in value or not value.startswith("hint_envs/") or value not in gym.registry:
        known = sorted(i for i in gym.registry if i.startswith("hint_envs/"))
        raise ValueError(
            f"{source}: env id {value!r} is not a registered hint_envs id (ids read from "
            f"files may not name a module to import); known: {known}"
        )
    return value


def check_policy_spaces(
    env: Any, observation_space: gym.spaces.Space, action_space: gym.spaces.Space
) -> None:
    """Require ``env``'s spaces to have the shapes of a policy's ``observation_space`` and
    ``action_space`` (the chunk-level env's: ``(obs_horizon, d_obs)`` and composite actions).

    Used before a policy acts on an environment (``policies.load_policy(dir, env=...)``,
    :func:`hint_envs.evaluation.evaluate`), so a policy trained for another environment or
    other chunk settings fails here rather than inside its network.

    Raises:
        TypeError: ``env`` has no observation or action space.
        ValueError: a shape differs (the message gives both).
    """
    env_obs = getattr(env, "observation_space", None)
    env_act = getattr(env, "action_space", None)
    if env_obs is None or env_act is None:
        raise TypeError(f"env must have observation_space and action_space, got {env!r}")
    if tuple(env_obs.shape) != tuple(observation_space.shape):
        raise ValueError(
            f"the env's observation space has shape {tuple(env_obs.shape)} but the policy was "
            f"trained on observations of shape {tuple(observation_space.shape)} "
            "(obs_horizon, d_obs): use the env id, env kwargs and obs_horizon the policy was "
            "trained with (wrap a control env in PrimitiveControllerWrapper with the policy's "
            "obs_horizon)"
        )
    if tuple(env_act.shape) != tuple(action_space.shape):
        raise ValueError(
            f"the env's action space has shape {tuple(env_act.shape)} but the policy outputs "
            f"composite actions of shape {tuple(action_space.shape)}: use the env id, "
            "chunk_length and gains setting the policy was trained with (wrap a control env in "
            "PrimitiveControllerWrapper with the policy's chunk_length and gains)"
        )


def stored_params(attrs: dict[str, Any], params_class: type[_P], key: str = "params") -> _P:
    """The task constants a demonstration stored in ``attrs[key]``, as ``params_class``.

    ``attrs[key]`` may be a ``params_class``, a dict of its fields, or that dict as a JSON
    string (what the experts store, since HDF5 attributes hold strings but not dicts); lists
    become tuples. Absent means ``params_class()``, the defaults.

    Raises:
        TypeError: ``attrs[key]`` is of another type.
        ValueError: it names fields ``params_class`` does not have, or values it rejects.
    """
    stored = attrs.get(key)
    if stored is None:
        return params_class()
    if isinstance(stored, params_class):
        return stored
    if isinstance(stored, bytes):
        stored = stored.decode()
    if isinstance(stored, str):
        stored = json.loads(stored)
    name = params_class.__name__
    if not isinstance(stored, dict):
        raise TypeError(
            f"demo.attrs[{key!r}] must be a {name}, a dict of its fields or that dict as JSON, "
            f"got {type(stored).__name__}"
        )
    names = {f.name for f in dataclasses.fields(params_class)}
    unknown = set(stored) - names
    if unknown:
        raise ValueError(
            f"demo.attrs[{key!r}] has unknown fields {sorted(unknown)}; {name} has {sorted(names)}"
        )
    return params_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
