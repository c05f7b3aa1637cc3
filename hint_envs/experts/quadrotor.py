"""Offline expert of the planar quadrotor: iLQR around the obstacle, TVLQR tracking.

One demonstration (:meth:`QuadrotorExpert.demonstrate`):

1. the start state comes from ``env.reset(seed=seed)`` of ``gym.make(env_id)`` (so an
   evaluation episode with the same seed starts there), or is given exactly;
2. every other random draw comes from
   ``np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))``: first the
   mode, ``"left"`` or ``"right"`` of the obstacle with probability 1/2 each, then the
   process noise;
3. a warm start passing the obstacle on that side: a hover LQR tracks a smooth reference
   path from the start through a waypoint beside the obstacle to the goal;
4. iLQR (:mod:`hint_envs.experts.ilqr`) from there to the goal hover, with a quadratic
   cost about the hover and a squared-hinge penalty on the body's clearance from the
   obstacle below a safety margin; the penalty keeps the plan on the warm start's side;
5. the plan is executed in the environment for the whole episode (until truncation; the
   plan ends in a hover at the goal) by TVLQR tracking
   (:func:`hint_envs.synthesis.lqr.tvlqr` on the plan's linearisation) with a Gaussian
   input disturbance; the input recorded is the one applied (clipped to the action
   space), so demonstrations are stochastic and bimodal.

``Demonstration.primitives`` stays None (the collector synthesises); pass
``with_primitives=True`` to :meth:`~QuadrotorExpert.demonstrate` for a demonstration
that carries its TVLQR controllers (:func:`hint_envs.synthesis.quadrotor.synthesize`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

import hint_envs  # noqa: F401  (registers the environment ids)
from hint_envs.core import Demonstration
from hint_envs.envs.planar_quadrotor import (
    PlanarQuadrotorEnv,
    QuadrotorParams,
    dynamics,
    jacobians,
)
from hint_envs.experts.ilqr import (
    CostDerivatives,
    ILQROptions,
    ILQRResult,
    QuadraticCost,
    ilqr,
)
from hint_envs.synthesis.lqr import dare, dlqr, tvlqr
from hint_envs.synthesis.quadrotor import DEFAULT_Q, DEFAULT_R, synthesize

__all__ = ["EXPERT_STREAM", "MODES", "ObstacleCost", "QuadrotorExpert", "side_taken"]

logger = logging.getLogger(__name__)

#: Second entry of the expert's seed sequence, ``SeedSequence([seed, EXPERT_STREAM])``:
#: keeps the expert's draws independent of the environment's ``reset(seed=seed)`` stream.
EXPERT_STREAM = 0x51AD_0E0E
#: The two modes, drawn with probability 1/2 each.
MODES = ("left", "right")

#: iLQR cost about the goal hover: state weight (x, z, theta, xdot, zdot, thetadot) ...
PLAN_Q = np.diag([1.0, 1.0, 5.0, 0.5, 0.5, 0.5])
#: ... input weight (thrust, torque) ...
PLAN_R = np.diag([0.1, 500.0])
#: ... and terminal weight.
PLAN_QF = np.diag([100.0, 100.0, 10.0, 10.0, 10.0, 1.0])


@dataclass
class ObstacleCost:
    """Quadratic cost about the goal hover plus a clearance penalty around a disk.

    ``l(x, u) = quadratic(x, u) + weight * max(0, safe_radius - |p - c|)^2`` with ``p`` the
    position ``x[:2]`` and ``c`` the obstacle centre: zero once the body keeps
    ``safe_radius`` from the centre, smooth (C1) everywhere. Its Hessian is taken in the
    Gauss-Newton form ``2 weight n n^T`` (``n`` the unit normal), which is PSD.

    Attributes:
        quadratic: the :class:`~hint_envs.experts.ilqr.QuadraticCost` about the goal.
        center: ``(2,)`` obstacle centre.
        safe_radius: obstacle radius + body radius + safety margin (m).
        weight: penalty weight (per m^2 per step).
    """

    quadratic: QuadraticCost
    center: np.ndarray
    safe_radius: float
    weight: float

    def _penetration(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        offset = x[..., :2] - self.center
        distance = np.maximum(np.linalg.norm(offset, axis=-1), 1e-9)
        depth = np.maximum(self.safe_radius - distance, 0.0)
        return depth, offset / distance[..., None], distance

    def running(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        depth, _, _ = self._penetration(x)
        return self.quadratic.running(x, u) + self.weight * depth**2

    def terminal(self, x: np.ndarray) -> np.ndarray:
        depth, _, _ = self._penetration(x)
        return self.quadratic.terminal(x) + self.weight * depth**2

    def running_derivatives(self, x: np.ndarray, u: np.ndarray) -> CostDerivatives:
        d = self.quadratic.running_derivatives(x, u)
        depth, normal, _ = self._penetration(x)
        active = depth > 0
        d.lx[:, :2] -= 2.0 * self.weight * depth[:, None] * normal
        d.lxx[:, :2, :2] += (
            2.0 * self.weight * active[:, None, None] * normal[:, :, None] * normal[:, None, :]
        )
        return d

    def terminal_derivatives(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lx, lxx = self.quadratic.terminal_derivatives(x)
        depth, normal, _ = self._penetration(x)
        lx, lxx = lx.copy(), lxx.copy()
        lx[:2] -= 2.0 * self.weight * depth * normal
        if depth > 0:
            lxx[:2, :2] += 2.0 * self.weight * np.outer(normal, normal)
        return lx, lxx


def side_taken(positions: np.ndarray, height: float) -> str:
    """Side of the obstacle a path took: sign of x where it first rises past ``height``.

    Args:
        positions: ``(T, 2)`` (x, z) along the path.
        height: the obstacle centre's z.

    Returns:
        ``"left"`` (x < 0), ``"right"`` (x >= 0), or ``"none"`` if the path never got there.
    """
    z = positions[:, 1]
    above = np.flatnonzero((z[:-1] < height) & (z[1:] >= height))
    if above.size == 0:
        return "none"
    t = above[0]
    fraction = (height - z[t]) / (z[t + 1] - z[t])
    x = positions[t, 0] + fraction * (positions[t + 1, 0] - positions[t, 0])
    return "left" if x < 0 else "right"


class QuadrotorExpert:
    """Bimodal iLQR + TVLQR expert of ``hint_envs/PlanarQuadrotor-v0``.

    See the module docstring for the procedure.

    Args:
        env_id: a registered id whose environment is a :class:`PlanarQuadrotorEnv`.
        env_kwargs: its ``gym.make`` keyword arguments (``params`` is set by ``params``).
        process_noise: standard deviation of the Gaussian input disturbance added to the
            tracking input, as a fraction of each input's half-range (0.02: 0.12 N of
            thrust, 0.002 N m of torque). 0 gives the nominal executions.
        params: the quadrotor's constants (passed to ``gym.make``); default
            ``QuadrotorParams()``. Non-default ones are stored in ``attrs["params"]`` (JSON)
            so that synthesis uses them.
        safety_margin: clearance (m) beyond body + obstacle radius the plan keeps.
        obstacle_weight: weight of the clearance penalty (per m^2 per step).
        waypoint_clearance: how far (m) beside the safe radius the warm start's waypoint
            lies.
        arrival_fraction: fraction of the episode the warm start takes to reach the goal.
        max_iterations: most iLQR iterations.
        tracking_Q, tracking_R: TVLQR tracking weights (default the synthesis oracle's
            :data:`~hint_envs.synthesis.quadrotor.DEFAULT_Q` / ``DEFAULT_R``).

    Example:
        >>> expert = QuadrotorExpert()
        >>> demo = expert.demonstrate(seed=0)
        >>> demo.attrs["mode"], demo.success, demo.actions.shape
        ('right', True, (100, 2))
    """

    def __init__(
        self,
        env_id: str = "hint_envs/PlanarQuadrotor-v0",
        env_kwargs: dict[str, Any] | None = None,
        process_noise: float = 0.02,
        params: QuadrotorParams | None = None,
        *,
        safety_margin: float = 0.15,
        obstacle_weight: float = 2000.0,
        waypoint_clearance: float = 0.2,
        arrival_fraction: float = 0.6,
        max_iterations: int = 60,
        tracking_Q: np.ndarray | None = None,
        tracking_R: np.ndarray | None = None,
    ) -> None:
        if not process_noise >= 0.0:
            raise ValueError(f"process_noise must be >= 0, got {process_noise}")
        if not safety_margin >= 0.0:
            raise ValueError(f"safety_margin must be >= 0 m, got {safety_margin}")
        if not obstacle_weight > 0.0:
            raise ValueError(f"obstacle_weight must be > 0, got {obstacle_weight}")
        if not waypoint_clearance >= 0.0:
            raise ValueError(f"waypoint_clearance must be >= 0 m, got {waypoint_clearance}")
        if not 0.0 < arrival_fraction <= 1.0:
            raise ValueError(f"arrival_fraction must be in (0, 1], got {arrival_fraction}")
        if params is not None and not isinstance(params, QuadrotorParams):
            raise TypeError(f"params must be a QuadrotorParams, got {type(params).__name__}")
        self.env_id = env_id
        self.process_noise = float(process_noise)
        self.safety_margin = float(safety_margin)
        self.obstacle_weight = float(obstacle_weight)
        self.waypoint_clearance = float(waypoint_clearance)
        self.arrival_fraction = float(arrival_fraction)
        self.options = ILQROptions(max_iterations=max_iterations)
        self.tracking_Q = DEFAULT_Q if tracking_Q is None else np.asarray(tracking_Q, float)
        self.tracking_R = DEFAULT_R if tracking_R is None else np.asarray(tracking_R, float)

        self.env_kwargs = dict(env_kwargs or {})
        if params is not None:
            self.env_kwargs["params"] = params
        self.env = gym.make(env_id, **self.env_kwargs)
        if not isinstance(self.env.unwrapped, PlanarQuadrotorEnv):
            raise TypeError(
                f"QuadrotorExpert needs a PlanarQuadrotorEnv, but {env_id!r} makes "
                f"{type(self.env.unwrapped).__name__}"
            )
        self.params: QuadrotorParams = self.env.unwrapped.params
        steps = self.env.spec.max_episode_steps if self.env.spec is not None else None
        if steps is None:
            raise ValueError(
                f"{env_id!r} has no time limit (max_episode_steps); the expert plans a whole "
                "episode, so register it with one"
            )
        self.horizon = int(steps)
        p = self.params
        self._f = partial(dynamics, params=p)
        self._jac = partial(jacobians, params=p)
        self._low, self._high = p.input_low, p.input_high
        self._noise_std = self.process_noise * (self._high - self._low) / 2.0
        A, B = jacobians(p.goal_state, p.hover_input, p)
        self._hover_gain = dlqr(A, B, self.tracking_Q, self.tracking_R)
        self._hover_cost_to_go = dare(A, B, self.tracking_Q, self.tracking_R)
        self._safe_radius = p.obstacle_radius + p.arm_length + self.safety_margin
        quadratic = QuadraticCost(PLAN_Q, PLAN_R, PLAN_QF, p.goal_state, p.hover_input)
        self.cost = ObstacleCost(
            quadratic, np.asarray(p.obstacle_center, float), self._safe_radius, obstacle_weight
        )
        self._params_attr = None if p == QuadrotorParams() else json.dumps(dataclasses.asdict(p))

    # -- planning ---------------------------------------------------------------------

    def reference_path(self, start: np.ndarray, mode: str) -> np.ndarray:
        """Warm-start reference ``(horizon, 6)`` passing the obstacle on ``mode``'s side.

        A quadratic Bezier curve from the start through a waypoint beside the obstacle
        (at its height, ``safe_radius + waypoint_clearance`` from its centre) to the goal,
        timed by a minimum-jerk profile, then a hover at the goal; level attitude.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        p = self.params
        sign = -1.0 if mode == "left" else 1.0
        center = np.asarray(p.obstacle_center, float)
        waypoint = center + np.array([sign * (self._safe_radius + self.waypoint_clearance), 0.0])
        p0, goal = start[:2], np.asarray(p.goal, float)
        control = 2.0 * waypoint - 0.5 * (p0 + goal)  # the curve passes the waypoint at s=1/2
        arrive = max(1, round(self.arrival_fraction * self.horizon))
        tau = np.minimum(np.arange(self.horizon) / arrive, 1.0)
        s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
        ds = (30 * tau**2 - 60 * tau**3 + 30 * tau**4) / (arrive * p.dt)
        ds[np.arange(self.horizon) >= arrive] = 0.0
        s, ds = s[:, None], ds[:, None]
        position = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * control + s**2 * goal
        velocity = (2 * (1 - s) * (control - p0) + 2 * s * (goal - control)) * ds
        reference = np.zeros((self.horizon, 6))
        reference[:, :2], reference[:, 3:5] = position, velocity
        return reference

    def warm_start(self, start: np.ndarray, mode: str) -> np.ndarray:
        """Inputs ``(horizon, 2)`` of a hover LQR tracking :meth:`reference_path`."""
        reference = self.reference_path(start, mode)
        x = np.asarray(start, dtype=np.float64)
        inputs = np.empty((self.horizon, 2))
        for t in range(self.horizon):
            u = self.params.hover_input - self._hover_gain @ (x - reference[t])
            inputs[t] = np.clip(u, self._low, self._high)
            x = self._f(x, inputs[t])
        return inputs

    def plan(self, start: np.ndarray, mode: str) -> ILQRResult:
        """iLQR plan from ``start (6,)`` to the goal hover on ``mode``'s side.

        Returns:
            the :class:`~hint_envs.experts.ilqr.ILQRResult` (``states (horizon + 1, 6)``,
            ``inputs (horizon, 2)``).
        """
        return ilqr(
            self._f,
            self._jac,
            self.cost,
            np.asarray(start, dtype=np.float64),
            self.warm_start(start, mode),
            self._low,
            self._high,
            self.options,
        )

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
                draws (mode, process noise).
            initial_state: ``(6,)`` exact start state instead of the seeded one.
            with_primitives: also synthesise the TVLQR controllers along the
                demonstration (:func:`hint_envs.synthesis.quadrotor.synthesize`).

        Returns:
            a :class:`~hint_envs.experts.base.Demonstration` of ``T = horizon`` steps (fewer
            if it crashed) with ``attrs``: ``seed``, ``mode`` (the side planned),
            ``side`` (the side actually taken, "none" if it never reached the obstacle's
            height), ``success`` (goal reached without crash), ``collision``,
            ``min_clearance`` (m, body to obstacle), ``plan_cost``, ``plan_iterations``,
            ``plan_converged``, ``process_noise`` and, for non-default constants,
            ``params`` (JSON).
        """
        seed = int(seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))
        mode = MODES[int(rng.random() >= 0.5)]
        noise = rng.standard_normal((self.horizon, 2)) * self._noise_std

        options = None if initial_state is None else {"state": initial_state}
        obs, info = self.env.reset(seed=seed, options=options)
        base: PlanarQuadrotorEnv = self.env.unwrapped
        start = base.get_state()

        plan = self.plan(start, mode)
        As, Bs = self._jac(plan.states[:-1], plan.inputs)
        gains = tvlqr(As, Bs, self.tracking_Q, self.tracking_R, self._hover_cost_to_go)

        observations, actions, rewards, states = [], [], [], []
        collision = False
        t = 0
        while True:
            x = base.get_state()
            k = min(t, self.horizon - 1)
            u = plan.inputs[k] - gains[k] @ (x - plan.states[k]) + noise[k]
            u = np.clip(u, self._low, self._high)
            observations.append(obs)
            states.append(x)
            actions.append(u)
            obs, reward, terminated, truncated, info = self.env.step(u)
            rewards.append(reward)
            collision = collision or bool(info.get("collision", False))
            t += 1
            if terminated or truncated:
                break
        final_state = base.get_state()
        states_arr = np.asarray(states)
        path = np.vstack([states_arr, final_state[None]])
        p = self.params
        clearance = (
            np.linalg.norm(path[:, :2] - np.asarray(p.obstacle_center), axis=-1)
            - p.obstacle_radius
            - p.arm_length
        )
        dones = np.zeros(t)
        dones[-1] = 1.0
        attrs = {
            "seed": seed,
            "mode": mode,
            "side": side_taken(path[:, :2], p.obstacle_center[1]),
            "success": bool(info.get("is_success", False)) and not collision,
            "collision": collision,
            "min_clearance": float(clearance.min()),
            "plan_cost": plan.cost,
            "plan_iterations": int(plan.iterations),
            "plan_converged": bool(plan.converged),
            "process_noise": self.process_noise,
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
