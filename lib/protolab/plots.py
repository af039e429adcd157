"""Plots that several notebooks draw; each returns a matplotlib Figure for ``figures.save_figure``."""

from __future__ import annotations

import math
import unicodedata
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from protolab.data.images import LabeledImages


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
                    band: dict[str, str] | None = None, panel_width: float = 5.0, unit: str | None = None
                    ) -> plt.Figure:
    """One panel per ``(column, label)`` of ``metrics``, one colour per value of ``history[group]``.

    ``history`` is a long DataFrame (e.g. the rows of :func:`protolab.training.loops.train_episodic` of several
    runs, with a ``group`` column naming the run); ``band`` maps a metric column to a column of
    half-widths drawn as a shaded band (e.g. ``{"val_accuracy": "val_ci95"}``). With ``unit`` (e.g. ``"seed"``),
    a group holding several values of ``history[unit]`` is drawn as one thin line per value, without bands.
    """
    fig, axes = plt.subplots(1, len(metrics), figsize=(panel_width * len(metrics), 3.6), squeeze=False)
    for ax, (column, label) in zip(axes[0], metrics):
        for i, (name, rows) in enumerate(history.groupby(group, sort=False)):
            curves = list(rows.groupby(unit, sort=False)) if unit else [(None, rows)]
            thin = len(curves) > 1
            style = {"lw": 0.8, "alpha": 0.7} if thin else {"marker": "o", "ms": 3}
            for k, (_, curve) in enumerate(curves):
                curve = curve.sort_values(x)
                ax.plot(curve[x], curve[column], color=f"C{i % 10}", label=str(name) if k == 0 else None, **style)
                if band and column in band and not thin:
                    ax.fill_between(curve[x], curve[column] - curve[band[column]],
                                    curve[column] + curve[band[column]], color=f"C{i % 10}", alpha=0.15)
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


def poincare_disk(points: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], ood_points: torch.Tensor,
                  *, c: float, title: str) -> plt.Figure:
    """2-D embeddings ``(N, 2)`` in the Poincaré disk of curvature ``c``, coloured by ``labels`` ``(N,)``, with
    ``ood_points`` ``(M, 2)`` as black crosses; the legend sits beside the disk so it hides no point, and the
    class colours (``tab10`` without its grey) never match the OOD marks."""
    colours = [plt.get_cmap("tab10")(i) for i in range(10) if i != 7] + [plt.get_cmap("Dark2")(0)]
    fig, ax = plt.subplots(figsize=(7.6, 6))
    for label, name in enumerate(class_names):
        chosen = points[labels == label]
        ax.scatter(chosen[:, 0], chosen[:, 1], s=6, alpha=0.7, color=colours[label % len(colours)], label=name)
    ax.scatter(ood_points[:, 0], ood_points[:, 1], s=10, marker="x", linewidths=0.8, color="black",
               label="OOD (never trained on)")
    radius = 1 / math.sqrt(c)
    ax.add_patch(plt.Circle((0, 0), radius, fill=False, color="grey"))
    ax.set(xlim=(-radius * 1.05, radius * 1.05), ylim=(-radius * 1.05, radius * 1.05), aspect="equal", title=title)
    ax.legend(fontsize=7, markerscale=2, loc="upper left", bbox_to_anchor=(1.02, 1.0), title="class")
    fig.tight_layout()
    return fig


def score_histograms(panels: Sequence[tuple[str, torch.Tensor, torch.Tensor]], names: tuple[str, str],
                     title: str = "") -> plt.Figure:
    """One panel per ``(x label, scores of set A, scores of set B)``: the two sets' density histograms drawn
    as outlines (no blended overlap colour), labelled with ``names``."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (label, first, second) in zip(axes[0], panels):
        values = torch.cat([first, second])
        bins = np.linspace(float(values.min()), float(values.max()), 40)
        for scores, name, style in ((first, names[0], "-"), (second, names[1], "--")):
            ax.hist(scores.numpy(), bins=bins, density=True, histtype="step", linewidth=1.6, linestyle=style,
                    label=name)
        ax.set(xlabel=label, ylabel="density", title=label)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def accuracy_vs_curvature(table, references: Sequence[tuple[float, float]], *, title: str, dots=None,
                          dots_label: str = "single seeds", ylabel: str = "test accuracy (%)") -> plt.Figure:
    """Accuracy (%) ± 95% CI against curvature (log axis) from ``table`` (columns ``c``, ``accuracy_%``,
    ``ci95_%``), with each ``(accuracy %, half-width %)`` of ``references`` (the Euclidean model, the c → 0
    limit) as a dashed line inside its CI band; ``dots`` (columns ``c``, ``accuracy_%``: one row per model, e.g.
    each training seed or each tuning run) adds each model's accuracy as a dot, labelled ``dots_label``."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.errorbar(table["c"], table["accuracy_%"], yerr=table["ci95_%"], marker="o", capsize=3,
                label="hyperbolic (error bars: 95% CI)")
    if dots is not None:
        ax.scatter(dots["c"], dots["accuracy_%"], color="black", s=10, zorder=3, label=dots_label)
    for accuracy, half_width in references:
        ax.axhline(accuracy, color="grey", ls="--", label="Euclidean (band: 95% CI)")
        ax.axhspan(accuracy - half_width, accuracy + half_width, color="grey", alpha=0.15)
    ax.set(xscale="log", xlabel="curvature c", ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def phase_curves(curves, panels: Sequence[tuple[str, str]], *, group: str | None = None, title: str = "",
                 log_first: bool = False) -> plt.Figure:
    """Per-epoch training curves, one panel per ``(column, label)`` of ``curves`` (columns ``epoch``, ``phase``
    and the panels'; one row per epoch and seed): the mean over seeds, solid for the ``"select"`` phase and
    dashed for the ``"refit"``. Without ``group``: one curve per phase with a ± std band over seeds; with it:
    one colour per value of ``curves[group]``, no band. ``title`` is appended to each panel's label;
    ``log_first`` puts the first panel on a log scale."""
    parts = [("", curves)] if group is None else list(curves.groupby(group, sort=False))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (column, label) in zip(axes[0], panels):
        for i, (name, part) in enumerate(parts):
            for j, (phase, style) in enumerate((("select", "-"), ("refit", "--"))):
                rows = part[part.phase == phase].dropna(subset=[column])
                if rows.empty:
                    continue
                stats = rows.groupby("epoch")[column].agg(["mean", "std"]).fillna(0.0)
                colour = f"C{j if group is None else i}"
                legend = f"{phase} run" if group is None else name if phase == "select" else None
                ax.plot(stats.index, stats["mean"], style, color=colour, marker="o" if group is None else None,
                        ms=3, label=legend)
                if group is None:
                    ax.fill_between(stats.index, stats["mean"] - stats["std"], stats["mean"] + stats["std"],
                                    color=colour, alpha=0.2)
        ax.set(xlabel="epoch", ylabel=label, title=f"{label} ({title})" if title else label)
    if log_first:
        axes[0, 0].set_yscale("log")
    for ax in axes[0] if group is None else axes[0, :1]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def seen_unseen_curves(curves: Mapping[str, tuple[object, float]], title: str) -> plt.Figure:
    """Seen–unseen accuracy curves (``metrics.seen_unseen_curve``: DataFrame with ``U``, ``S`` fractions, and its
    AUSUC) of several methods in one panel, in percent, the AUSUC in each legend entry."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    for method, (curve, ausuc) in curves.items():
        ordered = curve.sort_values(["U", "S"], ascending=[True, False])
        ax.plot(100 * ordered.U, 100 * ordered.S, label=f"{method} (AUSUC {100 * ausuc:.1f})")
    ax.set(xlabel="U, unseen accuracy (%)", ylabel="S, seen accuracy (%)", title=title)
    ax.legend(fontsize=8)
    return fig


def seed_bars(ax: plt.Axes, values: Mapping[str, Sequence[float]], colours: Sequence[str] | None = None) -> None:
    """On ``ax``, one bar per entry of ``values`` (name → one value per seed): the mean with a ± std whisker
    (sample std; none with one seed) and every seed's value as a black dot; tick labels slanted."""
    names = list(values)
    seeds = [np.asarray(v, dtype=float) for v in values.values()]
    stds = [v.std(ddof=1) if len(v) > 1 else 0.0 for v in seeds]
    ax.bar(names, [v.mean() for v in seeds], yerr=stds, capsize=3, alpha=0.85,
           color=colours or [f"C{i}" for i in range(len(names))])
    for i, v in enumerate(seeds):
        ax.scatter(np.full(len(v), i), v, color="black", s=10, zorder=3)
    ax.tick_params(axis="x", rotation=35)
    plt.setp(ax.get_xticklabels(), ha="right")


def metric_sweeps(panels: Sequence[tuple[str, object]], metrics: Sequence[str] = ("H", "U", "S"),
                  ylabel: str = "accuracy (%)") -> plt.Figure:
    """One panel per ``(x label, table)``: each of ``metrics`` against the table's index, with error bars
    (``table[(metric, "mean")]``, ``table[(metric, "std")]``, as ``groupby(x)[metrics].agg(["mean", "std"])``
    gives); the first metric drawn solid and opaque, the others dashed and lighter."""
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.8), squeeze=False)
    for ax, (label, table) in zip(axes[0], panels):
        for k, (metric, style) in enumerate(zip(metrics, ("-o", "--s", ":^", "-.d"))):
            ax.errorbar(table.index, table[(metric, "mean")], yerr=table[(metric, "std")].fillna(0), fmt=style,
                        capsize=3, label=metric, alpha=1.0 if k == 0 else 0.6)
        ax.set(xlabel=label, ylabel=ylabel, title=f"{label} (other factors at the base)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def against_weight(weights: Sequence[float], means: Sequence[float], stds: Sequence[float],
                   reference: tuple[float, float], *, labels: tuple[str, str], xlabel: str, ylabel: str,
                   title: str) -> plt.Figure:
    """A measure against a loss weight that includes 0 (mean ± std whiskers), on a symlog axis linear below the
    smallest positive weight with the weights as ticks, beside a ``reference`` ``(mean, std)`` drawn as a
    dashed line with a band; ``labels`` name the curve and the reference."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(weights, means, yerr=np.nan_to_num(np.asarray(stds, dtype=float)), fmt="-o", capsize=3,
                label=labels[0])
    ax.axhline(reference[0], color="C1", ls="--", label=labels[1])
    spread = float(np.nan_to_num(reference[1]))
    ax.axhspan(reference[0] - spread, reference[0] + spread, color="C1", alpha=0.15)
    positive = [w for w in weights if w > 0]
    linear_below = min(positive) if positive else 1.0
    ax.set_xscale("symlog", linthresh=linear_below)
    ax.set_xlim(-0.5 * linear_below, 2 * max(list(weights) + [linear_below]))
    ax.set_xticks(list(weights), [f"{w:g}" for w in weights])
    ax.minorticks_off()
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.legend(fontsize=8)
    return fig


def name_spread(axes: Sequence[plt.Axes], text: str, *, kind: str = "band") -> None:
    """Add a legend entry ``text`` naming the spread drawn on each of ``axes`` (``kind`` ``"band"``: a shaded
    patch; ``"whiskers"``: an error-bar whisker), after the axis's own entries (a legend is made if absent)."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if kind not in ("band", "whiskers"):
        raise ValueError(f"kind must be 'band' or 'whiskers', not {kind!r}")
    for ax in axes:
        proxy = (Patch(facecolor="grey", alpha=0.3) if kind == "band"
                 else Line2D([], [], color="grey", marker="_", markersize=10, markeredgewidth=1.5, ls="-"))
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles + [proxy], labels + [text], fontsize=8)


def edge_counts(matrices: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Off-diagonal non-zero entries (graph edges, self-loops excluded) of each ``(C, C)`` matrix."""
    return {name: int((np.asarray(m) > 0).sum() - (np.diag(np.asarray(m)) > 0).sum()) for name, m in matrices.items()}


def best_connected(matrices: Mapping[str, np.ndarray], count: int) -> np.ndarray:
    """Indices of up to ``count`` nodes with an edge in any of the ``(C, C)`` matrices, most edges (in + out,
    summed over the matrices) first; empty when no matrix has an off-diagonal edge."""
    degree = np.zeros(len(next(iter(matrices.values()))))
    for matrix in matrices.values():
        off = np.asarray(matrix) > 0
        np.fill_diagonal(off, False)
        degree += off.sum(0) + off.sum(1)
    order = np.argsort(-degree, kind="stable")
    return order[degree[order] > 0][:count]


def circle_positions(count: int) -> np.ndarray:
    """``(count, 2)`` node positions evenly spaced on the unit circle: every edge is a visible chord."""
    angles = 2 * np.pi * np.arange(count) / max(count, 1) + np.pi / 2
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def attention_heatmaps(matrices: Mapping[str, np.ndarray], labels: Sequence[str],
                       highlight: Sequence[bool] | None = None, *, title: str = "", note: str = "",
                       cell_inches: float = 0.32) -> plt.Figure:
    """Row-stochastic ``(C, C)`` attention matrices side by side on one 0–1 colour scale, laid out with
    matplotlib's constrained layout (no empty band under the title); ``note`` (e.g. how close to the identity
    the matrices are) is a second title line. Red tick labels where ``highlight``."""
    side = max(3.5, len(labels) * cell_inches + 1.5)
    fig, axes = plt.subplots(1, len(matrices), figsize=(side * len(matrices) + 0.8, side + 0.6), squeeze=False,
                             layout="constrained")
    colours = _mark_labels(labels, highlight)
    image = None
    for ax, (name, matrix) in zip(axes[0], matrices.items()):
        image = ax.imshow(np.asarray(matrix), cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        for tick, colour in zip([*ax.get_xticklabels(), *ax.get_yticklabels()], colours + colours):
            tick.set_color(colour)
        ax.grid(False)
        ax.set_title(name, fontsize=10)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="attention weight")
    if title or note:
        fig.suptitle("\n".join(part for part in (title, note) if part), fontsize=11)
    return fig


def metric_vs_dim(table: pd.DataFrame, *, title: str) -> plt.Figure:
    """Rank-1 and mAP (%) against the embedding size (log axis), one line per geometry and schedule;
    error bars = std over seeds."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (metric, label) in zip(axes, (("rank1", "Rank-1 (%)"), ("mAP", "mAP (%)"))):
        for (schedule, geometry), part in table.groupby(["schedule", "geometry"], sort=False):
            ax.errorbar(part["dim"], part[f"{metric}_mean"], yerr=part[f"{metric}_std"].fillna(0), marker="o",
                        capsize=3, label=f"{geometry}, {schedule} (bars: std over seeds)")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(table["dim"])), [str(d) for d in sorted(set(table["dim"]))])
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def cmc_curves(curves: dict[str, torch.Tensor], *, title: str, max_rank: int = 20) -> plt.Figure:
    """CMC curves (``name → (R,)`` fractions) up to ``max_rank``, in %."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, cmc in curves.items():
        ranks = torch.arange(1, min(max_rank, len(cmc)) + 1)
        ax.plot(ranks, 100 * cmc[:len(ranks)], marker=".", label=name)
    ax.set_xlabel("rank")
    ax.set_ylabel("matching rate (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def retrieval_strips(query: LabeledImages, gallery: LabeledImages, distances: torch.Tensor, queries: list[int], *,
                     top: int = 5, title: str = "") -> plt.Figure:
    """For each query index: the query image, then its ``top`` nearest gallery images under the protocol
    (same identity and camera, and junk, left out), framed green when the identity matches, red otherwise."""
    q_ids, q_cams = query.person_ids, query.domains
    g_ids, g_cams = gallery.person_ids, gallery.domains
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(1.3 * (top + 1), 1.5 * len(queries)), squeeze=False)
    for row, qi in zip(axes, queries):
        banned = ((g_ids == q_ids[qi]) & (g_cams == q_cams[qi])) | (g_ids == -1)
        order = [int(j) for j in distances[qi].argsort(stable=True) if not banned[j]][:top]
        shown = [(query[qi][0], f"query {int(q_ids[qi])}\ncam {int(q_cams[qi])}", "black")]
        shown += [(gallery[j][0], f"{int(g_ids[j])} cam {int(g_cams[j])}\nd={float(distances[qi, j]):.2f}",
                   "green" if g_ids[j] == q_ids[qi] else "red") for j in order]
        for ax, (image, label, colour) in zip(row, shown):
            ax.imshow(image.permute(1, 2, 0).squeeze(-1).clamp(0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_title(label, fontsize=7, color=colour)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(colour)
                spine.set_linewidth(2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def gains_against_delta(points, *, low, high, group: str | None = None, label: str | None = None, xlabel: str,
                        ylabel: str, title: str, spread: str) -> plt.Figure:
    """Hyperbolic − Euclidean gains against δ_rel: one errorbar point per row of ``points`` (columns ``delta_rel``,
    ``gain``), its bar from ``low`` to ``high`` (sequences aligned with the rows), one colour per value of
    ``points[group]`` (optional), each point annotated with ``points[label]`` (optional), a line at 0; ``spread``
    names the error bars in the legend."""
    fig, ax = plt.subplots(figsize=(6, 4))
    frame = points.assign(_low=list(low), _high=list(high))
    for name, part in (frame.groupby(group, sort=False) if group else [("", frame)]):
        ax.errorbar(part.delta_rel, part.gain, yerr=[part.gain - part._low, part._high - part.gain], fmt="o",
                    capsize=3, label=name or None)
        for row in part.itertuples() if label else ():
            ax.annotate(getattr(row, label), (row.delta_rel, row.gain), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    name_spread([ax], spread, kind="whiskers")
    return fig
