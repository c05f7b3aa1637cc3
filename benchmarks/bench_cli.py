"""Command-line helpers shared by the benchmark scripts (run as ``python benchmarks/x.py``,
so this folder is on ``sys.path``). Imports nothing heavy: the expert benchmarks pin BLAS
threads before numpy loads."""

from __future__ import annotations

import argparse
from typing import Any, TypeVar

T = TypeVar("T")


def parse_dataclass_args(cls: type[T], doc: str | None) -> T:
    """Parse ``--field-name value`` options for every field of the dataclass ``cls``
    (``tyro``: types and defaults from its fields, help from their docstrings); the
    description is ``doc``'s first paragraph."""
    import tyro

    return tyro.cli(cls, description=(doc or "").split("\n\n")[0])


def parse_setting(text: str) -> tuple[str, Any]:
    """``name=value`` -> ``(name, number)`` for ``--setting`` (an int when it reads as one)."""
    name, _, value = text.partition("=")
    if not value:
        raise argparse.ArgumentTypeError(f"--setting must be name=value, got {text!r}")
    number = float(value)
    return name, int(number) if number.is_integer() and "." not in value else number
