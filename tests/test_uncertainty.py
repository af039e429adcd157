"""Confidence scores of the uncertainty experiment (uncertainty.py) against known values."""

from __future__ import annotations

import math

import pytest
import torch

from protolab.data import LabeledImages
from protolab.uncertainty import boundary_distance, build_classifier, confidence, separation


def _images(n: int = 12) -> LabeledImages:
    generator = torch.Generator().manual_seed(0)
    return LabeledImages(images=torch.rand(n, 1, 16, 16, generator=generator), labels=torch.arange(n) % 3,
                         class_names=["a", "b", "c"], description="random test images")


def test_boundary_distance_is_the_float32_edge_of_the_ball_and_scales_with_the_radius():
    edge = 2 * math.atanh(1 - 4e-3)  # geoopt projects float32 points to norm (1 − 4e-3)/√c
    assert boundary_distance(2, c=1.0) == pytest.approx(edge, rel=1e-4)
    assert boundary_distance(16, c=0.25) == pytest.approx(2 * edge, rel=1e-4)


def test_hyperbolic_confidence_is_the_distance_of_the_embedding_to_the_origin():
    torch.manual_seed(0)
    model = build_classifier("hyperbolic", in_channels=1, dim=3, n_classes=3, c=0.5)
    data = _images()
    embedding = model[:2].eval()(data.images).detach()
    assert (embedding.norm(dim=1) < 1 / math.sqrt(0.5)).all()
    expected = 2 / math.sqrt(0.5) * torch.atanh(math.sqrt(0.5) * embedding.double().norm(dim=1))
    assert torch.allclose(confidence(model, "hyperbolic", data, c=0.5, device=torch.device("cpu")).double(),
                          expected, atol=1e-4)


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_p_max_is_the_maximum_softmax_probability_of_either_head(geometry):
    torch.manual_seed(0)
    model = build_classifier(geometry, in_channels=1, dim=4, n_classes=3, c=1.0)
    data = _images()
    expected = model.eval()(data.images).softmax(-1).max(-1).values.detach()
    assert torch.allclose(confidence(model, geometry, data, c=1.0, device=torch.device("cpu"), score="p_max"),
                          expected, atol=1e-6)


def test_euclidean_radius_is_the_norm_of_the_embedding_before_the_head():
    torch.manual_seed(0)
    model = build_classifier("euclidean", in_channels=1, dim=4, n_classes=3, c=1.0)
    data = _images()
    expected = model[0].eval()(data.images).norm(dim=1).detach()
    assert torch.allclose(confidence(model, "euclidean", data, c=1.0, device=torch.device("cpu")), expected,
                          atol=1e-6)
    with pytest.raises(ValueError, match="score"):
        confidence(model, "euclidean", data, c=1.0, device=torch.device("cpu"), score="entropy")


def test_unknown_geometry_is_refused():
    with pytest.raises(ValueError, match="geometry"):
        build_classifier("spherical", in_channels=1, dim=2, n_classes=3, c=1.0)


def test_separation_of_known_scores():
    result = separation(torch.tensor([3.0, 4.0, 5.0]), torch.tensor([1.0, 2.0, 3.0]))
    assert result["auroc"] == pytest.approx((8 + 0.5) / 9)  # 8 pairs higher, one tie (3 vs 3)
    assert result["ks"] == pytest.approx(2 / 3)
    assert (result["mean_in"], result["mean_ood"], result["nan_scores"]) == (4.0, 2.0, 0)
    assert separation(torch.tensor([1.0, float("nan")]), torch.tensor([0.0]))["nan_scores"] == 1


def test_image_sets_of_another_shape_than_the_training_images_are_refused_before_any_training():
    from dataclasses import replace

    from protolab.uncertainty import UncertaintyData

    grey = _images()
    colour = replace(grey, images=grey.images.expand(-1, 3, -1, -1).clone())
    UncertaintyData(colour, colour, colour, {"mine": colour})  # one shape throughout: accepted
    with pytest.raises(ValueError, match=r"\(3, 16, 16\); got OOD set 'glyphs' \(1, 16, 16\)"):
        UncertaintyData(colour, colour, colour, {"mine": colour, "glyphs": grey})
    with pytest.raises(ValueError, match=r"got test \(1, 16, 16\)"):
        UncertaintyData(colour, colour, grey, {})
