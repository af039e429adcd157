"""The only way a notebook writes to ``figures/``: figures, tables and computed notes, with provenance.

A notebook calls :func:`start` once, right after its parameters cell, then :func:`save_figure`,
:func:`save_table` and :func:`save_text`. Every output gets a deterministic name
``<notebook>__<name>.<ext>``, is written atomically (a crash mid-write leaves the previous file
intact), and gets a JSON sidecar ``<notebook>__<name>.json`` holding its provenance: notebook,
parameters, seed, profile, dataset, run id, git commit, library versions and wall time.
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from protolab.atomic import atomic_write, atomic_write_text
from protolab.notebooks import discover, notebooks_dir

TRACKED_PACKAGES = ("protolab", "torch", "torchvision", "geoopt", "numpy", "pandas", "scikit-learn",
                    "matplotlib", "seaborn", "papermill")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class Session:
    """What every output of one notebook execution shares."""

    notebook: str
    title: str
    parameters: dict[str, Any]
    out_dir: Path
    run_id: str
    git_commit: str
    versions: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    data: str = ""

    def provenance(self, name: str, kind: str, files: list[str], caption: str) -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "title": self.title,
            "name": name,
            "kind": kind,
            "files": files,
            "caption": caption,
            "run_id": self.run_id,
            "profile": self.parameters.get("profile"),
            "seed": self.parameters.get("seed"),
            "dataset": {"name": self.parameters.get("dataset"), "description": self.data},
            "parameters": self.parameters,
            "git_commit": self.git_commit,
            "versions": self.versions,
            "wall_time_s": round(time.monotonic() - self.started, 3),
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }


_session: Session | None = None


def start(notebook: str, namespace: Mapping[str, Any]) -> Session:
    """Begin recording outputs of ``notebook``, reading its parameter values from ``namespace``.

    ``namespace`` is the notebook's ``globals()``; the parameter names come from the notebook's own
    parameters cell, so a value of the wrong type (e.g. injected by papermill directly) is refused
    here with its name. Applies the house plotting style and creates ``out_dir``.
    """
    global _session
    experiment = discover(notebooks_dir()).get(notebook)
    if experiment is None:
        raise ValueError(f"no notebook named {notebook!r} in {notebooks_dir()}")
    parameters = {name: p.type.check(name, namespace[name]) for name, p in experiment.parameters.items()}
    out_dir = Path(parameters.get("out_dir") or "figures")
    if not out_dir.is_absolute():
        out_dir = notebooks_dir().parent / out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    use_style()
    _session = Session(
        notebook=notebook,
        title=experiment.title,
        parameters=parameters,
        out_dir=out_dir,
        run_id=os.environ.get("PROTOLAB_RUN_ID") or "interactive-" + datetime.now().strftime("%Y%m%d-%H%M%S"),
        git_commit=_git_commit(notebooks_dir().parent),
        versions=_versions(),
    )
    return _session


def describe_data(description: str) -> None:
    """Record, for every later output and the report, which data produced the results."""
    _current().data = description


def use_style() -> None:
    """One visual style for every figure: seaborn whitegrid, readable fonts, colour-blind palette."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=1.05)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight"})


def save_figure(fig: plt.Figure, name: str, caption: str = "") -> list[Path]:
    """Write ``fig`` as ``<notebook>__<name>.png`` and ``.pdf`` (atomically) plus its sidecar."""
    session = _current()
    stem = _stem(session, name)
    png, pdf = session.out_dir / f"{stem}.png", session.out_dir / f"{stem}.pdf"
    atomic_write(png, lambda handle: fig.savefig(handle, format="png", metadata={"Software": None}))
    atomic_write(pdf, lambda handle: fig.savefig(handle, format="pdf", metadata={"CreationDate": None}))
    _write_sidecar(session, name, "figure", [png.name, pdf.name], caption)
    return [png, pdf]


def save_table(table: pd.DataFrame, name: str, caption: str = "") -> list[Path]:
    """Write ``table`` as ``<notebook>__<name>.csv`` and ``.md`` (atomically) plus its sidecar."""
    session = _current()
    stem = _stem(session, name)
    csv, markdown = session.out_dir / f"{stem}.csv", session.out_dir / f"{stem}.md"
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_write_text(markdown, markdown_table(table))
    _write_sidecar(session, name, "table", [csv.name, markdown.name], caption)
    return [csv, markdown]


def save_text(text: str, name: str, caption: str = "") -> Path:
    """Write computed Markdown (e.g. the "what we observed" paragraph) as ``<notebook>__<name>.md``."""
    session = _current()
    path = session.out_dir / f"{_stem(session, name)}.md"
    atomic_write_text(path, text.strip() + "\n")
    _write_sidecar(session, name, "text", [path.name], caption)
    return path


def markdown_table(table: pd.DataFrame, float_format: str = "{:.4g}") -> str:
    """A GitHub-flavoured Markdown table of ``table`` (its index is not written)."""

    def cell(value: Any) -> str:
        text = float_format.format(value) if isinstance(value, float) else str(value)
        return text.replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(cell(column) for column in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    rows = ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def _current() -> Session:
    if _session is None:
        raise RuntimeError("call protolab.figures.start(notebook_name, globals()) before saving outputs")
    return _session


def _stem(session: Session, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"output name {name!r} must be letters, digits, '.', '_' or '-'")
    return f"{session.notebook}__{name}"


def _write_sidecar(session: Session, name: str, kind: str, files: list[str], caption: str) -> None:
    record = session.provenance(name, kind, files, caption)
    payload = json.dumps(record, indent=2, sort_keys=True, default=str)
    atomic_write_text(session.out_dir / f"{_stem(session, name)}.json", payload)


def _git_commit(root: Path) -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + (" (with uncommitted changes)" if dirty else "")


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
