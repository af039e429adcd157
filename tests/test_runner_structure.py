"""The runner's structure (protolab.runner): no import cycle among its modules, and a light command line."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import STANDARD_PARAMETERS, write_notebook

PACKAGE = Path(__file__).resolve().parents[1] / "lib" / "protolab"


def module_imports(package: Path, name: str) -> dict[str, set[str]]:
    """The modules of the package ``name`` (folder ``package``, one level) that each of its modules imports,
    read statically: every ``import`` and ``from … import`` anywhere in the file (inside functions too),
    absolute or relative. A module is named ``<name>.<stem>``, the package's ``__init__`` ``<name>``."""
    modules = {path: name if path.stem == "__init__" else f"{name}.{path.stem}" for path in package.glob("*.py")}
    known = set(modules.values())
    graph: dict[str, set[str]] = {}
    for path, module in modules.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative to the package (level 1) or above it
                    base = ".".join([*name.split(".")[:len(name.split(".")) - node.level + 1], *filter(None, [base])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
            else:
                continue
            for target in targets:  # the longest known module a dotted name starts with
                parts = target.split(".")
                found = next((".".join(parts[:end]) for end in range(len(parts), 0, -1)
                              if ".".join(parts[:end]) in known), None)
                if found is not None and found != module:
                    imported.add(found)
        graph[module] = imported
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle of ``graph`` found by a depth-first walk, each as its modules with the first one repeated last."""
    cycles, state = [], {}  # state: 1 on the current path, 2 done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycles.append(path[path.index(imported):] + [imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles


def test_no_module_of_the_runner_imports_itself_back_even_inside_a_function():
    graph = module_imports(PACKAGE / "runner", "protolab.runner")
    assert {"protolab.runner.execute", "protolab.runner.slurm", "protolab.runner.cli"} <= set(graph)
    assert "protolab.runner.slurm" in graph["protolab.runner.execute"], "the walk sees the runner's imports"
    cycles = import_cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" → ".join(cycle) for cycle in cycles)


def test_the_cycle_check_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.b import thing\n")
    (package / "b.py").write_text("thing = 1\n\ndef late():\n    from . import c\n")
    (package / "c.py").write_text("import pkg.a\n")
    (package / "d.py").write_text("from .a import thing\nimport os\n")
    graph = module_imports(package, "pkg")
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": {"pkg.a"}, "pkg.d": {"pkg.a"}}
    assert import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


HEAVY = ("torch", "matplotlib")
PROBE = """import json, sys
from protolab.runner.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "heavy": [name for name in %r if name in sys.modules]}))
""" % (HEAVY,)


@pytest.mark.parametrize("arguments", [["list"], ["--help"], ["run", "--help"]])
def test_the_command_line_lists_and_helps_without_torch_or_matplotlib(tmp_path, arguments):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "light.ipynb", STANDARD_PARAMETERS + "epochs: int = 5  # passes\n", "x = 1",
                   title="Light experiment")
    (notebooks / "profiles.yaml").write_text("light:\n  smoke: {epochs: 2}\n")
    completed = subprocess.run([sys.executable, "-c", PROBE, "--notebooks", str(notebooks), *arguments],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    answer = json.loads(completed.stdout.splitlines()[-1])
    assert answer == {"code": 0, "heavy": []}
    assert ("light — Light experiment" if arguments == ["list"] else "usage: protolab") in completed.stdout
