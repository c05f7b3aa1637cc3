"""The interface every offline expert implements.

What an expert produces, :class:`~hint_envs.core.Demonstration`, lives in
:mod:`hint_envs.core` so that data, synthesis and experts all import it one way; it is
re-exported here and from :mod:`hint_envs.experts`.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from hint_envs.core import Demonstration

__all__ = ["Demonstration", "Expert"]


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
