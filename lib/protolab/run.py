"""Batch execution of experiment notebooks with papermill, headless, in parallel child processes.

Each notebook runs as its own ``python -m papermill`` process with a hard wall-clock limit (papermill
alone has none and can hang on a dead kernel). Parameters are validated against every notebook's
typed parameters cell before anything runs. A failing notebook does not stop the others; the summary
names each failure's cell and error line, and the report is rebuilt from whatever was written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

import nbformat
import pandas as pd
import yaml

from protolab.atomic import atomic_write_text
from protolab.figures import markdown_table
from protolab.notebooks import Experiment, ParameterError, discover, notebooks_dir
from protolab.report import build_report, record_runs

KERNEL_NAME = "python3"


@dataclass
class NotebookResult:
    """How one notebook execution ended."""

    notebook: str
    status: str  # "ok", "failed" or "timeout"
    wall_time_s: float
    run_id: str
    profile: str
    output: str
    failing_cell: str = ""
    error: str = ""


def plan(experiments: Mapping[str, Experiment], names: Sequence[str], profile: str,
         overrides: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Resolved parameters of each selected notebook; every problem is reported at once.

    An override applies to each selected notebook that declares it; one that no selected notebook
    declares is refused, as is an unknown notebook name or a value of the wrong type.
    """
    problems = [f"unknown notebook {name!r}; known: {', '.join(experiments)}" for name in names if name not in experiments]
    selected = [experiments[name] for name in (names or experiments) if name in experiments]
    declared = {name for experiment in selected for name in experiment.parameters}
    problems += [f"unknown parameter {key!r}: no selected notebook declares it" for key in overrides if key not in declared]
    resolved = {}
    for experiment in selected:
        try:
            mine = {key: value for key, value in overrides.items() if key in experiment.parameters}
            resolved[experiment.name] = experiment.resolve(profile, mine)
        except ParameterError as error:
            problems.append(f"{experiment.name}: {error}")
    if problems:
        raise ParameterError("refused before running anything:\n  " + "\n  ".join(problems))
    return resolved


def run_notebooks(names: Sequence[str] = (), *, profile: str = "default", overrides: Mapping[str, str] | None = None,
                  jobs: int = 1, timeout: float = 3600, out_dir: Path | None = None, runs_dir: Path | None = None,
                  notebooks: Path | None = None) -> list[NotebookResult]:
    """Execute notebooks into ``runs/<run-id>/``, record their outcome in ``out_dir`` and rebuild the report."""
    directory = Path(notebooks or notebooks_dir())
    experiments = discover(directory)
    root = directory.resolve().parent
    extra = dict(overrides or {})
    out_dir = Path(extra.get("out_dir") or out_dir or root / "figures").resolve()
    extra["out_dir"] = str(out_dir)
    parameters = plan(experiments, names, profile, extra)
    run_id = f"{datetime.now():%Y%m%d-%H%M%S}-{profile}-{os.getpid()}"
    run_dir = Path(runs_dir or root / "runs").resolve() / run_id
    run_dir.mkdir(parents=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    children = _Children()
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        results = list(pool.map(
            lambda name: _execute(experiments[name], parameters[name], run_dir, run_id, timeout, threads, children),
            parameters))
    except BaseException:
        children.stop()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    record_runs(out_dir, [asdict(result) for result in results])
    build_report(out_dir, order=list(experiments))
    _save_summary(run_dir, results)
    return results


def summary_table(results: Sequence[NotebookResult]) -> pd.DataFrame:
    """Name, status, wall time, failing cell and error line of each notebook."""
    return pd.DataFrame([{"notebook": r.notebook, "status": r.status, "wall time (s)": round(r.wall_time_s, 1),
                          "failing cell": r.failing_cell, "error": r.error} for r in results])


def headless_environment(run_dir: Path, run_id: str, threads: int, notebooks: Path) -> dict[str, str]:
    """The child's environment: non-interactive backend, writable IPython/Jupyter dirs, no HOME needed.

    Jupyter's data/config dirs point into the run so that no user kernelspec named ``python3``
    can substitute another interpreter for this one.
    """
    env = dict(os.environ)
    env.update({
        "MPLBACKEND": "Agg",
        "IPYTHONDIR": str(run_dir / ".ipython"),
        "JUPYTER_RUNTIME_DIR": str(run_dir / ".jupyter" / "runtime"),
        "JUPYTER_DATA_DIR": str(run_dir / ".jupyter" / "data"),
        "JUPYTER_CONFIG_DIR": str(run_dir / ".jupyter" / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLCONFIGDIR": str(run_dir / ".matplotlib"),
        "PROTOLAB_RUN_ID": run_id,
        "PROTOLAB_NOTEBOOKS_DIR": str(notebooks),
        "PYTHONUNBUFFERED": "1",
    })
    env.setdefault("OMP_NUM_THREADS", str(threads))
    env.setdefault("MKL_NUM_THREADS", str(threads))
    return env


class _Children:
    """The papermill processes started by one run; :meth:`stop` kills them all and starts no more.

    Each child runs in its own session, so interrupting the runner (Ctrl-C, SIGTERM) would otherwise
    leave notebooks executing in the background.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen] = []
        self._stopped = False

    def start(self, command: list[str], **kwargs: Any) -> subprocess.Popen | None:
        with self._lock:
            if self._stopped:
                return None
            process = subprocess.Popen(command, start_new_session=True, **kwargs)
            self._processes.append(process)
            return process

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for process in self._processes:
                kill_group(process)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group of ``process`` (started with ``start_new_session``) and reap it."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()


def _execute(experiment: Experiment, parameters: dict[str, Any], run_dir: Path, run_id: str,
             timeout: float, threads: int, children: _Children) -> NotebookResult:
    output = run_dir / f"{experiment.name}.ipynb"
    params_file = run_dir / f"{experiment.name}.parameters.yaml"
    params_file.write_text(yaml.safe_dump(parameters, sort_keys=False))  # papermill reads YAML: JSON's 2e-05 is a str there
    log = run_dir / f"{experiment.name}.log"
    command = [sys.executable, "-m", "papermill", str(experiment.path), str(output), "-f", str(params_file),
               "-k", KERNEL_NAME, "--cwd", str(run_dir), "--no-progress-bar", "--log-output"]
    started = time.monotonic()
    with open(log, "w") as log_handle:
        process = children.start(command, stdin=subprocess.DEVNULL, stdout=log_handle, stderr=subprocess.STDOUT,
                                 env=headless_environment(run_dir, run_id, threads, experiment.path.parent))
        try:
            code = None if process is None else process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(process)
            code = None
    wall = time.monotonic() - started
    result = NotebookResult(experiment.name, "ok", wall, run_id, parameters["profile"], str(output))
    if process is None:
        result.status, result.error = "cancelled", "the run was interrupted before this notebook started"
    elif code is None:
        result.status, result.error = "timeout", f"exceeded the {timeout:.0f} s limit"
    elif code != 0:
        result.status = "failed"
        result.failing_cell, result.error = _failure(output, log)
    return result


def _failure(output: Path, log: Path) -> tuple[str, str]:
    """The failing cell (``cell N``: the notebook's N-th code cell, the parameters cell being 1) and its
    ``Error: message`` line."""
    if output.exists():
        notebook = nbformat.read(output, as_version=4)
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"
                      and "injected-parameters" not in cell.metadata.get("tags", [])]
        for number, cell in enumerate(code_cells, start=1):
            for item in cell.get("outputs", []):
                if item.get("output_type") == "error":
                    first_line = str(item.get("evalue", "")).strip().splitlines()
                    return f"cell {number}", f"{item.get('ename')}: {first_line[0] if first_line else ''}"
    tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return "", tail[-1] if tail else "papermill exited with an error before executing a cell"


def _save_summary(run_dir: Path, results: Sequence[NotebookResult]) -> None:
    table = summary_table(results)
    atomic_write_text(run_dir / "summary.md", markdown_table(table))
    atomic_write_text(run_dir / "summary.json", json.dumps([asdict(r) for r in results], indent=2))
