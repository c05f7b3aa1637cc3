"""Collect expert demonstrations over consecutive seeds, optionally in parallel.

Episode ``i`` is ``make_expert(env_id, env_kwargs, **expert_kwargs).demonstrate(seed + i)``,
followed
by ``hint_envs.synthesis.synthesize(env_id, demo)`` into ``demo.primitives``. Every random
choice of an episode comes from its seed, so the result depends only on the arguments,
never on ``workers``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from hint_envs._workers import check_workers, worker_pool
from hint_envs.core import Demonstration, get_control_indices
from hint_envs.experts import make_expert
from hint_envs.experts.base import Expert

logger = logging.getLogger(__name__)

__all__ = ["MAX_ATTEMPTS_FACTOR", "collect_demonstrations", "collect_one"]

#: With ``only_success``, give up after ``MAX_ATTEMPTS_FACTOR * episodes`` seeds.
MAX_ATTEMPTS_FACTOR = 10
#: Episodes handed to each worker at a time: collection streams seeds in batches of this
#: many per worker, never building the whole list of jobs (a huge count costs no memory
#: before it is refused or collected).
BATCH_PER_WORKER = 32

# One expert per (env id, env kwargs, expert kwargs) per process: building one may be
# costly (gym.make).
_EXPERTS: dict[tuple[str, str], Expert] = {}


def cached_expert(env_id: str, env_kwargs: dict[str, Any], expert_kwargs: dict[str, Any]) -> Expert:
    """The expert of ``env_id`` with these settings, built once per process."""
    key = (env_id, json.dumps([env_kwargs, expert_kwargs], sort_keys=True, default=repr))
    if key not in _EXPERTS:
        _EXPERTS[key] = make_expert(env_id, env_kwargs, **expert_kwargs)
    return _EXPERTS[key]


def collect_one(
    env_id: str,
    seed: int,
    synthesize: bool = True,
    expert_kwargs: dict[str, Any] | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> Demonstration:
    """One expert episode from ``reset(seed=seed)`` of ``gym.make(env_id, **env_kwargs)``,
    with synthesised primitives.

    Returns:
        the :class:`Demonstration`; ``attrs["seed"]`` is ``seed``.

    Raises:
        RuntimeError: the expert or the synthesiser failed (the message names the seed).
    """
    try:
        expert = cached_expert(env_id, dict(env_kwargs or {}), dict(expert_kwargs or {}))
        demo = expert.demonstrate(int(seed))
        demo.attrs.setdefault("seed", int(seed))
        if synthesize:
            from hint_envs.synthesis import synthesize as synthesise_primitives

            demo.primitives = synthesise_primitives(env_id, demo)
    except (KeyError, TypeError):  # unknown env id / bad expert kwargs: the user's to fix
        raise
    except Exception as err:
        raise RuntimeError(
            f"collecting the {env_id} episode with seed {seed} failed: {type(err).__name__}: {err}"
        ) from err
    return demo


def _star_collect(args: tuple) -> Demonstration:
    return collect_one(*args)


def _episodes(
    env_id: str,
    seeds: range,
    workers: int,
    synthesize: bool,
    expert_kwargs: dict[str, Any],
    env_kwargs: dict[str, Any],
    pool: Executor | None,
) -> Iterator[Demonstration]:
    """Demonstrations for ``seeds``, in seed order, computed in ``pool`` if given."""
    jobs = [(env_id, s, synthesize, expert_kwargs, env_kwargs) for s in seeds]
    if pool is None:
        return map(_star_collect, jobs)
    return pool.map(_star_collect, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def demonstration_bytes(env_id: str, env_kwargs: dict | None = None) -> int:
    """An upper estimate of one demonstration's memory: float64 observations, states,
    inputs and primitive controllers for every step of the env's time limit (the env is
    made once). Used to refuse a count that cannot fit before collecting any of it."""
    import gymnasium as gym

    env = gym.make(env_id, **dict(env_kwargs or {}))
    try:
        steps = env.spec.max_episode_steps if env.spec is not None else None
        d_obs = int(np.prod(env.observation_space.shape))
        d_u = int(np.prod(env.action_space.shape))
        d_x = len(get_control_indices(env))
    finally:
        env.close()
    per_step = 2 * d_obs + d_u + 3 + d_u + d_x + d_u * d_x  # obs, state, u, r/done, primitives
    return 8 * per_step * int(steps or 1000)


def collect_demonstrations(
    env_id: str,
    episodes: int,
    seed: int = 0,
    workers: int = 1,
    synthesize: bool = True,
    only_success: bool = False,
    progress: bool = True,
    expert_kwargs: dict | None = None,
    env_kwargs: dict | None = None,
) -> list[Demonstration]:
    """Collect ``episodes`` expert demonstrations from seeds ``seed, seed + 1, ...``.

    Args:
        env_id: registered env id with an expert (:data:`hint_envs.experts.EXPERTS`).
        episodes: number of demonstrations to return (``>= 1``).
        seed: seed of the first episode; episode ``i`` uses ``seed + i``.
        workers: processes to use (``1``: this process). Results are identical for any
            number of workers.
        synthesize: fill ``demo.primitives`` with the env's synthesis oracle.
        only_success: keep only successful episodes, drawing further seeds until
            ``episodes`` succeed (at most ``MAX_ATTEMPTS_FACTOR * episodes`` seeds).
        progress: show a tqdm bar.
        expert_kwargs: keyword arguments of the expert's constructor (picklable).
        env_kwargs: ``gym.make`` keyword arguments of the environment (e.g.
            ``{"obs_type": "keypoints"}`` for PushT); record them in the file with
            ``write_demonstrations(..., env_kwargs=...)``.

    Returns:
        ``episodes`` demonstrations in seed order (with ``only_success``, the first
        ``episodes`` successful seeds).

    Raises:
        ValueError: ``episodes`` or ``workers`` below 1.
        KeyError: no expert is registered for ``env_id``.
        RuntimeError: an episode failed, or too few succeeded with ``only_success``.
    """
    if isinstance(episodes, bool) or int(episodes) != episodes or episodes < 1:
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    workers = check_workers(workers)
    expert_kwargs = dict(expert_kwargs or {})
    env_kwargs = dict(env_kwargs or {})
    from hint_envs.experts import EXPERTS

    if env_id not in EXPERTS:
        raise KeyError(f"no expert for {env_id!r}; experts exist for: {sorted(EXPERTS)}")
    max_attempts = MAX_ATTEMPTS_FACTOR * episodes if only_success else episodes
    kept: list[Demonstration] = []
    attempts = 0
    bar = tqdm(total=episodes, desc=f"collecting {env_id}", unit="demo", disable=not progress)
    try:
        with worker_pool(workers, f"the collection of {env_id}") as pool:
            while len(kept) < episodes and attempts < max_attempts:
                # ask for what is still missing (a few more in parallel): deterministic since
                # only the first successes in seed order are kept
                batch = min(
                    max(episodes - len(kept), workers),
                    max_attempts - attempts,
                    BATCH_PER_WORKER * workers,
                )
                seeds = range(seed + attempts, seed + attempts + batch)
                jobs = _episodes(
                    env_id, seeds, workers, synthesize, expert_kwargs, env_kwargs, pool
                )
                for demo in jobs:
                    attempts += 1
                    bar.set_postfix(tried=attempts, refresh=False)
                    if len(kept) < episodes and (demo.success or not only_success):
                        kept.append(demo)
                        bar.update(1)
    finally:
        bar.close()
    if len(kept) < episodes:
        raise RuntimeError(
            f"only {len(kept)} of {attempts} {env_id} episodes from seed {seed} succeeded, "
            f"fewer than the {episodes} asked for; ask for fewer episodes or drop only_success"
        )
    logger.info(
        "collected %d %s demonstrations from %d seeds starting at %d (%d successful)",
        len(kept),
        env_id,
        attempts,
        seed,
        sum(d.success for d in kept),
    )
    return kept
