"""Decode once: the image files of a dataset decoded into one uint8 array on disk, memory-mapped afterwards.

A file-backed :class:`~protolab.data.images.LabeledImages` decodes a file every time an image is read
(``benchmarks/loader_throughput.py`` compares both paths).
:func:`decode_images` decodes every file once, with the dataset's own ``transform``, into a uint8 array
``(N, C, H, W)`` saved as ``cache_dir()/decoded/<key>.npy`` (see :func:`protolab.data.cache.cache_dir`),
and returns the dataset with that array memory-mapped as ``images``: an episode is then one fancy index of
the array, and the pages are shared by every process that maps the file (DataLoader workers, parallel
notebooks).

The key is the sha256 of the transform (its ``repr``, which names the output size), the channels and, for
every file, its absolute path, size and modification time: editing, replacing or touching a file gives a
new key, hence a new decode. The array is written atomically (:func:`protolab.core.atomic.atomic_write`)
with its checksum beside it (:func:`protolab.data.cache.record_checksum`); a cached array that was altered
or truncated is rebuilt with a ``RuntimeWarning`` (:func:`protolab.data.cache.is_intact`). Superseded
arrays stay in the cache folder until deleted.

:func:`prepare_files` is what every loader of image files (MiniImageNet, CUB-200-2011, Omniglot,
Market-1501, DukeMTMC-reID) returns through: decoded by default, or file-backed with ``decoded=False``.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import IO

import numpy as np
import torch

from protolab.data.cache import cache_dir, is_intact, record_checksum
from protolab.data.images import LabeledImages
from protolab.data.transforms import DECODE_ERRORS, check_images
from protolab.core.atomic import atomic_write

CACHE_VERSION = 1
"""Bumped whenever a change of this module changes the cached bytes: older arrays are then ignored."""

FOLDER = "decoded"
"""Sub-folder of :func:`~protolab.data.cache.cache_dir` holding the decoded arrays."""

_CHUNK = 1024
"""Images decoded ahead of the write, at most."""


def cache_path(data: LabeledImages) -> Path:
    """Where the decoded array of the file-backed ``data`` is cached: ``cache_dir()/decoded/<key>.npy``.

    The key hashes :data:`CACHE_VERSION`, ``data.transform_channels``, ``repr(data.transform)`` and each
    file's absolute path, size and modification time (one ``stat`` per file; no file is read).
    """
    if data.paths is None:
        raise ValueError("only file-backed LabeledImages (with `paths`) have a decoded cache")
    digest = hashlib.sha256(json.dumps([CACHE_VERSION, data.transform_channels, repr(data.transform)]).encode())
    for path in data.paths:
        stat = os.stat(path)
        digest.update(f"\n{os.path.abspath(path)}\t{stat.st_size}\t{stat.st_mtime_ns}".encode())
    return cache_dir() / FOLDER / f"{digest.hexdigest()[:32]}.npy"


def _quantised(data: LabeledImages, index: int) -> np.ndarray:
    """Image ``index`` of file-backed ``data`` decoded by its transform, as uint8 ``(C, H, W)``: ``round(255 x)``."""
    image = data[index][0]
    return image.mul(255).round_().clamp_(0, 255).to(torch.uint8).numpy()


def _write_decoded(data: LabeledImages, path: Path, source: str, workers: int) -> None:
    """Decode every file of ``data`` (in ``workers`` threads) into the ``.npy`` file ``path``, atomically.

    A file that does not decode raises :class:`~protolab.data.errors.DatasetFormatError` naming it (from
    :func:`~protolab.data.transforms.check_images`, run only when decoding failed).
    """
    def write(handle: IO[bytes]) -> None:
        first = _quantised(data, 0)
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.uint8)), "fortran_order": False,
                  "shape": (len(data), *first.shape)}
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(first.tobytes())
        with ThreadPoolExecutor(max_workers=workers) as pool:  # PIL releases the GIL while decoding
            for start in range(1, len(data), _CHUNK):  # at most _CHUNK decoded images in memory
                indices = range(start, min(start + _CHUNK, len(data)))
                for index, image in zip(indices, pool.map(lambda i: _quantised(data, i), indices)):
                    if image.shape != first.shape:
                        raise ValueError(f"{data.paths[index]} decodes to shape {image.shape}, the first file to "
                                         f"{first.shape}: the transform must give every image the same size")
                    handle.write(image.tobytes())

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write(path, write)
    except DECODE_ERRORS:
        check_images(data.paths, source)  # names the file that does not decode
        raise


def decode_images(data: LabeledImages, *, source: str, workers: int | None = None) -> LabeledImages:
    """``data`` with every file decoded once: ``images`` uint8 ``(N, C, H, W)`` memory-mapped from the cache.

    Parameters
    ----------
    data : file-backed images (``paths`` and ``transform``). Data that is already decoded is returned as is.
    source : where a correct copy of the files is available, quoted when a file does not decode.
    workers : decoding threads when the cache is built (default: the number of CPUs, at most 4).

    Returns
    -------
    LabeledImages
        ``data`` with ``images`` set (``paths`` and ``transform`` kept, as the record of where the images
        come from) and ``description`` ending in ``"; decoded cache <size> at <path>"``. ``dataset[i]`` is the
        transform's float image to within uint8 rounding (exactly, for transforms that resize in PIL and
        end with ``ToTensor``). The array is mapped copy-on-write: writing to ``images`` changes this
        process's copy only, never the cache.

    Raises
    ------
    DatasetFormatError : a file does not decode (only when the cache is built: a cached array was
        decoded from files of the same size and modification time).
    ValueError : ``data`` has no files, or its transform gives images of different sizes.
    """
    if data.paths is None:
        raise ValueError("decode_images needs file-backed LabeledImages (`paths` and `transform`)")
    if data.images is not None:
        return data
    if len(data) == 0:
        raise ValueError(f"no image files to decode in {data.description}")
    path = cache_path(data)
    if not is_intact(path):
        _write_decoded(data, path, source, workers or min(4, os.cpu_count() or 1))
        record_checksum(path)
    images = torch.from_numpy(np.load(path, mmap_mode="c"))
    return replace(data, images=images, description=f"{data.description}; decoded cache {_size(path)} at {path}")


def prepare_files(data: LabeledImages, *, source: str, decoded: bool) -> LabeledImages:
    """What a loader of image files returns: :func:`decode_images` of ``data`` if ``decoded``, else ``data``
    file-backed once every file is checked to decode (:func:`~protolab.data.transforms.check_images`).
    Either way a file that does not decode raises :class:`~protolab.data.errors.DatasetFormatError` naming it."""
    if decoded:
        return decode_images(data, source=source)
    check_images(data.paths, source)
    return data


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
