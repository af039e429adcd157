"""protolab: reproducible notebooks for IPN (Liu et al., ICLR 2021) and Hyperbolic Image
Embeddings (Khrulkov et al., CVPR 2020).

Importing the package has no side effects (no device selection, no downloads, no file writes) and
imports nothing: :func:`resolve_device` and :func:`seed_everything` (from :mod:`protolab.core.reproducibility`)
load torch on first use, so that ``protolab list`` and ``protolab.core.atomic`` stay cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["resolve_device", "seed_everything"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in __all__:
        from protolab.core import reproducibility

        return getattr(reproducibility, name)
    raise AttributeError(f"module 'protolab' has no attribute {name!r}")
