"""Experiment grids whose finished cells are kept on disk, so an interrupted run resumes where it stopped.

A *cell* is one point of a grid (say, one model variant and one seed), described by a JSON-able dict.
:func:`run_grid` calls ``compute(cell)`` for every cell whose result is not stored yet and stores each
result the moment it exists, as ``<directory>/<key>.pt`` written atomically, so a run killed at any
point loses at most the cell it was computing. ``key`` hashes the cell together with a ``fingerprint``
of the code that computes it (:func:`code_fingerprint`: the modules it executes, not the plots, report or
runner): after that code changes, nothing made by the old code is reused.

Results are dicts of numbers, strings, lists, dicts and tensors, loaded back with
``torch.load(weights_only=True)``: a cache file can hold no code.

Every cell is computed with one torch thread, so its result does not depend on how many cells run at
once; with ``workers > 1`` that many cells run in parallel worker processes (joblib's ``loky``: fresh
interpreters, never a bare ``fork`` of a process whose OpenMP threads are running, which can deadlock).
``compute`` may be a closure defined in a notebook: it is sent to the workers with cloudpickle.

With ``executor="slurm"`` each missing cell is one SLURM job instead (:func:`protolab.runner.slurm.run_cells`,
resources from ``$PROTOLAB_SLURM_CONFIG``): the job computes the cell and writes its result into ``directory``
itself, atomically and under the same key, so ``directory`` must be on a file system the nodes share. A cell
whose job fails or is cancelled stays missing while the others are stored; the run then raises, naming it, and
the next run computes only the missing cells. Interrupting the run cancels the jobs it submitted.

In a dry run (:mod:`protolab.core.dryrun`) nothing is read from or written to ``directory``: the first cell is computed
in this process (its metered loops stop early) and counted once per cell that each worker would compute, and its
result stands for every cell, so that the notebook runs to its end.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import sys
import time
import warnings
from contextlib import closing
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

import torch
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from protolab.core import dryrun
from protolab.core.atomic import atomic_write, atomic_write_text
from protolab.core.reproducibility import one_thread
from protolab.runner.environment import PROGRESS_DIR
from protolab.runner.processes import exit_when_orphaned
from protolab.runner.slurm import EXECUTORS, run_cells

Cell = Mapping[str, Any]


class GridRun(NamedTuple):
    """Results in the order of the cells, and whether each was ``"computed"`` now or ``"cached"``."""

    results: list[dict[str, Any]]
    sources: list[str]


def cell_key(cell: Cell, fingerprint: str = "") -> str:
    """Stable hex key of ``cell`` (key order does not matter), ``fingerprint`` and the CPU code path PyTorch's
    kernels take (:mod:`protolab.runner.kernel_paths`: a result computed on another path has other numbers)."""
    canonical = json.dumps({"cell": cell, "fingerprint": fingerprint,
                            "cpu_capability": torch.backends.cpu.get_cpu_capability()},
                           sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]


NOT_FINGERPRINTED = ("runner", "plots", "figures", "claims", "paper_results")
"""Modules of a package (and their submodules) that :func:`code_fingerprint` neither hashes nor follows: the
platform (``runner``: how and where cells run, their cache, the report) and the presentation of results
(``plots``, ``figures``, ``claims``, ``paper_results``), which come after a result is computed and cannot
change it. Editing them keeps every cached result."""


def _source_file(base: Path, name: str) -> Path | None:
    """The file of module ``name`` under the folder ``base`` that holds its top-level package, or None."""
    path = base.joinpath(*name.split("."))
    for candidate in (path.with_name(path.name + ".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, name: str) -> set[str]:
    """Absolute names of what the module ``name`` (source at ``path``) imports anywhere in its body (module
    level or inside functions), relative imports resolved; ``from a import b`` gives ``a`` and ``a.b``, since
    ``b`` may be a submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            base = ".".join(parts + ([node.module] if node.module else []))
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def fingerprinted_modules(*modules: ModuleType) -> dict[str, Path]:
    """The modules :func:`code_fingerprint` hashes for ``modules``, by absolute name in sorted order, with
    their source files.

    These are ``modules`` themselves, every module of their top-level package they import, transitively, and
    the packages above each (their ``__init__.py`` runs on import), except :data:`NOT_FINGERPRINTED` and what
    only those import. Imports are read from the sources with :mod:`ast`, nothing is imported: ``import`` and
    ``from … import`` statements anywhere in a module (at module level or inside functions), relative ones
    included.
    """
    found: dict[str, Path] = {}
    pending = []
    for module in modules:
        if getattr(module, "__file__", None) is None:
            raise ValueError(f"module {module.__name__} has no source file to fingerprint")
        depth = module.__name__.count(".") + hasattr(module, "__path__")
        pending.append((module.__name__, Path(module.__file__).parents[depth], True))
    while pending:
        name, base, requested = pending.pop()
        top, _, inner = name.partition(".")
        if name in found or (not requested and any(inner == excluded or inner.startswith(f"{excluded}.")
                                                   for excluded in NOT_FINGERPRINTED)):
            continue
        path = _source_file(base, name)
        if path is None:  # an attribute (``from a import function``), not a module
            continue
        found[name] = path
        packages = [name.rsplit(".", up)[0] for up in range(1, name.count(".") + 1)]
        pending += [(imported, base, False) for imported in packages + sorted(imported_names(path, name))
                    if imported.partition(".")[0] == top]
    return dict(sorted(found.items()))


def code_fingerprint(*modules: ModuleType) -> str:
    """Hex hash of the code a cached result depends on: the sources of :func:`fingerprinted_modules`
    (``modules``, the modules of their package they import, transitively, and the packages above them) and
    torch's version.

    Give the modules that define the computation (for a grid, the module of its ``compute``): the key then
    follows the model, training and data code it runs and survives edits to the runner, plots, figures,
    claims and paper results (:data:`NOT_FINGERPRINTED`) and to modules it never imports. Modules are hashed
    by absolute name and source, in name order: the key is the same in every process and wherever the
    package is installed.

    Not covered, so a change there keeps the key: code outside the package (a ``compute`` defined in a
    notebook, third-party libraries other than torch's version), data files the code reads, and imports by
    computed names (``importlib``). A caller whose computation lives in a notebook
    appends that code's source (e.g. the notebook cell's) to the fingerprint string it passes to
    :func:`run_grid`.
    """
    digest = hashlib.sha256(torch.__version__.encode())
    for name, path in fingerprinted_modules(*modules).items():
        source = path.read_bytes()
        digest.update(f"\n{name} {len(source)}\n".encode())
        digest.update(source)
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


def _compute_in_worker(compute: Callable[[Cell], dict[str, Any]], cell: Cell, path: Path, index: int
                       ) -> tuple[int, dict[str, Any]]:
    """:func:`_compute_and_store` in a worker process that ends when its parent (the kernel) does
    (:func:`~protolab.runner.processes.exit_when_orphaned`), even one killed outright."""
    exit_when_orphaned()
    return _compute_and_store(compute, cell, path, index)


def _compute_stored_in_job(compute_file: str, cell: Cell, path: str) -> None:
    """A cell's SLURM job: compute it with the function pickled in ``compute_file`` and store it at ``path``."""
    import cloudpickle  # a dependency of joblib and submitit

    with open(compute_file, "rb") as handle:
        compute = cloudpickle.load(handle)
    _compute_and_store(compute, cell, Path(path))


def _jobs(compute: Callable[[Cell], dict[str, Any]], cells: Sequence[Cell], paths: Sequence[Path],
          todo: Sequence[int], directory: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(index, result)`` of each cell of ``todo`` as its SLURM job stores it; ``compute`` is pickled once for
    all jobs into ``<directory>/.jobs/<run>/`` (with the jobs' logs), removed when every cell is stored."""
    import cloudpickle

    folder = directory / ".jobs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    folder.mkdir(parents=True)
    compute_file = folder / "compute.pkl"
    atomic_write(compute_file, lambda handle: cloudpickle.dump(compute, handle))
    arguments = [(str(compute_file), cells[i], str(paths[i])) for i in todo]
    with closing(run_cells(_compute_stored_in_job, arguments, folder, name=f"protolab-grid-{directory.name}")) as jobs:
        for position in jobs:
            index = todo[position]
            result = _load(paths[index], cells[index])
            if result is None:
                raise RuntimeError(f"the job of cell {index} ended without storing {paths[index]}")
            yield index, result
    shutil.rmtree(folder, ignore_errors=True)


def report_models(grid: str, done: int, total: int) -> None:
    """Write ``{"done": done, "total": total}`` for ``grid`` into ``$PROTOLAB_PROGRESS_DIR/<grid>.json``
    (atomically; nothing without the variable): the runner's progress line sums these over a run
    (:func:`protolab.runner.progress.models_progress`)."""
    folder = os.environ.get(PROGRESS_DIR)
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        atomic_write_text(Path(folder) / f"{grid}.json", json.dumps({"done": done, "total": total}))


def run_grid(cells: Sequence[Cell], compute: Callable[[Cell], dict[str, Any]], directory: Path,
             fingerprint: str = "", reuse: bool = True, progress: bool = True, workers: int = 1,
             executor: str = "local") -> GridRun:
    """Results of ``compute`` on every cell, reusing those stored under ``directory``.

    Parameters
    ----------
    cells : JSON-able dicts; two equal cells share one result.
    compute : ``cell -> result`` dict (numbers, strings, lists, dicts, tensors); called with one torch thread.
    directory : where results are stored (created if needed).
    fingerprint : identifies the code and data behind ``compute`` (e.g. :func:`code_fingerprint`).
    reuse : False recomputes every cell and overwrites what was stored.
    progress : report cells done / total as cells finish: a tqdm bar on a terminal, else a plain line
        ``grid: k/n cells done (m cached)`` on stdout (so it lands in the notebook's output and the run's log).
    workers : cells computed at once in worker processes; 1 computes them one by one in this process.
        Each worker imports torch afresh (seconds), and a failing or interrupted cell stops them all.
    executor : ``"local"`` (this process or ``workers`` worker processes) or ``"slurm"``: one SLURM job per
        missing cell, all submitted at once (``workers`` is not used), with the resources of
        ``$PROTOLAB_SLURM_CONFIG``; a failed cell does not stop the others (see the module's docstring).
    """
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if dryrun.dry_run_steps() and cells:
        rounds = 1 if executor == "slurm" else -(-len(cells) // max(1, workers))  # cells one worker computes
        with dryrun.repeated(rounds), one_thread():
            result = compute(cells[0])
        return GridRun([result] * len(cells), ["dry run"] * len(cells))
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{cell_key(cell, fingerprint)}.pt" for cell in cells]
    results = [_load(path, cell) if reuse else None for cell, path in zip(cells, paths)]
    sources = ["computed" if result is None else "cached" for result in results]
    todo = [i for i, result in enumerate(results) if result is None]
    if executor == "slurm" and todo:
        finished = _jobs(compute, cells, paths, todo, directory)
    elif workers > 1 and len(todo) > 1:
        parallel = Parallel(n_jobs=min(workers, len(todo)), backend="loky", return_as="generator_unordered")
        finished = parallel(delayed(_compute_in_worker)(compute, cells[i], paths[i], i) for i in todo)
    else:
        finished = (_compute_and_store(compute, cells[i], paths[i], i) for i in todo)
    cached, total = len(cells) - len(todo), len(cells)
    terminal = sys.stderr.isatty()
    if progress and not terminal:
        print(f"grid: {cached}/{total} cells done ({cached} cached)", flush=True)
    report_models(directory.name, cached, total)
    bar = tqdm(finished, total=total, initial=cached, desc=f"grid ({cached} cached)",
               disable=not (progress and terminal), leave=False)
    try:
        for done, (index, result) in enumerate(bar, start=cached + 1):
            results[index] = result
            report_models(directory.name, done, total)
            if progress and not terminal:
                print(f"grid: {done}/{total} cells done ({cached} cached)", flush=True)
    finally:
        if executor == "slurm" and todo:
            finished.close()  # cancels the jobs still running when the loop stopped early
    return GridRun(results, sources)
