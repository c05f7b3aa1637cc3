"""The import structure: no cycles, and every module imports on its own.

(a) No import cycle among the modules of ``hint_envs``, ``policies`` and
``benchmarks/leaderboard_lib``, neither between modules nor between sub-packages
(``hint_envs.data``, ``hint_envs.experts``, ...). Imports are read with ``ast`` without
running anything, and every ``import`` / ``from ... import`` statement counts wherever it
stands: at module level, inside a function (a lazy import), or under
``if TYPE_CHECKING:``. A lazy import that breaks a cycle at run time is still a cycle in
the design. Not counted: names imported by string (``importlib.import_module``), such as
the lazy exports of ``policies/__init__.py`` and gymnasium's string entry points, and
the implicit import of a package's ``__init__`` when one of its modules is imported.

(b) Every module of ``hint_envs`` and ``policies`` imports in a fresh interpreter on its
own: one subprocess per package imports the modules one at a time, removing both
packages from ``sys.modules`` before each (third-party modules stay loaded, which keeps
it fast). A module may fail only for want of an optional extra that is not installed.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The packages whose import graph is checked, as (dotted name, folder).
PACKAGES = (
    ("hint_envs", ROOT / "hint_envs"),
    ("policies", ROOT / "policies"),
    ("benchmarks.leaderboard_lib", ROOT / "benchmarks" / "leaderboard_lib"),
)
#: Top-level import names of the optional extras in setup.cfg (and robomimic, installed
#: apart): a module may fail to import only for want of one of these.
OPTIONAL_EXTRAS = {
    "torch",
    "stable_baselines3",
    "diffusers",
    "safetensors",
    "gym_pusht",
    "pymunk",
    "cv2",
    "robosuite",
    "robomimic",
    "mujoco",
    "ray",
    "tyro",
    "minari",
    "tensorboard",
}


def project_modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of :data:`PACKAGES`."""
    modules = {}
    for package, folder in PACKAGES:
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join((package, *parts))] = path
    return modules


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports, anywhere in the file (relative imports
    resolved; ``leaderboard_lib.x`` read as ``benchmarks.leaderboard_lib.x``)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base.split(".")[0] == "leaderboard_lib":
                base = "benchmarks." + base
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports (not itself, its packages or children)."""
    modules = project_modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = {resolve(name) for name in imported_names(module, path)} - {None}
        graph[module] = {
            t for t in targets if not module.startswith(t + ".") and not t.startswith(module + ".")
        }
        graph[module].discard(module)
    return graph


def subpackage(module: str) -> str:
    """``hint_envs.data.hdf5`` -> ``hint_envs.data``; ``policies.ddpm`` -> ``policies.ddpm``."""
    for package, _ in PACKAGES:
        if module == package or module.startswith(package + "."):
            depth = package.count(".") + 2
            return ".".join(module.split(".")[:depth])
    raise AssertionError(module)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_the_imports_it_should():
    graph = import_graph()
    assert len(graph) > 60
    assert "hint_envs.core" in graph["hint_envs.wrappers.executor"]
    assert "policies.serialization" in graph["policies.base"]
    assert "benchmarks.leaderboard_lib.suite" in graph["benchmarks.leaderboard_lib.runs"]
    # a lazy (function-level) import counts
    assert "hint_envs.experts.collect" in graph["benchmarks.leaderboard_lib.runs"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_between_modules():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_no_import_cycle_between_subpackages():
    collapsed: dict[str, set[str]] = {}
    for module, targets in import_graph().items():
        source = subpackage(module)
        collapsed.setdefault(source, set()).update(
            subpackage(t) for t in targets if subpackage(t) != source
        )
    found = cycles(collapsed)
    assert not found, "package import cycles: " + "; ".join(" <-> ".join(c) for c in found)


IMPORT_EACH = """
import importlib, importlib.util, json, sys, warnings
warnings.simplefilter("ignore")
modules, optional = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
failures, skipped = {}, {}
for module in modules:
    for name in [m for m in sys.modules if m.split(".")[0] in ("hint_envs", "policies")]:
        del sys.modules[name]
    gym_envs = sys.modules.get("gymnasium.envs.registration")
    if gym_envs is not None:  # forget the ids hint_envs registered, as a fresh process
        for env_id in [k for k in gym_envs.registry if k.startswith("hint_envs/")]:
            del gym_envs.registry[env_id]
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as error:
        top = (error.name or "").split(".")[0]
        if top in optional and importlib.util.find_spec(top) is None:
            skipped[module] = top
        else:
            failures[module] = repr(error)
    except Exception as error:
        failures[module] = repr(error)
print(json.dumps({"failures": failures, "skipped": skipped}))
"""


@pytest.mark.parametrize("package", ["hint_envs", "policies"])
def test_every_module_imports_on_its_own(package):
    modules = [m for m in project_modules() if m.split(".")[0] == package]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORT_EACH,
            json.dumps(modules),
            json.dumps(sorted(OPTIONAL_EXTRAS)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert not report["failures"], report["failures"]
    assert len(report["skipped"]) < len(modules), report["skipped"]
