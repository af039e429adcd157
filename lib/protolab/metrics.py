"""Evaluation measures shared by the notebooks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
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


def seed_ci95(values: torch.Tensor) -> tuple[float, float]:
    """Mean and Student-t 95% half-width :math:`t_{0.975, n-1} s / \\sqrt{n}` (``s`` the sample std): for a
    handful of seeds, where 1.96σ/√n would be far too narrow. The half-width is NaN for one value."""
    values = values.double().flatten()
    n = values.numel()
    if n < 2:
        return float(values.mean()), math.nan
    return float(values.mean()), float(stats.t.ppf(0.975, n - 1) * values.std(unbiased=True) / math.sqrt(n))


def paired_seed_change(runs: pd.DataFrame, variant: str, baseline: str, column: str,
                       scale: float = 1.0) -> tuple[float, float]:
    """:func:`seed_ci95` of ``scale`` × (``column`` of ``variant`` − ``column`` of ``baseline``), paired by seed.

    ``runs`` has one row per (``variant``, ``seed``), with the same seeds for both variants.
    """
    table = runs[runs.variant.isin([variant, baseline])].pivot(index="seed", columns="variant", values=column)
    return seed_ci95(torch.tensor(scale * (table[variant] - table[baseline]).to_numpy()))


def per_class_accuracy(predictions: torch.Tensor, labels: torch.Tensor, classes: torch.Tensor) -> float:
    """Mean over ``classes`` of the top-1 accuracy within each class (Xian et al.'s ``acc_per_class``).

    .. math:: \\mathrm{acc} = \\frac{1}{|\\mathcal{C}'|} \\sum_{c \\in \\mathcal{C}'}
              \\frac{\\#\\{i : y_i = c,\\ \\hat y_i = c\\}}{\\#\\{i : y_i = c\\}}

    Parameters
    ----------
    predictions, labels : int ``(N,)`` predicted and true global class ids.
    classes : int ``(K,)`` the classes to average over. A class with no sample in ``labels`` has no
        accuracy and is left out of the mean (``C'`` = the classes of ``classes`` present in ``labels``),
        so it neither counts as 0 nor as 1.

    Returns
    -------
    float in [0, 1]; NaN when none of ``classes`` has a sample.
    """
    predictions, labels = predictions.flatten().long(), labels.flatten().long()
    accuracies = [float((predictions[labels == c] == c).double().mean()) for c in classes.flatten().tolist()
                  if bool((labels == c).any())]
    return sum(accuracies) / len(accuracies) if accuracies else math.nan


def harmonic_mean(unseen: float, seen: float) -> float:
    """H = 2·U·S / (U + S), 0 when both are 0."""
    return 2 * unseen * seen / (unseen + seen) if unseen + seen > 0 else 0.0


def _stacked_predictions(scores: torch.Tensor, seen_classes: torch.Tensor, calibration: float) -> torch.Tensor:
    """argmax over all classes of ``scores`` with ``calibration`` subtracted from the seen-class columns."""
    adjusted = scores.double().clone()
    adjusted[:, seen_classes.long()] -= calibration
    return adjusted.argmax(dim=1)


def gzsl_scores(scores_seen: torch.Tensor, labels_seen: torch.Tensor, scores_unseen: torch.Tensor,
                labels_unseen: torch.Tensor, seen_classes: torch.Tensor, unseen_classes: torch.Tensor,
                calibration: float = 0.0) -> dict[str, float]:
    """Generalized zero-shot accuracies of Xian et al. (2018): U, S and their harmonic mean H.

    Each test image is classified by argmax over the search space of *all* classes (the columns of the
    score matrices, indexed by global class id). S is :func:`per_class_accuracy` of test-seen images
    over the seen classes, U that of test-unseen images over the unseen classes, H = 2US/(U+S).
    With ``calibration`` γ ≠ 0 this is calibrated stacking (Chao et al., 2016): γ is subtracted from every
    seen-class score before the argmax; γ = 0 is plain argmax, as IPN reports.

    Parameters
    ----------
    scores_seen : ``(N_s, C)`` scores of the test-seen images; ``labels_seen`` ``(N_s,)`` their class ids.
    scores_unseen : ``(N_u, C)`` scores of the test-unseen images; ``labels_unseen`` ``(N_u,)``.
    seen_classes, unseen_classes : int ids (columns) of the seen and unseen classes.
    calibration : the constant γ subtracted from seen-class scores.

    Returns
    -------
    dict with keys ``U``, ``S``, ``H`` (fractions in [0, 1]).
    """
    unseen = per_class_accuracy(_stacked_predictions(scores_unseen, seen_classes, calibration), labels_unseen,
                                unseen_classes)
    seen = per_class_accuracy(_stacked_predictions(scores_seen, seen_classes, calibration), labels_seen,
                              seen_classes)
    return {"U": unseen, "S": seen, "H": harmonic_mean(unseen, seen)}


def seen_unseen_curve(scores_seen: torch.Tensor, labels_seen: torch.Tensor, scores_unseen: torch.Tensor,
                      labels_unseen: torch.Tensor, seen_classes: torch.Tensor,
                      unseen_classes: torch.Tensor) -> tuple[pd.DataFrame, float]:
    """The seen–unseen accuracy curve of calibrated stacking and its area AUSUC (Chao et al., 2016).

    γ sweeps one value between each pair of consecutive gaps ``max_seen − max_unseen`` of the test
    images (where a prediction switches between its best seen and best unseen class), one below the
    smallest gap (only seen classes predicted: U = 0) and one above the largest (only unseen: S = 0). The area under S as a function of U is
    the trapezoid rule over the points sorted by U.

    Parameters
    ----------
    As :func:`gzsl_scores`, without ``calibration``.

    Returns
    -------
    (curve, ausuc) : a DataFrame with columns ``calibration``, ``U``, ``S``, ``H`` (one row per γ, in
        increasing γ) and the area in [0, 1].
    """
    seen_ids = seen_classes.long()
    unseen_ids = unseen_classes.long()
    scores = torch.cat([scores_seen, scores_unseen]).double()
    gaps = scores[:, seen_ids].max(dim=1).values - scores[:, unseen_ids].max(dim=1).values
    # γ just above each gap flips that image to its unseen class; midpoints keep every γ off a tie
    cuts = torch.unique(gaps)
    inner = torch.cat([cuts[:1] - 1, (cuts[1:] + cuts[:-1]) / 2, cuts[-1:] + 1]) if len(cuts) else cuts
    gammas = inner.tolist()
    rows = [{"calibration": gamma, **gzsl_scores(scores_seen, labels_seen, scores_unseen, labels_unseen,
                                                 seen_classes, unseen_classes, calibration=gamma)}
            for gamma in gammas]
    curve = pd.DataFrame(rows)
    ordered = curve.sort_values(["U", "S"], ascending=[True, False])
    ausuc = float(np.trapezoid(ordered["S"].to_numpy(), ordered["U"].to_numpy()))
    return curve, ausuc


def similarity_kl(a: torch.Tensor, b: torch.Tensor, temperature: float) -> float:
    """Mean over items of KL between the two spaces' class-similarity distributions.

    Row i of each space is :math:`\\mathrm{softmax}_j(T \\cos(x_i, x_j))` over all items (self included);
    returns :math:`\\frac{1}{N}\\sum_i \\mathrm{KL}(p^a_i \\| p^b_i)`, 0 when the cosine structures agree.
    ``a`` ``(N, P)`` and ``b`` ``(N, Q)`` describe the same N items, possibly in different dimensions.
    """
    log_p = []
    for x in (a, b):
        unit = torch.nn.functional.normalize(x.double(), dim=1)
        log_p.append(torch.log_softmax(temperature * unit @ unit.T, dim=1))
    return float((log_p[0].exp() * (log_p[0] - log_p[1])).sum(dim=1).mean())


def linear_cka(a: torch.Tensor, b: torch.Tensor) -> float:
    """Linear centred kernel alignment (Kornblith et al., 2019) of two representations of N items.

    .. math:: \\mathrm{CKA}(A, B) = \\frac{\\|B_c^\\top A_c\\|_F^2}{\\|A_c^\\top A_c\\|_F \\|B_c^\\top B_c\\|_F}

    with column-centred ``a`` ``(N, P)`` and ``b`` ``(N, Q)``. 1 when one is the other rotated and scaled
    (the features are equal up to an isometry), near 0 for unrelated features.
    """
    a = a.double() - a.double().mean(dim=0)
    b = b.double() - b.double().mean(dim=0)
    cross = torch.linalg.matrix_norm(b.T @ a) ** 2
    return float(cross / (torch.linalg.matrix_norm(a.T @ a) * torch.linalg.matrix_norm(b.T @ b)))
