"""Scratch folders: what a notebook may throw away once it has finished (training checkpoints), kept in its run.

A notebook run by the runner gets ``runs/<run-id>/<notebook>.scratch`` (``$PROTOLAB_SCRATCH_DIR``, from
:func:`scratch_variables`); one run interactively gets ``runs/<session run id>/<notebook>.scratch``
(:func:`protolab.figures.scratch_dir`). The runner removes a notebook's folder when the notebook succeeded; an
interrupted, failed or timed-out run leaves it where the user finds it (e.g. to resume from its checkpoints),
until the next run or ``protolab clean`` removes every scratch folder whose run has ended (:func:`clean_scratch`).

Whether a run has ended is read from the ``owner.json`` its process writes into the run's folder
(:func:`claim_run`): the process id, its start time and the host. A run whose owner is still alive on this host,
or that ran on another host, is never touched.
"""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import psutil

SCRATCH_ENV = "PROTOLAB_SCRATCH_DIR"
OWNER_FILE = "owner.json"
SUFFIX = ".scratch"


def scratch_folder(run_dir: Path, notebook: str) -> Path:
    """``notebook``'s scratch folder in the run folder ``run_dir`` (not created)."""
    return Path(run_dir) / f"{notebook}{SUFFIX}"


def scratch_variables(run_dir: Path, notebook: str) -> dict[str, str]:
    """The environment that gives ``notebook``'s process its scratch folder in ``run_dir``."""
    return {SCRATCH_ENV: str(scratch_folder(run_dir, notebook))}


def claim_run(run_dir: Path) -> None:
    """Record this process as the owner of ``run_dir`` (created if needed): while it lives, the run's scratch
    folders are kept."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    me = psutil.Process()
    (run_dir / OWNER_FILE).write_text(json.dumps({"pid": me.pid, "started": me.create_time(),
                                                  "host": socket.gethostname()}))


def run_has_ended(run_dir: Path) -> bool:
    """Whether the process that owns ``run_dir`` (:func:`claim_run`) has ended. A run without an owner file or
    whose owner ran on another host counts as still running (nothing is known of it)."""
    try:
        owner = json.loads((Path(run_dir) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    if owner.get("host") != socket.gethostname():
        return False
    try:
        return psutil.Process(owner["pid"]).create_time() != owner["started"]
    except psutil.NoSuchProcess:
        return True


def clean_scratch(runs_dir: Path) -> list[tuple[Path, int]]:
    """Remove every ``runs_dir/*/*.scratch`` folder whose run has ended (:func:`run_has_ended`); returns each
    folder removed with the bytes it held."""
    removed = []
    for folder in sorted(Path(runs_dir).glob(f"*/*{SUFFIX}")):
        if folder.is_dir() and run_has_ended(folder.parent):
            size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())
            shutil.rmtree(folder, ignore_errors=True)
            if not folder.exists():
                removed.append((folder, size))
    return removed


def remove_scratch(run_dir: Path, notebook: str) -> None:
    """Remove ``notebook``'s scratch folder in ``run_dir``, if any (the notebook succeeded)."""
    shutil.rmtree(scratch_folder(run_dir, notebook), ignore_errors=True)

