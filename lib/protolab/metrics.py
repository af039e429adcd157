"""Evaluation measures shared by the notebooks."""

from __future__ import annotations

import math
from collections.abc import Sequence

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
    r"""Mean and Student-t 95% half-width :math:`t_{0.975,\,n-1}\, s / \sqrt{n}` (``s`` the sample std) of
    ``values``, the one interval helper: over training seeds, paired differences or test episodes. With a handful
    of seeds 1.96·σ/√n would be far too narrow; over the thousands of test episodes few-shot papers report
    1.96·σ/√n on, the two agree to 0.1%. The half-width is NaN below 2 values (→ an *inconclusive* verdict)."""
    values = values.double().flatten()
    n = values.numel()
    if n < 2:
        return float(values.mean()), math.nan
    return float(values.mean()), float(stats.t.ppf(0.975, n - 1) * values.std(unbiased=True) / math.sqrt(n))


def spearman_ci95(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, float]:
    r"""Spearman's ρ of ``x`` and ``y`` (``n`` paired values) with its Fisher-z 95% interval
    :math:`\tanh(\operatorname{artanh}\rho \pm 1.96\sqrt{1.06/(n-3)})` (Fieller et al.'s standard error).

    Returns ``(ρ, low, high)``; ρ is NaN below 3 points or when ``x`` is constant, the interval NaN below 4.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    rho = float(stats.spearmanr(x, y).statistic) if n >= 3 and np.unique(x).size > 1 else math.nan
    if n < 4 or math.isnan(rho):
        return rho, math.nan, math.nan
    z, spread = math.atanh(float(np.clip(rho, -0.999999, 0.999999))), 1.96 * math.sqrt(1.06 / (n - 3))
    return rho, math.tanh(z - spread), math.tanh(z + spread)


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


def reid_evaluate(distances: torch.Tensor, query_ids: torch.Tensor, query_cameras: torch.Tensor,
                  gallery_ids: torch.Tensor, gallery_cameras: torch.Tensor, *, max_rank: int = 50,
                  chunk_size: int = 256) -> dict:
    r"""CMC and mAP of person re-identification under the Market-1501 protocol (also DukeMTMC-reID).

    Every query ranks the gallery by increasing distance. For each query the gallery images of its
    identity seen by its own camera are removed, as are junk images (identity ``-1``); distractors
    (identity ``0``) stay, as negatives. The valid matches of a query are the remaining gallery images of
    its identity (so a query of identity ``-1`` has none). A query with no valid match is excluded from
    every average and counted in ``n_excluded_queries`` (torchreid's ``eval_market1501`` skips it the
    same way; its ``num_valid_q`` is ``n_valid_queries``).

    With :math:`\mathrm{rel}_k \in \{0, 1\}` marking a valid match at rank :math:`k` of the kept list
    and :math:`n_\mathrm{rel}` the number of valid matches, the average precision of a query is
    torchreid's (non-interpolated) one,

    .. math:: \mathrm{AP} = \frac{1}{n_\mathrm{rel}} \sum_k \mathrm{rel}_k \,
              \frac{\sum_{j \le k} \mathrm{rel}_j}{k},

    and :math:`\mathrm{CMC}(r)` is the fraction of valid queries with a valid match within the first
    ``r`` kept results. The official Market-1501 MATLAB code averages the precision at a match with the
    one before it (trapezoids); its mAP is a little higher than this one, its CMC the same.

    Ties are broken by gallery index: the ranking is a stable sort by distance, so of two images at the
    same distance the one earlier in the gallery ranks first. (torchreid's ``np.argsort`` uses an
    unstable sort, so its order of tied images is unspecified.)

    Parameters
    ----------
    distances : ``(Q, G)`` real distances, smaller = more similar; NaN is refused. Any device.
    query_ids, query_cameras : integer ``(Q,)`` identity and camera of each query.
    gallery_ids, gallery_cameras : integer ``(G,)`` identity (``-1`` junk, ``0`` distractor) and camera
        of each gallery image.
    max_rank : length of the returned CMC curve (cut to ``G``, as torchreid does).
    chunk_size : queries ranked at once. Working memory per chunk is about ``chunk_size · G ·
        (distances.element_size() + 20)`` bytes (sorted values and int64 indices, boolean masks, an
        int32 rank): for float32 distances and Market-1501's G = 19,732, about 120 MB at the default
        256, 30 MB at 64. ``benchmarks/reid_evaluate.py`` measured about 170 MB extra peak RSS at 256 and
        450-490 MB at 1024 (about 25 B per element, plus a fixed ~90 MB of library start-up).

    Returns
    -------
    dict with ``rank1``, ``rank5``, ``rank10``, ``mAP`` (floats in [0, 1], over valid queries; ``rank5``
    and ``rank10`` do not depend on ``max_rank``), ``cmc`` (float64 CPU tensor ``(min(max_rank, G),)``,
    ``cmc[r]`` = CMC at rank ``r + 1``), ``ap`` (float64 CPU tensor ``(Q,)``, NaN for excluded queries),
    ``n_valid_queries`` and ``n_excluded_queries`` (ints).

    Raises
    ------
    ValueError
        On shapes that do not match ``distances``, non-integer ids or cameras, NaN distances,
        ``max_rank`` or ``chunk_size`` below 1, or when no query has a valid match.
    """
    distances = torch.as_tensor(distances)
    if distances.ndim != 2:
        raise ValueError(f"distances must be a (Q, G) matrix, got shape {tuple(distances.shape)}")
    if distances.is_complex() or distances.dtype == torch.bool:
        raise ValueError(f"distances must be real numbers, got {distances.dtype}")
    n_query, n_gallery = distances.shape
    if n_query == 0 or n_gallery == 0:
        raise ValueError("distances must have at least one query and one gallery image, "
                         f"got shape {(n_query, n_gallery)}")
    for name, value in (("max_rank", max_rank), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    device = distances.device
    labels = []
    for name, value, size, side in (("query_ids", query_ids, n_query, "rows"),
                                    ("query_cameras", query_cameras, n_query, "rows"),
                                    ("gallery_ids", gallery_ids, n_gallery, "columns"),
                                    ("gallery_cameras", gallery_cameras, n_gallery, "columns")):
        value = torch.as_tensor(value)
        if value.shape != (size,):
            raise ValueError(f"{name} must have shape ({size},), one per {side[:-1]} of distances "
                             f"{tuple(distances.shape)}; got {tuple(value.shape)}")
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise ValueError(f"{name} must hold integers, got {value.dtype}")
        labels.append(value.to(device=device, dtype=torch.long))
    query_ids, query_cameras, gallery_ids, gallery_cameras = labels

    gallery_junk = (gallery_ids == -1)[None, :]
    average_precision = torch.full((n_query,), math.nan, dtype=torch.float64, device=device)
    first_ranks = []  # rank (1-based, among kept images) of the first valid match of each valid query
    for start in range(0, n_query, chunk_size):
        stop = min(start + chunk_size, n_query)
        block = distances[start:stop]
        if block.is_floating_point() and bool(torch.isnan(block).any()):
            raise ValueError("distances contain NaN; their ranking is undefined")
        order = torch.sort(block, dim=1, stable=True).indices  # ties: earlier gallery index first
        same_id = gallery_ids[None, :] == query_ids[start:stop, None]
        removed = gallery_junk | (same_id & (gallery_cameras[None, :] == query_cameras[start:stop, None]))
        good = (same_id & ~removed).gather(1, order)
        del same_id
        kept = (~removed).gather(1, order)
        del removed, order
        kept_rank = torch.cumsum(kept, dim=1, dtype=torch.int32)  # rank among kept images, at kept places
        del kept
        rows, columns = good.nonzero(as_tuple=True)  # row-major: each row's matches in ranked order
        rank = kept_rank[rows, columns].double()
        del kept_rank, columns
        n_good = good.sum(dim=1)
        del good
        row_start = torch.cumsum(n_good, dim=0) - n_good
        hits = torch.arange(rows.numel(), device=device) - row_start[rows] + 1  # matches so far
        precision_sum = torch.zeros(stop - start, dtype=torch.float64, device=device)
        precision_sum.index_add_(0, rows, hits / rank)
        valid = n_good > 0
        average_precision[start:stop][valid] = precision_sum[valid] / n_good[valid]
        first_ranks.append(rank[hits == 1])

    first = torch.cat(first_ranks).long().cpu()
    n_valid = first.numel()
    if n_valid == 0:
        raise ValueError("no query has a valid match in the gallery (same identity, other camera, not junk)")
    n_ranks = min(max_rank, n_gallery)
    counts = torch.bincount(first.clamp(max=n_ranks + 1), minlength=n_ranks + 2)[1:n_ranks + 1]
    average_precision = average_precision.cpu()
    return {
        "rank1": float((first <= 1).double().mean()),
        "rank5": float((first <= 5).double().mean()),
        "rank10": float((first <= 10).double().mean()),
        "mAP": float(average_precision.nansum() / n_valid),
        "cmc": counts.cumsum(0).double() / n_valid,
        "ap": average_precision,
        "n_valid_queries": n_valid,
        "n_excluded_queries": n_query - n_valid,
    }
