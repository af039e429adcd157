"""Where embedded datasets are cached on disk, and the checksums that tell an intact cached file from an
altered one."""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

from protolab.core.atomic import atomic_write_text

CHECKSUM_SUFFIX = ".sha256"
"""A cached file ``f`` has its sha256 (hex) in ``f.sha256`` beside it."""


def cache_dir() -> Path:
    """The cache root: ``$PROTOLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/protolab``, else
    ``~/.cache/protolab``; with no HOME (as in some CI runners) a directory under the system temp dir."""
    if os.environ.get("PROTOLAB_CACHE_DIR"):
        root = Path(os.environ["PROTOLAB_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        root = Path(os.environ["XDG_CACHE_HOME"]) / "protolab"
    elif os.environ.get("HOME"):
        root = Path(os.environ["HOME"]) / ".cache" / "protolab"
    else:
        root = Path(tempfile.gettempdir()) / "protolab-cache"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_file(path: Path) -> Path:
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def record_checksum(path: Path) -> None:
    """Write the sha256 of the cached file ``path`` beside it (atomically); call it once ``path`` is complete."""
    atomic_write_text(_checksum_file(Path(path)), _sha256(Path(path)) + "\n")


def is_intact(path: Path) -> bool:
    """Whether the cached file ``path`` exists and matches the checksum :func:`record_checksum` wrote.

    A file that exists but has no checksum or another content (altered, truncated, written by other
    code) gives a ``RuntimeWarning`` naming it: the caller rebuilds it.
    """
    path = Path(path)
    if not path.is_file():
        return False
    try:
        recorded = _checksum_file(path).read_text().strip()
    except OSError:
        recorded = ""
    if recorded == _sha256(path):
        return True
    problem = "has no recorded checksum" if not recorded else "does not match its recorded sha256"
    warnings.warn(f"cached file {path} {problem}: rebuilding it", RuntimeWarning, stacklevel=2)
    return False
