"""Evaluation metrics: success rate, return, trajectory error and the imitation loss.

All metrics take plain numpy arrays or :class:`~hint_envs.evaluation.rollout.EpisodeRecord`
objects (anything with the attributes they read), so they can be used on data from
anywhere. The metric names used in results are fixed: :data:`METRIC_NAMES`.

Ragged trajectories (episodes that terminate early) are padded with their last state:
an episode that has ended *stays* at its final state. This is the convention of every
function below that compares trajectories of different lengths.

The imitation loss ``L_marg,eps`` is that of the HINT paper (Block et al., 2023,
arXiv 2307.14619): for each time step ``t`` the smallest probability, over couplings of
the expert's and the imitator's distributions that share the initial state, that their
control states at ``t`` are more than ``eps`` apart. On ``n`` expert and ``n'`` imitator
rollouts from one initial state the couplings are those of two uniform empirical
distributions, and the optimum is computed exactly (see :func:`min_mismatch_fraction`).

The same optimal-transport problem gives the theory's distances (Block et al., 2023,
Sec. 3): :func:`tv_eps`, the ``eps``-relaxed total variation ``TV_eps(P, Q)`` between two
empirical distributions; :func:`d_train_eps`, policy vs expert actions on expert states;
and :func:`d_test_eps`, the per-time-step state marginals of imitator vs expert rollouts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment, linprog

__all__ = [
    "METRIC_NAMES",
    "Summary",
    "summarize",
    "success_rate",
    "mean_return",
    "mean_max_reward",
    "pad_trajectory",
    "stack_trajectories",
    "trajectory_error",
    "min_mismatch_fraction",
    "imitation_loss",
    "summarize_imitation_loss",
    "tv_eps",
    "d_train_eps",
    "d_test_eps",
    "MAX_REPLICATED_SIZE",
]

#: The metric names every result uses (see docs/evaluation.md).
METRIC_NAMES = ("success", "return", "max_reward", "trajectory_error", "imitation_loss")

#: For ``n != n'`` rollouts, the empirical distributions are replicated to
#: ``lcm(n, n')`` atoms each and solved by assignment while ``lcm(n, n')`` is at most
#: this; beyond it the transport linear program is solved exactly with HiGHS.
MAX_REPLICATED_SIZE = 512


@dataclass(frozen=True)
class Summary:
    """Mean and standard deviation of a per-episode quantity.

    Attributes:
        mean: the sample mean (NaN when ``count == 0``).
        std: the population standard deviation (``ddof=0``; NaN when ``count == 0``).
        count: number of values summarised.
    """

    mean: float
    std: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        """``{"mean": ..., "std": ..., "count": ...}`` (JSON-serialisable)."""
        return {"mean": self.mean, "std": self.std, "count": self.count}


def summarize(values: Sequence[float] | np.ndarray) -> Summary:
    """Mean and population std of ``values`` (a 1-D sequence of numbers).

    Raises:
        ValueError: ``values`` is not one-dimensional or holds NaN/inf.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D sequence of numbers, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"values must be finite, got {array}")
    if array.size == 0:
        return Summary(float("nan"), float("nan"), 0)
    return Summary(float(array.mean()), float(array.std()), int(array.size))


def _field(records: Sequence[Any], name: str) -> list[float]:
    try:
        return [float(getattr(record, name)) for record in records]
    except AttributeError as error:
        raise TypeError(
            f"expected episode records with a `{name}` attribute (EpisodeRecord), got {error}"
        ) from None


def success_rate(records: Sequence[Any]) -> Summary:
    """Fraction of episodes whose final ``info["is_success"]`` is true, with its std.

    Args:
        records: episode records with a boolean ``success`` attribute.

    Returns:
        :class:`Summary` of the 0/1 success indicators (std = sqrt(p (1 - p))).
    """
    return summarize(_field(records, "success"))


def mean_return(records: Sequence[Any]) -> Summary:
    """Mean undiscounted episode return, with its std over episodes.

    Args:
        records: episode records with a float ``episode_return`` attribute.
    """
    return summarize(_field(records, "episode_return"))


def mean_max_reward(records: Sequence[Any]) -> Summary:
    """Mean over episodes of each episode's largest step reward, with its std.

    On PushT, whose reward is ``clip(coverage / 0.95, 0, 1)``, this is Diffusion Policy's
    ``test/mean_score`` ("mean max coverage"). An episode without steps counts as 0.

    Args:
        records: episode records with a ``rewards`` array attribute.
    """
    values = []
    for record in records:
        rewards = np.asarray(record.rewards, dtype=np.float64)
        values.append(float(rewards.max()) if rewards.size else 0.0)
    return summarize(values)


def _as_trajectory(trajectory: Any, what: str) -> np.ndarray:
    """A ``(T + 1, d)`` float array from an array or an object with ``states``."""
    states = getattr(trajectory, "states", trajectory)
    array = np.asarray(states, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"{what} must be a (T + 1, d) array of control states (or an EpisodeRecord) "
            f"with at least one state, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or inf")
    return array


def pad_trajectory(states: np.ndarray, length: int) -> np.ndarray:
    """Pad ``(T, d)`` states to ``(length, d)`` by repeating the last state.

    Raises:
        ValueError: ``states`` is empty or longer than ``length``.
    """
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2 or states.shape[0] == 0:
        raise ValueError(f"expected a non-empty (T, d) array of states, got shape {states.shape}")
    if states.shape[0] > length:
        raise ValueError(f"cannot pad {states.shape[0]} states to the shorter length {length}")
    if states.shape[0] == length:
        return states
    tail = np.repeat(states[-1:], length - states.shape[0], axis=0)
    return np.concatenate([states, tail], axis=0)


def trajectory_error(imitator: Any, expert: Any) -> float:
    """Mean Euclidean distance between two control-state trajectories.

    ``(1 / (T + 1)) * sum_{t=0..T} ||x_imit[t] - x_exp[t]||`` with ``T + 1`` the longer
    of the two lengths; the shorter trajectory is padded with its last state (an episode
    that terminated stays where it ended). Meant for an imitator and an expert started
    from the same state, so the ``t = 0`` term is then zero.

    Args:
        imitator: ``(T1 + 1, d)`` control states, or an EpisodeRecord (its ``states``).
        expert: ``(T2 + 1, d)`` control states, or an EpisodeRecord.

    Returns:
        the mean distance (a float, in control-state units).

    Raises:
        ValueError: not 2-D, empty, non-finite, or different state dimensions ``d``.
    """
    a = _as_trajectory(imitator, "imitator")
    b = _as_trajectory(expert, "expert")
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"imitator and expert control states differ in dimension: {a.shape[1]} vs "
            f"{b.shape[1]} (shapes {a.shape} and {b.shape})"
        )
    length = max(a.shape[0], b.shape[0])
    distance = np.linalg.norm(pad_trajectory(a, length) - pad_trajectory(b, length), axis=-1)
    return float(distance.mean())


def stack_trajectories(groups: Any, length: int | None = None) -> np.ndarray:
    """Stack grouped, possibly ragged trajectories into one padded array.

    Args:
        groups: an array ``(G, n, T, d)``, or a sequence of ``G`` groups, each a sequence
            of ``n`` trajectories ``(T_i, d)`` (arrays or EpisodeRecords) of any lengths.
        length: pad every trajectory to this many states (default: the longest).

    Returns:
        ``(G, n, length, d)`` float64, each trajectory padded with its last state.

    Raises:
        ValueError: groups of different sizes, empty groups, mixed state dimensions.
    """
    if isinstance(groups, np.ndarray):
        if groups.ndim != 4:
            raise ValueError(
                f"expected trajectories of shape (G, n, T, d) (groups, rollouts per group, "
                f"time, state), got shape {groups.shape}"
            )
        array = groups.astype(np.float64, copy=False)
        if length is None or length == array.shape[2]:
            return array
        groups = [list(group) for group in array]
    groups = [[_as_trajectory(t, "trajectory") for t in group] for group in groups]
    if not groups or any(len(group) == 0 for group in groups):
        raise ValueError("expected at least one group, each with at least one trajectory")
    sizes = {len(group) for group in groups}
    if len(sizes) != 1:
        raise ValueError(f"every group must hold the same number of rollouts, got {sorted(sizes)}")
    dims = {t.shape[1] for group in groups for t in group}
    if len(dims) != 1:
        raise ValueError(f"trajectories have different state dimensions {sorted(dims)}")
    longest = max(t.shape[0] for group in groups for t in group)
    length = longest if length is None else length
    return np.stack(
        [np.stack([pad_trajectory(t, length) for t in group]) for group in groups], axis=0
    )


def min_mismatch_fraction(expert: np.ndarray, imitator: np.ndarray, eps: float) -> float:
    """Smallest probability of ``||x_e - x_i|| > eps`` over couplings of two point sets.

    The two arguments are the atoms of uniform empirical distributions; a coupling is a
    transport plan between them. With ``n == n'`` the optimum is attained at a
    permutation (Birkhoff), so it is ``min_sigma (1/n) sum_k c[k, sigma(k)]`` with the 0/1
    cost ``c[j, k] = [||x_e_j - x_i_k|| > eps]``, solved exactly by
    :func:`scipy.optimize.linear_sum_assignment`. With ``n != n'`` each distribution is
    replicated to ``L = lcm(n, n')`` equal atoms (an exact reformulation: block-uniform
    splitting maps couplings onto doubly stochastic ``L x L`` plans and back) and solved
    by assignment when ``L <= MAX_REPLICATED_SIZE``; otherwise the transport linear
    program is solved exactly by HiGHS (:func:`scipy.optimize.linprog`).

    Args:
        expert: ``(n, d)`` expert states; imitator: ``(n', d)`` imitator states.
        eps: distance threshold, ``> 0``.

    Returns:
        the minimal mismatch probability in ``[0, 1]``.
    """
    cost = (np.linalg.norm(expert[:, None, :] - imitator[None, :, :], axis=-1) > eps).astype(
        np.float64
    )
    n, m = cost.shape
    if not cost.any():
        return 0.0
    if n == m:
        rows, cols = linear_sum_assignment(cost)
        return float(cost[rows, cols].sum() / n)
    size = math.lcm(n, m)
    if size <= MAX_REPLICATED_SIZE:
        big = np.repeat(np.repeat(cost, size // n, axis=0), size // m, axis=1)
        rows, cols = linear_sum_assignment(big)
        return float(big[rows, cols].sum() / size)
    # transport LP: min <C, P> s.t. P 1 = 1/n, P^T 1 = 1/m, P >= 0
    a_rows = np.kron(np.eye(n), np.ones((1, m)))
    a_cols = np.kron(np.ones((1, n)), np.eye(m))
    result = linprog(
        cost.ravel(),
        A_eq=np.vstack([a_rows, a_cols]),
        b_eq=np.concatenate([np.full(n, 1.0 / n), np.full(m, 1.0 / m)]),
        bounds=(0, None),
        method="highs",
    )
    if not result.success:  # pragma: no cover - the transport LP is always feasible
        raise RuntimeError(f"transport linear program failed: {result.message}")
    return float(min(max(result.fun, 0.0), 1.0))


def imitation_loss(expert: Any, imitator: Any, eps: float) -> np.ndarray:
    """The HINT paper's imitation loss ``L_marg,eps`` at every time step.

    ``L[t] = (1/G) sum_g min_{couplings mu_g} P_{mu_g}(||x_e[t] - x_i[t]|| > eps)``, where
    group ``g`` holds the expert's and the imitator's rollouts from one shared initial
    state and ``mu_g`` ranges over couplings of their empirical distributions at time
    ``t``, computed exactly (:func:`min_mismatch_fraction`). Averaging the per-group
    optimum over groups is the optimum over couplings that share the initial state.

    Args:
        expert: ``(G, n, T, d)`` expert control states, or ``G`` groups of ``n`` ragged
            trajectories ``(T_i, d)`` (arrays or EpisodeRecords).
        imitator: ``(G, n', T', d)``, or ragged groups likewise; same ``G`` and ``d``.
            Both sides are padded with their last states to the longer of the lengths.
        eps: distance threshold in control-state units, ``> 0``.

    Returns:
        ``(T,)`` loss per time step, each in ``[0, 1]`` (``T`` the longest length).

    Raises:
        ValueError: ``eps <= 0`` or non-finite, or the two sides disagree in the number
            of groups or the state dimension.
    """
    if not (isinstance(eps, (int, float, np.floating, np.integer)) and np.isfinite(eps)):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    if eps <= 0:
        raise ValueError(f"eps must be > 0 (a distance threshold), got {eps!r}")
    exp = stack_trajectories(expert)
    imi = stack_trajectories(imitator)
    if exp.shape[0] != imi.shape[0]:
        raise ValueError(
            f"expert and imitator must have the same number of groups (initial states), got "
            f"{exp.shape[0]} and {imi.shape[0]} (shapes {exp.shape} and {imi.shape})"
        )
    if exp.shape[3] != imi.shape[3]:
        raise ValueError(
            f"expert and imitator control states differ in dimension: {exp.shape[3]} vs "
            f"{imi.shape[3]} (shapes {exp.shape} and {imi.shape})"
        )
    if not (np.all(np.isfinite(exp)) and np.all(np.isfinite(imi))):
        raise ValueError("expert and imitator trajectories must be finite")
    length = max(exp.shape[2], imi.shape[2])
    exp = stack_trajectories(exp, length)
    imi = stack_trajectories(imi, length)
    loss = np.zeros(length)
    for g in range(exp.shape[0]):
        for t in range(length):
            loss[t] += min_mismatch_fraction(exp[g, :, t], imi[g, :, t], float(eps))
    return loss / exp.shape[0]


def summarize_imitation_loss(loss: np.ndarray) -> dict[str, float]:
    """Scalar summaries of a per-step imitation loss ``(T,)``.

    Returns:
        ``{"mean": mean over t, "max": max over t}`` (the paper's bound is on the max).
    """
    loss = np.asarray(loss, dtype=np.float64)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"expected a non-empty (T,) imitation-loss curve, got shape {loss.shape}")
    return {"mean": float(loss.mean()), "max": float(loss.max())}


def _atoms(samples: Any, what: str) -> np.ndarray:
    """``(n, d)`` finite float64 atoms from ``(n,)`` or ``(n, d)`` samples."""
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(
            f"{what} must be a non-empty (n,) or (n, d) array of samples, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} contains NaN or inf")
    return array


def _check_eps(eps: Any, allow_zero: bool) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)):
        raise ValueError(f"eps must be a finite number, got {eps!r}")
    if not np.isfinite(eps) or eps < 0 or (eps == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"eps must be a finite number {bound} (a distance threshold), got {eps!r}")
    return float(eps)


def tv_eps(p: Any, q: Any, eps: float = 0.0) -> float:
    """``TV_eps(P, Q)``: the smallest ``P(||X - Y|| > eps)`` over couplings of ``P`` and ``Q``.

    ``P`` and ``Q`` are the uniform empirical distributions of the samples. With
    ``eps = 0`` this is the total variation distance of the two empirical distributions
    (atoms that are equal cost nothing); a positive ``eps`` forgives displacements up to
    ``eps``, the relaxation the HINT paper's theory is stated in. Solved exactly, as
    :func:`min_mismatch_fraction` (an assignment problem with a 0/1 cost).

    Args:
        p: ``(n,)`` or ``(n, d)`` samples of ``P``.
        q: ``(m,)`` or ``(m, d)`` samples of ``Q`` (same ``d``).
        eps: distance threshold, ``>= 0``.

    Returns:
        a number in ``[0, 1]``.

    Raises:
        ValueError: empty, non-finite or mismatched samples, or a negative ``eps``.

    Example:
        >>> tv_eps([0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 1.0])
        0.25
        >>> tv_eps([0.0, 1.0], [0.05, 1.05], eps=0.1)
        0.0
    """
    eps = _check_eps(eps, allow_zero=True)
    a, b = _atoms(p, "p"), _atoms(q, "q")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"p and q differ in dimension: {a.shape[1]} vs {b.shape[1]}")
    return min_mismatch_fraction(a, b, eps)


def d_train_eps(policy_actions: Any, expert_actions: Any, eps: float) -> float:
    """``D_train,eps``: the policy's and the expert's actions on the expert's states.

    ``(1/N) sum_n TV_eps(pi_hat(. | s_n), pi*(. | s_n))`` over ``N`` expert states
    ``s_n``, each side given by samples of its action at that state (one sample for a
    deterministic expert).

    Args:
        policy_actions: ``(N, K, d)`` ``K`` policy samples at each of the ``N`` states.
        expert_actions: ``(N, M, d)`` or ``(N, d)`` (one sample) expert actions there.
        eps: distance threshold in action units, ``>= 0``.

    Returns:
        the mean over states, in ``[0, 1]``.
    """
    eps = _check_eps(eps, allow_zero=True)
    policy = np.asarray(policy_actions, dtype=np.float64)
    expert = np.asarray(expert_actions, dtype=np.float64)
    if expert.ndim == 2:
        expert = expert[:, None, :]
    if policy.ndim != 3 or expert.ndim != 3 or policy.shape[0] != expert.shape[0]:
        raise ValueError(
            "expected policy actions (N, K, d) and expert actions (N, M, d) or (N, d) at the "
            f"same N states, got shapes {policy.shape} and {np.asarray(expert_actions).shape}"
        )
    if policy.shape[0] == 0:
        raise ValueError("no states: give at least one expert state")
    return float(np.mean([tv_eps(pol, exp, eps) for pol, exp in zip(policy, expert, strict=True)]))


def d_test_eps(imitator: Any, expert: Any, eps: float) -> np.ndarray:
    """``D_test,eps`` per time step: ``TV_eps`` of the imitator's and the expert's states.

    The marginals at time ``t`` pool every rollout of each side (the initial states are
    drawn from the same distribution, not paired), unlike :func:`imitation_loss`, whose
    couplings share the initial state. Trajectories that end early stay at their last
    state.

    Args:
        imitator: ``(n, T, d)`` control states, or ``n`` ragged ``(T_i, d)`` trajectories
            (arrays or EpisodeRecords).
        expert: ``(m, T', d)`` or ``m`` ragged trajectories; same ``d``.
        eps: distance threshold in control-state units, ``> 0``.

    Returns:
        ``(T,)`` values in ``[0, 1]`` (``T`` the longest length); the theory bounds their
        maximum.
    """
    eps = _check_eps(eps, allow_zero=False)
    return imitation_loss([list(expert)], [list(imitator)], eps)
