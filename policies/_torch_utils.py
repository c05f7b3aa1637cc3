"""Small torch helpers shared by the modules of :mod:`policies`."""

from __future__ import annotations

from torch import nn

__all__ = ["count_parameters"]


def count_parameters(module: nn.Module) -> int:
    """Every parameter of ``module``, trainable or frozen."""
    return sum(p.numel() for p in module.parameters())
