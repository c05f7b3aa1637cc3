"""Scripted waypoint experts of the Robomimic tasks (Lift, Can, Square).

One demonstration (:meth:`RobomimicExpert.demonstrate`):

1. the start state comes from ``env.reset(seed=seed)`` of ``gym.make(env_id)`` (so an
   evaluation episode with the same seed starts there), or is given exactly;
2. every other random draw comes from
   ``np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))``: the episode's
   *style* (approach side, via-points, heights, speeds, grasp-yaw branch, drop point), drawn
   once at the start, then the smaller draws of any retry;
3. a script of waypoints, each computed from the object poses MuJoCo holds at the moment
   the segment starts (``env.unwrapped.sim``), is turned into per-step absolute targets
   (position, grip-site orientation as a rotation vector, gripper) by :class:`_Episode`:
   the position target moves towards the waypoint with a trapezoidal speed profile
   (bounded speed and acceleration per control step), the orientation by slerp with a
   bounded angle per step, so OSC tracks the targets closely;
4. after closing the gripper the expert checks the grasp (robosuite's ``_check_grasp``
   and the finger opening); a failed grasp (or an object dropped while carried) opens the
   gripper, backs up and approaches again from the object's new pose, until the episode
   ends (success terminates it; the time limit truncates it).

Grasps are top-down: the grip site's z axis points down and its x axis (the fingers'
closing direction) is turned by a *grasp yaw* ``psi`` about the world z axis,
``R = Rz(psi) R_down`` (:func:`down_rotation`); ``psi = 0`` is the home orientation (fingers
closing along the world y axis). Yaws are kept in about ``[-pi/2, pi/2]`` plus the turn of
the Square's nut, well inside the Panda's wrist range.

The recorded ``mode`` per task:

- Lift: ``"<face>/<side>"``: which pair of the cube's faces the fingers close on (``"x"``:
  the faces normal to the cube's x axis, ``"y"``: to its y axis) and the side of the
  via-point the hand passes on its way above the cube (``"left"``: +y, ``"right"``: -y of
  the straight path);
- Can: ``"<route>"``: the carry route from the can to its compartment, ``"front"`` (via a
  point at larger x, away from the robot) or ``"back"`` (closer to the robot);
- Square: ``"<turn>/<route>"``: the direction the nut is turned to square it with the peg
  (``"ccw"`` / ``"cw"``, of the two alignments within reach one is drawn) and the carry route
  (``"front"`` / ``"back"``).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import gymnasium as gym
import numpy as np
from scipy.spatial.transform import Rotation

import hint_envs  # noqa: F401  (registers the environment ids)
from hint_envs.core import Demonstration

__all__ = [
    "EXPERT_STREAM",
    "RobomimicCanExpert",
    "RobomimicExpert",
    "RobomimicLiftExpert",
    "RobomimicSquareExpert",
    "down_rotation",
]

logger = logging.getLogger(__name__)

#: Second entry of the expert's seed sequence (independent of the env's own stream).
EXPERT_STREAM = 0x0B0_3171
#: Grip-site orientation of a top-down grasp at yaw 0: site x (closing direction) = world y,
#: site y = world x, site z (approach) = world -z.
_DOWN = Rotation.from_matrix([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def down_rotation(yaw: float) -> Rotation:
    """Top-down grip-site orientation with the fingers' closing direction turned by ``yaw``.

    Args:
        yaw: rotation about the world z axis (rad); 0 closes the fingers along world y.

    Returns:
        the orientation ``Rz(yaw) R_down`` of the grip site.
    """
    return Rotation.from_euler("z", yaw) * _DOWN


def wrap(angle: float, period: float = 2 * math.pi) -> float:
    """``angle`` wrapped into ``[-period / 2, period / 2)``."""
    return (angle + period / 2) % period - period / 2


def body_yaw(xmat: np.ndarray) -> float:
    """Yaw (rad) of a body's x axis about the world z axis, from its ``xmat`` (9,)."""
    m = np.asarray(xmat).reshape(3, 3)
    return math.atan2(m[1, 0], m[0, 0])


class _EpisodeEnd(Exception):
    """Raised by :meth:`_Episode.step` when the environment terminates or truncates."""


class _Episode:
    """Turns waypoints into smooth absolute targets, steps the environment, records.

    Args:
        env: the (time-limited) Robomimic environment, already reset.
        obs: the observation ``reset`` returned.
    """

    def __init__(self, env: gym.Env, obs: np.ndarray) -> None:
        self.env = env
        self.base = env.unwrapped
        self.low = env.action_space.low
        self.high = env.action_space.high
        self.obs = obs
        self.pos = np.array(obs[:3], dtype=np.float64)
        self.rot = Rotation.from_rotvec(self.base.site_rotvec())
        self.grip = -1.0
        self.observations: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[float] = []
        self.states: list[np.ndarray] = []
        self.success = False
        self.unstable = False

    @property
    def t(self) -> int:
        """Steps taken so far."""
        return len(self.actions)

    @property
    def eef(self) -> np.ndarray:
        """Current grip-site position (m, world)."""
        return self.obs[:3]

    def step(self) -> None:
        """Apply the current target for one control step (raises at the episode's end)."""
        u = np.clip(self.base.absolute_action(self.pos, self.rot, self.grip), self.low, self.high)
        self.observations.append(np.asarray(self.obs, dtype=np.float64))
        self.states.append(self.base.get_state())
        self.actions.append(u)
        self.obs, reward, terminated, truncated, info = self.env.step(u)
        self.rewards.append(float(reward))
        if terminated or truncated:
            self.success = bool(info["is_success"])
            self.unstable = bool(info.get("unstable", False))
            raise _EpisodeEnd

    def move(
        self,
        pos: np.ndarray,
        rot: Rotation | None = None,
        speed: float = 0.01,
        accel: float = 0.002,
        ang_speed: float = 0.08,
        tol: float | None = 0.01,
        max_wait: int = 15,
        grip: float | None = None,
    ) -> None:
        """Move the target to ``pos`` (and ``rot``), then wait until the hand is near it.

        Args:
            pos: waypoint (m, world), clipped to the action space's position bounds.
            rot: grip-site orientation at the waypoint (None: keep the current target's).
            speed: top speed of the target (m per control step).
            accel: its acceleration and deceleration (m per step per step).
            ang_speed: top turn rate of the orientation target (rad per step).
            tol: wait (at most ``max_wait`` steps) until the hand is within ``tol`` m of the
                waypoint; None: do not wait.
            max_wait: the longest wait (steps).
            grip: gripper command during the move (None: keep it).
        """
        goal = np.clip(np.asarray(pos, dtype=np.float64), self.low[:3], self.high[:3])
        goal_rot = self.rot if rot is None else rot
        if grip is not None:
            self.grip = float(grip)
        v = 0.0
        while True:
            delta = goal - self.pos
            dist = float(np.linalg.norm(delta))
            turn = goal_rot * self.rot.inv()
            angle = float(turn.magnitude())
            if dist < 1e-6 and angle < 1e-6:
                break
            v = min(speed, v + accel, math.sqrt(2.0 * accel * dist) + accel)
            self.pos = goal.copy() if dist <= v else self.pos + delta * (v / dist)
            if angle <= ang_speed:
                self.rot = goal_rot
            else:
                self.rot = Rotation.from_rotvec(turn.as_rotvec() * (ang_speed / angle)) * self.rot
            self.step()
        if tol is not None:
            for _ in range(max_wait):
                if np.linalg.norm(self.eef - goal) < tol:
                    break
                self.step()

    def hold(self, steps: int, grip: float | None = None) -> None:
        """Hold the current target for ``steps`` control steps (with gripper ``grip``)."""
        if grip is not None:
            self.grip = float(grip)
        for _ in range(steps):
            self.step()


class RobomimicExpert:
    """Shared machinery of the scripted Robomimic experts (see the module docstring).

    Subclasses define :meth:`_style` (the episode's random choices and ``mode``) and
    :meth:`_script` (the waypoints).

    Args:
        env_id: a registered id whose environment is
            :class:`hint_envs.envs.robomimic.RobomimicEnv` of the subclass's task.
        env_kwargs: its ``gym.make`` keyword arguments.
        **settings: attributes of the expert to override (names of its class constants,
            e.g. ``speed_range=(0.008, 0.012)``).

    Raises:
        ValueError: an unknown setting, or an environment of another task.
    """

    task: str = ""
    #: Top speed of the hand's target in free space (m per step), drawn per episode.
    speed_range: tuple[float, float] = (0.009, 0.015)
    #: Top speed near the object (descents, m per step).
    slow_range: tuple[float, float] = (0.004, 0.007)
    #: Steps the gripper is given to close (it ramps over ~10 steps).
    close_steps: tuple[int, int] = (10, 14)

    def __init__(
        self, env_id: str = "", env_kwargs: dict[str, Any] | None = None, **settings: Any
    ) -> None:
        from hint_envs.envs.robomimic import RobomimicEnv

        env_id = env_id or f"hint_envs/Robomimic{self.task}-v0"
        for name, value in settings.items():
            if name.startswith("_") or not hasattr(type(self), name) or callable(value):
                raise ValueError(f"unknown {type(self).__name__} setting {name!r}")
            setattr(self, name, value)
        self.settings = dict(settings)
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})
        self.env = gym.make(env_id, **self.env_kwargs)
        base = self.env.unwrapped
        if not isinstance(base, RobomimicEnv) or base.task.name != self.task:
            raise ValueError(
                f"{type(self).__name__} needs a RobomimicEnv of task {self.task!r}, but "
                f"{env_id!r} makes {type(base).__name__}"
            )
        if base.action_type != "absolute":
            raise ValueError(f"{type(self).__name__} needs action_type='absolute'")
        self.sim = base.sim

    # -- to be defined per task ----------------------------------------------------------

    def _style(self, rng: np.random.Generator) -> dict[str, Any]:
        """The episode's random choices (JSON-serialisable), including ``mode``."""
        raise NotImplementedError

    def _script(self, ep: _Episode, style: dict[str, Any], rng: np.random.Generator) -> None:
        """Drive ``ep`` until the episode ends (it raises :class:`_EpisodeEnd`)."""
        raise NotImplementedError

    # -- shared helpers ------------------------------------------------------------------

    def _grasped(self, ep: _Episode, obj: Any) -> bool:
        """Whether both finger pads touch ``obj`` (robosuite's ``_check_grasp``) with the
        fingers not closed on nothing."""
        fingers = ep.obs[slice(*ep.base.obs_keys["robot0_gripper_qpos"])]
        gap = float(fingers[0] - fingers[1])
        gripper = self.sim.robots[0].gripper["right"]
        return bool(self.sim._check_grasp(gripper=gripper, object_geoms=obj)) and gap > 0.004

    def _release_and_back_off(self, ep: _Episode, rng: np.random.Generator) -> None:
        """Open the gripper and raise the hand (the start of a retry)."""
        ep.hold(int(rng.integers(6, 10)), grip=-1.0)
        up = ep.pos + np.array([0.0, 0.0, rng.uniform(0.06, 0.1)])
        ep.move(up, speed=0.01, tol=None)

    # -- the demonstration ---------------------------------------------------------------

    def demonstrate(self, seed: int, initial_state: np.ndarray | None = None) -> Demonstration:
        """One demonstration from ``env.reset(seed=seed)``, or from ``initial_state``.

        Returns:
            a :class:`~hint_envs.experts.base.Demonstration` of ``T <= 400`` steps, with
            ``attrs``: ``seed``, ``mode``, ``success``, ``steps``, ``unstable``,
            ``attempts`` (grasps tried) and the episode's style (``style_*``).
        """
        seed = int(seed)
        rng = np.random.default_rng(np.random.SeedSequence([seed, EXPERT_STREAM]))
        style = self._style(rng)
        options = None if initial_state is None else {"state": initial_state}
        obs, _ = self.env.reset(seed=seed, options=options)
        ep = _Episode(self.env, obs)
        self._attempts = 0
        try:
            self._script(ep, style, rng)
            while True:  # the script gave up: hold until the time limit
                ep.step()
        except _EpisodeEnd:
            pass
        T = ep.t
        dones = np.zeros(T)
        dones[-1] = 1.0
        attrs = {
            "seed": seed,
            "mode": style["mode"],
            "success": ep.success,
            "steps": T,
            "unstable": ep.unstable,
            "attempts": self._attempts,
            **{f"style_{k}": v for k, v in style.items() if k != "mode"},
        }
        logger.debug("seed %d: mode %s, success %s, %d steps", seed, style["mode"], ep.success, T)
        return Demonstration(
            observations=np.asarray(ep.observations, dtype=np.float64),
            actions=np.asarray(ep.actions, dtype=np.float64),
            rewards=np.asarray(ep.rewards, dtype=np.float64),
            dones=dones,
            states=np.asarray(ep.states, dtype=np.float64),
            final_observation=np.asarray(ep.obs, dtype=np.float64),
            final_state=self.env.unwrapped.get_state(),
            attrs=attrs,
        )

    def close(self) -> None:
        """Close the environment the expert executes in."""
        self.env.close()


class RobomimicLiftExpert(RobomimicExpert):
    """Lift: above the cube (past a via-point on a drawn side), descend, close, raise."""

    task = "Lift"

    def _style(self, rng: np.random.Generator) -> dict[str, Any]:
        face = "x" if rng.random() < 0.5 else "y"
        side = "left" if rng.random() < 0.5 else "right"
        return {
            "mode": f"{face}/{side}",
            "face": face,
            "side": side,
            "via_offset": float(rng.uniform(0.04, 0.1)),
            "via_height": float(rng.uniform(0.1, 0.18)),
            "approach_height": float(rng.uniform(0.04, 0.1)),
            "grasp_dz": float(rng.uniform(-0.008, 0.004)),
            "speed": float(rng.uniform(*self.speed_range)),
            "slow": float(rng.uniform(*self.slow_range)),
            "close_steps": int(rng.integers(*self.close_steps)),
            "lift_height": float(rng.uniform(0.08, 0.15)),
        }

    def _cube(self) -> tuple[np.ndarray, float]:
        data = self.sim.sim.data
        bid = self.sim.cube_body_id
        return np.array(data.body_xpos[bid]), body_yaw(data.body_xmat[bid])

    def _script(self, ep: _Episode, style: dict[str, Any], rng: np.random.Generator) -> None:
        speed, slow = style["speed"], style["slow"]
        first = True
        while True:
            self._attempts += 1
            cube, yaw = self._cube()
            # fingers close along the cube's x axis ("x" faces) or y axis ("y" faces)
            psi = wrap(yaw + (math.pi / 2 if style["face"] == "x" else 0.0), math.pi)
            rot = down_rotation(psi)
            if first:
                start = ep.eef.copy()
                path = cube[:2] - start[:2]
                normal = np.array([-path[1], path[0]]) / max(np.linalg.norm(path), 1e-6)
                sign = 1.0 if style["side"] == "left" else -1.0
                if normal[1] * sign < 0:
                    normal = -normal
                via = np.append(
                    start[:2] + 0.5 * path + style["via_offset"] * normal,
                    cube[2] + style["via_height"],
                )
                ep.move(via, rot, speed=speed, tol=None)
                first = False
            above = cube + np.array([0.0, 0.0, style["approach_height"]])
            ep.move(above, rot, speed=speed, tol=0.01)
            cube, _ = self._cube()
            ep.move(cube + np.array([0.0, 0.0, style["grasp_dz"]]), rot, speed=slow, tol=0.006)
            ep.hold(style["close_steps"], grip=1.0)
            lift = ep.pos + np.array([0.0, 0.0, style["lift_height"]])
            ep.move(lift, speed=slow, tol=None)  # success (cube 4 cm up) ends the episode
            ep.hold(5)
            self._release_and_back_off(ep, rng)


class RobomimicCanExpert(RobomimicExpert):
    """Can: grasp the can from above, carry it (by a drawn route) over its compartment of
    the right bin (``sim.target_bin_placements[sim.object_id]``), lower, release, retreat."""

    task = "Can"

    def _style(self, rng: np.random.Generator) -> dict[str, Any]:
        route = "front" if rng.random() < 0.5 else "back"
        return {
            "mode": route,
            "route": route,
            "grasp_yaw": float(rng.uniform(-math.pi / 2, math.pi / 2)),
            "approach_height": float(rng.uniform(0.08, 0.14)),
            "grasp_dz": float(rng.uniform(-0.005, 0.012)),
            "carry_height": float(rng.uniform(1.02, 1.1)),
            "via_offset": float(rng.uniform(0.04, 0.12)),
            "drop_offset": rng.uniform(-0.03, 0.03, size=2).tolist(),
            "drop_height": float(rng.uniform(0.01, 0.03)),
            "speed": float(rng.uniform(*self.speed_range)),
            "slow": float(rng.uniform(*self.slow_range)),
            "close_steps": int(rng.integers(*self.close_steps)),
        }

    def _can(self) -> tuple[np.ndarray, np.ndarray]:
        data = self.sim.sim.data
        obj = self.sim.objects[self.sim.object_id]
        bid = self.sim.obj_body_id[obj.name]
        return np.array(data.body_xpos[bid]), np.array(data.body_xmat[bid]).reshape(3, 3)

    def _script(self, ep: _Episode, style: dict[str, Any], rng: np.random.Generator) -> None:
        sim = self.sim
        obj = sim.objects[sim.object_id]
        speed, slow = style["speed"], style["slow"]
        target = np.array(sim.target_bin_placements[sim.object_id], dtype=np.float64)
        drop = target[:2] + np.asarray(style["drop_offset"])
        psi = style["grasp_yaw"]
        while True:
            self._attempts += 1
            can, mat = self._can()
            axis = mat[:, 2]
            if abs(axis[2]) < 0.7:  # lying on its side: close across the axis
                psi = wrap(math.atan2(axis[1], axis[0]), math.pi)
            rot = down_rotation(psi)
            above = can + np.array([0.0, 0.0, style["approach_height"]])
            above[2] = max(above[2], 0.98)
            ep.move(above, rot, speed=speed, tol=0.01)
            can, _ = self._can()
            dz = style["grasp_dz"] if abs(axis[2]) >= 0.7 else 0.0
            ep.move(can + np.array([0.0, 0.0, dz]), rot, speed=slow, tol=0.006)
            ep.hold(style["close_steps"], grip=1.0)
            ep.move(ep.pos + np.array([0.0, 0.0, 0.05]), speed=slow, tol=None)
            if not self._grasped(ep, obj):
                self._release_and_back_off(ep, rng)
                psi = wrap(psi + rng.uniform(-0.5, 0.5), math.pi)
                continue
            offset = self._can()[0] - ep.eef  # can centre relative to the hand
            up = ep.pos.copy()
            up[2] = style["carry_height"]
            ep.move(up, speed=speed, tol=None)
            sign = 1.0 if style["route"] == "front" else -1.0
            mid = 0.5 * (up[:2] + drop)
            via = np.array([mid[0] + sign * style["via_offset"], mid[1], style["carry_height"]])
            ep.move(via, speed=speed, tol=None)
            over = np.array([*(drop - offset[:2]), style["carry_height"]])
            ep.move(over, speed=speed, tol=0.01)
            if not self._grasped(ep, obj):
                self._release_and_back_off(ep, rng)
                continue
            # can bottom (half height 4 cm) a little above the bin floor (z = 0.82)
            low = over.copy()
            low[2] = 0.82 + 0.04 + style["drop_height"] - offset[2]
            ep.move(low, speed=slow, tol=0.01)
            ep.hold(int(rng.integers(6, 10)), grip=-1.0)
            ep.move(low + np.array([0.0, 0.0, 0.12]), speed=slow, tol=None)
            ep.hold(5)


class RobomimicSquareExpert(RobomimicExpert):
    """Square: grasp the nut by its handle, turn it square with the peg (yaw modulo 90°),
    carry it over the square peg, lower it down the peg, release."""

    task = "Square"
    slow_range = (0.004, 0.006)

    def _style(self, rng: np.random.Generator) -> dict[str, Any]:
        route = "front" if rng.random() < 0.5 else "back"
        return {
            "turn_draw": float(rng.random()),
            "route": route,
            "mode": route,  # completed with the turn direction once the nut is seen
            "approach_height": float(rng.uniform(0.06, 0.12)),
            "grasp_dz": float(rng.uniform(-0.004, 0.004)),
            "carry_height": float(rng.uniform(1.02, 1.08)),
            "via_offset": float(rng.uniform(0.03, 0.1)),
            "speed": float(rng.uniform(*self.speed_range)),
            "slow": float(rng.uniform(*self.slow_range)),
            "close_steps": int(rng.integers(*self.close_steps)),
        }

    def _nut(self) -> tuple[np.ndarray, float, np.ndarray]:
        """Nut centre (m), yaw (rad) and handle position (m)."""
        sim = self.sim
        data = sim.sim.data
        nut = sim.nuts[sim.nut_id]
        bid = sim.obj_body_id[nut.name]
        handle = np.array(data.site_xpos[sim.object_site_ids[sim.nut_id]])
        return np.array(data.body_xpos[bid]), body_yaw(data.body_xmat[bid]), handle

    def _script(self, ep: _Episode, style: dict[str, Any], rng: np.random.Generator) -> None:
        sim = self.sim
        nut_model = sim.nuts[sim.nut_id]
        speed, slow = style["speed"], style["slow"]
        peg = np.array(sim.sim.data.body_xpos[sim.peg1_body_id])
        first = True
        while True:
            self._attempts += 1
            _, yaw, handle = self._nut()
            psi = wrap(yaw, math.pi)  # fingers close across the handle (the nut's y axis)
            rot = down_rotation(psi)
            above = handle + np.array([0.0, 0.0, style["approach_height"]])
            ep.move(above, rot, speed=speed, tol=0.01)
            _, _, handle = self._nut()
            ep.move(handle + np.array([0.0, 0.0, style["grasp_dz"]]), rot, speed=slow, tol=0.005)
            ep.hold(style["close_steps"], grip=1.0)
            ep.move(ep.pos + np.array([0.0, 0.0, 0.04]), speed=slow, tol=None)
            if not self._grasped(ep, nut_model):
                self._release_and_back_off(ep, rng)
                continue
            # turn: the nut's yaw onto a multiple of 90 degrees, two candidates within reach
            centre, yaw, _ = self._nut()
            near = wrap(-yaw, math.pi / 2)
            far = near - math.copysign(math.pi / 2, near)
            options = [d for d in (near, far) if abs(psi + d) < 2.2]
            turn = options[0] if len(options) == 1 or style["turn_draw"] < 0.5 else options[1]
            if first:
                style["mode"] = f"{'ccw' if turn > 0 else 'cw'}/{style['route']}"
                style["turn"] = float(turn)
                first = False
            psi_goal = psi + turn
            rot_goal = down_rotation(psi_goal)
            # nut centre in the hand's yaw frame, to place the centre over the peg
            offset = Rotation.from_euler("z", -psi).apply(centre - ep.eef)
            up = ep.pos.copy()
            up[2] = style["carry_height"]
            ep.move(up, speed=slow, tol=None)
            hand_goal = peg[:2] - Rotation.from_euler("z", psi_goal).apply(offset)[:2]
            sign = 1.0 if style["route"] == "front" else -1.0
            mid = 0.5 * (up[:2] + hand_goal)
            via = np.array([mid[0] + sign * style["via_offset"], mid[1], style["carry_height"]])
            ep.move(via, rot_goal, speed=speed, ang_speed=0.06, tol=None)
            over = np.array([*hand_goal, style["carry_height"]])
            ep.move(over, rot_goal, speed=speed, tol=0.005, max_wait=20)
            if not self._grasped(ep, nut_model):
                self._release_and_back_off(ep, rng)
                continue
            # centre the nut over the peg from its measured pose, then lower it
            for _ in range(3):
                centre, _, _ = self._nut()
                error = peg[:2] - centre[:2]
                if np.linalg.norm(error) < 0.002:
                    break
                ep.move(ep.pos + np.append(error, 0.0), speed=slow, tol=0.003, max_wait=10)
            low = ep.pos.copy()
            low[2] -= (centre[2] - 0.83) + 0.01
            ep.move(low, speed=slow, tol=0.005, max_wait=15)
            ep.hold(int(rng.integers(6, 10)), grip=-1.0)
            ep.move(ep.pos + np.array([0.0, 0.0, 0.1]), speed=slow, tol=None)
            first = False
