"""Few-shot benchmarks as class-disjoint train/val/test splits: MiniImageNet, CUB-200-2011, Omniglot.

Every loader returns :class:`FewShotSplits` of :class:`LabeledImages` whose ``dataset[i]`` is a float tensor
``(3, image_size, image_size)`` in ``[0, 1]`` (Omniglot: ``(1, S, S)``). By default (``decoded=True``) each
split's files are decoded once into a uint8 array cached on disk and memory-mapped as ``images``
(:func:`protolab.data.decoded.decode_images`; the first load decodes, later loads map the cache); with
``decoded=False`` the splits are file-backed, each file decoded when read, and every file is checked to
decode when the dataset is loaded. Either way ``paths`` lists the image files. Labels of each split are
0-based within that split; ``class_names`` keep the original class names, and no class appears in two
splits. Augmentation is not applied here: apply it to batches of tensors (as :func:`protolab.reid.fit.augment`).
"""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from PIL import Image

from protolab.data.cache import cache_dir
from protolab.data.decoded import decode_images, prepare_files
from protolab.data.errors import DatasetFormatError, DatasetNotFoundError, require_files
from protolab.data.images import LabeledImages
from protolab.data.torchvision_sets import OMNIGLOT_SOURCE, omniglot_files
from protolab.data.transforms import image_transform

MINI_IMAGENET_SOURCE = (
    "Ravi & Larochelle's split files https://github.com/twitter-research/meta-learning-lstm/tree/master/data/"
    "miniImagenet (train/val/test.csv; images cut from ImageNet's ILSVRC-2012 train set), or the pickle caches "
    "mini-imagenet-cache-{train,val,test}.pkl distributed with learn2learn (https://github.com/learnables/learn2learn)"
)
CUB_SOURCE = "https://www.vision.caltech.edu/datasets/cub_200_2011/ (CUB_200_2011.tgz)"
CUB_FILES = ("images.txt", "image_class_labels.txt", "classes.txt", "images")
SPLITS = ("train", "val", "test")
_SHOWN = 5
_CLASS_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
    ("builtins", "dict"),
    ("builtins", "list"),
    ("__builtin__", "dict"),
    ("__builtin__", "list"),
}


class FewShotSplits(NamedTuple):
    """Class-disjoint ``train`` / ``val`` / ``test`` splits of a few-shot benchmark."""

    train: LabeledImages
    val: LabeledImages
    test: LabeledImages


class _RefusedGlobal(pickle.UnpicklingError):
    """A pickle asked for a global outside the allow-list."""


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses every other global.

    A pickle names the callables it runs at load time through ``find_class``; allowing only numpy's
    array reconstructors means a file cannot execute code (``os.system`` and the like) when read.
    """

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _PICKLE_GLOBALS:
            raise _RefusedGlobal(f"it references '{module}.{name}'")
        if module.startswith("numpy.core."):
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def _require_images(paths: Sequence[Path], images: Path, listing: Path, name: str, source: str) -> None:
    """Raise :class:`DatasetNotFoundError` naming the first few ``paths`` (under ``images``, listed in
    ``listing``) that are not files."""
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise DatasetNotFoundError(
            f"{name} ({len(missing)} of the {len(paths)} images listed in {listing.name}; first {_SHOWN} shown)",
            images,
            [str(path.relative_to(images)) for path in missing[:_SHOWN]],
            source,
        )


def labeled_files(
    paths: Sequence[Path], names: Sequence[str], class_names: Sequence[str], description: str, image_size: int,
    channels: int = 3,
) -> LabeledImages:
    """File-backed images whose class is given by name, decoded to ``(channels, image_size, image_size)`` (3: RGB,
    1: grey); ``class_names`` fixes the label order."""
    index = {name: i for i, name in enumerate(class_names)}
    return LabeledImages(
        labels=torch.tensor([index[name] for name in names], dtype=torch.int64),
        class_names=list(class_names),
        description=description,
        paths=list(paths),
        transform=image_transform(image_size),
        extra={"channels": channels},
    )


def _check_disjoint(splits: dict[str, Sequence[str]], where: Path, source: str) -> None:
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1 :]:
            shared = sorted(set(splits[first]) & set(splits[second]))
            if shared:
                problem = f"the {first} and {second} splits share classes {shared[:_SHOWN]}; they must be disjoint"
                raise DatasetFormatError(where, problem, source)


def _read_csv_split(path: Path, images: Path) -> tuple[list[Path], list[str]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or [cell.strip() for cell in rows[0]] != ["filename", "label"]:
        raise DatasetFormatError(
            path, f"the header must be 'filename,label', got {','.join(rows[0]) if rows else 'an empty file'!r}",
            MINI_IMAGENET_SOURCE,
        )
    bad = [number for number, row in enumerate(rows[1:], start=2) if len(row) != 2 or not all(row)]
    if bad or len(rows) < 2:
        problem = f"lines {bad[:_SHOWN]} do not have two fields" if bad else "no images are listed"
        raise DatasetFormatError(path, problem, MINI_IMAGENET_SOURCE)
    paths = [images / row[0].strip() for row in rows[1:]]
    _require_images(paths, images, path, "MiniImageNet", MINI_IMAGENET_SOURCE)
    return paths, [row[1].strip() for row in rows[1:]]


def _mini_imagenet_csv(folder: Path, image_size: int, decoded: bool) -> FewShotSplits:
    read = {split: _read_csv_split(folder / f"{split}.csv", folder / "images") for split in SPLITS}
    _check_disjoint({split: names for split, (_, names) in read.items()}, folder, MINI_IMAGENET_SOURCE)
    return FewShotSplits(
        **{
            split: prepare_files(
                labeled_files(
                    paths, names, sorted(set(names)),
                    f"MiniImageNet {split} (Ravi & Larochelle split, {len(set(names))} classes, "
                    f"{image_size}×{image_size}) from {folder}",
                    image_size,
                ),
                source=MINI_IMAGENET_SOURCE, decoded=decoded,
            )
            for split, (paths, names) in read.items()
        }
    )


def _load_image_pickle(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``image_data`` uint8 ``(N, H, W, 3)`` and ``class_dict`` {wnid: image indices} of one cache pickle."""
    try:
        with open(path, "rb") as handle:
            content = _ArraysOnly(handle, encoding="latin1").load()
    except _RefusedGlobal as error:
        raise DatasetFormatError(
            path,
            f"refused to load: {error}. Pickles that reference code are refused because loading them could run "
            "it; only dicts, lists and numpy arrays are accepted",
            MINI_IMAGENET_SOURCE,
        ) from error
    except Exception as error:
        raise DatasetFormatError(
            path, f"not a readable pickle: {type(error).__name__}: {error}", MINI_IMAGENET_SOURCE
        ) from error
    if not isinstance(content, dict) or not {"image_data", "class_dict"} <= set(content):
        raise DatasetFormatError(path, "expected a dict with keys 'image_data' and 'class_dict'", MINI_IMAGENET_SOURCE)
    images, class_dict = content["image_data"], content["class_dict"]
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 or images.shape[3] != 3:
        shape = getattr(images, "shape", type(images).__name__)
        raise DatasetFormatError(path, f"'image_data' must be a uint8 array (N, H, W, 3), got {shape}")
    if not isinstance(class_dict, dict) or not class_dict:
        raise DatasetFormatError(path, "'class_dict' must be a non-empty dict {wnid: [image indices]}")
    unsafe = [wnid for wnid in class_dict if not isinstance(wnid, str) or not _CLASS_NAME.fullmatch(wnid)]
    if unsafe:
        raise DatasetFormatError(
            path, f"'class_dict' keys must be class names such as 'n01532829', got {unsafe[:_SHOWN]}"
        )
    members = {wnid: np.asarray(indices).reshape(-1) for wnid, indices in class_dict.items()}
    flat = np.concatenate(list(members.values()))
    if flat.dtype.kind not in "iu" or np.sort(flat).tolist() != list(range(len(images))):
        raise DatasetFormatError(
            path, f"'class_dict' must assign each of the {len(images)} images of 'image_data' to exactly one class"
        )
    return images, members


def _extract_pickle(path: Path) -> Path:
    """Write the images of a cache pickle as PNG files ``<wnid>/<index>.png`` under the protolab cache.

    A float copy of the train split would need 3.3 GB of memory, so the images become files once
    (about a minute for the whole dataset) and are decoded on access like the CSV layout. The cache
    entry is keyed by the pickle's path, size and modification time; its PNGs are written from the
    validated arrays, so they are not decode-checked again.
    """
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_dir() / "mini-imagenet-pickles" / f"{path.stem}-{key}"
    if target.is_dir():
        return target
    images, members = _load_image_pickle(path)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    for wnid, indices in members.items():
        (partial / wnid).mkdir(parents=True)
        for index in indices.tolist():
            Image.fromarray(images[index]).save(partial / wnid / f"{index:06d}.png", compress_level=1)
    try:
        partial.rename(target)
    except OSError:
        if not target.is_dir():
            raise
        shutil.rmtree(partial)
    return target


def _mini_imagenet_pickles(files: dict[str, Path], image_size: int, decoded: bool) -> FewShotSplits:
    out = {}
    for split, path in files.items():
        folder = _extract_pickle(path)
        class_names = sorted(p.name for p in folder.iterdir() if p.is_dir())
        pairs = [(file, wnid) for wnid in class_names for file in sorted((folder / wnid).glob("*.png"))]
        out[split] = labeled_files(
            [file for file, _ in pairs], [wnid for _, wnid in pairs], class_names,
            f"MiniImageNet {split} ({len(class_names)} classes, {image_size}×{image_size}) from {path}",
            image_size,
        )
        if decoded:  # the PNGs were written from validated arrays: file-backed, they are not checked again
            out[split] = decode_images(out[split], source=MINI_IMAGENET_SOURCE)
    classes = {split: data.class_names for split, data in out.items()}
    _check_disjoint(classes, files["train"].parent, MINI_IMAGENET_SOURCE)
    return FewShotSplits(**out)


def load_mini_imagenet(data_root: str | Path, image_size: int = 84, decoded: bool = True) -> FewShotSplits:
    """MiniImageNet (Vinyals et al. 2016) with the class split of Ravi & Larochelle (2017): 64/16/20 classes.

    Two on-disk layouts are read, the first one found wins:

    1. Ravi & Larochelle's CSVs (header ``filename,label``, label = WordNet id) and the image files::

           <data_root>/miniImageNet/{train,val,test}.csv
           <data_root>/miniImageNet/images/<filename>

    2. The pickle caches (as distributed with learn2learn), in ``<data_root>/miniImageNet/`` or ``<data_root>/``::

           mini-imagenet-cache-{train,val,test}.pkl   dict(image_data=uint8 (N, 84, 84, 3),
                                                           class_dict={wnid: [image indices]})

       They are read without executing pickled code (only numpy arrays, dicts and lists are allowed)
       and their images are written once as PNG files under the protolab cache (see
       :func:`protolab.data.cache.cache_dir`), so that the splits are read like layout 1.

    Class counts are not enforced (so subsets and test fixtures load); the splits must be disjoint.

    Parameters
    ----------
    data_root : folder holding ``miniImageNet/`` (or the pickles).
    image_size : side of the square images ``dataset[i]`` returns, ``(3, image_size, image_size)``.
    decoded : decode each split once into a memory-mapped uint8 cache (see the module docstring; the full
        dataset at 84×84 takes 1.27 GB); False keeps the splits file-backed.

    Raises
    ------
    DatasetNotFoundError : neither layout is complete, or images listed in a CSV are missing.
    DatasetFormatError : bad CSV header or rows, classes shared between splits, an image that does not
        decode, a pickle that is not in the expected format or that references code.
    """
    files = mini_imagenet_files(Path(data_root))
    if files["train"].suffix == ".csv":
        return _mini_imagenet_csv(files["train"].parent, image_size, decoded)
    return _mini_imagenet_pickles(files, image_size, decoded)


def mini_imagenet_files(data_root: Path) -> dict[str, Path]:
    """The split files of the first complete MiniImageNet layout of :func:`load_mini_imagenet`:
    ``{split: miniImageNet/<split>.csv}`` (with ``miniImageNet/images/`` beside them) or
    ``{split: mini-imagenet-cache-<split>.pkl}``; :class:`DatasetNotFoundError` naming both layouts when
    neither is complete. Reads no file."""
    folder = data_root / "miniImageNet"
    csvs = {split: folder / f"{split}.csv" for split in SPLITS}
    if all(path.is_file() for path in csvs.values()) and (folder / "images").is_dir():
        return csvs
    for base in (folder, data_root):
        pickles = {split: base / f"mini-imagenet-cache-{split}.pkl" for split in SPLITS}
        if all(path.is_file() for path in pickles.values()):
            return pickles
    expected = [f"miniImageNet/{split}.csv" for split in SPLITS] + ["miniImageNet/images/<filename>.jpg"]
    expected += [f"miniImageNet/mini-imagenet-cache-{split}.pkl (or directly in data_root)" for split in SPLITS]
    raise DatasetNotFoundError("MiniImageNet (either the CSV + images layout or the three pickles)", data_root,
                               expected, MINI_IMAGENET_SOURCE)


def _read_table(path: Path) -> dict[int, str]:
    """A CUB metadata file of ``<integer id> <value>`` lines as {id: value}."""
    table: dict[int, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(maxsplit=1)
        if len(fields) != 2 or not fields[0].isdigit() or int(fields[0]) in table:
            raise DatasetFormatError(
                path, f"line {number} is not '<id> <value>' with a new integer id: {line!r}", CUB_SOURCE
            )
        table[int(fields[0])] = fields[1].strip()
    if not table:
        raise DatasetFormatError(path, "the file is empty", CUB_SOURCE)
    return table


def load_cub(data_root: str | Path, image_size: int = 84, decoded: bool = True) -> FewShotSplits:
    """CUB-200-2011 (Wah et al. 2011) with the few-shot class split of Chen et al. 2019 (100/50/50).

    On disk (the official ``CUB_200_2011.tgz``)::

        <data_root>/CUB_200_2011/images.txt              "<image id> <class folder>/<file>.jpg"
        <data_root>/CUB_200_2011/image_class_labels.txt  "<image id> <class id>"   (1-based)
        <data_root>/CUB_200_2011/classes.txt             "<class id> <class folder name>"
        <data_root>/CUB_200_2011/images/<class folder>/<file>.jpg

    Split rule of *A Closer Look at Few-shot Classification* (Chen et al., ICLR 2019,
    ``filelists/CUB/write_CUB_filelist.py``): with the class folders sorted by name and numbered
    ``i = 0..199``, ``i % 2 == 0`` → train, ``i % 4 == 1`` → val, ``i % 4 == 3`` → test. Whole
    (uncropped) images are used, as there.

    Parameters
    ----------
    data_root : folder holding ``CUB_200_2011/``.
    image_size : side of the square images ``dataset[i]`` returns, ``(3, image_size, image_size)``.
    decoded : decode each split once into a memory-mapped uint8 cache (see the module docstring); False
        keeps the splits file-backed.

    Raises
    ------
    DatasetNotFoundError : a metadata file or listed images are missing.
    DatasetFormatError : malformed lines, images / labels / classes whose ids do not match, or an image
        that does not decode.
    """
    folder = require_cub(Path(data_root))
    names = CUB_FILES[:3]
    files, labels, classes = (_read_table(folder / name) for name in names)
    if set(files) != set(labels):
        differing = sorted(set(files) ^ set(labels))[:_SHOWN]
        raise DatasetFormatError(
            folder / names[1], f"image ids differ from those of images.txt, e.g. {differing}", CUB_SOURCE
        )
    label_ids = {}
    for image_id, value in labels.items():
        if not value.isdigit() or int(value) not in classes:
            problem = f"image {image_id} has class {value!r}, not an id of classes.txt"
            raise DatasetFormatError(folder / names[1], problem, CUB_SOURCE)
        label_ids[image_id] = int(value)
    order = sorted(files)
    paths = [folder / "images" / files[i] for i in order]
    _require_images(paths, folder / "images", folder / names[0], "CUB-200-2011", CUB_SOURCE)
    class_names = sorted(classes.values())
    full = labeled_files(paths, [classes[label_ids[i]] for i in order], class_names, "CUB-200-2011", image_size)
    rule = {"train": (0, 2), "val": (1, 4), "test": (3, 4)}
    out = {}
    for split, (remainder, modulus) in rule.items():
        chosen = [i for i in range(len(class_names)) if i % modulus == remainder]
        description = (
            f"CUB-200-2011 {split} ({len(chosen)} classes, Chen et al. 2019 split, {image_size}×{image_size}) "
            f"from {folder}"
        )
        out[split] = prepare_files(full.select_classes(chosen, description), source=CUB_SOURCE, decoded=decoded)
    return FewShotSplits(**out)


def require_cub(data_root: Path) -> Path:
    """``<data_root>/CUB_200_2011``; :class:`DatasetNotFoundError` unless it holds the three metadata files
    and the ``images/`` folder. Reads no file."""
    folder = data_root / "CUB_200_2011"
    require_files("CUB-200-2011", folder, CUB_FILES, CUB_SOURCE)
    return folder


def load_omniglot_splits(
    data_root: str | Path,
    image_size: int = 28,
    n_val_alphabets: int = 5,
    invert: bool = False,
    download: bool = False,
    decoded: bool = True,
) -> FewShotSplits:
    """Omniglot with Lake et al.'s alphabet split: background → train and val, evaluation → test.

    Validation takes the last ``n_val_alphabets`` background alphabets in sorted order (whole
    alphabets, so no character of val is trained on); test is the full evaluation set (20 alphabets,
    659 characters). Images, layout, ``invert`` and ``decoded`` are those of
    :func:`protolab.data.torchvision_sets.load_omniglot`: ``dataset[i]`` is ``(1, image_size, image_size)``;
    each split is decoded (or checked) on its own.
    """
    background, evaluation = (omniglot_files(data_root, subset, image_size=image_size, invert=invert,
                                             download=download) for subset in (True, False))
    alphabets = sorted(set(background.groups))
    if not 0 < n_val_alphabets < len(alphabets):
        raise ValueError(f"n_val_alphabets must be in 1..{len(alphabets) - 1}, got {n_val_alphabets}")
    held_out = set(alphabets[-n_val_alphabets:])
    out = {}
    for split, wanted in (("train", False), ("val", True)):
        chosen = [c for c, group in enumerate(background.groups) if (group in held_out) == wanted]
        n_alphabets = n_val_alphabets if wanted else len(alphabets) - n_val_alphabets
        description = (
            f"Omniglot {split} ({len(chosen)} characters of {n_alphabets} background alphabets, "
            f"{image_size}×{image_size}{', inverted' if invert else ''}) from {data_root}"
        )
        out[split] = background.select_classes(chosen, description)
    return FewShotSplits(**{split: prepare_files(data, source=OMNIGLOT_SOURCE, decoded=decoded)
                            for split, data in {**out, "test": evaluation}.items()})
