"""Worker processes started from a user's script: a clear error instead of a hang.

Spawned workers re-import the script that starts them. A script that asks for
``workers=2`` at its top level, without an ``if __name__ == "__main__":`` guard, used to
die with ``BrokenProcessPool`` (collection) or wait forever (evaluation, whose workers
receive the pickled policy); now it is refused before a process starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hint_envs._workers import unguarded_main_line

REPO = Path(__file__).resolve().parents[1]

COLLECT = (
    "from hint_envs.experts.collect import collect_demonstrations\n"
    "{indent}demos = collect_demonstrations(\n"
    "{indent}    'hint_envs/PlanarQuadrotor-v0', episodes=2, seed=0, workers=2, progress=False\n"
    "{indent})\n"
    "{indent}print('collected', len(demos))\n"
)


def _run_script(folder: Path, text: str) -> subprocess.CompletedProcess:
    script = folder / "user_script.py"
    script.write_text(text)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # the unguarded evaluation used to hang here
    )


def test_unguarded_script_is_refused_before_any_worker_starts(tmp_path: Path) -> None:
    result = _run_script(tmp_path, COLLECT.format(indent=""))
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: workers=2 was asked for at")
    assert "user_script.py:2" in last and '__name__ == "__main__"' in last
    assert "BrokenProcessPool" not in result.stderr
    assert "collected" not in result.stdout


def test_guarded_script_collects_in_workers(tmp_path: Path) -> None:
    text = COLLECT.format(indent="    ")
    head, body = text.split("\n", 1)
    result = _run_script(tmp_path, f'{head}\n\nif __name__ == "__main__":\n{body}')
    assert result.returncode == 0, result.stderr
    assert "collected 2" in result.stdout


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("check()\n", True),
        ("def main():\n    check()\n\nmain()\n", True),
        ("if __name__ == '__main__':\n    check()\n", False),
        ("if '__main__' == __name__:\n    x = 1\n    check()\n", False),
        ("if True:\n    check()\n", True),
    ],
)
def test_unguarded_main_line_reads_the_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, flagged: bool
) -> None:
    """The check finds the line of the script's top-level code that led to the call and
    whether it sits under the guard."""
    script = tmp_path / "script.py"
    script.write_text(source)
    found: list = []
    namespace = {"__name__": "__main__", "check": lambda: found.append(unguarded_main_line())}
    module = type(sys)("__main__")
    module.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", module)
    exec(compile(source, str(script), "exec"), namespace)
    assert len(found) == 1
    assert (found[0] is not None) is flagged
    if flagged:
        assert found[0][0] == str(script)
