"""Metrics on hand-computable cases: the imitation loss is an exact optimal coupling."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

import numpy as np
import pytest

from hint_envs.evaluation import metrics
from hint_envs.evaluation.metrics import (
    imitation_loss,
    mean_max_reward,
    mean_return,
    min_mismatch_fraction,
    stack_trajectories,
    success_rate,
    summarize_imitation_loss,
    trajectory_error,
)


def points(*values: float) -> np.ndarray:
    """1-D points as a ``(n, 1)`` state array."""
    return np.asarray(values, dtype=np.float64)[:, None]


def one_step(expert: np.ndarray, imitator: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One group, one time step: ``(1, n, 1, d)`` arrays."""
    return expert[None, :, None, :], imitator[None, :, None, :]


def brute_force(expert: np.ndarray, imitator: np.ndarray, eps: float) -> float:
    """Minimum over all permutations (n == n' only), for cross-checking."""
    n = len(expert)
    far = np.linalg.norm(expert[:, None] - imitator[None], axis=-1) > eps
    return min(far[np.arange(n), list(p)].sum() for p in itertools.permutations(range(n))) / n


def test_hand_case_one_of_two_pairs_far():
    # expert {0, 1}, imitator {0.05, 5}: 0 <-> 0.05 is within eps, 5 is far from both.
    expert, imitator = one_step(points(0.0, 1.0), points(0.05, 5.0))
    loss = imitation_loss(expert, imitator, eps=0.1)
    assert loss.shape == (1,)
    assert loss[0] == pytest.approx(0.5)


def test_optimal_coupling_beats_greedy_pairing():
    # distances: |0-0.9|=0.9, |0-2|=2, |1-0.9|=0.1, |1-2|=1.0, eps=1.05.
    # Greedy (closest pair first: 1<->0.9, then 0<->2 far) gives 1/2;
    # the optimal coupling 0<->0.9, 1<->2 has both within eps: 0.
    expert, imitator = points(0.0, 1.0), points(0.9, 2.0)
    greedy_first = np.unravel_index(
        np.argmin(np.abs(expert - imitator.T)), (2, 2)
    )  # the pair a greedy matcher takes first
    assert tuple(int(i) for i in greedy_first) == (1, 0)
    assert imitation_loss(*one_step(expert, imitator), eps=1.05)[0] == 0.0
    # and with an eps that rules out 1<->2, the loss is exactly one pair out of two
    assert imitation_loss(*one_step(expert, imitator), eps=0.95)[0] == pytest.approx(0.5)


def test_identical_sets_zero_and_far_sets_one():
    rng = np.random.default_rng(0)
    expert = rng.normal(size=(3, 5, 7, 2))
    imitator = expert[:, ::-1]  # same sets, other order
    np.testing.assert_array_equal(imitation_loss(expert, imitator, eps=1e-9), np.zeros(7))
    np.testing.assert_array_equal(imitation_loss(expert, imitator + 100.0, eps=1.0), np.ones(7))


def test_matches_brute_force_on_random_sets():
    rng = np.random.default_rng(1)
    for _ in range(20):
        n = int(rng.integers(2, 6))
        expert, imitator = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
        eps = float(rng.uniform(0.3, 1.5))
        assert min_mismatch_fraction(expert, imitator, eps) == pytest.approx(
            brute_force(expert, imitator, eps)
        )


def test_unequal_sizes_replication_and_lp_agree(monkeypatch):
    # expert {0, 0, 10} vs imitator {0, 10}: the coupling puts 1/3 of the mass of
    # one expert 0 on imitator 10, so the minimum is 1/6.
    expert, imitator = points(0.0, 0.0, 10.0), points(0.0, 10.0)
    assert min_mismatch_fraction(expert, imitator, 0.5) == pytest.approx(1 / 6)
    rng = np.random.default_rng(2)
    cases = [(rng.normal(size=(n, 2)), rng.normal(size=(m, 2))) for n, m in [(3, 4), (5, 2)]]
    replicated = [min_mismatch_fraction(a, b, 0.8) for a, b in cases]
    monkeypatch.setattr(metrics, "MAX_REPLICATED_SIZE", 1)  # force the transport LP
    assert min_mismatch_fraction(expert, imitator, 0.5) == pytest.approx(1 / 6)
    linear_program = [min_mismatch_fraction(a, b, 0.8) for a, b in cases]
    np.testing.assert_allclose(linear_program, replicated, atol=1e-9)


def test_time_resolved_and_averaged_over_groups():
    # two groups, two rollouts, three steps; group 0 diverges at t=1, group 1 at t=2
    expert = np.zeros((2, 2, 3, 1))
    imitator = np.zeros((2, 2, 3, 1))
    imitator[0, 0, 1:] = 5.0
    imitator[1, :, 2] = 5.0
    loss = imitation_loss(expert, imitator, eps=0.1)
    np.testing.assert_allclose(loss, [0.0, 0.25, 0.75])
    assert summarize_imitation_loss(loss) == {"mean": pytest.approx(1 / 3), "max": 0.75}


def test_groups_are_not_pooled():
    # pooled over groups the sets are identical, but within each group they are apart
    expert = np.array([[[[0.0]]], [[[1.0]]]])  # (G=2, n=1, T=1, d=1)
    imitator = expert[::-1]
    assert imitation_loss(expert, imitator, eps=0.5)[0] == 1.0


def test_ragged_trajectories_stay_at_their_last_state():
    # a terminated imitator episode (2 states) stays at 1.0; the expert moves on to 3.0
    expert = [[np.array([[0.0], [1.0], [2.0], [3.0]])]]
    imitator = [[np.array([[0.0], [1.0]])]]
    np.testing.assert_array_equal(imitation_loss(expert, imitator, eps=0.5), [0, 0, 1, 1])
    stacked = stack_trajectories(imitator, length=4)
    np.testing.assert_array_equal(stacked[0, 0, :, 0], [0.0, 1.0, 1.0, 1.0])


def test_trajectory_error_hand_case():
    imitator = np.array([[0.0, 0.0], [3.0, 4.0]])  # terminated after one step
    expert = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]])
    # distances 0, 5, |(3, 4) - (0, 1)| = sqrt(18), averaged over 3 states
    assert trajectory_error(imitator, expert) == pytest.approx((0 + 5 + np.sqrt(18)) / 3)
    assert trajectory_error(expert, expert) == 0.0


@dataclass
class FakeRecord:
    """The two attributes success_rate and mean_return read."""

    success: bool
    episode_return: float


def test_success_rate_and_return():
    records = [FakeRecord(True, -1.0), FakeRecord(False, -3.0), FakeRecord(True, -2.0)]
    success = success_rate(records)
    assert success.mean == pytest.approx(2 / 3)
    assert success.std == pytest.approx(np.sqrt(2 / 9))
    returns = mean_return(records)
    assert (returns.mean, returns.count) == (pytest.approx(-2.0), 3)
    json.dumps(returns.to_dict())
    with pytest.raises(TypeError, match="success"):
        success_rate([object()])


def test_mean_max_reward_is_the_mean_of_per_episode_maxima():
    @dataclass
    class Rewards:
        rewards: np.ndarray

    records = [Rewards(np.array([0.1, 0.9, 0.4])), Rewards(np.array([0.3])), Rewards(np.zeros(0))]
    summary = mean_max_reward(records)
    assert summary.mean == pytest.approx((0.9 + 0.3 + 0.0) / 3)
    assert summary.count == 3


def test_input_validation():
    good = np.zeros((1, 2, 3, 2))
    with pytest.raises(ValueError, match="eps must be > 0"):
        imitation_loss(good, good, eps=0.0)
    with pytest.raises(ValueError, match="eps must be a finite"):
        imitation_loss(good, good, eps=float("nan"))
    with pytest.raises(ValueError, match="number of groups"):
        imitation_loss(good, np.zeros((2, 2, 3, 2)), eps=0.1)
    with pytest.raises(ValueError, match="differ in dimension"):
        imitation_loss(good, np.zeros((1, 2, 3, 3)), eps=0.1)
    with pytest.raises(ValueError, match=r"\(G, n, T, d\)"):
        imitation_loss(np.zeros((2, 3, 2)), good, eps=0.1)
    with pytest.raises(ValueError, match="same number of rollouts"):
        imitation_loss([[np.zeros((2, 1))], [np.zeros((2, 1))] * 2], good[..., :1], eps=0.1)
    with pytest.raises(ValueError, match="differ in dimension"):
        trajectory_error(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(T \+ 1, d\)"):
        trajectory_error(np.zeros(3), np.zeros((3, 1)))
