"""Where the checkout is: the directory holding ``notebooks/profiles.yaml``, with ``figures/`` and ``runs/``.

Paths resolve from the checkout the user stands in (the current directory or one of its parents) or from
an explicit root, never from where the package is installed: a non-editable install works the same.
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = Path("notebooks") / "profiles.yaml"


class ProjectError(ValueError):
    """The checkout, its notebooks or an output directory cannot be found or used; the message says which."""


def find_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` (default: the current directory) holding ``notebooks/profiles.yaml``."""
    here = Path(start or Path.cwd()).resolve()
    return next((directory for directory in (here, *here.parents) if (directory / MARKER).is_file()), None)


def project_root(start: Path | None = None) -> Path:
    """:func:`find_root`, or a :class:`ProjectError` saying where it looked."""
    root = find_root(start)
    if root is None:
        raise ProjectError(f"no protolab checkout at or above {Path(start or Path.cwd()).resolve()} "
                           f"(looked for {MARKER}); run from the checkout or pass --root")
    return root


def checkout_relative(path: str | Path, root: Path) -> str:
    """An absolute ``path`` inside the checkout ``root`` made relative to it (``figures``, ``runs/<run-id>/x.log``);
    any other path (relative, or outside the checkout: ``/shared/data``) as given. What provenance records, so that
    committed files name no machine's checkout."""
    if not Path(path).is_absolute():
        return str(path)
    resolved, checkout = Path(path).resolve(), Path(root).resolve()
    return resolved.relative_to(checkout).as_posix() if resolved.is_relative_to(checkout) else str(path)


def notebooks_dir() -> Path:
    """``$PROTOLAB_NOTEBOOKS_DIR`` (set by the runner for its kernels) or the checkout's ``notebooks/``."""
    override = os.environ.get("PROTOLAB_NOTEBOOKS_DIR")
    return Path(override) if override else project_root() / "notebooks"
