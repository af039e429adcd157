"""ESZSL and attribute regression (zsl_baselines.py): normal equations, planted maps, selection on validation."""

from __future__ import annotations

import pytest
import torch

from protolab.zsl.fit import validation_split
from protolab.metrics import gzsl_scores
from protolab.zsl.baselines import (BASELINES, attribute_regression_fit, attribute_regression_scores,
                                    baseline_scores, eszsl_fit, eszsl_scores, hyperparameter_grid, select_baseline)


def _synthetic(seed: int, n_classes: int = 12, dim: int = 20, n_att: int = 8, per_class: int = 30):
    generator = torch.Generator().manual_seed(seed)
    attributes = torch.randn(n_classes, n_att, generator=generator, dtype=torch.float64)
    planted = torch.randn(n_att, dim, generator=generator, dtype=torch.float64)
    labels = torch.arange(n_classes).repeat_interleave(per_class)
    features = attributes[labels] @ planted + 0.05 * torch.randn(len(labels), dim, generator=generator,
                                                                 dtype=torch.float64)
    return features, labels, attributes


@pytest.mark.parametrize("seed", [0, 1])
def test_eszsl_satisfies_its_normal_equations(seed):
    features, labels, attributes = _synthetic(seed)
    classes = torch.arange(8)
    keep = labels < 8
    gamma, lam = 0.3, 2.0
    v = eszsl_fit(features[keep], labels[keep], attributes, classes, gamma, lam)
    x, s = features[keep], attributes[classes]
    y = -torch.ones(len(x), len(classes), dtype=torch.float64)
    y[torch.arange(len(x)), labels[keep]] = 1
    left = (x.T @ x + gamma * torch.eye(x.shape[1], dtype=torch.float64)) @ v @ (
        s.T @ s + lam * torch.eye(s.shape[1], dtype=torch.float64))
    torch.testing.assert_close(left, x.T @ y @ s)


def test_eszsl_classifies_unseen_classes_of_a_planted_map():
    # features = attributes · M + noise; 40 seen classes (more than the 8 attributes), 5 unseen
    generator = torch.Generator().manual_seed(0)
    attributes = torch.nn.functional.normalize(torch.rand(45, 8, generator=generator, dtype=torch.float64), dim=1)
    planted = torch.randn(8, 20, generator=generator, dtype=torch.float64)
    labels = torch.arange(45).repeat_interleave(20)
    features = attributes[labels] @ planted + 0.05 * torch.randn(len(labels), 20, generator=generator,
                                                                 dtype=torch.float64)
    keep = labels < 40
    v = eszsl_fit(features[keep], labels[keep], attributes, torch.arange(40), gamma=1e-2, lam=1e-2)
    scores = eszsl_scores(features[~keep], v, attributes[40:])
    assert (40 + scores.argmax(1) == labels[~keep]).double().mean() > 0.9


@pytest.mark.parametrize("seed", [0, 1])
def test_attribute_regression_recovers_planted_linear_map(seed):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(400, 10, generator=generator, dtype=torch.float64)
    planted = torch.randn(10, 6, generator=generator, dtype=torch.float64)
    # one class per image whose attribute row is exactly the image's features through the planted map
    attributes = features @ planted
    w = attribute_regression_fit(features, torch.arange(400), attributes, alpha=1e-8)
    torch.testing.assert_close(w, planted, atol=1e-6, rtol=1e-6)
    scores = attribute_regression_scores(features, w, attributes)
    assert scores.shape == (400, 400)
    assert torch.equal(scores.argmax(1), torch.arange(400))


def test_ridge_refuses_non_positive_regulariser():
    features, labels, attributes = _synthetic(0)
    with pytest.raises(ValueError, match="positive"):
        attribute_regression_fit(features, labels, attributes, alpha=0.0)


def test_hyperparameter_grids():
    assert hyperparameter_grid("ESZSL", [0.1, 10.0]) == [(0.1, 0.1), (0.1, 10.0), (10.0, 0.1), (10.0, 10.0)]
    assert hyperparameter_grid("attribute regression", [0.1, 10.0]) == [(0.1,), (10.0,)]
    with pytest.raises(ValueError, match="unknown baseline"):
        hyperparameter_grid("SAE", [1.0])


@pytest.mark.parametrize("method", BASELINES)
def test_selection_picks_the_best_validation_h_and_refits_on_trainval(method):
    from protolab.data import load_zsl

    data = load_zsl("glyph-zsl")
    mask = validation_split(data.train.labels, 0.2, seed=1)
    chosen = select_baseline(data, method, [1e-3, 1.0, 1e3], mask)
    assert len(chosen.validation) == len(hyperparameter_grid(method, [1e-3, 1.0, 1e3]))
    assert chosen.hyperparameters == chosen.validation.hyperparameters[chosen.validation.H.idxmax()]
    # one entry by hand: fitted on the train images outside the mask, validated on those inside and on val
    entry = chosen.validation.iloc[-1]
    seen, unseen = baseline_scores(method, data.train.features[~mask], data.train.labels[~mask], data.attributes,
                                   data.train_classes, entry.hyperparameters, [data.train.features[mask],
                                                                               data.val.features])
    assert gzsl_scores(seen, data.train.labels[mask], unseen, data.val.labels, data.train_classes,
                       data.val_classes)["H"] == pytest.approx(entry.H)
    seen, unseen = baseline_scores(method, data.trainval.features, data.trainval.labels, data.attributes,
                                   data.seen_classes, chosen.hyperparameters,
                                   [data.test_seen.features, data.test_unseen.features])
    torch.testing.assert_close((chosen.scores_seen, chosen.scores_unseen), (seen, unseen))
    assert chosen.test == gzsl_scores(seen, data.test_seen.labels, unseen, data.test_unseen.labels,
                                      data.seen_classes, data.unseen_classes)
