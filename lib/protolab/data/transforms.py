"""Image helpers shared by every loader: resizing in-memory batches, decoding files, checking files decode.

- :func:`resize_images`: bilinear resize of an in-memory batch (embedded and packaged datasets).
- :func:`image_transform`: the decode transform of every file-backed :class:`~protolab.data.images.LabeledImages`.
- :func:`probe_images`: size and mode of image files, or why they do not decode (the folder checks report them);
  :func:`is_image_file`: a file of a format PIL reads, by its suffix.
- :func:`check_images`: refuses, when a dataset is loaded, image files that do not decode.

The decode transform's ``repr`` names every step (it is part of the key of the decoded-image cache of
:mod:`protolab.data.decoded`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms

from protolab.data.errors import DatasetFormatError

_SHOWN = 5
DECODE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)
"""What PIL raises on a file that is not a readable image (zero bytes, garbage, truncated, too large)."""


def resize_images(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """Bilinear resize of a batch of square images.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, H, W)`` float in ``[0, 1]``.
    image_size : int
        Side of the output.

    Returns
    -------
    torch.Tensor
        ``(N, C, image_size, image_size)``; the input itself when it already has that size. Bilinear
        weights are convex, so values stay in ``[0, 1]``.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be positive, got {image_size}")
    if images.shape[-2:] == (image_size, image_size):
        return images
    return F.interpolate(images, size=(image_size, image_size), mode="bilinear", align_corners=False)


class Invert:
    """``x → 1 - x`` on a float image in ``[0, 1]``; picklable, and named in the transform's ``repr``."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return 1.0 - image

    def __repr__(self) -> str:
        return "Invert()"


def image_transform(image_size: int | tuple[int, int], invert: bool = False) -> Callable[[Image.Image], torch.Tensor]:
    """The decode transform of file-backed datasets: PIL image → float tensor ``(C, H, W)`` in ``[0, 1]``.

    Parameters
    ----------
    image_size : output side ``S`` (square ``S × S``) or ``(H, W)``; bilinear resize with antialiasing.
    invert : return ``1 - x`` (dark strokes on white become bright strokes on black).

    The transform is picklable, so it works with ``DataLoader(num_workers > 0)``.
    """
    shape = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    steps: list[Callable] = [transforms.Resize(shape), transforms.ToTensor()]
    if invert:
        steps.append(Invert())
    return transforms.Compose(steps)


class ImageProbe(NamedTuple):
    """What :func:`probe_images` found in one file: ``size`` ``(W, H)`` and PIL ``mode`` (``"L"``, ``"RGB"``…) of a
    file that decodes, else ``problem``, why it does not (``size`` and ``mode`` then None)."""

    size: tuple[int, int] | None
    mode: str | None
    problem: str | None


def _probe(path: Path) -> ImageProbe:
    """:class:`ImageProbe` of ``path``, its whole file decoded; JPEGs at 1/8 scale (``draft``), which still reads
    every byte of the stream."""
    try:
        with Image.open(path) as image:
            size, mode = image.size, image.mode
            image.draft(image.mode, (1, 1))
            image.load()
    except DECODE_ERRORS as error:
        return ImageProbe(None, None, f"{type(error).__name__}: {error}")
    return ImageProbe(size, mode, None)


def probe_images(paths: Sequence[Path]) -> list[ImageProbe]:
    """One :class:`ImageProbe` per file of ``paths``, decoded in threads (PIL releases the GIL while decoding)."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        return list(pool.map(_probe, paths))


@lru_cache(maxsize=1)
def image_suffixes() -> frozenset[str]:
    """The file suffixes of the formats PIL reads (lower case, with the dot: ``.png``, ``.jpg``, ``.webp``…; not those
    it only writes, such as ``.pdf``)."""
    return frozenset(suffix for suffix, kind in Image.registered_extensions().items() if kind in Image.OPEN)


def is_image_file(path: Path) -> bool:
    """Whether ``path``'s suffix, in any case, is one of :func:`image_suffixes` (the name only; nothing is read)."""
    return path.suffix.lower() in image_suffixes()


def check_images(paths: Sequence[Path], source: str) -> None:
    """Raise :class:`DatasetFormatError` naming the first file of ``paths`` that does not decode as an image.

    Run when a file-backed dataset is loaded, so that a zero-byte or garbage file is refused before any
    model trains on the data rather than when a batch first reaches it (:func:`probe_images`).

    Parameters
    ----------
    paths : image files to check.
    source : where a correct copy is available, quoted in the message.
    """
    problems = [(path, probe.problem) for path, probe in zip(paths, probe_images(paths)) if probe.problem]
    if problems:
        others = [str(path) for path, _ in problems[1:_SHOWN]]
        also = f"; {len(problems) - 1} other files do not decode either, e.g. {others}" if others else ""
        raise DatasetFormatError(problems[0][0], f"not a readable image ({problems[0][1]}){also}", source)
