"""Re-identification result tables: per-seed runs → summaries over seeds, the paper's layout, paired gains."""

from __future__ import annotations

import pandas as pd

def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of Rank-1 and mAP (in %) per dataset × schedule × dim × geometry."""
    keys = ["dataset", "schedule", "dim", "geometry"]
    table = (runs.groupby(keys, sort=False)
             .agg(rank1_mean=("rank1", "mean"), rank1_std=("rank1", "std"), mAP_mean=("mAP", "mean"),
                  mAP_std=("mAP", "std"), seeds=("seed", "count")).reset_index())
    for column in ("rank1_mean", "rank1_std", "mAP_mean", "mAP_std"):
        table[column] = (100 * table[column]).round(2)
    return table


def paper_layout(table: pd.DataFrame) -> pd.DataFrame:
    """:func:`summarise`'s table as the paper lays it out: one row per dataset × schedule × dim, a
    ``Rank-1`` and an ``mAP`` column per geometry, each "mean ± std" over seeds (%; the mean alone for one seed)."""
    def cell(mean: float, std: float) -> str:
        return f"{mean:.1f}" if pd.isna(std) else f"{mean:.1f} ± {std:.1f}"

    cells = table.assign(**{"Rank-1": [cell(m, s) for m, s in zip(table.rank1_mean, table.rank1_std)],
                            "mAP": [cell(m, s) for m, s in zip(table.mAP_mean, table.mAP_std)]})
    wide = cells.pivot(index=["dataset", "schedule", "dim"], columns="geometry", values=["Rank-1", "mAP"])
    wide.columns = [f"{metric} ({geometry})" for metric, geometry in wide.columns]
    return wide.reset_index()


def paired_gains(runs: pd.DataFrame, metric: str = "rank1") -> pd.DataFrame:
    """Hyperbolic − Euclidean ``metric`` (in points of %) per dataset × schedule × dim × seed, paired by seed:
    columns ``dataset, schedule, dim, seed, gain``."""
    wide = runs.pivot_table(index=["dataset", "schedule", "dim", "seed"], columns="geometry", values=metric)
    return (100 * (wide["hyperbolic"] - wide["euclidean"])).rename("gain").reset_index()
