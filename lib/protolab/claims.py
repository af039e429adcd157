"""Claims tables: one row per claim of a paper, decided from per-seed paired differences by one shared rule.

A claim predicts a *positive* effect (a gain, a separation above chance). Its evidence is one paired difference
per training seed (:func:`protolab.metrics.paired_seed_differences`: both arms trained with that seed and tested on
the same test data). :func:`decide` summarises them (mean, Student-t 95% interval over seeds, two-sided p-value)
and applies the rule:

* *holds* — the interval lies above 0;
* *does not hold* — the interval lies below the claim's smallest effect of interest (:class:`Sesoi`): any effect
  is too small to matter, reversals included;
* *inconclusive* — otherwise, and always when fewer than :data:`MIN_SEEDS` seeds were trained or a compared model
  did not converge (stopped by ``max_steps``, :mod:`protolab.training.convergence`); ``note`` says why.

Runs that collapsed (a failure test the notebook declares, e.g. H within 2× of chance) are counted per claim;
the estimate is computed with and without them and the verdict uses the one the claim declared beforehand.
``verdict_holm`` applies Holm's step-down correction (:func:`holm_levels`) at family-wise level 5%: in a notebook's
table over that notebook's claims, in the scorecard (:func:`with_holm`) over every claim of every notebook.

Every notebook saves its rows with ``figures.save_table(claims_table(rows), "claims")``; the report gathers the
tables into one scorecard.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ("claim", "paper_evidence", "data", "seeds", "estimate", "ci_low", "ci_high", "p_value", "sesoi",
           "converged", "collapsed", "verdict", "verdict_holm", "note", "measurement", "std_error")
MIN_SEEDS = 5
"""Fewer training seeds than this make a verdict inconclusive, whatever its interval says."""


VERDICTS = ("holds", "does not hold", "inconclusive")
ALPHA = 0.05  # the level of every claim's interval (95%) and the family-wise level of Holm's correction


def t_interval(mean: float, std_error: float, df: int, level: float = 1 - ALPHA) -> tuple[float, float]:
    r"""Two-sided Student-t interval :math:`\bar d \pm t_{(1+\text{level})/2,\,df}\,\mathrm{SE}`; NaN when ``df < 1``."""
    if df < 1 or math.isnan(std_error):
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, df)) * std_error
    return mean - half, mean + half


def paired_effect(differences: Sequence[float]) -> dict[str, float]:
    r"""The per-seed paired differences :math:`d_1 … d_n` of a comparison summarised: ``estimate`` (their mean),
    ``std_error`` (:math:`s/\sqrt n`), ``df`` (n − 1), the 95% t-interval ``ci_low``/``ci_high`` and the two-sided
    one-sample t-test ``p_value`` of "mean 0". Below 2 values the spread, interval and p-value are NaN."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n == 0:
        raise ValueError("a claim needs at least one per-seed difference")
    mean = float(d.mean())
    if n < 2:
        return {"estimate": mean, "std_error": math.nan, "df": 0, "ci_low": math.nan, "ci_high": math.nan,
                "p_value": math.nan}
    std_error = float(d.std(ddof=1) / math.sqrt(n))
    low, high = t_interval(mean, std_error, n - 1)
    if std_error == 0:
        p_value = 1.0 if mean == 0 else 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(mean) / std_error, n - 1))
    return {"estimate": mean, "std_error": std_error, "df": n - 1, "ci_low": low, "ci_high": high,
            "p_value": p_value}


def interval_verdict(low: float, high: float, sesoi: float) -> str:
    """The one rule every claim's verdict uses, on an interval ``[low, high]`` of an effect predicted positive:
    ``"holds"`` when ``low > 0``; ``"does not hold"`` when ``high < sesoi`` (any effect is smaller than the smallest
    effect of interest, reversals included); ``"inconclusive"`` otherwise or when a bound is NaN."""
    if math.isnan(low) or math.isnan(high):
        return "inconclusive"
    return "holds" if low > 0 else "does not hold" if high < sesoi else "inconclusive"


def holm_levels(p_values: Sequence[float], alpha: float = ALPHA) -> list[float]:
    r"""Holm's step-down levels: the significance level at which each of ``m`` hypotheses is judged so that the
    family-wise error rate is at most ``alpha``. Sorted by p-value, the ``j``-th (1-based) is tested at
    :math:`\alpha/(m-j+1)` while every earlier one was rejected; from the first that is not rejected on, all get
    that first one's level (none of them is rejected). NaN p-values (claims without an interval) get NaN and do not
    count in ``m``."""
    p = [float(value) for value in p_values]
    tested = sorted((value, index) for index, value in enumerate(p) if not math.isnan(value))
    m, levels = len(tested), [math.nan] * len(p)
    level, stopped = alpha / max(m, 1), False
    for rank, (value, index) in enumerate(tested):
        if not stopped:
            level = alpha / (m - rank)
            stopped = value > level
        levels[index] = level
    return levels


@dataclass(frozen=True)
class Sesoi:
    """A claim family's smallest effect of interest, in the claim's ``unit``, with the one-line ``reason``."""

    value: float
    unit: str
    reason: str

    def __post_init__(self) -> None:
        if not self.value > 0:
            raise ValueError(f"a smallest effect of interest is positive, got {self.value!r}")


POINTS = Sesoi(2.0, "points", "2 points of accuracy, H, Rank-1 or mAP: about the spread between training seeds of one "
               "method on the papers' benchmarks, and the smallest gain a reader would change methods for")
AUROC = Sesoi(0.02, "AUROC", "0.02 AUROC: smaller separations are within the spread between seeds of one model")
SIMILARITY = Sesoi(0.02, "", "0.02 of a similarity measure in [0, 1] (CKA) or of a KL in nats: smaller changes of "
                   "alignment are within the spread between seeds")
CORRELATION = Sesoi(0.3, "", "a rank correlation weaker than 0.3 in magnitude orders under a tenth of the "
                    "variation: too weak to choose a geometry by")
"""The claim families' smallest effects of interest (the notebooks use these; a new family declares its own)."""

MIN_POINTS = 8
"""Fewer independent points than this make a relation between two measures descriptive, not a claim."""


def decide(statement: str, paper_evidence: str, data: str, differences: Sequence[float], *, sesoi: Sesoi,
           converged: bool = True, collapsed: Sequence[bool] | None = None, drop_collapsed: bool = False,
           note: str = "") -> dict[str, object]:
    """One claims row (:data:`COLUMNS`) for ``statement``, which predicts a positive effect.

    Parameters
    ----------
    differences : one paired difference per training seed (arm − reference, in ``sesoi.unit``).
    sesoi : the claim family's smallest effect of interest.
    converged : whether every compared model stopped by patience (False forces *inconclusive*).
    collapsed : per seed, whether a compared run collapsed (the notebook's declared failure test).
    drop_collapsed : the declared choice: decide on the seeds without a collapse (True) or on all (False).
    note : anything else a reader must know (joined with the rule's own reasons).
    """
    differences = np.asarray(differences, dtype=float)
    collapsed = np.zeros(len(differences), bool) if collapsed is None else np.asarray(collapsed, dtype=bool)
    if collapsed.shape != differences.shape:
        raise ValueError(f"collapsed has {collapsed.size} flags for {differences.size} seeds")
    kept = differences[~collapsed] if drop_collapsed else differences
    notes = [note] if note else []
    if collapsed.any():
        other = differences if drop_collapsed else differences[~collapsed]
        other_mean = f"{other.mean():+.2f}" if len(other) else "none left"
        notes.append(f"{int(collapsed.sum())} of {len(differences)} seeds collapsed; decided "
                     f"{'without' if drop_collapsed else 'with'} them (mean {'with' if drop_collapsed else 'without'}"
                     f" them {other_mean})")
    effect = paired_effect(kept) if len(kept) else paired_effect([math.nan])
    forced = []
    if len(kept) < MIN_SEEDS:
        forced.append(f"{len(kept)} seed(s) < {MIN_SEEDS}")
    if not converged:
        forced.append("a compared model did not converge (stopped by max_steps)")
    verdict = "inconclusive" if forced else interval_verdict(effect["ci_low"], effect["ci_high"], sesoi.value)
    digits = 2 if sesoi.value >= 1 else 3
    spread = ("n/a" if math.isnan(effect["ci_low"])
              else f"[{effect['ci_low']:+.{digits}f}, {effect['ci_high']:+.{digits}f}]")
    unit = f" {sesoi.unit}" if sesoi.unit else ""
    return {"claim": statement, "paper_evidence": paper_evidence, "data": data, "seeds": len(kept),
            "estimate": effect["estimate"], "ci_low": effect["ci_low"], "ci_high": effect["ci_high"],
            "p_value": effect["p_value"], "sesoi": sesoi.value, "converged": bool(converged),
            "collapsed": f"{int(collapsed.sum())}/{len(differences)}", "verdict": verdict, "verdict_holm": verdict,
            "note": "; ".join(([f"inconclusive by rule: {', '.join(forced)}"] if forced else []) + notes),
            "measurement": f"{effect['estimate']:+.{digits}f}{unit}, 95% CI {spread} over {len(kept)} seed(s)",
            "std_error": effect["std_error"]}


def _spearman_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman's ρ of each row pair of ``x`` and ``y`` ``(R, n)`` (average ranks for ties); NaN where a row is
    constant."""
    rx, ry = (stats.rankdata(values, axis=1) for values in (x, y))
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    denominator = np.sqrt((rx ** 2).sum(1) * (ry ** 2).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (rx * ry).sum(1) / np.where(denominator > 0, denominator, 1), np.nan)


def correlation_claim(statement: str, paper_evidence: str, data: str, x: Sequence[float], y: Sequence[float], *,
                      sign: int, sesoi: Sesoi = CORRELATION, converged: bool = True, n_boot: int = 10_000,
                      seed: int = 0, note: str = "") -> dict[str, object]:
    r"""One claims row for "Spearman's ρ of ``x`` and ``y`` has the sign ``sign``" (±1), from ``n`` independent
    points (one per unit, e.g. per feature space: not seeds, so ``seeds`` holds ``n``).

    The effect is ``sign · ρ`` (predicted positive); its 95% interval is the percentile bootstrap over points
    (``n_boot`` resamples of the pairs, seeded; resamples with a constant ``x`` or ``y`` are dropped), its
    two-sided p-value the exact permutation test of "no association" (all ``n!`` orderings of ``y`` up to 8 points,
    else ``n_boot`` random ones). The verdict is :func:`interval_verdict`'s, inconclusive when a model behind the
    points did not converge. Below :data:`MIN_POINTS` points the relation is described instead
    (:func:`descriptive`: ρ only, no interval, not counted by Holm).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    observed = float(_spearman_rows(x[None], y[None])[0]) if n >= 3 else math.nan
    if n < MIN_POINTS:
        return descriptive(statement, paper_evidence, data, f"ρ = {observed:+.2f} over {n} point(s)",
                           f"descriptive, not scored: {n} independent point(s) < {MIN_POINTS}"
                           + (f"; {note}" if note else ""))
    generator = np.random.default_rng(seed)
    resamples = generator.integers(0, n, size=(n_boot, n))
    boot = sign * _spearman_rows(x[resamples], y[resamples])
    boot = boot[~np.isnan(boot)]
    low, high = (np.percentile(boot, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)]).tolist() if len(boot)
                 else (math.nan, math.nan))
    orders = (np.array(list(itertools.permutations(range(n)))) if n <= 8
              else np.array([generator.permutation(n) for _ in range(n_boot)]))
    null = _spearman_rows(np.broadcast_to(x, orders.shape), y[orders])
    p_value = math.nan if math.isnan(observed) else float(np.mean(np.abs(null) >= abs(observed) - 1e-12))
    forced = [] if converged else ["a model behind the points did not converge (stopped by max_steps)"]
    verdict = "inconclusive" if forced else interval_verdict(low, high, sesoi.value)
    rho_low, rho_high = sorted((sign * low, sign * high))  # the interval back on ρ's own scale
    spread = "n/a" if math.isnan(low) else f"[{rho_low:+.2f}, {rho_high:+.2f}]"
    return {"claim": statement, "paper_evidence": paper_evidence, "data": data, "seeds": n,
            "estimate": sign * observed, "ci_low": low, "ci_high": high, "p_value": p_value, "sesoi": sesoi.value,
            "converged": bool(converged), "collapsed": "", "verdict": verdict, "verdict_holm": verdict,
            "note": "; ".join(([f"inconclusive by rule: {', '.join(forced)}"] if forced else [])
                              + ([note] if note else [])),
            "measurement": f"ρ = {observed:+.2f}, bootstrap 95% CI {spread} over {n} point(s), permutation "
                           f"p = {p_value:.3f}",
            "std_error": float(boot.std(ddof=1)) if len(boot) > 1 else math.nan}


def paired_seed_differences(runs: pd.DataFrame, arm: str, reference: str, column: str, *, scale: float = 1.0,
                            by: str = "variant") -> pd.Series:
    """``scale`` × (``column`` of ``arm`` − ``column`` of ``reference``), one value per seed (the index, sorted).

    ``runs`` has one row per (``by`` value, ``seed``); a seed missing from either arm is left out.
    """
    table = runs[runs[by].isin([arm, reference])].pivot(index="seed", columns=by, values=column)
    return (scale * (table[arm] - table[reference])).dropna().sort_index()


def compare(statement: str, paper_evidence: str, data: str, runs: pd.DataFrame, arm: str, reference: str,
            column: str, *, sesoi: Sesoi, scale: float = 1.0, by: str = "variant", converged: bool = True,
            collapse_below: float | None = None, drop_collapsed: bool = False, note: str = "") -> dict[str, object]:
    """:func:`decide` on "``arm`` beats ``reference`` on ``column``" from a runs table (one row per arm and seed).

    ``converged``: whether every model of both arms stopped by patience
    (:func:`protolab.training.convergence.converged_arms` of the notebook's ``models`` table). A seed collapsed
    when either arm's ``column`` is below ``collapse_below`` (the notebook's declared failure test, in the column's
    own scale), and ``drop_collapsed`` is the declared choice of :func:`decide`.
    """
    differences = paired_seed_differences(runs, arm, reference, column, scale=scale, by=by)
    collapsed = None
    if collapse_below is not None:
        low = runs[runs[by].isin([arm, reference])].assign(low=lambda t: t[column] < collapse_below)
        collapsed = low.groupby("seed").low.any().reindex(differences.index).fillna(False).tolist()
    return decide(statement, paper_evidence, data, differences.tolist(), sesoi=sesoi, converged=converged,
                  collapsed=collapsed, drop_collapsed=drop_collapsed, note=note)


def gain_claims(gains: Mapping[int, Sequence[float]], *, setting: str, paper: Mapping[int, str], paper_trend: str,
                data: str, sesoi: Sesoi, converged: bool = True) -> list[dict[str, object]]:
    """Rows for "hyperbolic beats Euclidean at ``k`` ``setting``" for each ``k`` of ``gains`` (one hyperbolic −
    Euclidean difference per training seed, seeds in the same order for every ``k``) and, with two or more
    settings, "the gain is larger at the smallest ``k`` than at the largest", decided on the per-seed
    differences of the two gains. ``paper`` gives the evidence per ``k`` ("—" if absent)."""
    rows = [decide(f"hyperbolic beats Euclidean at {k}-{setting}", paper.get(k, "—"), data, gain, sesoi=sesoi,
                   converged=converged) for k, gain in gains.items()]
    if len(gains) >= 2:
        low, high = min(gains), max(gains)
        trend = np.asarray(gains[low], dtype=float) - np.asarray(gains[high], dtype=float)
        rows.append(decide(f"the hyperbolic gain is larger at {low}-{setting} than at {high}-{setting}", paper_trend,
                           data, trend, sesoi=sesoi, converged=converged))
    return rows


def descriptive(statement: str, paper_evidence: str, data: str, measurement: str, note: str) -> dict[str, object]:
    """A row that reports a relation without deciding it (no interval the rule can use): verdict *inconclusive*,
    no p-value (it does not count in Holm's correction), ``note`` saying why."""
    return {"claim": statement, "paper_evidence": paper_evidence, "data": data, "seeds": 0, "estimate": math.nan,
            "ci_low": math.nan, "ci_high": math.nan, "p_value": math.nan, "sesoi": math.nan, "converged": True,
            "collapsed": "", "verdict": "inconclusive", "verdict_holm": "inconclusive", "note": note,
            "measurement": measurement, "std_error": math.nan}


def with_holm(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` (claims rows) with ``verdict_holm`` recomputed over all its rows: each claim's interval at its
    Holm level (:func:`holm_levels` of the p-values), judged by :func:`interval_verdict`. A row the rule forced
    to *inconclusive* stays so; its p-value still counts in ``m`` (it was tested)."""
    table = table.copy()
    p_values = pd.to_numeric(table["p_value"], errors="coerce").fillna(math.nan).tolist()
    verdicts = []
    for row, level in zip(table.itertuples(index=False), holm_levels(p_values)):
        if row.verdict != "inconclusive" and not math.isnan(level):
            low, high = t_interval(float(row.estimate), float(row.std_error), int(row.seeds) - 1, 1 - level)
            verdicts.append(interval_verdict(low, high, float(row.sesoi)))
        else:
            verdicts.append("inconclusive")
    table["verdict_holm"] = verdicts
    return table


def claims_table(rows: list[dict[str, object]]) -> pd.DataFrame:
    """The rows of :func:`decide` as a DataFrame with the columns of :data:`COLUMNS`, in order, and
    ``verdict_holm`` over these rows (:func:`with_holm`; the scorecard recomputes it over every notebook)."""
    return with_holm(pd.DataFrame(rows, columns=list(COLUMNS)))


def claims_lines(table: pd.DataFrame) -> list[str]:
    """One Markdown bullet per claim: statement, data, measurement, verdict (and Holm's) in bold, the note."""
    return [f"- Claim \"{row.claim}\" ({row.data}): {row.measurement}: **{row.verdict}** "
            f"(Holm: {row.verdict_holm})" + (f" — {row.note}" if row.note else "") + "."
            for row in table.itertuples()]
