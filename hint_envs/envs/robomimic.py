"""Robomimic Lift, Can and Square: robosuite's Panda tasks as control environments.

The simulation is robosuite 1.5's own environment (``Lift``, ``PickPlaceCan``,
``NutAssemblySquare``), driven directly (not through robomimic's env wrapper, which needs
``mujoco_py``), with the settings of robomimic's low-dimensional benchmarks: one Panda,
operational-space pose control (``OSC_POSE``) at 20 Hz, sparse reward, no cameras and no
rendering unless asked. What this module adds is the control-environment contract of
:mod:`hint_envs.core` (``control_indices`` = the end-effector position, exact reset from
the flattened MuJoCo state, ``get_state``), robomimic's low-dim observation keys as one
flat Box, seeding from Gymnasium's ``np_random``, input validation, and the detection of an
unstable simulation.

MuJoCo never returns NaN from an unstable step: ``mj_checkPos/Vel/Acc`` reset the data to
the model's reference pose and count a warning. :class:`RobomimicEnv` watches those
counters (and that every observation is finite and inside the observation space); a step
that trips them ends the episode with ``info["unstable"] = True`` and returns the last good
observation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from scipy.spatial.transform import Rotation

from hint_envs.core import (
    STATE_OPTION,
    EpisodeGuard,
    check_action,
    check_render_args,
    check_state,
    check_state_bounds,
)

logger = logging.getLogger(__name__)


def _log_mujoco_warning(message: str) -> None:
    """MuJoCo's warnings go to this module's logger, not to a file in the working folder."""
    logger.warning("MuJoCo: %s", message)


#: Reset option restoring the gripper's command ramp with a mid-episode state.
GRIPPER_OPTION = "gripper_action"
#: Extra that installs the simulator.
PIP_EXTRA = 'pip install "hint_envs[robomimic]"'
#: Control frequency (Hz), as robomimic's datasets were collected.
CONTROL_FREQ = 20
#: Episode length robomimic (and Diffusion Policy) evaluate these tasks with: 20 s.
HORIZON = 400
#: Robot observation keys, in the order of the flat observation (robomimic's names).
ROBOT_KEYS: tuple[tuple[str, int], ...] = (
    ("robot0_eef_pos", 3),
    ("robot0_eef_quat", 4),
    ("robot0_gripper_qpos", 2),
)
#: Input layout: absolute end-effector target or robosuite's scaled delta.
ACTION_TYPES = ("absolute", "delta")
#: Orientation representations: ``rotvec`` (robomimic's own: quaternions observed, a
#: rotation vector commanded) or ``rot6d`` (the first two columns of the rotation matrix,
#: observed and commanded: continuous, unlike both of the others).
ROTATIONS = ("rotvec", "rot6d")
#: Bounds of the absolute position target (m, world frame): the reachable space above the
#: table (the table top is at z = 0.8 m; the base of the arm at x = -0.56 m).
POSITION_BOUNDS = np.array([[-0.45, -0.55, 0.75], [0.45, 0.55, 1.35]])
#: Seed of robosuite's draws when it builds the model (Lift's cube edge, 2.0-2.2 cm): the
#: model is built once per environment, so every instance holds the same one.
MODEL_SEED = 0
#: Observation bounds: positions and relative vectors (m) within the 10 m arena floor
#: (robosuite's floor plane is unbounded, but nothing here moves that far), quaternions
#: within the unit ball, finger joints (m) within their limits (0-4 cm) plus contact slack.
POSITION_LIMIT = 10.0
FINGER_LIMIT = 0.1
#: MuJoCo warnings that mean the simulation blew up (mjtWarning indices).
_UNSTABLE_WARNINGS = ("mjWARN_BADQPOS", "mjWARN_BADQVEL", "mjWARN_BADQACC")


def matrix_to_rot6d(matrix: np.ndarray) -> np.ndarray:
    """The 6-D representation of rotation matrices ``(..., 3, 3)``: their first two
    columns, ``(..., 6)`` = ``[c1, c2]`` (Zhou et al. 2019; Diffusion Policy's actions).

    Unlike a quaternion (``q`` and ``-q`` are one rotation) or a rotation vector (which
    jumps from ``pi n`` to ``-pi n``), it is a continuous function of the rotation.
    """
    m = np.asarray(matrix, dtype=np.float64)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def rot6d_to_matrix(rot6d: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from 6-D representations ``(..., 6)`` by
    Gram-Schmidt: ``c1`` normalised, ``c2`` made orthogonal to it and normalised,
    ``c3 = c1 x c2``. The inverse of :func:`matrix_to_rot6d` on its image.

    Raises:
        ValueError: a representation whose two columns are (nearly) zero or parallel.
    """
    r = np.asarray(rot6d, dtype=np.float64)
    a, b = r[..., :3], r[..., 3:6]
    norm_a = np.linalg.norm(a, axis=-1, keepdims=True)
    c1 = a / np.maximum(norm_a, 1e-12)
    b = b - np.sum(c1 * b, axis=-1, keepdims=True) * c1
    norm_b = np.linalg.norm(b, axis=-1, keepdims=True)
    if np.any(norm_a < 1e-6) or np.any(norm_b < 1e-6):
        raise ValueError(
            f"a 6-D rotation needs two non-zero, non-parallel columns; got {r.tolist()}"
        )
    c2 = b / norm_b
    return np.stack([c1, c2, np.cross(c1, c2)], axis=-1)


def quat_to_rot6d(quat: np.ndarray) -> np.ndarray:
    """6-D representations ``(..., 6)`` of quaternions ``(..., 4)`` in robosuite's
    ``(x, y, z, w)`` order (either sign of ``q`` gives the same result)."""
    q = np.asarray(quat, dtype=np.float64)
    matrix = Rotation.from_quat(q.reshape(-1, 4)).as_matrix()
    return matrix_to_rot6d(matrix).reshape(q.shape[:-1] + (6,))


@dataclass(frozen=True)
class TaskSpec:
    """One robomimic task: its robosuite environment and what its object state holds."""

    name: str
    robosuite_env: str
    description: str


TASKS: dict[str, TaskSpec] = {
    "Lift": TaskSpec("Lift", "Lift", "lift the red cube above the table"),
    "Can": TaskSpec("Can", "PickPlaceCan", "pick the can and place it in its bin compartment"),
    "Square": TaskSpec("Square", "NutAssemblySquare", "fit the square nut over the square peg"),
}


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _import_robosuite():
    """Import robosuite quietly, or raise DependencyNotInstalled naming the extra.

    robosuite logs a handful of warnings at import (no private macro file, optional robot
    models and IK solvers absent) that do not concern these tasks: its logger passes only
    errors here.
    """
    robosuite_logger = logging.getLogger("robosuite_logs")
    if _errors_only not in robosuite_logger.filters:
        robosuite_logger.addFilter(_errors_only)
    try:
        import robosuite
        from robosuite.controllers import load_composite_controller_config
    except ImportError as err:
        raise gym.error.DependencyNotInstalled(
            f"the Robomimic environments need robosuite 1.5 and MuJoCo ({err}); install them "
            f"with {PIP_EXTRA}"
        ) from err
    return robosuite, load_composite_controller_config


def controller_config(action_type: str = "absolute") -> dict:
    """robosuite's composite-controller config: OSC_POSE on the Panda's arm, its gripper.

    ``absolute``: the input is the end-effector target in the world frame (robomimic's
    ``control_delta = False``); ``delta``: robosuite's default scaled delta in the base
    frame (±1 -> ±5 cm, ±0.5 rad per step).
    """
    if action_type not in ACTION_TYPES:
        raise ValueError(f"action_type must be one of {ACTION_TYPES}, got {action_type!r}")
    _, load = _import_robosuite()
    config = load(controller="BASIC")
    arm = dict(config["body_parts"]["right"])
    arm["type"] = "OSC_POSE"
    if action_type == "absolute":
        arm.update(input_type="absolute", input_ref_frame="world")
    config["body_parts"] = {"right": arm}
    return config


def make_robosuite(task: str, action_type: str = "absolute", offscreen: bool = False):
    """The robosuite environment a :class:`RobomimicEnv` steps, with robomimic's settings.

    One Panda, OSC_POSE at 20 Hz (:func:`controller_config`), sparse reward, object
    observations, no cameras; ``ignore_done`` (the registration's TimeLimit ends episodes),
    ``hard_reset=False`` (one MuJoCo model per environment: a reset re-samples the objects
    in place, far cheaper than rebuilding the model; timings in
    docs/results/robomimic_expert.md) and the model built from
    :data:`MODEL_SEED`. ``offscreen`` enables the offscreen renderer.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    robosuite, _ = _import_robosuite()
    return robosuite.make(
        TASKS[task].robosuite_env,
        robots="Panda",
        controller_configs=controller_config(action_type),
        has_renderer=False,
        has_offscreen_renderer=offscreen,
        use_camera_obs=False,
        use_object_obs=True,
        control_freq=CONTROL_FREQ,
        ignore_done=True,
        reward_shaping=False,
        hard_reset=False,
        horizon=HORIZON,
        seed=MODEL_SEED,
    )


class RobomimicEnv(gym.Env):
    """## Description
    robomimic's low-dimensional manipulation tasks on robosuite 1.5: a Franka Panda with
    a parallel-jaw gripper, operational-space pose control (``OSC_POSE``, robosuite's
    defaults: kp = 150, critically damped) at 20 Hz (25 MuJoCo steps of 2 ms per control
    step). ``task`` selects one of

    | task | robosuite env | goal |
    |------|---------------|------|
    | ``Lift`` | ``Lift`` | lift the red cube above the table |
    | ``Can`` | ``PickPlaceCan`` | pick the can and place it in its bin compartment |
    | ``Square`` | ``NutAssemblySquare`` | fit the square nut over the square peg |

    The robosuite environment is ``self.sim`` (its MuJoCo binding ``self.sim.sim``); its
    physics, object placement, reward and success check are robosuite's own, unchanged.

    It is a *control environment* (:mod:`hint_envs.core`): ``control_indices = [0, 1, 2]``
    names the end-effector position, so a primitive controller
    ``u = u_bar + K (p - p_bar)`` feeds back on where the gripper is (the gain acts on the
    position rows of ``u``).

    ## Action Space
    ``action_type="absolute"`` (default, as in the HINT paper's runs), ``Box(7,)`` float64:

    | Num | Input | Unit |
    |-----|-------|------|
    | 0-2 | end-effector target position, world frame (bounds :data:`POSITION_BOUNDS`) | m |
    | 3-5 | target orientation of the grip site, world frame, rotation vector | rad |
    | 6 | gripper: -1 open ... +1 closed | - |

    ``site_rotvec()`` reads the grip site's current orientation in that form.
    With ``rotation="rot6d"`` the input is ``Box(10,)``: rows 3-8 hold the target
    orientation as the first two columns of its rotation matrix (each in [-1, 1]; the
    environment orthonormalises them by Gram-Schmidt, :func:`rot6d_to_matrix`), row 9 the
    gripper. ``absolute_action(position, rotation, gripper)`` builds an input in either
    layout. ``action_type="delta"``: ``Box(-1, 1, (7,))``, robosuite's scaled delta (±1 = 5 cm and
    0.5 rad per step, base frame) and the gripper. Inputs outside the box are clipped to it;
    a wrong shape or NaN/inf raises ``ValueError``.

    ## Observation Space
    ``Box(9 + d_object,)`` float64, robomimic's low-dim keys in this order:

    | Slice | robomimic key | Observation |
    |-------|---------------|-------------|
    | 0-2 | ``robot0_eef_pos`` | end-effector (hand) position, world frame, m |
    | 3-6 | ``robot0_eef_quat`` | end-effector (hand) orientation, quaternion (x, y, z, w) |
    | 7-8 | ``robot0_gripper_qpos`` | the two finger joint positions, m |
    | 9- | ``object`` | robosuite's ``object-state`` (:attr:`object_keys` names its parts) |

    Bounds: ±1 for quaternions, ±0.1 m for the fingers, ±10 m for positions and relative
    vectors (:data:`POSITION_LIMIT`). The object state is 10 floats for Lift (cube
    position, quaternion, gripper-to-cube vector) and 14 for Can and Square (the object's
    position and quaternion relative to the end-effector, then in the world frame).
    ``obs_keys`` gives the slices. With ``rotation="rot6d"`` every quaternion (the
    end-effector's, ``robot0_eef_rot6d``, and the object's, ``*_rot6d`` in
    :attr:`object_keys`) is replaced by the first two columns of its rotation matrix
    (6 floats in [-1, 1]): ``Box(23,)`` for Lift, ``Box(29,)`` for Can and Square.

    ## Rewards
    robosuite's sparse reward: 1 on a step where the task succeeds, else 0.

    Success is robosuite's check: Lift, the cube's centre more than 4 cm above the
    table top; Can, the can inside its bin compartment with the hand more than
    4.24 cm from its centre (so it must be let go); Square, the nut's centre below
    z = 0.87 m and within 3 cm of the square peg's axis, the hand more than 4.24 cm from
    the nut's centre (a nut held by its handle counts).

    ## Starting State
    robosuite's own: the arm at its home pose with Gaussian joint noise (σ = 0.02 rad) and
    the objects placed by robosuite's samplers (Lift: the cube in a 6 cm square; Can: the
    can anywhere in the left bin; Square: the nut in a 23 x 23 cm patch, any yaw), all
    drawn from ``self.np_random``, so ``reset(seed=s)`` always gives the same start. The
    MuJoCo model is built once per environment (robosuite's ``hard_reset=False``) from
    robosuite's seed :data:`MODEL_SEED`, so Lift's cube has the same edge in every
    instance (robomimic's collection rebuilt the model, and redrew the edge, per episode).
    ``options={"state": s}`` instead puts MuJoCo into an exact state: ``s`` is the
    flattened state ``[time, qpos, qvel]`` robomimic stores as ``states`` (``get_state()``
    returns it; 32 floats for Lift, 71 for Can, 45 for Square), finite and giving an
    observation inside the observation space (else ``ValueError`` naming the observation
    entries out of bounds; the environment is then reset to robosuite's draw). So that a
    saved state determines the rest of an episode, the null-space posture target of
    robosuite's OSC is the Panda's noise-free home configuration (robosuite uses the noised
    start, which no state records); a restored episode then replays bit for bit. One more
    quantity is not in the MuJoCo state: the gripper's command ramp
    (``gripper_action()``), which is 0 at every episode start, so restoring ``states[0]``
    is exact; with a mid-episode state pass it too, ``options={"state": s,
    "gripper_action": g}``, and the episode replays to within MuJoCo's solver warm start
    (``qacc_warmstart``, also not in the state; ~1e-5 m).

    ## Episode End
    Terminated when robosuite's success check passes (``info["is_success"]``), as robomimic
    ends its rollouts, or when the simulation becomes unstable (``info["unstable"]``, see
    the module docstring); truncated after :data:`HORIZON` = 400 steps (20 s), the horizon
    robomimic and Diffusion Policy evaluate these tasks with (the registration's limit).

    ## Arguments
    ``gym.make("hint_envs/RobomimicCan-v0", action_type="absolute", rotation="rotvec",
    render_mode="rgb_array", render_size=256, camera="agentview")``. ``rotation``
    (:data:`ROTATIONS`) picks how orientations are observed and, with absolute inputs,
    commanded: ``"rotvec"``, robomimic's quaternions and rotation vectors; ``"rot6d"``, the
    continuous 6-D representation a small network can learn (a top-down grasp sits where
    the rotation vector flips sign and the quaternion's ``w`` crosses 0). With
    ``action_type="delta"`` only the observations change. ``render()`` returns
    an offscreen ``(render_size, render_size, 3)`` uint8 frame of ``camera`` (needs an
    OpenGL backend: set ``MUJOCO_GL=egl`` or ``osmesa`` on a machine without a display).
    A missing robosuite raises ``gymnasium.error.DependencyNotInstalled`` naming the
    ``robomimic`` extra.

    ## Version History
    * v0: initial release (robosuite 1.5.2, MuJoCo 3.3-3.9).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_FREQ}

    def __init__(
        self,
        task: str = "Can",
        action_type: str = "absolute",
        rotation: str = "rotvec",
        render_mode: str | None = None,
        render_size: int = 256,
        camera: str = "agentview",
    ):
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation!r}")
        check_render_args(render_mode, self.metadata["render_modes"], render_size)
        self.task = TASKS[task]
        self.action_type = action_type
        self.rotation = rotation
        self.render_mode = render_mode
        self.render_size = render_size
        self.camera = camera
        self._guard = EpisodeGuard(f"hint_envs/Robomimic{task}-v0")
        self.sim = make_robosuite(task, action_type, offscreen=render_mode is not None)
        import mujoco  # robosuite's own dependency, so present once robosuite imported

        if mujoco.get_mju_user_warning() is None:
            # MuJoCo's own handler appends every warning to ./MUJOCO_LOG.TXT
            mujoco.set_mju_user_warning(_log_mujoco_warning)
        self._warning_ids = [int(getattr(mujoco.mjtWarning, name)) for name in _UNSTABLE_WARNINGS]
        cameras = list(self.sim.sim.model.camera_names)
        if camera not in cameras:
            self.sim.close()
            raise ValueError(f"camera must be one of {cameras}, got {camera!r}")
        observation = self.sim.reset()
        rot6d = rotation == "rot6d"
        # (start, stop) of each quaternion in robosuite's flat low-dim vector: what
        # _observation turns into 6-D representations
        quat_parts = [(3, 7)]
        object_keys, start = {}, 0
        for name, (a, b) in self._object_layout().items():
            if rot6d and name.endswith("_quat"):
                quat_parts.append((9 + a, 9 + b))
                name, b = name[: -len("quat")] + "rot6d", a + 6
            object_keys[name] = (start, start + b - a)
            start += b - a
        self.object_keys = object_keys
        self._quat_parts = quat_parts if rot6d else []
        self.state_dim = int(self.get_state().shape[0])
        robot_keys = ROBOT_KEYS
        if rot6d:
            robot_keys = (ROBOT_KEYS[0], ("robot0_eef_rot6d", 6), ROBOT_KEYS[2])
        layout, start = {}, 0
        for key, size in (*robot_keys, ("object", len(observation["object-state"]))):
            if key == "object":
                size = sum(b - a for a, b in object_keys.values())
            layout[key] = (start, start + size)
            start += size
        self._obs_keys = layout
        self.control_indices = np.arange(3)
        high = np.full(start, POSITION_LIMIT)
        orientation = "rot6d" if rot6d else "quat"
        first = layout["object"][0]
        parts = [layout[f"robot0_eef_{orientation}"]] + [
            (first + a, first + b)
            for name, (a, b) in object_keys.items()
            if name.endswith(orientation)
        ]
        for a, b in parts:
            high[a:b] = 1.0
        high[slice(*layout["robot0_gripper_qpos"])] = FINGER_LIMIT
        low = -high
        self.observation_space = spaces.Box(low, high, dtype=np.float64)
        if action_type == "absolute":
            orientation_bounds = np.ones(6) if rot6d else np.full(3, np.pi)
            low_u = np.concatenate([POSITION_BOUNDS[0], -orientation_bounds, [-1.0]])
            high_u = np.concatenate([POSITION_BOUNDS[1], orientation_bounds, [1.0]])
        else:
            low_u, high_u = -np.ones(7), np.ones(7)
        self.action_space = spaces.Box(low_u, high_u, dtype=np.float64)
        self._last_obs = self._observation()

    # -- layout --------------------------------------------------------------------------

    @property
    def obs_keys(self) -> dict[str, tuple[int, int]]:
        """robomimic observation keys -> ``[start, stop)`` in the flat observation."""
        return dict(self._obs_keys)

    def _object_layout(self) -> dict[str, tuple[int, int]]:
        """Names of the parts of robosuite's ``object-state`` -> slices of it."""
        layout, start = {}, 0
        for name, observable in self.sim._observables.items():
            active = observable.is_enabled() and observable.is_active()
            if observable.modality == "object" and active:
                size = int(np.asarray(observable.obs).size)
                layout[name] = (start, start + size)
                start += size
        return layout

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> np.ndarray:
        """The flattened MuJoCo state ``[time, qpos, qvel]`` (robomimic's ``states``)."""
        return np.array(self.sim.sim.get_state().flatten(), dtype=np.float64)

    def site_rotvec(self) -> np.ndarray:
        """The grip site's current world orientation as a rotation vector ``(3,)``: the
        orientation part of an absolute input that holds the current orientation."""
        controller = self.sim.robots[0].part_controllers["right"]
        controller.update(force=True)
        return Rotation.from_matrix(controller.ref_ori_mat).as_rotvec()

    def absolute_action(
        self, position: np.ndarray, rotation: Rotation, gripper: float
    ) -> np.ndarray:
        """An absolute input in this environment's layout (``action_type="absolute"``).

        Args:
            position: ``(3,)`` end-effector target (m, world frame).
            rotation: the grip site's target orientation (a scipy ``Rotation``).
            gripper: -1 open ... +1 closed.

        Returns:
            ``(7,)`` ``[position, rotation vector, gripper]`` or, with ``rotation="rot6d"``,
            ``(10,)`` ``[position, rot6d, gripper]``; not clipped.
        """
        if self.action_type != "absolute":
            raise ValueError("absolute_action needs action_type='absolute'")
        if self.rotation == "rot6d":
            orientation = matrix_to_rot6d(rotation.as_matrix())
        else:
            orientation = rotation.as_rotvec()
        return np.concatenate([np.asarray(position, dtype=np.float64), orientation, [gripper]])

    def _robosuite_input(self, u: np.ndarray) -> np.ndarray:
        """robosuite's 7-D input from one of this environment's (already clipped)."""
        if self.rotation != "rot6d" or self.action_type != "absolute":
            return u
        try:
            matrix = rot6d_to_matrix(u[3:9])
        except ValueError:
            logger.warning("degenerate 6-D orientation %s: holding the current one", u[3:9])
            return np.concatenate([u[:3], self.site_rotvec(), u[9:]])
        return np.concatenate([u[:3], Rotation.from_matrix(matrix).as_rotvec(), u[9:]])

    def _observation(self, raw: dict | None = None) -> np.ndarray:
        """The flat observation from robosuite's observation dict ``raw`` (a step's), or
        computed afresh when None."""
        if raw is None:
            # robosuite's object-to-gripper sensors read a cache that the gripper-pose
            # sensor fills in the same pass, after them: a second pass reads it fresh
            self.sim._get_observations(force_update=True)
            raw = self.sim._get_observations(force_update=True)
        flat = np.concatenate(
            [np.asarray(raw[key], dtype=np.float64).ravel() for key, _ in ROBOT_KEYS]
            + [np.asarray(raw["object-state"], dtype=np.float64).ravel()]
        )
        if not self._quat_parts:
            return flat
        pieces, start = [], 0
        for a, b in self._quat_parts:
            pieces += [flat[start:a], quat_to_rot6d(flat[a:b])]
            start = b
        return np.concatenate(pieces + [flat[start:]])

    def _check_state_observation(self, obs: np.ndarray) -> None:
        """Raise ``ValueError`` unless the observation of an exact-state reset is finite and
        inside the observation space, naming the entries out of bounds."""
        if not np.all(np.isfinite(obs)):
            raise ValueError(
                f"options['{STATE_OPTION}'] gives a non-finite observation: {obs.tolist()}"
            )
        names = [f"{key}[{i}]" for key, (a, b) in self._obs_keys.items() for i in range(b - a)]
        check_state_bounds(
            obs,
            self.observation_space.low,
            self.observation_space.high,
            names,
            "the observation space in the observation it gives (a state from get_state() "
            "or a robomimic dataset of this task is inside it)",
        )

    def _gripper(self):
        return self.sim.robots[0].gripper["right"]

    def gripper_action(self) -> np.ndarray:
        """The gripper's command ramp (robosuite's ``current_action``, one entry per finger).

        robosuite moves the fingers' command towards the input by 0.2 per step, so a
        closing gripper is commanded partly open for the first steps. The ramp is not part
        of the MuJoCo state: it is 0 at every episode start, and
        ``reset(options={"state": s, "gripper_action": g})`` restores it with a
        mid-episode state.
        """
        return np.array(self._gripper().current_action, dtype=np.float64)

    def _reset_controller(self) -> None:
        """Make the arm controller a function of the MuJoCo state alone.

        robosuite's OSC pulls the arm's null space towards the joint configuration of the
        episode's start, noise included, which no saved state records; this sets it to the
        Panda's noise-free home configuration instead, so an exact reset reproduces the
        rest of the episode. Goals are reset to the current pose.
        """
        robot = self.sim.robots[0]
        controller = robot.part_controllers["right"]
        controller.update_initial_joints(np.asarray(robot.init_qpos, dtype=np.float64))
        controller.update(force=True)
        controller.reset_goal()

    def _warnings(self) -> np.ndarray:
        warning = self.sim.sim.data._data.warning
        return np.array([warning[i].number for i in self._warning_ids])

    def _info(self) -> dict:
        return {"is_success": bool(self.sim._check_success()), "unstable": False}

    # -- gymnasium API -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {STATE_OPTION, GRIPPER_OPTION}
        if unknown:
            raise ValueError(
                f"unknown reset options {sorted(unknown)}; supported: "
                f"{[STATE_OPTION, GRIPPER_OPTION]}"
            )
        state = options.get(STATE_OPTION)
        if state is not None:
            state = check_state(state, self.state_dim, "[time, qpos, qvel] (MuJoCo, flattened)")
        gripper = options.get(GRIPPER_OPTION)
        if gripper is not None:
            if state is None:
                raise ValueError(f"options['{GRIPPER_OPTION}'] needs options['{STATE_OPTION}']")
            gripper = np.asarray(gripper, dtype=np.float64)
            if gripper.shape != self.gripper_action().shape or not np.all(np.abs(gripper) <= 1):
                raise ValueError(
                    f"options['{GRIPPER_OPTION}'] must have shape {self.gripper_action().shape} "
                    f"with entries in [-1, 1] (gripper_action() returns it), got {gripper}"
                )
        # robosuite draws placements and joint noise from its generator ``rng``, which its
        # samplers hold by reference: reseed it in place from ours
        self.sim.rng.bit_generator.state = np.random.default_rng(
            self.np_random.integers(2**63)
        ).bit_generator.state
        self.sim.reset()
        drawn = self.get_state()
        if state is not None:
            self.sim.sim.set_state_from_flattened(state)
            self.sim.sim.forward()
        if gripper is not None:
            self._gripper().current_action = gripper.copy()
        self._reset_controller()
        self._last_obs = self._observation()
        self._warning_count = self._warnings()
        if state is not None:
            try:
                self._check_state_observation(self._last_obs)
            except ValueError:  # refused: leave the environment reset to robosuite's draw
                self.sim.sim.set_state_from_flattened(drawn)
                self.sim.sim.forward()
                self._gripper().current_action = np.zeros_like(self.gripper_action())
                self._reset_controller()
                self._last_obs = self._observation()
                self._warning_count = self._warnings()
                raise
        self._guard.reset()
        return self._last_obs.copy(), self._info()

    def step(self, action):
        self._guard.before_step()
        u = check_action(action, self.action_space)
        if np.any(u < self.action_space.low) or np.any(u > self.action_space.high):
            u = np.clip(u, self.action_space.low, self.action_space.high)
        raw, reward, _, _ = self.sim.step(self._robosuite_input(u))
        obs = self._observation(raw=raw)
        warnings = self._warnings()
        space = self.observation_space
        unstable = bool(np.any(warnings > self._warning_count)) or not (
            np.all(obs >= space.low) and np.all(obs <= space.high)  # False for NaN too
        )
        self._warning_count = warnings
        if unstable:
            logger.warning(
                "%s: the MuJoCo simulation became unstable (warnings %s); ending the episode",
                self.task.name,
                dict(zip(_UNSTABLE_WARNINGS, warnings.tolist(), strict=True)),
            )
            self._guard.after_step(True)
            return self._last_obs.copy(), 0.0, True, False, {"is_success": False, "unstable": True}
        self._last_obs = obs
        info = self._info()
        self._guard.after_step(bool(info["is_success"]))
        return obs.copy(), float(reward), info["is_success"], False, info

    def render(self) -> np.ndarray | None:
        """An offscreen ``(render_size, render_size, 3)`` uint8 frame of ``camera``, or
        None (with a logged warning) when made without a render mode."""
        if self.render_mode is None:
            logger.warning(
                "render() called on RobomimicEnv made without a render mode; make it with "
                "render_mode='rgb_array' to get frames"
            )
            return None
        frame = self.sim.sim.render(
            camera_name=self.camera, width=self.render_size, height=self.render_size
        )
        return np.ascontiguousarray(frame[::-1])  # MuJoCo's frames are bottom-up

    def close(self) -> None:
        self._guard.close()
        self.sim.close()
