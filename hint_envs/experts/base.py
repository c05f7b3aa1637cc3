"""What an expert produces, and the interface every offline expert implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from hint_envs.core import Primitives


@dataclass
class Demonstration:
    """One expert episode, in the arrays that robomimic's HDF5 layout stores.

    ``T`` is the number of steps taken. Observation ``t`` is what the policy saw before
    input ``t``; ``states[t]`` is the exact simulator state at that moment, so
    ``env.reset(options={"state": states[t]})`` restores it.

    Attributes:
        observations: ``(T, d_obs)`` flat observations o_0 .. o_{T-1}.
        actions: ``(T, d_u)`` raw inputs u_0 .. u_{T-1} as applied (after clipping).
        rewards: ``(T,)``.
        dones: ``(T,)`` 1 at the final step, else 0 (robomimic's convention).
        states: ``(T, d_state)`` simulator states s_0 .. s_{T-1}.
        final_observation: ``(d_obs,)`` o_T, after the last input.
        final_state: ``(d_state,)`` s_T.
        primitives: synthesised controllers along the demonstration (``T`` of them,
            consistent: ``primitives(x_t, t) == actions[t]``), or None before synthesis.
        attrs: metadata: ``seed`` (int), ``mode`` (str, e.g. "left"/"right"),
            ``success`` (bool), and anything expert-specific (JSON-serialisable).
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray
    final_observation: np.ndarray
    final_state: np.ndarray
    primitives: Primitives | None = None
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        T = len(self.actions)
        for name in ("observations", "rewards", "dones", "states"):
            if len(getattr(self, name)) != T:
                raise ValueError(
                    f"demonstration arrays disagree in length: actions has {T} steps, "
                    f"{name} has {len(getattr(self, name))}"
                )
        if self.primitives is not None and len(self.primitives) != T:
            raise ValueError(f"{len(self.primitives)} primitives for {T} steps")

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def success(self) -> bool:
        return bool(self.attrs.get("success", False))


class Expert(Protocol):
    """An offline expert for one environment id.

    ``demonstrate(seed)`` starts from ``env.reset(seed=seed)`` (so an evaluation episode
    with the same seed starts from the same state), draws every other random choice (mode,
    process noise) from a generator seeded by ``seed``, and returns one episode.
    """

    env_id: str
    #: ``gym.make`` keyword arguments of the environment the expert acts in.
    env_kwargs: dict[str, Any]

    def demonstrate(self, seed: int, initial_state: np.ndarray | None = None) -> Demonstration:
        """One episode from ``reset(seed=seed)``, or from ``initial_state`` if given."""
        ...
