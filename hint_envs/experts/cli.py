"""``hint-collect``: collect expert demonstrations and write them as a robomimic HDF5 file;
``hint-demo``: collect quadrotor demonstrations and draw them (:mod:`hint_envs.experts.demo`).

Example::

    hint-collect hint_envs/PlanarQuadrotor-v0 --episodes 100 --seed 0 --out quadrotor.hdf5
    hint-collect hint_envs/PushT-v0 --env-kwarg obs_type=keypoints --episodes 10 --out kp.hdf5

collects the episodes of seeds 0..99, synthesises their primitive controllers, and writes
them (see ``docs/data.md``). Run ``hint-collect --help`` for the options.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import shlex
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

import hint_envs
from hint_envs._cli import HelpFormatter, check_output_file, command_line_errors, interrupted
from hint_envs._io import available_memory, output_lock, remove_temporaries
from hint_envs.data.hdf5 import write_demonstrations
from hint_envs.experts import EXPERTS, demo
from hint_envs.experts.collect import collect_demonstrations, demonstration_bytes


def _registered_ids() -> list[str]:
    return sorted(env_id for env_id in gym.registry if env_id.startswith("hint_envs/"))


def _env_kwarg(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)``, the value read as JSON if it parses, else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE with KEY a keyword of gym.make, like obs_type=keypoints; "
            f"got {text!r}"
        )
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def build_parser() -> argparse.ArgumentParser:
    """The ``hint-collect`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="hint-collect",
        description="Collect expert demonstrations over consecutive seeds, synthesise their "
        "primitive controllers (u_bar, x_bar, K), and write them to an HDF5 file in "
        "robomimic's layout.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("env_id", metavar="ENV_ID", help="e.g. hint_envs/PlanarQuadrotor-v0")
    parser.add_argument(
        "--episodes", type=int, required=True, help="number of demonstrations to write"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed (>= 0) of the first episode (episode i: seed + i)"
    )
    parser.add_argument("--out", type=Path, required=True, help="HDF5 file to write")
    parser.add_argument(
        "--env-kwarg",
        type=_env_kwarg,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a gym.make keyword argument of the env, recorded in the file so training and "
        "evaluation make the same env (repeatable; VALUE is read as JSON if it parses), e.g. "
        "obs_type=keypoints for PushT (default: none, the env's defaults)",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes to collect with")
    parser.add_argument(
        "--only-success",
        action="store_true",
        help="keep only successful episodes, drawing further seeds until --episodes succeed",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="fraction of demos in robomimic's mask/valid",
    )
    parser.add_argument(
        "--no-synthesize",
        action="store_true",
        help="skip the synthesis oracle (no primitives/ groups; ChunkDataset needs them)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


@command_line_errors("hint-collect")
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hint-collect``; returns the exit status (0 on success, 130 after
    Ctrl-C, which leaves no file: demonstrations are written at the end, atomically)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _collect(parser, args, argv)
    except KeyboardInterrupt:
        return interrupted("hint-collect", f"nothing written to {args.out}; rerun to collect")


def _existing_folder(path: Path) -> Path:
    """The closest existing folder of ``path`` (where it will be written)."""
    folder = path.absolute().parent
    while not folder.exists():
        folder = folder.parent
    return folder


def _collect(
    parser: argparse.ArgumentParser, args: argparse.Namespace, argv: Sequence[str] | None
) -> int:
    registered = _registered_ids()
    if args.env_id not in registered:
        parser.error(f"unknown env id {args.env_id!r}; registered hint_envs ids: {registered}")
    if args.env_id not in EXPERTS:
        parser.error(
            f"no expert is registered for {args.env_id!r}; experts exist for {sorted(EXPERTS)}"
        )
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:  # numpy seeds are non-negative; checked before minutes of collection
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if not 0.0 <= args.valid_fraction < 1.0:
        parser.error(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    problem = check_output_file(args.out, args.overwrite)
    if problem is not None:  # before collection, which may take minutes
        parser.error(problem)
    env_kwargs = dict(args.env_kwarg)
    try:  # a bad keyword fails here, before any collection
        gym.make(args.env_id, **env_kwargs).close()
    except (TypeError, ValueError, gym.error.Error) as err:
        parser.error(f"cannot make {args.env_id} with {env_kwargs}: {err}")
    need = args.episodes * demonstration_bytes(args.env_id, env_kwargs)
    disk = shutil.disk_usage(_existing_folder(args.out)).free
    if need > disk:  # before minutes of collection
        parser.error(
            f"--episodes {args.episodes} would write about {need / 2**20:.1f} MiB to "
            f"{args.out}, but its disk has {disk / 2**20:.1f} MiB free"
        )
    free = available_memory()
    if free is not None and need > free // 2:  # the file is written from memory at the end
        parser.error(
            f"--episodes {args.episodes} would hold about {need / 2**30:.1f} GiB of "
            f"demonstrations in memory, more than half of the {free / 2**30:.1f} GiB "
            "available here; collect fewer per file (e.g. several files of different --seed)"
        )
    # one hint-collect per output: a second one stops here, before collecting anything
    with output_lock(args.out, "hint-collect"):
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        remove_temporaries(args.out.parent, name=args.out.name)  # left by a killed hint-collect

        start = time.perf_counter()
        try:
            demos = collect_demonstrations(
                args.env_id,
                args.episodes,
                seed=args.seed,
                workers=args.workers,
                synthesize=not args.no_synthesize,
                only_success=args.only_success,
                progress=not args.quiet,
                env_kwargs=env_kwargs,
            )
        except RuntimeError as err:  # a failed episode, or too few successes
            parser.exit(1, f"hint-collect: error: {err}\n")
        command = shlex.join(["hint-collect", *(argv if argv is not None else _argv())])
        try:
            path = write_demonstrations(
                args.out,
                demos,
                args.env_id,
                env_kwargs=env_kwargs,
                valid_fraction=args.valid_fraction,
                seed=args.seed,
                attrs={
                    "command": command,
                    "seed": args.seed,
                    "episodes": args.episodes,
                    "only_success": args.only_success,
                    "synthesized": not args.no_synthesize,
                    "seeds": [int(d.attrs.get("seed", -1)) for d in demos],
                },
                overwrite=args.overwrite,
            )
        except OSError as err:  # a full disk: nothing is left behind
            parser.exit(
                1, f"hint-collect: error: cannot write {args.out}: {err}; nothing written\n"
            )
        seconds = time.perf_counter() - start

        successes = sum(d.success for d in demos)
        modes = collections.Counter(str(d.attrs.get("mode", "-")) for d in demos)
        steps = sum(len(d) for d in demos)
        print(f"hint_envs {hint_envs.__version__}: {args.env_id}")
        print(f"episodes: {len(demos)} ({steps} steps), seeds from {args.seed}")
        print(f"success rate: {successes / len(demos):.1%} ({successes}/{len(demos)})")
        print("modes: " + ", ".join(f"{mode} {count}" for mode, count in sorted(modes.items())))
        print(f"time: {seconds:.1f} s with {args.workers} worker(s)")
        print(f"written: {path}")
        return 0


@command_line_errors("hint-demo")
def demo_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``hint-demo``: collect, synthesise, draw; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="hint-demo",
        description="Collect quadrotor expert demonstrations, synthesise TVLQR gains, "
        "and draw them (trajectories by mode, open vs closed-loop replay, gain sizes).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--episodes", type=int, default=40, help="demonstrations to collect")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("quadrotor_demo.png"),
        help="where to write the picture (PNG; docs/img/quadrotor_demo.png is the docs' copy)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="also write the demonstrations to this HDF5 file (default: not written)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace --out and --data if they exist"
    )
    parser.add_argument(
        "--offset",
        type=float,
        default=0.15,
        help="start-state perturbation (m, in x and z) for the replay panel",
    )
    parser.add_argument(
        "--pitch-offset",
        type=float,
        default=0.03,
        help="start-state pitch perturbation (rad) for the replay panel",
    )
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    outputs = [("--out", args.out, "quadrotor_demo.png"), ("--data", args.data, "demos.hdf5")]
    for option, path, example in outputs:
        problem = path and check_output_file(path, args.overwrite, option, example)
        if problem:
            parser.error(problem)

    start = time.perf_counter()
    demos = collect_demonstrations(demo.ENV_ID, args.episodes, seed=args.seed)
    seconds = time.perf_counter() - start
    successes = sum(d.success for d in demos)
    print(
        f"collected {len(demos)} demonstrations in {seconds:.1f} s "
        f"({successes} reached the goal without collision)"
    )
    if args.data is not None:
        path = write_demonstrations(args.data, demos, demo.ENV_ID, overwrite=args.overwrite)
        print(f"demonstrations written to {path}")
    env = gym.make(demo.ENV_ID)
    offset = np.array([args.offset, args.offset, args.pitch_offset, 0.0, 0.0, 0.0])
    try:
        errors = demo.draw(demos, env, args.out, offset)
    except OSError as err:  # a full disk: the picture is written whole or not at all
        parser.exit(1, f"hint-demo: error: cannot write {args.out}: {err}; nothing written\n")
    print(
        f"final position error from perturbed starts: open loop {errors['open_loop']:.3f} m, "
        f"closed loop with synthesised gains {errors['closed_loop']:.3f} m"
    )
    print(f"picture written to {args.out.resolve()}")
    return 0


def _argv() -> list[str]:
    import sys

    return sys.argv[1:]


if __name__ == "__main__":
    raise SystemExit(main())
