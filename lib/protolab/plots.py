"""Plots that several notebooks draw; each returns a matplotlib Figure for ``figures.save_figure``."""

from __future__ import annotations

import math
import unicodedata
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
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


def learning_curves(history, group: str, metrics: Sequence[tuple[str, str]], x: str = "epoch",
                    band: dict[str, str] | None = None, panel_width: float = 5.0) -> plt.Figure:
    """One panel per ``(column, label)`` of ``metrics``, one line per value of ``history[group]``.

    ``history`` is a long DataFrame (e.g. the rows of :func:`protolab.train.train_episodic` of several
    runs, with a ``group`` column naming the run); ``band`` maps a metric column to a column of
    half-widths drawn as a shaded band (e.g. ``{"val_accuracy": "val_ci95"}``).
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(panel_width * len(metrics), 3.6), squeeze=False)
    for ax, (column, label) in zip(axes[0], metrics):
        for name, rows in history.groupby(group, sort=False):
            rows = rows.sort_values(x)
            line, = ax.plot(rows[x], rows[column], marker="o", ms=3, label=str(name))
            if band and column in band:
                ax.fill_between(rows[x], rows[column] - rows[band[column]], rows[column] + rows[band[column]],
                                color=line.get_color(), alpha=0.15)
        ax.set(xlabel=x, ylabel=label, title=label)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def class_label(name: str) -> str:
    """A short tick label for a class: the character itself for Unicode character names (glyph sets,
    e.g. ``LATIN_SMALL_LETTER_A_WITH_GRAVE`` → ``à``), else the name cut to 14 characters."""
    try:
        return unicodedata.lookup(name.replace("_", " ").upper())
    except KeyError:
        return name if len(name) <= 14 else name[:13] + "…"


def _mark_labels(labels, highlight) -> list[str]:
    return ["red" if highlight is not None and bool(highlight[i]) else "black" for i in range(len(labels))]


def matrix_heatmaps(matrices: Mapping[str, np.ndarray], labels: Sequence[str],
                    highlight: Sequence[bool] | None = None, suptitle: str = "",
                    cell_inches: float = 0.32, columns: int | None = None, vmin: float | None = 0.0) -> plt.Figure:
    """Heatmaps of square ``(C, C)`` matrices (e.g. class attention) side by side, one shared colour scale.

    ``labels`` name rows and columns; where ``highlight`` is True the tick label is drawn in red.
    ``columns`` panels per row (default: all in one row); ``vmin`` the bottom of the colour scale
    (None: the smallest entry).
    """
    count = len(labels)
    side = max(3.5, count * cell_inches + 1.5)
    columns = columns or len(matrices)
    rows = -(-len(matrices) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(side * columns + 0.8, side * rows), squeeze=False)
    vmax = max(float(np.max(matrix)) for matrix in matrices.values())
    if vmin is None:
        vmin = min(float(np.min(matrix)) for matrix in matrices.values())
    colours = _mark_labels(labels, highlight)
    image = None
    for ax in axes.flat[len(matrices):]:
        ax.set_visible(False)
    for ax, (title, matrix) in zip(axes.flat, matrices.items()):
        image = ax.imshow(np.asarray(matrix), cmap="viridis", vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_xticks(range(count), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(count), labels, fontsize=8)
        for tick, colour in zip(ax.get_xticklabels(), colours):
            tick.set_color(colour)
        for tick, colour in zip(ax.get_yticklabels(), colours):
            tick.set_color(colour)
        ax.grid(False)
        ax.set_title(title)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def category_graphs(matrices: Mapping[str, np.ndarray], positions: np.ndarray, labels: Sequence[str],
                    highlight: Sequence[bool] | None = None, suptitle: str = "",
                    panel_inches: float = 5.0) -> plt.Figure:
    """Weighted directed graphs drawn with matplotlib only, one panel per ``(C, C)`` weight matrix.

    ``positions`` ``(C, 2)`` places the nodes (the same in every panel); an edge i → j is drawn where
    ``matrix[i, j] > 0`` and ``i ≠ j``, its width and opacity proportional to the weight. Nodes where
    ``highlight`` is True are red, others blue.
    """
    positions = np.asarray(positions, dtype=float)
    span = np.ptp(positions, axis=0)
    positions = (positions - positions.mean(axis=0)) / np.where(span > 0, span, 1.0)
    fig, axes = plt.subplots(1, len(matrices), figsize=(panel_inches * len(matrices), panel_inches), squeeze=False)
    colours = ["tab:red" if c == "red" else "tab:blue" for c in _mark_labels(labels, highlight)]
    for ax, (title, matrix) in zip(axes[0], matrices.items()):
        matrix = np.asarray(matrix)
        off = matrix.copy()
        np.fill_diagonal(off, 0.0)
        top = float(off.max()) if off.max() > 0 else 1.0
        for i, j in zip(*np.nonzero(off)):
            weight = off[i, j] / top
            ax.annotate("", xy=positions[j], xytext=positions[i],
                        arrowprops=dict(arrowstyle="-|>", color="grey", alpha=0.25 + 0.75 * weight,
                                        lw=0.4 + 2.6 * weight, shrinkA=7, shrinkB=7,
                                        connectionstyle="arc3,rad=0.12"))
        ax.scatter(positions[:, 0], positions[:, 1], s=140, c=colours, zorder=3, edgecolors="white")
        for (x, y), label in zip(positions, labels):
            ax.annotate(label, (x, y), xytext=(0, 9), textcoords="offset points", ha="center", fontsize=9)
        ax.set_title(f"{title}: {int((off > 0).sum())} edges")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
        ax.margins(0.12)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig
