"""Market-1501 person re-identification (Zheng et al., ICCV 2015), read from the official release.

On disk (``Market-1501-v15.09.15.zip``)::

    <root>/Market-1501-v15.09.15/bounding_box_train/*.jpg   12,936 images of 751 identities
    <root>/Market-1501-v15.09.15/bounding_box_test/*.jpg    19,732 gallery images (750 ids + distractors + junk)
    <root>/Market-1501-v15.09.15/query/*.jpg                 3,368 query images

File names are ``PPPP_cCsS_FFFFFF_NN.jpg``: person id ``PPPP`` (``0000`` = distractor, a false
detection; ``-1`` = junk, a detection of "zero influence"), camera ``C`` (1–6), sequence ``S``, frame
``FFFFFF``, detection ``NN``. Other files (such as ``Thumbs.db``) are ignored.

How identities are represented, for the standard evaluation (Zheng et al.'s protocol: for each query,
gallery images with the same person id *and* the same camera are removed, junk is removed, and
distractors stay as negatives):

- ``extra['person_ids']``: int64 ``(N,)`` raw person id from the file name: ``-1`` junk, ``0``
  distractor, otherwise the identity. Evaluation code uses these with ``cameras``.
- ``labels``: ``train`` is relabelled ``0..n_ids-1`` (junk and distractors left out of training);
  ``query`` and ``gallery`` share one class list, ``class_names``: the identities present (zero-padded,
  ``"0002"``), then ``"0000"`` (distractor) and ``"-1"`` (junk) when present, so every image has a
  valid label and equal labels mean equal person ids.
- ``cameras``: int64 ``(N,)`` camera number ``C`` as written in the file name (1–6).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import torch

from protolab.data.errors import DatasetFormatError, DatasetNotFoundError
from protolab.data.images import LabeledImages
from protolab.data.torchvision_sets import image_transform

MARKET1501_SOURCE = "https://zheng-lab.cecs.anu.edu.au/Project/project_reid.html (Market-1501-v15.09.15.zip)"
FOLDER = "Market-1501-v15.09.15"
SUBSETS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
JUNK_ID = -1
DISTRACTOR_ID = 0
_NAME = re.compile(r"(-1|\d{4})_c(\d)s(\d+)_(\d{6})_(\d{2})\.jpg")


class ReidSplits(NamedTuple):
    """The training identities and the query / gallery sets of a re-identification benchmark."""

    train: LabeledImages
    query: LabeledImages
    gallery: LabeledImages


def _class_name(person_id: int) -> str:
    return "-1" if person_id == JUNK_ID else f"{person_id:04d}"


def _parse(folder: Path) -> tuple[list[Path], list[int], list[int]]:
    """Sorted ``*.jpg`` files of ``folder`` with their person ids and camera numbers."""
    paths = sorted(folder.glob("*.jpg"))
    if not paths:
        raise DatasetFormatError(folder, "no .jpg images in this folder", MARKET1501_SOURCE)
    person_ids, cameras = [], []
    for path in paths:
        match = _NAME.fullmatch(path.name)
        if match is None:
            raise DatasetFormatError(
                path,
                "file name does not follow Market-1501's 'PPPP_cCsS_FFFFFF_NN.jpg' (e.g. 0002_c1s1_000451_03.jpg)",
                MARKET1501_SOURCE,
            )
        person_ids.append(int(match.group(1)))
        cameras.append(int(match.group(2)))
    return paths, person_ids, cameras


def _labeled(
    paths: list[Path], person_ids: list[int], cameras: list[int], class_names: list[str], description: str,
    size: tuple[int, int],
) -> LabeledImages:
    index = {name: i for i, name in enumerate(class_names)}
    return LabeledImages(
        labels=torch.tensor([index[_class_name(pid)] for pid in person_ids], dtype=torch.int64),
        class_names=class_names,
        description=description,
        paths=paths,
        transform=image_transform(size),
        cameras=torch.tensor(cameras, dtype=torch.int64),
        extra={"person_ids": torch.tensor(person_ids, dtype=torch.int64)},
    )


def load_market1501(root: str | Path, size: tuple[int, int] = (128, 64)) -> ReidSplits:
    """Market-1501 train / query / gallery as file-backed :class:`LabeledImages` with cameras.

    See the module docstring for the layout and for how junk and distractor images are represented.

    Parameters
    ----------
    root : folder holding ``Market-1501-v15.09.15/``, or that folder itself.
    size : ``(H, W)`` of the images ``dataset[i]`` returns as float ``(3, H, W)`` in ``[0, 1]``; the
        files are 128×64.

    Returns
    -------
    ReidSplits

    Raises
    ------
    DatasetNotFoundError : one of the three folders is missing.
    DatasetFormatError : a folder has no images, or a ``.jpg`` name cannot be parsed.
    """
    root = Path(root)
    folder = root if (root / SUBSETS["train"]).is_dir() else root / FOLDER
    if not all((folder / name).is_dir() for name in SUBSETS.values()):
        expected = [f"{name}/PPPP_cCsS_FFFFFF_NN.jpg" for name in SUBSETS.values()]
        raise DatasetNotFoundError("Market-1501", folder, expected, MARKET1501_SOURCE)
    parsed = {split: _parse(folder / name) for split, name in SUBSETS.items()}

    paths, person_ids, cameras = parsed["train"]
    keep = [i for i, pid in enumerate(person_ids) if pid > DISTRACTOR_ID]
    train_ids = sorted({person_ids[i] for i in keep})
    train = _labeled(
        [paths[i] for i in keep], [person_ids[i] for i in keep], [cameras[i] for i in keep],
        [_class_name(pid) for pid in train_ids],
        f"Market-1501 train ({len(train_ids)} identities, {len(keep)} images) from {folder}", size,
    )

    test_ids = set(parsed["query"][1]) | set(parsed["gallery"][1])
    real = sorted(pid for pid in test_ids if pid > DISTRACTOR_ID)
    special = [pid for pid in (DISTRACTOR_ID, JUNK_ID) if pid in test_ids]
    class_names = [_class_name(pid) for pid in real + special]
    query, gallery = (
        _labeled(
            *parsed[split], class_names,
            f"Market-1501 {split} ({len(parsed[split][0])} images; labels shared by query and gallery, "
            f"person id -1 = junk, 0 = distractor) from {folder}", size,
        )
        for split in ("query", "gallery")
    )
    return ReidSplits(train, query, gallery)
