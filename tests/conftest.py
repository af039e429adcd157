"""Shared test setup: headless plotting, an isolated dataset cache, notebook fixtures."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if WORKER:  # one torch thread per pytest-xdist worker (and per kernel it starts): 2 workers on 2 cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SLURM tests run on one worker (``--dist loadgroup``): one cluster on localhost at a time."""
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dataset cache for the whole session (shared with notebooks the runner starts, and between the
    pytest-xdist workers: cache entries are written atomically, so two workers building one are safe)."""
    if WORKER:
        cache = tmp_path_factory.getbasetemp().parent / "protolab-cache"
        cache.mkdir(exist_ok=True)
    else:
        cache = tmp_path_factory.mktemp("protolab-cache")
    previous = os.environ.get("PROTOLAB_CACHE_DIR")
    os.environ["PROTOLAB_CACHE_DIR"] = str(cache)
    yield cache
    if previous is None:
        os.environ.pop("PROTOLAB_CACHE_DIR", None)
    else:
        os.environ["PROTOLAB_CACHE_DIR"] = previous


STANDARD_PARAMETERS = '''dataset: str = "toy"  # which data
data_root: str = ""  # where real datasets live
profile: str = "default"  # smoke | default | full
seed: int = 0  # [≥ 0] random seed
device: str = "auto"  # [device] cpu, cuda or auto
out_dir: str = "figures"  # where outputs go
'''


def write_notebook(path: Path, parameters: str, *cells: str, title: str | None = None) -> Path:
    """Write a notebook whose first code cell (tagged ``parameters``) is ``parameters``."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameter_cell = nbformat.v4.new_code_cell(parameters)
    parameter_cell.metadata["tags"] = ["parameters"]
    notebook.cells = [nbformat.v4.new_markdown_cell(f"# {title or path.stem}"), parameter_cell]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


@pytest.fixture
def fresh_grid_cache(tmp_path: Path, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache holding the session's built datasets but no grid results (trained models)."""
    cache = tmp_path / "cache"
    shutil.copytree(isolated_cache, cache, ignore=shutil.ignore_patterns("grids"))
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(cache))
    return cache
