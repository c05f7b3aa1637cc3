"""``hint-minari``: export a demonstration file as a local Minari dataset; ``hint-data``:
maintain demonstration files.

Example::

    hint-minari benchmarks/data/pusht_keypoints_1000.hdf5 hint_envs/pusht-keypoints-v0
    hint-train minari:hint_envs/pusht-keypoints-v0 --out runs/pusht_minari
    hint-data add-bounds old_demos.hdf5   # a file written before the bounds were stored

See :mod:`hint_envs.data.minari_io` for what the dataset holds and
:func:`hint_envs.data.hdf5.add_bounds` for what ``add-bounds`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from hint_envs._cli import HelpFormatter, command_line_errors
from hint_envs._io import output_lock


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

    root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
    try:  # one hint-minari per dataset id
        with output_lock(Path(root).expanduser() / args.dataset_id, "hint-minari"):
            dataset = write_minari(
                args.file, args.dataset_id, description=args.description, overwrite=args.overwrite
            )
    except (ImportError, FileExistsError, ValueError, DatasetError, OSError) as err:
        parser.exit(2, f"hint-minari: error: {err}\n")
    print(f"written: Minari dataset {args.dataset_id} under {root}")
    print(f"episodes: {dataset.total_episodes} ({dataset.total_steps} steps)")
    print(
        f"load it: minari.load_dataset({args.dataset_id!r}); train: hint-train "
        f"minari:{args.dataset_id} --out DIR"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())


def build_data_parser() -> argparse.ArgumentParser:
    """The ``hint-data`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hint-data",
        description="Maintain demonstration files written by hint-collect.",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser(
        "add-bounds",
        help="store the env's bounds in files written without them",
        description="Store the env's action and observation bounds and control indices in "
        "demonstration files written before hint_envs stored them (training builds the "
        "policy's spaces from them and refuses a file without them). The env is made once "
        "per file from the file's own env id and kwargs (its pip extra must be installed "
        "here); only attributes are added, atomically; a file holding other bounds is "
        "refused, one holding the same is left as it is.",
        formatter_class=HelpFormatter,
    )
    add.add_argument("files", type=Path, nargs="+", metavar="FILE", help="demonstration files")
    return parser


@command_line_errors("hint-data")
def data_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hint-data``; returns the exit status."""
    parser = build_data_parser()
    args = parser.parse_args(argv)
    import gymnasium as gym

    from hint_envs.data.hdf5 import add_bounds

    for path in args.files:
        try:
            added = add_bounds(path)
        except (gym.error.Error, TypeError) as err:
            parser.exit(2, f"hint-data: error: {path}: cannot make its env here: {err}\n")
        print(f"{path}: {'bounds added' if added else 'already holds these bounds'}")
    return 0
