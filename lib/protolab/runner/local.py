"""The default executor: each notebook a child process of the runner, in its own session, watched.

An executor starts a notebook's papermill process for :func:`protolab.runner.execute.run_notebooks` and hands back
an object with ``wait(timeout)``, ``stop()`` and ``pids``; :class:`~protolab.runner.slurm.SlurmNotebooks` is the
other one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from protolab.runner.environment import headless_environment
from protolab.runner.processes import ProcessTree, launch_logged
from protolab.runner.slurm import JOBS_FILE_ENV, cancel_listed


class LocalProcesses:
    """The default executor: each notebook is a child process of this one, in its own session, watched."""

    name = "local"

    def check(self, *, timeout: float | None) -> None:
        """Nothing to check before a local run."""

    def threads(self, jobs: int) -> int:
        """Torch/OpenMP threads of each of ``jobs`` notebooks running at once: the cores shared among them."""
        return max(1, (os.cpu_count() or 1) // jobs)

    def kernel_variables(self, run_dir: Path) -> dict[str, str]:
        return {}

    def launch(self, name: str, command: list[str], variables: Mapping[str, str], log: Path,
               timeout: float | None) -> LocalProcess:
        tree = launch_logged(command, log, headless_environment(variables))
        return LocalProcess(tree, Path(variables[JOBS_FILE_ENV]))


class LocalProcess:
    """A notebook's process tree; stopping it also cancels the SLURM jobs its kernel submitted (grid cells)."""

    job_id, where, failure, wall_time_s = "", "", "", None

    def __init__(self, tree: ProcessTree, jobs_file: Path) -> None:
        self.tree, self.jobs_file = tree, jobs_file

    @property
    def pids(self) -> list[int]:
        return self.tree.pids

    def wait(self, timeout: float | None) -> int | None:
        return self.tree.wait(timeout)

    def stop(self) -> None:
        self.tree.stop()
        cancel_listed(self.jobs_file)
