"""Chunk-level environments: one step executes a composite action of primitive controllers.

:class:`PrimitiveControllerWrapper` turns a *control environment* (``hint_envs.core``) into
the chunk-level environment that HINT's policies act in; :class:`PrimitiveControllerVectorWrapper`
is its batched form over a vector environment with autoreset disabled.

Timeline of one chunk-level step (``obs_horizon = H``, ``chunk_length = T``, inner step
``t`` is the step the policy decides at)::

    observed:  o_{t-H+1} ... o_t          (the observation chunk the policy saw)
    executed:  u_t, u_{t+1}, ..., u_{t+T-1}   with u_{t+k} = u_bar_k + K_k (x_{t+k} - x_bar_k)
    returned:  o_{t+T-H+1} ... o_{t+T}    (the next observation chunk)

The feedback ``x_{t+k} = o_{t+k}[control_indices]`` is the *true* state of the inner
environment at every inner step, not the observation the policy saw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

from hint_envs.core import (
    DEFAULT_GAIN_BOUND,
    STATE_OPTION,
    CompositeActionLayout,
    check_action,
    check_flag,
    composite_action_bounds,
    get_control_indices,
)
from hint_envs.wrappers.executor import INNER_INFO_KEYS, ChunkExecutor

__all__ = [
    "PrimitiveControllerWrapper",
    "PrimitiveControllerVectorWrapper",
    "composite_action_bounds",
]

logger = logging.getLogger(__name__)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _check_gain_bound(gain_bound: Any) -> float:
    try:
        bound = float(gain_bound)
    except (TypeError, ValueError):
        raise ValueError(f"gain_bound must be a number > 0, got {gain_bound!r}") from None
    if not bound > 0:  # also rejects NaN
        raise ValueError(f"gain_bound must be a number > 0, got {gain_bound!r}")
    return bound


def _check_spaces(observation_space: gym.Space, action_space: gym.Space, what: str) -> None:
    """Require flat Box observation and action spaces (``what`` names the env in errors)."""
    if not isinstance(observation_space, spaces.Box):
        raise TypeError(
            f"{what} must have a Box observation space, got {observation_space!r}; flatten "
            "dict observations first (e.g. gymnasium.wrappers.FlattenObservation)"
        )
    if not isinstance(action_space, spaces.Box):
        raise TypeError(
            f"{what} must have a Box action space (the raw input u_t), got {action_space!r}"
        )
    if len(observation_space.shape) != 1 or len(action_space.shape) != 1:
        raise ValueError(
            f"{what} must have flat (1-D) observation and action spaces, got observation shape "
            f"{observation_space.shape} and action shape {action_space.shape}"
        )


def _check_indices(indices: np.ndarray, d_obs: int) -> np.ndarray:
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"control_indices must be a non-empty 1-D array of integers, got {indices!r}"
        )
    if np.any(indices < 0) or np.any(indices >= d_obs):
        raise ValueError(
            f"control_indices {indices.tolist()} must index an observation of size {d_obs}"
        )
    return indices.astype(np.int64)


class _ChunkLevel:
    """The constructor path the single and the vector chunk-level wrappers share."""

    def _setup_chunks(
        self,
        obs_space: gym.Space,
        act_space: gym.Space,
        control_indices: Callable[[], np.ndarray],
        chunk_length: int,
        obs_horizon: int,
        gains: bool,
        gain_bound: float,
        what: str,
    ) -> tuple[spaces.Box, spaces.Box]:
        """Validate the settings and the inner spaces; set :attr:`chunk_length`,
        :attr:`obs_horizon`, :attr:`gains`, :attr:`gain_bound`, :attr:`layout` and the
        :class:`~hint_envs.wrappers.executor.ChunkExecutor`.

        Args:
            obs_space, act_space: the (single) inner environment's spaces.
            control_indices: returns the inner ``control_indices`` (raises ``TypeError``
                if the inner environment is not a control environment).
            what: names the inner environment in error messages.

        Returns:
            the single chunk-level ``(action_space, observation_space)``.
        """
        self.chunk_length = _check_positive_int("chunk_length", chunk_length)
        self.obs_horizon = _check_positive_int("obs_horizon", obs_horizon)
        self.gain_bound = _check_gain_bound(gain_bound)
        self.gains = check_flag("gains", gains)
        indices = control_indices()
        _check_spaces(obs_space, act_space, what)
        indices = _check_indices(indices, obs_space.shape[0])
        self.layout = CompositeActionLayout(
            act_space.shape[0], indices.size, self.chunk_length, gains=self.gains
        )
        self._executor = ChunkExecutor(
            self.layout, indices, act_space.low, act_space.high, input_dtype=act_space.dtype
        )
        self._obs_dtype = obs_space.dtype
        low, high = composite_action_bounds(
            self.layout,
            act_space.low,
            act_space.high,
            obs_space.low[indices],
            obs_space.high[indices],
            self.gain_bound,
        )
        chunk_obs_space = spaces.Box(
            np.tile(obs_space.low, (self.obs_horizon, 1)),
            np.tile(obs_space.high, (self.obs_horizon, 1)),
            dtype=obs_space.dtype,
        )
        return spaces.Box(low, high, dtype=np.float64), chunk_obs_space


class PrimitiveControllerWrapper(_ChunkLevel, gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Chunk-level environment: one action is ``chunk_length`` primitive controllers.

    One :meth:`step` executes up to ``chunk_length`` inner steps with
    ``u = u_bar_k + K_k (x - x_bar_k)`` fed back on the **true** control state
    ``x = obs[control_indices]`` of the inner environment, clipped to the inner action
    space, and stops at the first inner termination or truncation. Any policy with SB3's
    ``predict`` works on it unchanged: one chunk-level step is one policy decision.

    Action space:
        ``Box(layout.size,)`` float64 with ``layout = CompositeActionLayout(d_u, d_x,
        chunk_length, gains)`` (:attr:`layout`): per controller ``[u_bar (d_u) | x_bar (d_x)
        | K row-major (d_u * d_x)]``, ``u_bar`` within the inner action bounds, ``x_bar``
        within the inner observation bounds at ``control_indices``, gains within
        ``[-gain_bound, gain_bound]``. With ``gains=False`` only the ``u_bar`` parts.
        Out-of-bounds actions are clipped; a wrong shape or NaN/inf raises ``ValueError``.

    Observation space:
        ``Box(obs_horizon, d_obs)``, the inner observation bounds tiled, same dtype: the
        last ``obs_horizon`` inner observations, oldest first. On reset every row is the
        first observation (Diffusion Policy's padding).

    Reward:
        The sum of the executed inner rewards, in execution order.

    Info (of :meth:`step`):
        The last executed inner step's info, plus ``"inner_states"`` ``(chunk_length, d_x)``
        (the control state before each executed inner step), ``"inner_inputs"``
        ``(chunk_length, d_u)`` (the inputs sent), ``"inner_rewards"`` ``(chunk_length,)``
        and ``"steps_executed"`` (int). Rows past ``steps_executed`` are NaN: the arrays have
        a fixed shape so that vector environments can stack them.

    ``reset(options={"state": s})`` passes through to the inner environment. The chunk
    environment is not itself a control environment: its ``control_indices`` is ``None``.

    Args:
        env: a control environment with flat Box observation and action spaces.
        chunk_length: controllers per composite action (tau_chunk), ``>= 1``.
        obs_horizon: observations per observation chunk (tau_obs), ``>= 1``.
        gains: if False, a composite action holds only the ``chunk_length`` raw inputs.
        gain_bound: bound ``R`` on every gain entry, ``> 0``.

    Raises:
        TypeError: ``env`` is not a control environment or its spaces are not Box, or
            ``gains`` is not a bool (``"False"`` would otherwise mean True).
        ValueError: bad ``chunk_length``, ``obs_horizon``, ``gain_bound`` or control indices.

    Example:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import hint_envs
        >>> from hint_envs.wrappers import PrimitiveControllerWrapper
        >>> env = PrimitiveControllerWrapper(
        ...     gym.make("hint_envs/PlanarQuadrotor-v0"), chunk_length=8, obs_horizon=2
        ... )
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, env.action_space.shape
        ((2, 6), (160,))
        >>> hover = env.unwrapped.params.hover_input
        >>> prim = env.layout.unpack(np.zeros(env.layout.size))  # K = 0: open loop
        >>> prim.u_bar[:] = hover
        >>> obs, reward, terminated, truncated, info = env.step(env.layout.pack(prim))
        >>> info["inner_inputs"].shape, info["steps_executed"]
        ((8, 2), 8)
    """

    #: The chunk environment is not a control environment (its observation is a chunk).
    control_indices = None

    def __init__(
        self,
        env: gym.Env,
        chunk_length: int,
        obs_horizon: int,
        gains: bool = True,
        gain_bound: float = DEFAULT_GAIN_BOUND,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            chunk_length=chunk_length,
            obs_horizon=obs_horizon,
            gains=gains,
            gain_bound=gain_bound,
        )
        gym.Wrapper.__init__(self, env)
        self.action_space, self.observation_space = self._setup_chunks(
            env.observation_space,
            env.action_space,
            lambda: get_control_indices(env),  # TypeError naming the env if not a control env
            chunk_length,
            obs_horizon,
            gains,
            gain_bound,
            f"the wrapped env {env}",
        )
        self._history: np.ndarray | None = None  # (obs_horizon, d_obs), oldest first

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner env; returns the observation chunk ``(obs_horizon, d_obs)``
        (the first observation repeated) and the inner reset info."""
        obs, info = self.env.reset(seed=seed, options=options)
        first = np.asarray(obs, dtype=self._obs_dtype)
        self._history = np.repeat(first[None], self.obs_horizon, axis=0)
        return self._history.copy(), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Execute one composite action ``(layout.size,)``.

        Returns:
            ``(obs_chunk (obs_horizon, d_obs), summed reward, terminated, truncated, info)``
            with ``info`` as described in the class docstring.
        """
        if self._history is None:
            raise gym.error.ResetNeeded("call reset() before step() on the chunk environment")
        composite = check_action(action, self.action_space, "composite action")
        np.clip(composite, self.action_space.low, self.action_space.high, out=composite)
        run = self._executor.run(self.layout.unpack(composite), self._history[-1], self.env.step)
        n = run.steps
        self._history = np.concatenate([self._history, run.observations[:n]])[n:]
        return self._history.copy(), run.total_reward, run.terminated, run.truncated, run.info()


def _vector_control_indices(env: VectorEnv) -> np.ndarray:
    """``control_indices`` of a vector env: its own attribute, else its sub-envs'."""
    current: Any = env
    while True:
        indices = getattr(current, "control_indices", None)
        if indices is not None:
            return np.asarray(indices)
        if not hasattr(current, "env"):
            break
        current = current.env
    base = env.unwrapped
    if hasattr(base, "get_attr"):
        try:
            found = base.get_attr("control_indices")
        except AttributeError:
            found = (None,)
        if found and found[0] is not None:
            return np.asarray(found[0])
    raise TypeError(
        f"{env} is not a vector of control environments: neither it nor its sub-environments "
        "have a `control_indices` attribute (see hint_envs.core)"
    )


def _merge_rows(out: dict[str, Any], infos: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
    """Copy the rows ``rows`` of vector info ``infos`` into ``out`` (``_key`` masks honoured).

    New keys get arrays shaped like the source filled with zeros (None for objects) and a
    mask, as ``VectorEnv._add_info`` builds them, so the result equals what a
    ``SyncVectorEnv`` of single envs reports.
    """
    n = rows.shape[0]
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get(f"_{key}")
        sel = rows if mask is None else rows & np.asarray(mask, dtype=bool)
        if not sel.any():
            continue
        if isinstance(value, dict):
            out[key] = _merge_rows(out.get(key, {}), value, sel)
        else:
            if not (isinstance(value, np.ndarray) and value.shape[:1] == (n,)):
                value = np.array([value] * n + [None], dtype=object)[:n]
            if key not in out:
                out[key] = (
                    np.full_like(value, None) if value.dtype == object else np.zeros_like(value)
                )
            out[key][sel] = value[sel]
        out[f"_{key}"] = out.get(f"_{key}", np.zeros(n, dtype=bool)) | sel
    return out


class PrimitiveControllerVectorWrapper(
    _ChunkLevel, gym.vector.VectorWrapper, gym.utils.RecordConstructorArgs
):
    """Batched :class:`PrimitiveControllerWrapper` over a vector of control environments.

    The inner vector env must be built with ``autoreset_mode=AutoresetMode.DISABLED``: this
    wrapper steps all ``N`` sub-envs ``chunk_length`` times in lock-step with a batched
    control law, and masks out a sub-env once its episode ends inside a chunk (its later
    inner results are ignored and its observation chunk stays at the end state). It resets
    ended sub-envs itself, giving **next-step autoreset at the chunk level**: the chunk step
    after an episode end returns the reset observation chunk, reward 0 and
    ``terminated = truncated = False`` for that sub-env, and ignores its action. So it
    reproduces ``SyncVectorEnv`` of :class:`PrimitiveControllerWrapper`-wrapped envs
    (default next-step autoreset) observation for observation, reward for reward and info
    for info.

    A sub-env that ended is stepped on with a placeholder input (results ignored) until its
    reset, which is done with ``reset(options={"reset_mask": ...})`` at the end of the next
    chunk-level step (so nothing is stepped between a reset and the first real step). The
    inner env must therefore accept steps of a sub-env whose episode ended (the native
    ``PlanarQuadrotorVectorEnv`` does). Gymnasium's ``SyncVectorEnv`` and ``AsyncVectorEnv``
    refuse them when autoreset is disabled, so for those the wrapper first *parks* such a
    sub-env with an exact-state reset to the state its episode ended in (``options={"state":
    get_state()}`` read at the end, part of the control-environment contract); an
    exact-state reset must draw no randomness for the result to equal the single-env
    wrapper. Put vector wrappers that track episodes (e.g. episode statistics) outside this
    wrapper.

    Spaces: ``single_action_space`` ``Box(layout.size,)`` and ``single_observation_space``
    ``Box(obs_horizon, d_obs)`` as in :class:`PrimitiveControllerWrapper`, batched to
    ``(N, ...)``. Infos are batched as ``SyncVectorEnv`` batches the single wrapper's infos.

    Args:
        env: vector env of control environments, ``autoreset_mode=AutoresetMode.DISABLED``.
        chunk_length, obs_horizon, gains, gain_bound: as in :class:`PrimitiveControllerWrapper`.

    Raises:
        TypeError: not a VectorEnv, not control environments, non-Box spaces, or a
            ``gains`` that is not a bool.
        ValueError: autoreset not disabled, or bad sizes.

    Example:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import hint_envs
        >>> from gymnasium.vector import AutoresetMode
        >>> from hint_envs.wrappers import PrimitiveControllerVectorWrapper
        >>> inner = gym.make_vec(
        ...     "hint_envs/PlanarQuadrotor-v0", num_envs=4, vectorization_mode="sync",
        ...     vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
        ... )
        >>> envs = PrimitiveControllerVectorWrapper(inner, chunk_length=8, obs_horizon=2)
        >>> obs, infos = envs.reset(seed=0)
        >>> obs.shape, envs.action_space.shape
        ((4, 2, 6), (4, 160))
        >>> obs, rewards, terminations, truncations, infos = envs.step(
        ...     envs.action_space.sample()
        ... )
        >>> infos["inner_states"].shape
        (4, 8, 6)
    """

    def __init__(
        self,
        env: VectorEnv,
        chunk_length: int,
        obs_horizon: int,
        gains: bool = True,
        gain_bound: float = DEFAULT_GAIN_BOUND,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self,
            chunk_length=chunk_length,
            obs_horizon=obs_horizon,
            gains=gains,
            gain_bound=gain_bound,
        )
        if not isinstance(env, VectorEnv):
            raise TypeError(
                f"PrimitiveControllerVectorWrapper wraps a gymnasium.vector.VectorEnv, got "
                f"{type(env).__name__}; for a single env use PrimitiveControllerWrapper"
            )
        gym.vector.VectorWrapper.__init__(self, env)
        mode = env.metadata.get("autoreset_mode")
        if mode is not None and not isinstance(mode, AutoresetMode):
            mode = AutoresetMode(mode)
        if mode != AutoresetMode.DISABLED:
            raise ValueError(
                "PrimitiveControllerVectorWrapper needs an inner vector env with autoreset "
                f"disabled (it resets ended sub-envs itself), got autoreset_mode={mode}; build "
                'it with e.g. gym.make_vec(..., vector_kwargs={"autoreset_mode": '
                "AutoresetMode.DISABLED})"
            )
        self.single_action_space, self.single_observation_space = self._setup_chunks(
            env.single_observation_space,
            env.single_action_space,
            lambda: _vector_control_indices(env),
            chunk_length,
            obs_horizon,
            gains,
            gain_bound,
            f"the sub-environments of {env}",
        )
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {**env.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        # placeholder input for sub-envs whose episode ended (results ignored)
        bounds = self._executor.input_low, self._executor.input_high
        self._idle_input = np.clip(np.zeros(self.layout.d_u), *bounds)
        base = env.unwrapped
        self._must_park = isinstance(base, (SyncVectorEnv, AsyncVectorEnv))
        self._history: np.ndarray | None = None  # (N, obs_horizon, d_obs)
        self._inner_obs: np.ndarray | None = None  # (N, d_obs) current inner observation
        n = self.num_envs
        self._needs_reset = np.zeros(n, dtype=bool)  # episode ended at the last chunk step
        self._inner_ended = np.zeros(n, dtype=bool)  # inner env reported an end, not reset
        self._end_states: dict[int, np.ndarray] = {}  # sub-env -> state it is parked in

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the sub-envs (all, or those in ``options["reset_mask"]``).

        Returns:
            observation chunks ``(N, obs_horizon, d_obs)`` and the inner reset infos.
        """
        N = self.num_envs
        options = dict(options) if options is not None else None
        mask = None
        if options is not None and "reset_mask" in options:
            mask = options["reset_mask"]
            if not (isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (N,)):
                raise ValueError(
                    f"options['reset_mask'] must be a boolean numpy array of shape ({N},), "
                    f"got {mask!r}"
                )
            if self._history is None:
                raise gym.error.ResetNeeded(
                    "the first reset() must reset every sub-env: call it without reset_mask"
                )
        obs, infos = self.env.reset(seed=seed, options=options)
        obs = np.asarray(obs, dtype=self._obs_dtype)
        for i in range(N) if mask is None else np.flatnonzero(mask):
            self._end_states.pop(int(i), None)
        if mask is None:
            self._history = np.repeat(obs[:, None], self.obs_horizon, axis=1)
            self._inner_obs = obs.copy()
            self._needs_reset[:] = False
            self._inner_ended[:] = False
        else:
            self._history[mask] = obs[mask][:, None]
            self._inner_obs[mask] = obs[mask]
            self._needs_reset[mask] = False
            self._inner_ended[mask] = False
        return self._history.copy(), infos

    def _park(self, mask: np.ndarray) -> None:
        """Exact-state reset of the sub-envs in ``mask`` to the state their episode ended
        in, so that a vector env that refuses steps after an episode end can step them
        (results ignored). Always the end state, not the current one: placeholder steps
        from it would otherwise drift out of the states an exact reset accepts."""
        base = self.env.unwrapped
        states = None
        for i in map(int, np.flatnonzero(mask)):
            if i not in self._end_states:
                states = base.call("get_state") if states is None else states
                self._end_states[i] = np.array(states[i])
            one = np.zeros(self.num_envs, dtype=bool)
            one[i] = True
            base.reset(options={"reset_mask": one, STATE_OPTION: self._end_states[i]})
        self._inner_ended[mask] = False

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Execute one composite action per sub-env, ``actions (N, layout.size)``.

        Returns:
            ``(obs chunks (N, obs_horizon, d_obs), rewards (N,), terminations (N,),
            truncations (N,), infos)``.
        """
        if self._history is None:
            raise gym.error.ResetNeeded("call reset() before step() on the chunk environment")
        composite = check_action(actions, self.action_space, "composite actions")
        np.clip(composite, self.action_space.low, self.action_space.high, out=composite)
        prim = self.layout.unpack(composite)
        u_bar, x_bar, K = prim.u_bar, prim.x_bar, prim.K
        N, T, H = self.num_envs, self.chunk_length, self.obs_horizon
        d_u, d_x = self.layout.d_u, self.layout.d_x

        resetting = self._needs_reset.copy()
        active = ~resetting
        states = np.full((N, T, d_x), np.nan)
        inputs = np.full((N, T, d_u), np.nan)
        rewards = np.full((N, T), np.nan)
        totals = np.zeros(N)
        n_exec = np.zeros(N, dtype=np.int64)
        terminated = np.zeros(N, dtype=bool)
        truncated = np.zeros(N, dtype=bool)
        hist = np.empty((N, H + T) + self._history.shape[2:], dtype=self._obs_dtype)
        hist[:, :H] = self._history
        obs = self._inner_obs
        step_infos: list[dict[str, Any]] = []
        executor = self._executor
        input_dtype = executor.input_dtype

        for k in range(T):
            if not active.any():
                break
            idle = ~active
            if self._must_park and (idle & self._inner_ended).any():
                self._park(idle & self._inner_ended)
            x = executor.control_state(obs)
            u = executor.inputs(u_bar[:, k], x_bar[:, k], K[:, k], x)
            if idle.any():
                u[idle] = self._idle_input
            sent = u.astype(input_dtype) if u.dtype != input_dtype else u
            new_obs, reward, term, trunc, infos = self.env.step(sent)
            new_obs = np.asarray(new_obs, dtype=self._obs_dtype)
            term = np.asarray(term, dtype=bool)
            trunc = np.asarray(trunc, dtype=bool)
            reward = np.asarray(reward, dtype=np.float64)
            step_infos.append(infos)
            if active.all():  # the common case: plain slices
                states[:, k] = x
                inputs[:, k] = sent
                rewards[:, k] = reward
                totals += reward
                hist[:, H + k] = new_obs
                n_exec[:] = k + 1
                terminated[:] = term
                truncated[:] = trunc
                obs = new_obs
            else:
                states[active, k] = x[active]
                inputs[active, k] = sent[active]
                rewards[active, k] = reward[active]
                totals[active] += reward[active]
                hist[active, H + k] = new_obs[active]
                n_exec[active] = k + 1
                terminated[active] = term[active]
                truncated[active] = trunc[active]
                obs = np.where(active[:, None], new_obs, obs)
            self._inner_ended = term | trunc
            active = active & ~(term | trunc)

        # observation chunks: the last H of (previous history + executed observations)
        chunks = hist[np.arange(N)[:, None], n_exec[:, None] + np.arange(H)]
        self._inner_obs = obs
        ended = terminated | truncated

        reset_infos: dict[str, Any] = {}
        if resetting.any():
            reset_obs, reset_infos = self.env.reset(options={"reset_mask": resetting.copy()})
            reset_obs = np.asarray(reset_obs, dtype=self._obs_dtype)
            chunks[resetting] = reset_obs[resetting][:, None]
            self._inner_obs[resetting] = reset_obs[resetting]
            self._inner_ended[resetting] = False
            for i in np.flatnonzero(resetting):
                self._end_states.pop(int(i), None)
        self._history = chunks
        self._needs_reset = ended

        # infos as SyncVectorEnv batches the single wrappers' infos: the last executed
        # inner step's info plus the inner arrays for stepped envs, the reset info for the rest
        out_infos: dict[str, Any] = {}
        stepped = ~resetting
        if stepped.any():
            last = n_exec - 1
            for k in np.unique(last[stepped]):
                _merge_rows(out_infos, step_infos[k], stepped & (last == k))
            for key, array in zip(INNER_INFO_KEYS, (states, inputs, rewards, n_exec), strict=True):
                array[resetting] = 0
                out_infos[key] = array
                out_infos[f"_{key}"] = stepped.copy()
        if resetting.any():
            _merge_rows(out_infos, reset_infos, resetting)
        return chunks.copy(), totals, terminated, truncated, out_infos
