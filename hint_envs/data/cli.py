"""``hint-minari``: export a demonstration file as a local Minari dataset.

Example::

    hint-minari benchmarks/data/pusht_keypoints_1000.hdf5 hint_envs/pusht-keypoints-v0
    hint-train minari:hint_envs/pusht-keypoints-v0 --out runs/pusht_minari

See :mod:`hint_envs.data.minari_io` for what the dataset holds.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hint_envs._cli import HelpFormatter, command_line_errors


def build_parser() -> argparse.ArgumentParser:
    """The ``hint-minari`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hint-minari",
        description="Write a demonstration file (hint-collect's HDF5) as a local Minari "
        "dataset, with the primitive controllers and simulator states in each episode's "
        "infos and the env spec recorded, so minari.load_dataset(ID).recover_environment() "
        "makes the same environment. Datasets go under MINARI_DATASETS_PATH "
        "(default ~/.minari/datasets); nothing is uploaded.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("file", type=Path, help="a demonstration file written by hint-collect")
    parser.add_argument(
        "dataset_id", help="Minari id 'namespace/name-v<version>', e.g. hint_envs/pusht-v0"
    )
    parser.add_argument(
        "--description",
        default=None,
        help="the dataset's description (default: one naming the source file)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a local dataset of that id"
    )
    return parser


@command_line_errors("hint-minari")
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hint-minari``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from hint_envs.data import DatasetError
    from hint_envs.data.minari_io import write_minari

    try:
        dataset = write_minari(
            args.file, args.dataset_id, description=args.description, overwrite=args.overwrite
        )
    except (ImportError, FileExistsError, ValueError, DatasetError) as err:
        parser.exit(2, f"hint-minari: error: {err}\n")
    root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
    print(f"written: Minari dataset {args.dataset_id} under {root}")
    print(f"episodes: {dataset.total_episodes} ({dataset.total_steps} steps)")
    print(
        f"load it: minari.load_dataset({args.dataset_id!r}); train: hint-train "
        f"minari:{args.dataset_id} --out DIR"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
