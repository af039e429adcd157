"""Person re-identification benchmarks read from their official releases: Market-1501 and DukeMTMC-reID.

On disk::

    <data_root>/Market-1501-v15.09.15/bounding_box_train/*.jpg   12,936 images of 751 identities
    <data_root>/Market-1501-v15.09.15/bounding_box_test/*.jpg    19,732 gallery images (750 ids + distractors + junk)
    <data_root>/Market-1501-v15.09.15/query/*.jpg                 3,368 query images
    <data_root>/DukeMTMC-reID/bounding_box_train/*.jpg            16,522 images of 702 identities
    <data_root>/DukeMTMC-reID/bounding_box_test/*.jpg             17,661 gallery images (702 ids + 408 distractor ids)
    <data_root>/DukeMTMC-reID/query/*.jpg                         2,228 query images

Market-1501 file names are ``PPPP_cCsS_FFFFFF_NN.jpg``: person id ``PPPP`` (``0000`` = distractor, a
false detection; ``-1`` = junk, a detection of "zero influence"), camera ``C`` (1–6), sequence ``S``,
frame ``FFFFFF``, detection ``NN``. DukeMTMC-reID names are ``PPPP_cC_fFFFFFFF.jpg`` (camera 1–8, frame
``FFFFFFF``); its distractors are ordinary identities seen only in the gallery, and it has no junk.
Other files (such as ``Thumbs.db``) are ignored. By default each split's images are decoded once into a
uint8 array cached on disk and memory-mapped as ``images`` (:func:`protolab.data.decoded.decode_images`);
with ``decoded=False`` they stay file-backed and every image is checked to decode when the dataset is
loaded. Either way ``paths`` lists the files and a file that does not decode is refused, naming it.

How identities are represented, for the standard evaluation (Zheng et al.'s protocol, used for both:
for each query, gallery images with the same person id *and* the same camera are removed, junk is
removed, and distractors stay as negatives):

- ``person_ids``: int64 ``(N,)`` raw person id from the file name: ``-1`` junk, ``0``
  distractor, otherwise the identity. Evaluation code uses these with ``domains`` (the cameras).
- ``labels``: ``train`` is relabelled ``0..n_ids-1`` (junk and distractors left out of training);
  ``query`` and ``gallery`` share one class list, ``class_names``: the identities present (zero-padded,
  ``"0002"``), then ``"0000"`` (distractor) and ``"-1"`` (junk) when present, so every image has a
  valid label and equal labels mean equal person ids.
- ``domains``: int64 ``(N,)`` camera number ``C`` as written in the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from protolab.data.decoded import prepare_files
from protolab.data.errors import DatasetFormatError, DatasetNotFoundError
from protolab.data.images import LabeledImages
from protolab.data.transforms import image_transform, is_image_file

MARKET1501_SOURCE = "https://zheng-lab.cecs.anu.edu.au/Project/project_reid.html (Market-1501-v15.09.15.zip)"
DUKEMTMC_SOURCE = ("https://github.com/layumi/DukeMTMC-reID_evaluation (DukeMTMC-reID.zip; the DukeMTMC data is "
                   "withdrawn by its authors, use a copy you are licensed to hold)")
SUBSETS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
JUNK_ID = -1
DISTRACTOR_ID = 0


@dataclass(frozen=True)
class ReidLayout:
    """Where a re-identification release keeps its files and how it names them.

    Attributes:
        title: the dataset's name in messages and descriptions.
        folder: the release folder under ``data_root``.
        pattern: regular expression of an image's file name; group 1 is the person id, group 2 the camera.
        example: the naming convention as written in messages, e.g. ``PPPP_cCsS_FFFFFF_NN.jpg``.
        source: where to download the release (or, for a researcher's folder, where its layout is described).
        suffixes: the suffixes of its image files; other files (``Thumbs.db``…) are ignored. None: every suffix PIL
            reads (:func:`~protolab.data.transforms.is_image_file`).
    """

    title: str
    folder: str
    pattern: re.Pattern
    example: str
    source: str
    suffixes: tuple[str, ...] | None = (".jpg",)

    def is_image(self, path: Path) -> bool:
        """Whether ``path`` is one of this layout's image files (by its suffix)."""
        return is_image_file(path) if self.suffixes is None else path.suffix in self.suffixes


LAYOUTS = {
    "market1501": ReidLayout("Market-1501", "Market-1501-v15.09.15", re.compile(r"(-1|\d{4})_c(\d)s(\d+)_(\d{6})_(\d{2})\.jpg"),
                             "PPPP_cCsS_FFFFFF_NN.jpg", MARKET1501_SOURCE),
    "dukemtmc": ReidLayout("DukeMTMC-reID", "DukeMTMC-reID", re.compile(r"(\d{4})_c(\d)_f(\d{7})\.jpg"),
                           "PPPP_cC_fFFFFFFF.jpg", DUKEMTMC_SOURCE),
    "folder": ReidLayout("re-ID folder", "", re.compile(r"(-1|\d+)_c(\d+)(?:\D.*)?\.\w+"),
                         "<id>_c<camera>[anything].<image suffix>",
                         "README, 'Your own data' (check it with `protolab data check reid DIR`)", suffixes=None),
}
"""The re-identification layouts by ``dataset`` name: the real releases and ``folder``, a researcher's folder of
Market-1501-named images (person id, ``_c``, camera, then anything; ``-1`` junk, ``0`` distractor), read by
:func:`protolab.data.folders.load_reid_folder`."""

FOLDER = LAYOUTS["market1501"].folder


class ReidSplits(NamedTuple):
    """The training identities and the query / gallery sets of a re-identification benchmark."""

    train: LabeledImages
    query: LabeledImages
    gallery: LabeledImages


def _class_name(person_id: int) -> str:
    return "-1" if person_id == JUNK_ID else f"{person_id:04d}"


def scan_subset(folder: Path, layout: ReidLayout) -> tuple[list[Path], list[int], list[int], list[tuple[Path, str]]]:
    """The image files of ``folder`` (sorted, :meth:`ReidLayout.is_image`) whose names parse, with their person ids
    and camera numbers, and every problem as ``(path, what is wrong)``: no image in the folder, a name that does not
    follow ``layout``. Names are checked, not contents."""
    images = sorted(path for path in folder.iterdir() if layout.is_image(path))
    if not images:
        kinds = "image" if layout.suffixes is None else "/".join(layout.suffixes)
        return [], [], [], [(folder, f"no {kinds} images in this folder")]
    paths, person_ids, cameras, problems = [], [], [], []
    for path in images:
        match = layout.pattern.fullmatch(path.name)
        if match is None:
            problems.append((path, f"file name does not follow {layout.title}'s '{layout.example}'"))
            continue
        paths.append(path)
        person_ids.append(int(match.group(1)))
        cameras.append(int(match.group(2)))
    return paths, person_ids, cameras, problems


def _parse(folder: Path, layout: ReidLayout) -> tuple[list[Path], list[int], list[int]]:
    """:func:`scan_subset` of ``folder``; its first problem raised as a :class:`DatasetFormatError`."""
    paths, person_ids, cameras, problems = scan_subset(folder, layout)
    if problems:
        raise DatasetFormatError(*problems[0], layout.source)
    return paths, person_ids, cameras


def _labeled(
    paths: list[Path], person_ids: list[int], cameras: list[int], class_names: list[str], description: str,
    image_size: tuple[int, int], layout: ReidLayout, decoded: bool,
) -> LabeledImages:
    index = {name: i for i, name in enumerate(class_names)}
    files = LabeledImages(
        labels=torch.tensor([index[_class_name(pid)] for pid in person_ids], dtype=torch.int64),
        class_names=class_names,
        description=description,
        paths=paths,
        transform=image_transform(image_size),
        domains=torch.tensor(cameras, dtype=torch.int64),
        person_ids=torch.tensor(person_ids, dtype=torch.int64),
    )
    return prepare_files(files, source=layout.source, decoded=decoded)


def load_reid_release(name: str, data_root: str | Path, image_size: tuple[int, int] = (128, 64),
                      decoded: bool = True) -> ReidSplits:
    """Train / query / gallery of a real re-identification release (``"market1501"`` or ``"dukemtmc"``)
    as file-backed :class:`LabeledImages`, cameras as ``domains``.

    See the module docstring for the layouts and for how junk and distractor images are represented.

    Parameters
    ----------
    name : a key of :data:`LAYOUTS`.
    data_root : folder holding the release folder (``Market-1501-v15.09.15/``, ``DukeMTMC-reID/``), or
        that folder itself.
    image_size : ``(H, W)`` of the images ``dataset[i]`` returns as float ``(3, H, W)`` in ``[0, 1]``
        (Market-1501's files are 128×64; DukeMTMC-reID's vary in size).
    decoded : decode each split once into a memory-mapped uint8 cache (Market-1501 at 128×64: 0.32 GB for
        train, 0.57 GB for query and gallery); False keeps the splits file-backed.

    Returns
    -------
    ReidSplits

    Raises
    ------
    DatasetNotFoundError : one of the three folders is missing.
    DatasetFormatError : a folder has no images, a ``.jpg`` name cannot be parsed or a ``.jpg`` used does not
        decode (training images of junk and distractors are not read).
    ValueError : ``name`` is not a known release.
    """
    layout = _layout(name)
    folder = reid_folder(Path(data_root), name)
    parsed = {split: _parse(folder / subset, layout) for split, subset in SUBSETS.items()}

    paths, person_ids, cameras = parsed["train"]
    keep = [i for i, pid in enumerate(person_ids) if pid > DISTRACTOR_ID]
    train_ids = sorted({person_ids[i] for i in keep})
    train = _labeled(
        [paths[i] for i in keep], [person_ids[i] for i in keep], [cameras[i] for i in keep],
        [_class_name(pid) for pid in train_ids],
        f"{layout.title} train ({len(train_ids)} identities, {len(keep)} images) from {folder}", image_size,
        layout, decoded,
    )

    test_ids = set(parsed["query"][1]) | set(parsed["gallery"][1])
    real = sorted(pid for pid in test_ids if pid > DISTRACTOR_ID)
    special = [pid for pid in (DISTRACTOR_ID, JUNK_ID) if pid in test_ids]
    class_names = [_class_name(pid) for pid in real + special]
    query, gallery = (
        _labeled(
            *parsed[split], class_names,
            f"{layout.title} {split} ({len(parsed[split][0])} images; labels shared by query and gallery, "
            f"person id -1 = junk, 0 = distractor) from {folder}", image_size, layout, decoded,
        )
        for split in ("query", "gallery")
    )
    return ReidSplits(train, query, gallery)


def load_market1501(data_root: str | Path, image_size: tuple[int, int] = (128, 64),
                    decoded: bool = True) -> ReidSplits:
    """:func:`load_reid_release` of Market-1501."""
    return load_reid_release("market1501", data_root, image_size, decoded)


def load_dukemtmc(data_root: str | Path, image_size: tuple[int, int] = (128, 64), decoded: bool = True) -> ReidSplits:
    """:func:`load_reid_release` of DukeMTMC-reID."""
    return load_reid_release("dukemtmc", data_root, image_size, decoded)


def _layout(name: str) -> ReidLayout:
    if name not in LAYOUTS:
        raise ValueError(f"unknown re-identification release {name!r}; choose one of {', '.join(LAYOUTS)}")
    return LAYOUTS[name]


def reid_folder(data_root: Path, name: str) -> Path:
    """The release folder of ``name``: ``data_root`` itself or ``data_root/<release folder>``, whichever holds
    the three image folders; :class:`DatasetNotFoundError` naming them when neither does. Reads no file."""
    layout = _layout(name)
    folder = data_root if (data_root / SUBSETS["train"]).is_dir() else data_root / layout.folder
    if not all((folder / subset).is_dir() for subset in SUBSETS.values()):
        expected = [f"{subset}/{layout.example}" for subset in SUBSETS.values()]
        raise DatasetNotFoundError(layout.title, folder, expected, layout.source)
    return folder


def market1501_folder(data_root: Path) -> Path:
    """:func:`reid_folder` of Market-1501."""
    return reid_folder(data_root, "market1501")


def dukemtmc_folder(data_root: Path) -> Path:
    """:func:`reid_folder` of DukeMTMC-reID."""
    return reid_folder(data_root, "dukemtmc")
