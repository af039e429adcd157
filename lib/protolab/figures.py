"""The only way a notebook writes its outputs: figures, tables and computed notes, with provenance.

A notebook calls :func:`start` once, right after its parameters cell, then :func:`save_figure`,
:func:`save_table` and :func:`save_text`. Each takes an optional ``caption`` and ``title`` (the report's
heading for the output; default: the caption's first sentence, else the name made readable). Every notebook
saves a ``claims`` table (:mod:`protolab.claims`); the report opens with all of them. Every output gets a deterministic name
``<notebook>__<name>.<ext>``, is written atomically (a crash mid-write leaves the previous file
intact), and gets a JSON sidecar ``<notebook>__<name>.json`` holding its provenance: notebook,
parameters, seed, profile, dataset, run id, git commit, library versions and wall time. Each returns a
:class:`Saved`, which a notebook cell ending in the call shows as the report's heading, the caption and the
names of the files written (not a list of paths). Paths in the provenance are relative to the checkout when they lie
inside it (:func:`~protolab.runner.project.checkout_relative`). A notebook reads another notebook's published table
with :func:`upstream_table`, which says which run made it.
"""

from __future__ import annotations

import ast
import json
import os
import platform
import re
import subprocess
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from protolab.core import dryrun
from protolab.core.atomic import atomic_write, atomic_write_text
from protolab.runner.parameters import (REQUIRED_PARAMETERS, Parameter, ParameterError, check_values, load_experiment,
                                        parse_parameters_cell)
from protolab.runner.project import checkout_relative, find_root
from protolab.runner.report import README_END, README_START, markdown_table, output_title
from protolab.runner.scratch import SCRATCH_ENV, claim_run, scratch_folder

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
    published_to: Path | None = None  # where out_dir's files end up (the runner publishes its staging folder there)
    root: Path | None = None  # the checkout: paths in the provenance are relative to it

    def provenance(self, name: str, kind: str, files: list[str], caption: str, title: str = "") -> dict[str, Any]:
        return {
            "notebook": self.notebook,
            "title": self.title,
            "name": name,
            "output_title": title,
            "kind": kind,
            "files": files,
            "caption": caption,
            "run_id": self.run_id,
            "profile": self.parameters.get("profile"),
            "seed": self.parameters.get("seed"),
            "dataset": {"name": self.parameters.get("dataset"), "description": self.data},
            "parameters": {name: _portable(value, self.root) for name, value in self.parameters.items()},
            "git_commit": self.git_commit,
            "versions": self.versions,
            "wall_time_s": round(time.monotonic() - self.started, 3),
            "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "dry_run": dryrun.dry_run_steps(),  # > 0: a dry run's output, its numbers meaningless
        }


@dataclass(frozen=True, eq=False)
class Saved(Sequence):
    """What one ``save_*`` call wrote, and what a notebook cell ending in it shows.

    In JupyterLab the cell's output is the heading the report gives the output, the rest of its caption and the
    names of the files written (with their folder); as text (``repr``, a terminal) one short line. It is also
    the sequence of the paths written, main file first: ``saved[0]`` is the PNG, CSV or Markdown file and
    ``list(saved)`` all of them (the sidecar ``.json`` is not among them).
    """

    kind: str  # "figure", "table" or "text"
    name: str
    caption: str
    title: str
    paths: tuple[Path, ...]
    folder: str  # where the files are, relative to the checkout when inside it

    def __getitem__(self, index):
        return self.paths[index]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def files(self) -> list[str]:
        return [path.name for path in self.paths]

    def __repr__(self) -> str:
        caption = " ".join(self.caption.split())
        caption = caption if len(caption) <= 80 else caption[:79] + "…"
        return f"<saved {self.kind} {', '.join(self.files)}{': ' + caption if caption else ''}>"

    def _repr_html_(self) -> str:
        heading, rest = output_title({"name": self.name, "caption": self.caption, "output_title": self.title})
        files = ", ".join(f"<code>{escape(name)}</code>" for name in self.files)
        rest = f" — {escape(rest)}" if rest else ""
        return (f"<div><strong>{escape(heading)}</strong>{rest}<br><small>saved {self.kind}: {files} "
                f"in <code>{escape(self.folder)}</code></small></div>")


_session: Session | None = None

DEFAULT_OUT_DIR = "figures"  # the parameters cells' default: the committed figures/, written only by the runner


def start(notebook: str, namespace: Mapping[str, Any]) -> Session:
    """Begin recording outputs of ``notebook``, reading its parameter values from ``namespace``.

    ``namespace`` is the notebook's ``globals()``. The parameter names, types and ranges come from the
    notebook's own parameters cell (:func:`parameters_cell`): a parameter papermill injected that the cell
    does not declare is refused here with its name, and so, all in one error, is every value of the wrong
    type or outside its declared range (:func:`~protolab.runner.parameters.check_values`). Applies the house
    plotting style and creates the output directory (:func:`output_dir`).
    """
    global _session
    title, declared = parameters_cell(notebook, namespace)
    unknown = sorted(set(injected_parameters(namespace)) - set(declared))
    if unknown:
        raise ParameterError(f"{notebook}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                             f"known: {', '.join(declared)}")
    parameters = check_values(declared, {name: namespace[name] for name in declared})
    out_dir = output_dir(parameters["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    use_style()
    root = _checkout()
    published_to = root / parameters["out_dir"] if os.environ.get("PROTOLAB_STAGE_DIR") else out_dir
    _session = Session(
        notebook=notebook,
        title=title,
        parameters=parameters,
        out_dir=out_dir,
        run_id=os.environ.get("PROTOLAB_RUN_ID") or "interactive-" + datetime.now().strftime("%Y%m%d-%H%M%S"),
        git_commit=_git_commit(root, ignore=published_to),
        versions=_versions(),
        published_to=published_to,
        root=root,
    )
    return _session


def _portable(value: Any, root: Path | None) -> Any:
    """A parameter's value as the provenance records it: a path (or list of them) inside the checkout ``root``
    relative to it (:func:`~protolab.runner.project.checkout_relative`), any other value as it is."""
    if root is None:
        return value
    if isinstance(value, list):
        return [_portable(item, root) for item in value]
    return checkout_relative(value, root) if isinstance(value, str) and value else value


class Upstream(NamedTuple):
    """A table another notebook published (:func:`upstream_table`), and which run made it."""

    table: pd.DataFrame
    run_id: str  # the run that wrote it (its sidecar's), "unknown run" without a sidecar
    folder: str  # where it was read, relative to the checkout when inside it


def upstream_table(notebook: str, name: str = "claims") -> Upstream:
    """The table ``<notebook>__<name>.csv`` that notebook ``notebook`` (one this notebook depends on: ``depends_on``
    in ``notebooks/profiles.yaml``) published, with the run that wrote it.

    Looked for first where this execution publishes (its ``out_dir``): in a ``protolab run`` that also runs
    ``notebook``, the runner starts this notebook only once ``notebook`` has published there, so the table is that
    run's (``run_id`` is then this session's). Then in the checkout's ``figures/``: the last published outputs,
    for a notebook run alone. ``FileNotFoundError`` names both folders when neither holds the table.
    """
    session = _current()
    root = session.root or _checkout()
    folders = list(dict.fromkeys(Path(folder).resolve() for folder in (session.published_to or session.out_dir,
                                                                       root / DEFAULT_OUT_DIR)))
    file = f"{notebook}__{name}.csv"
    for folder in folders:
        if (folder / file).is_file():
            sidecar = folder / f"{notebook}__{name}.json"
            run_id = json.loads(sidecar.read_text()).get("run_id") if sidecar.is_file() else None
            return Upstream(pd.read_csv(folder / file), run_id or "unknown run", checkout_relative(folder, root))
    raise FileNotFoundError(f"no {file} in {' or '.join(checkout_relative(folder, root) for folder in folders)}")


def parameters_cell(notebook: str, namespace: Mapping[str, Any]) -> tuple[str, dict[str, Parameter]]:
    """Title and declared parameters (types and ranges) of ``notebook``, wherever it was opened.

    Looked for, in order: the notebook JupyterLab says it is running (``__session__``), ``notebook.ipynb``
    in ``$PROTOLAB_NOTEBOOKS_DIR`` (set by the runner), in the current directory (where Jupyter starts a
    kernel) and in the checkout's ``notebooks/``; then the parameters cell among the cells this kernel
    has executed (``In``). Failing all of those, only :data:`REQUIRED_PARAMETERS` are checked, with a warning.
    """
    session = namespace.get("__session__")
    candidates = [Path(session)] if isinstance(session, str) and session.endswith(".ipynb") else []
    root = find_root()
    directories = [os.environ.get("PROTOLAB_NOTEBOOKS_DIR"), Path.cwd(), root and root / "notebooks"]
    candidates += [Path(directory) / f"{notebook}.ipynb" for directory in directories if directory]
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is not None:
        experiment = load_experiment(path)
        return experiment.title, experiment.parameters
    for source in reversed(list(namespace.get("In", []))):
        try:
            declared = parse_parameters_cell(source)
        except ParameterError:
            continue
        if set(REQUIRED_PARAMETERS) <= set(declared):
            return notebook, declared
    warnings.warn(f"{notebook}.ipynb not found (looked in {', '.join(str(c.parent) for c in candidates)}); "
                  "checking only the parameters every notebook declares", stacklevel=3)
    return notebook, dict(REQUIRED_PARAMETERS)


def injected_parameters(namespace: Mapping[str, Any]) -> list[str]:
    """Names assigned by the cells papermill injected (``# Parameters`` first), found in the kernel's ``In``."""
    names = []
    for source in namespace.get("In", []):
        if source.startswith("# Parameters\n"):
            try:
                body = ast.parse(source).body
            except SyntaxError:  # a cell of the user's that merely starts with the same comment
                continue
            names += [target.id for node in body if isinstance(node, ast.Assign)
                      for target in node.targets if isinstance(target, ast.Name)]
    return names


def output_dir(out_dir: str) -> Path:
    """Where this execution writes: the runner's staging folder, else ``runs/interactive/figures`` for the
    default ``out_dir`` (interactive and plain papermill runs never write the committed ``figures/``), else
    ``out_dir`` (a relative one from the checkout, or from the current directory outside a checkout)."""
    stage = os.environ.get("PROTOLAB_STAGE_DIR")
    if stage:
        return Path(stage)
    root = _checkout()
    if out_dir in ("", DEFAULT_OUT_DIR):
        return root / "runs" / "interactive" / DEFAULT_OUT_DIR
    return root / out_dir


def describe_data(description: str) -> None:
    """Record, for every later output and the report, which data produced the results."""
    _current().data = description


def use_style() -> None:
    """One visual style for every figure: seaborn whitegrid, readable fonts, colour-blind palette."""
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind", font_scale=1.05)
    matplotlib.rcParams.update({"figure.dpi": 100, "savefig.dpi": 150, "savefig.bbox": "tight"})


def save_figure(fig: plt.Figure, name: str, caption: str = "", title: str = "") -> Saved:
    """Write ``fig`` as ``<notebook>__<name>.png`` and ``.pdf`` (atomically) plus its sidecar."""
    session = _current()
    stem = _stem(session, name)
    png, pdf = session.out_dir / f"{stem}.png", session.out_dir / f"{stem}.pdf"
    atomic_write(png, lambda handle: fig.savefig(handle, format="png", metadata={"Software": None}))
    atomic_write(pdf, lambda handle: fig.savefig(handle, format="pdf", metadata={"CreationDate": None}))
    return _saved(session, name, "figure", [png, pdf], caption, title)


def save_table(table: pd.DataFrame, name: str, caption: str = "", title: str = "") -> Saved:
    """Write ``table`` as ``<notebook>__<name>.csv`` and ``.md`` (atomically) plus its sidecar."""
    session = _current()
    stem = _stem(session, name)
    csv, markdown = session.out_dir / f"{stem}.csv", session.out_dir / f"{stem}.md"
    atomic_write_text(csv, table.to_csv(index=False))
    atomic_write_text(markdown, markdown_table(table))
    return _saved(session, name, "table", [csv, markdown], caption, title)


def save_text(text: str, name: str, caption: str = "", title: str = "") -> Saved:
    """Write computed Markdown (e.g. the "what we observed" paragraph) as ``<notebook>__<name>.md``."""
    session = _current()
    path = session.out_dir / f"{_stem(session, name)}.md"
    atomic_write_text(path, text.strip() + "\n")
    return _saved(session, name, "text", [path], caption, title)


def scratch_dir() -> Path:
    """A folder, created, for what this notebook may throw away once it has finished (training checkpoints).

    Run by the runner: its ``runs/<run-id>/<notebook>.scratch``, removed when the notebook succeeds and kept
    when it is interrupted or fails. Run interactively: ``runs/<session run id>/<notebook>.scratch`` in the
    checkout, owned by this kernel. Either way ``protolab clean`` (or the next run) removes it once its run has
    ended (:mod:`protolab.runner.scratch`)."""
    session = _current()
    if os.environ.get(SCRATCH_ENV):
        folder = Path(os.environ[SCRATCH_ENV])
    else:
        run_dir = _checkout() / "runs" / session.run_id
        claim_run(run_dir)
        folder = scratch_folder(run_dir, session.notebook)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _checkout() -> Path:
    """The checkout of the notebooks being run (the runner names their directory), else the one holding
    the current directory, else the current directory."""
    notebooks = os.environ.get("PROTOLAB_NOTEBOOKS_DIR")
    return (Path(notebooks).resolve().parent if notebooks else find_root()) or Path.cwd()


def _current() -> Session:
    if _session is None:
        raise RuntimeError("call protolab.figures.start(notebook_name, globals()) before saving outputs")
    return _session


def _stem(session: Session, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"output name {name!r} must be letters, digits, '.', '_' or '-'")
    return f"{session.notebook}__{name}"


def _saved(session: Session, name: str, kind: str, paths: list[Path], caption: str, title: str) -> Saved:
    """Write the provenance sidecar of the files ``paths`` just written; what the ``save_*`` call returns."""
    record = session.provenance(name, kind, [path.name for path in paths], caption, title)
    payload = json.dumps(record, indent=2, sort_keys=True, default=str)
    atomic_write_text(session.out_dir / f"{_stem(session, name)}.json", payload)
    folder = session.out_dir.resolve()
    root = _checkout().resolve()
    shown = folder.relative_to(root) if folder.is_relative_to(root) else folder
    return Saved(kind, name, caption, title, tuple(paths), str(shown))


RUN_OUTPUTS = ("figures", "runs")  # what runs write in the checkout; changes there leave a checkout clean
README = "README.md"  # whose scorecard block (README_START…README_END) the runner rewrites when it publishes


def _git_commit(root: Path, ignore: Path) -> str:
    """``HEAD`` of the checkout at ``root``, marked "(with uncommitted changes)" when tracked files differ from it,
    except in what runs write: :data:`RUN_OUTPUTS`, ``ignore`` (the run's own out_dir, whose outputs the run is
    rewriting) and the README's scorecard block (a change elsewhere in the README counts)."""
    checkout = root.resolve()
    excluded = {checkout / folder for folder in RUN_OUTPUTS} | {Path(ignore).resolve()}
    pathspec = [f":(exclude){path.relative_to(checkout)}" for path in sorted(excluded)
                if path != checkout and path.is_relative_to(checkout)]

    def git(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=check, timeout=10)
    try:
        commit = git("rev-parse", "HEAD").stdout.strip()
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", f":(exclude){README}",
                    *pathspec).stdout.strip()
        if not dirty and git("diff", "--quiet", "HEAD", "--", README, check=False).returncode:
            committed = git("show", f"HEAD:./{README}", check=False)
            dirty = committed.returncode or _without_scorecard(committed.stdout) != _without_scorecard(
                (root / README).read_text() if (root / README).is_file() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + (" (with uncommitted changes)" if dirty else "")


def _without_scorecard(readme: str) -> str:
    """``readme`` without its scorecard block (the markers kept), which the runner rewrites."""
    start, end = readme.find(README_START), readme.find(README_END)
    return readme[:start + len(README_START)] + readme[end:] if 0 <= start < end else readme


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions
