"""Vector wrappers reproduce SyncVectorEnv of single-wrapped envs, episode ends included."""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import hint_envs  # noqa: F401  (registers the env ids)
from hint_envs.wrappers import (
    PrimitiveControllerVectorWrapper,
    PrimitiveControllerWrapper,
    ReplicaNoiseVectorWrapper,
    ReplicaNoiseWrapper,
)

QUAD = "hint_envs/PlanarQuadrotor-v0"
N, T, H = 3, 6, 2  # 100 = 16 * 6 + 4: the time limit truncates in the middle of a chunk
SCALE = np.array([3.0, 3.25, 1.6, 20.0, 20.0, 20.0])


def assert_same(a: Any, b: Any, path: str = "") -> None:
    """Recursive exact equality of (nested dicts of) arrays, dtypes included; NaN == NaN."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{path}: keys {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{path}/{key}")
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype, f"{path}: dtype {a.dtype} != {b.dtype}"
    assert a.shape == b.shape, f"{path}: shape {a.shape} != {b.shape}"
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"{path}: {a} != {b}"


def inner_vector(kind: str, n: int = N) -> gym.vector.VectorEnv:
    """The quadrotor as a vector env with autoreset disabled: gymnasium's or the native one."""
    if kind == "sync":
        return gym.make_vec(
            QUAD,
            num_envs=n,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
        )
    return gym.make_vec(QUAD, num_envs=n, autoreset_mode=AutoresetMode.DISABLED)


# A PD hover controller about the origin as a primitive controller u = u_bar + K (x - 0):
# thrust holds the height, torque holds a pitch that steers x back (gains by hand).
_KP, _KD, _KX, _KXD, _KZ = 0.383, 0.0766, 0.1, 0.2, 1.94
K_HOVER = np.array(
    [[0.0, -_KZ, 0.0, 0.0, -_KZ, 0.0], [_KP * _KX, 0.0, -_KP, _KP * _KXD, 0.0, -_KD]]
)
HOVER = np.array([0.486 * 9.81, 0.0])
#: per-env noise on u_bar: env 0 hovers to the time limit, env 2 crashes early
NOISE_LEVEL = np.array([0.0, 0.5, 10.0])


def chunk_actions(layout, rng: np.random.Generator, n: int = N) -> np.ndarray:
    """Composite actions ``(n, layout.size)``: hover feedback plus per-env input noise, so
    episodes end by crashes and by the time limit, at different inner steps per env."""
    prim = layout.unpack(np.zeros((n, layout.size)))
    noise = rng.normal(size=prim.u_bar.shape) * np.array([1.0, 0.01])
    prim.u_bar[:] = HOVER + noise * NOISE_LEVEL[:n, None, None]
    if layout.gains:
        prim.K[:] = K_HOVER
    return layout.pack(prim)


@pytest.mark.parametrize("gains", [True, False])
@pytest.mark.parametrize("kind", ["sync", "native"])
def test_chunk_vector_wrapper_equals_sync_of_singles(kind, gains):
    singles = SyncVectorEnv(
        [lambda: PrimitiveControllerWrapper(gym.make(QUAD), T, H, gains=gains)] * N
    )
    vector = PrimitiveControllerVectorWrapper(inner_vector(kind), T, H, gains=gains)
    assert vector.single_action_space == singles.single_action_space
    assert vector.single_observation_space == singles.single_observation_space
    assert vector.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP

    obs_s, info_s = singles.reset(seed=7)
    obs_v, info_v = vector.reset(seed=7)
    assert_same(obs_s, obs_v, "reset obs")
    assert_same(info_s, info_v, "reset info")
    rng = np.random.default_rng(0)
    n_term = n_trunc = mixed = 0
    for step in range(60):
        actions = chunk_actions(vector.layout, rng)
        out_s, out_v = singles.step(actions), vector.step(actions)
        for name, a, b in zip(
            ["obs", "reward", "term", "trunc", "info"], out_s, out_v, strict=True
        ):
            assert_same(a, b, f"step {step} {name}")
        obs_s, _, term, trunc, info = out_s
        n_term += int(term.sum())
        n_trunc += int(trunc.sum())
        if "steps_executed" not in info:  # every env was reset at this step
            continue
        executed = info["steps_executed"][info["_steps_executed"]]
        mixed += int(np.any(executed < T) and np.any(executed == T))
    # the run covered crashes, time limits (with feedback), and chunks where some envs
    # ended early while others ran on
    assert n_term > 0 and mixed > 0 and (n_trunc > 0 or not gains)


def test_noise_vector_wrapper_equals_sync_of_single_noise_wrappers():
    def make_single():
        return ReplicaNoiseWrapper(gym.make(QUAD), sigma=0.05, scale=SCALE)

    singles = SyncVectorEnv([make_single] * N)
    vectors = [
        ReplicaNoiseVectorWrapper(
            gym.make_vec(QUAD, num_envs=N, vectorization_mode="sync"), sigma=0.05, scale=SCALE
        ),
        ReplicaNoiseVectorWrapper(gym.make_vec(QUAD, num_envs=N), sigma=0.05, scale=SCALE),
    ]
    rng = np.random.default_rng(1)
    resets = [
        {"seed": 3},
        {"seed": [10, None, 12]},
        {"options": {"reset_mask": np.array([True, False, True])}},
        {"seed": 5, "options": {"reset_mask": np.array([False, True, False])}},
        {},
    ]
    for reset_kwargs in resets:
        # deep copies: SyncVectorEnv pops "reset_mask" from the options it is given
        obs_s, info_s = singles.reset(**copy.deepcopy(reset_kwargs))
        for vec in vectors:
            obs_v, info_v = vec.reset(**copy.deepcopy(reset_kwargs))
            assert_same(obs_s, obs_v, f"reset {reset_kwargs} obs")
            mask = info_v["_clean_obs"]
            assert_same(info_s["clean_obs"][mask], info_v["clean_obs"][mask])
        for step in range(40):
            actions = rng.uniform(singles.action_space.low, singles.action_space.high)
            out_s = singles.step(actions)
            for vec in vectors:
                out_v = vec.step(actions)
                for name, a, b in zip(
                    ["obs", "reward", "term", "trunc"], out_s[:4], out_v[:4], strict=True
                ):
                    assert_same(a, b, f"{reset_kwargs} step {step} {name}")
                assert_same(out_s[4]["clean_obs"], out_v[4]["clean_obs"])


def test_composition_make_vec_equals_native_stack_and_manual_singles():
    sigma = 0.05
    wrappers = [
        partial(PrimitiveControllerWrapper, chunk_length=T, obs_horizon=H),
        partial(ReplicaNoiseWrapper, sigma=sigma, scale=SCALE),
    ]
    made = gym.make_vec(QUAD, num_envs=N, vectorization_mode="sync", wrappers=wrappers)
    native = ReplicaNoiseVectorWrapper(
        PrimitiveControllerVectorWrapper(inner_vector("native"), T, H), sigma=sigma, scale=SCALE
    )
    manual = [ReplicaNoiseWrapper(PrimitiveControllerWrapper(gym.make(QUAD), T, H), sigma, SCALE)]
    manual += [
        ReplicaNoiseWrapper(PrimitiveControllerWrapper(gym.make(QUAD), T, H), sigma, SCALE)
        for _ in range(N - 1)
    ]
    assert made.single_observation_space == native.single_observation_space
    obs_m = made.reset(seed=20)[0]
    assert_same(obs_m, native.reset(seed=20)[0])
    assert_same(obs_m, np.array([env.reset(seed=20 + i)[0] for i, env in enumerate(manual)]))
    layout = native.env.layout
    ended = np.zeros(N, dtype=bool)
    native.reset(seed=20)
    made.reset(seed=20)
    for env_i, env in enumerate(manual):
        env.reset(seed=20 + env_i)
    rng = np.random.default_rng(2)
    n_ends = 0
    for step in range(40):
        actions = chunk_actions(layout, rng)
        out_m = made.step(actions)
        out_n = native.step(actions)
        for name, a, b in zip(
            ["obs", "reward", "term", "trunc"], out_m[:4], out_n[:4], strict=True
        ):
            assert_same(a, b, f"step {step} {name}")
        # the manual singles, with next-step autoreset by hand
        for i, env in enumerate(manual):
            if ended[i]:
                obs_i, _ = env.reset()
                reward_i, term_i, trunc_i = 0.0, False, False
            else:
                obs_i, reward_i, term_i, trunc_i, _ = env.step(actions[i])
            assert_same(obs_i, out_m[0][i], f"step {step} env {i} obs")
            assert (reward_i, term_i, trunc_i) == (out_m[1][i], out_m[2][i], out_m[3][i])
            ended[i] = term_i or trunc_i
        n_ends += int(ended.sum())
    assert n_ends > 0


def test_chunk_vector_partial_reset_keeps_the_other_histories():
    vector = PrimitiveControllerVectorWrapper(inner_vector("native"), T, H)
    obs0, _ = vector.reset(seed=0)
    actions = chunk_actions(vector.layout, np.random.default_rng(3))
    obs1 = vector.step(actions)[0]
    state = np.array([0.1, 0.2, 0.0, 0.0, 0.0, 0.0])
    mask = np.array([False, True, False])
    obs2, infos = vector.reset(options={"reset_mask": mask, "state": np.tile(state, (N, 1))})
    np.testing.assert_array_equal(obs2[mask], np.tile(state, (1, H, 1)))
    np.testing.assert_array_equal(obs2[~mask], obs1[~mask])
    assert infos["_is_success"].tolist() == mask.tolist()


# -- errors ----------------------------------------------------------------------------------


def test_chunk_vector_wrapper_requires_disabled_autoreset():
    with pytest.raises(ValueError, match="autoreset disabled.*AutoresetMode.DISABLED"):
        PrimitiveControllerVectorWrapper(gym.make_vec(QUAD, num_envs=2), T, H)


def test_chunk_vector_wrapper_rejects_single_and_non_control_envs():
    with pytest.raises(
        TypeError, match="wraps a gymnasium.vector.VectorEnv.*PrimitiveControllerWrapper"
    ):
        PrimitiveControllerVectorWrapper(gym.make(QUAD), T, H)
    pendulums = gym.make_vec(
        "Pendulum-v1",
        num_envs=2,
        vectorization_mode="sync",
        vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED},
    )
    with pytest.raises(TypeError, match="not a vector of control environments"):
        PrimitiveControllerVectorWrapper(pendulums, T, H)


def test_chunk_vector_wrapper_rejects_bad_actions_and_masks():
    vector = PrimitiveControllerVectorWrapper(inner_vector("native"), T, H)
    with pytest.raises(gym.error.ResetNeeded, match="reset"):
        vector.step(np.zeros((N, vector.layout.size)))
    vector.reset(seed=0)
    with pytest.raises(ValueError, match=r"composite actions must have shape \(3, 120\)"):
        vector.step(np.zeros((N, vector.layout.size - 1)))
    bad = np.zeros((N, vector.layout.size))
    bad[1, 4] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        vector.step(bad)
    with pytest.raises(ValueError, match="reset_mask.*boolean numpy array of shape"):
        vector.reset(options={"reset_mask": [True, False, True]})


def test_noise_vector_wrapper_rejects_bad_inputs():
    with pytest.raises(TypeError, match="Box single observation space"):
        ReplicaNoiseVectorWrapper(
            gym.make_vec("FrozenLake-v1", num_envs=2, vectorization_mode="sync"), sigma=0.1
        )
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got -1"):
        ReplicaNoiseVectorWrapper(gym.make_vec(QUAD, num_envs=2), sigma=-1)
    envs = ReplicaNoiseVectorWrapper(gym.make_vec(QUAD, num_envs=2), sigma=0.0)
    assert envs.single_observation_space == envs.env.single_observation_space
    envs.set_sigma(0.2)
    assert np.all(np.isinf(envs.observation_space.high))
    assert envs.observation_space.shape == (2, 6)


@pytest.mark.parametrize("gains", ["False", "True", 0, 1, None])
def test_wrappers_reject_gains_that_are_not_bools(gains):
    """``bool("False")`` is True: a string must not silently mean the opposite."""
    match = rf"gains must be True or False, got {gains!r}"
    with pytest.raises(TypeError, match=match):
        PrimitiveControllerWrapper(gym.make(QUAD), T, H, gains=gains)
    with pytest.raises(TypeError, match=match):
        PrimitiveControllerVectorWrapper(inner_vector("native"), T, H, gains=gains)


def test_wrappers_accept_numpy_bool_gains():
    env = PrimitiveControllerWrapper(gym.make(QUAD), T, H, gains=np.bool_(False))
    vector = PrimitiveControllerVectorWrapper(inner_vector("native"), T, H, gains=np.False_)
    assert env.gains is False and vector.gains is False
    assert env.layout.size == vector.layout.size == T * 2


@pytest.mark.parametrize("sigma", ["0.1", True, None, b"0.1", np.array([0.1])])
def test_noise_wrappers_reject_sigma_that_is_not_a_number(sigma):
    match = r"sigma must be a real number >= 0 \(noise level in normalised units\), got"
    with pytest.raises(TypeError, match=match):
        ReplicaNoiseWrapper(gym.make(QUAD), sigma=sigma)
    with pytest.raises(TypeError, match=match):
        ReplicaNoiseVectorWrapper(gym.make_vec(QUAD, num_envs=2), sigma=sigma)
    env = ReplicaNoiseWrapper(gym.make(QUAD), sigma=0.1)
    with pytest.raises(TypeError, match=match):
        env.set_sigma(sigma)
    assert env.sigma == 0.1


def test_noise_wrappers_accept_numpy_scalars():
    env = ReplicaNoiseWrapper(gym.make(QUAD), sigma=np.float32(0.5))
    assert type(env.sigma) is float and env.sigma == 0.5
