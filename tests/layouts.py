"""Writers of small datasets in the real on-disk layouts, shared by loader and notebook tests."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from PIL import Image

from protolab.data.xlsa17 import write_xlsa17


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


MINI_IMAGENET_CLASSES = {
    "train": ["n01532829", "n01558993"],
    "val": ["n01855672", "n02091244"],
    "test": ["n01930112", "n01981276"],
}


def colour_image(seed: int, shape: tuple[int, int] = (30, 40)) -> np.ndarray:
    """Random RGB pixels ``(*shape, 3)`` uint8, a pure function of ``seed``."""
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


def write_mini_imagenet(root: Path, classes: dict[str, list[str]] | None = None, images_per_class: int = 3,
                        shape: tuple[int, int] = (30, 40)) -> Path:
    """Ravi & Larochelle's MiniImageNet layout: ``<root>/miniImageNet/{train,val,test}.csv`` + ``images/``.

    ``classes`` maps each split to its WordNet ids (default :data:`MINI_IMAGENET_CLASSES`); image ``i`` of
    every class is :func:`colour_image` ``(i, shape)`` saved as ``<wnid><i+1:08d>.jpg``.
    """
    folder = Path(root) / "miniImageNet"
    (folder / "images").mkdir(parents=True)
    for split, wnids in (classes or MINI_IMAGENET_CLASSES).items():
        rows = ["filename,label"]
        for wnid in wnids:
            for i in range(images_per_class):
                name = f"{wnid}{i + 1:08d}.jpg"
                Image.fromarray(colour_image(i, shape)).save(folder / "images" / name)
                rows.append(f"{name},{wnid}")
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return Path(root)


def write_awa2_like(root: Path, n_classes: int = 8, per_class: int = 12, dim: int = 16, n_att: int = 6,
                    seed: int = 0) -> Path:
    """A tiny xlsa17 ``AWA2`` folder under ``root``: classes 0–3 train, 4–5 val (together seen), 6–7
    unseen; features = attributes · M + noise."""
    rng = np.random.default_rng(seed)
    original = rng.uniform(0, 100, (n_classes, n_att))
    attributes = original / np.linalg.norm(original, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_classes), per_class)
    features = attributes[labels] @ rng.normal(size=(n_att, dim)) + 0.1 * rng.normal(size=(len(labels), dim))
    index = np.arange(len(labels))
    test_part = (index % per_class) < 3
    seen = labels < 6
    trainval = index[seen & ~test_part]
    splits = dict(trainval_loc=trainval, train_loc=trainval[labels[trainval] < 4],
                  val_loc=trainval[labels[trainval] >= 4], test_seen_loc=index[seen & test_part],
                  test_unseen_loc=index[~seen])
    write_xlsa17(root, "AWA2", features=features, labels=labels, attributes=attributes,
                 original_attributes=original, class_names=[f"animal_{c}" for c in range(n_classes)], splits=splits)
    return root
