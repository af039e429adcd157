"""Two closed-form zero-shot baselines on fixed features: ESZSL and ridge attribute regression.

Both are computed in float64 and return float64 tensors; scores are ``(N, C)`` over the classes whose
attribute rows are passed, so a GZSL evaluation passes all ``C`` classes (see ``metrics.gzsl_scores``).

:func:`select_baseline` picks a method's regularisers by validation H on the held-out images of
:func:`protolab.zsl.fit.validation_split` (the images IPN is selected on), then refits on ``trainval``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import pandas as pd
import torch

from protolab.data.xlsa17 import ZSLData
from protolab.metrics import gzsl_scores

BASELINES = ("ESZSL", "attribute regression")


def _solve_ridge(gram: torch.Tensor, right: torch.Tensor, regulariser: float) -> torch.Tensor:
    """``(gram + regulariser·I)⁻¹ right`` by a Cholesky solve (``gram`` symmetric PSD, ``regulariser`` > 0)."""
    if regulariser <= 0:
        raise ValueError(f"the ridge regulariser must be positive, got {regulariser}")
    eye = torch.eye(len(gram), dtype=gram.dtype, device=gram.device)
    return torch.cholesky_solve(right, torch.linalg.cholesky(gram + regulariser * eye))


def eszsl_fit(features: torch.Tensor, labels: torch.Tensor, attributes: torch.Tensor, classes: torch.Tensor,
              gamma: float, lam: float) -> torch.Tensor:
    """ESZSL (Romera-Paredes & Torr, ICML 2015, eq. 4 in row-vector form).

    .. math:: V = (X^\\top X + \\gamma I)^{-1} X^\\top Y S (S^\\top S + \\lambda I)^{-1}

    the minimiser of :math:`\\|X V S^\\top - Y\\|_F^2 + \\gamma \\|V S^\\top\\|_F^2 + \\lambda \\|X V\\|_F^2
    + \\gamma\\lambda \\|V\\|_F^2`, i.e. the solution of the normal equations
    :math:`(X^\\top X + \\gamma I) V (S^\\top S + \\lambda I) = X^\\top Y S`.

    Parameters
    ----------
    features : ``(N, D)`` training features X.
    labels : ``(N,)`` global class ids, each in ``classes``.
    attributes : ``(C, A)`` attribute rows of all classes (indexed by global id).
    classes : ``(Z,)`` the training classes; S = ``attributes[classes]`` ``(Z, A)``.
    gamma, lam : the paper's γ (feature-side) and λ (attribute-side) regularisers, > 0.

    Returns
    -------
    V : float64 ``(D, A)``. Y is ``(N, Z)`` with +1 at the true class and −1 elsewhere, as in the paper.
    """
    x = features.double()
    signatures = attributes.double()[classes.long()]
    position = torch.full((int(classes.max()) + 1,), -1, dtype=torch.long)
    position[classes.long()] = torch.arange(len(classes))
    targets = -torch.ones(len(x), len(classes), dtype=torch.float64)
    targets[torch.arange(len(x)), position[labels.long()]] = 1.0
    left = _solve_ridge(x.T @ x, x.T @ targets @ signatures, gamma)
    return _solve_ridge(signatures.T @ signatures, left.T, lam).T


def eszsl_scores(features: torch.Tensor, weights: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
    """Compatibility ``x V sᶜ`` of each image with each class: ``(N, D) × (D, A) × (A, C)`` → ``(N, C)``."""
    return features.double() @ weights @ attributes.double().T


def attribute_regression_fit(features: torch.Tensor, labels: torch.Tensor, attributes: torch.Tensor,
                             alpha: float) -> torch.Tensor:
    """Ridge regression from features to the attribute row of each image's class.

    .. math:: W = (X^\\top X + \\alpha I)^{-1} X^\\top S_y

    Parameters
    ----------
    features : ``(N, D)``; labels : ``(N,)`` global ids; attributes : ``(C, A)``; alpha : > 0.

    Returns
    -------
    W : float64 ``(D, A)``.
    """
    x = features.double()
    return _solve_ridge(x.T @ x, x.T @ attributes.double()[labels.long()], alpha)


def attribute_regression_scores(features: torch.Tensor, weights: torch.Tensor,
                                attributes: torch.Tensor) -> torch.Tensor:
    """Cosine similarity between each predicted attribute vector ``x W`` and each class's row: ``(N, C)``."""
    predicted = torch.nn.functional.normalize(features.double() @ weights, dim=1)
    return predicted @ torch.nn.functional.normalize(attributes.double(), dim=1).T


def hyperparameter_grid(method: str, values: Sequence[float]) -> list[tuple[float, ...]]:
    """Regularisers tried for ``method``: every ``(γ, λ)`` pair of ``values`` for ESZSL, every ``(α,)`` for
    attribute regression."""
    if method == "ESZSL":
        return [(gamma, lam) for gamma in values for lam in values]
    if method == "attribute regression":
        return [(alpha,) for alpha in values]
    raise ValueError(f"unknown baseline {method!r}; expected one of {BASELINES}")


def baseline_scores(method: str, features: torch.Tensor, labels: torch.Tensor, attributes: torch.Tensor,
                    classes: torch.Tensor, hyperparameters: tuple[float, ...],
                    queries: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Fit ``method`` on ``features``/``labels`` (global ids of ``classes``) with ``hyperparameters`` (one entry
    of :func:`hyperparameter_grid`) and score each ``(N, D)`` of ``queries`` against every class: ``(N, C)``."""
    if method == "ESZSL":
        weights = eszsl_fit(features, labels, attributes, classes, *hyperparameters)
        return [eszsl_scores(x, weights, attributes) for x in queries]
    weights = attribute_regression_fit(features, labels, attributes, *hyperparameters)
    return [attribute_regression_scores(x, weights, attributes) for x in queries]


class SelectedBaseline(NamedTuple):
    """A baseline picked on validation data and refitted on ``trainval``.

    Attributes
    ----------
    hyperparameters : the grid entry with the best validation H (the first one on ties).
    validation : one row per grid entry: ``hyperparameters``, validation ``U``, ``S``, ``H``.
    test : test ``U``, ``S``, ``H`` of the refitted model.
    scores_seen, scores_unseen : its test scores ``(N, C)`` over all classes.
    """

    hyperparameters: tuple[float, ...]
    validation: pd.DataFrame
    test: dict[str, float]
    scores_seen: torch.Tensor
    scores_unseen: torch.Tensor


def select_baseline(data: ZSLData, method: str, values: Sequence[float], validation: torch.Tensor) -> SelectedBaseline:
    """Select ``method``'s regularisers from :func:`hyperparameter_grid` ``(method, values)`` and refit.

    Each grid entry is fitted on the ``train`` images outside ``validation`` (a bool mask over ``data.train``,
    :func:`protolab.zsl.fit.validation_split`) and scored in GZSL with the ``validation`` images as seen and
    the ``val`` classes as unseen; the entry with the best H is refitted on ``trainval`` and tested.
    """
    fit_x, fit_y = data.train.features[~validation], data.train.labels[~validation]
    seen_x, seen_y = data.train.features[validation], data.train.labels[validation]
    rows = []
    for hyperparameters in hyperparameter_grid(method, values):
        seen, unseen = baseline_scores(method, fit_x, fit_y, data.attributes, data.train_classes, hyperparameters,
                                       [seen_x, data.val.features])
        rows.append({"hyperparameters": hyperparameters,
                     **gzsl_scores(seen, seen_y, unseen, data.val.labels, data.train_classes, data.val_classes)})
    table = pd.DataFrame(rows)
    chosen = table.hyperparameters[int(table.H.to_numpy().argmax())]
    seen, unseen = baseline_scores(method, data.trainval.features, data.trainval.labels, data.attributes,
                                   data.seen_classes, chosen, [data.test_seen.features, data.test_unseen.features])
    test = gzsl_scores(seen, data.test_seen.labels, unseen, data.test_unseen.labels, data.seen_classes,
                       data.unseen_classes)
    return SelectedBaseline(chosen, table, test, seen, unseen)
