"""Claims tables: one row per claim of a paper, with our measurement and a verdict by one shared rule.

Every notebook saves its rows with ``figures.save_table(claims_table(rows), "claims")``; the report
gathers the tables into one scorecard. A claim is phrased so that it predicts a *positive* change
(a gain, a separation above chance); :func:`protolab.metrics.claim_verdict` decides it from the change's
95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd

from protolab.metrics import claim_verdict, independent_difference

COLUMNS = ("claim", "paper_evidence", "data", "measurement", "change", "half_width", "verdict")


def claim(statement: str, paper_evidence: str, data: str, change: float, half_width: float, *,
          unit: str = "", interval: str = "95% CI") -> dict[str, object]:
    """One claims row: ``statement`` predicts ``change > 0``; ``change ± half_width`` is our measurement
    (``unit`` appended, ``interval`` names how the half-width was computed)."""
    spread = "n/a" if math.isnan(half_width) else f"{half_width:.2f}"
    measurement = f"{change:+.2f} ± {spread}{unit} ({interval})"
    return dict(zip(COLUMNS, (statement, paper_evidence, data, measurement, change, half_width,
                              claim_verdict(change, half_width))))


def claims_table(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The rows of :func:`claim` as a DataFrame with the columns of :data:`COLUMNS`, in order."""
    return pd.DataFrame(rows, columns=list(COLUMNS))


def claims_lines(table: pd.DataFrame) -> list[str]:
    """One Markdown bullet per claim: the statement, the data, our measurement and the verdict in bold."""
    return [f"- Claim \"{row.claim}\" ({row.data}): {row.measurement}: **{row.verdict}**."
            for row in table.itertuples()]


def gain_claims(gains: Mapping[int, tuple[float, float]], *, setting: str, paper: Mapping[int, str], paper_trend: str,
                data: str, interval: str, unit: str = " points") -> list[dict[str, object]]:
    """Rows for "hyperbolic beats Euclidean at ``k`` ``setting``" for each ``k`` of ``gains`` (gain, half-width,
    e.g. paired over shared test episodes) and, with two or more settings, "the gain is larger at the smallest
    ``k`` than at the largest", whose interval combines the two independent ones
    (:func:`~protolab.metrics.independent_difference`). ``paper`` gives the evidence per ``k`` ("—" if absent)."""
    rows = [claim(f"hyperbolic beats Euclidean at {k}-{setting}", paper.get(k, "—"), data, gain, half, unit=unit,
                  interval=interval) for k, (gain, half) in gains.items()]
    if len(gains) >= 2:
        low, high = min(gains), max(gains)
        rows.append(claim(f"the hyperbolic gain is larger at {low}-{setting} than at {high}-{setting}", paper_trend,
                          data, *independent_difference(gains[low], gains[high]), unit=unit,
                          interval="95% CI, independent estimates"))
    return rows
