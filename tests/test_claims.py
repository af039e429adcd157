"""The claim rule (protolab.claims): per-seed paired differences, a smallest effect of interest, Holm."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from protolab.claims import (COLUMNS, MIN_SEEDS, Sesoi, claims_lines, claims_table, compare, decide, descriptive,
                             gain_claims, holm_levels, interval_verdict, paired_effect, paired_seed_differences, with_holm)

SESOI = Sesoi(2.0, "points", "two accuracy points")


def test_paired_effect_is_the_t_interval_and_t_test_over_seeds():
    effect = paired_effect([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3, s = √2.5, t(0.975, 4) = 2.7764451
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert effect["estimate"] == 3.0 and effect["df"] == 4
    assert (effect["ci_low"], effect["ci_high"]) == (pytest.approx(3 - half), pytest.approx(3 + half))
    assert effect["p_value"] == pytest.approx(0.013236, abs=1e-6)  # t = 3/√0.5 = 4.243 on 4 df, two-sided
    one = paired_effect([0.3])
    assert one["estimate"] == 0.3 and math.isnan(one["ci_low"]) and math.isnan(one["p_value"])


@pytest.mark.parametrize(("differences", "verdict"), [
    ([3.0, 4.0, 5.0, 3.0, 4.0], "holds"),  # interval [2.76, 4.84] above 0
    ([0.1, -0.2, 0.3, 0.0, 0.1], "does not hold"),  # interval [-0.19, +0.31] below the SESOI of 2
    ([-3.0, -4.0, -5.0, -3.0, -4.0], "does not hold"),  # a reversal is below the SESOI too
    ([1.0, 5.0, -2.0, 3.0, 4.0], "inconclusive"),  # [-1.6, +5.6] straddles 0 and reaches past 2
    ([1.5, 1.8, 2.2, 2.5, 1.0], "holds"),  # [1.1, 2.7]: above 0, though it may be below the SESOI
])
def test_the_rule_on_hand_computed_cases(differences, verdict):
    row = decide("x", "-", "d", differences, sesoi=SESOI)
    assert row["verdict"] == verdict and row["seeds"] == 5 and row["sesoi"] == 2.0


def test_an_interval_between_zero_and_the_sesoi_is_inconclusive():
    assert interval_verdict(-0.5, 2.5, 2.0) == "inconclusive"
    assert interval_verdict(-0.5, 1.9, 2.0) == "does not hold"
    assert interval_verdict(0.1, 9.0, 2.0) == "holds"
    assert interval_verdict(math.nan, 1.0, 2.0) == "inconclusive"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"differences": [3.0, 4.0, 5.0, 4.0]}, f"4 seed(s) < {MIN_SEEDS}"),
    ({"differences": [3.0, 4.0, 5.0, 3.0, 4.0], "converged": False}, "did not converge"),
    ({"differences": [3.0, 4.0, 5.0, 3.0, 4.0, -40.0], "collapsed": [0, 0, 0, 0, 0, 1], "drop_collapsed": True,
      "converged": False}, "did not converge"),
])
def test_each_forcing_reason_makes_a_clear_interval_inconclusive_and_says_why(kwargs, reason):
    row = decide("x", "-", "d", sesoi=SESOI, **kwargs)
    assert row["ci_low"] > 0, "the interval alone would say holds"
    assert row["verdict"] == row["verdict_holm"] == "inconclusive" and reason in row["note"]


def test_collapsed_seeds_are_counted_and_the_declared_estimate_decides():
    differences, collapsed = [3.0, 4.0, 5.0, 3.0, 4.0, -40.0], [False] * 5 + [True]
    without = decide("x", "-", "d", differences, sesoi=SESOI, collapsed=collapsed, drop_collapsed=True)
    with_them = decide("x", "-", "d", differences, sesoi=SESOI, collapsed=collapsed, drop_collapsed=False)
    assert without["collapsed"] == with_them["collapsed"] == "1/6"
    assert without["verdict"] == "holds" and without["seeds"] == 5 and without["estimate"] == 3.8
    assert "mean with them -3.50" in without["note"]
    assert with_them["verdict"] == "inconclusive" and with_them["seeds"] == 6 and "mean without them +3.80" in \
        with_them["note"]


def test_holm_levels_on_a_known_set_of_p_values():
    # sorted: 0.005 at 0.05/4, 0.01 at 0.05/3 (both rejected), 0.03 > 0.05/2 stops; 0.04 gets that level too
    levels = holm_levels([0.01, 0.04, 0.03, 0.005, math.nan])
    assert levels[:4] == [pytest.approx(0.05 / 3), pytest.approx(0.05 / 2), pytest.approx(0.05 / 2),
                          pytest.approx(0.05 / 4)]
    assert math.isnan(levels[4])
    assert holm_levels([0.001, 0.002]) == [pytest.approx(0.025), pytest.approx(0.05)]


def test_holm_turns_marginal_holds_inconclusive_and_keeps_clear_ones():
    marginal = [0.3, 2.5, 1.0, 0.6, 1.6]  # p ≈ 0.04 alone
    clear = [3.0, 4.0, 5.0, 3.0, 4.0]  # p ≈ 0.0005
    table = claims_table([decide(f"m{i}", "-", "d", marginal, sesoi=SESOI) for i in range(3)]
                         + [decide("c", "-", "d", clear, sesoi=SESOI)])
    assert table.verdict.tolist() == ["holds"] * 4
    assert table.verdict_holm.tolist() == ["inconclusive"] * 3 + ["holds"]
    assert with_holm(table.iloc[[0]]).verdict_holm.tolist() == ["holds"]


def test_claims_table_columns_lines_and_descriptive_rows():
    table = claims_table([decide("b after a", "+1", "d", [3.0, 4.0, 5.0, 3.0, 4.0], sesoi=SESOI),
                          descriptive("ρ < 0", "—", "d", "ρ = -0.4 over 3 points", "points not independent")])
    assert tuple(table.columns) == COLUMNS
    assert table.verdict.tolist() == ["holds", "inconclusive"] and math.isnan(table.p_value[1])
    assert claims_lines(table)[0] == ('- Claim "b after a" (d): +3.80 points, 95% CI [+2.76, +4.84] over 5 seed(s): '
                                      '**holds** (Holm: holds).')
    assert claims_lines(table)[1].endswith("— points not independent.")
    assert isinstance(table, pd.DataFrame)


def test_a_sesoi_is_positive():
    with pytest.raises(ValueError, match="positive"):
        Sesoi(0.0, "points", "none")


def test_paired_seed_differences_pair_rows_by_seed_whatever_their_order():
    runs = pd.DataFrame({"variant": ["base", "base", "base", "new", "new", "new", "other"],
                         "seed": [0, 1, 2, 2, 0, 1, 0], "H": [0.40, 0.50, 0.60, 0.63, 0.41, 0.52, 0.9]})
    differences = paired_seed_differences(runs, "new", "base", "H", scale=100)
    assert differences.index.tolist() == [0, 1, 2]
    assert differences.tolist() == [pytest.approx(1.0), pytest.approx(2.0), pytest.approx(3.0)]
    assert paired_seed_differences(runs, "other", "base", "H").index.tolist() == [0], "seeds of both arms only"


def test_compare_pairs_by_seed_and_counts_collapses():
    runs = pd.DataFrame({"variant": ["new"] * 5 + ["base"] * 5, "seed": list(range(5)) * 2,
                         "H": [0.50, 0.52, 0.02, 0.49, 0.51, 0.40, 0.41, 0.42, 0.39, 0.40]})
    row = compare("new beats base", "-", "d", runs, "new", "base", "H", sesoi=SESOI, scale=100, collapse_below=0.05)
    assert row["collapsed"] == "1/5" and row["seeds"] == 5 and row["estimate"] == pytest.approx(0.4)
    dropped = compare("x", "-", "d", runs, "new", "base", "H", sesoi=SESOI, scale=100, collapse_below=0.05,
                      drop_collapsed=True)
    assert dropped["seeds"] == 4 and dropped["verdict"] == "inconclusive" and "4 seed(s) < 5" in dropped["note"]
    assert not compare("x", "-", "d", runs, "new", "base", "H", sesoi=SESOI, converged=False)["converged"]


def test_gain_claims_per_setting_and_the_trend_from_per_seed_gain_differences():
    gains = {1: [5.0, 6.0, 5.5, 4.5, 5.0], 5: [1.0, 1.5, 0.5, 1.0, 2.0]}
    rows = gain_claims(gains, setting="shot", paper={1: "+5"}, paper_trend="larger at 1", data="d", sesoi=SESOI)
    assert [row["claim"] for row in rows] == ["hyperbolic beats Euclidean at 1-shot",
                                              "hyperbolic beats Euclidean at 5-shot",
                                              "the hyperbolic gain is larger at 1-shot than at 5-shot"]
    assert [row["paper_evidence"] for row in rows] == ["+5", "—", "larger at 1"]
    assert rows[2]["estimate"] == pytest.approx(4.0)  # per seed: 4, 4.5, 5, 3.5, 3
    assert [row["verdict"] for row in rows] == ["holds", "holds", "holds"]
    one_seed = gain_claims({1: [5.0]}, setting="shot", paper={}, paper_trend="", data="d", sesoi=SESOI)
    assert len(one_seed) == 1 and one_seed[0]["verdict"] == "inconclusive"


def test_a_correlation_claim_is_decided_by_a_bootstrap_interval_and_an_exact_permutation_test():
    from protolab.claims import CORRELATION, MIN_POINTS, correlation_claim

    x = np.arange(8, dtype=float)
    falling = correlation_claim("lower x, larger y", "—", "test", x, -x + 0.01 * np.sin(x), sign=-1)
    assert falling["estimate"] == pytest.approx(1.0) and falling["verdict"] == "holds"
    assert falling["p_value"] == pytest.approx(2 / math.factorial(8))  # only the two monotone orders are as extreme
    assert falling["seeds"] == 8 and "ρ = -1.00" in falling["measurement"]
    rising = correlation_claim("lower x, larger y", "—", "test", x, x, sign=-1)
    assert rising["verdict"] == "does not hold" and rising["ci_high"] < CORRELATION.value
    few = correlation_claim("lower x, larger y", "—", "test", x[:MIN_POINTS - 1], -x[:MIN_POINTS - 1], sign=-1)
    assert few["verdict"] == "inconclusive" and f"not scored: 7 independent point(s) < {MIN_POINTS}" in few["note"]
    assert math.isnan(few["p_value"]) and few["measurement"] == "ρ = -1.00 over 7 point(s)"  # not counted by Holm
    unconverged = correlation_claim("lower x, larger y", "—", "test", x, -x, sign=-1, converged=False)
    assert unconverged["verdict"] == "inconclusive" and "did not converge" in unconverged["note"]
