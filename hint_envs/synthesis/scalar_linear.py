"""Synthesis oracle of the scalar linear system: TVLQR along a demonstration.

The system ``x' = a x + b u + w`` is linear, so its linearisation is exact and constant,
``(A, B) = ([[a]], [[b]])``, read from the demonstration's ``attrs["a"]`` and
``attrs["b"]`` (what :class:`~hint_envs.experts.scalar_linear.ScalarLinearExpert` stores).
Default weights ``Q = 1``, ``R = 1`` and ``Qf`` the stabilising DARE solution (the
infinite-horizon cost-to-go), so every gain is the stationary LQR gain
``K = -a b P / (R + b^2 P)``, with ``|a + b K| < 1`` for any ``a`` (``b != 0``): for
``a = 2``, ``b = 1`` it is ``K = -1.618``, closed-loop pole ``0.382``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from hint_envs.core import Demonstration, Primitives
from hint_envs.synthesis.lqr import dare, synthesize_tvlqr

__all__ = ["DEFAULT_Q", "DEFAULT_R", "system_from_attrs", "synthesize"]

#: Default TVLQR state weight ``(1, 1)``.
DEFAULT_Q = np.array([[1.0]])
#: Default TVLQR input weight ``(1, 1)``.
DEFAULT_R = np.array([[1.0]])


def system_from_attrs(attrs: dict[str, Any]) -> tuple[float, float]:
    """The coefficients ``(a, b)`` stored in a demonstration's ``attrs``.

    Raises:
        ValueError: ``a`` or ``b`` missing, not a finite number, or ``b == 0``.
    """
    values = []
    for name in ("a", "b"):
        if name not in attrs:
            raise ValueError(
                f"demo.attrs has no {name!r}: scalar-linear synthesis reads the system "
                "x' = a x + b u from attrs['a'] and attrs['b'], which ScalarLinearExpert "
                "stores; set them for demonstrations made otherwise"
            )
        try:
            value = float(attrs[name])
        except (TypeError, ValueError):
            raise ValueError(
                f"demo.attrs[{name!r}] must be a number, got {attrs[name]!r}"
            ) from None
        if not np.isfinite(value):
            raise ValueError(f"demo.attrs[{name!r}] must be finite, got {value}")
        values.append(value)
    a, b = values
    if b == 0.0:
        raise ValueError("demo.attrs['b'] is 0: the input has no effect, no controller exists")
    return a, b


def _weight(name: str, value: Any, default: np.ndarray) -> np.ndarray:
    if value is None:
        return default
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"{name} must be a scalar or of shape (1, 1), got shape {array.shape}")
    return array.reshape(1, 1)


def synthesize(demo: Demonstration, Q: Any = None, R: Any = None) -> Primitives:
    """TVLQR primitive controllers along a scalar-linear demonstration.

    Args:
        demo: a demonstration of ``hint_envs/ScalarLinear-v0`` (``states (T, 1)``,
            ``actions (T, 1)``, ``attrs["a"]``, ``attrs["b"]``).
        Q: state weight, a scalar or ``(1, 1)``, ``>= 0``; default 1.
        R: input weight, a scalar or ``(1, 1)``, ``> 0``; default 1.

    Returns:
        ``T`` primitive controllers ``u_bar (T, 1)``, ``x_bar (T, 1)``, ``K (T, 1, 1)``,
        consistent with the demonstration: ``kappa_t(states[t]) == actions[t]``.

    Raises:
        ValueError: missing or bad ``attrs["a"]``/``attrs["b"]``, states or actions not of
            shape ``(T, 1)``, or bad weights.
    """
    a, b = system_from_attrs(demo.attrs)
    Q = _weight("Q", Q, DEFAULT_Q)
    R = _weight("R", R, DEFAULT_R)
    states = np.asarray(demo.states, dtype=np.float64)
    actions = np.asarray(demo.actions, dtype=np.float64)
    if states.ndim != 2 or states.shape[1] != 1:
        raise ValueError(
            f"scalar-linear demonstrations have states of shape (T, 1), got {states.shape}"
        )
    if actions.ndim != 2 or actions.shape[1] != 1:
        raise ValueError(
            f"scalar-linear demonstrations have actions of shape (T, 1), got {actions.shape}"
        )
    A, B = np.array([[a]]), np.array([[b]])
    Qf = dare(A, B, Q, R)

    def linearize(x: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        T = len(x)
        return np.broadcast_to(A, (T, 1, 1)), np.broadcast_to(B, (T, 1, 1))

    return synthesize_tvlqr(states, actions, linearize, Q, R, Qf, batched=True)
