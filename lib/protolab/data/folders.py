"""Bring your own data: a folder per dataset family (``dataset="folder"``, ``data_root`` the folder), checked before
anything trains and loaded into the family's usual type. ``protolab data check KIND DIR`` prints the check.

===============  ==============================================================================================
kind             layout under ``DIR``
===============  ==============================================================================================
``fewshot``      ``{train,val,test}/<class>/<image>``: classes disjoint across the three splits
``uncertainty``  ``{train,test}/<class>/<image>``, test classes among train's; out-of-distribution sets are other
                 folders of images (any depth below each)
``reid``         ``bounding_box_train/``, ``bounding_box_test/``, ``query/`` of Market-1501-named images
                 ``<id>_c<camera>…`` (id ``-1`` junk, ``0`` distractor), in ``DIR`` or a folder up to two levels
                 below it
``zsl``          ``features.npy`` (N × D), ``labels.csv`` (N lines, one class name each), ``attributes.csv`` (a
                 header row ``class,<attribute>,…``, then one row per class: its name and A numbers),
                 ``splits.json`` (below)
``features``     a ``.npy`` file (N × D), or ``DIR/features.npy``; ``labels.csv`` beside it (optional)
===============  ==============================================================================================

Images are the files with a suffix PIL reads (other files are ignored), grey or colour, of any size: resized to
the notebook's ``image_size`` and decoded once into the decoded cache (:mod:`protolab.data.decoded`), with one
channel when every image of the dataset is grey, else RGB.

``splits.json`` is ``{"train": [...], "val": [...], "test_seen": [...], "unseen_classes": [...]}``: 0-based rows of
``features.npy`` for the first three, class names for the last. ``train`` and ``val`` hold images of disjoint
seen classes (models are selected on ``val`` as if it were unseen, then refitted on both: xlsa17's ``train_loc``
/ ``val_loc``); ``test_seen`` holds other images of those classes; every image of an unseen class is tested
(``test_unseen``) and none may be in the other three.

Every check returns a :class:`FolderReport`: summary lines (classes and images per split, image sizes and modes,
the smallest class, identities and cameras, shapes) and every problem at once; a loader runs the same check and
raises with all of them (:meth:`FolderReport.refuse`).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from protolab.data.decoded import decode_images
from protolab.data.errors import DatasetFormatError, DatasetNotFoundError
from protolab.data.fewshot_sets import FewShotSplits, labeled_files
from protolab.data.images import LabeledImages
from protolab.data.reid import LAYOUTS as REID_LAYOUTS
from protolab.data.reid import SUBSETS as REID_SUBSETS
from protolab.data.reid import DISTRACTOR_ID, ReidSplits, load_reid_release, scan_subset
from protolab.data.transforms import is_image_file, probe_images
from protolab.data.xlsa17 import SPLIT_KEYS, ZSLData, split_problems, zsl_data

KINDS = ("fewshot", "uncertainty", "reid", "zsl", "features")
"""The folder layouts, one per dataset family (δ reads any of them)."""

HELP = "the README's 'Your own data' section; `protolab data check KIND DIR` lists every problem"
EXPECTED = {
    "fewshot": [f"{split}/<class>/<image>" for split in ("train", "val", "test")],
    "uncertainty": [f"{split}/<class>/<image>" for split in ("train", "test")],
    "reid": [f"{subset}/<id>_c<camera>….jpg" for subset in REID_SUBSETS.values()],
    "zsl": ["features.npy", "labels.csv", "attributes.csv", "splits.json"],
    "features": ["features.npy (or DIR itself a .npy file)", "labels.csv (optional)"],
    "images": ["<image> files at any depth"],
}
"""What each kind holds, relative to its folder (in messages)."""

GREY_MODES = frozenset({"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"})
"""PIL modes of one-channel images: a dataset of only these is decoded grey."""

_SHOWN = 10
_ZSL_KEYS = ("train", "val", "test_seen", "unseen_classes")
_REID = REID_LAYOUTS["folder"]


@dataclass
class FolderReport:
    """What a check found in the ``kind`` folder ``root``: ``summary`` lines for the researcher and ``problems``,
    each of which stops the folder from loading (none: the folder is valid)."""

    kind: str
    root: Path
    summary: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        verdict = "valid" if not self.problems else f"{len(self.problems)} problem(s)"
        lines = [f"{self.kind} folder {self.root}: {verdict}", *(f"  {line}" for line in self.summary)]
        if self.problems:
            lines += ["problems:", *(f"  - {problem}" for problem in self.problems)]
        return "\n".join(lines)

    def refuse(self) -> None:
        """Raise unless valid: :class:`DatasetNotFoundError` when ``root`` does not exist, else
        :class:`DatasetFormatError` listing every problem."""
        if not self.root.exists():
            raise DatasetNotFoundError(f"{self.kind} folder dataset", self.root, EXPECTED[self.kind], HELP)
        if self.problems:
            raise DatasetFormatError(self.root, f"not a valid {self.kind} folder ({len(self.problems)} problem(s); "
                                     f"see {HELP}):\n  - " + "\n  - ".join(self.problems))


def _listed(items: Sequence[object]) -> str:
    """The first :data:`_SHOWN` items, comma-separated, and how many more there are."""
    shown = ", ".join(map(str, items[:_SHOWN]))
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _images_below(folder: Path) -> list[Path]:
    """The image files at any depth below ``folder`` (suffixes PIL reads; hidden files skipped), sorted."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and not path.name.startswith(".")
                  and is_image_file(path))


def _probe(report: FolderReport, paths: Sequence[Path]) -> int:
    """Decode every file of ``paths``: each unreadable one is a problem naming it; the sizes and modes go to the
    summary. Returns the channels to decode the dataset to: 1 when every image is grey, else 3."""
    probes = probe_images(paths)
    for path, probe in zip(paths, probes):
        if probe.problem:
            report.problems.append(f"unreadable image {path} ({probe.problem})")
    sizes = [probe.size for probe in probes if probe.size]
    modes = Counter(probe.mode for probe in probes if probe.mode)
    if sizes:
        widths, heights = zip(*sizes)
        report.summary.append(f"image sizes (W×H): {min(widths)}–{max(widths)} × {min(heights)}–{max(heights)} "
                              f"({len(set(sizes))} distinct); modes: "
                              + ", ".join(f"{mode} {n}" for mode, n in modes.most_common()))
    return 1 if modes and set(modes) <= GREY_MODES else 3


def _image_classes(root: Path, splits: Sequence[str], report: FolderReport,
                   per_class: int) -> dict[str, dict[str, list[Path]]]:
    """``{split: {class: image files}}`` of ``root/<split>/<class>/``; a missing split, a split without class
    folders, images outside class folders, a class with no image or fewer than ``per_class`` are problems."""
    found = {}
    for split in splits:
        folder = root / split
        if not folder.is_dir():
            report.problems.append(f"missing split folder {folder}")
            continue
        classes = {sub.name: _images_below(sub) for sub in sorted(folder.iterdir())
                   if sub.is_dir() and not sub.name.startswith(".")}
        loose = [path for path in folder.iterdir() if path.is_file() and is_image_file(path)]
        if loose:
            report.problems.append(f"{len(loose)} image(s) directly in {folder}, outside any class folder: "
                                   f"{_listed([path.name for path in loose])}")
        if not classes:
            report.problems.append(f"{folder} has no class folders")
        empty = [str(folder / name) for name, paths in classes.items() if not paths]
        small = [f"{name} ({len(paths)})" for name, paths in classes.items() if 0 < len(paths) < per_class]
        if empty:
            report.problems.append(f"{split} has {len(empty)} empty class folder(s): {_listed(empty)}")
        if small:
            report.problems.append(f"{split} has {len(small)} class(es) with fewer images than shot + query = "
                                   f"{per_class}: {_listed(small)}")
        if classes:
            smallest = min(classes, key=lambda name: len(classes[name]))
            report.summary.append(f"{split}: {len(classes)} classes, {sum(map(len, classes.values()))} images; "
                                  f"smallest class {smallest!r} ({len(classes[smallest])} images)")
        found[split] = classes
    return found


def _all_paths(found: dict[str, dict[str, list[Path]]]) -> list[Path]:
    return [path for classes in found.values() for paths in classes.values() for path in paths]


def _scan_fewshot(root: Path, per_class: int) -> tuple[FolderReport, dict[str, dict[str, list[Path]]], int]:
    report = FolderReport("fewshot", root)
    found = _image_classes(root, ("train", "val", "test"), report, per_class)
    overlaps = [(first, second, sorted(set(found[first]) & set(found[second])))
                for first, second in combinations(found, 2)]
    report.problems += [f"the {first} and {second} splits share {len(shared)} class(es): {_listed(shared)}; few-shot "
                        "splits must be disjoint" for first, second, shared in overlaps if shared]
    if len(found) == 3 and not any(shared for *_, shared in overlaps):
        report.summary.append("splits: disjoint classes")
    return report, found, _probe(report, _all_paths(found))


def _scan_uncertainty(root: Path, ood: Sequence[Path]) -> tuple[FolderReport, dict[str, dict[str, list[Path]]], int]:
    report = FolderReport("uncertainty", root)
    found = _image_classes(root, ("train", "test"), report, 1)
    if len(found) == 2:
        strangers = sorted(set(found["test"]) - set(found["train"]))
        if strangers:
            report.problems.append(f"test has {len(strangers)} class(es) that train lacks: {_listed(strangers)}")
    channels = _probe(report, _all_paths(found))
    for folder in ood:
        ood_report = _scan_images(Path(folder))[0]
        report.summary += [f"OOD {line}" for line in ood_report.summary]
        report.problems += ood_report.problems
    return report, found, channels


def _scan_images(folder: Path) -> tuple[FolderReport, list[Path]]:
    """A folder of images at any depth (an out-of-distribution set)."""
    report = FolderReport("images", folder)
    paths = _images_below(folder) if folder.is_dir() else []
    if not folder.is_dir():
        report.problems.append(f"missing folder of images {folder}")
    elif not paths:
        report.problems.append(f"no images in {folder}")
    else:
        report.summary.append(f"{folder.name}: {len(paths)} images")
        _probe(report, paths)
    return report, paths


def _reid_folder(root: Path, report: FolderReport) -> Path | None:
    """The folder holding the three re-ID sub-folders: ``root`` or the one folder up to two levels below it
    holding ``bounding_box_train/``; none or several are problems."""
    train = REID_SUBSETS["train"]
    candidates = [root, *root.glob("*"), *root.glob("*/*")] if root.is_dir() else []
    found = [folder for folder in candidates if (folder / train).is_dir()]
    if len(found) != 1:
        where = f"several folders hold {train}/: {_listed(found)}; set data_root to one" if found else \
            f"no folder holds {train}/ (looked in {root} and two levels below)"
        report.problems.append(where)
        return None
    missing = [subset for subset in REID_SUBSETS.values() if not (found[0] / subset).is_dir()]
    if missing:
        report.problems.append(f"{found[0]} lacks {', '.join(f'{subset}/' for subset in missing)}")
        return None
    return found[0]


def _scan_reid(root: Path) -> tuple[FolderReport, Path | None]:
    report = FolderReport("reid", root)
    folder = _reid_folder(root, report)
    if folder is None:
        return report, None
    report.summary.append(f"release folder: {folder}")
    parsed, paths = {}, []
    for split, subset in REID_SUBSETS.items():
        files, person_ids, cameras, problems = scan_subset(folder / subset, _REID)
        report.problems += [f"{path}: {problem}" for path, problem in problems]
        parsed[split] = {pid for pid in person_ids if pid > DISTRACTOR_ID}
        paths += files
        others = sum(pid <= DISTRACTOR_ID for pid in person_ids)
        report.summary.append(f"{split} ({subset}/): {len(files)} images, {len(parsed[split])} identities "
                              f"(+ {others} junk or distractor images), cameras {sorted(set(cameras))}")
    unmatched = sorted(parsed["query"] - parsed["gallery"])
    if unmatched:
        report.problems.append(f"{len(unmatched)} query identit(ies) absent from the gallery "
                               f"({REID_SUBSETS['gallery']}/): {_listed(unmatched)}")
    shared = parsed["train"] & (parsed["query"] | parsed["gallery"])
    report.summary.append(f"train and test identities: {'disjoint' if not shared else f'{len(shared)} shared'}")
    _probe(report, paths)
    return report, folder


def _read_labels(path: Path, n: int | None, report: FolderReport) -> list[str] | None:
    """The class names of ``labels.csv`` (one per line), ``n`` of them when given; None after a problem."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    bad = [number for number, row in enumerate(rows, start=1) if len(row) != 1 or not row[0].strip()]
    if bad:
        report.problems.append(f"{path}: lines {_listed(bad)} do not hold exactly one class name")
        return None
    if n is not None and len(rows) != n:
        report.problems.append(f"{path} has {len(rows)} labels for the {n} rows of features.npy")
        return None
    return [row[0].strip() for row in rows]


def _read_features(path: Path, report: FolderReport) -> np.ndarray | None:
    """The finite numeric ``(N, D)`` matrix of the ``.npy`` file ``path``; None after a problem."""
    try:
        features = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        report.problems.append(f"{path} is not a readable .npy file ({type(error).__name__}: {error})")
        return None
    if features.ndim != 2 or features.dtype.kind not in "iuf" or not len(features):
        report.problems.append(f"{path} must hold a numeric N × D matrix, got shape {features.shape} {features.dtype}")
        return None
    if not np.isfinite(features).all():
        report.problems.append(f"{path} holds NaN or infinite values")
        return None
    return features


def _read_attributes(path: Path, report: FolderReport) -> tuple[list[str], np.ndarray] | None:
    """Class names and the ``(C, A)`` matrix of ``attributes.csv``; None after a problem (each named)."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if len(rows) < 2 or len(rows[0]) < 2:
        report.problems.append(f"{path} needs a header row 'class,<attribute>,…' and one row per class")
        return None
    width = len(rows[0])
    wrong = [number for number, row in enumerate(rows[1:], start=2) if len(row) != width]
    if wrong:
        report.problems.append(f"{path}: rows {_listed(wrong)} do not have the header's {width} fields "
                               f"(a class name and {width - 1} attributes)")
        return None
    try:
        values = np.array([[float(cell) for cell in row[1:]] for row in rows[1:]])
    except ValueError as error:
        report.problems.append(f"{path}: attributes must be numbers ({error})")
        return None
    names = [row[0].strip() for row in rows[1:]]
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated or not np.isfinite(values).all():
        report.problems.append(f"{path}: " + (f"classes with several rows: {_listed(repeated)}" if repeated
                                              else "NaN or infinite attributes"))
        return None
    return names, values


def _read_splits(path: Path, n_images: int, class_names: list[str], labels: np.ndarray,
                 report: FolderReport) -> dict[str, np.ndarray] | None:
    """The five xlsa17 index arrays (keys :data:`~protolab.data.xlsa17.SPLIT_KEYS`) of ``splits.json``; None after
    a problem (every one named)."""
    try:
        splits = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        report.problems.append(f"{path} is not readable JSON ({error})")
        return None
    missing = [key for key in _ZSL_KEYS if not isinstance(splits, dict) or key not in splits]
    if missing:
        report.problems.append(f"{path} lacks the key(s) {', '.join(missing)} (it needs {', '.join(_ZSL_KEYS)})")
        return None
    before = len(report.problems)
    index = {name: c for c, name in enumerate(class_names)}
    unknown = [name for name in splits["unseen_classes"] if name not in index]
    if unknown:
        report.problems.append(f"{path}: unseen classes without an attributes.csv row: {_listed(unknown)}")
    unseen = np.array([index[name] for name in splits["unseen_classes"] if name in index], dtype=np.int64)
    locs = {}
    for key in _ZSL_KEYS[:3]:
        values = splits[key]
        if not (isinstance(values, list) and values and all(isinstance(v, int) and 0 <= v < n_images for v in values)):
            report.problems.append(f"{path}: '{key}' must be a non-empty list of row indices in 0..{n_images - 1}")
            continue
        locs[key] = np.array(values, dtype=np.int64)
        tested = sorted({class_names[c] for c in labels[locs[key]] if c in unseen})
        if tested:
            report.problems.append(f"{path}: '{key}' holds images of unseen classes {_listed(tested)}")
    for first, second in combinations(locs, 2):
        shared = np.intersect1d(locs[first], locs[second])
        if len(shared):
            report.problems.append(f"{path}: '{first}' and '{second}' share {len(shared)} image(s), e.g. rows "
                                   f"{_listed(shared.tolist())}")
    if len(locs) == 3:
        idle = sorted(set(range(len(class_names))) - set(unseen.tolist())
                      - set(labels[np.concatenate([locs["train"], locs["val"]])].tolist()))
        if idle:
            report.problems.append(f"{path}: classes neither unseen nor in 'train' or 'val': "
                                   f"{_listed([class_names[c] for c in idle])}")
    if len(report.problems) > before:
        return None
    locs = {"trainval_loc": np.sort(np.concatenate([locs["train"], locs["val"]])), "train_loc": locs["train"],
            "val_loc": locs["val"], "test_seen_loc": locs["test_seen"],
            "test_unseen_loc": np.flatnonzero(np.isin(labels, unseen))}
    inconsistent = split_problems(locs, labels)
    report.problems += [f"{path}: {problem.replace('_loc', '')}" for problem in inconsistent]
    return None if inconsistent else locs


def _scan_zsl(root: Path) -> tuple[FolderReport, tuple | None]:
    """The report and, when valid, ``(class_names, features (N, D), labels (N,), attributes (C, A), locs)``."""
    report = FolderReport("zsl", root)
    missing = [name for name in EXPECTED["zsl"] if not (root / name).is_file()]
    if missing:
        report.problems.append(f"missing {', '.join(missing)} in {root}")
        return report, None
    features = _read_features(root / "features.npy", report)
    names = _read_labels(root / "labels.csv", None if features is None else len(features), report)
    attributes = _read_attributes(root / "attributes.csv", report)
    if features is None or names is None or attributes is None:
        return report, None
    class_names, matrix = attributes
    report.summary.append(f"features: {features.shape[0]} images × {features.shape[1]} dims; attributes: "
                          f"{matrix.shape[0]} classes × {matrix.shape[1]}")
    index = {name: c for c, name in enumerate(class_names)}
    no_row, no_image = sorted(set(names) - set(index)), sorted(set(index) - set(names))
    if no_row:
        report.problems.append(f"{root / 'attributes.csv'} has no row for classes of labels.csv: {_listed(no_row)}")
    if no_image:
        report.problems.append(f"{root / 'attributes.csv'} has rows for classes without images in labels.csv: "
                               f"{_listed(no_image)}")
    if no_row or no_image:
        return report, None
    labels = np.array([index[name] for name in names], dtype=np.int64)
    locs = _read_splits(root / "splits.json", len(features), class_names, labels, report)
    if locs is None:
        return report, None
    counts = {key.removesuffix("_loc"): len(locs[key]) for key in SPLIT_KEYS}
    classes = {key: len(np.unique(labels[locs[f"{key}_loc"]])) for key in ("train", "val", "test_unseen")}
    report.summary.append(f"classes: {classes['train']} train + {classes['val']} val seen, {classes['test_unseen']} "
                          "unseen; images: " + ", ".join(f"{key} {n}" for key, n in counts.items()))
    return report, (class_names, features, labels, matrix, locs)


def _feature_file(root: Path) -> Path:
    return root if root.suffix == ".npy" else root / "features.npy"


def _scan_features(root: Path) -> tuple[FolderReport, tuple[np.ndarray, list[str] | None] | None]:
    """The report and, when valid, the ``(N, D)`` matrix with its class names (None without ``labels.csv``)."""
    report = FolderReport("features", root)
    path = _feature_file(root)
    if not path.is_file():
        report.problems.append(f"missing {path}")
        return report, None
    features = _read_features(path, report)
    labels_path = path.with_name("labels.csv")
    names = _read_labels(labels_path, len(features), report) if features is not None and labels_path.is_file() else None
    if report.problems:
        return report, None
    labelled = f"{len(set(names))} classes (labels.csv)" if names else "no labels.csv: one class"
    report.summary.append(f"features: {features.shape[0]} points × {features.shape[1]} dims; {labelled}")
    return report, (features, names)


def check_folder(kind: str, root: str | Path, *, per_class: int = 1, ood: Sequence[str | Path] = ()) -> FolderReport:
    """Check the ``kind`` folder ``root`` (one of :data:`KINDS`) without training: its :class:`FolderReport`.

    Parameters
    ----------
    per_class : images every few-shot class needs (shot + query of an episode).
    ood : folders of out-of-distribution images checked beside an ``uncertainty`` folder.
    """
    root = Path(root)
    if kind == "fewshot":
        return _scan_fewshot(root, per_class)[0]
    if kind == "uncertainty":
        return _scan_uncertainty(root, [Path(folder) for folder in ood])[0]
    scans = {"reid": _scan_reid, "zsl": _scan_zsl, "features": _scan_features, "images": _scan_images}
    if kind not in scans:
        raise ValueError(f"unknown folder kind {kind!r}; choose one of {', '.join(KINDS)}")
    return scans[kind](root)[0]


def detect_kind(root: str | Path) -> str:
    """The kind of a folder given to δ, which reads any: ``features`` (a ``.npy`` file or a folder holding
    ``features.npy``: the zero-shot layout too), ``reid`` (a ``bounding_box_train/`` in it or up to two levels
    below), ``fewshot`` (a ``val/`` split), else ``uncertainty``."""
    root = Path(root)
    if _feature_file(root).is_file():
        return "features"
    if _reid_folder(root, FolderReport("reid", root)) is not None:
        return "reid"
    return "fewshot" if (root / "val").is_dir() else "uncertainty"


def _split_images(root: Path, split: str, classes: dict[str, list[Path]], class_names: list[str], image_size: int,
                  channels: int) -> LabeledImages:
    """The images of ``classes`` labelled by ``class_names``, decoded once (:func:`decode_images`)."""
    names = [name for name, paths in classes.items() for _ in paths]
    paths = [path for paths in classes.values() for path in paths]
    description = (f"folder {root.name} {split} ({len(classes)} classes, {len(paths)} images, "
                   f"{image_size}×{image_size} {'grey' if channels == 1 else 'RGB'}) from {root}")
    return decode_images(labeled_files(paths, names, class_names, description, image_size, channels), source=HELP)


def load_fewshot_folder(root: str | Path, *, image_size: int, per_class: int = 1) -> FewShotSplits:
    """:class:`FewShotSplits` of the ``fewshot`` folder ``root``, labels ``0..n-1`` within each split (classes in
    name order); images ``(C, image_size, image_size)`` with one channel when all are grey, else three.
    Raises as :meth:`FolderReport.refuse` unless :func:`check_folder` finds it valid."""
    root = Path(root)
    report, found, channels = _scan_fewshot(root, per_class)
    report.refuse()
    return FewShotSplits(**{split: _split_images(root, split, classes, sorted(classes), image_size, channels)
                            for split, classes in found.items()})


def load_uncertainty_folder(root: str | Path, *, image_size: int) -> tuple[LabeledImages, LabeledImages]:
    """``(train, test)`` of the ``uncertainty`` folder ``root``, labelled by train's classes in name order;
    channels as :func:`load_fewshot_folder`. Raises as :meth:`FolderReport.refuse`."""
    root = Path(root)
    report, found, channels = _scan_uncertainty(root, ())
    report.refuse()
    class_names = sorted(found["train"])
    return tuple(_split_images(root, split, found[split], class_names, image_size, channels)
                 for split in ("train", "test"))


def load_image_folder(folder: str | Path, *, image_size: int, count: int, seed: int, channels: int) -> LabeledImages:
    """``min(count, N)`` images of a folder of images at any depth (an out-of-distribution set), drawn with
    ``seed`` and decoded to ``(channels, image_size, image_size)``; the class of an image is the name of the
    folder holding it. Raises as :meth:`FolderReport.refuse`."""
    folder = Path(folder)
    report, paths = _scan_images(folder)
    report.refuse()
    names = [path.parent.name for path in paths]
    description = f"folder {folder.name} ({len(paths)} images, {image_size}×{image_size}) from {folder}"
    files = labeled_files(paths, names, sorted(set(names)), description, image_size, channels)
    return decode_images(files.draw(count, seed), source=HELP)


def load_reid_folder(root: str | Path, image_size: tuple[int, int]) -> ReidSplits:
    """:class:`ReidSplits` of the ``reid`` folder ``root`` (or the folder below it holding the three sub-folders),
    as :func:`~protolab.data.reid.load_reid_release` reads a release: RGB ``(3, H, W)``, cameras as ``domains``.
    Raises as :meth:`FolderReport.refuse`."""
    report, folder = _scan_reid(Path(root))
    report.refuse()
    return load_reid_release("folder", folder, image_size)


def load_zsl_folder(root: str | Path) -> ZSLData:
    """:class:`~protolab.data.xlsa17.ZSLData` of the ``zsl`` folder ``root``, classes in ``attributes.csv`` order,
    ``attributes`` its rows L2-normalised, ``original_attributes`` as written. Raises as
    :meth:`FolderReport.refuse`."""
    root = Path(root)
    report, arrays = _scan_zsl(root)
    report.refuse()
    class_names, features, labels, attributes, locs = arrays
    return zsl_data(root, "folder", class_names, features, labels, attributes, attributes, locs)


def load_feature_folder(root: str | Path) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Features float32 ``(N, D)``, class labels int64 ``(N,)`` (in name order; all 0 without ``labels.csv``)
    and a description, of the ``features`` folder or ``.npy`` file ``root``. Raises as
    :meth:`FolderReport.refuse`."""
    root = Path(root)
    report, arrays = _scan_features(root)
    report.refuse()
    features, names = arrays
    names = names or ["all"] * len(features)
    index = {name: c for c, name in enumerate(sorted(set(names)))}
    labels = torch.tensor([index[name] for name in names], dtype=torch.int64)
    return (torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)), labels,
            f"{_feature_file(root).name} of {root}: {features.shape[0]} points × {features.shape[1]} dims, "
            f"{len(index)} classes")
