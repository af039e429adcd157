"""Trivial statistics of images, the baseline any out-of-distribution score must beat.

If the mean intensity of an image told in-distribution from OOD images, an OOD detector could succeed without
looking at shapes, and "the distance to the origin flags OOD images" would say nothing about geometry. The
statistics are those of the intensity histogram (:data:`PIXEL_STATISTICS`, which histogram matching equalises) and
one of the strokes, the mean stroke width (:func:`stroke_width`: histogram matching gives an OOD image the
reference's ink, not its pen). Each statistic maps images ``(N, C, H, W)`` with values in [0, 1] to one number per
image ``(N,)``;
:func:`pixel_baseline` scores each one as a detector against an OOD set, in whichever direction separates better
(the direction is chosen on the very images scored, so the baseline is, if anything, flattered: a method beating it
beats any fixed direction).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
from torch.nn import functional as F

from protolab.data.images import float_images
from protolab.metrics import auroc

PIXEL_STATISTICS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean intensity": lambda images: images.mean((1, 2, 3)),
    "ink fraction (> 0.5)": lambda images: (images > 0.5).float().mean((1, 2, 3)),
    "mid-grey fraction (0.1–0.9)": lambda images: ((images > 0.1) & (images < 0.9)).float().mean((1, 2, 3)),
    "intensity spread (std)": lambda images: images.flatten(1).std(dim=1),
}
"""Statistics of the intensity histogram alone (the same for any two images with the same pixel values)."""

_NEIGHBOURS = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))  # P2..P9: N, NE, E, … NW


def skeleton(masks: torch.Tensor) -> torch.Tensor:
    """Zhang & Suen's (1984) parallel thinning of boolean ``masks`` ``(N, 1, H, W)``: each shape peeled, in two
    alternating sub-iterations, down to a one-pixel-wide 8-connected line through its middle (same shape, bool).
    A pixel outside the frame counts as background."""
    image = masks.bool().clone()
    height, width = image.shape[-2:]
    while True:
        before = int(image.sum())
        for step in (0, 1):
            padded = F.pad(image.float(), (1, 1, 1, 1))
            p = [padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width] for dy, dx in _NEIGHBOURS]
            count = sum(p)
            crossings = sum((p[i] == 0) & (p[(i + 1) % 8] == 1) for i in range(8))
            # P2·P4·P6 = P4·P6·P8 = 0 (south-east boundary), then P2·P4·P8 = P2·P6·P8 = 0 (north-west)
            a, b = (p[0] * p[2] * p[4], p[2] * p[4] * p[6]) if step == 0 else (p[0] * p[2] * p[6], p[0] * p[4] * p[6])
            image &= ~((count >= 2) & (count <= 6) & (crossings == 1) & (a == 0) & (b == 0))
        if int(image.sum()) == before:
            return image


def stroke_width(images: torch.Tensor, ink: float = 0.5) -> torch.Tensor:
    """Mean stroke width in pixels of each image of ``images`` ``(N, 1, H, W)`` (values in [0, 1]): its ink pixels
    (above ``ink``) divided by the pixels of their :func:`skeleton` (the strokes' length); 0 without ink ``(N,)``."""
    masks = images > ink
    return masks.flatten(1).sum(1).double() / skeleton(masks).flatten(1).sum(1).clamp_min(1).double()


TRIVIAL_STATISTICS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    **PIXEL_STATISTICS, "stroke width (ink / skeleton length)": stroke_width}
"""Every statistic :func:`pixel_baseline` scores: the histogram's and the strokes'."""


def pixel_baseline(images_in: torch.Tensor, images_ood: torch.Tensor) -> pd.DataFrame:
    """One row per :data:`TRIVIAL_STATISTICS` entry: the two sets' means and the AUROC of the statistic as a detector
    of ``images_ood`` ``(M, C, H, W)`` among ``images_in`` ``(N, C, H, W)`` (float in [0, 1] or uint8, converted by
    :func:`~protolab.data.images.float_images`), oriented to be ≥ 0.5 (``higher_in`` says whether in-distribution
    images score higher). Sorted best first."""
    rows, images_in, images_ood = [], float_images(images_in), float_images(images_ood)
    for name, statistic in TRIVIAL_STATISTICS.items():
        value_in, value_ood = statistic(images_in), statistic(images_ood)
        area = auroc(value_in, value_ood)
        rows.append({"statistic": name, "mean_in": float(value_in.mean()), "mean_ood": float(value_ood.mean()),
                     "auroc": max(area, 1 - area), "higher_in": area >= 0.5})
    return pd.DataFrame(rows).sort_values("auroc", ascending=False, kind="stable").reset_index(drop=True)
