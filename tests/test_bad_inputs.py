"""Bad-input sweep: property-based tests (hypothesis) over every registered env id and
both wrappers.

Random, extreme and non-finite actions, wrong shapes and dtypes, bad reset options and bad
wrapper arguments either raise a clear ``ValueError``/``TypeError`` or give a valid step:
an observation inside the observation space and never NaN. Each environment is built once
(module-scoped fixtures); the Robomimic ones, slow to build and to step, get few examples.
The number of cases tried is printed at the end of the module (``hypothesis cases tried``).
"""

from __future__ import annotations

import gc
from collections import Counter
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import hint_envs  # noqa: F401  (registers the env ids)
from hint_envs.wrappers import (
    PrimitiveControllerVectorWrapper,
    PrimitiveControllerWrapper,
    ReplicaNoiseVectorWrapper,
    ReplicaNoiseWrapper,
)

ENV_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("hint_envs/"))
#: optional simulator of an env id (by prefix of its name) -> module to import
SIMULATORS = {"hint_envs/PushT": "gym_pusht", "hint_envs/Robomimic": "robosuite"}
QUAD = "hint_envs/PlanarQuadrotor-v0"
#: examples per property: Robomimic environments take ~ms per step and seconds to build
FAST_EXAMPLES, SLOW_EXAMPLES = 25, 4
#: hypothesis examples run, per test (printed at the end of the module)
CASES: Counter[str] = Counter()

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
non_finite = st.sampled_from([np.nan, np.inf, -np.inf])


class Stack:
    """One environment of an id and the wrapper stack over it, built once per module."""

    def __init__(self, env_id: str):
        self.env_id = env_id
        self.slow = env_id.startswith("hint_envs/Robomimic")
        self.env = gym.make(env_id, disable_env_checker=True)
        self.base = self.env.unwrapped
        self.chunk = PrimitiveControllerWrapper(self.env, chunk_length=2, obs_horizon=2)
        self.noisy = ReplicaNoiseWrapper(self.chunk, sigma=0.1, scale=1.0)
        self.env.reset(seed=0)
        self.state0 = self.base.get_state()

    def run(self, name: str, strategy: st.SearchStrategy, check) -> None:
        """Run ``check(value)`` on ``strategy``'s examples, counting them."""

        def body(value: Any) -> None:
            CASES[name] += 1
            check(value)

        examples = SLOW_EXAMPLES if self.slow else FAST_EXAMPLES
        settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )(given(strategy)(body))()


@pytest.fixture(scope="module", params=ENV_IDS)
def stack(request) -> Stack:
    for prefix, module in SIMULATORS.items():
        if request.param.startswith(prefix):
            pytest.importorskip(module)
    built = Stack(request.param)
    yield built
    built.env.close()  # PushT releases its pymunk space (else it can crash the exit)
    gc.collect()


@pytest.fixture(scope="module", autouse=True)
def report_cases(request):
    yield
    total = sum(CASES.values())
    per_test = ", ".join(f"{name} {n}" for name, n in sorted(CASES.items()))
    line = f"hypothesis cases tried: {total} ({per_test})"
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line)
        return
    with capture.global_and_fixture_disabled():  # shown without -s too
        print(f"\n{line}")


def assert_valid_obs(obs: Any, space: gym.spaces.Box, what: str) -> None:
    obs = np.asarray(obs)
    assert np.all(np.isfinite(obs)), f"{what}: non-finite observation {obs}"
    assert space.contains(obs.astype(space.dtype)), (
        f"{what}: observation outside the observation space: "
        f"{obs[(obs < space.low) | (obs > space.high)]}"
    )


def clear_error_or_valid_step(env: gym.Env, action: Any, space: gym.spaces.Box) -> bool:
    """Step ``env``; True if it raised ValueError/TypeError, else the step must be valid."""
    try:
        obs, reward, terminated, truncated, info = env.step(action)
    except (ValueError, TypeError) as error:
        assert str(error), "an error without a message"
        return True
    assert_valid_obs(obs, space, f"step({action!r})")
    assert np.isfinite(reward) and isinstance(terminated, bool) and isinstance(truncated, bool)
    return False


def box_arrays(space: gym.spaces.Box, elements: st.SearchStrategy) -> st.SearchStrategy:
    return hnp.arrays(np.float64, space.shape, elements=elements)


def in_box(space: gym.spaces.Box) -> st.SearchStrategy:
    """Points of a bounded Box, as fractions of its ranges."""
    fractions = hnp.arrays(np.float64, space.shape, elements=st.floats(0.0, 1.0))
    return fractions.map(lambda f: space.low + f * (space.high - space.low))


def with_non_finite(array_strategy: st.SearchStrategy) -> st.SearchStrategy:
    """Arrays with at least one NaN or inf entry."""

    def poison(draw_args):
        array, index, bad = draw_args
        array = array.copy()
        array.flat[index % array.size] = bad
        return array

    return st.tuples(array_strategy, st.integers(0, 10**6), non_finite).map(poison)


def wrong_shapes(shape: tuple[int, ...]) -> st.SearchStrategy:
    return hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=12).filter(
        lambda s: s != shape
    )


#: things that are not numeric arrays at all
junk = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.one_of(st.text(min_size=1, max_size=3), st.none()), min_size=1, max_size=3),
)


# -- base environments -----------------------------------------------------------------


def test_random_and_extreme_finite_actions_step_validly(stack):
    """Any finite action (up to +-1.8e308) is clipped to the action space: a valid step."""
    env, space = stack.env, stack.env.observation_space

    def check(args):
        seed, action = args
        env.reset(seed=seed)
        assert not clear_error_or_valid_step(env, action, space)

    strategy = st.tuples(st.integers(0, 2**16), box_arrays(env.action_space, finite))
    stack.run("finite actions", strategy, check)


def test_non_finite_actions_raise_value_error(stack):
    env = stack.env

    def check(action):
        env.reset(seed=0)
        with pytest.raises(ValueError, match="NaN or inf"):
            env.step(action)

    stack.run("NaN/inf actions", with_non_finite(box_arrays(env.action_space, finite)), check)


def test_text_is_never_read_as_numbers(stack):
    """numpy reads ``["0", "0"]`` as ``[0.0, 0.0]`` when asked for floats; an env, a
    wrapper and a reset state must refuse it (the sweep once found the quadrotor taking it)."""
    for env, space in (
        (stack.env, stack.env.action_space),
        (stack.chunk, stack.chunk.action_space),
    ):
        env.reset(seed=0)
        with pytest.raises(TypeError, match="must hold numbers"):
            env.step(np.full(space.shape, "0"))
    with pytest.raises(TypeError, match="must hold numbers"):
        stack.env.reset(options={"state": [str(v) for v in stack.state0]})


def test_wrong_shapes_dtypes_and_junk_actions_raise_or_step_validly(stack):
    env, space = stack.env, stack.env.observation_space
    shape = env.action_space.shape
    dtypes = st.sampled_from([np.float32, np.float16, np.int64, np.int8, np.uint8, np.bool_])
    right_shape_other_dtype = dtypes.flatmap(lambda d: hnp.arrays(d, shape))
    wrong_shape = wrong_shapes(shape).flatmap(lambda s: hnp.arrays(np.float64, s))

    def check(args):
        kind, action = args
        env.reset(seed=0)
        raised = clear_error_or_valid_step(env, action, space)
        if kind != "dtype":  # a wrong shape or junk is never taken for an action
            assert raised, f"step accepted {action!r}"

    strategy = st.one_of(
        st.tuples(st.just("dtype"), right_shape_other_dtype),
        st.tuples(st.just("shape"), wrong_shape),
        st.tuples(st.just("junk"), junk),
    )
    stack.run("action shapes/dtypes/junk", strategy, check)


def _near_state_offsets(stack: Stack) -> st.SearchStrategy:
    """Small offsets from a reset state that keep it a plausible (mostly valid) state."""
    n = stack.state0.size
    if stack.env_id == QUAD:  # positions and angle +-0.5, velocities +-5
        scale = np.array([0.5, 0.5, 0.5, 5.0, 5.0, 5.0])
    elif stack.env_id.startswith("hint_envs/PushT"):  # px, px/s, rad, rad/s
        scale = np.array([50, 50, 300, 300, 50, 50, 1.0, 300, 300, 5.0])
    else:  # MuJoCo [time, qpos, qvel]
        scale = np.full(n, 0.01)
    unit = hnp.arrays(np.float64, (n,), elements=st.floats(-1.0, 1.0))
    return unit.map(lambda u: stack.state0 + u * scale)


def _far_states(stack: Stack) -> st.SearchStrategy:
    """A reset state with one entry moved far out (1e3 .. 1e300 in either direction)."""
    n = stack.state0.size

    def move(args):
        index, magnitude, sign = args
        state = stack.state0.copy()
        state[index % n] = sign * magnitude
        return state

    return st.tuples(
        st.integers(0, n - 1), st.floats(1e3, 1e300), st.sampled_from([-1.0, 1.0])
    ).map(move)


def test_bad_reset_options_raise_or_reset_into_a_valid_state(stack):
    """Wrong shapes, NaN/inf, far-out values, junk and unknown keys raise ValueError or
    TypeError; a state that is accepted gives observations inside the observation space,
    at reset and after a step."""
    env, space = stack.env, stack.env.observation_space
    n = stack.state0.size
    state = hnp.arrays(np.float64, (n,), elements=finite)
    options = st.one_of(
        st.tuples(st.just("near"), _near_state_offsets(stack)),
        st.tuples(st.just("far"), _far_states(stack)),
        st.tuples(
            st.just("shape"), wrong_shapes((n,)).flatmap(lambda s: hnp.arrays(np.float64, s))
        ),
        st.tuples(st.just("nan"), with_non_finite(state)),
        st.tuples(st.just("junk"), junk.filter(lambda v: v is not None)),
        st.tuples(st.just("key"), st.text(min_size=1, max_size=8)),
    )

    def check(args):
        kind, value = args
        opts = {value: 1} if kind == "key" else {"state": value}
        if kind == "key" and value in ("state", "gripper_action"):
            return
        try:
            obs, _ = env.reset(seed=0, options=opts)
        except (ValueError, TypeError) as error:
            assert str(error)
            assert_valid_obs(env.reset(seed=0)[0], space, "a reset after a refused one")
            return
        assert kind in ("near", "far"), f"reset accepted {kind} option {value!r}"
        assert_valid_obs(obs, space, f"reset to {value!r}")
        action = (env.action_space.low + env.action_space.high) / 2
        clear_error_or_valid_step(env, action, space)

    stack.run("reset options", options, check)


# -- wrappers over every environment ---------------------------------------------------


def test_composite_actions_to_both_wrappers(stack):
    """Random and extreme composite actions step validly (clipped); NaN/inf, wrong shapes
    and junk raise. Through ReplicaNoiseWrapper the clean chunk is inside the chunk space
    and the noised one finite."""
    chunk, noisy = stack.chunk, stack.noisy
    space = chunk.action_space
    actions = st.one_of(
        st.tuples(st.just("finite"), box_arrays(space, finite)),
        st.tuples(st.just("in box"), in_box(space)),
        st.tuples(st.just("nan"), with_non_finite(box_arrays(space, finite))),
        st.tuples(
            st.just("shape"), wrong_shapes(space.shape).flatmap(lambda s: hnp.arrays(np.float64, s))
        ),
        st.tuples(st.just("junk"), junk),
    )

    def check(args):
        (kind, action), through_noise = args
        env = noisy if through_noise else chunk
        env.reset(seed=0)
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except (ValueError, TypeError) as error:
            assert kind in ("nan", "shape", "junk"), f"{kind} action refused: {error}"
            return
        assert kind in ("finite", "in box"), f"{kind} action accepted: {action!r}"
        clean = info["clean_obs"] if through_noise else obs
        assert_valid_obs(clean, chunk.observation_space, "chunk observation")
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)

    stack.run("composite actions", st.tuples(actions, st.booleans()), check)


# -- wrapper arguments (on the quadrotor: they do not depend on the env) ---------------

gains_values = st.one_of(
    st.booleans(),
    st.sampled_from([np.True_, np.False_, "False", "True", "", 0, 1, 0.0, None, [True]]),
    st.text(max_size=5),
    st.integers(),
)
sigma_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**6), 10**6),
    st.sampled_from([np.float32(0.1), np.float64(-1.0), np.int64(2), np.nan, np.bool_(True)]),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
    st.just(np.array([0.1])),
)


@pytest.fixture(scope="module")
def quad_envs():
    from gymnasium.vector import AutoresetMode

    single = gym.make(QUAD)
    vector = gym.make_vec(QUAD, num_envs=2, autoreset_mode=AutoresetMode.DISABLED)
    return single, vector


@settings(max_examples=60, deadline=None)
@given(gains=gains_values)
def test_gains_must_be_a_bool(quad_envs, gains):
    CASES["gains"] += 1
    single, vector = quad_envs
    for build in (PrimitiveControllerWrapper, PrimitiveControllerVectorWrapper):
        inner = single if build is PrimitiveControllerWrapper else vector
        if isinstance(gains, (bool, np.bool_)):
            env = build(inner, chunk_length=2, obs_horizon=1, gains=gains)
            assert env.gains is bool(gains)
            assert env.layout.gains is bool(gains)
        else:
            with pytest.raises(TypeError, match="gains must be True or False, got"):
                build(inner, chunk_length=2, obs_horizon=1, gains=gains)


@settings(max_examples=80, deadline=None)
@given(sigma=sigma_values)
def test_sigma_must_be_a_finite_real_number(quad_envs, sigma):
    CASES["sigma"] += 1
    single, vector = quad_envs
    is_number = not isinstance(sigma, (bool, np.bool_, str, np.ndarray)) and sigma is not None
    for build, inner in ((ReplicaNoiseWrapper, single), (ReplicaNoiseVectorWrapper, vector)):
        if not is_number:
            with pytest.raises(TypeError, match="sigma must be a real number >= 0"):
                build(inner, sigma=sigma)
        elif not np.isfinite(sigma) or sigma < 0:
            with pytest.raises(ValueError, match="sigma must be a finite number >= 0"):
                build(inner, sigma=sigma)
        else:
            env = build(inner, sigma=sigma)
            assert type(env.sigma) is float and env.sigma == float(sigma)


def test_far_out_states_are_refused_naming_the_entries(stack):
    """A state whose observation would leave the observation space is refused with the
    offending values, and the environment stays usable (deterministic companion of the
    property above, whose few Robomimic examples may miss such a state)."""
    env, space = stack.env, stack.env.observation_space
    refused = []
    first = 1 if stack.slow else 0  # entry 0 of a MuJoCo (Robomimic) state is the time
    far = 1e12  # beyond every observation space (ScalarLinear-v0's bound is ~2e6)
    for index in range(first, stack.state0.size):
        state = stack.state0.copy()
        state[index] = far
        try:
            obs, _ = env.reset(seed=0, options={"state": state})
        except ValueError as error:
            assert f"={far:.6g} not in [" in str(error) or "speeds a reset accepts" in str(error)
            refused.append(index)
            continue
        assert_valid_obs(obs, space, f"reset with entry {index} = {far:g}")
    CASES["far-out states"] += stack.state0.size - first
    assert refused, "no far-out state was refused"
    assert_valid_obs(env.reset(seed=0)[0], space, "a reset after refused ones")
