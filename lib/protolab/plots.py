"""Plots that several notebooks draw; each returns a matplotlib Figure for ``figures.save_figure``."""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import torch


def image_grid(images: torch.Tensor, titles: Sequence[str] | None = None, columns: int = 10,
               cell_inches: float = 0.9, suptitle: str = "") -> plt.Figure:
    """A grid of images ``(N, C, H, W)`` in ``[0, 1]`` (C = 1 drawn in grey, C = 3 in colour)."""
    count = len(images)
    rows = max(1, math.ceil(count / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * cell_inches, rows * cell_inches * 1.15),
                             squeeze=False)
    for index, ax in enumerate(axes.flat):
        ax.axis("off")
        if index >= count:
            continue
        image = images[index].detach().cpu()
        if image.shape[0] == 1:
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
        else:
            ax.imshow(image.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[index], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
