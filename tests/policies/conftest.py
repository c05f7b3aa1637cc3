"""Shared fixtures of the policy tests: one torch thread, real expert demonstrations."""

from __future__ import annotations

import pytest
import torch
from policy_testing import ENV_ID

from hint_envs.experts.collect import collect_one


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One torch thread: fast and reproducible even when the machine is shared."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def demos():
    """Three real quadrotor expert demonstrations with synthesised TVLQR primitives."""
    return [collect_one(ENV_ID, seed) for seed in range(3)]
