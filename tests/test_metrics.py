"""Evaluation measures (metrics.py) against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from protolab.metrics import auroc, ks_statistic, linear_cka, mean_ci95, similarity_kl, spearman_ci95


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


def test_similarity_kl_is_zero_for_the_same_cosine_structure_in_any_dimension():
    a = torch.randn(7, 4, generator=torch.Generator().manual_seed(0))
    rotation = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1)))[0]
    embedded = torch.cat([3.0 * a @ rotation, torch.zeros(7, 2)], dim=1)  # rotated, scaled, padded to 6-d
    assert similarity_kl(a, embedded, temperature=5.0) == pytest.approx(0.0, abs=1e-10)
    assert similarity_kl(a, torch.randn(7, 6, generator=torch.Generator().manual_seed(2)), 5.0) > 0.01


def test_similarity_kl_hand_computed_for_two_items():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])  # cos = 1: uniform rows
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # cos = 0 off the diagonal
    q = torch.softmax(torch.tensor([1.0, 0.0], dtype=torch.float64), 0)  # temperature 1, row of item 0
    expected = float((0.5 * (torch.tensor(0.5, dtype=torch.float64).log() - q.log())).sum())  # item 1 alike
    assert similarity_kl(a, b, temperature=1.0) == pytest.approx(expected, rel=1e-9)


def test_linear_cka_is_one_up_to_rotation_and_scale_and_small_for_unrelated_features():
    a = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    rotation = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))[0]
    assert linear_cka(a, 0.1 * a @ rotation + 4.0) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(a, torch.randn(50, 8, generator=torch.Generator().manual_seed(2))) < 0.4
    assert linear_cka(a, a[:, :4]) == pytest.approx(linear_cka(a[:, :4], a), abs=1e-12)


def test_linear_cka_agrees_with_its_kernel_form():
    a = torch.randn(20, 5, generator=torch.Generator().manual_seed(3)).double()
    b = torch.randn(20, 3, generator=torch.Generator().manual_seed(4)).double()
    centring = torch.eye(20, dtype=torch.float64) - 1.0 / 20
    k, l = centring @ a @ a.T @ centring, centring @ b @ b.T @ centring
    hsic = lambda x, y: (x * y).sum()  # noqa: E731
    assert linear_cka(a, b) == pytest.approx(float(hsic(k, l) / (hsic(k, k) * hsic(l, l)).sqrt()), rel=1e-9)


def test_mean_ci95_uses_the_t_quantile_and_sample_std_and_is_nan_for_one_value():
    mean, half_width = mean_ci95(torch.tensor([0.25]))
    assert mean == 0.25 and half_width != half_width
    mean, half_width = mean_ci95(torch.tensor([1.0, 3.0]))  # s = √2, t(0.975, 1) = 12.706
    assert mean == 2.0 and half_width == pytest.approx(12.706204736174707 * 2 ** 0.5 / 2 ** 0.5, rel=1e-9)
    mean, half_width = mean_ci95(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))  # s = √2.5, t(0.975, 4) = 2.776
    assert mean == pytest.approx(3.0)
    assert half_width == pytest.approx(2.7764451051977987 * 2.5 ** 0.5 / 5 ** 0.5, rel=1e-9)
    many = torch.randn(2000, generator=torch.Generator().manual_seed(0))  # test episodes: ≈ 1.96·σ/√n
    assert mean_ci95(many)[1] == pytest.approx(1.96 * float(many.std(unbiased=False)) / 2000 ** 0.5, rel=2e-3)


def test_spearman_ci95_is_fishers_z_interval_around_the_rank_correlation():
    rho, low, high = spearman_ci95([1, 2, 3, 4, 5, 6, 7], [2, 1, 4, 3, 6, 5, 8])
    assert rho == pytest.approx(1 - 6 * 6 / (7 * 48))  # three swapped neighbours: Σd² = 6
    z, spread = math.atanh(rho), 1.96 * math.sqrt(1.06 / 4)
    assert (low, high) == (pytest.approx(math.tanh(z - spread)), pytest.approx(math.tanh(z + spread)))
    assert math.isnan(spearman_ci95([1, 2, 3], [3, 2, 1])[1]) and spearman_ci95([1, 2, 3], [3, 2, 1])[0] == -1
    assert math.isnan(spearman_ci95([1, 1, 1, 1], [1, 2, 3, 4])[0])
