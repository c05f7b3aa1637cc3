"""Offline expert of PushT: sampling-based MPC (MPPI) that plans with gym-pusht's physics.

One demonstration (:meth:`PushTExpert.demonstrate`):

1. the start state comes from ``env.reset(seed=seed)`` of ``gym.make(env_id)`` (so an
   evaluation episode with the same seed starts there), or is given exactly;
2. every other random draw comes from
   ``np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))``: first the
   episode's *style* (the side of the block the first plan approaches, the planner's
   temperature and exploration scale), then the planner's sampling noise;
3. every ``replan_every`` control steps the planner (:class:`PushTPlanner`) builds
   fresh pymunk spaces holding ``samples`` copies of agent + block (with gym-pusht's own
   ``add_circle`` / ``add_tee`` / ``add_segment``), each copy translated far from the
   others with its own walls so copies never touch, all set to the current
   :meth:`~hint_envs.envs.pusht.PushTEnv.get_state`; it rolls out candidate target
   sequences with gym-pusht's PD sub-steps (one ``space.step`` advances every copy), costs
   them on the block's keypoints against the goal's, and refines the plan mean by MPPI;
4. the best plan's first ``replan_every`` targets are applied in the environment (clipped
   to ``[0, 512]``); the plan is shifted in time to warm-start the next replan.

A plan is ``knots`` via-points (absolute target positions, px) spread over ``horizon``
control steps and linearly interpolated. Each MPPI iteration (a fresh space per
iteration) rolls out the plan mean, the best plan so far, Gaussian perturbations of the
mean (a quarter of them three times wider) and ``push_fraction`` of fresh
relocate-and-push plans (:meth:`PushTPlanner.push_candidates`: round the block to a random
point of its outline, then a push of a depth scaled by the current error), which is what
gets the agent out of local minima where no perturbation of the current plan helps.
The cost of a rollout (per control step ``t``)::

    sum_t w_t kp_err_t + terminal_weight kp_err_H + min_weight min_t kp_err_t
        + agent_weight sum_t d_agent_t + smooth_weight sum_t |a_t - a_{t-1}|^2 / 100

where ``kp_err`` is the mean distance (px) of the block's 8 keypoints to the goal pose's,
``w_t`` grows linearly from 0.5 to 1 over the horizon, the ``min_t`` term rewards plans
that pass through the goal (an episode succeeds the first time coverage exceeds 0.95,
which takes a mean keypoint error below about 1.8 px), and ``d_agent`` is the agent's
distance (px) beyond 40 px from the block's centroid (it pulls the agent to the block).
gym-pusht's space has ``damping = 0`` (bodies keep no velocity between contacts), so the
block moves quasi-statically: only while the agent pushes it.

Planning is deterministic: the space is rebuilt from the state at every replan, and all
noise comes from the episode's generator, so ``demonstrate(seed)`` does not depend on what
the expert ran before. Planning rollouts agree with the environment only approximately
through contact (pymunk's contact cache is not part of the state), which replanning absorbs.

The recorded ``mode`` is ``"<face>/<turn>"``: the face of the T the agent first pushes in a
sustained contact (:data:`FACES`) and the sign of the block's net rotation (``"ccw"`` for
a positive change of pymunk's raw angle, else ``"cw"``).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np

import hint_envs  # noqa: F401  (registers the environment ids)
from hint_envs.core import Demonstration

__all__ = [
    "EXPERT_STREAM",
    "FACES",
    "PlannerSettings",
    "PushTExpert",
    "PushTPlanner",
    "contact_face",
]

logger = logging.getLogger(__name__)

#: Second entry of the expert's seed sequence (independent of the env's own stream).
EXPERT_STREAM = 0x9054_7E47
#: Faces of the T (mirror images merged), in the block frame (origin: mid outer edge of
#: the bar, bar 120 x 30 px along x, stem 30 x 90 px along +y).
FACES = ("top", "bar_end", "underside", "stem_side", "stem_tip")
#: Agent radius (px) and contact tolerance (px) of :func:`contact_face`.
AGENT_RADIUS = 15.0
CONTACT_TOLERANCE = 2.0
#: Consecutive contact steps on one face that count as a sustained push.
SUSTAINED_STEPS = 3
#: Copies of the planning space are translated this far apart (px) along x.
COPY_SPACING = 2000.0
#: The T's outline in the block frame (px), counter-clockwise in pymunk's frame.
OUTLINE = np.array(
    [(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30)], float
)
#: gym-pusht's walls (segment end points, px; radius 2).
WALLS = (((5, 506), (5, 5)), ((5, 5), (506, 5)), ((506, 5), (506, 506)), ((5, 506), (506, 506)))
#: The goal pose (x, y, angle) of the block, as gym-pusht sets it.
GOAL_POSE = (256.0, 256.0, math.pi / 4)


def _pusht_module():
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from gym_pusht.envs import pusht

    return pusht


def block_keypoints(local: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """World keypoints ``(..., 8, 2)`` of the T at body poses ``pose (..., 3)`` (x, y, angle).

    ``local (8, 2)`` are the vertices of the block's two shapes in the body frame, as
    gym-pusht's ``get_keypoints`` orders them.
    """
    c, s = np.cos(pose[..., 2:3]), np.sin(pose[..., 2:3])  # (..., 1)
    x = c * local[:, 0] - s * local[:, 1] + pose[..., 0:1]
    y = s * local[:, 0] + c * local[:, 1] + pose[..., 1:2]
    return np.stack([x, y], axis=-1)


def contact_face(agent: np.ndarray, block_pose: np.ndarray) -> str | None:
    """Which face of the T the agent touches, or None if it touches none.

    Args:
        agent: ``(2,)`` agent position (px).
        block_pose: ``(3,)`` block body pose (x, y, angle raw).

    Returns:
        one of :data:`FACES`, or None when the agent's centre is farther than
        ``AGENT_RADIUS + CONTACT_TOLERANCE`` from the T.
    """
    c, s = math.cos(block_pose[2]), math.sin(block_pose[2])
    dx, dy = agent[0] - block_pose[0], agent[1] - block_pose[1]
    x, y = c * dx + s * dy, -s * dx + c * dy  # block frame
    ax = abs(x)
    # (name, distance) of each face segment, mirror images merged by |x|
    faces = (
        ("top", _segment_distance(ax, y, (0, 0), (60, 0))),
        ("bar_end", _segment_distance(ax, y, (60, 0), (60, 30))),
        ("underside", _segment_distance(ax, y, (15, 30), (60, 30))),
        ("stem_side", _segment_distance(ax, y, (15, 30), (15, 120))),
        ("stem_tip", _segment_distance(ax, y, (0, 120), (15, 120))),
    )
    name, distance = min(faces, key=lambda f: f[1])
    return name if distance <= AGENT_RADIUS + CONTACT_TOLERANCE else None


def _segment_distance(x: float, y: float, a: tuple, b: tuple) -> float:
    ex, ey = b[0] - a[0], b[1] - a[1]
    t = ((x - a[0]) * ex + (y - a[1]) * ey) / (ex * ex + ey * ey)
    t = min(max(t, 0.0), 1.0)
    return math.hypot(x - a[0] - t * ex, y - a[1] - t * ey)


@dataclass(frozen=True)
class PlannerSettings:
    """Settings of :class:`PushTPlanner` (see the module docstring for the cost).

    Attributes:
        samples: candidate plans per iteration (copies in the planning space).
        iterations: MPPI iterations per replan.
        horizon: planning horizon (control steps of 0.1 s).
        knots: via-points of a plan (>= 4), spread evenly over the horizon.
        replan_every: control steps executed between replans (<= horizon).
        sigma: sampling standard deviation of the via-points (px), far from the goal.
        sigma_min: the smallest standard deviation (px), used when the block is at the
            goal; in between it scales with the keypoint error.
        temperature: MPPI temperature as a fraction of the spread of costs (min to median).
        terminal_weight: weight of the final keypoint error.
        agent_weight: weight of the agent's distance to the block.
        smooth_weight: weight of the squared target increments (per 100 px^2).
        push_fraction: fraction of the samples that are fresh relocate-and-push plans
            (:meth:`PushTPlanner.push_candidates`) rather than perturbations of the mean.
        min_weight: weight of the smallest keypoint error along the rollout (the episode
            succeeds, and ends, the first time coverage exceeds 0.95, which needs a mean
            keypoint error below about 1.8 px).
        depth_floor: the smallest upper bound (px) of a push's depth: near the goal,
            pushes go from 0 to this deep.
    """

    samples: int = 48
    iterations: int = 2
    horizon: int = 20
    knots: int = 5
    replan_every: int = 3
    sigma: float = 40.0
    sigma_min: float = 0.7
    temperature: float = 0.1
    terminal_weight: float = 2.0
    agent_weight: float = 0.05
    smooth_weight: float = 0.02
    push_fraction: float = 0.25
    min_weight: float = 40.0
    depth_floor: float = 0.5

    def __post_init__(self) -> None:
        for name in ("samples", "iterations", "horizon", "knots", "replan_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.samples < 2:
            raise ValueError(f"samples must be >= 2, got {self.samples}")
        if self.knots < 4 or self.knots > self.horizon:
            raise ValueError(f"knots must be in [4, horizon={self.horizon}], got {self.knots}")
        if self.replan_every > self.horizon:
            raise ValueError(
                f"replan_every ({self.replan_every}) must not exceed horizon ({self.horizon})"
            )
        if not 0.0 < self.sigma_min <= self.sigma:
            raise ValueError(
                f"need 0 < sigma_min <= sigma (px), got sigma_min={self.sigma_min}, "
                f"sigma={self.sigma}"
            )
        if not self.temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.push_fraction <= 0.5:
            raise ValueError(f"push_fraction must be in [0, 0.5], got {self.push_fraction}")
        for name in ("terminal_weight", "agent_weight", "smooth_weight", "min_weight"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


class PushTPlanner:
    """MPPI over via-point plans, rolled out in a batch of pymunk copies of the scene.

    Args:
        settings: the :class:`PlannerSettings`.
        k_p, k_v: gym-pusht's PD gains (1/s^2, 1/s); dt: its sub-step (s); substeps: sub-steps
            per control step.
    """

    def __init__(
        self,
        settings: PlannerSettings,
        k_p: float = 100.0,
        k_v: float = 20.0,
        dt: float = 0.01,
        substeps: int = 10,
    ) -> None:
        self.settings = settings
        self.k_p, self.k_v, self.dt, self.substeps = k_p, k_v, dt, substeps
        self._pusht = _pusht_module()
        self.local_keypoints = self._local_keypoints()
        self.goal_keypoints = block_keypoints(self.local_keypoints, np.asarray(GOAL_POSE))
        H, n = settings.horizon, settings.knots
        # (H, n) linear interpolation matrix from knots to per-step targets
        knot_times = np.linspace(0.0, H - 1, n)
        self.interp = np.zeros((H, n))
        for t in range(H):
            j = min(int(np.searchsorted(knot_times, t, side="right")) - 1, n - 2)
            f = (t - knot_times[j]) / (knot_times[j + 1] - knot_times[j])
            self.interp[t, j], self.interp[t, j + 1] = 1.0 - f, f
        self.knot_times = knot_times
        self.step_weights = np.linspace(0.5, 1.0, H)

    def _local_keypoints(self) -> np.ndarray:
        import pymunk

        space = pymunk.Space()
        _, shapes = self._pusht.PushTEnv.add_tee(space, (0, 0), 0)
        return np.array([tuple(v) for shape in shapes for v in shape.get_vertices()], float)

    # -- rollouts ------------------------------------------------------------------------

    def _build(self, state: np.ndarray, copies: int):
        """A fresh space with ``copies`` agent + block copies at ``state (10,)``."""
        import pymunk

        P = self._pusht.PushTEnv
        space = pymunk.Space()
        space.gravity = (0, 0)
        space.damping = 0.0
        agents, blocks = [], []
        for i in range(copies):
            ox = COPY_SPACING * i
            space.add(
                *[P.add_segment(space, (a[0] + ox, a[1]), (b[0] + ox, b[1]), 2) for a, b in WALLS]
            )
            agent = P.add_circle(space, (state[0] + ox, state[1]), 15)
            agent.velocity = (state[2], state[3])
            block, _ = P.add_tee(space, (0, 0), 0)
            block.angle = state[6]  # angle first: pymunk rotates about the centre of gravity
            block.position = (state[4] + ox, state[5])
            block.velocity = (state[7], state[8])
            block.angular_velocity = state[9]
            agents.append(agent)
            blocks.append(block)
        return space, agents, blocks

    def rollout(self, state: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Simulate target sequences ``(K, H, 2)`` (px) from ``state (10,)``.

        Returns:
            block poses ``(K, H, 3)`` and agent positions ``(K, H, 2)`` after each control
            step (positions in the table's frame).
        """
        K, H, _ = targets.shape
        space, agents, blocks = self._build(state, K)
        offset = np.zeros((K, 2))
        offset[:, 0] = COPY_SPACING * np.arange(K)
        p = np.broadcast_to(state[:2], (K, 2)).copy()
        v = np.broadcast_to(state[2:4], (K, 2)).copy()
        poses = np.empty((K, H, 3))
        agent_pos = np.empty((K, H, 2))
        dt, kp, kv = self.dt, self.k_p, self.k_v
        for t in range(H):
            a = targets[:, t]
            for _ in range(self.substeps):
                # gym-pusht's PD law on the kinematic agent; pymunk then moves it by v dt
                v = v + dt * (kp * (a - p) - kv * v)
                p = p + dt * v
                for agent, (vx, vy) in zip(agents, v.tolist(), strict=True):
                    agent.velocity = (vx, vy)
                space.step(dt)
            for k, block in enumerate(blocks):
                x, y = block.position
                poses[k, t] = (x, y, block.angle)
            agent_pos[:, t] = p
        poses[:, :, 0] -= offset[:, None, 0]
        return poses, agent_pos

    def costs(
        self, poses: np.ndarray, agent_pos: np.ndarray, targets: np.ndarray, start: np.ndarray
    ) -> np.ndarray:
        """Cost ``(K,)`` of rollouts (see the module docstring)."""
        s = self.settings
        err = self.keypoint_error(poses)  # (K, H)
        cost = err @ self.step_weights + s.terminal_weight * err[:, -1]
        cost += s.min_weight * err.min(axis=1)
        centroid = block_keypoints(self.local_keypoints, poses).mean(axis=-2)  # (K, H, 2)
        d_agent = np.maximum(np.linalg.norm(agent_pos - centroid, axis=-1) - 40.0, 0.0)
        cost += s.agent_weight * d_agent.sum(axis=1)
        steps = np.diff(
            np.concatenate([np.broadcast_to(start, (len(targets), 1, 2)), targets], 1), axis=1
        )
        cost += s.smooth_weight * (steps**2).sum(axis=(1, 2)) / 100.0
        return cost

    def keypoint_error(self, poses: np.ndarray) -> np.ndarray:
        """Mean keypoint distance (px) to the goal, ``(...)`` for poses ``(..., 3)``."""
        kp = block_keypoints(self.local_keypoints, poses)
        return np.linalg.norm(kp - self.goal_keypoints, axis=-1).mean(axis=-1)

    # -- MPPI ----------------------------------------------------------------------------

    def plan(
        self,
        state: np.ndarray,
        mean: np.ndarray,
        rng: np.random.Generator,
        temperature: float,
        explore: float,
    ) -> tuple[np.ndarray, float]:
        """Refine the via-points ``mean (knots, 2)`` from ``state (10,)``.

        Args:
            temperature: MPPI temperature (fraction of the min-to-median cost spread).
            explore: scale of the sampling noise (1: the settings' ``sigma``).

        Returns:
            the best via-points found ``(knots, 2)`` and their cost.
        """
        s = self.settings
        err = float(self.keypoint_error(np.array([state[4], state[5], state[6]])))
        sigma = explore * float(np.clip(s.sigma * err / 60.0, s.sigma_min, s.sigma))
        best, best_cost = mean.copy(), np.inf
        for _ in range(s.iterations):
            noise = rng.standard_normal((s.samples, s.knots, 2)) * sigma
            noise[0] = 0.0  # keep the mean itself
            wide = s.samples // 4  # a quarter explores more widely
            noise[1 : 1 + wide] *= 3.0
            knots = np.clip(mean[None] + noise, 0.0, 512.0)
            n_push = int(round(s.push_fraction * s.samples))
            if n_push:  # fresh pushes from random sides of the block
                knots[1 + wide : 1 + wide + n_push] = self.push_candidates(state, n_push, rng, err)
            knots[-1] = best  # and the best so far
            targets = np.einsum("hn,knd->khd", self.interp, knots)
            poses, agent_pos = self.rollout(state, targets)
            cost = self.costs(poses, agent_pos, targets, state[:2])
            k = int(np.argmin(cost))
            if cost[k] < best_cost:
                best, best_cost = knots[k].copy(), float(cost[k])
            spread = max(float(np.median(cost) - cost[k]), 1e-6)
            w = np.exp(-(cost - cost[k]) / (temperature * spread))
            mean = np.einsum("k,knd->nd", w / w.sum(), knots)
        return best, best_cost

    def push_candidates(
        self, state: np.ndarray, n: int, rng: np.random.Generator, err: float
    ) -> np.ndarray:
        """``n`` via-point plans ``(n, knots, 2)`` that relocate the agent and push.

        Each picks a random point of the T's outline (uniform in length), goes from the
        agent round the block's centroid (the shorter way, 110 px out; ``knots - 4`` detour
        via-points) to an approach point 25 px out along the outline's normal there, then
        pushes along a direction within 0.5 rad of the inward normal, to a depth beyond the
        outline of up to ``max(depth_floor, 1.5 err)`` px (``err``: the current keypoint
        error, px),
        and holds there (the last two via-points).
        """
        k = self.settings.knots
        edges = np.roll(OUTLINE, -1, axis=0) - OUTLINE
        lengths = np.hypot(edges[:, 0], edges[:, 1])
        u = rng.uniform(0.0, lengths.sum(), n)
        e = np.minimum(np.searchsorted(np.cumsum(lengths), u), len(edges) - 1)
        f = (u - (np.cumsum(lengths) - lengths)[e]) / lengths[e]
        point = OUTLINE[e] + f[:, None] * edges[e]
        normal = np.stack([edges[e, 1], -edges[e, 0]], -1) / lengths[e, None]  # outward
        tilt = rng.uniform(-0.5, 0.5, n)
        c, s_ = np.cos(tilt), np.sin(tilt)
        inward = -np.stack(
            [c * normal[:, 0] - s_ * normal[:, 1], s_ * normal[:, 0] + c * normal[:, 1]], -1
        )
        depth = rng.uniform(0.0, max(self.settings.depth_floor, 1.5 * err), n)  # px past touching
        local_approach = point + 25.0 * normal
        # the agent's centre touches the outline 15 px out along the normal
        local_push = point + AGENT_RADIUS * normal + depth[:, None] * inward
        pose = state[4:7]
        cth, sth = math.cos(pose[2]), math.sin(pose[2])
        rot = np.array([[cth, -sth], [sth, cth]])
        approach = local_approach @ rot.T + pose[:2]
        push = local_push @ rot.T + pose[:2]
        centroid = block_keypoints(self.local_keypoints, pose).mean(axis=0)
        rel, arel = state[:2] - centroid, approach - centroid
        a0 = math.atan2(rel[1], rel[0])
        d = np.angle(np.exp(1j * (np.arctan2(arel[:, 1], arel[:, 0]) - a0)))  # shorter way
        out = np.empty((n, k, 2))
        out[:, 0] = state[:2]
        # the last two knots push and hold (the PD agent lags its target by ~0.2 s);
        # any knots before the approach detour round the block
        g = np.linspace(0.0, 1.0, k - 2)[1:-1]
        angle = a0 + d[:, None] * g
        out[:, 1 : k - 3] = centroid + 110.0 * np.stack([np.cos(angle), np.sin(angle)], -1)
        out[:, k - 3] = approach
        out[:, k - 2 :] = push[:, None]
        return np.clip(out, 0.0, 512.0)

    def targets(self, knots: np.ndarray) -> np.ndarray:
        """Per-step targets ``(horizon, 2)`` of via-points ``(knots, 2)``."""
        return self.interp @ knots

    def shift(self, knots: np.ndarray, steps: int) -> np.ndarray:
        """Via-points of the plan ``steps`` control steps later (holding its last target)."""
        H = self.settings.horizon
        t = np.minimum(self.knot_times + steps, H - 1)
        path = self.targets(knots)
        return np.stack([np.interp(t, np.arange(H), path[:, d]) for d in range(2)], axis=-1)


class PushTExpert:
    """Multi-modal MPPI expert of ``hint_envs/PushT-v0`` (see the module docstring).

    Args:
        env_id: a registered id whose environment is :class:`hint_envs.envs.pusht.PushTEnv`.
        env_kwargs: its ``gym.make`` keyword arguments; ``obs_type`` (``"state"``, the
            default, or ``"keypoints"``) is the observation the demonstrations record.
        **settings: :class:`PlannerSettings` fields (``samples``, ``iterations``,
            ``horizon``, ``knots``, ``replan_every``, ``sigma``, ``sigma_min``,
            ``temperature``, ``terminal_weight``, ``agent_weight``, ``smooth_weight``).

    Raises:
        ValueError: an unknown or invalid setting.
    """

    def __init__(
        self,
        env_id: str = "hint_envs/PushT-v0",
        env_kwargs: dict[str, Any] | None = None,
        **settings: float,
    ) -> None:
        from hint_envs.envs.pusht import PushTEnv

        known = set(PlannerSettings.__dataclass_fields__)
        unknown = set(settings) - known
        if unknown:
            raise ValueError(
                f"unknown PushTExpert settings {sorted(unknown)}; known: {sorted(known)}"
            )
        self.settings = PlannerSettings(**settings)
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.env = gym.make(env_id, **self.env_kwargs)
        base = self.env.unwrapped
        if not isinstance(base, PushTEnv):
            raise TypeError(
                f"PushTExpert needs a hint_envs PushTEnv, but {env_id!r} makes "
                f"{type(base).__name__}"
            )
        steps = self.env.spec.max_episode_steps if self.env.spec is not None else None
        if steps is None:
            raise ValueError(f"{env_id!r} has no time limit (max_episode_steps)")
        self.max_steps = int(steps)
        p = base.params
        self.planner = PushTPlanner(self.settings, p.k_p, p.k_v, p.dt, p.substeps)

    def _initial_knots(self, state: np.ndarray, side: float, phase: float) -> np.ndarray:
        """First plan: from the agent round the block (on ``side``) to a point beside it.

        The end point lies 60 px from the block's centroid at angle ``phase`` (rad, world);
        the middle via-points bend the path by ``side`` (+1 / -1) around the centroid.
        """
        n = self.settings.knots
        centroid = block_keypoints(self.planner.local_keypoints, state[4:7]).mean(axis=0)
        start = state[:2]
        rel = start - centroid
        r0, a0 = max(float(np.hypot(*rel)), 60.0), math.atan2(rel[1], rel[0])
        da = (phase - a0) % (2 * math.pi)
        if side < 0:
            da -= 2 * math.pi
        f = np.linspace(0.0, 1.0, n)[1:]
        r = r0 + (60.0 - r0) * f
        angle = a0 + da * f
        knots = np.empty((n, 2))
        knots[0] = start
        knots[1:] = centroid + r[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
        return np.clip(knots, 0.0, 512.0)

    def demonstrate(self, seed: int, initial_state: np.ndarray | None = None) -> Demonstration:
        """One demonstration from ``env.reset(seed=seed)``, or from ``initial_state (10,)``.

        Returns:
            a :class:`~hint_envs.experts.base.Demonstration` of ``T <= 300`` steps, with
            ``attrs``: ``seed``, ``mode`` (``"<face>/<cw|ccw>"``), ``face``, ``turn``,
            ``success``, ``final_coverage``, ``max_coverage``, ``steps``, the style
            (``style_side``, ``style_phase``, ``style_temperature``, ``style_explore``)
            and the planner settings (``planner_*``).
        """
        seed = int(seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))
        side = 1.0 if rng.random() < 0.5 else -1.0
        phase = float(rng.uniform(-math.pi, math.pi))
        temperature = float(self.settings.temperature * rng.uniform(0.5, 2.0))
        explore = float(rng.uniform(0.8, 1.25))

        options = None if initial_state is None else {"state": initial_state}
        obs, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        s = self.settings
        state = base.get_state()
        start_angle = float(state[6])
        knots = self._initial_knots(state, side, phase)

        observations, actions, rewards, states = [], [], [], []
        coverages = [float(info["coverage"])]
        face, run_face, run = None, None, 0
        success = False
        t = 0
        done = False
        while not done:
            knots, _ = self.planner.plan(state, knots, rng, temperature, explore)
            targets = np.clip(self.planner.targets(knots), 0.0, 512.0)
            for k in range(s.replan_every):
                u = targets[k]
                observations.append(obs)
                states.append(state)
                actions.append(u)
                obs, reward, terminated, truncated, info = self.env.step(u)
                rewards.append(reward)
                coverages.append(float(info["coverage"]))
                t += 1
                state = base.get_state()
                if face is None:
                    now = contact_face(state[:2], state[4:7])
                    run = run + 1 if (now is not None and now == run_face) else int(now is not None)
                    run_face = now
                    if run >= SUSTAINED_STEPS:
                        face = now
                if terminated or truncated:
                    success = bool(info["is_success"])
                    done = True
                    break
            knots = self.planner.shift(knots, s.replan_every)

        final_state = state
        turn = "ccw" if final_state[6] - start_angle > 0 else "cw"
        face = face or "none"
        dones = np.zeros(t)
        dones[-1] = 1.0
        attrs = {
            "seed": seed,
            "mode": f"{face}/{turn}",
            "face": face,
            "turn": turn,
            "success": success,
            "final_coverage": coverages[-1],
            "max_coverage": max(coverages),
            "steps": t,
            "style_side": "ccw" if side > 0 else "cw",
            "style_phase": phase,
            "style_temperature": temperature,
            "style_explore": explore,
            **{f"planner_{k}": v for k, v in asdict(s).items()},
        }
        logger.debug("seed %d: mode %s, success %s, %d steps", seed, attrs["mode"], success, t)
        return Demonstration(
            observations=np.asarray(observations, dtype=np.float64),
            actions=np.asarray(actions, dtype=np.float64),
            rewards=np.asarray(rewards, dtype=np.float64),
            dones=dones,
            states=np.asarray(states),
            final_observation=np.asarray(obs, dtype=np.float64),
            final_state=final_state,
            attrs=attrs,
        )

    def close(self) -> None:
        """Close the environment the expert executes in."""
        self.env.close()
