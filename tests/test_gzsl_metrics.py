"""GZSL metrics (metrics.py): per-class accuracy, U/S/H, calibrated stacking, AUSUC, by hand."""

from __future__ import annotations

import math

import pytest
import torch

from protolab.metrics import gzsl_scores, harmonic_mean, per_class_accuracy, seen_unseen_curve


def test_per_class_accuracy_weights_classes_not_images():
    # class 0: 9 images, 9 right; class 1: 1 image, wrong → per-class mean 0.5 (per-image would be 0.9)
    labels = torch.tensor([0] * 9 + [1])
    predictions = torch.tensor([0] * 9 + [0])
    assert per_class_accuracy(predictions, labels, torch.tensor([0, 1])) == pytest.approx(0.5)


def test_class_without_samples_is_excluded():
    labels, predictions = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1])
    # class 2 has no sample: mean over classes 0 (1/2) and 1 (1/1) only
    assert per_class_accuracy(predictions, labels, torch.tensor([0, 1, 2])) == pytest.approx(0.75)
    assert math.isnan(per_class_accuracy(predictions, labels, torch.tensor([5])))


def _toy():
    # classes 0, 1 seen; 2 unseen. Scores over all three classes.
    scores_seen = torch.tensor([[3.0, 1.0, 2.5], [0.0, 2.0, 2.2], [1.0, 3.0, 0.0]])
    labels_seen = torch.tensor([0, 1, 1])
    scores_unseen = torch.tensor([[2.0, 0.0, 1.5], [0.0, 0.0, 1.0]])
    labels_unseen = torch.tensor([2, 2])
    return scores_seen, labels_seen, scores_unseen, labels_unseen, torch.tensor([0, 1]), torch.tensor([2])


def test_gzsl_scores_hand_computed():
    result = gzsl_scores(*_toy())
    # seen: class 0 → 1/1; class 1 → image 2 predicted 2 (wrong), image 3 right → 1/2; S = 0.75
    # unseen: image 1 predicted 0 (wrong), image 2 right → U = 0.5; H = 2·0.5·0.75/1.25 = 0.6
    assert result == pytest.approx({"U": 0.5, "S": 0.75, "H": 0.6})


def test_calibrated_stacking_moves_predictions_to_unseen():
    result = gzsl_scores(*_toy(), calibration=0.6)
    # seen scores −0.6: unseen image 1 → [1.4, −0.6, 1.5] → 2 right (U = 1);
    # seen image 1 → [2.4, 0.4, 2.5] → wrong; seen class 1: [−.6, 1.4, 2.2] wrong, [.4, 2.4, 0] right
    assert result == pytest.approx({"U": 1.0, "S": 0.25, "H": 0.4})
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_seen_unseen_curve_endpoints_and_area():
    curve, ausuc = seen_unseen_curve(*_toy())
    assert curve["calibration"].is_monotonic_increasing
    first, last = curve.iloc[0], curve.iloc[-1]
    # γ very low: only seen classes predicted (seen image 2 then goes to class 1: S = 1); very high: only unseen
    assert (first["U"], first["S"]) == (0.0, 1.0)
    assert (last["U"], last["S"]) == (1.0, 0.0)
    # gaps max_seen − max_unseen: seen images 0.5, −0.2, 3.0; unseen images 0.5, −1.0, so (U, S) is
    # (0, 1) for γ < −1, (.5, 1) up to −.2, (.5, .75) up to .5, (1, .25) up to 3, then (1, 0)
    assert curve[["U", "S"]].values.tolist() == [[0, 1], [.5, 1], [.5, .75], [1, .25], [1, 0]]
    assert ausuc == pytest.approx(0.5 * 1.0 + 0.5 * (0.75 + 0.25) / 2)
    assert len(curve) == 5
