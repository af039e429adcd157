"""Claims rows (claims.py): the measurement string and the verdict come from the numbers."""

from __future__ import annotations

import math

import pytest

from protolab.claims import COLUMNS, claim, claims_lines, claims_table, gain_claims


def test_claim_row_states_the_interval_and_decides_by_the_shared_rule():
    holds = claim("hyperbolic beats Euclidean", "+5.01 points", "glyphs", 1.5, 0.4, unit=" points")
    assert holds["measurement"] == "+1.50 ± 0.40 points (95% CI)" and holds["verdict"] == "holds"
    assert claim("x", "-", "d", -1.5, 0.4)["verdict"] == "does not hold"
    assert claim("x", "-", "d", 0.3, 0.4)["verdict"] == "inconclusive"
    one_seed = claim("x", "-", "d", 0.3, math.nan)
    assert one_seed["verdict"] == "inconclusive" and one_seed["measurement"] == "+0.30 ± n/a (95% CI)"


def test_claims_table_keeps_the_column_order_and_lines_quote_each_claim():
    table = claims_table([claim("b after a", "-", "d", 2.0, 1.0, interval="t 95% over 3 seeds")])
    assert tuple(table.columns) == COLUMNS
    assert claims_lines(table) == ['- Claim "b after a" (d): +2.00 ± 1.00 (t 95% over 3 seeds): **holds**.']


def test_gain_claims_per_setting_and_the_trend_from_independent_intervals():
    rows = gain_claims({1: (5.0, 1.0), 5: (1.0, 1.0)}, setting="shot", paper={1: "+5"}, paper_trend="larger at 1",
                       data="d", interval="paired")
    assert [row["claim"] for row in rows] == ["hyperbolic beats Euclidean at 1-shot",
                                              "hyperbolic beats Euclidean at 5-shot",
                                              "the hyperbolic gain is larger at 1-shot than at 5-shot"]
    assert [row["paper_evidence"] for row in rows] == ["+5", "—", "larger at 1"]
    assert rows[2]["change"] == 4.0 and rows[2]["half_width"] == pytest.approx(2 ** 0.5)
    assert [row["verdict"] for row in rows] == ["holds", "inconclusive", "holds"]
    assert len(gain_claims({1: (5.0, 1.0)}, setting="shot", paper={}, paper_trend="", data="d", interval="")) == 1
