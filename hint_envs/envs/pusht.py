"""PushT: push a T-shaped block into a goal pose, on the ``gym-pusht`` simulator (pymunk).

The environment is a control-environment shell around ``gym_pusht``'s own ``PushTEnv``:
physics, initial-state sampling, reward, coverage and success are gym-pusht's code, called
unchanged, so ``hint_envs/PushT-v0`` is the task Diffusion Policy and LeRobot report on.
What this module adds is the control-environment contract (``control_indices``, exact
state reset, ``get_state``), a flat keypoint observation, honest spaces, input validation,
and the agent's dynamics as pure functions (:func:`agent_dynamics`, :func:`agent_matrices`)
that the synthesis oracle and the tests use.

The agent is a kinematic disk driven towards the commanded target ``a`` by a PD law that
gym-pusht integrates explicitly, ``SUBSTEPS = 10`` times per control step of 0.1 s::

    v <- v + dt (k_p (a - p) - k_v v),   p <- p + dt v      (dt = 0.01 s, k_p = 100, k_v = 20)

Kinematic bodies are not pushed back by contacts, so this map from (p, v, a) to the next
(p, v) is exactly linear whatever the block does.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

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

logger = logging.getLogger(__name__)

#: Extra that installs the simulator.
PIP_EXTRA = 'pip install "hint_envs[pusht]"'
#: Observation types: name -> flat layout (robomimic keys -> [start, stop)).
OBS_TYPES: dict[str, dict[str, tuple[int, int]]] = {
    "state": {"agent_pos": (0, 2), "block_pose": (2, 5)},
    "keypoints": {"agent_pos": (0, 2), "keypoints": (2, 18)},
}
#: Simulator state layout of :meth:`PushTEnv.get_state` (10 floats).
STATE_FIELDS = (
    "agent_x",
    "agent_y",
    "agent_vx",
    "agent_vy",
    "block_x",
    "block_y",
    "block_angle",
    "block_vx",
    "block_vy",
    "block_angular_velocity",
)
STATE_DIM = len(STATE_FIELDS)
#: Largest speeds an exact-state reset accepts (px/s, px/s, rad/s): above what the PD law
#: and contacts produce (the agent's peak speed towards a target 704 px away is ~2 600
#: px/s), so every recorded state passes, while a wild one, which pymunk would integrate
#: off the table or to inf, is refused.
MAX_STATE_SPEED = {"agent": 3000.0, "block": 3000.0, "block_spin": 60.0}
#: Agent input: the target position (px) of its PD law.
INPUT_DIM = 2
#: Physics sub-steps per control step, as gym-pusht integrates them.
SUBSTEPS = 10


@dataclass(frozen=True)
class AgentParams:
    """gym-pusht's constants of the agent's PD law and the workspace (pixels, seconds)."""

    k_p: float = 100.0
    k_v: float = 20.0
    dt: float = 0.01  # s, one physics sub-step
    substeps: int = SUBSTEPS  # sub-steps per control step (control at 10 Hz)
    workspace: tuple[float, float] = (0.0, 512.0)  # px, the action box on both axes


def agent_dynamics(
    position: np.ndarray, velocity: np.ndarray, target: np.ndarray, params: AgentParams
) -> tuple[np.ndarray, np.ndarray]:
    """One control step of the agent, batched: ``(..., 2)`` position, velocity, target.

    The same sub-step recursion gym-pusht runs (see the module docstring), in float64.

    Returns:
        next position and next velocity, ``(..., 2)`` each.
    """
    p = np.asarray(position, dtype=np.float64)
    v = np.asarray(velocity, dtype=np.float64)
    a = np.asarray(target, dtype=np.float64)
    for _ in range(params.substeps):
        v = v + (params.k_p * (a - p) - params.k_v * v) * params.dt
        p = p + v * params.dt
    return p, v


def agent_matrices(params: AgentParams) -> tuple[np.ndarray, np.ndarray]:
    """The exact linear model of one control step on one axis.

    With the per-axis state ``z = (p, v)``, one sub-step is ``z' = M z + N a`` with::

        M = [[1 - k_p dt^2, dt (1 - k_v dt)],     N = [k_p dt^2,
             [-k_p dt,      1 - k_v dt     ]]          k_p dt  ]

    and a control step of ``n = substeps`` sub-steps at a constant target is
    ``z_{t+1} = A z_t + B a_t`` with ``A = M^n``, ``B = sum_{i<n} M^i N``. Both axes
    are independent and identical.

    Returns:
        ``A (2, 2)`` and ``B (2, 1)``.
    """
    dt, kp, kv = params.dt, params.k_p, params.k_v
    M = np.array([[1.0 - kp * dt * dt, dt * (1.0 - kv * dt)], [-kp * dt, 1.0 - kv * dt]])
    N = np.array([[kp * dt * dt], [kp * dt]])
    A = np.eye(2)
    B = np.zeros((2, 1))
    for _ in range(params.substeps):
        B = M @ B + N
        A = M @ A
    return A, B


def observation_bounds(obs_type: str, params: AgentParams | None = None) -> np.ndarray:
    """Bounds ``(2, d_obs)`` that every observation lies in.

    gym-pusht declares ``[0, 512]`` for positions, but the agent is kinematic: driven to a
    target inside ``[0, 512]`` from a fast start it overshoots, and it passes through the
    walls and can drag the block with it. Along a critically damped PD response
    (``k_v^2 = 4 k_p``) the speed stays below ``omega / e`` times the largest target
    distance (~1 900 px/s for 512 px) and the overshoot below ``v_max / (omega e)``
    (~70 px), so the agent stays within ``[-96, 608]`` px; the block, only ever moved by
    the agent, stays within one T length (120 px) plus the agent's radius (15 px) of it;
    keypoints within another T length. The block angle is reported modulo ``2 pi``.
    """
    params = params or AgentParams()
    lo, hi = params.workspace
    agent = (lo - 96.0, hi + 96.0)
    block = (agent[0] - 136.0, agent[1] + 136.0)
    points = (block[0] - 120.0, block[1] + 120.0)
    if obs_type == "state":
        low = [agent[0]] * 2 + [block[0]] * 2 + [0.0]
        high = [agent[1]] * 2 + [block[1]] * 2 + [2 * np.pi]
    elif obs_type == "keypoints":
        low = [agent[0]] * 2 + [points[0]] * 16
        high = [agent[1]] * 2 + [points[1]] * 16
    else:
        raise ValueError(f"obs_type must be one of {sorted(OBS_TYPES)}, got {obs_type!r}")
    return np.array([low, high], dtype=np.float64)


def _import_gym_pusht():
    """Import ``gym_pusht.envs.pusht`` or raise DependencyNotInstalled naming the extra."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    try:
        from gym_pusht.envs import pusht
    except ImportError as err:
        raise gym.error.DependencyNotInstalled(
            f"hint_envs/PushT-v0 needs the gym-pusht simulator ({err}); install it with {PIP_EXTRA}"
        ) from err
    return pusht


class PushTEnv(gym.Env):
    """## Description
    PushT, the block-pushing task of Diffusion Policy (Chi et al., 2023), on the
    ``gym-pusht`` package: a circular agent (radius 15 px) pushes a T-shaped block
    (120 x 120 px, mass 1) on a frictionless 512 x 512 px table into a fixed goal pose
    (x = 256, y = 256, angle = pi/4). Physics, initial-state sampling, reward, coverage
    and success are computed by gym-pusht's own ``PushTEnv``, which this class holds as
    ``self.sim`` and steps unchanged.

    It is a *control environment* (:mod:`hint_envs.core`): the raw input is the agent's
    target position and ``control_indices = [0, 1]`` names the agent position, so a
    primitive controller ``u = u_bar + K (p - p_bar)`` feeds back on where the agent is.

    ## Action Space
    ``Box(0, 512, (2,), float64)``: the target ``(x, y)`` in pixels of the agent's PD law
    (``k_p = 100``, ``k_v = 20``, integrated over 10 sub-steps of 0.01 s per 0.1 s
    control step). Targets outside ``[0, 512]`` are clipped to it. gym-pusht itself applies
    any target unclipped, so for targets inside the box both environments receive
    identical inputs; outside it, this one moves as gym-pusht would for the clipped
    target. A target of the wrong shape or with NaN/inf raises ``ValueError``.

    ## Observation Space
    ``obs_type="state"`` (default), ``Box(5,)`` float64, gym-pusht's ``state`` observation:

    | Num | Observation | Unit | robomimic key |
    |-----|-------------|------|---------------|
    | 0, 1 | agent position x, y | px | ``agent_pos`` |
    | 2, 3 | block position x, y (body origin: mid outer edge of the bar) | px | ``block_pose`` |
    | 4 | block angle, modulo 2 pi | rad | ``block_pose`` |

    ``obs_type="keypoints"``, ``Box(18,)`` float64: the agent position (``agent_pos``,
    2) then the 8 corner keypoints of the T as gym-pusht's ``get_keypoints`` orders them,
    flattened ``[x0, y0, ..., x7, y7]`` (``keypoints``, 16): the flat form of gym-pusht's
    ``environment_state_agent_pos`` observation.

    Bounds: :func:`observation_bounds` (wider than gym-pusht's declared ``[0, 512]``,
    which a kinematic agent can overshoot).

    ## Rewards
    gym-pusht's: ``clip(coverage / 0.95, 0, 1)`` where ``coverage`` is the fraction of the
    goal T's area that the block covers (shapely polygon intersection). Diffusion Policy's
    ``test/mean_score`` is the mean over episodes of the largest reward of each episode;
    :func:`hint_envs.evaluation` reports it as ``max_reward``.

    ## Starting State
    gym-pusht's draw from ``self.np_random``: agent at integer pixels in ``[50, 450)^2``,
    block at integer pixels in ``[100, 400)^2``, block angle uniform in ``[-pi, pi)``, at
    rest. For the same seed the initial state is exactly gym-pusht's (and so LeRobot's),
    which makes the Diffusion Policy test seeds ``100000 + i`` the same episodes.
    ``options={"state": s}`` puts the simulator into an exact state instead:
    ``s = (agent x, y, agent vx, vy, block x, y, block angle, block vx, vy, block angular
    velocity)``, as :meth:`get_state` returns it: finite, with speeds within
    :data:`MAX_STATE_SPEED`, positions within ``observation_bounds("state")`` and giving
    an observation inside the observation space (else
    ``ValueError`` naming the offending entries, and the environment keeps its previous
    state). It rebuilds the pymunk space and sets the bodies exactly; pymunk's contact
    cache (warm-starting impulses) is not part of the state, so a restored episode that is
    in contact agrees with the original to the contact solver's tolerance, not bit for bit.

    ## Episode End
    Terminated when coverage exceeds 0.95 (``info["is_success"]``), as in gym-pusht;
    truncated after 300 steps (30 s, the registration's limit, as Diffusion Policy
    evaluates). ``info`` carries gym-pusht's keys (``pos_agent``, ``vel_agent``,
    ``block_pose``, ``goal_pose``, ``n_contacts``) and ``coverage`` after every step and
    reset (gym-pusht reports coverage only after steps).

    ## Arguments
    ``gym.make("hint_envs/PushT-v0", obs_type="state", render_mode="rgb_array",
    render_size=680)``. ``render()`` returns gym-pusht's ``(render_size, render_size, 3)``
    uint8 frame (goal in green, the last target as a red cross); None without a render
    mode. A missing gym-pusht raises ``gymnasium.error.DependencyNotInstalled`` naming
    the ``pusht`` extra.

    ## Version History
    * v0: initial release (gym-pusht 0.1.8, pymunk 6).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, obs_type: str = "state", render_mode: str | None = None, render_size: int = 680
    ):
        if obs_type not in OBS_TYPES:
            raise ValueError(f"obs_type must be one of {sorted(OBS_TYPES)}, got {obs_type!r}")
        check_render_args(render_mode, self.metadata["render_modes"], render_size)
        pusht = _import_gym_pusht()
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.params = AgentParams()
        self._guard = EpisodeGuard("hint_envs/PushT-v0")
        self.sim = pusht.PushTEnv(
            obs_type="state",
            render_mode="rgb_array",
            visualization_width=render_size,
            visualization_height=render_size,
        )
        if (self.sim.k_p, self.sim.k_v, self.sim.dt) != (
            self.params.k_p,
            self.params.k_v,
            self.params.dt,
        ):
            raise RuntimeError(
                f"this gym-pusht's PD constants (k_p={self.sim.k_p}, k_v={self.sim.k_v}, "
                f"dt={self.sim.dt}) differ from those hint_envs was written for; use gym-pusht "
                "0.1.8"
            )
        self.control_indices = np.arange(2)
        self.action_space = spaces.Box(0.0, 512.0, shape=(INPUT_DIM,), dtype=np.float64)
        low, high = observation_bounds(obs_type, self.params)
        self.observation_space = spaces.Box(low, high, dtype=np.float64)

    @property
    def obs_keys(self) -> dict[str, tuple[int, int]]:
        """robomimic observation keys -> ``[start, stop)`` in the flat observation."""
        return dict(OBS_TYPES[self.obs_type])

    # -- state ---------------------------------------------------------------------------

    def get_state(self) -> np.ndarray:
        """The exact simulator state ``(10,)`` (layout :data:`STATE_FIELDS`; raw angle)."""
        agent, block = self.sim.agent, self.sim.block
        return np.array(
            [
                *agent.position,
                *agent.velocity,
                *block.position,
                block.angle,
                *block.velocity,
                block.angular_velocity,
            ],
            dtype=np.float64,
        )

    def _set_state(self, state: np.ndarray) -> None:
        sim = self.sim
        sim._setup()  # a fresh space: walls, agent, block, goal, contact counter
        sim.agent.position = (float(state[0]), float(state[1]))
        sim.agent.velocity = (float(state[2]), float(state[3]))
        # angle first: pymunk rotates about the centre of gravity, which moves the origin
        sim.block.angle = float(state[6])
        sim.block.position = (float(state[4]), float(state[5]))
        sim.block.velocity = (float(state[7]), float(state[8]))
        sim.block.angular_velocity = float(state[9])
        sim._last_action = None

    def _reset_to(self, state: np.ndarray) -> None:
        """Put the simulator into ``state`` if its speeds are within
        :data:`MAX_STATE_SPEED` and its observation inside the observation space; else
        raise ``ValueError`` naming the offending entries (and keep the previous state)."""
        speed = MAX_STATE_SPEED
        limit = np.array([speed["agent"]] * 2 + [speed["block"]] * 2 + [speed["block_spin"]])
        velocities = state[[2, 3, 7, 8, 9]]
        names = [STATE_FIELDS[i] for i in (2, 3, 7, 8, 9)]
        check_state_bounds(velocities, -limit, limit, names, "the speeds a reset accepts")
        # positions first, before pymunk sees them (it does not survive absurd ones): within
        # the bounds of the "state" observation, which holds them
        bounds = observation_bounds("state", self.params)
        check_state_bounds(
            state[[0, 1, 4, 5]],
            bounds[0, :4],
            bounds[1, :4],
            [STATE_FIELDS[i] for i in (0, 1, 4, 5)],
            "the positions a reset accepts (observation_bounds('state'))",
        )
        previous = self.get_state() if hasattr(self.sim, "agent") else None
        self._set_state(state)
        obs = self._observation()
        try:
            check_state_bounds(
                obs,
                self.observation_space.low,
                self.observation_space.high,
                [f"{key}[{i}]" for key, (a, b) in self.obs_keys.items() for i in range(b - a)],
                f"the observation space (obs_type={self.obs_type!r}) in the observation it gives",
            )
        except ValueError:
            if previous is not None:
                self._set_state(previous)
            raise

    def keypoints(self) -> np.ndarray:
        """The T's 8 keypoints ``(8, 2)`` in gym-pusht's order (see its ``get_keypoints``)."""
        return np.asarray(self.sim.get_keypoints(self.sim._block_shapes), dtype=np.float64)

    def _observation(self) -> np.ndarray:
        if self.obs_type == "state":  # gym-pusht's own state observation
            return self.sim.get_obs()
        agent = np.array(self.sim.agent.position, dtype=np.float64)
        return np.concatenate([agent, self.keypoints().ravel()])

    # -- gymnasium API -------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        unknown = set(options) - {STATE_OPTION}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; supported: ['state']")
        state = options.get(STATE_OPTION)
        if state is None:
            # gym-pusht's own draw, from our generator: for reset(seed=s) it is the
            # generator gym-pusht would seed with s, so the initial states are its own
            self.sim._np_random = self.np_random
            self.sim.reset()
        else:
            self._reset_to(check_state(state, STATE_DIM, str(STATE_FIELDS)))
        info = self.sim._get_info()
        info["coverage"] = float(self.sim._get_coverage())
        info["is_success"] = False
        self._guard.reset()
        return self._observation(), info

    def step(self, action):
        self._guard.before_step()
        target = check_action(action, self.action_space)
        if not (0.0 <= target[0] <= 512.0 and 0.0 <= target[1] <= 512.0):  # the hot path skips
            target = np.clip(target, 0.0, 512.0)
        sim_obs, reward, terminated, truncated, info = self.sim.step(target)
        info["coverage"] = float(info["coverage"])
        info["is_success"] = bool(info["is_success"])
        # gym-pusht's state observation is ours; keypoints are computed from the bodies
        obs = sim_obs if self.obs_type == "state" else self._observation()
        self._guard.after_step(bool(terminated))
        return obs, float(reward), bool(terminated), bool(truncated), info

    def render(self) -> np.ndarray | None:
        """gym-pusht's frame ``(render_size, render_size, 3)`` uint8, or None (with a
        logged warning) when made without a render mode."""
        if self.render_mode is None:
            logger.warning(
                "render() called on PushTEnv made without a render mode; make it with "
                "render_mode='rgb_array' to get frames"
            )
            return None
        return self.sim.render()

    def close(self) -> None:
        self._guard.close()
        self.sim.close()
        # release the pymunk space now (gym-pusht's space, bodies, shapes and collision
        # handler form a cycle with the simulator): a space still alive at interpreter
        # shutdown can crash it, pymunk's cffi callbacks running after their module is gone
        for name in ("space", "agent", "block", "_block_shapes", "collision_handeler"):
            if hasattr(self.sim, name):
                setattr(self.sim, name, None)
