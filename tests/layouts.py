"""Writers of small datasets in the real on-disk layouts, shared by loader and notebook tests."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from protolab.data.xlsa17 import write_xlsa17


def write_idx(path: Path, array: np.ndarray) -> None:
    """The idx format of LeCun et al.: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 sizes, data;
    gzip-compressed when ``path`` ends in ``.gz``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    content = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)


def write_mnist(root: Path, n_train: int = 20, n_test: int = 8, seed: int = 1) -> Path:
    """torchvision's MNIST layout ``<root>/MNIST/raw/*-idx?-ubyte`` with random pixels, labels ``i % 10``."""
    rng = np.random.default_rng(seed)
    raw = Path(root) / "MNIST" / "raw"
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    return Path(root)


def write_fashion_mnist(root: Path, n: int = 30, compressed: bool = True) -> dict[str, np.ndarray]:
    """Fashion-MNIST test files in torchvision's layout ``<root>/FashionMNIST/raw/t10k-*-ubyte(.gz)``: random
    pixels, labels ``i % 10``; returns the arrays by file name (without ``.gz``)."""
    rng = np.random.default_rng(0)
    arrays = {"t10k-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28)), "t10k-labels-idx1-ubyte": np.arange(n) % 10}
    for name, array in arrays.items():
        write_idx(Path(root) / "FashionMNIST" / "raw" / (name + ".gz" if compressed else name), array)
    return arrays


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


CUB_CLASSES = [f"{i:03d}.Bird_{name}" for i, name in enumerate("ABCDEFGH", start=1)]


def write_cub(root: Path, classes: list[str] | None = None, images_per_class: int = 2) -> Path:
    """CUB-200-2011's layout: ``<root>/CUB_200_2011/{images.txt, image_class_labels.txt, classes.txt}`` and
    ``images/<class>/<file>.jpg`` (:func:`colour_image` pixels), classes default :data:`CUB_CLASSES`."""
    folder = Path(root) / "CUB_200_2011"
    images, labels = [], []
    for c, name in enumerate(classes or CUB_CLASSES, start=1):
        (folder / "images" / name).mkdir(parents=True)
        for k in range(images_per_class):
            relative = f"{name}/{name.split('.')[1]}_{k:04d}_{c}.jpg"
            Image.fromarray(colour_image(c * 10 + k)).save(folder / "images" / relative)
            images.append(f"{len(images) + 1} {relative}")
            labels.append(f"{len(labels) + 1} {c}")
    (folder / "images.txt").write_text("\n".join(images) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    (folder / "classes.txt").write_text("\n".join(f"{c} {n}" for c, n in enumerate(classes or CUB_CLASSES, 1)) + "\n")
    return Path(root)


MARKET1501_FILES = {
    "bounding_box_train": ["0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c3s3_071002_02.jpg"],
    "query": ["0002_c1s1_001051_00.jpg", "0010_c2s1_002551_00.jpg"],
    "bounding_box_test": [
        "0002_c1s1_001301_01.jpg",  # same id, same camera as the first query: removed for it
        "0002_c4s2_045701_02.jpg",
        "0010_c5s3_015240_04.jpg",
        "0000_c1s1_000000_01.jpg",  # distractor
        "-1_c3s1_000401_03.jpg",  # junk
    ],
}


def write_market1501(root: Path) -> Path:
    """Market-1501's release layout ``<root>/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}``
    holding :data:`MARKET1501_FILES` (16×8 :func:`colour_image` pixels) and a stray ``Thumbs.db``."""
    folder = Path(root) / "Market-1501-v15.09.15"
    for subset, names in MARKET1501_FILES.items():
        (folder / subset).mkdir(parents=True)
        for i, name in enumerate(names):
            Image.fromarray(colour_image(i, (16, 8))).save(folder / subset / name)
    (folder / "bounding_box_test" / "Thumbs.db").write_bytes(b"windows thumbnails")
    return Path(root)



DUKEMTMC_FILES = {
    "bounding_box_train": ["0001_c2_f0046182.jpg", "0001_c5_f0051341.jpg", "0005_c1_f0000012.jpg"],
    "query": ["0003_c1_f0044158.jpg", "0008_c6_f0123456.jpg"],
    "bounding_box_test": [
        "0003_c1_f0044200.jpg",  # same id, same camera as the first query: removed for it
        "0003_c8_f0049000.jpg",
        "0008_c7_f0130000.jpg",
        "5000_c2_f0000100.jpg",  # a distractor identity: seen only in the gallery
    ],
}


def write_dukemtmc(root: Path) -> Path:
    """DukeMTMC-reID's release layout ``<root>/DukeMTMC-reID/{bounding_box_train,query,bounding_box_test}``
    holding :data:`DUKEMTMC_FILES` (:func:`colour_image` pixels of varying sizes, as Duke's crops are) and a
    stray ``Thumbs.db``."""
    folder = Path(root) / "DukeMTMC-reID"
    for subset, names in DUKEMTMC_FILES.items():
        (folder / subset).mkdir(parents=True)
        for i, name in enumerate(names):
            Image.fromarray(colour_image(i + 20, (16 + 2 * i, 8 + i))).save(folder / subset / name)
    (folder / "bounding_box_test" / "Thumbs.db").write_bytes(b"windows thumbnails")
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


def write_images(folder: Path, names: list[str], shape: tuple[int, int], first_seed: int = 0) -> Path:
    """``folder/names[i]`` holding :func:`colour_image` ``(first_seed + i, shape)`` pixels, in the format of the
    name's suffix (``.jpg``: JPEG at PIL's default quality, 75); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(colour_image(first_seed + i, shape)).save(folder / name)
    return folder


def mixed_image(seed: int, grey: bool = False) -> tuple[Image.Image, str]:
    """A random image and its file suffix, both drawn with ``seed``: 12–40 px a side, mode L, RGB, RGBA or P
    (only L when ``grey``), saved as PNG, JPEG (L or RGB only) or BMP."""
    rng = np.random.default_rng(seed)
    height, width = (int(side) for side in rng.integers(12, 41, 2))
    mode = "L" if grey else ("L", "RGB", "RGBA", "P")[seed % 4]
    pixels = rng.integers(0, 256, (height, width) if mode in ("L", "P") else (height, width, len(mode)), dtype=np.uint8)
    suffix = (".png", ".jpg", ".bmp")[seed % 3] if mode in ("L", "RGB") else ".png"
    return Image.fromarray(pixels, mode), suffix


def write_mixed_images(folder: Path, count: int, first_seed: int = 0, grey: bool = False,
                       stem: str = "image") -> list[Path]:
    """``count`` :func:`mixed_image` files ``folder/<stem>_<i>.<suffix>``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image, suffix = mixed_image(first_seed + i, grey)
        image.save(folder / f"{stem}_{i}{suffix}")
        paths.append(folder / f"{stem}_{i}{suffix}")
    return paths


def write_class_folders(root: Path, splits: dict[str, list[str]], per_class: int, grey: bool = False) -> Path:
    """``root/<split>/<class>/`` holding ``per_class`` :func:`write_mixed_images` each; returns ``root``."""
    for s, (split, classes) in enumerate(splits.items()):
        for c, name in enumerate(classes):
            write_mixed_images(root / split / name, per_class, first_seed=1000 * s + 50 * c, grey=grey)
    return root


def write_fewshot_folder(root: Path, classes: int = 5, per_class: int = 4, grey: bool = False) -> Path:
    """A few-shot folder: ``classes`` disjoint classes ``<split>_<k>`` in each of train/val/test."""
    return write_class_folders(root, {split: [f"{split}_{k}" for k in range(classes)]
                                      for split in ("train", "val", "test")}, per_class, grey)


def write_uncertainty_folder(root: Path, classes: int = 3, per_class: int = 10) -> Path:
    """An uncertainty folder: the same ``classes`` classes in train and test, ``per_class`` images each."""
    return write_class_folders(root, {split: [f"class_{k}" for k in range(classes)] for split in ("train", "test")},
                               per_class)


REID_FOLDER_FILES = {
    "bounding_box_train": [f"{pid:04d}_c{cam}_{k:03d}" for pid in range(1, 5) for k, cam in enumerate((1, 1, 2))],
    "query": ["0101_c1_000", "0102_c2_000"],
    "bounding_box_test": ["0101_c2_001", "0101_c3_002", "0102_c1_001", "0000_c1_000", "-1_c2_000"],
}
"""A re-ID folder in Market-1501 naming (without its sequence and frame fields): 4 training identities, each
twice on camera 1 and once on camera 2; two queries, each matched in the gallery from another camera; a
distractor (0000) and a junk image (-1)."""


def write_reid_folder(root: Path) -> Path:
    """:data:`REID_FOLDER_FILES` as :func:`mixed_image` files under ``root/cameras/mine/``, not the release's
    folder names; returns that folder."""
    folder = root / "cameras" / "mine"
    for s, (subset, stems) in enumerate(REID_FOLDER_FILES.items()):
        (folder / subset).mkdir(parents=True)
        for i, stem in enumerate(stems):
            image, suffix = mixed_image(100 * s + i)
            image.save(folder / subset / f"{stem}{suffix}")
    return folder


def write_zsl_folder(root: Path, n_classes: int = 8, per_class: int = 12, dim: int = 16, n_att: int = 6,
                     seed: int = 0) -> Path:
    """The plain zero-shot layout (``features.npy``, ``labels.csv``, ``attributes.csv``, ``splits.json``):
    classes ``animal_0–3`` train, ``4–5`` val, ``6–7`` unseen; 3 images of each seen class held out as test_seen;
    features = attributes · M + noise."""
    rng = np.random.default_rng(seed)
    attributes = rng.uniform(0, 100, (n_classes, n_att))
    labels = np.repeat(np.arange(n_classes), per_class)
    features = attributes[labels] @ rng.normal(size=(n_att, dim)) / 100 + 0.1 * rng.normal(size=(len(labels), dim))
    names = [f"animal_{c}" for c in range(n_classes)]
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "features.npy", features)
    (root / "labels.csv").write_text("".join(f"{names[c]}\n" for c in labels))
    (root / "attributes.csv").write_text("class," + ",".join(f"att_{a}" for a in range(n_att)) + "\n" + "".join(
        f"{name}," + ",".join(f"{value:.3f}" for value in row) + "\n" for name, row in zip(names, attributes)))
    index = np.arange(len(labels))
    held = (index % per_class) < 3
    seen = labels < n_classes - 2
    split = {"train": index[seen & ~held & (labels < n_classes - 4)].tolist(),
             "val": index[seen & ~held & (labels >= n_classes - 4)].tolist(),
             "test_seen": index[seen & held].tolist(), "unseen_classes": names[n_classes - 2:]}
    (root / "splits.json").write_text(json.dumps(split))
    return root
