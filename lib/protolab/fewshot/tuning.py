"""Equal tuning for the few-shot comparison: each geometry's settings chosen on the validation classes.

The grid gives both geometries the same budget of training runs per shot: the Euclidean ProtoNet tries each
learning rate of ``euclidean_lrs``; the hyperbolic one each (learning rate, curvature) of ``hyperbolic_lrs`` ×
``curvatures``, and ``len(euclidean_lrs)`` must equal that product. Every tuning model is trained once, from the
tuning seed (not one of the seeds whose test results decide the claims), by the notebook's protocol, and is
never tested. The rule, fixed before any run: per (geometry, shot), the setting whose model reached the highest
best validation accuracy (the score the early-stopping rule selected its weights by); on a tie, the first in
grid order (learning rates as listed, curvatures as listed within each).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from protolab.fewshot.cells import Model

__all__ = ["chosen_settings", "tuning_models", "tuning_table"]


def tuning_models(geometries: Sequence[str], shots: Sequence[int], train_way: Sequence[int], *,
                  euclidean_lrs: Sequence[float], hyperbolic_lrs: Sequence[float],
                  curvatures: Sequence[float]) -> list[Model]:
    """The tuning grid: ``(geometry, shot, train_way, c, lr)`` for every shot (with its training way), every
    geometry of ``geometries`` and every setting that geometry tries (module docstring).

    Raises ``ValueError`` when both geometries are compared and their budgets differ, or when one geometry's grid
    is empty while the other's is not. Empty grids for every geometry: no tuning (``[]``)."""
    grids = {"euclidean": [(None, lr) for lr in euclidean_lrs],
             "hyperbolic": [(c, lr) for lr in hyperbolic_lrs for c in curvatures]}
    sizes = {geometry: len(grids[geometry]) for geometry in geometries}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"unequal tuning budgets: {sizes} runs per shot (euclidean_lrs: {len(euclidean_lrs)}; "
                         f"hyperbolic_lrs × curvatures: {len(hyperbolic_lrs)} × {len(curvatures)}); give both "
                         "geometries the same number of runs, or empty grids for no tuning")
    return [(geometry, shot, way, c, lr) for shot, way in zip(shots, train_way, strict=True)
            for geometry in geometries for c, lr in grids[geometry]]


def tuning_table(cells: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per tuning model: ``geometry, shot, train_way, lr, c, val_accuracy_%`` (its best validation accuracy,
    the selection score), ``val_ci95_%`` (the CI of that validation, over its episodes), ``best_epoch``, ``epochs``,
    ``stopped_by`` and ``chosen`` (:func:`chosen_settings`' rule)."""
    rows = []
    for cell, result in zip(cells, results, strict=True):
        history = pd.DataFrame(result["history"]).set_index("epoch")
        best = history.loc[result["best_epoch"]]
        rows.append({"geometry": cell["geometry"], "shot": cell["shot"], "train_way": cell["train_way"],
                     "lr": cell["protocol"]["lr"], "c": float("nan") if cell["c"] is None else cell["c"],
                     "val_accuracy_%": round(100 * float(best["val_accuracy"]), 2),
                     "val_ci95_%": round(100 * float(best["val_ci95"]), 2), "best_epoch": int(result["best_epoch"]),
                     "epochs": len(history), "stopped_by": result["convergence"]["stopped_by"]})
    table = pd.DataFrame(rows)
    if len(table):
        winners = table.groupby(["geometry", "shot"], sort=False)["val_accuracy_%"].idxmax()  # first on ties
        table["chosen"] = table.index.isin(winners.values)
    return table


def chosen_settings(table: pd.DataFrame) -> dict[tuple[str, int], tuple[float | None, float]]:
    """``(geometry, shot) → (c, lr)`` of the rows of :func:`tuning_table` marked ``chosen`` (``c`` None for
    Euclidean)."""
    return {(row.geometry, int(row.shot)): (None if pd.isna(row.c) else float(row.c), float(row.lr))
            for row in table[table.chosen].itertuples(index=False)}
