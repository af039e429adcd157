"""Dataset loaders: real files on disk and embedded offline defaults, one return type per family.

Each notebook picks its data with a ``dataset`` name and a ``data_root``; the family functions below
return the same structure whether they read the paper's files or built the embedded default.

=====================  =========================================  =====================================
family                 embedded default (no download)              real datasets (at ``data_root``)
=====================  =========================================  =====================================
in-distribution        ``digits`` (scikit-learn)                   ``mnist``
out-of-distribution    ``glyphs`` (digit-like, matplotlib fonts)   ``omniglot`` (evaluation alphabets)
few-shot               ``glyphs`` (split by script)                ``miniimagenet``, ``cub``, ``omniglot``
zero-shot (xlsa17)     ``glyph-zsl``                               ``AWA2``, ``CUB``, ``APY``, ``SUN``, or
                                                                   any folder in the xlsa17 layout
=====================  =========================================  =====================================
"""

from __future__ import annotations

from pathlib import Path

import torch

from protolab.data.digits import load_digits
from protolab.data.errors import DatasetError, DatasetFormatError, DatasetNotFoundError
from protolab.data.fewshot_sets import FewShotSplits, load_cub, load_mini_imagenet, load_omniglot_splits
from protolab.data.glyph_zsl import load_glyph_zsl
from protolab.data.glyphs import load_digit_like_glyphs, load_glyphs, split_by_group
from protolab.data.images import LabeledImages
from protolab.data.torchvision_sets import load_mnist, load_omniglot
from protolab.data.xlsa17 import ZSLData, load_xlsa17

__all__ = ["DatasetError", "DatasetFormatError", "DatasetNotFoundError", "FewShotSplits", "LabeledImages",
           "ZSLData", "load_fewshot", "load_in_distribution", "load_out_of_distribution", "load_zsl"]


def _require_root(dataset: str, data_root: str | Path) -> Path:
    if not str(data_root):
        raise DatasetNotFoundError(dataset, Path("<data_root>"), [f"(set the data_root parameter: {dataset} is "
                                                                   "a real dataset, not an embedded one)"],
                                   "see the loader's docstring in protolab.data")
    return Path(data_root)


def _unknown(family: str, name: str, known: tuple[str, ...]) -> ValueError:
    return ValueError(f"unknown {family} dataset {name!r}; choose one of {', '.join(known)}")


def load_in_distribution(name: str, data_root: str | Path = "", *, image_size: int = 28,
                         seed: int = 0) -> tuple[LabeledImages, LabeledImages]:
    """``(train, test)`` images of digits: ``digits`` (embedded, 8×8 resized) or ``mnist`` (28×28)."""
    if name == "digits":
        return load_digits(seed=seed, image_size=image_size)
    if name == "mnist":
        if image_size != 28:
            raise ValueError("mnist images are 28×28; set image_size=28")
        return load_mnist(_require_root(name, data_root))
    raise _unknown("in-distribution", name, ("digits", "mnist"))


def load_out_of_distribution(name: str, data_root: str | Path = "", *, image_size: int = 28, count: int = 1000,
                             seed: int = 0) -> LabeledImages:
    """``count`` images no digit model was trained on: ``glyphs`` (letters drawn like the digits) or
    ``omniglot`` (evaluation alphabets, inverted to bright strokes like MNIST), drawn with ``seed``."""
    if name == "glyphs":
        return load_digit_like_glyphs(seed=seed, n=count, image_size=image_size)
    if name == "omniglot":
        data = load_omniglot(_require_root(name, data_root), background=False, image_size=image_size, invert=True)
        chosen = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:count]
        return data.subset(chosen.sort().values)
    raise _unknown("out-of-distribution", name, ("glyphs", "omniglot"))


def load_fewshot(name: str, data_root: str | Path = "", *, image_size: int = 28, seed: int = 0,
                 instances_per_class: int = 20) -> FewShotSplits:
    """Meta-train/val/test splits with disjoint classes, labels ``0..n-1`` within each split.

    ``glyphs`` splits the rendered characters by script (alphabet), so novel classes come from unseen
    alphabets as in Omniglot's protocol; ``omniglot`` uses Lake et al.'s background/evaluation split.
    """
    if name == "glyphs":
        data = load_glyphs(seed=seed, image_size=image_size, instances_per_class=instances_per_class)
        parts = split_by_group(data, seed=seed)
        return FewShotSplits(*(part.select_classes(sorted(set(part.labels.tolist())), part.description +
                                                   f"; {split} scripts: {', '.join(part.extra['split_groups'])}")
                               for split, part in zip(("train", "val", "test"), parts)))
    loaders = {"miniimagenet": load_mini_imagenet, "cub": load_cub}
    if name in loaders:
        return loaders[name](_require_root(name, data_root), resize=image_size)
    if name == "omniglot":
        return load_omniglot_splits(_require_root(name, data_root), image_size=image_size, invert=True)
    raise _unknown("few-shot", name, ("glyphs", "miniimagenet", "cub", "omniglot"))


def load_zsl(name: str, data_root: str | Path = "", *, seed: int = 0) -> ZSLData:
    """Generalized zero-shot data in the xlsa17 layout: ``glyph-zsl`` (embedded) or a folder of ``data_root``."""
    if name == "glyph-zsl":
        return load_glyph_zsl(seed=seed)
    return load_xlsa17(_require_root(name, data_root), name)
