"""Scalar linear system ``x_{t+1} = a x_t + b u_t + w_t``: the theory's compounding-error example.

*Provable Guarantees for Generative Behavior Cloning* (Block et al., 2023, arXiv
2307.14619) explains why imitation errors compound, and why feedback stops them, on the
simplest system there is: one state, one input,

    x_{t+1} = a x_t + b u_t + w_t,    w_t ~ N(0, noise_std^2).

- **Contractive, a = 0.9.** The expert is ``pi*(x) = 0`` and the system forgets input
  errors on its own: an imitator whose inputs are off by at most ``delta`` at every step
  stays within ``|b| delta / (1 - |a|)`` of the expert, whatever the horizon.
- **Unstable, a = 2.** Open loop, an input error at step ``t`` is amplified like
  ``2^(T - t)``, so imitating the expert's *inputs* (the "no gains" baseline) drifts away
  exponentially. Imitating the expert's *feedback* ``u = u_bar + K (x - x_bar)`` with a
  stabilising gain (``|a + b K| < 1``) keeps the gap between imitator and expert bounded:
  the role of HINT's primitive controllers.

Dynamics are the pure functions :func:`step` and :func:`jacobians` over a frozen
:class:`ScalarLinearParams`; :class:`ScalarLinearEnv` is a thin Gymnasium shell around them.

Spaces: the action is the raw input ``u``, ``Box([-action_limit], [action_limit], (1,),
float64)`` (inputs beyond it are clipped); the observation is the state ``x``,
``Box((1,), float64)`` with the finite bound :func:`observation_limit`. Reward
``-x_{t+1}^2``. The episode terminates when ``|x_{t+1}| > state_limit`` (the state has
blown up; not a success) and is truncated after 50 steps (the registration's
``max_episode_steps``). ``info["is_success"]`` is ``|x_{t+1}| <= success_tolerance``, so an
episode succeeds if its final state lies within the tolerance.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hint_envs.core import (
    STATE_OPTION,
    EpisodeGuard,
    check_action,
    check_render_args,
    check_state,
    check_state_bounds,
)

__all__ = [
    "NOISE_MARGIN",
    "ScalarLinearEnv",
    "ScalarLinearParams",
    "ScalarLinearRenderer",
    "jacobians",
    "observation_limit",
    "step",
]

logger = logging.getLogger(__name__)

#: State layout: the scalar x.
STATE_DIM = 1
#: Input layout: the scalar u.
INPUT_DIM = 1
#: Standard deviations of process noise the observation bound leaves room for (see
#: :func:`observation_limit`).
NOISE_MARGIN = 10.0


@dataclass(frozen=True)
class ScalarLinearParams:
    """Constants of the scalar linear system ``x' = a x + b u + w``, ``w ~ N(0, noise_std^2)``.

    Attributes:
        a: the state coefficient (``|a| < 1`` contractive, ``|a| > 1`` unstable).
        b: the input coefficient, non-zero (so the system is controllable).
        noise_std: standard deviation of the process noise ``w``, ``>= 0``.
        initial_scale: start states are uniform in ``[-initial_scale, initial_scale]``,
            ``>= 0``.
        state_limit: the episode terminates once ``|x| > state_limit``, ``> 0``.
        action_limit: inputs are clipped to ``[-action_limit, action_limit]``, ``> 0``.
        success_tolerance: a state with ``|x| <= success_tolerance`` is a success, ``>= 0``.

    Raises:
        TypeError: a field that is not a real number (a string, a bool, None).
        ValueError: a NaN or infinite field, ``b == 0``, a negative ``noise_std``,
            ``initial_scale`` or ``success_tolerance``, a non-positive ``state_limit`` or
            ``action_limit``, or limits so large that the observation bound or the reward
            would overflow.
    """

    a: float = 0.9
    b: float = 1.0
    noise_std: float = 0.0
    initial_scale: float = 1.0
    state_limit: float = 1e6
    action_limit: float = 1e6
    success_tolerance: float = 0.1

    def __post_init__(self) -> None:
        for name in ("a", "b", "noise_std", "initial_scale", "state_limit", "action_limit"):
            self._check_real(name)
        self._check_real("success_tolerance")
        if self.b == 0.0:
            raise ValueError("b must be non-zero (with b = 0 the input has no effect), got 0")
        for name in ("noise_std", "initial_scale", "success_tolerance"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        for name in ("state_limit", "action_limit"):
            if getattr(self, name) <= 0.0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        bound = observation_limit(self)
        if not np.isfinite(bound * bound):
            raise ValueError(
                f"state_limit={self.state_limit!r} and action_limit={self.action_limit!r} are "
                f"too large for a={self.a!r}, b={self.b!r}: the observation bound "
                f"|a| state_limit + |b| action_limit + {NOISE_MARGIN:g} noise_std = {bound:.3g} "
                "or the reward -x^2 would overflow float64; lower them"
            )

    def _check_real(self, name: str) -> None:
        value = getattr(self, name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__})")
        if not np.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value!r}")
        object.__setattr__(self, name, float(value))


def step(x: Any, u: Any, params: ScalarLinearParams, w: Any = 0.0) -> np.ndarray:
    """One step of the dynamics, ``a x + b u + w``, batched over leading axes.

    The input is used as given (no clipping: the environment clips to its action space
    before calling this).

    Args:
        x: ``(..., 1)`` states.
        u: ``(..., 1)`` inputs.
        params: the system's constants.
        w: process noise, ``(..., 1)`` or a scalar (default 0: the noiseless step).

    Returns:
        next states ``(..., 1)`` (the broadcast shape of ``x``, ``u`` and ``w``), float64.
    """
    x = np.asarray(x, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    return params.a * x + params.b * u + w


def jacobians(params: ScalarLinearParams) -> tuple[np.ndarray, np.ndarray]:
    """The (constant) Jacobians of :func:`step`.

    Returns:
        ``A = dx'/dx = [[a]]`` of shape ``(1, 1)`` and ``B = dx'/du = [[b]]`` of shape
        ``(1, 1)``.
    """
    return np.array([[params.a]]), np.array([[params.b]])


def observation_limit(params: ScalarLinearParams) -> float:
    """Finite bound of the observation space, ``|a| state_limit + |b| action_limit + 10 noise_std``.

    An episode continues only while ``|x| <= state_limit`` and inputs are clipped to
    ``action_limit``, so a state reached from a running episode lies within this bound
    unless the noise exceeds :data:`NOISE_MARGIN` standard deviations (probability below
    1e-22 a step); the environment clips the state to the bound in that case, so every
    observation it emits lies in the space.
    """
    return (
        abs(params.a) * params.state_limit
        + abs(params.b) * params.action_limit
        + NOISE_MARGIN * params.noise_std
    )


# ---------------------------------------------------------------------------------------
# Rendering: a number line painted with numpy only.

_COLORS = {
    "background": (255, 255, 255),
    "axis": (90, 90, 104),
    "tolerance": (196, 232, 204),
    "origin": (28, 44, 110),
    "state": (96, 140, 222),
    "clipped": (196, 78, 64),
}


class ScalarLinearRenderer:
    """Draws the state of the scalar system on a number line, with numpy only.

    A frame shows the interval ``[-half_width, half_width]`` of the real line: the axis,
    the tolerance band ``|x| <= success_tolerance`` (green), the origin (dark tick) and the
    current state (a blue bar). A state outside the interval is drawn at the nearest edge
    in red.

    Args:
        params: the system (its ``initial_scale`` and ``success_tolerance`` set the view).
        width: frame width in pixels (``>= 32``).
        height: frame height in pixels (``>= 16``).

    The interval is ``half_width = max(2 initial_scale, 4 success_tolerance)`` (1 if both
    are 0); frames are ``(height, width, 3)`` uint8, ``(48, 256, 3)`` by default.
    """

    def __init__(self, params: ScalarLinearParams, width: int = 256, height: int = 48):
        if not isinstance(width, int) or width < 32:
            raise ValueError(f"width must be an integer >= 32 (pixels), got {width!r}")
        if not isinstance(height, int) or height < 16:
            raise ValueError(f"height must be an integer >= 16 (pixels), got {height!r}")
        self.params = params
        self.width, self.height = width, height
        self.half_width = max(2.0 * params.initial_scale, 4.0 * params.success_tolerance) or 1.0
        self._margin = 6  # pixels left and right of the interval
        self._background = self._draw_background()

    def to_column(self, x: float) -> int:
        """Pixel column of the point ``x`` (clipped to the interval shown)."""
        fraction = (np.clip(x, -self.half_width, self.half_width) + self.half_width) / (
            2.0 * self.half_width
        )
        return int(round(self._margin + fraction * (self.width - 1 - 2 * self._margin)))

    def _draw_background(self) -> np.ndarray:
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[:] = _COLORS["background"]
        mid = self.height // 2
        band = self.height // 4
        tol = self.params.success_tolerance
        left, right = self.to_column(-tol), self.to_column(tol)
        frame[mid - band : mid + band + 1, left : right + 1] = _COLORS["tolerance"]
        frame[mid, self._margin : self.width - self._margin] = _COLORS["axis"]
        origin = self.to_column(0.0)
        frame[mid - band // 2 : mid + band // 2 + 1, origin] = _COLORS["origin"]
        return frame

    def draw(self, x: float) -> np.ndarray:
        """Return the frame ``(height, width, 3)`` uint8 for the state ``x``."""
        frame = self._background.copy()
        x = float(x)
        inside = abs(x) <= self.half_width
        col = self.to_column(x)
        mid, reach = self.height // 2, (3 * self.height) // 8
        color = _COLORS["state"] if inside else _COLORS["clipped"]
        frame[mid - reach : mid + reach + 1, max(col - 1, 0) : col + 2] = color
        return frame


class ScalarLinearEnv(gym.Env):
    """The scalar linear system ``x' = a x + b u + w`` of the theory's compounding-error example.

    ## Description
    One state ``x`` and one input ``u``: ``x_{t+1} = a x_t + b u_t + w_t`` with process
    noise ``w_t ~ N(0, noise_std^2)`` drawn from ``self.np_random`` (one standard normal
    per step, also when ``noise_std = 0``, so the same seed gives the same noise sequence
    scaled by ``noise_std``). It is the example the HINT paper (Block et al., 2023, arXiv
    2307.14619) uses to show compounding errors: with the default ``a = 0.9`` the system
    contracts and the expert ``u = 0`` keeps any imitator close; with ``a = 2`` input
    errors grow like ``2^t`` open loop, while feedback gains ``|a + b K| < 1`` keep the
    imitation gap bounded. The dynamics are the pure function :func:`step`; its
    Jacobians are :func:`jacobians`.

    This is a *control environment* (``hint_envs.core``): ``control_indices = [0]`` (the
    state is the observation), ``reset(options={"state": s})`` puts it into an exact state
    and ``get_state()`` returns the current one.

    ## Action Space
    ``Box(-action_limit, action_limit, (1,), float64)``, the raw input ``u``. Inputs
    outside the box are clipped to it; an action of the wrong shape or with NaN/inf
    raises ``ValueError``.

    ## Observation Space
    ``Box(-L, L, (1,), float64)`` with ``L = |a| state_limit + |b| action_limit +
    10 noise_std`` (:func:`observation_limit`), the state (also ``get_state()``):

    | Num | Observation | Episode ends beyond |
    |-----|-------------|---------------------|
    | 0 | x | ``[-state_limit, state_limit]`` |

    The bound leaves room for the last state of an episode, which may lie past
    ``state_limit``; a state beyond ``L`` (noise beyond 10 standard deviations) is clipped
    to it. robomimic observation key: ``"state"``.

    ## Rewards
    ``-x_{t+1}^2``, the squared distance of the new state from the origin.

    ## Starting State
    Uniform in ``[-initial_scale, initial_scale]`` (one draw from ``self.np_random``), or
    exactly ``options["state"]``: a ``(1,)`` state, finite and inside the observation space
    (else ``ValueError``). A state beyond ``state_limit`` (but inside the space) is a
    terminal one: the first ``step()`` ends the episode.

    ## Episode End
    Terminated when ``|x_{t+1}| > state_limit`` (``info["out_of_bounds"]``; not a
    success); truncated after 50 steps (set in the registration).
    ``info["is_success"]`` is ``|x| <= success_tolerance`` after every reset and step; an
    episode succeeds if it ends that way.

    ## Arguments
    ``gym.make("hint_envs/ScalarLinear-v0", a=2.0, noise_std=0.1, render_mode="rgb_array")``:

    | argument | default | meaning |
    |---|---|---|
    | ``a`` | 0.9 | state coefficient (0.9 contractive, 2 unstable) |
    | ``b`` | 1.0 | input coefficient, non-zero |
    | ``noise_std`` | 0.0 | standard deviation of the process noise ``w_t`` |
    | ``initial_scale`` | 1.0 | start states uniform in ``[-initial_scale, initial_scale]`` |
    | ``state_limit`` | 1e6 | terminate once the state's magnitude exceeds it |
    | ``action_limit`` | 1e6 | inputs clipped to ``[-action_limit, action_limit]`` |
    | ``success_tolerance`` | 0.1 | success while the state's magnitude is at most it |
    | ``render_mode`` | None | ``"rgb_array"``: ``render()`` returns a ``(48, 256, 3)`` frame |

    Invalid values raise ``TypeError`` or ``ValueError`` saying which argument and why
    (:class:`ScalarLinearParams`). ``render()`` draws the state on a number line
    (:class:`ScalarLinearRenderer`) and returns None without a render mode.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    #: robomimic observation keys -> [start, stop) in the flat observation
    obs_keys: dict[str, tuple[int, int]] = {"state": (0, STATE_DIM)}

    def __init__(
        self,
        *,
        a: float = 0.9,
        b: float = 1.0,
        noise_std: float = 0.0,
        initial_scale: float = 1.0,
        state_limit: float = 1e6,
        action_limit: float = 1e6,
        success_tolerance: float = 0.1,
        render_mode: str | None = None,
    ):
        self._guard = EpisodeGuard("hint_envs/ScalarLinear-v0")
        check_render_args(render_mode, self.metadata["render_modes"])
        self.params = ScalarLinearParams(
            a=a,
            b=b,
            noise_std=noise_std,
            initial_scale=initial_scale,
            state_limit=state_limit,
            action_limit=action_limit,
            success_tolerance=success_tolerance,
        )
        self.render_mode = render_mode
        self.control_indices = np.array([0])
        limit = self.params.action_limit
        self.action_space = spaces.Box(-limit, limit, shape=(INPUT_DIM,), dtype=np.float64)
        self._observation_limit = observation_limit(self.params)
        self.observation_space = spaces.Box(
            -self._observation_limit, self._observation_limit, shape=(STATE_DIM,), dtype=np.float64
        )
        self._state = np.zeros(STATE_DIM)
        self._renderer: ScalarLinearRenderer | None = None

    def get_state(self) -> np.ndarray:
        """Copy of the exact state ``(1,)`` (equal to the observation)."""
        return self._state.copy()

    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset to a uniform start state, or to ``options["state"]`` exactly.

        Returns:
            the observation ``(1,)`` and the info (``"is_success"``).

        Raises:
            ValueError: an unknown option, or a state not of shape ``(1,)``, not finite or
                outside the observation space.
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {STATE_OPTION}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: ['state']")
        if options.get(STATE_OPTION) is not None:
            state = check_state(options[STATE_OPTION], STATE_DIM, "(x,)")
            # the observation is the state: it must lie in the observation space
            check_state_bounds(
                state,
                self.observation_space.low,
                self.observation_space.high,
                ("x",),
                "the observation space (the state is the observation)",
            )
            self._state = state
        else:
            scale = self.params.initial_scale
            self._state = self.np_random.uniform(-scale, scale, size=STATE_DIM)
        self._guard.reset()
        return self._state.copy(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the input ``action`` ``(1,)`` (clipped to the action space) for one step.

        Returns:
            the new state ``(1,)``, the reward ``-x_{t+1}^2``, terminated
            (``|x_{t+1}| > state_limit``), truncated (always False: the time limit is the
            registration's) and the info (``"is_success"``, ``"out_of_bounds"``).

        Raises:
            ValueError: ``action`` is not of shape ``(1,)`` or holds NaN/inf.
        """
        self._guard.before_step()
        u = np.clip(
            check_action(action, self.action_space), self.action_space.low, self.action_space.high
        )
        w = self.params.noise_std * self.np_random.standard_normal(STATE_DIM)
        next_state = step(self._state, u, self.params, w)
        limit = self._observation_limit
        self._state = np.clip(next_state, -limit, limit)
        reward = -float(self._state[0] ** 2)
        left = bool(abs(self._state[0]) > self.params.state_limit)
        info = self._info()
        info["out_of_bounds"] = left
        self._guard.after_step(left)
        return self._state.copy(), reward, left, False, info

    def close(self) -> None:
        self._guard.close()
        super().close()

    def render(self) -> np.ndarray | None:
        """Return the current frame, ``(48, 256, 3)`` uint8: the state on a number line.

        Drawn with numpy only (:class:`ScalarLinearRenderer`). Returns None (and logs a
        warning) when the environment was made without a render mode.
        """
        if self.render_mode is None:
            logger.warning(
                "render() called on ScalarLinearEnv made without a render mode; make it with "
                "render_mode='rgb_array' to get frames"
            )
            return None
        if self._renderer is None:
            self._renderer = ScalarLinearRenderer(self.params)
        return self._renderer.draw(self._state[0])

    def _info(self) -> dict[str, Any]:
        x = abs(self._state[0])
        success = x <= self.params.success_tolerance and x <= self.params.state_limit
        return {"is_success": bool(success)}
