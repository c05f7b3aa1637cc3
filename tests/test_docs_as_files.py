"""Every example of README.md and docs/ runs as a reader would run it.

Each Python block is written to a file and run by a fresh interpreter, from a temporary
folder (one per page, the page's blocks in order, so a file an earlier block writes is
there for a later one). That is how a reader runs an example, and it catches what
running blocks inside one process hides: names an earlier block defined, a script that
starts worker processes without an ``if __name__ == "__main__":`` guard, paths relative to
the repository. Each folder starts with what the guides' shell commands make first:
``demos.hdf5`` (ten quadrotor demonstrations), ``runs/hint`` (a policy trained for 20
steps) and ``benchmarks/data`` (the committed reference files).

A block that cannot run here says why in the Markdown, on the line before it::

    <!-- docs-test: skip (trains for 3000 steps: tests/test_docs_examples.py runs it shrunk) -->

Every command of a shell block that runs one of the project's programs (``hint-*``,
``python benchmarks/*.py``) is checked against that program's ``--help``: the program
starts and knows every option the docs give it.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SKIP = re.compile(r"<!-- docs-test: skip \((?P<reason>[^)]*\S[^)]*)\) -->")
FENCE = re.compile(r"^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.S | re.M)
#: a command at the start of a line or after ``&&``, ``;``, ``|`` or ``do`` (not output)
COMMAND = re.compile(
    r"(?:^|&&|;|\||\bdo\b)\s*((?:hint-[a-z]+|python3? benchmarks/[\w/]+\.py)(?=\s|$)[^;&|#\n]*)",
    re.M,
)
#: a block may take this long (the docs mark longer ones as skipped)
BLOCK_TIMEOUT_S = 120


@dataclass(frozen=True)
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page``, each with the skip reason written before it."""
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
        skip = SKIP.fullmatch(before.strip())
        found.append(
            Block(
                page,
                text[: match.start()].count("\n") + 1,
                match["lang"],
                match["body"],
                skip["reason"] if skip else None,
            )
        )
    return found


def _env() -> dict[str, str]:
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def starter_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``demos.hdf5`` and ``runs/hint``, as the guides' first commands make them."""
    from hint_envs.data import ChunkDataset, write_demonstrations
    from hint_envs.experts.collect import collect_demonstrations
    from policies import DDPMPolicyConfig, TrainConfig, train

    folder = tmp_path_factory.mktemp("starter")
    env_id = "hint_envs/PlanarQuadrotor-v0"
    demos = collect_demonstrations(env_id, episodes=10, seed=0, progress=False)
    write_demonstrations(folder / "demos.hdf5", demos, env_id, seed=0)
    config = DDPMPolicyConfig(sigma=0.1)
    data = ChunkDataset(folder / "demos.hdf5", config.obs_horizon, config.horizon)
    train(data, config, TrainConfig(steps=20), out_dir=folder / "runs/hint", progress=False)
    return folder


def _page_folder(root: Path, page: Path, starter: Path) -> Path:
    folder = root / "_".join(page.relative_to(REPO).with_suffix("").parts)
    (folder / "runs").mkdir(parents=True)
    (folder / "benchmarks").mkdir()
    (folder / "benchmarks" / "data").symlink_to(REPO / "benchmarks" / "data")
    (folder / "demos.hdf5").symlink_to(starter / "demos.hdf5")
    (folder / "runs" / "hint").symlink_to(starter / "runs" / "hint")
    return folder


def _run_page(page: Path, folder: Path) -> list[str]:
    """Run the page's Python blocks in order; one message per failing block."""
    failures = []
    for block in blocks(page):
        if block.lang != "python" or block.skip is not None:
            continue
        script = folder / f"block_{block.line}.py"
        script.write_text(block.code)
        try:
            result = subprocess.run(
                [sys.executable, script.name],
                cwd=folder,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            failures.append(f"{block}: still running after {BLOCK_TIMEOUT_S} s")
            continue
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-6:])
            failures.append(f"{block}: exit {result.returncode}\n{tail}")
    return failures


def test_every_python_block_of_the_docs_runs_as_a_file(tmp_path: Path, starter_files: Path) -> None:
    pages = [p for p in PAGES if any(b.lang == "python" for b in blocks(p))]
    assert len(pages) >= 8, "the docs lost their examples"
    folders = [_page_folder(tmp_path, page, starter_files) for page in pages]
    with ThreadPoolExecutor(2) as pool:  # the subprocesses do the work: two cores
        failures = [f for found in pool.map(_run_page, pages, folders) for f in found]
    assert not failures, "\n\n".join(failures)


def test_python_blocks_are_python_and_skips_say_why() -> None:
    """Signatures and pseudo-code are ``text`` blocks; a skipped block gives its reason,
    and most blocks run."""
    all_blocks = [b for page in PAGES for b in blocks(page) if b.lang == "python"]
    for block in all_blocks:
        compile(block.code, str(block), "exec")  # raises on a block that is not Python
    skipped = [b for b in all_blocks if b.skip is not None]
    assert all(len(b.skip) >= 15 for b in skipped), [str(b) for b in skipped]
    assert len(skipped) <= len(all_blocks) // 3, [f"{b}: {b.skip}" for b in skipped]


def documented_commands() -> dict[str, set[str]]:
    """program -> the options the docs pass it, over every shell block."""
    commands: dict[str, set[str]] = {}
    for page in PAGES:
        for block in blocks(page):
            if block.lang not in ("bash", "sh", "shell", "console"):
                continue
            for line in block.code.replace("\\\n", " ").splitlines():
                for command in COMMAND.findall(line):
                    words = shlex.split(command, posix=True)
                    n = 1 if words[0].startswith("hint-") else 2
                    options = {w.split("=", 1)[0] for w in words[n:] if w.startswith("--")}
                    commands.setdefault(" ".join(words[:n]), set()).update(options)
    return commands


def _help(program: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*shlex.split(program), "--help"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_documented_command_knows_its_options() -> None:
    commands = documented_commands()
    assert {"hint-collect", "hint-train", "hint-eval"} <= set(commands)
    programs = sorted(commands)
    with ThreadPoolExecutor(2) as pool:
        helps = dict(zip(programs, pool.map(_help, programs), strict=True))
    problems = []
    for program, result in helps.items():
        if result.returncode != 0:
            problems.append(f"{program} --help: exit {result.returncode}\n{result.stderr[-500:]}")
            continue
        known = set(re.findall(r"--[\w-]+", result.stdout))
        unknown = sorted(commands[program] - known)
        if unknown:
            problems.append(f"{program}: the docs pass {unknown}, which --help does not list")
    assert not problems, "\n".join(problems)
