"""A 2-D double integrator that must pass a disc obstacle on the left or the right.

This is the *pure bifurcation* of the HINT paper (Block, Jadbabaie, Pfrommer, Simchowitz,
Tedrake, *Provable Guarantees for Generative Behavior Cloning*, arXiv 2307.14619, Fig. 1,
3 and 4): a point mass starts on a short vertical band at ``x = 0``, a disc obstacle sits
on the straight line to the goal, and an expert passes it above ("left", ``+y``) or below
("right", ``-y``) depending on which side of ``y = 0`` it starts. Near the boundary
``y_0 = 0`` the expert's choice is (almost) discontinuous in the start. The paper's
argument, which this environment makes measurable:

- a policy that predicts *raw-input* chunks and switches modes between chunks near the
  boundary mixes a "left" chunk with a "right" one and drives into the obstacle;
- *primitive-controller* chunks ``u = u_bar + K (x - x_bar)`` with replica noise on the
  observation make the policy total-variation continuous: it interpolates between the
  modes in probability (each sample commits to one side and its gains keep it there)
  rather than in space, without collisions.

The system is linear with constant Jacobians, so the synthesis oracle (TVLQR) is exact.
Physics are pure, vectorised functions over a frozen :class:`BifurcationParams`
(:func:`step`, :func:`jacobians`, :func:`obstacle_distance`, :func:`collided`, ...);
:class:`BifurcationEnv` is a thin Gymnasium shell around them (its docstring gives the
spaces, reward, termination and success).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections import deque
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
from hint_envs.envs._draw import ArenaCanvas, paint_disk, paint_segment

__all__ = [
    "STATE_DIM",
    "STATE_FIELDS",
    "INPUT_DIM",
    "BifurcationParams",
    "BifurcationRenderer",
    "BifurcationEnv",
    "step",
    "jacobians",
    "applied_input",
    "obstacle_distance",
    "collided",
    "segment_collided",
    "out_of_bounds",
    "goal_distance",
    "observation_bounds",
]

logger = logging.getLogger(__name__)

#: State layout: px (m), py (m), vx (m/s), vy (m/s); the observation is the state.
STATE_DIM = 4
#: Names of the state entries, in order (error messages).
STATE_FIELDS = ("px", "py", "vx", "vy")
#: Input layout: acceleration (ax, ay) in m/s^2.
INPUT_DIM = 2
#: Pixels per metre of rendered frames.
RENDER_SCALE = 64.0
#: Number of recent positions drawn as the trail of a rendered frame.
TRAIL_LENGTH = 80


def _pair(name: str, value: Any) -> tuple[float, float]:
    """``value`` as a tuple of two finite floats (lists from JSON are accepted)."""
    try:
        items = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a pair of numbers (x, y), got {value!r}") from None
    if len(items) != 2 or not all(
        isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in items
    ):
        raise TypeError(f"{name} must be a pair of numbers (x, y), got {value!r}")
    pair = (float(items[0]), float(items[1]))
    if not all(math.isfinite(v) for v in pair):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return pair


def _number(name: str, value: Any, low: float, *, strict: bool) -> float:
    """``value`` as a finite float ``> low`` (``strict``) or ``>= low``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    ok = number > low if strict else number >= low
    if not (math.isfinite(number) and ok):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {low}, got {value!r}")
    return number


@dataclass(frozen=True)
class BifurcationParams:
    """Time step, input limit and geometry of the bifurcation task (all SI units).

    The defaults make the task well posed: the obstacle (radius 0.5 m at ``(2, 0)``)
    blocks the straight line from every start ``(0, y_0)``, ``|y_0| <= 0.5``, to the goal
    ``(4, 0)``; either side leaves a 1.5 m wide corridor to the arena's edge; and a
    rest-to-rest pass round either side in 6.2 s needs at most 80 % of ``max_accel`` on
    each axis (what :class:`~hint_envs.experts.bifurcation.BifurcationExpert` flies).
    ``max_accel = 1`` makes the action space ``[-1, 1]^2``, the normalised space
    Stable-Baselines3 recommends, while still being the raw input.

    Raises:
        TypeError: a field that is not a number (or a pair of numbers).
        ValueError: a value out of range, or a geometry that is not a bifurcation (the
            goal or the start band inside the obstacle or outside the arena).
    """

    dt: float = 0.1  # s, one control step (10 Hz), zero-order hold on the acceleration
    max_accel: float = 1.0  # m/s^2, per axis: the action is in [-max_accel, max_accel]^2
    speed_limit: float = 3.0  # m/s, per axis: accelerations that would exceed it are cut
    obstacle_center: tuple[float, float] = (2.0, 0.0)  # m
    obstacle_radius: float = 0.5  # m
    goal: tuple[float, float] = (4.0, 0.0)  # m
    goal_tolerance: float = 0.2  # m, success radius around the goal
    start_x: float = 0.0  # m, the start band is x = start_x, |y| <= start_width, at rest
    start_width: float = 0.5  # m, half-width of the start band: y_0 ~ U[-w, w]
    x_bounds: tuple[float, float] = (-1.0, 5.0)  # m, leaving the arena terminates
    y_bounds: tuple[float, float] = (-2.0, 2.0)  # m
    collision_penalty: float = 10.0  # subtracted once when the episode ends in a crash

    def __post_init__(self) -> None:
        for name in ("dt", "max_accel", "speed_limit", "obstacle_radius", "goal_tolerance"):
            object.__setattr__(self, name, _number(name, getattr(self, name), 0.0, strict=True))
        for name in ("start_width", "collision_penalty"):
            object.__setattr__(self, name, _number(name, getattr(self, name), 0.0, strict=False))
        start_x = _number("start_x", self.start_x, -math.inf, strict=True)
        object.__setattr__(self, "start_x", start_x)
        for name in ("obstacle_center", "goal", "x_bounds", "y_bounds"):
            object.__setattr__(self, name, _pair(name, getattr(self, name)))
        for name in ("x_bounds", "y_bounds"):
            low, high = getattr(self, name)
            if not low < high:
                raise ValueError(f"{name} must be (low, high) with low < high, got {(low, high)}")
        start_low = np.array([self.start_x, -self.start_width])
        start_high = np.array([self.start_x, self.start_width])
        for what, point in (
            ("the goal", self.goal),
            ("the start band's ends", start_low),
            ("the start band's ends", start_high),
        ):
            if bool(out_of_bounds(np.asarray(point), self)):
                raise ValueError(
                    f"{what} {tuple(np.round(point, 6).tolist())} must lie inside the arena "
                    f"x_bounds={self.x_bounds}, y_bounds={self.y_bounds}"
                )
        if float(obstacle_distance(np.asarray(self.goal), self)) <= self.goal_tolerance:
            raise ValueError(
                f"the goal {self.goal} (with its tolerance {self.goal_tolerance} m) overlaps the "
                f"obstacle of radius {self.obstacle_radius} m at {self.obstacle_center}: move "
                "the goal or shrink the obstacle"
            )
        if bool(segment_collided(start_low, start_high, self)):
            raise ValueError(
                f"the start band x={self.start_x}, |y| <= {self.start_width} touches the obstacle "
                f"of radius {self.obstacle_radius} m at {self.obstacle_center}: move the start "
                "or shrink the obstacle"
            )

    @property
    def input_low(self) -> np.ndarray:
        """Lower bound of the acceleration, ``(2,)``."""
        return np.full(INPUT_DIM, -self.max_accel)

    @property
    def input_high(self) -> np.ndarray:
        """Upper bound of the acceleration, ``(2,)``."""
        return np.full(INPUT_DIM, self.max_accel)

    @property
    def goal_state(self) -> np.ndarray:
        """At rest at the goal, ``(4,)``."""
        return np.array([self.goal[0], self.goal[1], 0.0, 0.0])


def step(state: np.ndarray, u: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """One control step of the double integrator, exact under zero-order hold.

    ``p' = p + dt v + dt^2 / 2 u``, ``v' = v + dt u``, with ``p = (px, py)``,
    ``v = (vx, vy)``. The input is used as given (the environment first passes it through
    :func:`applied_input`).

    Args:
        state: ``(..., 4)``; u: ``(..., 2)``.

    Returns:
        next state ``(..., 4)``.
    """
    state = np.asarray(state, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    dt = params.dt
    position = state[..., :2] + dt * state[..., 2:] + (0.5 * dt * dt) * u
    velocity = state[..., 2:] + dt * u
    return np.concatenate(np.broadcast_arrays(position, velocity), axis=-1)


def jacobians(params: BifurcationParams) -> tuple[np.ndarray, np.ndarray]:
    """The constant matrices of :func:`step`: ``x' = A x + B u``.

    Returns:
        ``A`` of shape ``(4, 4)`` and ``B`` of shape ``(4, 2)``.
    """
    dt = params.dt
    A = np.eye(STATE_DIM)
    A[:2, 2:] = dt * np.eye(2)
    B = np.vstack([0.5 * dt * dt * np.eye(2), dt * np.eye(2)])
    return A, B


def applied_input(state: np.ndarray, u: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """The acceleration the environment applies for action ``u``, batched: ``(..., 2)``.

    ``u`` clipped to ``[-max_accel, max_accel]`` per axis, then further so that each
    velocity component stays within ``[-speed_limit, speed_limit]`` after the step (for a
    state whose velocity is inside those limits the interval is never empty).

    Args:
        state: ``(..., 4)``; u: ``(..., 2)``.
    """
    state = np.asarray(state, dtype=np.float64)
    u = np.clip(np.asarray(u, dtype=np.float64), -params.max_accel, params.max_accel)
    v = state[..., 2:]
    low = np.maximum((-params.speed_limit - v) / params.dt, -params.max_accel)
    high = np.minimum((params.speed_limit - v) / params.dt, params.max_accel)
    return np.minimum(np.maximum(u, low), high)


def obstacle_distance(positions: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """Signed distance (m) of ``(..., 2)`` positions to the disc: negative inside, ``(...,)``."""
    offset = np.asarray(positions, dtype=np.float64)[..., :2] - np.asarray(params.obstacle_center)
    return np.linalg.norm(offset, axis=-1) - params.obstacle_radius


def collided(positions: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """Whether ``(..., 2)`` positions lie inside the disc: ``(...,)`` bool."""
    return obstacle_distance(positions, params) < 0.0


def segment_collided(start: np.ndarray, end: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """Whether the segments ``start -> end`` (``(..., 2)`` each) enter the disc: ``(...,)``.

    The environment checks the segment between consecutive positions, so a fast step
    cannot jump over the edge of the disc. (Within a step the true path is a parabola
    within ``max_accel dt^2 / 8`` of that segment: 1.25 mm for the defaults.)
    """
    a = np.asarray(start, dtype=np.float64)[..., :2]
    b = np.asarray(end, dtype=np.float64)[..., :2]
    ab = b - a
    length2 = np.sum(ab * ab, axis=-1)
    t = np.sum((np.asarray(params.obstacle_center) - a) * ab, axis=-1) / np.maximum(length2, 1e-300)
    closest = a + np.clip(t, 0.0, 1.0)[..., None] * ab
    return collided(closest, params)


def out_of_bounds(positions: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """Whether ``(..., 2)`` positions lie outside the arena: ``(...,)`` bool."""
    p = np.asarray(positions, dtype=np.float64)[..., :2]
    x_low, x_high = params.x_bounds
    y_low, y_high = params.y_bounds
    inside = (p[..., 0] >= x_low) & (p[..., 0] <= x_high) & (p[..., 1] >= y_low)
    return ~(inside & (p[..., 1] <= y_high))


def goal_distance(positions: np.ndarray, params: BifurcationParams) -> np.ndarray:
    """Distance (m) of ``(..., 2)`` positions from the goal: ``(...,)``."""
    offset = np.asarray(positions, dtype=np.float64)[..., :2] - np.asarray(params.goal)
    return np.linalg.norm(offset, axis=-1)


def observation_bounds(params: BifurcationParams) -> np.ndarray:
    """Finite bounds that every reachable state lies in, ``(2, 4)`` rows ``(low, high)``.

    Speeds never exceed ``speed_limit`` (:func:`applied_input`), and an episode ends as
    soon as the position leaves the arena, so the last position is at most one step,
    ``dt * speed_limit``, beyond it.
    """
    reach = params.dt * params.speed_limit
    low = [params.x_bounds[0] - reach, params.y_bounds[0] - reach]
    high = [params.x_bounds[1] + reach, params.y_bounds[1] + reach]
    low += [-params.speed_limit] * 2
    high += [params.speed_limit] * 2
    return np.array([low, high])


# ---------------------------------------------------------------------------------------
# Rendering with numpy only (the quadrotor's anti-aliased painters).

_COLORS = {
    "outside": (226, 226, 232),
    "inside": (255, 255, 255),
    "grid": (234, 234, 240),
    "box": (90, 90, 104),
    "obstacle": (196, 78, 64),
    "goal": (40, 150, 70),
    "start": (150, 200, 240),
    "trail": (96, 140, 222),
    "agent": (28, 44, 110),
}


class BifurcationRenderer(ArenaCanvas):
    """Draws RGB frames of the bifurcation task with numpy only.

    A frame shows the arena (leaving it ends the episode) on a 1 m grid, the start band
    (light blue), the obstacle disc (red), the goal with its tolerance circle (green), a
    trail of recent positions and the agent (a dark dot).

    Args:
        params: the task whose geometry is drawn.
        scale: pixels per metre.
        margin: metres shown around the arena.

    Frames are ``(height, width, 3)`` uint8: ``(288, 416, 3)`` for the default task.
    """

    def __init__(
        self, params: BifurcationParams, scale: float = RENDER_SCALE, margin: float = 0.25
    ):
        super().__init__(params.x_bounds, params.y_bounds, scale, margin)
        self.params = params
        self._background = self._draw_background()

    def _draw_background(self) -> np.ndarray:
        p = self.params
        frame = self.arena_frame(_COLORS)
        band = self.to_pixels(np.array([[p.start_x, -p.start_width], [p.start_x, p.start_width]]))
        paint_segment(frame, band[0], band[1], 4.0, _COLORS["start"])
        obstacle = self.to_pixels(np.asarray(p.obstacle_center))
        paint_disk(frame, obstacle, p.obstacle_radius * self.scale, _COLORS["obstacle"])
        self.paint_goal(frame, p.goal, p.goal_tolerance, _COLORS["goal"])
        return frame

    def draw(self, state: np.ndarray, trail: np.ndarray | None = None) -> np.ndarray:
        """Return the frame ``(height, width, 3)`` uint8 for ``state`` ``(4,)``.

        Args:
            state: ``(px, py, vx, vy)``.
            trail: recent positions ``(k, 2)`` in metres, oldest first (drawn fading in).
        """
        frame = self._background.copy()
        if trail is not None and len(trail) > 1:
            points = self.to_pixels(trail)
            for k, (a, b) in enumerate(zip(points[:-1], points[1:], strict=True)):
                opacity = 0.25 + 0.65 * (k + 1) / len(points)
                color = np.asarray(_COLORS["inside"]) + opacity * (
                    np.asarray(_COLORS["trail"]) - np.asarray(_COLORS["inside"])
                )
                paint_segment(frame, a, b, 1.5, tuple(color))
        paint_disk(frame, self.to_pixels(np.asarray(state)[:2]), 6.0, _COLORS["agent"])
        return frame


class BifurcationEnv(gym.Env):
    """A point mass that must pass a disc obstacle, above or below, to reach a goal.

    ## Description
    A 2-D double integrator (position ``p``, velocity ``v``, acceleration input ``u``)
    starts at rest on the band ``x = 0``, ``|y| <= 0.5`` m and must reach the goal
    ``(4, 0)`` m. A disc of radius 0.5 m at ``(2, 0)`` m blocks the straight line, so a
    pilot passes it on the left (above, ``+y``) or on the right (below, ``-y``): the pure
    bifurcation of the HINT paper (Block et al., 2023, arXiv 2307.14619, Fig. 1, 3, 4).
    The expert (:class:`~hint_envs.experts.bifurcation.BifurcationExpert`) passes on the
    side of the sign of ``y_0``; chunks of raw inputs that switch sides near ``y_0 = 0``
    collide, primitive-controller chunks with replica noise do not.

    The dynamics are the pure function :func:`step`, exact for an acceleration held over
    the step (``dt = 0.1`` s): ``p' = p + dt v + dt^2 / 2 u``, ``v' = v + dt u``, i.e.
    ``x' = A x + B u`` with the constant :func:`jacobians`.

    This is a *control environment* (``hint_envs.core``): ``control_indices`` names the
    whole state, ``reset(options={"state": s})`` puts it into an exact state and
    ``get_state()`` returns the current one.

    ## Action Space
    ``Box(-max_accel, max_accel, (2,), float32)``, the raw acceleration ``(ax, ay)`` in
    m/s^2 (``[-1, 1]^2`` by default). Float32, as Stable-Baselines3 recommends; the
    physics run in float64. The applied acceleration is the action clipped to the box and
    further so that no velocity component exceeds ``speed_limit``
    (:func:`applied_input`); an action of the wrong shape, not numeric, or with NaN/inf
    raises an error.

    ## Observation Space
    ``Box(4,)`` float64, the full state (also ``get_state()``):

    | Num | Observation | Unit | Bounds (default) |
    |-----|-------------|------|------------------|
    | 0 | px | m | arena x in [-1, 5], +- one step (0.3 m) |
    | 1 | py | m | arena y in [-2, 2], +- one step (0.3 m) |
    | 2 | vx | m/s | [-3, 3] (speed_limit) |
    | 3 | vy | m/s | [-3, 3] (speed_limit) |

    Every reachable state is inside (:func:`observation_bounds`): speeds are limited by
    :func:`applied_input`, and the episode ends on the first position outside the arena.
    robomimic observation key: ``"state"`` (all four).

    ## Rewards
    ``-|p' - goal|`` (m) after every step, and ``-collision_penalty`` (10) once when the
    episode ends in a crash (collision with the disc or leaving the arena).

    ## Starting State
    At rest at ``(0, y_0)``, ``y_0 ~ U[-start_width, start_width]`` (one draw from
    ``self.np_random``), or exactly ``options["state"]``: a ``(4,)`` state, finite and
    inside the observation space, else ``ValueError`` naming the entries out of bounds.

    ## Episode End
    Terminated when the segment between consecutive positions enters the disc
    (``info["collision"]``) or the position leaves the arena (``info["out_of_bounds"]``);
    truncated after 70 steps (7 s, set in the registration). ``info["is_success"]`` is true
    while the agent is within ``goal_tolerance`` (0.2 m) of the goal and has not crashed;
    an episode succeeds if its final step reports it. ``info`` also holds
    ``"distance_to_goal"`` (m), and ``"collision"`` and ``"out_of_bounds"`` on every step
    and at reset (for the start state).

    ## Arguments
    ``gym.make("hint_envs/Bifurcation-v0", render_mode="rgb_array", start_width=0.2)``:
    every field of :class:`BifurcationParams` is a keyword argument (``dt``,
    ``max_accel``, ``speed_limit``, ``obstacle_center``, ``obstacle_radius``, ``goal``,
    ``goal_tolerance``, ``start_x``, ``start_width``, ``x_bounds``, ``y_bounds``,
    ``collision_penalty``); bad values raise ``TypeError``/``ValueError`` saying what is
    wrong. ``render_mode="rgb_array"`` makes ``render()`` return a ``(288, 416, 3)`` uint8
    frame (:class:`BifurcationRenderer`: arena, start band, obstacle, goal, the agent and
    its trail); ``render()`` returns None without a render mode.

    ## Version History
    * v0: initial release.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    #: robomimic observation keys -> [start, stop) in the flat observation
    obs_keys: dict[str, tuple[int, int]] = {"state": (0, STATE_DIM)}

    def __init__(
        self,
        render_mode: str | None = None,
        *,
        dt: float = 0.1,
        max_accel: float = 1.0,
        speed_limit: float = 3.0,
        obstacle_center: tuple[float, float] = (2.0, 0.0),
        obstacle_radius: float = 0.5,
        goal: tuple[float, float] = (4.0, 0.0),
        goal_tolerance: float = 0.2,
        start_x: float = 0.0,
        start_width: float = 0.5,
        x_bounds: tuple[float, float] = (-1.0, 5.0),
        y_bounds: tuple[float, float] = (-2.0, 2.0),
        collision_penalty: float = 10.0,
    ):
        check_render_args(render_mode, self.metadata["render_modes"])
        self._guard = EpisodeGuard("hint_envs/Bifurcation-v0")
        self.params = BifurcationParams(
            dt=dt,
            max_accel=max_accel,
            speed_limit=speed_limit,
            obstacle_center=obstacle_center,
            obstacle_radius=obstacle_radius,
            goal=goal,
            goal_tolerance=goal_tolerance,
            start_x=start_x,
            start_width=start_width,
            x_bounds=x_bounds,
            y_bounds=y_bounds,
            collision_penalty=collision_penalty,
        )
        self.render_mode = render_mode
        self.control_indices = np.arange(STATE_DIM)
        self.action_space = spaces.Box(
            self.params.input_low.astype(np.float32),
            self.params.input_high.astype(np.float32),
            dtype=np.float32,
        )
        low, high = observation_bounds(self.params)
        self.observation_space = spaces.Box(low, high, dtype=np.float64)
        self._state = np.zeros(STATE_DIM)
        self._crashed = False
        self._trail: deque[np.ndarray] = deque(maxlen=TRAIL_LENGTH)
        self._renderer: BifurcationRenderer | None = None

    def get_state(self) -> np.ndarray:
        """Copy of the exact simulator state ``(4,)`` (equal to the observation)."""
        return self._state.copy()

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at rest on the start band, or in exactly ``options["state"]``.

        Returns:
            the observation ``(4,)`` and the info (see the class docstring).
        """
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {STATE_OPTION}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: ['state']")
        if options.get(STATE_OPTION) is not None:
            state = check_state(options[STATE_OPTION], STATE_DIM, "(px, py, vx, vy)")
            # the observation is the state: it must lie in the observation space
            check_state_bounds(
                state,
                self.observation_space.low,
                self.observation_space.high,
                STATE_FIELDS,
                "the observation space (the state is the observation)",
            )
            self._state = state
        else:
            p = self.params
            y0 = self.np_random.uniform(-p.start_width, p.start_width)
            self._state = np.array([p.start_x, y0, 0.0, 0.0])
        self._crashed = False
        self._trail.clear()
        self._record_trail()
        info = self._info()
        info.update(
            collision=bool(collided(self._state[:2], self.params)),
            out_of_bounds=bool(out_of_bounds(self._state[:2], self.params)),
        )
        self._guard.reset()
        return self._state.copy(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply the acceleration ``action`` ``(2,)`` for one step of ``dt``.

        Returns:
            observation ``(4,)``, reward, terminated, truncated (always False: the time
            limit is the registration's) and info.
        """
        self._guard.before_step()
        u = applied_input(self._state, check_action(action, self.action_space), self.params)
        previous = self._state
        self._state = step(previous, u, self.params)
        hit = bool(segment_collided(previous[:2], self._state[:2], self.params))
        left = bool(out_of_bounds(self._state[:2], self.params))
        terminated = hit or left
        reward = -float(goal_distance(self._state, self.params))
        if terminated and not self._crashed:
            reward -= self.params.collision_penalty
        self._crashed = self._crashed or terminated
        self._record_trail()
        info = self._info()
        info.update(collision=hit, out_of_bounds=left)
        self._guard.after_step(terminated)
        return self._state.copy(), reward, terminated, False, info

    def close(self) -> None:
        self._guard.close()
        super().close()

    def render(self) -> np.ndarray | None:
        """Return the current frame, ``(288, 416, 3)`` uint8 for the default task.

        Drawn with numpy only (:class:`BifurcationRenderer`). Returns None (and logs a
        warning) when the environment was made without a render mode.
        """
        if self.render_mode is None:
            logger.warning(
                "render() called on BifurcationEnv made without a render mode; make it with "
                "render_mode='rgb_array' to get frames"
            )
            return None
        if self._renderer is None:
            self._renderer = BifurcationRenderer(self.params)
        return self._renderer.draw(self._state, np.asarray(self._trail))

    def _record_trail(self) -> None:
        if self.render_mode is not None:
            self._trail.append(self._state[:2].copy())

    def _info(self) -> dict[str, Any]:
        distance = float(goal_distance(self._state, self.params))
        return {
            "is_success": bool(distance < self.params.goal_tolerance and not self._crashed),
            "distance_to_goal": distance,
        }
