"""The environment a notebook's process runs in, locally or in a SLURM job: headless, its own Jupyter dirs, threads.

The runner computes the variables here (:func:`runner_variables`); the process that starts papermill, this one
or a SLURM job on a compute node, puts them on top of its own environment (:func:`headless_environment`). The
kernels' IPython directory holds a start-up file (:func:`write_kernel_startup`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from protolab.runner.allocator import allocator_environment
from protolab.runner.kernel_paths import NATIVE_KERNELS, kernel_path_environment


def headless_environment(variables: Mapping[str, str]) -> dict[str, str]:
    """The notebook process's environment: this process's (on a SLURM node: the job's) plus ``variables``
    (:func:`runner_variables`). A JupyterLab session name inherited from a terminal (``JPY_SESSION_NAME``) is
    dropped, or the kernel would take another notebook for the one it runs, and so is submitit's description
    of the job running it (``SUBMITIT_*``), which would make the kernel's own submissions take it for theirs."""
    env = {key: value for key, value in os.environ.items()
           if key != "JPY_SESSION_NAME" and not key.startswith("SUBMITIT_")}
    env.update(variables)
    return env


KERNEL_STARTUP = ("# protolab's runner: this kernel ends with its papermill process, even one killed outright.\n"
                  "__import__('protolab.runner.processes', fromlist=['end_with_parent']).end_with_parent()\n")


def ipython_dir(run_dir: Path) -> Path:
    """The ``IPYTHONDIR`` of a run's kernels."""
    return Path(run_dir) / ".ipython"


def write_kernel_startup(run_dir: Path) -> Path:
    """Write the IPython start-up file every kernel of the run in ``run_dir`` executes before its first cell:
    :func:`protolab.runner.processes.end_with_parent`, leaving no name in the notebook's namespace. Returns its
    path."""
    path = ipython_dir(run_dir) / "profile_default" / "startup" / "00-protolab-end-with-parent.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(KERNEL_STARTUP)
    return path


PROGRESS_DIR = "PROTOLAB_PROGRESS_DIR"
"""Environment variable naming the folder where a run's grids report their models done."""


def models_progress_dir(run_dir: Path) -> Path:
    """Where a run's grids report their models done (:func:`protolab.runner.grid.report_models`), read by the
    progress line."""
    return Path(run_dir) / "progress"


def runner_variables(run_dir: Path, run_id: str, threads: int, notebooks: Path, stage: Path,
                     native_kernels: bool = False) -> dict[str, str]:
    """What the runner sets for a notebook: non-interactive backend, writable IPython/Jupyter dirs, no HOME needed.

    Jupyter's data/config dirs point into the run so that no user kernelspec named ``python3``
    can substitute another interpreter for this one. ``PROTOLAB_STAGE_DIR`` tells
    :func:`protolab.figures.start` where to write. The kernel and its workers get ``threads`` threads (a
    user's ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` kept), the tuned allocator of :mod:`protolab.runner.allocator`
    and the pinned CPU code path of :mod:`protolab.runner.kernel_paths` (the CPU's own with ``native_kernels``: the
    notebook's ``kernels: native`` in profiles.yaml).
    """
    variables = {
        "MPLBACKEND": "Agg",
        "IPYTHONDIR": str(ipython_dir(run_dir)),
        "JUPYTER_RUNTIME_DIR": str(run_dir / ".jupyter" / "runtime"),
        "JUPYTER_DATA_DIR": str(run_dir / ".jupyter" / "data"),
        "JUPYTER_CONFIG_DIR": str(run_dir / ".jupyter" / "config"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "MPLCONFIGDIR": str(run_dir / ".matplotlib"),
        "PROTOLAB_RUN_ID": run_id,
        "PROTOLAB_NOTEBOOKS_DIR": str(notebooks),
        "PROTOLAB_STAGE_DIR": str(stage),
        "PYTHONUNBUFFERED": "1",
        PROGRESS_DIR: str(models_progress_dir(run_dir)),
    }
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        variables[name] = os.environ.get(name, str(threads))
    if native_kernels:
        variables[NATIVE_KERNELS] = "1"
    variables.update(allocator_environment({**os.environ, **variables}))
    variables.update(kernel_path_environment({**os.environ, **variables}))
    return variables
