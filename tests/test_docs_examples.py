"""The train -> evaluate example of docs/policies.md runs as written.

The example's shell and Python blocks are taken from the Markdown itself and run in a
fresh folder, with only their sizes shrunk (episodes, demonstrations, training steps,
evaluation seeds) so that the test takes seconds; the GPU line is left out. The slow
variant runs the blocks exactly as written.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "policies.md"
SECTION = "## Train, then evaluate"

#: What the fast test shrinks: (text in the docs, replacement).
SHRINK = [
    ("--episodes 20", "--episodes 3"),
    ("--num-demos 10", "--num-demos 2"),
    ("num_demos=10", "num_demos=2"),
    ("TrainConfig(steps=3000)", "TrainConfig(steps=20)"),
    ("--steps 3000", "--steps 20"),
    ("range(1000, 1010)", "range(1000, 1002)"),
    ("n_eval_episodes=20", "n_eval_episodes=2"),
]


def _blocks() -> tuple[list[str], list[str]]:
    """(shell lines, python blocks) of the doc's train -> evaluate section."""
    text = DOC.read_text()
    assert SECTION in text, f"{DOC} lost its section {SECTION!r}"
    section = text.split(SECTION, 1)[1].split("\n## ", 1)[0]
    shell = [
        line.split("#", 1)[0].strip()
        for block in re.findall(r"```bash\n(.*?)```", section, re.S)
        for line in block.splitlines()
        if line.strip() and "--device cuda" not in line
    ]
    python = re.findall(r"```python\n(.*?)```", section, re.S)
    return shell, python


def _shrink(text: str) -> str:
    for old, new in SHRINK:
        text = text.replace(old, new)
    return text


def _run_example(folder: Path, shrink: bool) -> str:
    shell, python = _blocks()
    assert shell and len(python) >= 3, "the example lost its blocks"
    env = dict(os.environ, MPLBACKEND="Agg")
    # the console scripts (hint-collect, hint-train) beside this interpreter
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for line in shell:
        if shrink:
            line = _shrink(line)
            if line.startswith("hint-train"):
                line += " --steps 20"
        result = subprocess.run(
            line, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=900
        )
        assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
    script = "\n\n".join(_shrink(block) if shrink else block for block in python)
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert result.returncode == 0, f"{script}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_train_then_evaluate_example_runs(tmp_path: Path) -> None:
    out = _run_example(tmp_path, shrink=True)
    for run in ("hint", "no-gains"):
        assert {"config.json", "model.safetensors", "training.json"} <= {
            p.name for p in (tmp_path / "runs" / run).iterdir()
        }
    assert "'step': 20" in out  # policy.train_history[-1] of the Python training
    assert "success" in out  # format_metrics of the evaluation


@pytest.mark.slow
def test_train_then_evaluate_example_runs_as_written(tmp_path: Path) -> None:
    out = _run_example(tmp_path, shrink=False)
    assert "'step': 3000" in out
