"""Rollouts over fixed seeds: a chunking policy, or the offline expert, one episode a seed.

A *policy* here is any object with Stable-Baselines3's
``predict(obs, state=None, episode_start=None, deterministic=False) -> (actions, state)``
that accepts a batch of chunk-level observations ``(B, obs_horizon, d_obs)`` and returns
composite actions ``(B, action_dim)`` (see :class:`hint_envs.core.CompositeActionLayout`).
Nothing here imports torch.

The evaluation environment is the stack :func:`make_chunk_env` builds::

    ReplicaNoiseWrapper(                      # only when sigma > 0 ("replica")
        PrimitiveControllerWrapper(           # one step = chunk_length inner steps
            gym.make(env_id, **env_kwargs)))  # the control env, with its TimeLimit

With ``sigma = 0`` there is no test-time noise: the "deconvolution" setting, in which a
policy trained on noised data is run on clean observations. Both settings are the same
evaluation with a different ``sigma``.

Timeline of one chunk-level step (``H = obs_horizon``, ``C = chunk_length``)::

    observed : x_{t-H+1} ... x_t          (the observation chunk, maybe noised)
    executed : u_t ... u_{t+C-1}          (C primitive controllers on the TRUE state)
    recorded : x_t ... x_{t+C-1}          (info["inner_states"], states before each input)
"""

from __future__ import annotations

import logging
import pickle
import sys
from collections.abc import Sequence
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from hint_envs._workers import check_workers, worker_pool
from hint_envs.core import (
    STATE_OPTION,
    check_noise_level,
    check_policy_spaces,
    get_control_indices,
)
from hint_envs.wrappers.primitive_controller import PrimitiveControllerWrapper
from hint_envs.wrappers.replica_noise import ReplicaNoiseWrapper

__all__ = [
    "EpisodeRecord",
    "ChunkPolicy",
    "make_chunk_env",
    "initial_states_for_seeds",
    "rollout_policy",
    "rollout_expert",
]

logger = logging.getLogger(__name__)


class ChunkPolicy(Protocol):
    """What :func:`rollout_policy` needs of a policy: SB3's ``predict``.

    ``predict(obs (B, obs_horizon, d_obs), state, episode_start (B,), deterministic)``
    returns ``(actions (B, action_dim), state)``.
    """

    def predict(
        self,
        observation: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, Any]: ...


@dataclass
class EpisodeRecord:
    """One evaluated episode (``T`` inner control steps).

    Attributes:
        seed: the seed the episode was reset with (and the noise wrapper seeded with).
        initial_state: ``(d_state,)`` exact simulator state after reset
            (``reset(options={"state": initial_state})`` restores it).
        states: ``(T + 1, d_x)`` control states ``x_0 .. x_T``, the final state included.
        inputs: ``(T, d_u)`` raw inputs as sent to the environment (clipped to its action
            space).
        rewards: ``(T,)`` inner-step rewards.
        episode_return: sum of ``rewards`` (key ``"return"`` in :meth:`to_dict`).
        length: ``T``, the number of inner steps.
        success: the final step's ``info["is_success"]``.
        terminated: the episode ended in a terminal state (e.g. a crash).
        truncated: the episode was cut by the time limit.
        extra: JSON-serialisable details: for policy rollouts ``decisions`` (chunk-level
            steps) and ``final_info`` (scalar entries of the last info); for expert
            rollouts the demonstration's ``attrs`` (e.g. ``mode``).
    """

    seed: int
    initial_state: np.ndarray
    states: np.ndarray
    inputs: np.ndarray
    rewards: np.ndarray
    episode_return: float
    length: int
    success: bool
    terminated: bool
    truncated: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.states.shape[0] != self.length + 1 or self.inputs.shape[0] != self.length:
            raise ValueError(
                f"episode of length {self.length} needs {self.length + 1} states and "
                f"{self.length} inputs, got {self.states.shape} and {self.inputs.shape}"
            )

    def to_dict(self, trajectories: bool = False) -> dict[str, Any]:
        """The record as plain Python types (JSON-serialisable).

        Args:
            trajectories: also include ``states``, ``inputs`` and ``rewards`` as lists.
        """
        out: dict[str, Any] = {
            "seed": int(self.seed),
            "initial_state": np.asarray(self.initial_state, dtype=float).tolist(),
            "return": float(self.episode_return),
            "length": int(self.length),
            "success": bool(self.success),
            "terminated": bool(self.terminated),
            "truncated": bool(self.truncated),
            "extra": _jsonable(self.extra),
        }
        if trajectories:
            out["states"] = self.states.tolist()
            out["inputs"] = self.inputs.tolist()
            out["rewards"] = self.rewards.tolist()
        return out


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays turned into Python types; drops what cannot be."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def _scalar_info(info: dict[str, Any]) -> dict[str, Any]:
    """The scalar (bool/int/float/str) entries of an info dict, as Python types."""
    out = {}
    for key, value in info.items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
    return out


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gym.make(env_id, **env_kwargs)``; keywords the environment does not take raise
    ``ValueError`` naming them (not the constructor's ``TypeError``)."""
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except TypeError as error:
        raise ValueError(f"cannot make {env_id} with env_kwargs {env_kwargs}: {error}") from None


def make_chunk_env(
    env_id: str,
    chunk_length: int,
    obs_horizon: int,
    gains: bool,
    sigma: float = 0.0,
    noise_scale: np.ndarray | float = 1.0,
    env_kwargs: dict[str, Any] | None = None,
    noise_law: str = "gaussian",
    obs_shift: float = 0.0,
) -> gym.Env:
    """Build the chunk-level evaluation environment (the whole wrapper stack).

    Args:
        env_id: a registered control environment, e.g. ``"hint_envs/PlanarQuadrotor-v0"``.
        chunk_length: primitive controllers per composite action (tau_chunk).
        obs_horizon: observations per observation chunk (tau_obs).
        gains: whether composite actions carry ``(u_bar, x_bar, K)`` or only ``u_bar``.
        sigma: replica-noise level in normalised units; ``0`` builds no noise wrapper.
        noise_scale: ``(d_obs,)`` or scalar raw units per normalised unit (the dataset's
            :attr:`~hint_envs.data.normalization.RangeNormalizer.noise_scale`).
        env_kwargs: keyword arguments for ``gym.make``.
        noise_law: the law of the replica noise (:data:`hint_envs.core.NOISE_LAWS`).
        obs_shift: constant shift of every observation feature in normalised units
            (:class:`~hint_envs.wrappers.ReplicaNoiseWrapper`'s ``shift``; 0: none).

    Returns:
        ``ReplicaNoiseWrapper(PrimitiveControllerWrapper(gym.make(env_id)))`` if
        ``sigma > 0`` or ``obs_shift != 0``, else without the noise wrapper. Observations
        ``(obs_horizon, d_obs)``, actions ``(action_dim,)`` composite actions.
    """
    sigma = check_noise_level(sigma)
    env = make_env(env_id, env_kwargs)
    env = PrimitiveControllerWrapper(
        env, chunk_length=chunk_length, obs_horizon=obs_horizon, gains=gains
    )
    if sigma > 0 or obs_shift != 0:
        env = ReplicaNoiseWrapper(
            env, sigma=sigma, scale=noise_scale, noise_law=noise_law, shift=obs_shift
        )
    return env


def check_policy_fits(policy: Any, env_args: tuple) -> None:
    """Build the chunk-level env of ``env_args`` (:func:`make_chunk_env`'s arguments) and,
    when ``policy`` exposes ``observation_space`` and ``action_space`` (SB3 policies do),
    require their shapes to be the env's (:func:`hint_envs.core.check_policy_spaces`).

    Raises:
        ValueError: bad environment settings, or a policy made for another environment
            or other chunk settings.
    """
    env = make_chunk_env(*env_args)
    try:
        observation_space = getattr(policy, "observation_space", None)
        action_space = getattr(policy, "action_space", None)
        if observation_space is not None and action_space is not None:
            check_policy_spaces(env, observation_space, action_space)
    finally:
        env.close()


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = list(seeds)
    for seed in seeds:
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seeds must be non-negative integers, got {seed!r} in {seeds}")
    return [int(seed) for seed in seeds]


def _check_initial_states(initial_states: Any, count: int) -> list[np.ndarray] | None:
    if initial_states is None:
        return None
    states = [np.asarray(s, dtype=np.float64) for s in initial_states]
    if len(states) != count:
        raise ValueError(
            f"got {len(states)} initial states for {count} seeds; give one state per seed"
        )
    return states


def initial_states_for_seeds(
    env_id: str, seeds: Sequence[int], env_kwargs: dict[str, Any] | None = None
) -> np.ndarray:
    """The exact simulator states ``env.reset(seed=seed)`` starts from.

    Returns:
        ``(len(seeds), d_state)``: row ``i`` is ``get_state()`` after ``reset(seed=seeds[i])``.

    Raises:
        TypeError: the environment has no ``get_state()`` (not a control environment).
    """
    seeds = _check_seeds(seeds)
    env = make_env(env_id, env_kwargs)
    try:
        get_state = getattr(env.unwrapped, "get_state", None)
        if get_state is None:
            raise TypeError(
                f"{env_id} has no get_state(); evaluation needs a control environment that "
                "reports and restores its exact state (see hint_envs.core)"
            )
        states = []
        for seed in seeds:
            env.reset(seed=seed)
            states.append(np.asarray(get_state(), dtype=np.float64))
    finally:
        env.close()
    return np.stack(states) if states else np.zeros((0, 0))


class _Episode:
    """Accumulates one running episode's arrays from chunk-level steps."""

    def __init__(self, index: int, seed: int, initial_state: np.ndarray):
        self.index = index
        self.seed = seed
        self.initial_state = initial_state
        self.states: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        self.decisions = 0
        self.first = True

    def add(self, info: dict[str, Any]) -> None:
        """Append one chunk-level step's executed inner steps (rows past
        ``steps_executed`` are NaN padding and are dropped)."""
        try:
            n = int(info["steps_executed"])
            self.states.append(np.asarray(info["inner_states"], dtype=np.float64)[:n])
            self.inputs.append(np.asarray(info["inner_inputs"], dtype=np.float64)[:n])
            self.rewards.append(np.asarray(info["inner_rewards"], dtype=np.float64)[:n])
        except KeyError as error:
            raise KeyError(
                f"the chunk-level env's info lacks {error}; rollout_policy needs "
                "PrimitiveControllerWrapper's inner_states, inner_inputs, inner_rewards and "
                "steps_executed"
            ) from None
        self.decisions += 1

    def finish(
        self, final_state: np.ndarray, info: dict[str, Any], terminated: bool, truncated: bool
    ) -> EpisodeRecord:
        states = np.concatenate(self.states + [final_state[None]], axis=0)
        inputs = np.concatenate(self.inputs, axis=0)
        rewards = np.concatenate(self.rewards, axis=0)
        return EpisodeRecord(
            seed=self.seed,
            initial_state=self.initial_state,
            states=states,
            inputs=inputs,
            rewards=rewards,
            episode_return=float(rewards.sum()),
            length=int(rewards.shape[0]),
            success=bool(info.get("is_success", False)),
            terminated=bool(terminated),
            truncated=bool(truncated),
            extra={"decisions": self.decisions, "final_info": _scalar_info(info)},
        )


#: Second entry of the seed sequence that seeds a policy's sampler for a group of
#: episodes (independent of the environment's and the replica noise's streams).
POLICY_STREAM = 0x5A3_91E


class _GroupRunner:
    """Runs groups of episodes of one policy, each group as one batch (see
    :func:`rollout_policy`). Builds its environments on first use."""

    def __init__(
        self, policy: ChunkPolicy, env_args: tuple, deterministic: bool, sample_seed: int
    ) -> None:
        self.policy = policy
        self.env_args = env_args
        self.deterministic = deterministic
        self.sample_seed = sample_seed
        self.envs: list[gym.Env] = []

    def close(self) -> None:
        for env in self.envs:
            env.close()
        self.envs = []

    def run(
        self, indices: list[int], seeds: list[int], starts: list[np.ndarray] | None
    ) -> list[tuple[int, EpisodeRecord]]:
        """Episodes ``(index, seed, start)`` side by side, one ``predict`` call per decision
        for all of them; the policy's sampler is first reseeded from the group's first
        seed and ``sample_seed``. Returns ``(index, record)`` pairs."""
        while len(self.envs) < len(seeds):
            self.envs.append(make_chunk_env(*self.env_args))
        envs = self.envs[: len(seeds)]
        control_indices = get_control_indices(envs[0].unwrapped)  # the chunk env has none
        action_shape = envs[0].action_space.shape
        reseed = getattr(self.policy, "seed", None)
        if callable(reseed):
            entropy = [self.sample_seed, seeds[0], POLICY_STREAM]
            reseed(int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1))
        running: list[_Episode | None] = []
        observations: list[np.ndarray | None] = []
        for slot, (index, seed) in enumerate(zip(indices, seeds, strict=True)):
            options = None if starts is None else {STATE_OPTION: starts[slot]}
            obs, _ = envs[slot].reset(seed=seed, options=options)
            state = np.asarray(envs[slot].unwrapped.get_state(), dtype=np.float64)
            running.append(_Episode(index, seed, state))
            observations.append(obs)
        done: list[tuple[int, EpisodeRecord]] = []
        while any(episode is not None for episode in running):
            active = [slot for slot, episode in enumerate(running) if episode is not None]
            batch = np.stack([observations[slot] for slot in active])
            episode_start = np.array([running[slot].first for slot in active])
            actions, _ = self.policy.predict(
                batch, state=None, episode_start=episode_start, deterministic=self.deterministic
            )
            actions = np.asarray(actions)
            if actions.shape != (len(active),) + action_shape:
                raise ValueError(
                    f"policy.predict returned actions of shape {actions.shape} for a batch of "
                    f"{len(active)} observations {batch.shape}; expected "
                    f"{(len(active),) + action_shape} composite actions"
                )
            for row, slot in enumerate(active):
                episode = running[slot]
                episode.first = False
                obs, _, terminated, truncated, info = envs[slot].step(actions[row])
                observations[slot] = obs
                episode.add(info)
                if terminated or truncated:
                    clean = np.asarray(info.get("clean_obs", obs), dtype=np.float64)
                    record = episode.finish(clean[-1][control_indices], info, terminated, truncated)
                    done.append((episode.index, record))
                    running[slot] = None
        return done


_WORKER_RUNNER: _GroupRunner | None = None


def _init_policy_worker(
    policy_bytes: bytes, env_args: tuple, deterministic: bool, sample_seed: int
) -> None:
    """Set up a rollout worker: one BLAS/torch thread, the policy, its environments."""
    global _WORKER_RUNNER
    policy = pickle.loads(policy_bytes)
    torch = sys.modules.get("torch")  # present if the policy is a torch module
    if torch is not None:
        torch.set_num_threads(1)
    _WORKER_RUNNER = _GroupRunner(policy, env_args, deterministic, sample_seed)


def _run_group_in_worker(
    indices: list[int], seeds: list[int], starts: list[np.ndarray] | None
) -> list[tuple[int, EpisodeRecord]]:
    assert _WORKER_RUNNER is not None, "the worker was not initialised"
    return _WORKER_RUNNER.run(indices, seeds, starts)


def rollout_policy(
    policy: ChunkPolicy,
    env_id: str,
    seeds: Sequence[int],
    *,
    chunk_length: int,
    obs_horizon: int,
    gains: bool,
    sigma: float = 0.0,
    noise_scale: np.ndarray | float = 1.0,
    initial_states: Sequence[np.ndarray] | np.ndarray | None = None,
    num_envs: int = 8,
    deterministic: bool = False,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    workers: int = 1,
    sample_seed: int = 0,
    noise_law: str = "gaussian",
    obs_shift: float = 0.0,
) -> list[EpisodeRecord]:
    """Roll ``policy`` out for one episode per seed, in groups of ``num_envs`` episodes.

    The seeds are cut into consecutive groups of ``num_envs``. The episodes of a group run
    side by side in chunk-level environments (:func:`make_chunk_env`): at every decision
    the observation chunks of the group's running episodes are stacked into one batch
    ``(B, obs_horizon, d_obs)``, ``B <= num_envs``, and passed to **one**
    ``policy.predict`` call, with ``episode_start`` (B,) true on each episode's first
    decision and ``state=None`` (policies are assumed stateless across calls). Before a
    group starts, a policy with a ``seed(int)`` method (the DDPM policy's sampler) is
    reseeded from ``sample_seed`` and the group's first seed, so a group's episodes depend
    on its seeds and ``sample_seed`` alone.

    Episode ``i`` is reset with ``seed=seeds[i]`` (which also seeds the replica-noise
    generator) and, if ``initial_states`` is given, ``options={"state":
    initial_states[i]}``. Groups are independent, so with ``workers > 1`` they run in
    that many spawned processes (each with one torch thread, holding a pickled copy of
    the policy) and the records are identical to ``workers=1`` for any worker count. For
    a deterministic policy they also do not depend on ``num_envs``.

    Args:
        policy: an object with SB3's ``predict`` for chunk-level observations
            (picklable, for ``workers > 1``).
        env_id: the control environment (the evaluation environment's arguments are
            those of :func:`make_chunk_env`).
        seeds: one non-negative integer per episode.
        chunk_length: primitive controllers per decision.
        obs_horizon: observations per observation chunk.
        gains: composite actions carry ``(u_bar, x_bar, K)`` (True) or only ``u_bar``.
        sigma: test-time replica noise in normalised units (0: none).
        noise_scale: ``(d_obs,)`` or scalar raw units per normalised unit.
        initial_states: optional ``(len(seeds), d_state)`` exact start states.
        num_envs: episodes per group (the largest ``predict`` batch).
        deterministic: passed to ``predict``.
        env_kwargs: ``gym.make`` keyword arguments of the environment.
        progress: show a tqdm bar over episodes.
        workers: processes to run groups in (``1``: this process).
        sample_seed: seed of the policy's sampler (combined with each group's first seed).
        noise_law: the law of the replica noise (:data:`hint_envs.core.NOISE_LAWS`).
        obs_shift: constant shift of the observations the policy sees, normalised units.

    Returns:
        one :class:`EpisodeRecord` per seed, in the order of ``seeds``.

    Raises:
        ValueError: bad seeds, initial states, ``num_envs`` or ``workers``; a policy
            whose ``observation_space``/``action_space`` do not have the chunk-level env's
            shapes (checked before any rollout, :func:`check_policy_fits`); or actions of
            the wrong shape from ``predict``.
    """
    seeds = _check_seeds(seeds)
    starts = _check_initial_states(initial_states, len(seeds))
    if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got {num_envs!r}")
    workers = check_workers(workers)
    if isinstance(sample_seed, bool) or not isinstance(sample_seed, (int, np.integer)):
        raise ValueError(f"sample_seed must be an integer >= 0, got {sample_seed!r}")
    if sample_seed < 0:
        raise ValueError(f"sample_seed must be an integer >= 0, got {sample_seed!r}")
    if not hasattr(policy, "predict"):
        raise TypeError(
            f"policy must have SB3's predict(obs, state, episode_start, deterministic), got "
            f"{type(policy).__name__}"
        )
    if not seeds:
        return []
    env_args = (
        env_id,
        chunk_length,
        obs_horizon,
        gains,
        sigma,
        noise_scale,
        env_kwargs,
        noise_law,
        obs_shift,
    )
    check_policy_fits(policy, env_args)  # bad settings fail here, before any rollout
    groups = []
    for first in range(0, len(seeds), int(num_envs)):
        indices = list(range(first, min(first + int(num_envs), len(seeds))))
        group_starts = None if starts is None else [starts[i] for i in indices]
        groups.append((indices, [seeds[i] for i in indices], group_starts))
    records: list[EpisodeRecord | None] = [None] * len(seeds)
    bar = tqdm(total=len(seeds), desc=f"rollout {env_id}", unit="ep", disable=not progress)
    try:
        if workers == 1 or len(groups) == 1:
            runner = _GroupRunner(policy, env_args, deterministic, sample_seed)
            try:
                for group in groups:
                    for index, record in runner.run(*group):
                        records[index] = record
                    bar.update(len(group[0]))
            finally:
                runner.close()
        else:
            initargs = (pickle.dumps(policy), env_args, deterministic, sample_seed)
            what = f"the rollouts of {env_id}"
            size = min(workers, len(groups))
            with worker_pool(size, what, _init_policy_worker, initargs) as pool:
                futures = [pool.submit(_run_group_in_worker, *group) for group in groups]
                for future in as_completed(futures):
                    done = future.result()  # a worker's error is raised here
                    for index, record in done:
                        records[index] = record
                    bar.update(len(done))
    finally:
        bar.close()
    logger.info("rolled out %d episodes of %s (sigma=%g)", len(seeds), env_id, sigma)
    return records  # type: ignore[return-value]


def _expert_record(
    env_id: str,
    seed: int,
    initial_state: np.ndarray | None,
    expert_kwargs: dict[str, Any],
    env_kwargs: dict[str, Any],
    control_indices: np.ndarray,
    max_steps: int | None,
) -> EpisodeRecord:
    """One expert episode as a record (the expert is built once per process)."""
    from hint_envs.experts.collect import cached_expert

    expert = cached_expert(env_id, env_kwargs, expert_kwargs)
    demo = expert.demonstrate(seed, initial_state=initial_state)
    return _record_from_demonstration(demo, seed, control_indices, max_steps)


def _star_expert_record(args: tuple) -> EpisodeRecord:
    return _expert_record(*args)


def rollout_expert(
    env_id: str,
    seeds: Sequence[int],
    initial_states: Sequence[np.ndarray] | np.ndarray | None = None,
    expert_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    workers: int = 1,
) -> list[EpisodeRecord]:
    """Roll the registered offline expert out for one episode per seed.

    Episode ``i`` is ``make_expert(env_id, env_kwargs).demonstrate(seeds[i],
    initial_state=...)``: it starts from ``reset(seed=seeds[i])``, or from
    ``initial_states[i]`` if given, and draws its own random choices (mode, process noise)
    from ``seeds[i]``, so the records do not depend on ``workers``.

    Args:
        env_id: a registered environment with an expert (:data:`hint_envs.experts.EXPERTS`).
        seeds: one non-negative integer per episode.
        initial_states: optional ``(len(seeds), d_state)`` exact start states.
        expert_kwargs: keyword arguments for :func:`hint_envs.experts.make_expert`.
        progress: show a tqdm bar over episodes.
        env_kwargs: ``gym.make`` keyword arguments of the environment.
        workers: processes to run episodes in (``1``: this process).

    Returns:
        one :class:`EpisodeRecord` per seed, in order; ``states`` are the control states
        ``observations[:, control_indices]`` followed by the final observation's.
    """
    from hint_envs.experts.collect import cached_expert

    seeds = _check_seeds(seeds)
    starts = _check_initial_states(initial_states, len(seeds))
    workers = check_workers(workers)
    expert_kwargs, env_kwargs = dict(expert_kwargs or {}), dict(env_kwargs or {})
    cached_expert(env_id, env_kwargs, expert_kwargs)  # bad settings fail here
    env = make_env(env_id, env_kwargs)
    control_indices = get_control_indices(env)
    env.close()
    max_steps = gym.spec(env_id).max_episode_steps
    jobs = [
        (env_id, seed, None if starts is None else starts[i], expert_kwargs, env_kwargs)
        + (control_indices, max_steps)
        for i, seed in enumerate(seeds)
    ]
    bar = tqdm(total=len(seeds), desc=f"expert {env_id}", unit="ep", disable=not progress)
    records = []
    try:
        if workers == 1:
            for job in jobs:
                records.append(_expert_record(*job))
                bar.update(1)
        else:
            with worker_pool(workers, f"the expert rollouts of {env_id}") as pool:
                for record in pool.map(_star_expert_record, jobs):
                    records.append(record)
                    bar.update(1)
    finally:
        bar.close()
    return records


def _record_from_demonstration(
    demo: Any, seed: int, control_indices: np.ndarray, max_steps: int | None
) -> EpisodeRecord:
    """An :class:`EpisodeRecord` from a :class:`~hint_envs.experts.base.Demonstration`."""
    observations = np.asarray(demo.observations, dtype=np.float64)
    final = np.asarray(demo.final_observation, dtype=np.float64)
    states = np.concatenate([observations[:, control_indices], final[None, control_indices]])
    rewards = np.asarray(demo.rewards, dtype=np.float64)
    attrs = dict(demo.attrs)
    length = len(demo)
    if "truncated" in attrs and "terminated" in attrs:
        truncated, terminated = bool(attrs["truncated"]), bool(attrs["terminated"])
    else:  # an expert episode that stops before the time limit ended in a terminal state
        truncated = max_steps is not None and length >= max_steps
        terminated = not truncated
    return EpisodeRecord(
        seed=seed,
        initial_state=np.asarray(demo.states[0], dtype=np.float64),
        states=states,
        inputs=np.asarray(demo.actions, dtype=np.float64),
        rewards=rewards,
        episode_return=float(rewards.sum()),
        length=length,
        success=demo.success,
        terminated=terminated,
        truncated=truncated,
        extra=_jsonable(attrs),
    )
