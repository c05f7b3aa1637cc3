"""Replica noise: the same observation noise at training and at test time.

The noise is ``sigma * scale * eps`` with ``eps`` drawn per observation feature from a
*noise law* (:data:`hint_envs.core.NOISE_LAWS`): ``"gaussian"`` N(0, 1), the HINT paper's
text and the default; ``"uniform"`` U[0, 1), what the authors' code draws (pfrommerd/
diffusion_policy_pt, ``diffusion_unet_lowdim_policy.py``: ``global_cond_noise *
torch.rand(...)``), whose mean sigma/2 shifts every input; ``"uniform_centered"``
U[-1/2, 1/2), the same spread without the shift. A policy records its law
(``config.noise_law``) and is evaluated under it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from hint_envs.core import check_noise_law, check_noise_level

__all__ = [
    "REPLICA_NOISE_STREAM",
    "ReplicaNoiseVectorWrapper",
    "ReplicaNoiseWrapper",
    "add_replica_noise",
    "draw_noise",
]


def draw_noise(
    rng: np.random.Generator, shape: tuple[int, ...], law: str = "gaussian"
) -> np.ndarray:
    """``eps`` of ``shape`` from ``rng`` under ``law`` (:data:`~hint_envs.core.NOISE_LAWS`).

    Returns:
        float64 array: N(0, 1) entries for ``"gaussian"``, U[0, 1) for ``"uniform"``,
        U[-1/2, 1/2) for ``"uniform_centered"``.
    """
    law = check_noise_law(law)
    if law == "gaussian":
        return rng.standard_normal(shape)
    eps = rng.random(shape)
    return eps - 0.5 if law == "uniform_centered" else eps


def add_replica_noise(
    obs: np.ndarray,
    sigma: float,
    scale: np.ndarray | float,
    rng: np.random.Generator,
    law: str = "gaussian",
) -> np.ndarray:
    """Return ``obs + sigma * scale * eps`` with ``eps`` drawn from ``rng`` under ``law``.

    This one function noises observations both in :class:`ReplicaNoiseWrapper` (test time,
    "replica noising") and in policy training (data noising), so the two agree exactly.

    Args:
        obs: ``(..., D)`` raw observations (any leading shape: batch, obs horizon).
        sigma: noise level in normalised units, ``>= 0``.
        scale: ``(D,)`` or scalar raw units per normalised unit
            (:attr:`hint_envs.data.normalization.RangeNormalizer.noise_scale`).
        rng: the generator to draw ``eps`` from.
        law: the law of ``eps`` per feature (:func:`draw_noise`): ``"gaussian"``
            N(0, 1), ``"uniform"`` U[0, 1) (mean 1/2: the authors' code), or
            ``"uniform_centered"`` U[-1/2, 1/2).

    Returns:
        noised observations, same shape as ``obs``, float64 (or obs's float dtype).

    Raises:
        ValueError: negative or non-finite ``sigma``, an unknown ``law``, or a ``scale``
            that does not broadcast against ``obs``'s last axis.
    """
    sigma = check_noise_level(sigma)
    law = check_noise_law(law)
    obs = np.asarray(obs)
    dtype = obs.dtype if np.issubdtype(obs.dtype, np.floating) else np.float64
    scale = np.asarray(scale, dtype=np.float64)
    if scale.ndim > 1 or (scale.ndim == 1 and scale.shape[0] not in (1, obs.shape[-1])):
        raise ValueError(
            f"scale must be a scalar or have shape ({obs.shape[-1]},) to match the last axis "
            f"of observations of shape {obs.shape}, got shape {scale.shape}"
        )
    if sigma == 0:
        return obs.astype(dtype, copy=True)
    eps = draw_noise(rng, obs.shape, law)
    return (obs + sigma * scale * eps).astype(dtype, copy=False)


#: Second word of the noise generator's seed: ``SeedSequence([seed, REPLICA_NOISE_STREAM])``,
#: so the noise stream differs from the environment's own ``np_random`` stream for a seed.
REPLICA_NOISE_STREAM = 0x7265706C  # "repl"


def _check_sigma(sigma: Any) -> float:
    """Validate a noise level: a real number (not a string or bool), finite, ``>= 0``."""
    return check_noise_level(sigma)


def _check_scale(scale: Any, obs_shape: tuple[int, ...]) -> np.ndarray:
    """Validate ``scale`` against an observation shape; returns a read-only float64 array."""
    array = np.array(scale, dtype=np.float64)
    last = obs_shape[-1] if obs_shape else 1
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, last)):
        raise ValueError(
            f"scale must be a scalar or have shape ({last},) (one value per feature of the "
            f"observation's last axis, observation shape {obs_shape}), got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"scale must be finite and >= 0, got {array}")
    array.setflags(write=False)
    return array


def _noise_generator(seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), REPLICA_NOISE_STREAM]))


def _check_shift(shift: Any) -> float:
    """Validate a constant shift in normalised units: a finite real number (any sign)."""
    if isinstance(shift, (bool, np.bool_)) or not isinstance(shift, (int, float, np.number)):
        raise TypeError(f"shift must be a real number (normalised units), got {shift!r}")
    if not np.isfinite(shift):
        raise ValueError(f"shift must be finite, got {shift!r}")
    return float(shift)


def _noised_space(space: spaces.Box, sigma: float, shift: float = 0.0) -> spaces.Box:
    """The honest space of noised observations: unbounded when ``sigma > 0`` or shifted."""
    if sigma == 0 and shift == 0:
        return space
    return spaces.Box(-np.inf, np.inf, shape=space.shape, dtype=space.dtype)


class ReplicaNoiseWrapper(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Adds ``sigma * scale * eps``, ``eps`` from a noise law, to what the policy observes.

    Replica noising (HINT, Block et al. 2023): the policy is trained on observations noised
    by :func:`add_replica_noise` and sees the same noise at test time. The noise touches
    only the returned observation, never the simulator's state; the clean observation is in
    ``info["clean_obs"]`` on reset and step.

    The noise comes from the wrapper's own generator, seeded on ``reset(seed=s)`` from
    ``SeedSequence([s, REPLICA_NOISE_STREAM])`` (so it is not the env's ``np_random``
    stream); a reset without a seed continues the current generator (fresh OS entropy if
    it was never seeded).

    Observation space: an unbounded ``Box`` of the inner shape and dtype when
    ``sigma > 0`` (noised observations can leave the inner bounds), the inner space when
    ``sigma == 0``.

    Args:
        env: an env with a Box observation space, typically a
            :class:`~hint_envs.wrappers.PrimitiveControllerWrapper` (stack order
            ``ReplicaNoiseWrapper(PrimitiveControllerWrapper(base_env))``).
        sigma: noise level in normalised units, finite and ``>= 0``.
        scale: raw units per normalised unit, a scalar or one value per feature of the
            observation's last axis (``(d_obs,)`` for an observation chunk, shared by all
            ``obs_horizon`` rows): the dataset's
            :attr:`~hint_envs.data.normalization.RangeNormalizer.noise_scale`.
        noise_law: the law of ``eps`` per feature, one of
            :data:`~hint_envs.core.NOISE_LAWS`: ``"gaussian"`` N(0, 1) (the paper's text,
            the default), ``"uniform"`` U[0, 1) (the authors' code), ``"uniform_centered"``
            U[-1/2, 1/2). Use the law the policy was trained with
            (``policy.config.noise_law``).
        shift: a constant added to every observation feature, in normalised units
            (``shift * scale``), besides the noise: an experiment's tool, e.g. the mean
            ``-sigma / 2`` by which the ``"uniform"`` law's train-only arm sees its inputs
            moved (docs/results/fig6.md). 0 (the default) for replica noise itself.

    Raises:
        TypeError: non-Box observation space, or a ``sigma`` that is not a real number
            (a string such as ``"0.1"``, a bool, None).
        ValueError: negative or non-finite ``sigma``; a ``scale`` of the wrong shape or
            with negative or non-finite entries; an unknown ``noise_law``.

    Example:
        >>> import gymnasium as gym
        >>> import numpy as np
        >>> import hint_envs
        >>> from hint_envs.wrappers import PrimitiveControllerWrapper, ReplicaNoiseWrapper
        >>> base = gym.make("hint_envs/PlanarQuadrotor-v0")
        >>> scale = np.array([3.0, 3.25, 1.6, 20.0, 20.0, 20.0])  # normaliser half-ranges
        >>> env = ReplicaNoiseWrapper(
        ...     PrimitiveControllerWrapper(base, chunk_length=8, obs_horizon=2),
        ...     sigma=0.1, scale=scale,
        ... )
        >>> obs, info = env.reset(seed=0)
        >>> obs.shape, info["clean_obs"].shape
        ((2, 6), (2, 6))
        >>> bool(np.all(obs != info["clean_obs"]))
        True
    """

    def __init__(
        self,
        env: gym.Env,
        sigma: float,
        scale: float | np.ndarray = 1.0,
        noise_law: str = "gaussian",
        shift: float = 0.0,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, sigma=sigma, scale=scale, noise_law=noise_law, shift=shift
        )
        gym.ObservationWrapper.__init__(self, env)
        if not isinstance(env.observation_space, spaces.Box):
            raise TypeError(
                f"ReplicaNoiseWrapper needs a Box observation space, got "
                f"{env.observation_space!r}; flatten dict observations first"
            )
        self.sigma = _check_sigma(sigma)
        self.scale = _check_scale(scale, env.observation_space.shape)
        self.noise_law = check_noise_law(noise_law)
        self.shift = _check_shift(shift)
        self._rng: np.random.Generator | None = None
        self.observation_space = _noised_space(env.observation_space, self.sigma, self.shift)

    @property
    def noise_rng(self) -> np.random.Generator:
        """The generator the noise is drawn from (created from OS entropy if never seeded)."""
        if self._rng is None:
            self._rng = np.random.default_rng()
        return self._rng

    def set_sigma(self, sigma: float) -> None:
        """Change the noise level (e.g. in a sweep); updates the observation space."""
        self.sigma = _check_sigma(sigma)
        self.observation_space = _noised_space(self.env.observation_space, self.sigma, self.shift)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset the inner env (re-seeding the noise when ``seed`` is given).

        Returns:
            the noised observation (inner shape) and the inner info plus ``"clean_obs"``.
        """
        if seed is not None:
            self._rng = _noise_generator(seed)
        obs, info = self.env.reset(seed=seed, options=options)
        info = dict(info)
        info["clean_obs"] = obs
        return self.observation(obs), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        """Step the inner env; returns its 5-tuple with the observation noised and the
        clean one in ``info["clean_obs"]``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info["clean_obs"] = obs
        return self.observation(obs), reward, terminated, truncated, info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """Return ``observation + scale * (shift + sigma * eps)`` (a new array, same shape)."""
        noised = add_replica_noise(
            observation, self.sigma, self.scale, self.noise_rng, self.noise_law
        )
        if self.shift:
            noised += self.shift * self.scale
        return noised


def _per_env_seeds(seed: int | list[int | None] | None, num_envs: int) -> list[int | None]:
    """Sub-env seeds as ``SyncVectorEnv.reset`` derives them."""
    if seed is None:
        return [None] * num_envs
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + i for i in range(num_envs)]
    seeds = list(seed)
    if len(seeds) != num_envs:
        raise ValueError(
            f"a list of seeds must have one entry per sub-env ({num_envs}), got {len(seeds)}"
        )
    return seeds


class ReplicaNoiseVectorWrapper(
    gym.vector.VectorObservationWrapper, gym.utils.RecordConstructorArgs
):
    """:class:`ReplicaNoiseWrapper` for a vector env, one noise generator per sub-env.

    Sub-env ``i``'s generator is seeded exactly as a single :class:`ReplicaNoiseWrapper`
    around sub-env ``i`` of a ``SyncVectorEnv`` would be (``reset(seed=s)`` gives it
    ``s + i``, a list gives each its own, ``None`` continues), and each sub-env's
    observation is noised with its own generator, so this reproduces ``SyncVectorEnv`` of
    single-wrapped envs bit for bit. A reset with ``options["reset_mask"]`` re-seeds and
    noises only the masked sub-envs; the others keep their current noised observation.
    ``infos["clean_obs"]`` holds the clean observations (``infos["_clean_obs"]`` marks the
    sub-envs they belong to).

    Args:
        env: a vector env with a Box single observation space (e.g. a
            :class:`~hint_envs.wrappers.PrimitiveControllerVectorWrapper`).
        sigma, scale, noise_law: as in :class:`ReplicaNoiseWrapper`.

    Example:
        >>> import gymnasium as gym
        >>> import hint_envs
        >>> from hint_envs.wrappers import ReplicaNoiseVectorWrapper
        >>> envs = ReplicaNoiseVectorWrapper(
        ...     gym.make_vec("hint_envs/PlanarQuadrotor-v0", num_envs=3, vectorization_mode="sync"),
        ...     sigma=0.05,
        ... )
        >>> obs, infos = envs.reset(seed=0)
        >>> obs.shape, infos["clean_obs"].shape
        ((3, 6), (3, 6))
    """

    def __init__(
        self,
        env: gym.vector.VectorEnv,
        sigma: float,
        scale: float | np.ndarray = 1.0,
        noise_law: str = "gaussian",
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, sigma=sigma, scale=scale, noise_law=noise_law
        )
        gym.vector.VectorObservationWrapper.__init__(self, env)
        single = env.single_observation_space
        if not isinstance(single, spaces.Box):
            raise TypeError(
                f"ReplicaNoiseVectorWrapper needs a Box single observation space, got {single!r}"
            )
        self.sigma = _check_sigma(sigma)
        self.scale = _check_scale(scale, single.shape)
        self.noise_law = check_noise_law(noise_law)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._noised: np.ndarray | None = None
        self._set_spaces()

    def _set_spaces(self) -> None:
        self.single_observation_space = _noised_space(self.env.single_observation_space, self.sigma)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def set_sigma(self, sigma: float) -> None:
        """Change the noise level of every sub-env; updates the observation spaces."""
        self.sigma = _check_sigma(sigma)
        self._set_spaces()

    def _rng(self, i: int) -> np.random.Generator:
        rng = self._rngs[i]
        if rng is None:
            rng = self._rngs[i] = np.random.default_rng()
        return rng

    def _noise_rows(self, observations: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self._noised is None:  # first reset: rows not reset keep what the inner returned
            float_dtype = np.issubdtype(observations.dtype, np.floating)
            out = observations.astype(observations.dtype if float_dtype else np.float64)
        else:
            out = self._noised.copy()
        for i in np.flatnonzero(rows):
            out[i] = add_replica_noise(
                observations[i], self.sigma, self.scale, self._rng(i), self.noise_law
            )
        self._noised = out
        return out.copy()

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset (all, or the ``reset_mask`` sub-envs), re-seeding their noise for a seed.

        Returns:
            noised observations ``(N, ...)`` and the infos plus ``"clean_obs"``.
        """
        n = self.num_envs
        seeds = _per_env_seeds(seed, n)
        rows = np.ones(n, dtype=bool)
        if options is not None and "reset_mask" in options:
            rows = np.asarray(options["reset_mask"], dtype=bool)
            options = dict(options)  # SyncVectorEnv pops reset_mask from the dict it gets
        for i in np.flatnonzero(rows):
            if seeds[i] is not None:
                self._rngs[i] = _noise_generator(seeds[i])
        obs, infos = self.env.reset(seed=seed, options=options)
        infos = dict(infos)
        infos["clean_obs"] = obs
        infos["_clean_obs"] = rows.copy()
        return self._noise_rows(np.asarray(obs), rows), infos

    def step(self, actions: Any) -> tuple[np.ndarray, Any, Any, Any, dict[str, Any]]:
        """Step the inner vector env; noised observations ``(N, ...)``, clean ones in infos."""
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        infos = dict(infos)
        infos["clean_obs"] = obs
        infos["_clean_obs"] = np.ones(self.num_envs, dtype=bool)
        return (
            self._noise_rows(np.asarray(obs), np.ones(self.num_envs, dtype=bool)),
            rewards,
            terminations,
            truncations,
            infos,
        )

    def observations(self, observations: np.ndarray) -> np.ndarray:
        """Noise every sub-env's observation with its own generator: ``(N, ...)``."""
        return self._noise_rows(np.asarray(observations), np.ones(self.num_envs, dtype=bool))
