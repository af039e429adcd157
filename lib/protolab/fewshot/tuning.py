"""Equal tuning for the few-shot comparison: each geometry's settings chosen on the validation classes.

The grid gives both geometries the same budget of training runs per shot: the Euclidean ProtoNet tries each
learning rate of ``euclidean_lrs``; the hyperbolic one each (learning rate, curvature) of ``hyperbolic_lrs`` ×
``curvatures``, and ``len(euclidean_lrs)`` must equal that product (one setting each: no tuning runs, those
settings are used). Every tuning model is trained once, from the tuning seed (not one of the seeds whose test
results decide the claims), by the notebook's protocol, and is never tested. The rule, fixed before any run: per (geometry, shot), the setting whose model reached the highest
best validation accuracy (the score the early-stopping rule selected its weights by); on a tie, the first in
grid order (learning rates as listed, curvatures as listed within each).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from protolab.fewshot.cells import Model

__all__ = ["Grid", "chosen_settings", "curvature_sweep", "describe_settings", "settings_grid", "tuning_models",
           "tuning_table"]


Grid = dict[str, list[tuple[float | None, float]]]
"""Per geometry, the ``(c, lr)`` settings it tries (``c`` None for Euclidean)."""


def settings_grid(geometries: Sequence[str], *, euclidean_lrs: Sequence[float], hyperbolic_lrs: Sequence[float],
                  curvatures: Sequence[float]) -> Grid:
    """The settings each geometry of ``geometries`` tries (module docstring).

    Raises ``ValueError`` when a geometry has no setting, or when both geometries are compared and their budgets
    differ."""
    grids = {"euclidean": [(None, lr) for lr in euclidean_lrs],
             "hyperbolic": [(c, lr) for lr in hyperbolic_lrs for c in curvatures]}
    grid = {geometry: grids[geometry] for geometry in geometries}
    sizes = {geometry: len(settings) for geometry, settings in grid.items()}
    if not all(sizes.values()) or len(set(sizes.values())) > 1:
        raise ValueError(f"unequal or empty tuning budgets: {sizes} runs per shot (euclidean_lrs: {len(euclidean_lrs)}; "
                         f"hyperbolic_lrs × curvatures: {len(hyperbolic_lrs)} × {len(curvatures)}); give both "
                         "geometries the same number of settings, one each for no tuning")
    return grid


def tuning_models(grid: Grid, shots: Sequence[int], train_way: Sequence[int]) -> list[Model]:
    """The tuning runs: ``(geometry, shot, train_way, c, lr)`` for every shot (with its training way), geometry and
    setting of ``grid``; none when every geometry has a single setting (nothing to choose)."""
    if all(len(settings) == 1 for settings in grid.values()):
        return []
    return [(geometry, shot, way, c, lr) for shot, way in zip(shots, train_way, strict=True)
            for geometry, settings in grid.items() for c, lr in settings]


def tuning_table(cells: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per tuning model: ``geometry, shot, train_way, lr, c, val_accuracy_%`` (its best validation accuracy,
    the selection score), ``val_ci95_%`` (the CI of that validation, over its episodes), ``best_epoch``, ``epochs``,
    ``stopped_by`` and ``chosen`` (:func:`chosen_settings`' rule)."""
    rows = []
    for cell, result in zip(cells, results, strict=True):
        history = pd.DataFrame(result["history"], columns=["epoch", "val_accuracy", "val_ci95"]).set_index("epoch")
        best = history.reindex([result["best_epoch"]]).iloc[0]  # NaN where no epoch was validated (a dry run)
        rows.append({"geometry": cell["geometry"], "shot": cell["shot"], "train_way": cell["train_way"],
                     "lr": cell["protocol"]["lr"], "c": float("nan") if cell["c"] is None else cell["c"],
                     "val_accuracy_%": round(100 * float(best["val_accuracy"]), 2),
                     "val_ci95_%": round(100 * float(best["val_ci95"]), 2), "best_epoch": int(result["best_epoch"]),
                     "epochs": len(history), "stopped_by": result["convergence"]["stopped_by"]})
    table = pd.DataFrame(rows)
    if len(table):  # per geometry and shot the highest score, the first on ties (and when none has a score)
        scores = table["val_accuracy_%"].fillna(-1.0)
        winners = scores.groupby([table.geometry, table.shot], sort=False).idxmax()
        table["chosen"] = table.index.isin(winners.values)
    return table


def chosen_settings(grid: Grid, shots: Sequence[int], table: pd.DataFrame) -> dict[tuple[str, int],
                                                                              tuple[float | None, float]]:
    """``(geometry, shot) → (c, lr)``: the rows of :func:`tuning_table` marked ``chosen``, or each geometry's single
    setting when there was no tuning (``table`` empty)."""
    if not len(table):
        return {(geometry, shot): settings[0] for geometry, settings in grid.items() for shot in shots}
    return {(row.geometry, int(row.shot)): (None if pd.isna(row.c) else float(row.c), float(row.lr))
            for row in table[table.chosen].itertuples(index=False)}


def curvature_sweep(table: pd.DataFrame, shot: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The hyperbolic tuning runs of ``shot`` in a :func:`tuning_table` that have a validation score (one row per
    run), and per curvature the run with the highest (columns ``c, lr, val_accuracy_%, val_ci95_%``, by increasing
    c; the first in grid order on a tie). Both empty when there is no such run (no tuning, or a dry run)."""
    columns = ["c", "lr", "val_accuracy_%", "val_ci95_%"]
    if not len(table):
        return pd.DataFrame(columns=columns), pd.DataFrame(columns=columns)
    runs = table[(table.geometry == "hyperbolic") & (table.shot == shot) & table["val_accuracy_%"].notna()]
    best = runs.sort_values("val_accuracy_%", ascending=False, kind="stable").groupby("c").head(1)
    return runs, best.sort_values("c")[columns]


def describe_settings(models: Sequence[Model], runs_per_setting: int) -> str:
    """One sentence naming each compared model's learning rate (and curvature), and how they were chosen:
    ``runs_per_setting`` tuning runs per geometry and shot (0: not tuned)."""
    how = f"chosen on validation, {runs_per_setting} runs per geometry and shot" if runs_per_setting else "not tuned"
    named = "; ".join(f"{geometry} {shot}-shot lr {lr:g}" + (f", c {c:g}" if c is not None else "")
                      for geometry, shot, _, c, lr in models)
    return f"Settings ({how}): {named}."
