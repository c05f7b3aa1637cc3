"""Demonstration files (robomimic's HDF5 layout), chunk datasets and normalisation.

See ``docs/data.md`` for the file layout and the chunk windows.
"""

from __future__ import annotations

from hint_envs.data.chunks import ChunkDataset
from hint_envs.data.hdf5 import DatasetError, DemoFile, read_demonstrations, write_demonstrations
from hint_envs.data.normalization import NormalizationStats, RangeNormalizer

__all__ = [
    "ChunkDataset",
    "DatasetError",
    "DemoFile",
    "NormalizationStats",
    "RangeNormalizer",
    "read_demonstrations",
    "write_demonstrations",
]
