"""Bad-file sweep: property-based tests (hypothesis) over the two files researchers share.

A saved policy's ``config.json`` and a demonstration file's attributes are mutated at
random (any field replaced by any JSON value: huge and negative numbers, strings, lists,
objects, null). Reading them either works or raises the reader's documented error
(``ValueError`` — ``ResourceError`` included — or ``FileNotFoundError`` for a policy,
``DatasetError`` for a demonstration file): never another exception, never a hang (a
deadline per example), and never an allocation beyond the bound below (the process's peak
resident memory is compared before and after the sweep).
"""

from __future__ import annotations

import json
import resource
import shutil
from pathlib import Path

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hint_envs.data import DatasetError, read_demonstrations
from hint_envs.data.hdf5 import write_demonstrations
from hint_envs.experts.collect import collect_one

QUAD = "hint_envs/PlanarQuadrotor-v0"
#: the most the whole sweep may add to the process's peak resident memory
MEMORY_BOUND = 2 * 2**30
SETTINGS = settings(
    max_examples=60,
    deadline=10_000,  # ms: no mutation may make a reader hang
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.sampled_from([0, -1, 10**9, 10**18, 2**31])
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e308, -1e308, 1e-300])
    | st.text(max_size=20)
    | st.sampled_from(["evilmod:PlanarQuadrotor-v0", "/etc/passwd", "../x", "unittest.Foo/1"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture(scope="module")
def demos():
    return [collect_one(QUAD, seed) for seed in range(2)]


@pytest.fixture(scope="module")
def saved_policy(demos, tmp_path_factory):
    import sys

    sys.path.insert(0, str(Path(__file__).parent / "policies"))
    from policy_testing import make_policy, tiny_config

    from policies.serialization import save_policy

    return save_policy(make_policy(demos, tiny_config()), tmp_path_factory.mktemp("p") / "p")


def _paths(data, prefix=()):
    """Every key path of a JSON tree (objects only)."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


def _set(data, path, value):
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def test_mutated_policy_configs_load_or_raise_a_documented_error(saved_policy, tmp_path):
    from policies.serialization import load_policy

    original = json.loads((saved_policy / "config.json").read_text())
    paths = sorted(_paths(original), key=str)
    before = _peak_rss()

    @SETTINGS
    @given(path=st.sampled_from(paths), value=json_values)
    def check(path, value):
        folder = tmp_path / "case"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(saved_policy, folder)
        data = json.loads(json.dumps(original))
        _set(data, path, value)
        (folder / "config.json").write_text(json.dumps(data))
        try:
            load_policy(folder)
        except (ValueError, FileNotFoundError):
            pass

    check()
    assert _peak_rss() - before < MEMORY_BOUND


def test_mutated_demo_file_attributes_read_or_raise_dataset_error(demos, tmp_path):
    reference = write_demonstrations(tmp_path / "ref.hdf5", demos, QUAD)
    with h5py.File(reference) as f:
        file_attrs = sorted(f["data"].attrs.keys())
        env_args = json.loads(f["data"].attrs["env_args"])
    targets = [("attr", name) for name in file_attrs] + [("env_args", k) for k in env_args]
    before = _peak_rss()

    @SETTINGS
    @given(target=st.sampled_from(targets), value=json_values)
    def check(target, value):
        path = tmp_path / "case.hdf5"
        shutil.copyfile(reference, path)
        kind, name = target
        with h5py.File(path, "a") as f:
            attrs = f["data"].attrs
            if kind == "attr":
                attrs[name] = json.dumps(value)
            else:
                mutated = dict(env_args, **{name: value})
                attrs["env_args"] = json.dumps(mutated)
        try:
            read_demonstrations(path)
        except DatasetError:
            pass

    check()
    assert _peak_rss() - before < MEMORY_BOUND
