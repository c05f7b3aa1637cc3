"""Offline expert of the bifurcation task: a two-mode planner tracked by LQR.

One demonstration (:meth:`BifurcationExpert.demonstrate`):

1. the start state comes from ``env.reset(seed=seed)`` of ``gym.make(env_id)`` (so an
   evaluation episode with the same seed starts there), or is given exactly;
2. every random draw comes from
   ``np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))``: first a
   fair coin, then the input noise (if any);
3. the side is a sharp function of the start ``y_0`` (measured from the obstacle
   centre's ``y``, 0 by default): ``"left"`` (pass above, ``+y``) if ``y_0 > 0``,
   ``"right"`` (below) if ``y_0 < 0``; inside the boundary band
   ``|y_0| <= boundary_width / 2`` (``y_0 = 0`` included) the coin decides. With
   ``boundary_width = 0`` the expert is deterministic except exactly at ``y_0 = 0``; a
   wider band makes the expert itself bimodal near the boundary;
4. the plan is a smooth time-parametrised reference (:meth:`~BifurcationExpert.reference`):
   ``x`` moves from the start to the goal on a quintic (minimum-jerk) profile, and ``y``
   on two quintics, to a waypoint beside the obstacle (``obstacle_radius + clearance``
   from its centre, 0.8 m by default) at the moment ``x`` passes the obstacle's centre,
   then to the goal. It arrives at rest after ``arrival_time`` (6.2 s by default: the
   shortest whole number of steps in which the worst start of the band needs at most
   ``accel_fraction = 0.8`` of ``max_accel`` on either axis) and holds the goal until the
   episode is truncated (70 steps);
5. the reference is executed in the environment by LQR tracking (the infinite-horizon
   gain of the exact double integrator, the synthesis oracle's weights) with the
   reference's feedforward acceleration, plus optional Gaussian input noise; the input
   recorded is the one applied: rounded to the action space's float32 (as
   :class:`~hint_envs.wrappers.PrimitiveControllerWrapper` rounds its controllers'
   inputs, so replaying a demonstration through it is exact) and clipped to the action
   space and the speed limit (:func:`~hint_envs.envs.bifurcation.applied_input`).

``Demonstration.primitives`` stays None (the collector synthesises); pass
``with_primitives=True`` to :meth:`~BifurcationExpert.demonstrate` for a demonstration
that carries its TVLQR controllers (:func:`hint_envs.synthesis.bifurcation.synthesize`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import numbers
from typing import Any

import gymnasium as gym
import numpy as np

import hint_envs  # noqa: F401  (registers the environment ids)
from hint_envs.core import Demonstration
from hint_envs.envs.bifurcation import (
    BifurcationEnv,
    BifurcationParams,
    applied_input,
    jacobians,
    obstacle_distance,
)
from hint_envs.synthesis.bifurcation import DEFAULT_Q, DEFAULT_R, synthesize
from hint_envs.synthesis.lqr import dlqr

__all__ = ["EXPERT_STREAM", "MODES", "BifurcationExpert", "side_taken"]

logger = logging.getLogger(__name__)

#: Second entry of the expert's seed sequence, ``SeedSequence([seed, EXPERT_STREAM])``:
#: keeps the expert's draws independent of the environment's ``reset(seed=seed)`` stream.
EXPERT_STREAM = 0xB1F0_0C47
#: The two modes: "left" passes above the obstacle (+y), "right" below it (-y).
MODES = ("left", "right")
#: Peak acceleration of a rest-to-rest quintic over distance D in time T is this * D / T^2.
_QUINTIC_PEAK = 10.0 / math.sqrt(3.0)


def side_taken(positions: np.ndarray, params: BifurcationParams) -> str:
    """Side of the obstacle a path took: sign of ``y`` where it first passes the obstacle's x.

    Args:
        positions: ``(T, 2)`` (or ``(T, >= 2)`` states) along the path.
        params: the task (its ``obstacle_center``).

    Returns:
        ``"left"`` if ``y`` is above the obstacle centre's ``y`` where the path first
        reaches ``x >= obstacle_center[0]`` (linearly interpolated), ``"right"`` if not, or
        ``"none"`` if the path never gets there.
    """
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] < 2:
        raise ValueError(f"positions must have shape (T, 2), got {positions.shape}")
    cx, cy = params.obstacle_center
    x, y = positions[:, 0], positions[:, 1]
    if x[0] >= cx:
        return "left" if y[0] > cy else "right"
    crossing = np.flatnonzero((x[:-1] < cx) & (x[1:] >= cx))
    if crossing.size == 0:
        return "none"
    t = crossing[0]
    fraction = (cx - x[t]) / (x[t + 1] - x[t])
    y_cross = y[t] + fraction * (y[t + 1] - y[t])
    return "left" if y_cross > cy else "right"


def _quintic(p0: float, v0: float, p1: float, duration: float, t: np.ndarray) -> np.ndarray:
    """Position and velocity ``(len(t), 2)`` of the quintic from ``(p0, v0, 0)`` at
    ``t = 0`` to ``(p1, 0, 0)`` at ``t = duration`` (position, velocity, acceleration);
    it holds ``p1`` after ``duration``."""
    T = duration
    h = p1 - p0
    c3 = (20.0 * h - 12.0 * v0 * T) / (2.0 * T**3)
    c4 = (-30.0 * h + 16.0 * v0 * T) / (2.0 * T**4)
    c5 = (12.0 * h - 6.0 * v0 * T) / (2.0 * T**5)
    s = np.clip(t, 0.0, T)
    position = p0 + v0 * s + c3 * s**3 + c4 * s**4 + c5 * s**5
    velocity = v0 + 3 * c3 * s**2 + 4 * c4 * s**3 + 5 * c5 * s**4
    velocity = np.where(t >= T, 0.0, velocity)
    return np.stack([position, velocity], axis=-1)


def _check_number(name: str, value: Any, low: float, strict: bool) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    number = float(value)
    if not (math.isfinite(number) and (number > low if strict else number >= low)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {relation} {low}, got {value!r}")
    return number


class BifurcationExpert:
    """Two-mode planner + LQR tracking expert of ``hint_envs/Bifurcation-v0``.

    See the module docstring for the procedure.

    Args:
        env_id: a registered id whose environment is a :class:`BifurcationEnv`.
        env_kwargs: its ``gym.make`` keyword arguments (the task's constants).
        boundary_width: width (m) of the band ``|y_0| <= boundary_width / 2`` in which a
            fair coin picks the side; 0 (default) makes the side the sign of ``y_0``.
        input_noise_std: standard deviation (m/s^2) of the Gaussian noise added to each
            axis of the tracking input; 0 (default) gives the nominal executions.
        clearance: how far (m) outside the obstacle the reference's waypoint lies.
        arrival_time: seconds the reference takes to reach the goal; None (default) picks
            the shortest whole number of steps for which the worst start of the start
            band needs at most ``accel_fraction * max_accel`` per axis.
        accel_fraction: share of ``max_accel`` the reference may use (the rest is left
            to the feedback), in ``(0, 1]``.
        tracking_Q, tracking_R: LQR tracking weights (default the synthesis oracle's
            :data:`~hint_envs.synthesis.bifurcation.DEFAULT_Q` / ``DEFAULT_R``).

    Raises:
        TypeError: a setting that is not a number, or an env that is not a
            :class:`BifurcationEnv`.
        ValueError: a setting out of range, a task whose obstacle is not between the start
            band and the goal in ``x``, or an arrival time that does not fit the episode.

    Example:
        >>> expert = BifurcationExpert()
        >>> demo = expert.demonstrate(seed=0)
        >>> demo.attrs["mode"], demo.success, demo.actions.shape
        ('left', True, (70, 2))
    """

    def __init__(
        self,
        env_id: str = "hint_envs/Bifurcation-v0",
        env_kwargs: dict[str, Any] | None = None,
        boundary_width: float = 0.0,
        input_noise_std: float = 0.0,
        *,
        clearance: float = 0.3,
        arrival_time: float | None = None,
        accel_fraction: float = 0.8,
        tracking_Q: np.ndarray | None = None,
        tracking_R: np.ndarray | None = None,
    ) -> None:
        self.boundary_width = _check_number("boundary_width", boundary_width, 0.0, False)
        self.input_noise_std = _check_number("input_noise_std", input_noise_std, 0.0, False)
        self.clearance = _check_number("clearance", clearance, 0.0, False)
        self.accel_fraction = _check_number("accel_fraction", accel_fraction, 0.0, True)
        if self.accel_fraction > 1.0:
            raise ValueError(f"accel_fraction must be in (0, 1], got {accel_fraction!r}")
        self.tracking_Q = DEFAULT_Q if tracking_Q is None else np.asarray(tracking_Q, float)
        self.tracking_R = DEFAULT_R if tracking_R is None else np.asarray(tracking_R, float)

        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.env = gym.make(env_id, **self.env_kwargs)
        if not isinstance(self.env.unwrapped, BifurcationEnv):
            raise TypeError(
                f"BifurcationExpert needs a BifurcationEnv, but {env_id!r} makes "
                f"{type(self.env.unwrapped).__name__}"
            )
        self.params: BifurcationParams = self.env.unwrapped.params
        steps = self.env.spec.max_episode_steps if self.env.spec is not None else None
        if steps is None:
            raise ValueError(
                f"{env_id!r} has no time limit (max_episode_steps); the expert plans a whole "
                "episode, so register it with one"
            )
        self.horizon = int(steps)
        p = self.params
        if not p.start_x < p.obstacle_center[0] < p.goal[0]:
            raise ValueError(
                "BifurcationExpert needs the obstacle between the start band and the goal in x "
                f"(start_x < obstacle_center[0] < goal[0]), got start_x={p.start_x}, "
                f"obstacle_center={p.obstacle_center}, goal={p.goal}"
            )
        self._offset = p.obstacle_radius + self.clearance  # waypoint's distance from centre
        # time fraction at which a rest-to-rest quintic in x passes the obstacle's centre
        fraction = (p.obstacle_center[0] - p.start_x) / (p.goal[0] - p.start_x)
        taus = np.linspace(0.0, 1.0, 100_001)
        profile = 10 * taus**3 - 15 * taus**4 + 6 * taus**5
        self._pass_fraction = float(np.interp(fraction, profile, taus))
        if arrival_time is None:
            arrival_time = self._shortest_arrival_time()
        self.arrival_time = _check_number("arrival_time", arrival_time, 0.0, True)
        if self.arrival_time > (self.horizon - 1) * p.dt + 1e-9:
            raise ValueError(
                f"the expert's reference takes {self.arrival_time:.3g} s to reach the goal, but "
                f"an episode of {env_id!r} lasts {self.horizon} steps of {p.dt} s: pass a shorter "
                "arrival_time, a larger max_accel or accel_fraction, or a longer time limit"
            )
        A, B = jacobians(p)
        self._action_dtype = self.env.action_space.dtype
        self._gain = -dlqr(A, B, self.tracking_Q, self.tracking_R)  # u = u_ff + K (x - x_ref)
        self._params_attr = None if p == BifurcationParams() else json.dumps(dataclasses.asdict(p))

    # -- planning ---------------------------------------------------------------------

    def _waypoint_y(self, mode: str) -> float:
        sign = 1.0 if mode == "left" else -1.0
        return self.params.obstacle_center[1] + sign * self._offset

    def _shortest_arrival_time(self) -> float:
        """Seconds (a whole number of steps) in which every start of the band, on either
        side, keeps the reference's peak acceleration under ``accel_fraction * max_accel``."""
        p = self.params
        budget = self.accel_fraction * p.max_accel
        starts = (-p.start_width, p.start_width)
        rise = max(abs(self._waypoint_y(m) - y0) for m in MODES for y0 in starts)
        fall = max(abs(self._waypoint_y(m) - p.goal[1]) for m in MODES)
        need = max(
            math.sqrt(_QUINTIC_PEAK * (p.goal[0] - p.start_x) / budget),
            math.sqrt(_QUINTIC_PEAK * rise / budget) / self._pass_fraction,
            math.sqrt(_QUINTIC_PEAK * fall / budget) / (1.0 - self._pass_fraction),
        )
        return math.ceil(need / p.dt - 1e-9) * p.dt

    def choose_mode(self, start: np.ndarray, coin: float) -> tuple[str, bool]:
        """The side for ``start`` ``(4,)``, given a uniform draw ``coin`` in [0, 1).

        Returns:
            ``(mode, by_coin)``: the mode, and whether the coin decided it (the start is
            inside the boundary band).
        """
        y0 = float(start[1]) - self.params.obstacle_center[1]
        if abs(y0) <= self.boundary_width / 2:
            return MODES[int(coin >= 0.5)], True
        return ("left" if y0 > 0 else "right"), False

    def reference(self, start: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """The reference from ``start`` ``(4,)`` on ``mode``'s side over the episode.

        Returns:
            states ``(horizon + 1, 4)`` at the step times and the feedforward inputs
            ``(horizon, 2)``, ``(v_ref[t + 1] - v_ref[t]) / dt`` (the constant acceleration
            that moves the reference's velocity exactly over step ``t``).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        p = self.params
        start = np.asarray(start, dtype=np.float64)
        t = np.arange(self.horizon + 1) * p.dt
        T, t_pass = self.arrival_time, self._pass_fraction * self.arrival_time
        x = _quintic(start[0], start[2], p.goal[0], T, t)
        y_waypoint = self._waypoint_y(mode)
        y_up = _quintic(start[1], start[3], y_waypoint, t_pass, t)
        y_down = _quintic(y_waypoint, 0.0, p.goal[1], T - t_pass, t - t_pass)
        y = np.where((t < t_pass)[:, None], y_up, y_down)
        states = np.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], axis=-1)
        feedforward = np.diff(states[:, 2:], axis=0) / p.dt
        return states, feedforward

    # -- execution --------------------------------------------------------------------

    def demonstrate(
        self,
        seed: int,
        initial_state: np.ndarray | None = None,
        *,
        with_primitives: bool = False,
    ) -> Demonstration:
        """One demonstration from ``env.reset(seed=seed)``, or from ``initial_state``.

        Args:
            seed: seeds the start state (through the environment) and the expert's own
                draws (the coin, the input noise).
            initial_state: ``(4,)`` exact start state instead of the seeded one.
            with_primitives: also synthesise the TVLQR controllers along the
                demonstration (:func:`hint_envs.synthesis.bifurcation.synthesize`).

        Returns:
            a :class:`~hint_envs.experts.base.Demonstration` of ``T = horizon`` steps
            (fewer if it crashed) with ``attrs``: ``seed``, ``mode`` (the side planned),
            ``by_coin`` (whether the coin chose it), ``side`` (the side actually taken,
            :func:`side_taken`), ``success`` (at the goal at the end, no crash),
            ``collision``, ``out_of_bounds``, ``min_clearance`` (m, smallest distance
            to the disc), ``arrival_time`` (s), ``boundary_width``, ``input_noise_std``
            and, for non-default constants, ``params`` (JSON).
        """
        seed = int(seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))
        coin = rng.random()
        noise = rng.standard_normal((self.horizon, 2)) * self.input_noise_std

        options = None if initial_state is None else {"state": initial_state}
        obs, info = self.env.reset(seed=seed, options=options)
        base: BifurcationEnv = self.env.unwrapped
        start = base.get_state()
        mode, by_coin = self.choose_mode(start, coin)
        x_ref, u_ff = self.reference(start, mode)

        observations, actions, rewards, states = [], [], [], []
        collision = left_arena = False
        t = 0
        while True:
            x = base.get_state()
            k = min(t, self.horizon - 1)
            u = u_ff[k] + self._gain @ (x - x_ref[k]) + noise[k]
            # rounded to the action space's float32 (as PrimitiveControllerWrapper rounds
            # what its controllers compute), so replaying the record is exact
            u = applied_input(x, u.astype(self._action_dtype).astype(np.float64), self.params)
            observations.append(obs)
            states.append(x)
            actions.append(u)
            obs, reward, terminated, truncated, info = self.env.step(u)
            rewards.append(reward)
            collision = collision or bool(info["collision"])
            left_arena = left_arena or bool(info["out_of_bounds"])
            t += 1
            if terminated or truncated:
                break
        final_state = base.get_state()
        states_arr = np.asarray(states)
        path = np.vstack([states_arr, final_state[None]])
        dones = np.zeros(t)
        dones[-1] = 1.0
        attrs: dict[str, Any] = {
            "seed": seed,
            "mode": mode,
            "by_coin": by_coin,
            "side": side_taken(path, self.params),
            "success": bool(info["is_success"]) and not collision,
            "collision": collision,
            "out_of_bounds": left_arena,
            "min_clearance": float(obstacle_distance(path[:, :2], self.params).min()),
            "arrival_time": self.arrival_time,
            "boundary_width": self.boundary_width,
            "input_noise_std": self.input_noise_std,
        }
        if self._params_attr is not None:
            attrs["params"] = self._params_attr
        demo = Demonstration(
            observations=np.asarray(observations),
            actions=np.asarray(actions),
            rewards=np.asarray(rewards, dtype=np.float64),
            dones=dones,
            states=states_arr,
            final_observation=np.asarray(obs),
            final_state=final_state,
            attrs=attrs,
        )
        if with_primitives:
            demo.primitives = synthesize(demo, params=self.params)
        logger.debug(
            "seed %d: mode %s, side %s, success %s", seed, mode, attrs["side"], attrs["success"]
        )
        return demo

    def close(self) -> None:
        """Close the environment the expert executes in."""
        self.env.close()
