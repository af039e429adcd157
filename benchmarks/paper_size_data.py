"""Data in the real on-disk layouts at the paper's sizes (or smaller), random pixels and features.

For timing the paper-scale path without the real datasets. Each writer takes the real counts as defaults
and smaller ones for tests; the files follow the layouts the loaders read (see ``tests/layouts.py``,
whose writers these reuse):

- :func:`write_mini_imagenet`: Ravi & Larochelle's CSV layout, 64/16/20 classes × 600 JPEGs of 84×84
  (60,000 files, about 0.3 GB);
- :func:`write_market1501`: Market-1501's release, 12,936 training images of 751 identities, 3,368
  queries and 19,732 gallery images (750 identities, 2,798 distractors ``0000``, 3,819 junk ``-1``), JPEGs
  of 128×64 named ``PPPP_cCsS_FFFFFF_NN.jpg``;
- :func:`write_cub_xlsa17`: xlsa17's CUB (``res101.mat`` with 11,788 × 2,048 features, ``att_splits.mat``
  with 200 × 312 attributes and the proposed split: 7,057 trainval, 1,764 test-seen, 2,967 test-unseen
  images; train / val classes 100 / 50).

    python benchmarks/paper_size_data.py                        # all three, full size, in a temporary folder
    python benchmarks/paper_size_data.py --out /data/fake --only miniimagenet --scale 0.1

Without ``--out`` the files are written to a temporary folder, timed and deleted (a benchmark of the
generation itself).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:  # run as a script: the repository root, for tests.layouts
    sys.path.insert(0, ROOT)
from tests.layouts import write_images  # noqa: E402
from tests.layouts import write_mini_imagenet as write_mini_imagenet_layout  # noqa: E402

from protolab.data.xlsa17 import write_xlsa17  # noqa: E402

MINI_IMAGENET_CLASSES = (64, 16, 20)
MARKET1501 = {"train_ids": 751, "train_images": 12936, "test_ids": 750, "query_images": 3368,
              "gallery_images": 13115, "distractors": 2798, "junk": 3819}
"""Market-1501's counts; ``gallery_images`` counts the test identities' gallery images only (19,732 in all)."""
CUB_XLSA17 = {"classes": (100, 50, 50), "images": (5875, 2946, 2967), "test_seen": 1764, "n_attributes": 312,
              "dim": 2048}
"""xlsa17 CUB: classes and images of (train, val, unseen) classes; test-seen images are taken from train + val."""


def spread(total: int, parts: int) -> np.ndarray:
    """``parts`` counts as equal as possible summing to ``total`` (the larger ones first)."""
    return np.full(parts, total // parts) + (np.arange(parts) < total % parts)


def write_mini_imagenet(root: Path, *, classes: tuple[int, int, int] = MINI_IMAGENET_CLASSES,
                        images_per_class: int = 600, shape: tuple[int, int] = (84, 84)) -> Path:
    """``<root>/miniImageNet/{train,val,test}.csv`` and ``images/<wnid><index>.jpg``: ``classes`` (train, val,
    test) classes of ``images_per_class`` random-pixel JPEGs of ``shape`` each; returns ``root``."""
    wnids = iter(f"n{10_000_000 + c:08d}" for c in range(sum(classes)))
    split_classes = {split: [next(wnids) for _ in range(n)] for split, n in zip(("train", "val", "test"), classes)}
    return write_mini_imagenet_layout(Path(root), split_classes, images_per_class, shape)


def _market_name(person: int, index: int, camera_offset: int = 0) -> str:
    """Image ``index`` of person ``person`` (-1 junk, 0 distractor): camera and sequence cycle through 1–6."""
    camera, sequence = 1 + (index + camera_offset) % 6, 1 + index // 6 % 6
    person_id = "-1" if person == -1 else f"{person:04d}"
    return f"{person_id}_c{camera}s{sequence}_{25 * index:06d}_{1 + camera_offset:02d}.jpg"


def write_market1501(root: Path, *, train_ids: int = MARKET1501["train_ids"],
                     train_images: int = MARKET1501["train_images"], test_ids: int = MARKET1501["test_ids"],
                     query_images: int = MARKET1501["query_images"],
                     gallery_images: int = MARKET1501["gallery_images"], distractors: int = MARKET1501["distractors"],
                     junk: int = MARKET1501["junk"], shape: tuple[int, int] = (128, 64)) -> Path:
    """Market-1501's release layout ``<root>/Market-1501-v15.09.15/{bounding_box_train,query,bounding_box_test}``.

    Training identities are the odd ids ``1, 3, …``, test identities the even ids ``2, 4, …``; images are
    spread evenly over the identities; a test identity's queries and gallery images cycle through the
    cameras from different starting cameras, so every query has gallery matches on other cameras. The
    gallery also holds ``distractors`` images of person ``0000`` and ``junk`` of person ``-1``. Returns ``root``.
    """
    folder = Path(root) / "Market-1501-v15.09.15"
    train_people, test_people = range(1, 2 * train_ids, 2), range(2, 2 * test_ids + 1, 2)

    def names(people: range, counts: np.ndarray, camera_offset: int) -> list[str]:
        return [_market_name(p, j, camera_offset) for p, n in zip(people, counts) for j in range(n)]

    subsets = {
        "bounding_box_train": names(train_people, spread(train_images, train_ids), 0),
        "query": names(test_people, spread(query_images, test_ids), 0),
        "bounding_box_test": names(test_people, spread(gallery_images, test_ids), 1)
        + names(range(0, 1), [distractors], 0) + names(range(-1, 0), [junk], 0),
    }
    seed = 0
    for subset, subset_names in subsets.items():
        write_images(folder / subset, subset_names, shape, first_seed=seed)
        seed += len(subset_names)
    return Path(root)


def write_cub_xlsa17(root: Path, *, classes: tuple[int, int, int] = CUB_XLSA17["classes"],
                     images: tuple[int, int, int] = CUB_XLSA17["images"], test_seen: int = CUB_XLSA17["test_seen"],
                     n_attributes: int = CUB_XLSA17["n_attributes"], dim: int = CUB_XLSA17["dim"],
                     seed: int = 0) -> Path:
    """xlsa17's ``<root>/CUB/{res101.mat, att_splits.mat}`` with random class-structured features.

    ``classes`` and ``images`` give the (train, val, unseen) classes and their images, spread evenly over
    the classes; ``test_seen`` images of the train and val classes (spread over them) form ``test_seen_loc``
    and the others ``trainval_loc``; as in the official files, ``train_loc`` and ``val_loc`` list every image
    of their classes, test-seen ones included. Features are non-negative (ReLU of a class mean plus noise),
    attributes uniform in ``[0, 100]`` with unit-L2 normalised copies. Returns the ``CUB`` folder.
    """
    rng = np.random.default_rng(seed)
    n_classes = sum(classes)
    per_class = np.concatenate([spread(n, c) for n, c in zip(images, classes)])
    labels = np.repeat(np.arange(n_classes), per_class)
    features = np.maximum(rng.normal(size=(n_classes, dim))[labels] + rng.normal(size=(len(labels), dim)), 0)
    first = np.concatenate([[0], np.cumsum(per_class)[:-1]])
    n_seen = classes[0] + classes[1]
    held = spread(test_seen, n_seen)
    is_test_seen = np.zeros(len(labels), dtype=bool)
    for c in range(n_seen):
        is_test_seen[first[c]:first[c] + held[c]] = True
    index = np.arange(len(labels))
    seen = labels < n_seen
    original = rng.uniform(0, 100, (n_classes, n_attributes))
    splits = {"trainval_loc": index[seen & ~is_test_seen], "train_loc": index[labels < classes[0]],
              "val_loc": index[seen & (labels >= classes[0])], "test_seen_loc": index[is_test_seen],
              "test_unseen_loc": index[~seen]}
    return write_xlsa17(root, "CUB", features=features, labels=labels,
                        attributes=original / np.linalg.norm(original, axis=1, keepdims=True),
                        original_attributes=original, splits=splits,
                        class_names=[f"{c + 1:03d}.Bird_{c + 1}" for c in range(n_classes)])


def scaled_count(count: int, scale: float, minimum: int) -> int:
    """``count`` × ``scale``, rounded, at least ``minimum`` (image counts of the scaled layouts)."""
    return max(minimum, round(count * scale))


def write_scaled(name: str, root: Path, scale: float) -> Path:
    """Layout ``name`` (a key of :data:`LAYOUTS`) with ``scale`` × its real image counts; classes and
    identities are kept, each with at least one image (two per CUB class: one test-seen, one trainval)."""
    if name == "miniimagenet":
        return write_mini_imagenet(root, images_per_class=scaled_count(600, scale, 1))
    if name == "market1501":
        ids = {"train_images": MARKET1501["train_ids"], "query_images": MARKET1501["test_ids"],
               "gallery_images": MARKET1501["test_ids"], "distractors": 1, "junk": 1}
        return write_market1501(root, **{key: scaled_count(MARKET1501[key], scale, least) for key, least in ids.items()})
    if name == "cub-xlsa17":
        counts = zip(CUB_XLSA17["images"], CUB_XLSA17["classes"])
        return write_cub_xlsa17(root, images=tuple(scaled_count(n, scale, 2 * c) for n, c in counts),
                                test_seen=scaled_count(CUB_XLSA17["test_seen"], scale, sum(CUB_XLSA17["classes"][:2])))
    raise ValueError(f"unknown layout {name!r}; choose one of {', '.join(LAYOUTS)}")


LAYOUTS = ("miniimagenet", "market1501", "cub-xlsa17")


def _folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="folder to write into (kept); default: a temporary folder, deleted")
    parser.add_argument("--only", nargs="+", choices=LAYOUTS, default=LAYOUTS)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the real image counts (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="protolab-paper-size-") as temporary:
        out = args.out or Path(temporary)
        for name in args.only:
            root = out / name
            start = time.perf_counter()
            write_scaled(name, root, args.scale)
            seconds = time.perf_counter() - start
            files = sum(1 for path in root.rglob("*") if path.is_file())
            print(f"{name:13s} {files:7,d} files {_folder_bytes(root) / 1e6:8.1f} MB in {seconds:6.1f} s  ({root})")


if __name__ == "__main__":
    main()
