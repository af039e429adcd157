"""Trivial statistics of images, the baseline any out-of-distribution score must beat.

If the mean intensity of an image told in-distribution from OOD images, an OOD detector could succeed without
looking at shapes, and "the distance to the origin flags OOD images" would say nothing about geometry. Each
statistic maps images ``(N, C, H, W)`` with values in [0, 1] to one number per image ``(N,)``;
:func:`pixel_baseline` scores each one as a detector against an OOD set, in whichever direction separates better
(the direction is chosen on the very images scored, so the baseline is, if anything, flattered: a method beating it
beats any fixed direction).
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch

from protolab.data.images import float_images
from protolab.metrics import auroc

PIXEL_STATISTICS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "mean intensity": lambda images: images.mean((1, 2, 3)),
    "ink fraction (> 0.5)": lambda images: (images > 0.5).float().mean((1, 2, 3)),
    "mid-grey fraction (0.1–0.9)": lambda images: ((images > 0.1) & (images < 0.9)).float().mean((1, 2, 3)),
    "intensity spread (std)": lambda images: images.flatten(1).std(dim=1),
}


def pixel_baseline(images_in: torch.Tensor, images_ood: torch.Tensor) -> pd.DataFrame:
    """One row per :data:`PIXEL_STATISTICS` entry: the two sets' means and the AUROC of the statistic as a detector
    of ``images_ood`` ``(M, C, H, W)`` among ``images_in`` ``(N, C, H, W)`` (float in [0, 1] or uint8, converted by
    :func:`~protolab.data.images.float_images`), oriented to be ≥ 0.5 (``higher_in`` says whether in-distribution
    images score higher). Sorted best first."""
    rows = []
    for name, statistic in PIXEL_STATISTICS.items():
        value_in, value_ood = statistic(float_images(images_in)), statistic(float_images(images_ood))
        area = auroc(value_in, value_ood)
        rows.append({"statistic": name, "mean_in": float(value_in.mean()), "mean_ood": float(value_ood.mean()),
                     "auroc": max(area, 1 - area), "higher_in": area >= 0.5})
    return pd.DataFrame(rows).sort_values("auroc", ascending=False, kind="stable").reset_index(drop=True)
