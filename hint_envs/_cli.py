"""What every command-line entry point of hint_envs and policies shares.

:class:`HelpFormatter` shows each option's default in ``--help``;
:func:`command_line_errors` turns the errors a user causes while a command runs (a corrupt
or foreign demonstration file, Ctrl-C) into one line on stderr and an exit status, instead
of a traceback; :func:`check_output_file` checks where a command will write before it
spends minutes computing what to write.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from hint_envs._io import DatasetError, OutputLockedError

__all__ = [
    "EXIT_INTERRUPTED",
    "HelpFormatter",
    "check_output_file",
    "command_line_errors",
    "interrupted",
]

#: Exit status after Ctrl-C (128 + SIGINT, what a shell reports for a job it interrupted).
EXIT_INTERRUPTED = 130


def interrupted(prog: str, kept: str | None = None) -> int:
    """Report Ctrl-C in one line on stderr, ``<prog>: interrupted[; <kept>]``; returns 130.

    ``kept`` says what was kept and how to go on, e.g. ``"rerun with --resume"``. Close
    progress bars before (``try``/``finally``), so the line is not drawn over.
    """
    sys.stdout.flush()
    line = f"{prog}: interrupted" if kept is None else f"{prog}: interrupted; {kept}"
    print(line, file=sys.stderr, flush=True)
    return EXIT_INTERRUPTED


Main = Callable[[Sequence[str] | None], int]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each option's default, except where it means nothing: required
    options, and options whose help already says what the default is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def command_line_errors(prog: str) -> Callable[[Main], Main]:
    """Decorate ``main(argv) -> int`` so that Ctrl-C, a :class:`DatasetError` and an
    output locked by another run end it with one line on stderr (``"PROG: interrupted"``,
    exit 130; ``"PROG: error: ..."``, exit 2) instead of a traceback. Other exceptions
    pass through."""

    def decorate(main: Main) -> Main:
        @functools.wraps(main)
        def wrapper(argv: Sequence[str] | None = None) -> int:
            try:
                return main(argv)
            except KeyboardInterrupt:
                return interrupted(prog)
            except (DatasetError, OutputLockedError) as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                return 2

        return wrapper

    return decorate


def check_output_file(
    path: Path, overwrite: bool, option: str = "--out", example: str = "demos.hdf5"
) -> str | None:
    """Why the file ``path`` cannot be written (None if it can), checked before any work.

    Parent directories that do not exist yet count as writable when their closest existing
    ancestor is a writable directory (they will be created).
    """
    if path.is_dir():
        return f"{option} {path} is a directory; give a file name such as {path / example}"
    if path.exists() and not overwrite:
        return f"{path} already exists; pass --overwrite to replace it"
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot write {path}: {parent} is a file, not a directory"
    try:  # a real probe: os.access says yes to root, and knows nothing of read-only mounts
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        return f"cannot write {path}: directory {parent} is not writable ({error.strerror})"
    return None
