"""Import hygiene of the package: no import cycle between its modules, and no side effect of importing one.

The graph is read from the source with `ast` (every `import` statement, also those inside functions, since a
deferred import is still a dependency), so a cycle is found whether or not it would fail at import time.
"""
import ast, os, subprocess, sys
from pathlib import Path
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fitness_ppo"


def imported_modules(path: Path, package: str = "fitness_ppo") -> set[str]:
    "The modules of `package` that the file at `path` imports (relative or absolute), by their short name."
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[1] for a in node.names if a.name.startswith(package + ".")}
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1 or module == package or module.startswith(package + "."):
                inner = module if node.level == 1 else module[len(package) + 1:]
                if inner: names.add(inner.split(".")[0])
                else: names |= {a.name for a in node.names}  # `from . import x`, `from fitness_ppo import x`
    return names


def import_graph(folder: Path = PACKAGE) -> dict[str, set[str]]:
    "Each module of the package (`_modidx` and `__init__` left out) and the package modules it imports."
    modules = {p.stem: p for p in folder.glob("*.py") if p.stem not in ("__init__", "_modidx")}
    return {name: imported_modules(path) & set(modules) - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    "A cycle of `graph` as a list of nodes (first == last), or None (depth-first search, three colours)."
    state, stack = {}, []
    def visit(node):
        state[node] = "open"; stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open": return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)): return cycle
        state[node] = "done"; stack.pop()
        return None
    for node in sorted(graph):
        if node not in state and (cycle := visit(node)): return cycle
    return None


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_every_kind_of_import(tmp_path):
    (tmp_path / "x.py").write_text("from .y import f\nimport fitness_ppo.z\ndef g():\n    from fitness_ppo.w import h\n"
                                   "from . import v\nimport fitness_ppo\nimport os\n")
    assert imported_modules(tmp_path / "x.py") == {"y", "z", "w", "v"}


def test_no_import_cycle():
    graph = import_graph()
    assert {"api", "cli", "io", "ppo"} <= set(graph), sorted(graph)
    assert "cli" not in graph["api"], graph["api"]  # the service imports the helpers it shares from io
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


@pytest.mark.parametrize("module", ["fitness_ppo.api", "fitness_ppo.widgets", "fitness_ppo.cli", "fitness_ppo.io"])
def test_importing_sets_no_environment_variable(module):
    "Importing a module of the library leaves the environment as it was (the console script alone sets OpenMP's)."
    if module == "fitness_ppo.api": pytest.importorskip("fastapi")
    if module == "fitness_ppo.widgets": pytest.importorskip("ipywidgets")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = (f"import os; before = dict(os.environ); import {module}; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]", done.stdout
