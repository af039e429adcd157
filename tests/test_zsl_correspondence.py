"""The seen-class correspondence diagnostics of protolab.zsl.correspondence."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from protolab.data.xlsa17 import load_xlsa17
from protolab.zsl.correspondence import (cosine_neighbours, describe_correspondence, nearest_among_ties,
                                         neighbour_agreement, seen_class_correspondence)
from tests.layouts import write_awa2_like


def test_neighbours_by_cosine_exclude_the_item_itself():
    points = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert cosine_neighbours(points, 1).flatten().tolist() == [1, 0, 3, 2]
    assert cosine_neighbours(points, 2)[0].tolist() == [1, 3]
    with pytest.raises(ValueError, match="k must be between 1 and 3"):
        cosine_neighbours(points, 4)


def test_agreement_is_one_for_a_rotated_and_scaled_copy_and_near_chance_for_unrelated_spaces():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(200, 12, generator=generator)
    rotation, _ = torch.linalg.qr(torch.randn(12, 12, generator=generator))
    assert neighbour_agreement(a, 3 * a @ rotation, 5) == 1.0
    unrelated = neighbour_agreement(a, torch.randn(200, 30, generator=generator), 5)
    assert unrelated < 4 * 5 / 199  # chance: k / (N - 1) = 0.025
    two_swapped = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    assert neighbour_agreement(two_swapped, two_swapped[[0, 2, 1, 3]], 1) == 0.0


def test_nearest_among_ties_counts_any_of_the_tied_nearest_and_its_chance():
    # binary attributes: e (letter e), é and è (e + a mark above) — é's nearest by attributes are e and è, tied
    attributes = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 1.0],
                               [0.0, 0.0, 0.0, 1.0]])
    visual = torch.tensor([[1.0, 0.0], [1.0, 0.05], [0.8, 0.6], [0.0, 1.0]])  # é looks nearest to e, not è
    hit, chance = nearest_among_ties(attributes, visual)
    assert hit == 0.75  # e -> é, è -> é, fourth -> è are among their tied nearest; é -> e is not (é's is è alone)
    assert chance == pytest.approx((2 + 1 + 1 + 2) / 4 / 3)
    assert nearest_among_ties(visual, visual)[0] == 1.0


def test_correspondence_uses_the_seen_classes_training_features_only(tmp_path):
    data = load_xlsa17(write_awa2_like(tmp_path), "AWA2")
    measured = seen_class_correspondence(data)
    seen = data.seen_classes
    means = torch.stack([data.trainval.features[data.trainval.labels == c].mean(dim=0) for c in seen.tolist()])
    assert measured["classes"] == 6 and measured["chance@1"] == 1 / 5 and measured["chance@5"] == 1.0
    assert measured["agreement@1"] == neighbour_agreement(data.attributes[seen], means, 1)
    assert measured["agreement@5"] == 1.0  # every other seen class is among the 5 nearest of 6
    assert (measured["nearest_tied"], measured["chance_tied"]) == nearest_among_ties(data.attributes[seen], means)
    noisy = replace(data, test_unseen=replace(data.test_unseen, features=torch.randn_like(data.test_unseen.features)),
                    test_seen=replace(data.test_seen, features=torch.randn_like(data.test_seen.features)))
    assert seen_class_correspondence(noisy) == measured
    unrelated = replace(data, trainval=replace(data.trainval, features=torch.randn_like(data.trainval.features)))
    assert seen_class_correspondence(unrelated)["cka"] < measured["cka"]


def test_the_report_sentence_gives_each_measure_beside_its_chance_level():
    measured = {"classes": 6.0, "nearest_tied": 0.667, "chance_tied": 0.25, "agreement@1": 0.5, "chance@1": 0.2, "agreement@5": 1.0, "chance@5": 1.0,
                "cka": 0.734, "visual_nearest_cosine": 0.95}
    sentence = describe_correspondence(measured)
    assert "6 seen classes" in sentence and "66.7% of classes (chance 25.0%)" in sentence
    assert "50.0% (chance 20.0%)" in sentence
    assert "100.0% of the 5 nearest are shared (chance 100.0%)" in sentence and "CKA 0.73" in sentence
    assert "nearly all alike" in sentence
    assert "spread apart" in describe_correspondence({**measured, "visual_nearest_cosine": 0.5})
