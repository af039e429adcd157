"""Equal tuning for the IPN studies: every variant's learning rate, and its consistency weight λ when it has the
loss, chosen on the validation split of the seen classes (:func:`protolab.zsl.fit.fit_ipn`'s selection run).

The grid gives every variant the same budget of selection runs: a variant with the consistency loss tries each
(learning rate, λ) of ``consistency_lrs`` × ``weights``; a variant without it (one space, no propagation, shared
attention, or the loss switched off) tries each learning rate of ``lrs``, and ``len(lrs)`` must equal that
product. The hyperbolic IPN (:mod:`protolab.zsl.hyperbolic_ipn`, an extension) tries each (learning rate, curvature
c) of ``consistency_lrs`` × ``curvatures`` — the same number again — at the λ the base IPN chose (the same loss on
attention rows of the same shape; tuning λ as well would give it a larger budget than every other arm). Every
tuning run is one selection run (no refit, never tested) from the tuning seed, which is not one of
the seeds whose test results decide the claims. The rule, fixed before any run: per variant, the setting whose
run reached the highest validation H (the score its early stopping kept); on a tie, the first in grid order.

The graph threshold is a choice of the study, not of an arm: every arm with a graph uses one threshold, chosen
with the base IPN before the other arms are tuned (:func:`protolab.zsl.grid.tuned_arms`): the base tries its
settings at each threshold of the declared grid, and the threshold of its best run is kept (the same rule, over
all of the base's runs). The base thus has more selection runs than the other arms, all on a parameter they
share (K = 0 has no graph to threshold).

Tuning once per variant from one seed rather than per seed costs one run per setting instead of one per setting
and seed (a tenth at 10 seeds), which is what fits the notebooks' share of ``make figures``; the chosen values are
saved with their validation H so that a reader sees how decisive the choice was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import pandas as pd

from protolab.zsl.fit import TrainConfig
from protolab.zsl.ipn import IPNConfig

TUNING_COLUMNS = ("variant", "threshold", "lr", "weight", "c", "val_H", "best_epoch", "epochs", "stopped_by", "chosen")

__all__ = ["TUNING_COLUMNS", "TuningGrid", "chosen_settings", "describe_chosen", "has_consistency", "mark_chosen",
           "tuning_caption", "tuning_table"]


def has_consistency(model: IPNConfig, train: TrainConfig) -> bool:
    """Whether a variant trains with the consistency loss: two spaces, propagation (K > 0), an attention per
    space, and a weight above 0 (its value is then tuned, whatever the variant declares, except in the hyperbolic
    IPN: module docstring)."""
    return (model.spaces == "both" and model.steps > 0 and not model.shared_attention
            and train.consistency_weight > 0)


@dataclass(frozen=True)
class TuningGrid:
    """The settings a variant tries (module docstring): ``lrs`` without the consistency loss,
    ``consistency_lrs`` × ``weights`` with it, ``consistency_lrs`` × ``curvatures`` for the hyperbolic IPN (none:
    no hyperbolic arm); the budgets must be equal (one setting each: no tuning)."""

    lrs: tuple[float, ...]
    consistency_lrs: tuple[float, ...]
    weights: tuple[float, ...]
    curvatures: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        with_loss = len(self.consistency_lrs) * len(self.weights)
        if not self.lrs or not with_loss or len(self.lrs) != with_loss:
            raise ValueError(f"unequal or empty tuning budgets: {len(self.lrs)} learning rate(s) without the "
                             f"consistency loss against {len(self.consistency_lrs)} × {len(self.weights)} "
                             "(learning rate, λ) with it; give both the same number of settings")
        if min(self.weights) <= 0:
            raise ValueError(f"consistency weights must be > 0 (λ = 0 is the variant without the loss): {self.weights}")
        if self.curvatures and (len(self.consistency_lrs) * len(self.curvatures) != with_loss
                                or min(self.curvatures) <= 0):
            raise ValueError(f"the hyperbolic IPN's {len(self.consistency_lrs)} × {len(self.curvatures)} (learning "
                             f"rate, c) settings must number {with_loss}, as every arm's, with c > 0: {self.curvatures}")

    def settings(self, model: IPNConfig, train: TrainConfig) -> list[tuple[float, float, float | None]]:
        """The ``(lr, λ, c)`` the variant tries, in grid order (λ = 0 without the loss; c None when Euclidean,
        λ the declared ``train.consistency_weight`` when hyperbolic)."""
        if model.geometry == "hyperbolic":
            if not self.curvatures:
                raise ValueError("the hyperbolic IPN needs curvatures to try: TuningGrid(..., curvatures=...)")
            return [(lr, train.consistency_weight, c) for lr in self.consistency_lrs for c in self.curvatures]
        if has_consistency(model, train):
            return [(lr, weight, None) for lr in self.consistency_lrs for weight in self.weights]
        return [(lr, 0.0, None) for lr in self.lrs]

    @property
    def budget(self) -> int:
        """Selection runs per tuned variant."""
        return len(self.lrs)


def tuning_table(cells: Sequence[Mapping[str, Any]], results: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per tuning run: ``variant``, ``threshold`` (its graph's), ``lr, weight`` (λ), ``c`` (hyperbolic arms;
    NaN otherwise), ``val_H`` (its best validation H, the selection score),
    ``best_epoch``, ``epochs``, ``stopped_by`` and ``chosen`` (:func:`mark_chosen`)."""
    table = pd.DataFrame([{"variant": cell["variant"], "threshold": cell["model"]["threshold"],
                           "lr": cell["train"]["lr"],
                           "weight": cell["train"]["consistency_weight"],
                           "c": cell["model"]["curvature"] if cell["model"]["geometry"] == "hyperbolic" else None,
                           "val_H": result["convergence"]["best_score"],
                           "best_epoch": result["convergence"]["best_step"],
                           "epochs": result["convergence"]["steps"],
                           "stopped_by": result["convergence"]["stopped_by"]}
                          for cell, result in zip(cells, results, strict=True)], columns=list(TUNING_COLUMNS[:-1]))
    return mark_chosen(table)


def mark_chosen(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (tuning runs, in grid order) with ``chosen``: per variant, its run of highest ``val_H``, the first
    on a tie (a run without a score counts as −1)."""
    best = table.fillna({"val_H": -1.0}).groupby("variant", sort=False).val_H.idxmax()
    return table.assign(chosen=table.index.isin(best.to_numpy()))


def chosen_settings(table: pd.DataFrame) -> dict[str, tuple[float, float, float | None]]:
    """Per variant of a :func:`tuning_table`, its chosen ``(lr, λ, c)`` (c None when Euclidean)."""
    return {row.variant: (float(row.lr), float(row.weight), None if pd.isna(row.c) else float(row.c))
            for row in table[table.chosen].itertuples()}


def describe_chosen(table: pd.DataFrame, budget: int, seed: int) -> str:
    """One sentence on a :func:`tuning_table`: each arm's chosen learning rate (and λ) with its validation H."""
    if not len(table):
        return "Settings: one per arm, nothing chosen (no tuning runs)."
    thresholds = table.groupby("variant").threshold.nunique()
    return (f"Chosen on validation (seed {seed}, {budget} selection runs per arm"
            + (" and graph threshold tried" if (thresholds > 1).any() else "") + "): "
            + "; ".join(f"{row.variant} lr {row.lr:g}" + (f", λ {row.weight:g}" if row.weight else "")
                        + (f", graph threshold {row.threshold:g}" if thresholds[row.variant] > 1 else "")
                        + ("" if pd.isna(row.c) else f", c {row.c:g}")
                        + f" (validation H {100 * row.val_H:.1f})" for row in table[table.chosen].itertuples()) + ".")


def tuning_caption(dataset: str, seed: int, budget: int) -> str:
    """The caption of a notebook's saved :func:`tuning_table`."""
    return (f"Tuning runs on {dataset} (seed {seed}, validation split of the seen classes; never tested): each arm's "
            f"{budget} settings (the base's at each graph threshold tried), the best validation H of its selection "
            "run, and the chosen one per arm (highest validation H, first in grid order on ties).")
