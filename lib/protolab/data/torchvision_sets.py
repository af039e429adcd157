"""MNIST and Omniglot from their usual on-disk layouts, read through torchvision.

Both loaders take ``download=False`` by default: nothing is fetched unless the caller asks for it.
:func:`require_mnist` and :func:`omniglot_folder` check the layout without reading any image
(:func:`protolab.data.check_dataset` calls them).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision import datasets

from protolab.data.decoded import prepare_files
from protolab.data.errors import DatasetFormatError, DatasetNotFoundError, require_files
from protolab.data.images import LabeledImages
from protolab.data.transforms import image_transform, resize_images

MNIST_SOURCE = (
    "torchvision's mirrors (pass download=True, which also unpacks them; .gz files downloaded by hand must be "
    "gunzipped), e.g. https://ossci-datasets.s3.amazonaws.com/mnist/"
)
OMNIGLOT_SOURCE = (
    "pass download=True (torchvision fetches and unpacks the zip), or download images_background.zip / "
    "images_evaluation.zip from https://github.com/brendenlake/omniglot/tree/master/python and unzip them "
    "into <data_root>/omniglot-py/"
)
_MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _mnist_split(data_root: Path, train: bool, image_size: int) -> LabeledImages:
    raw = Path("MNIST") / "raw"
    files = [str(raw / name) for name in _MNIST_FILES[train]]
    try:
        mnist = datasets.MNIST(str(data_root), train=train, download=False)
    except (AssertionError, TypeError, ValueError, RuntimeError, IndexError) as error:
        raise DatasetFormatError(
            data_root / raw,
            f"torchvision could not read {' / '.join(_MNIST_FILES[train])} as MNIST idx files ({error}). "
            "Delete them and download again.",
            MNIST_SOURCE,
        ) from error
    images, targets = mnist.data, mnist.targets
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28) or len(images) != len(targets):
        raise DatasetFormatError(
            data_root / files[0],
            f"expected N 28×28 images and N labels, got images {tuple(images.shape)} and {len(targets)} labels",
            MNIST_SOURCE,
        )
    if len(targets) and not 0 <= int(targets.min()) <= int(targets.max()) <= 9:
        raise DatasetFormatError(data_root / files[1], "labels must be digits 0..9", MNIST_SOURCE)
    split = "train" if train else "test"
    resized = "" if image_size == 28 else f", resized to {image_size}×{image_size}"
    return LabeledImages(
        labels=targets.to(torch.int64),
        class_names=[str(digit) for digit in range(10)],
        description=f"MNIST {split} ({len(targets)} handwritten digits, 28×28{resized}) from {data_root}",
        images=resize_images(images.unsqueeze(1).to(torch.float32) / 255.0, image_size),
        extra={"channels": 1},
    )


def load_mnist(data_root: str | Path, image_size: int = 28, download: bool = False
               ) -> tuple[LabeledImages, LabeledImages]:
    """MNIST train (60,000) and test (10,000) images through ``torchvision.datasets.MNIST``.

    On disk (torchvision's layout, the uncompressed idx files of LeCun et al.)::

        <data_root>/MNIST/raw/{train,t10k}-images-idx3-ubyte
        <data_root>/MNIST/raw/{train,t10k}-labels-idx1-ubyte

    torchvision only checks that these four files exist (no checksum) when ``download=False``; it also
    accepts its legacy ``MNIST/processed/{training,test}.pt`` caches.

    Parameters
    ----------
    data_root : folder holding ``MNIST/``.
    image_size : side of the returned images; other than 28, the digits are resized bilinearly.
    download : fetch the files with torchvision if they are missing (off by default: no network use
        unless asked).

    Returns
    -------
    (train, test) : in-memory :class:`LabeledImages`, ``images`` float32 ``(N, 1, image_size, image_size)``
        in ``[0, 1]`` (bright strokes on black), ``labels`` int64 ``(N,)`` digits 0–9, ``class_names``
        ``"0"``…``"9"``.

    Raises
    ------
    DatasetNotFoundError : files missing and ``download=False``.
    DatasetFormatError : a file is not a valid MNIST idx file.
    """
    data_root = Path(data_root)
    if download:
        datasets.MNIST(str(data_root), train=True, download=True)
    require_mnist(data_root)
    return _mnist_split(data_root, True, image_size), _mnist_split(data_root, False, image_size)


def require_mnist(data_root: Path) -> None:
    """Raise :class:`DatasetNotFoundError` unless ``data_root`` holds the four MNIST idx files (or
    torchvision's legacy ``MNIST/processed`` caches); reads nothing."""
    legacy = [data_root / "MNIST" / "processed" / name for name in ("training.pt", "test.pt")]
    if not all(path.is_file() for path in legacy):
        expected = [str(Path("MNIST") / "raw" / name) for pair in _MNIST_FILES.values() for name in pair]
        require_files("MNIST", data_root, expected, MNIST_SOURCE)


def omniglot_folder(data_root: Path, background: bool) -> Path:
    """``<data_root>/omniglot-py/images_{background,evaluation}``; :class:`DatasetNotFoundError` when it is
    not a folder."""
    subset = "images_background" if background else "images_evaluation"
    folder = data_root / "omniglot-py" / subset
    if not folder.is_dir():
        raise DatasetNotFoundError("Omniglot", data_root, [f"omniglot-py/{subset}/<Alphabet>/<character>/*.png"],
                                   OMNIGLOT_SOURCE)
    return folder


def load_omniglot(
    data_root: str | Path,
    background: bool,
    image_size: int = 28,
    invert: bool = False,
    download: bool = False,
    decoded: bool = True,
) -> LabeledImages:
    """Omniglot (Lake et al. 2015) background or evaluation set; classes = characters, groups = alphabets.

    Reads torchvision's extracted layout directly::

        <data_root>/omniglot-py/images_background/<Alphabet>/<character>/*.png   (964 characters, 30 alphabets)
        <data_root>/omniglot-py/images_evaluation/<Alphabet>/<character>/*.png   (659 characters, 20 alphabets)

    ``torchvision.datasets.Omniglot`` itself refuses to open the folder unless the downloaded zip is
    still beside it with its exact MD5, even with ``download=False``; so with ``download=True`` this
    function lets torchvision fetch, verify and unpack the zip, and in every case then reads the
    extracted PNGs itself. Alphabets, characters and files are sorted, so class ids do not depend on
    the file system's listing order (torchvision's own class order does).

    Parameters
    ----------
    data_root : folder holding ``omniglot-py/``.
    background : the "background" set (training alphabets) if True, else "evaluation".
    image_size : side of the square output images (105 in the files, 28 in ProtoNet's protocol).
    invert : if True, strokes are bright on black like MNIST (``1 - x``); the files have black strokes
        on white, which is what ``invert=False`` returns. Use ``invert=True`` when Omniglot stands
        beside MNIST, as in the out-of-distribution experiment of Khrulkov et al.
    download : fetch with torchvision if missing (off by default).
    decoded : decode the files once into a memory-mapped uint8 cache (uint8 ``images``,
        :func:`protolab.data.decoded.decode_images`); False keeps them file-backed (each checked to decode).

    Returns
    -------
    LabeledImages : one channel (``extra['channels'] == 1``), ``paths`` the PNG files; ``dataset[i]`` is a
        float ``(1, image_size, image_size)`` tensor in ``[0, 1]``; ``class_names`` are
        ``"<Alphabet>/<character>"``, ``groups`` the alphabet of each class.

    Raises
    ------
    DatasetNotFoundError : the folder is missing and ``download=False``.
    DatasetFormatError : an alphabet or character folder is empty, or a ``.png`` does not decode.
    """
    files = omniglot_files(data_root, background, image_size=image_size, invert=invert, download=download)
    return prepare_files(files, source=OMNIGLOT_SOURCE, decoded=decoded)


def omniglot_files(data_root: str | Path, background: bool, *, image_size: int, invert: bool,
                   download: bool) -> LabeledImages:
    """The file-backed Omniglot set of :func:`load_omniglot`, its files listed but not yet checked to decode."""
    data_root = Path(data_root)
    if download:
        datasets.Omniglot(str(data_root), background=background, download=True)
    folder = omniglot_folder(data_root, background)
    paths: list[Path] = []
    labels: list[int] = []
    class_names: list[str] = []
    groups: list[str] = []
    for alphabet in sorted(p for p in folder.iterdir() if p.is_dir()):
        characters = sorted(p for p in alphabet.iterdir() if p.is_dir())
        if not characters:
            raise DatasetFormatError(alphabet, "alphabet folder has no character folders", OMNIGLOT_SOURCE)
        for character in characters:
            files = sorted(character.glob("*.png"))
            if not files:
                raise DatasetFormatError(character, "character folder has no .png images", OMNIGLOT_SOURCE)
            paths += files
            labels += [len(class_names)] * len(files)
            class_names.append(f"{alphabet.name}/{character.name}")
            groups.append(alphabet.name)
    if not class_names:
        raise DatasetFormatError(folder, "no alphabet folders found", OMNIGLOT_SOURCE)
    which = "background" if background else "evaluation"
    return LabeledImages(
        labels=torch.tensor(labels, dtype=torch.int64),
        class_names=class_names,
        description=(
            f"Omniglot {which} ({len(class_names)} characters of {len(set(groups))} alphabets, "
            f"{image_size}×{image_size}{', inverted' if invert else ''}) from {data_root}"
        ),
        paths=paths,
        transform=image_transform(image_size, invert=invert),
        groups=groups,
        extra={"channels": 1},
    )
