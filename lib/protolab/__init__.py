"""protolab: reproducible notebooks for IPN (Liu et al., ICLR 2021) and Hyperbolic Image
Embeddings (Khrulkov et al., CVPR 2020).

Importing the package has no side effects: no device selection, no downloads, no file writes.
"""

from protolab.reproducibility import resolve_device, seed_everything

__all__ = ["resolve_device", "seed_everything"]
__version__ = "0.1.0"
