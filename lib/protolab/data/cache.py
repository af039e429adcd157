"""Where embedded datasets are cached on disk."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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
