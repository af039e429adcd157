"""Writers of small datasets in the real on-disk layouts, shared by loader and notebook tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format of LeCun et al.: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 sizes, data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, n_train: int = 20, n_test: int = 8, seed: int = 1) -> Path:
    """torchvision's MNIST layout ``<root>/MNIST/raw/*-idx?-ubyte`` with random pixels, labels ``i % 10``."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return Path(root)


def write_omniglot(root: Path, subset: str, alphabets: list[str], characters: int = 2, drawers: int = 2) -> None:
    """PNG strokes in torchvision's extracted layout: black (0) strokes on white (1), 1-bit, 105×105."""
    for a, alphabet in enumerate(alphabets):
        for c in range(characters):
            folder = root / "omniglot-py" / subset / alphabet / f"character{c + 1:02d}"
            folder.mkdir(parents=True)
            for d in range(drawers):
                pixels = np.ones((105, 105), dtype=bool)
                pixels[20 + 10 * c : 40 + 10 * c, 30 + 5 * d + a : 60] = False
                Image.fromarray(pixels).save(folder / f"{1000 + c}_{d + 1:02d}.png")
