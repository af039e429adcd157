"""The one return type of every image dataset, real or embedded.

A loader returns :class:`LabeledImages` (or a named tuple of them for splits). Samplers read
``labels`` without touching pixels; models read ``dataset[i] -> (image, label)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import Dataset


@dataclass
class LabeledImages(Dataset):
    """Images with integer class labels.

    Exactly one of ``images`` (an in-memory float tensor ``(N, C, H, W)`` in ``[0, 1]``) or ``paths``
    (image files decoded on access through ``transform``) is set.

    Attributes:
        labels: ``(N,)`` int64 class index of each image, into ``class_names``.
        class_names: name of each class.
        description: one line saying which data this is (shown in notebooks and the report).
        groups: optional ``(n_classes,)`` group of each class (alphabet, script, super-class).
        domains: optional ``(N,)`` int64 acquisition domain of each image, the nuisance factor a
            retrieval protocol conditions on: for re-identification data (Market-1501) the camera
            number from the file name (1–6); for the embedded glyphs the font the image was drawn in
            (an index into ``extra['fonts']``); None for the other datasets.
    """

    labels: torch.Tensor
    class_names: list[str]
    description: str
    images: torch.Tensor | None = None
    paths: Sequence[Path] | None = None
    transform: Callable[[Image.Image], torch.Tensor] | None = None
    groups: list[str] | None = None
    domains: torch.Tensor | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.images is None) == (self.paths is None):
            raise ValueError("LabeledImages needs exactly one of `images` or `paths`")
        if self.paths is not None and self.transform is None:
            raise ValueError("file-backed LabeledImages needs a `transform`")
        n = len(self.images) if self.images is not None else len(self.paths)
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")
        if self.domains is not None and self.domains.shape != (n,):
            raise ValueError(f"domains must have shape ({n},), got {tuple(self.domains.shape)}")
        if self.groups is not None and len(self.groups) != len(self.class_names):
            raise ValueError("groups must give one group per class")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        if self.images is not None:
            image = self.images[index]
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

    def subset(self, indices: torch.Tensor, description: str | None = None) -> "LabeledImages":
        """The images at ``indices`` (int64 ``(M,)``), keeping class ids and names unchanged."""
        indices = torch.as_tensor(indices, dtype=torch.long)
        return LabeledImages(
            labels=self.labels[indices],
            class_names=self.class_names,
            description=description or self.description,
            images=None if self.images is None else self.images[indices],
            paths=None if self.paths is None else [self.paths[i] for i in indices.tolist()],
            transform=self.transform,
            groups=self.groups,
            domains=None if self.domains is None else self.domains[indices],
            extra=dict(self.extra),
        )

    def select_classes(self, classes: Sequence[int], description: str | None = None) -> "LabeledImages":
        """The images of ``classes`` (ids into ``class_names``), relabelled ``0..len(classes)-1`` in that order."""
        remap = torch.full((self.n_classes,), -1, dtype=torch.int64)
        remap[list(classes)] = torch.arange(len(classes))
        part = self.subset(torch.nonzero(remap[self.labels] >= 0).squeeze(1), description)
        return replace(part, labels=remap[part.labels], class_names=[self.class_names[c] for c in classes],
                       groups=None if self.groups is None else [self.groups[c] for c in classes])
