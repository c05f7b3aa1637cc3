"""Synthesis oracle of PushT: feedback gains on the agent position from its exact linear model.

The agent is a kinematic disk driven by gym-pusht's PD law towards the commanded target.
Contacts never push a kinematic body back, so from target to position its dynamics are
exactly linear and identical on both axes (:func:`hint_envs.envs.pusht.agent_matrices`):
per axis, with ``z = (p, v)`` and ``a`` the target held for one 0.1 s control step,

    z_{t+1} = A z_t + B a_t,     A = M^10,  B = sum_{i<10} M^i N,

where ``M``, ``N`` are one explicit PD sub-step. The control state of PushT is the agent
*position* only (``control_indices = [0, 1]``; gym-pusht does not observe the velocity),
so a primitive controller is a static **output** feedback ``a = u_bar + K (p - p_bar)``.

Derivation. Along a demonstration, ``u_bar_t = a_t`` and ``p_bar_t = p_t`` (consistency:
the controller reproduces the demonstration on it). A deviation ``dz = z - z_bar`` then
evolves as ``dz_{t+1} = (A + B K C) dz_t`` with ``C = [1, 0]``, independently of the
nominal — the model is linear, so there is one gain for every step. With ``K = -k I_2``
(the axes are identical and decoupled), ``k`` minimises the infinite-horizon LQR cost of a
unit-covariance initial deviation,

    J(k) = trace(P(k)),   P = A_k^T P A_k + Q + k^2 C^T R C,   A_k = A - k B C,

over the gains that keep ``A_k`` Schur stable (a 1-D bounded search; ``J`` is smooth and
finite there). Default weights by Bryson's rule (``1 / acceptable deviation^2``): position
10 px, velocity 100 px/s, target correction 20 px::

    Q = diag(1e-2, 1e-4),   R = 1 / 400

which give ``k = 0.33``: the closed-loop deviation contracts by a factor 0.38 per step
(0.47 with ``K = 0``, gym-pusht's own PD). ``K = 0`` stays available (``gain=0``, or the
wrappers' ``gains=False``).
"""

from __future__ import annotations

import numpy as np

from hint_envs.core import Demonstration, Primitives
from hint_envs.envs.pusht import INPUT_DIM, AgentParams, agent_matrices
from hint_envs.synthesis import lqr

__all__ = ["DEFAULT_Q", "DEFAULT_R", "output_feedback_gain", "synthesize"]

#: Per-axis deviation weight on (position px, velocity px/s); see the module docstring.
DEFAULT_Q = np.diag([1e-2, 1e-4])
#: Weight on the target correction (px).
DEFAULT_R = 1.0 / 400.0


def output_feedback_gain(
    Q: np.ndarray | None = None, R: float | None = None, params: AgentParams | None = None
) -> float:
    """The position-feedback gain ``k`` (``K = -k I``) minimising ``trace(P(k))``.

    Args:
        Q: ``(2, 2)`` PSD weight on the per-axis deviation ``(p, v)``; default
            :data:`DEFAULT_Q`.
        R: positive weight on the target correction; default :data:`DEFAULT_R`.
        params: the agent's PD constants; default gym-pusht's.

    Returns:
        ``k >= 0`` (dimensionless: px of target per px of position error).
    """
    Q = DEFAULT_Q if Q is None else np.asarray(Q, dtype=np.float64)
    R = DEFAULT_R if R is None else float(R)
    if Q.shape != (2, 2) or not np.allclose(Q, Q.T) or np.linalg.eigvalsh(Q).min() < 0:
        raise ValueError(f"Q must be a symmetric PSD (2, 2) matrix, got {Q!r}")
    if not R > 0:
        raise ValueError(f"R must be positive, got {R}")
    A, B = agent_matrices(params or AgentParams())
    return lqr.output_feedback_gain(A, B, np.array([[1.0, 0.0]]), Q, R)


def synthesize(
    demo: Demonstration,
    gain: float | None = None,
    Q: np.ndarray | None = None,
    R: float | None = None,
) -> Primitives:
    """Primitive controllers along a PushT demonstration.

    Args:
        demo: a ``hint_envs/PushT-v0`` demonstration (either observation type: the agent
            position is ``observations[:, :2]``; ``actions (T, 2)`` the targets applied).
        gain: the feedback gain ``k`` (``K = -k I``); default :func:`output_feedback_gain`
            of ``Q`` and ``R``. ``gain=0`` gives pure target commands.
        Q, R: weights of :func:`output_feedback_gain`.

    Returns:
        ``T`` controllers ``u_bar (T, 2) = actions``, ``x_bar (T, 2)`` = the observed agent
        positions, ``K (T, 2, 2) = -k I``; consistent: ``kappa_t(x_t) = u_t``.
    """
    actions = np.asarray(demo.actions, dtype=np.float64)
    observations = np.asarray(demo.observations, dtype=np.float64)
    if actions.ndim != 2 or actions.shape[1] != INPUT_DIM:
        raise ValueError(f"PushT demonstrations have actions (T, 2), got {actions.shape}")
    if observations.ndim != 2 or observations.shape[1] not in (5, 18):
        raise ValueError(
            "PushT demonstrations have observations (T, 5) ('state') or (T, 18) "
            f"('keypoints'), got {observations.shape}"
        )
    k = output_feedback_gain(Q, R) if gain is None else float(gain)
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"gain must be a finite number >= 0, got {gain!r}")
    T = len(actions)
    K = np.broadcast_to(-k * np.eye(INPUT_DIM), (T, INPUT_DIM, INPUT_DIM)).copy()
    return Primitives(actions.copy(), observations[:, :INPUT_DIM].copy(), K)
