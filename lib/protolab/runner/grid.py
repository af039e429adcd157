"""Experiment grids whose finished cells are kept on disk, so an interrupted run resumes where it stopped.

A *cell* is one point of a grid (say, one model variant and one seed), described by a JSON-able dict.
:func:`run_grid` calls ``compute(cell)`` for every cell whose result is not stored yet and stores each
result the moment it exists, as ``<directory>/<key>.pt`` written atomically, so a run killed at any
point loses at most the cell it was computing. ``key`` hashes the cell together with a ``fingerprint``
of the code that computes it (:func:`source_fingerprint`): after the code changes, nothing made by the
old code is reused.

Results are dicts of numbers, strings, lists, dicts and tensors, loaded back with
``torch.load(weights_only=True)``: a cache file can hold no code.

Every cell is computed with one torch thread, so its result does not depend on how many cells run at
once; with ``workers > 1`` that many cells run in parallel worker processes (joblib's ``loky``: fresh
interpreters, never a bare ``fork`` of a process whose OpenMP threads are running, which can deadlock).
``compute`` may be a closure defined in a notebook: it is sent to the workers with cloudpickle.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Mapping, NamedTuple, Sequence

import torch
from joblib import Parallel, delayed
from tqdm import tqdm

from protolab.reproducibility import one_thread
from protolab.runner.atomic import atomic_write

Cell = Mapping[str, Any]


class GridRun(NamedTuple):
    """Results in the order of the cells, and whether each was ``"computed"`` now or ``"cached"``."""

    results: list[dict[str, Any]]
    sources: list[str]


def cell_key(cell: Cell, fingerprint: str = "") -> str:
    """Stable hex key of ``cell`` (key order does not matter) and ``fingerprint``."""
    canonical = json.dumps({"cell": cell, "fingerprint": fingerprint}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


def source_fingerprint(*modules: ModuleType) -> str:
    """Hash of the Python sources of ``modules`` (every ``.py`` file under a package) and torch's version."""
    digest = hashlib.sha256(torch.__version__.encode())
    for module in modules:
        root = Path(module.__file__)
        files = sorted(root.parent.rglob("*.py")) if hasattr(module, "__path__") else [root]
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def _load(path: Path, cell: Cell) -> dict[str, Any] | None:
    """The stored result of ``cell`` at ``path``, or None when absent or unreadable (then recomputed)."""
    if not path.exists():
        return None
    try:
        stored = torch.load(path, weights_only=True)
    except Exception as error:  # a damaged file is recomputed, never trusted
        warnings.warn(f"ignoring unreadable cached cell {path.name}: {error}", stacklevel=3)
        return None
    if not isinstance(stored, dict) or stored.get("cell") != json.loads(json.dumps(cell)):
        warnings.warn(f"ignoring cached cell {path.name}: it was stored for another cell", stacklevel=3)
        return None
    return stored["result"]


def _compute_and_store(compute: Callable[[Cell], dict[str, Any]], cell: Cell, path: Path, index: int = 0
                       ) -> tuple[int, dict[str, Any]]:
    """``(index, compute(cell))``, computed with one torch thread and stored at ``path`` before it is returned."""
    with one_thread():
        result = compute(cell)
    record = {"cell": json.loads(json.dumps(cell)), "result": result}
    atomic_write(path, lambda handle: torch.save(record, handle))
    return index, result


def run_grid(cells: Sequence[Cell], compute: Callable[[Cell], dict[str, Any]], directory: Path,
             fingerprint: str = "", reuse: bool = True, progress: bool = True, workers: int = 1) -> GridRun:
    """Results of ``compute`` on every cell, reusing those stored under ``directory``.

    Parameters
    ----------
    cells : JSON-able dicts; two equal cells share one result.
    compute : ``cell -> result`` dict (numbers, strings, lists, dicts, tensors); called with one torch thread.
    directory : where results are stored (created if needed).
    fingerprint : identifies the code and data behind ``compute`` (e.g. :func:`source_fingerprint`).
    reuse : False recomputes every cell and overwrites what was stored.
    progress : report cells done / total as cells finish: a tqdm bar on a terminal, else a plain line
        ``grid: k/n cells done (m cached)`` on stdout (so it lands in the notebook's output and the run's log).
    workers : cells computed at once in worker processes; 1 computes them one by one in this process.
        Each worker imports torch afresh (seconds), and a failing or interrupted cell stops them all.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{cell_key(cell, fingerprint)}.pt" for cell in cells]
    results = [_load(path, cell) if reuse else None for cell, path in zip(cells, paths)]
    sources = ["computed" if result is None else "cached" for result in results]
    todo = [i for i, result in enumerate(results) if result is None]
    if workers > 1 and len(todo) > 1:
        parallel = Parallel(n_jobs=min(workers, len(todo)), backend="loky", return_as="generator_unordered")
        finished = parallel(delayed(_compute_and_store)(compute, cells[i], paths[i], i) for i in todo)
    else:
        finished = (_compute_and_store(compute, cells[i], paths[i], i) for i in todo)
    cached, total = len(cells) - len(todo), len(cells)
    terminal = sys.stderr.isatty()
    if progress and not terminal:
        print(f"grid: {cached}/{total} cells done ({cached} cached)", flush=True)
    bar = tqdm(finished, total=total, initial=cached, desc=f"grid ({cached} cached)",
               disable=not (progress and terminal), leave=False)
    for done, (index, result) in enumerate(bar, start=cached + 1):
        results[index] = result
        if progress and not terminal:
            print(f"grid: {done}/{total} cells done ({cached} cached)", flush=True)
    return GridRun(results, sources)
