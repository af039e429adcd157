"""The one return type of every image dataset, real or embedded.

A loader returns :class:`LabeledImages` (or a named tuple of them for splits). Samplers read
``labels`` without touching pixels; models read ``dataset[i] -> (image, label)``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset


def float_images(images: torch.Tensor) -> torch.Tensor:
    """Images as models take them: uint8 ``(…, C, H, W)`` in ``0..255`` become float32 ``x / 255`` in ``[0, 1]``
    (as ``torchvision.transforms.ToTensor`` divides); float images are returned unchanged."""
    return images.float().div_(255) if images.dtype == torch.uint8 else images


@dataclass
class LabeledImages(Dataset):
    """Images with integer class labels.

    The pixels are in ``images``, in files (``paths``, decoded on access through ``transform``), or both:

    - ``images`` only: in memory, float ``(N, C, H, W)`` in ``[0, 1]`` (embedded and packaged data) or
      uint8 ``(N, C, H, W)`` in ``0..255``;
    - ``paths`` and ``transform`` only: file-backed, each file decoded when it is read;
    - both: files decoded once (:func:`protolab.data.decoded.decode_images`) into uint8 ``images``,
      memory-mapped from the on-disk cache; ``paths`` and ``transform`` record where they came from and how
      they were decoded, and ``images`` is what is read.

    Whatever the storage, ``dataset[i]`` (and :func:`protolab.training.episodes.gather_images`) gives a float image
    ``(C, H, W)`` in ``[0, 1]``: uint8 pixels are converted by :func:`float_images` when read.

    Attributes:
        labels: ``(N,)`` int64 class index of each image, into ``class_names``.
        class_names: name of each class.
        description: one line saying which data this is (shown in notebooks and the report).
        groups: optional ``(n_classes,)`` group of each class (alphabet, script, super-class).
        domains: optional ``(N,)`` int64 acquisition domain of each image, the nuisance factor a
            retrieval protocol conditions on: for re-identification data (Market-1501) the camera
            number from the file name (1–6); for the embedded glyphs the font the image was drawn in
            (an index into ``extra['fonts']``); None for the other datasets.
        person_ids: optional ``(N,)`` int64 identity of each image for re-identification data, as in
            :mod:`protolab.data.reid` (``-1`` junk, ``0`` distractor, otherwise the person id); None otherwise.
        extra: metadata of the whole dataset (seed, options, id → character maps…), kept as is by
            :meth:`subset`; a value per image belongs in a field of its own, which :meth:`subset` slices.
    """

    labels: torch.Tensor
    class_names: list[str]
    description: str
    images: torch.Tensor | None = None
    paths: Sequence[Path] | None = None
    transform: Callable[[Image.Image], torch.Tensor] | None = None
    groups: list[str] | None = None
    domains: torch.Tensor | None = None
    person_ids: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.images is None and self.paths is None:
            raise ValueError("LabeledImages needs `images`, `paths` or both")
        if self.paths is not None and self.transform is None:
            raise ValueError("file-backed LabeledImages needs a `transform`")
        if self.images is not None and not (self.images.is_floating_point() or self.images.dtype == torch.uint8):
            raise ValueError(f"images must be float in [0, 1] or uint8 in 0..255, got {self.images.dtype}")
        n = len(self.images) if self.images is not None else len(self.paths)
        if self.images is not None and self.paths is not None and len(self.paths) != n:
            raise ValueError(f"{len(self.paths)} paths for {n} images")
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")
        for name in ("domains", "person_ids"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")
        if self.groups is not None and len(self.groups) != len(self.class_names):
            raise ValueError("groups must give one group per class")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.images is not None:
            image = float_images(self.images[index])
        else:
            with Image.open(self.paths[index]) as handle:
                image = self.transform(handle.convert("RGB" if self.transform_channels == 3 else "L"))
        return image, int(self.labels[index])

    @property
    def transform_channels(self) -> int:
        """Channels the file-backed transform expects (``extra['channels']``, default 3)."""
        return int(self.extra.get("channels", 3))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> str:
        """Hex digest of what a model trained on these images sees: labels, class names, and the pixels (in-memory
        or memory-mapped ``images``) or, file-backed, each file's path, size and modification time with the
        transform's ``repr``. Two datasets with equal fingerprints give the same training run; metadata
        (``description``, ``extra``) does not count."""
        digest = hashlib.sha256()
        digest.update(self.labels.numpy().tobytes())
        digest.update("\0".join(self.class_names).encode())
        if self.images is not None:
            digest.update(str((tuple(self.images.shape), self.images.dtype)).encode())
            for chunk in self.images.split(4096):
                digest.update(chunk.contiguous().numpy().tobytes())
        else:
            for path in self.paths:
                stat = Path(path).stat()
                digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            digest.update(repr(self.transform).encode())
        return digest.hexdigest()[:24]

    def subset(self, indices: torch.Tensor, description: str | None = None) -> "LabeledImages":
        """The images at ``indices`` (int64 ``(M,)``), keeping class ids and names unchanged.

        Every per-image field (``labels``, ``images``, ``paths``, ``domains``, ``person_ids``) is taken at
        ``indices``; ``extra`` is copied. In-memory (or memory-mapped) ``images`` are copied: the subset holds
        its ``M`` images in memory.
        """
        indices = torch.as_tensor(indices, dtype=torch.long)
        return LabeledImages(
            labels=self.labels[indices],
            class_names=self.class_names,
            description=description or self.description,
            images=None if self.images is None else self.images.index_select(0, indices),
            paths=None if self.paths is None else [self.paths[i] for i in indices.tolist()],
            transform=self.transform,
            groups=self.groups,
            domains=None if self.domains is None else self.domains[indices],
            person_ids=None if self.person_ids is None else self.person_ids[indices],
            extra=dict(self.extra),
        )

    def draw(self, count: int, seed: int) -> "LabeledImages":
        """:meth:`subset` of ``min(count, N)`` images drawn without replacement with ``seed``, in their order here."""
        chosen = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:count]
        return self.subset(chosen.sort().values)

    def select_classes(self, classes: Sequence[int], description: str | None = None) -> "LabeledImages":
        """The images of ``classes`` (ids into ``class_names``), relabelled ``0..len(classes)-1`` in that order."""
        remap = torch.full((self.n_classes,), -1, dtype=torch.int64)
        remap[list(classes)] = torch.arange(len(classes))
        part = self.subset(torch.nonzero(remap[self.labels] >= 0).squeeze(1), description)
        return replace(part, labels=remap[part.labels], class_names=[self.class_names[c] for c in classes],
                       groups=None if self.groups is None else [self.groups[c] for c in classes])
