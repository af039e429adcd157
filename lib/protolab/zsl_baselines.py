"""Two closed-form zero-shot baselines on fixed features: ESZSL and ridge attribute regression.

Both are computed in float64 and return float64 tensors; scores are ``(N, C)`` over the classes whose
attribute rows are passed, so a GZSL evaluation passes all ``C`` classes (see ``metrics.gzsl_scores``).
"""

from __future__ import annotations

import torch


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
