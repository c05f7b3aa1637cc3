"""Observation chunks and composite actions cut from demonstrations (HINT step 3).

For every time step ``t`` of every demonstration (``T`` steps), one training pair::

    o_h = (o_{t - obs_horizon + 1}, ..., o_t)                 observed (indices < 0 -> o_0)
    a_h = (kappa_t, kappa_{t + 1}, ..., kappa_{t + horizon - 1})  predicted (indices > T - 1
                                                                 -> kappa_{T - 1})

where ``kappa_k = (u_bar_k, x_bar_k, K_k)`` is the synthesised primitive controller of step
``k``, packed by :class:`hint_envs.core.CompositeActionLayout`. Timeline for
``obs_horizon = 2``, ``horizon = 4``::

    step       t-1   t    t+1  t+2  t+3
    observed    o    o
    predicted        k    k    k    k      (executed: all ``horizon`` of them, then replan)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from hint_envs.core import CompositeActionLayout, Demonstration, EnvBounds
from hint_envs.data.hdf5 import DemoFile, env_bounds, read_demonstrations
from hint_envs.data.minari_io import is_minari_source
from hint_envs.data.normalization import NormalizationStats, RangeNormalizer

logger = logging.getLogger(__name__)

__all__ = ["ChunkDataset"]


def _window_indices(T: int, obs_horizon: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Observation and controller indices of every window of a ``T``-step demonstration.

    Returns:
        ``obs_index (T, obs_horizon)`` with ``obs_index[t] = clip(t - obs_horizon + 1 ..
        t, 0)`` and ``act_index (T, horizon)`` with ``act_index[t] = clip(t .. t + horizon
        - 1, max=T - 1)``.
    """
    t = np.arange(T)[:, None]
    obs_index = np.maximum(t + np.arange(-obs_horizon + 1, 1)[None, :], 0)
    act_index = np.minimum(t + np.arange(horizon)[None, :], T - 1)
    return obs_index, act_index


class ChunkDataset:
    """Every (observation chunk, composite action) window of a set of demonstrations.

    Args:
        source: a demonstration file (path), a local Minari dataset written by
            :func:`~hint_envs.data.minari_io.write_minari` (``"minari:<dataset id>"``), a
            :class:`~hint_envs.data.hdf5.DemoFile`, or a sequence of
            :class:`~hint_envs.experts.base.Demonstration` with primitives.
        obs_horizon: tau_obs, observations per chunk (``>= 1``).
        horizon: tau_chunk, primitive controllers per composite action (``>= 1``).
        gains: pack ``(u_bar, x_bar, K)`` per controller; if False only ``u_bar``.
        num_demos: use the first ``num_demos`` demonstrations in index order (all if None).
        env_id: env id to record when ``source`` is a plain sequence of demonstrations.
        env_kwargs: its ``gym.make`` keyword arguments (plain sequences only; a file
            records its own).
        bounds: the env's bounds (:class:`hint_envs.core.EnvBounds`), which training builds
            the policy's spaces from. Default: a file's stored bounds; for a plain sequence
            with an ``env_id``, those of ``gym.make(env_id, **env_kwargs)``, made once here
            (where the demonstrations were just collected); None without an ``env_id``.

    Attributes:
        observations: ``(M, obs_horizon, d_obs)`` float32 observation chunks.
        actions: ``(M, horizon, controller_size)`` float32 composite actions, one row per
            controller (``actions[i].reshape(-1)`` is the flat composite action of
            :attr:`layout`).
        layout: the :class:`CompositeActionLayout` (``chunk_length = horizon``).
        stats: :class:`NormalizationStats`: ``obs`` per observation feature over every
            observation of the selected demos, ``action`` per controller feature over every
            controller of the selected demos.
        episode_ids: ``(M,)`` int64 index of the demonstration of each window.
        timesteps: ``(M,)`` int64 step ``t`` of each window.
        demos: the selected demonstrations.
        obs_horizon, horizon, gains, env_id: as given (``env_id`` None if unknown).
        env_kwargs: the ``gym.make`` keyword arguments the file recorded (or those given
            with a plain sequence of demonstrations); evaluation makes the env with them.
        bounds: the env's bounds as above (None: a file written before hint_envs stored
            them, which training refuses; or no env known, trained with unbounded spaces).
        path: the file the demonstrations came from (None for a plain sequence).

    Example:
        >>> data = ChunkDataset("quadrotor.hdf5", obs_horizon=2, horizon=8)  # doctest: +SKIP
        >>> obs, action = data[0]  # (2, 6), (8, 2 + 6 + 12)               # doctest: +SKIP
    """

    def __init__(
        self,
        source: str | os.PathLike | DemoFile | Sequence[Demonstration],
        obs_horizon: int,
        horizon: int,
        gains: bool = True,
        num_demos: int | None = None,
        env_id: str | None = None,
        env_kwargs: dict | None = None,
        bounds: EnvBounds | None = None,
    ) -> None:
        for name, value in (("obs_horizon", obs_horizon), ("horizon", horizon)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if bounds is not None and not isinstance(bounds, EnvBounds):
            raise TypeError(f"bounds must be an EnvBounds or None, got {type(bounds).__name__}")
        if is_minari_source(source):
            from hint_envs.data.minari_io import read_minari

            source = read_minari(source)
        elif isinstance(source, (str, os.PathLike)):
            source = read_demonstrations(Path(source))
        path = None
        if isinstance(source, DemoFile):
            env_id = source.env_id if env_id is None else env_id
            env_kwargs = dict(source.env_kwargs)
            bounds = source.bounds if bounds is None else bounds
            demos = list(source.demos)
            path = source.path
            origin = str(source.path) if source.path is not None else "the DemoFile"
        else:
            env_kwargs = dict(env_kwargs or {})
            demos = list(source)
            origin = "the given demonstrations"
            if not all(isinstance(d, Demonstration) for d in demos):
                raise TypeError(
                    "source must be a file path, a DemoFile or a sequence of Demonstration, "
                    f"got a sequence holding {sorted({type(d).__name__ for d in demos})}"
                )
        if num_demos is not None:
            if isinstance(num_demos, bool) or not isinstance(num_demos, (int, np.integer)):
                raise TypeError(f"num_demos must be an integer or None, got {num_demos!r}")
            if not 1 <= num_demos <= len(demos):
                raise ValueError(
                    f"num_demos={num_demos} but {origin} holds {len(demos)} demonstrations; "
                    f"ask for 1 .. {len(demos)} or collect more with hint-collect"
                )
            demos = demos[:num_demos]
        if not demos:
            raise ValueError(f"{origin} holds no demonstrations")
        missing = [i for i, d in enumerate(demos) if d.primitives is None]
        if missing:
            raise ValueError(
                f"demonstrations {missing[:10]} of {origin} have no primitive controllers; "
                "synthesise them (hint_envs.synthesis.synthesize, or hint-collect without "
                "--no-synthesize)"
            )
        d_obs = np.shape(demos[0].observations)[-1]
        d_u = demos[0].primitives.u_bar.shape[-1]
        d_x = demos[0].primitives.x_bar.shape[-1]
        for i, demo in enumerate(demos):
            shapes = (np.shape(demo.observations)[-1], *demo.primitives.K.shape[-2:])
            if shapes != (d_obs, d_u, d_x):
                raise ValueError(
                    f"demonstration {i} has (d_obs, d_u, d_x) = {shapes}, demonstration 0 has "
                    f"{(d_obs, d_u, d_x)}"
                )
        if bounds is None and env_id is not None and not isinstance(source, DemoFile):
            bounds = env_bounds(env_id, env_kwargs)  # collected here: the env can be made
        if bounds is not None and (bounds.d_obs, bounds.d_u, bounds.d_x) != (d_obs, d_u, d_x):
            raise ValueError(
                f"the bounds have (d_obs, d_u, d_x) = {(bounds.d_obs, bounds.d_u, bounds.d_x)} "
                f"but the demonstrations of {origin} have {(d_obs, d_u, d_x)}"
            )

        self.obs_horizon = int(obs_horizon)
        self.horizon = int(horizon)
        self.gains = bool(gains)
        self.env_id = env_id
        self.env_kwargs = env_kwargs
        self.bounds = bounds
        self.path = path
        self.demos = demos
        self.layout = CompositeActionLayout(int(d_u), int(d_x), self.horizon, self.gains)

        observations, actions, episode_ids, timesteps, controllers = [], [], [], [], []
        for episode, demo in enumerate(demos):
            T = len(demo)
            obs = np.asarray(demo.observations, dtype=np.float64)
            obs_index, act_index = _window_indices(T, self.obs_horizon, self.horizon)
            packed = self.layout.pack(demo.primitives[act_index])  # (T, horizon * size)
            packed = packed.reshape(T, self.horizon, self.layout.controller_size)
            observations.append(obs[obs_index])
            actions.append(packed)
            episode_ids.append(np.full(T, episode, dtype=np.int64))
            timesteps.append(np.arange(T, dtype=np.int64))
            controllers.append(packed[:, 0])  # controller t of window t: every controller once
        all_obs = np.concatenate([np.asarray(d.observations, dtype=np.float64) for d in demos])
        self.stats = NormalizationStats(
            obs=RangeNormalizer.fit(all_obs),
            action=RangeNormalizer.fit(np.concatenate(controllers)),
        )
        with np.errstate(over="ignore"):  # overflow to inf is reported just below
            self.observations = np.concatenate(observations).astype(np.float32)
            self.actions = np.concatenate(actions).astype(np.float32)
        self.episode_ids = np.concatenate(episode_ids)
        self.timesteps = np.concatenate(timesteps)
        for name, values in (("observations", self.observations), ("controllers", self.actions)):
            bad = ~np.isfinite(values).reshape(len(values), -1).all(axis=1)
            if bad.any():  # NaN/inf, or finite float64 beyond float32's range (~3.4e38)
                first = int(np.flatnonzero(bad)[0])
                raise ValueError(
                    f"demonstration {int(self.episode_ids[first])} of {origin} has {name} "
                    f"that are NaN, inf or beyond float32's range (step "
                    f"{int(self.timesteps[first])}); the data is corrupt"
                )
        logger.info(
            "%d windows from %d demonstrations (obs_horizon=%d, horizon=%d, gains=%s)",
            len(self),
            len(demos),
            self.obs_horizon,
            self.horizon,
            self.gains,
        )

    def __len__(self) -> int:
        return len(self.observations)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Window ``index``: ``(obs (obs_horizon, d_obs), action (horizon, controller_size))``."""
        return self.observations[index], self.actions[index]

    @property
    def obs_dim(self) -> int:
        """``d_obs``, features per observation."""
        return self.observations.shape[-1]

    @property
    def controller_size(self) -> int:
        """Floats per packed controller (``layout.controller_size``)."""
        return self.layout.controller_size

    def __repr__(self) -> str:
        return (
            f"ChunkDataset(env_id={self.env_id!r}, env_kwargs={self.env_kwargs!r}, "
            f"demos={len(self.demos)}, windows={len(self)}, "
            f"obs_horizon={self.obs_horizon}, horizon={self.horizon}, gains={self.gains})"
        )
