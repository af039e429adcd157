"""The install routes agree, the installed torch/torchvision pair works, and the package keeps its layout:
the science modules do not depend on the platform (``protolab.runner``)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from protolab.runner.grid import imported_names

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lib" / "protolab"
# The modules that may use the runner, and what: figures.py is the notebooks' side of the platform
# (parameters cells, the checkout, Markdown tables); zsl/grid.py is the grid set-up of the two IPN study
# notebooks, run by the grid cache. Atomic writes, the dry-run meter and seeding are leaves in core/.
RUNNER_CLIENTS = {
    "figures.py": {"protolab.runner.parameters", "protolab.runner.project", "protolab.runner.report",
                   "protolab.runner.scratch"},
    "zsl/grid.py": {"protolab.runner.grid", "protolab.runner.model_grid"},
    "fewshot/cells.py": {"protolab.runner.grid", "protolab.runner.model_grid"},
}


def test_environment_yml_pins_match_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict))
    assert set(pip_section) - {"-e ."} == pins
    assert "-e ." in pip_section


def test_installed_torchvision_runs_its_compiled_ops_with_the_installed_torch():
    """A mismatched torch/torchvision pair imports, then fails on the first compiled op (``nms``)."""
    script = ("import torch, torchvision\n"
              "boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])\n"
              "print(torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5).tolist())")
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[0, 2]"


def _protolab_imports(path: Path, lib: Path = ROOT / "lib") -> set[str]:
    """Absolute names of the ``protolab`` modules ``path`` (under ``lib``) imports, at module level or inside
    functions; ``from protolab.x import y`` gives both ``protolab.x`` and ``protolab.x.y``, since ``y`` may be a
    submodule."""
    parts = path.relative_to(lib).with_suffix("").parts
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    return {name for name in imported_names(path, module) if name == "protolab" or name.startswith("protolab.")}


def _runner_imports(path: Path, lib: Path = ROOT / "lib") -> set[str]:
    return {name for name in _protolab_imports(path, lib) if name.startswith("protolab.runner.")}


def test_science_modules_import_no_more_of_the_runner_than_atomic_writes():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if PACKAGE / "runner" in path.parents:
            continue
        name = str(path.relative_to(PACKAGE))
        allowed = RUNNER_CLIENTS.get(name, set())
        extra = {module for module in _runner_imports(path) if module.rpartition(".")[0] not in allowed
                 and module not in allowed}
        if extra and name != "__main__.py":  # ``python -m protolab`` is the runner's command line
            offenders[name] = sorted(extra)
    assert not offenders, f"science modules importing the runner: {offenders}"


def test_core_modules_are_leaves():
    """core/ holds what every part of the package may use; it imports nothing else from protolab."""
    imports = {path.name: sorted(_protolab_imports(path)) for path in sorted((PACKAGE / "core").glob("*.py"))}
    assert len(imports) >= 5 and not any(imports.values()), imports


def test_the_import_check_sees_relative_and_absolute_imports(tmp_path):
    assert {"protolab.core.atomic", "protolab.core.atomic.atomic_write"} <= _protolab_imports(
        PACKAGE / "training" / "loops.py")
    assert not _runner_imports(PACKAGE / "training" / "loops.py")
    path = tmp_path / "protolab" / "data" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text("from ..runner import execute\nimport protolab.runner.cli\nfrom protolab.runner.grid import run_grid\n")
    assert {"protolab.runner.execute", "protolab.runner.cli", "protolab.runner.grid"} <= _runner_imports(path, tmp_path)


def test_the_console_script_and_python_m_protolab_are_the_runner_cli():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"protolab": "protolab.runner.cli:main"}
    completed = subprocess.run([sys.executable, "-m", "protolab", "--help"], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0 and "{list,run,report,clean,data}" in completed.stdout


def test_every_package_the_library_imports_is_declared_and_pinned():
    """A package imported directly must not arrive only as another one's dependency: pyproject pins it (==)."""
    from importlib.metadata import packages_distributions

    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "protolab"}
    distributions = packages_distributions()
    unknown = sorted(name for name in third_party if name not in distributions)
    assert not unknown, f"imported but not installed: {unknown}"
    pins = {}
    for requirement in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
        name, _, version = requirement.partition("==")
        pins[name.lower().replace("_", "-")] = version
    needed = {distributions[name][0].lower().replace("_", "-"): name for name in third_party}
    assert {"torch", "numpy", "psutil", "cloudpickle", "fonttools"} <= needed.keys()
    missing = sorted(f"{distribution} (import {module})" for distribution, module in needed.items()
                     if not pins.get(distribution))
    assert not missing, f"imported directly but not pinned with == in pyproject.toml: {missing}"
