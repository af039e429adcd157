"""Evaluation measures (metrics.py) against hand-computed cases."""

from __future__ import annotations

import pytest
import torch

from protolab.metrics import auroc, ks_statistic, mean_ci95


def test_auroc_hand_computed_cases():
    assert auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    # pairs (p, n): (2,1) win, (2,3) loss, (4,1) win, (4,3) win → 3/4
    assert auroc(torch.tensor([2.0, 4.0]), torch.tensor([1.0, 3.0])) == pytest.approx(0.75)
    # one tie counts one half: (1,1) tie, (1,0) win → 1.5/2
    assert auroc(torch.tensor([1.0]), torch.tensor([1.0, 0.0])) == pytest.approx(0.75)


def test_auroc_agrees_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    generator = torch.Generator().manual_seed(0)
    positive, negative = torch.randn(50, generator=generator) + 0.5, torch.randn(70, generator=generator)
    labels = [1] * 50 + [0] * 70
    expected = roc_auc_score(labels, torch.cat([positive, negative]).numpy())
    assert auroc(positive, negative) == pytest.approx(expected)


def test_auroc_refuses_empty_sets():
    with pytest.raises(ValueError):
        auroc(torch.tensor([]), torch.tensor([1.0]))


def test_ks_statistic_hand_computed():
    assert ks_statistic(torch.tensor([0.0, 1.0]), torch.tensor([2.0, 3.0])) == 1.0
    assert ks_statistic(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0])) == 0.0
    assert ks_statistic(torch.tensor([0.0, 2.0]), torch.tensor([1.0, 3.0])) == pytest.approx(0.5)


def test_mean_ci95_uses_population_std():
    mean, half_width = mean_ci95(torch.tensor([1.0, 3.0]))
    assert mean == 2.0 and half_width == pytest.approx(1.96 * 1.0 / 2 ** 0.5)
