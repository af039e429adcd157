"""The xlsa17 "proposed splits" of Xian et al., *Zero-Shot Learning — the Good, the Bad and the Ugly*
(CVPR 2017 / TPAMI 2018): ResNet-101 features, class attributes and GZSL splits in MATLAB files.

On disk, one folder per dataset (AWA1, AWA2, CUB, SUN, APY in the official ``xlsa17.zip``; any other
folder written in the same layout, such as the embedded ``glyph-zsl`` set, loads the same way)::

    <data_root>/<DATASET>/res101.mat       features  D×N double   (columns are images)
                                      labels    N×1          (1-based class ids)
                                      image_files N×1 cell of strings (optional here)
    <data_root>/<DATASET>/att_splits.mat   att       A×C double   (columns unit-L2, one per class)
                                      original_att A×C       (attributes before normalisation)
                                      allclasses_names C×1 cell of strings
                                      trainval_loc, train_loc, val_loc, test_seen_loc, test_unseen_loc
                                                M×1          (1-based indices into the N images)

Everything this module returns is 0-based.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import scipy.io
import torch

from protolab.data.errors import DatasetFormatError, DatasetNotFoundError

XLSA17_SOURCE = (
    "https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/research/zero-shot-learning/"
    "zero-shot-learning-the-good-the-bad-and-the-ugly (archive xlsa17.zip; unpack and pass its data/ folder as "
    "data_root)"
)
FILES = ("res101.mat", "att_splits.mat")
PAPER_DATASETS = ("AWA2", "CUB", "APY", "SUN")  # the IPN paper's data sets (upper case), all in xlsa17
SPLIT_KEYS = ("trainval_loc", "train_loc", "val_loc", "test_seen_loc", "test_unseen_loc")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class Split:
    """The images of one xlsa17 split.

    Attributes
    ----------
    features : float32 ``(M, D)`` visual features, one row per image.
    labels : int64 ``(M,)`` 0-based global class ids (indices into ``ZSLData.class_names``).
    indices : int64 ``(M,)`` 0-based position of each image in ``res101.mat`` (and ``ZSLData.image_files``).
    """

    features: torch.Tensor
    labels: torch.Tensor
    indices: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ZSLData:
    """A zero-shot dataset in the xlsa17 protocol; all class ids are 0-based and global.

    Attributes
    ----------
    name, description : dataset folder name and a one-line summary.
    class_names : the ``C`` class names, in ``allclasses_names`` order.
    attributes : float32 ``(C, A)``, one row per class: the transposed ``att``, each row L2-normalised
        when loaded with ``normalize_attributes=True`` (the official files already have unit columns,
        so this only guards other files), else exactly as stored.
    original_attributes : float32 ``(C, A)``, the transposed ``original_att`` (e.g. AWA2's 0–100 scores).
    seen_classes, unseen_classes : int64, sorted class ids of ``trainval`` and of ``test_unseen``; disjoint.
    train_classes, val_classes : int64, the xlsa17 class split of the seen classes (``train_loc`` /
        ``val_loc``), disjoint: validate on ``val`` to select models without touching test data.
    trainval, train, val, test_seen, test_unseen : the five :class:`Split` s.
    image_files : the ``N`` entries of ``image_files`` (paths on the authors' server), or None if absent.
    """

    name: str
    description: str
    class_names: list[str]
    attributes: torch.Tensor
    original_attributes: torch.Tensor
    seen_classes: torch.Tensor
    unseen_classes: torch.Tensor
    train_classes: torch.Tensor
    val_classes: torch.Tensor
    trainval: Split
    train: Split
    val: Split
    test_seen: Split
    test_unseen: Split
    image_files: list[str] | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def feature_dim(self) -> int:
        return int(self.trainval.features.shape[1])

    def fingerprint(self) -> str:
        """Hex digest of what a model trained and scored on this dataset sees: class names, both attribute matrices,
        the class splits and every split's features, labels and image indices. Two datasets with equal fingerprints
        give the same runs; ``name``, ``description`` and ``image_files`` do not count."""
        digest = hashlib.sha256("\0".join(self.class_names).encode())
        tensors = [self.attributes, self.original_attributes, self.seen_classes, self.unseen_classes,
                   self.train_classes, self.val_classes]
        for split in (self.trainval, self.train, self.val, self.test_seen, self.test_unseen):
            tensors += [split.features, split.labels, split.indices]
        for tensor in tensors:
            digest.update(str((tuple(tensor.shape), tensor.dtype)).encode())
            digest.update(tensor.contiguous().numpy().tobytes())
        return digest.hexdigest()[:24]

    def classes_near_unseen(self, count: int, seed: int = 0) -> list[int]:
        """Up to ``count`` class ids to show in figures: ``max(1, count // 4)`` unseen classes drawn at random
        (``seed``), each followed by its three nearest seen classes by attribute cosine, without repeats."""
        unit = torch.nn.functional.normalize(self.attributes, dim=1)
        anchors = np.random.default_rng(seed).permutation(self.unseen_classes.numpy())[: max(1, count // 4)]
        chosen: list[int] = []
        for anchor in anchors.tolist():
            nearest = self.seen_classes[(unit[self.seen_classes] @ unit[anchor]).argsort(descending=True)[:3]]
            for c in [anchor, *nearest.tolist()]:
                if c not in chosen and len(chosen) < count:
                    chosen.append(c)
        return chosen


def dataset_folder(data_root: Path, dataset: str) -> Path:
    """``data_root/dataset`` matched case-insensitively (also under ``data_root/data/``, the zip's own
    layout); ``data_root/dataset`` itself when no such folder exists."""
    for base in (data_root, data_root / "data"):
        if (base / dataset).is_dir():
            return base / dataset
        if base.is_dir():
            for child in sorted(base.iterdir()):
                if child.is_dir() and child.name.lower() == dataset.lower():
                    return child
    return data_root / dataset


def xlsa17_folder(data_root: Path, dataset: str) -> Path:
    """The :func:`dataset_folder` of ``dataset``; :class:`DatasetNotFoundError` unless it holds both
    :data:`FILES`. Reads no file."""
    folder = dataset_folder(data_root, dataset)
    if not all((folder / name).is_file() for name in FILES):
        present = sorted(p.name for p in data_root.iterdir() if p.is_dir()) if data_root.is_dir() else []
        hint = f" (folders in {data_root}: {', '.join(present)})" if present and not folder.is_dir() else ""
        raise DatasetNotFoundError(f"xlsa17 dataset '{dataset}'{hint}", folder, FILES, XLSA17_SOURCE)
    return folder


def _read_mat(path: Path) -> dict:
    """``scipy.io.loadmat`` with every failure turned into a :class:`DatasetFormatError`."""
    with open(path, "rb") as handle:
        head = handle.read(520)
    if head.startswith(b"MATLAB 7.3") or _HDF5_SIGNATURE in (head[:8], head[512:520]):
        raise DatasetFormatError(
            path,
            "this MAT file was saved with -v7.3 (an HDF5 file), which scipy cannot read; "
            "re-save it with -v7 (save(..., '-v7')) or use the official xlsa17 files",
            XLSA17_SOURCE,
        )
    try:
        return scipy.io.loadmat(path)
    except Exception as error:
        raise DatasetFormatError(
            path, f"not a readable MATLAB (v5/v7) .mat file: {type(error).__name__}: {error}", XLSA17_SOURCE
        ) from error


def _variable(mat: dict, key: str, path: Path) -> np.ndarray:
    if key not in mat:
        found = ", ".join(sorted(k for k in mat if not k.startswith("__"))) or "none"
        raise DatasetFormatError(path, f"missing variable '{key}' (variables found: {found})", XLSA17_SOURCE)
    return mat[key]


def _strings(cell: np.ndarray, key: str, path: Path) -> list[str]:
    """A MATLAB cell array of strings (loaded as an object array of char arrays) as a Python list."""
    if cell.dtype != object and cell.dtype.kind != "U":
        raise DatasetFormatError(path, f"'{key}' must be a cell array of strings, got dtype {cell.dtype}")
    out = []
    for item in cell.reshape(-1, order="F"):
        value = np.asarray(item).reshape(-1)
        if value.dtype.kind != "U" or len(value) > 1:
            raise DatasetFormatError(path, f"'{key}' must be a cell array of strings, found an entry {item!r}")
        out.append(str(value[0]) if len(value) else "")
    return out


def _one_based(array: np.ndarray, key: str, path: Path, upper: int) -> np.ndarray:
    """An ``M×1`` (or ``1×M``) MATLAB index vector with values in ``1..upper`` → 0-based int64 ``(M,)``."""
    if array.ndim != 2 or 1 not in array.shape or array.dtype.kind not in "iuf":
        raise DatasetFormatError(
            path, f"'{key}' must be a numeric M×1 vector, got shape {array.shape} dtype {array.dtype}"
        )
    values = array.reshape(-1)
    if values.dtype.kind == "f" and not np.all(values == np.round(values)):
        raise DatasetFormatError(path, f"'{key}' must hold whole numbers (MATLAB 1-based indices)")
    values = values.astype(np.int64)
    bad = values[(values < 1) | (values > upper)]
    if len(bad):
        raise DatasetFormatError(
            path,
            f"'{key}' has {len(bad)} values outside 1..{upper} (e.g. {bad[:5].tolist()}); "
            "xlsa17 indices are MATLAB 1-based",
        )
    return values - 1


def _matrix(mat: dict, key: str, path: Path) -> np.ndarray:
    array = _variable(mat, key, path)
    if array.ndim != 2 or array.dtype.kind not in "iuf":
        raise DatasetFormatError(path, f"'{key}' must be a numeric 2-D matrix, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise DatasetFormatError(path, f"'{key}' contains NaN or infinite values")
    return array


def _classes(labels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.unique(labels))


def _derive_train_val(att_mat: dict, folder: Path, class_names: list[str], labels: np.ndarray) -> None:
    """Fill in ``train_loc``/``val_loc`` from ``trainclasses1.txt``/``valclasses1.txt`` when a copy lacks them.

    Some copies of xlsa17 (reported for CUB) have only ``trainval_loc``; the class lists that ship in
    the same folder define the split, so the indices are rebuilt from ``trainval_loc`` (still 1-based).
    """
    if ("train_loc" in att_mat and "val_loc" in att_mat) or "trainval_loc" not in att_mat:
        return
    lists = {key: folder / f"{key.removesuffix('_loc')}classes1.txt" for key in ("train_loc", "val_loc")}
    if not all(path.is_file() for path in lists.values()):
        raise DatasetFormatError(
            folder / FILES[1],
            "missing 'train_loc'/'val_loc' (some xlsa17 copies lack them); put trainclasses1.txt and "
            "valclasses1.txt from the same xlsa17.zip folder beside it to derive them",
            XLSA17_SOURCE,
        )
    trainval = np.asarray(att_mat["trainval_loc"]).reshape(-1).astype(np.int64)
    in_range = trainval[(trainval >= 1) & (trainval <= len(labels))]
    index = {name: i for i, name in enumerate(class_names)}
    for key, path in lists.items():
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        unknown = [name for name in names if name not in index]
        if unknown:
            raise DatasetFormatError(path, f"classes not in 'allclasses_names': {unknown[:5]}")
        wanted = np.isin(labels[in_range - 1], [index[name] for name in names])
        att_mat[key] = in_range[wanted].reshape(-1, 1)


def split_problems(locs: Mapping[str, np.ndarray], labels: np.ndarray) -> list[str]:
    """What is inconsistent in the five 0-based index arrays ``locs`` (keys :data:`SPLIT_KEYS`) over the images
    of class ids ``labels`` (N,): test_seen classes outside trainval, test_unseen classes inside it, train/val
    classes outside it or shared, images shared by trainval and a test split. Empty when consistent."""
    classes = {key.removesuffix("_loc"): set(np.unique(labels[idx]).tolist()) for key, idx in locs.items()}
    seen = classes["trainval"]
    rules = [
        (classes["test_seen"] <= seen, "test_seen_loc has classes that are not in trainval_loc"),
        (not classes["test_unseen"] & seen, "test_unseen_loc shares classes with trainval_loc"),
        (classes["train"] | classes["val"] <= seen, "train_loc/val_loc have classes outside trainval_loc"),
        (not classes["train"] & classes["val"], "train_loc and val_loc share classes"),
    ]
    for key in ("test_seen_loc", "test_unseen_loc"):
        shared = np.intersect1d(locs["trainval_loc"], locs[key])
        rules.append((not len(shared), f"trainval_loc and {key} share {len(shared)} images"))
    return [problem for holds, problem in rules if not holds]


def load_xlsa17(data_root: str | Path, dataset: str, normalize_attributes: bool = True) -> ZSLData:
    """Load one xlsa17 dataset (``res101.mat`` + ``att_splits.mat``) with 0-based ids.

    Parameters
    ----------
    data_root : folder holding one sub-folder per dataset (the ``data/`` folder of ``xlsa17.zip``; the
        zip's top folder works too).
    dataset : folder name, matched case-insensitively: ``"AWA2"``, ``"CUB"``, ``"SUN"``, ``"APY"``,
        ``"AWA1"`` or any folder in the same layout (see :func:`write_xlsa17`).
    normalize_attributes : L2-normalise each class's attribute row; otherwise ``attributes`` is ``att``
        exactly as stored.

    Returns
    -------
    ZSLData

    Raises
    ------
    DatasetNotFoundError : the folder or one of its two files is missing.
    DatasetFormatError : a file is not a readable v5/v7 MAT file (garbage, truncated, saved with
        -v7.3), lacks a variable, or its shapes, index ranges or class splits are inconsistent.
    """
    folder = xlsa17_folder(Path(data_root), dataset)
    res_path, att_path = folder / FILES[0], folder / FILES[1]
    res, att_mat = _read_mat(res_path), _read_mat(att_path)

    features = _matrix(res, "features", res_path)
    n_images = features.shape[1]
    class_names = _strings(_variable(att_mat, "allclasses_names", att_path), "allclasses_names", att_path)
    att, original = _matrix(att_mat, "att", att_path), _matrix(att_mat, "original_att", att_path)
    if att.shape[1] != len(class_names) or original.shape != att.shape:
        raise DatasetFormatError(
            att_path,
            f"'att' {att.shape} and 'original_att' {original.shape} must both be A×C with C = "
            f"{len(class_names)} classes (one column per entry of 'allclasses_names')",
        )
    raw_labels = _variable(res, "labels", res_path)
    if raw_labels.size != n_images:
        raise DatasetFormatError(
            res_path,
            f"'features' has {n_images} columns (images) but 'labels' has {raw_labels.size} entries; "
            "features must be D×N with one column per image",
        )
    labels = _one_based(raw_labels, "labels", res_path, len(class_names))
    _derive_train_val(att_mat, folder, class_names, labels)
    locs = {key: _one_based(_variable(att_mat, key, att_path), key, att_path, n_images) for key in SPLIT_KEYS}
    problems = split_problems(locs, labels)
    if problems:
        raise DatasetFormatError(att_path, f"inconsistent splits: {problems[0]}", XLSA17_SOURCE)
    image_files = _strings(res["image_files"], "image_files", res_path) if "image_files" in res else None
    if image_files is not None and len(image_files) != n_images:
        raise DatasetFormatError(res_path, f"'image_files' has {len(image_files)} entries for {n_images} images")

    return zsl_data(folder, "xlsa17", class_names, features.T, labels, att.T, original.T, locs,
                    normalize_attributes=normalize_attributes, image_files=image_files)


def zsl_data(folder: Path, kind: str, class_names: list[str], features: np.ndarray, labels: np.ndarray,
             attributes: np.ndarray, original_attributes: np.ndarray, locs: Mapping[str, np.ndarray], *,
             normalize_attributes: bool = True, image_files: list[str] | None = None) -> ZSLData:
    """The :class:`ZSLData` of validated arrays, named after ``folder`` and described as ``kind`` data from it.

    Parameters
    ----------
    features : ``(N, D)``, one row per image; ``labels`` ``(N,)`` its 0-based class ids into ``class_names``.
    attributes : ``(C, A)``, one row per class, L2-normalised here when ``normalize_attributes``;
        ``original_attributes`` ``(C, A)`` kept as given.
    locs : 0-based image indices under each key of :data:`SPLIT_KEYS`, consistent (:func:`split_problems`).
    """
    all_features = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    all_labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    splits = {}
    for key in SPLIT_KEYS:
        idx = torch.from_numpy(np.asarray(locs[key], dtype=np.int64))
        splits[key.removesuffix("_loc")] = Split(all_features[idx], all_labels[idx], idx)
    att = torch.from_numpy(np.ascontiguousarray(attributes, dtype=np.float32))
    if normalize_attributes:
        att = att / att.norm(dim=1, keepdim=True).clamp_min(1e-12)
    seen, unseen = _classes(labels[locs["trainval_loc"]]), _classes(labels[locs["test_unseen_loc"]])
    return ZSLData(
        name=folder.name,
        description=(
            f"{kind} {folder.name}: {len(class_names)} classes ({len(seen)} seen / {len(unseen)} unseen), "
            f"{att.shape[1]} attributes, {all_features.shape[1]}-d features, from {folder}"
        ),
        class_names=class_names,
        attributes=att,
        original_attributes=torch.from_numpy(np.ascontiguousarray(original_attributes, dtype=np.float32)),
        seen_classes=seen,
        unseen_classes=unseen,
        train_classes=_classes(labels[locs["train_loc"]]),
        val_classes=_classes(labels[locs["val_loc"]]),
        image_files=image_files,
        **splits,
    )


def _cell(strings: Sequence[str]) -> np.ndarray:
    cell = np.empty((len(strings), 1), dtype=object)
    for i, value in enumerate(strings):
        cell[i, 0] = str(value)
    return cell


def write_xlsa17(
    data_root: str | Path,
    dataset: str,
    *,
    features: np.ndarray,
    labels: np.ndarray,
    attributes: np.ndarray,
    original_attributes: np.ndarray,
    class_names: Sequence[str],
    splits: Mapping[str, np.ndarray],
    image_files: Sequence[str] | None = None,
) -> Path:
    """Write a dataset in the xlsa17 layout, so that :func:`load_xlsa17` (and other xlsa17 code) reads it.

    Arrays are given the Python way and stored the MATLAB way: transposed, 1-based, double, strings as
    cell arrays. ``load_xlsa17(data_root, dataset, normalize_attributes=False)`` returns exactly these values
    (as float32). xlsa17's ``att`` has unit-L2 columns: pass L2-normalised ``attributes`` to match.

    Parameters
    ----------
    data_root, dataset : the files go to ``data_root/dataset/{res101.mat, att_splits.mat}``.
    features : ``(N, D)`` visual features, one row per image.
    labels : ``(N,)`` 0-based class ids.
    attributes, original_attributes : ``(C, A)``, one row per class.
    class_names : the ``C`` class names.
    splits : 0-based image-index arrays under the keys ``trainval_loc``, ``train_loc``, ``val_loc``,
        ``test_seen_loc``, ``test_unseen_loc``.
    image_files : optional ``N`` image paths; ``image_files`` is only written when given.

    Returns
    -------
    Path : the dataset folder.
    """
    features = np.asarray(features, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    attributes = np.asarray(attributes, dtype=np.float64)
    original_attributes = np.asarray(original_attributes, dtype=np.float64)
    n_images, n_classes = len(features), len(class_names)
    if features.ndim != 2 or labels.shape != (n_images,):
        raise ValueError(f"features must be (N, D) and labels (N,), got {features.shape} and {labels.shape}")
    if attributes.shape[0] != n_classes or original_attributes.shape != attributes.shape:
        raise ValueError(
            f"attributes {attributes.shape} and original_attributes {original_attributes.shape} must be (C, A) "
            f"with C = {n_classes}"
        )
    if n_images and not 0 <= labels.min() <= labels.max() < n_classes:
        raise ValueError(f"labels must be 0-based class ids in 0..{n_classes - 1}")
    if set(splits) != set(SPLIT_KEYS):
        raise ValueError(f"splits must have exactly the keys {SPLIT_KEYS}, got {sorted(splits)}")
    locs = {key: np.asarray(splits[key]).reshape(-1) for key in SPLIT_KEYS}
    for key, idx in locs.items():
        if len(idx) and not 0 <= idx.min() <= idx.max() < n_images:
            raise ValueError(f"splits['{key}'] must hold 0-based image indices in 0..{n_images - 1}")
    if image_files is not None and len(image_files) != n_images:
        raise ValueError(f"image_files must have {n_images} entries, got {len(image_files)}")

    folder = Path(data_root) / dataset
    folder.mkdir(parents=True, exist_ok=True)
    res = {"features": features.T, "labels": (labels.astype(np.float64) + 1).reshape(-1, 1)}
    if image_files is not None:
        res["image_files"] = _cell(image_files)
    att_splits = {
        "att": attributes.T,
        "original_att": original_attributes.T,
        "allclasses_names": _cell(class_names),
        **{key: (idx.astype(np.float64) + 1).reshape(-1, 1) for key, idx in locs.items()},
    }
    scipy.io.savemat(folder / FILES[0], res)
    scipy.io.savemat(folder / FILES[1], att_splits)
    return folder
