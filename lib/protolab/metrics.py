"""Evaluation measures shared by the notebooks."""

from __future__ import annotations

import math

import torch
from scipy import stats


def auroc(positive: torch.Tensor, negative: torch.Tensor) -> float:
    """Area under the ROC curve of a score that should be larger on ``positive`` than on ``negative``.

    Equals P(s⁺ > s⁻) + ½·P(s⁺ = s⁻) (the Mann–Whitney U statistic divided by n⁺·n⁻); 0.5 means the
    score does not separate the two sets, 1.0 that it separates them perfectly.
    """
    positive, negative = positive.double().flatten(), negative.double().flatten()
    if positive.numel() == 0 or negative.numel() == 0:
        raise ValueError("auroc needs at least one positive and one negative score")
    scores = torch.cat([positive, negative])
    ranks = torch.from_numpy(stats.rankdata(scores.numpy()))
    u = ranks[: positive.numel()].sum() - positive.numel() * (positive.numel() + 1) / 2
    return float(u / (positive.numel() * negative.numel()))


def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov–Smirnov statistic: the largest gap between the empirical CDFs, in [0, 1]."""
    return float(stats.ks_2samp(a.double().flatten().numpy(), b.double().flatten().numpy()).statistic)


def mean_ci95(values: torch.Tensor) -> tuple[float, float]:
    """Mean and 95% confidence half-width 1.96·σ/√n (σ the population std, as few-shot papers report)."""
    values = values.double().flatten()
    return float(values.mean()), float(1.96 * values.std(unbiased=False) / math.sqrt(values.numel()))
