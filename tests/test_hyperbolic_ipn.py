"""The hyperbolic IPN (protolab.zsl.hyperbolic_ipn): propagation stays in the ball, tends to IPN's Euclidean
propagation and distances as c → 0, its midpoint is geoopt's, gradients stay finite near the boundary, a graph
of self-loops propagates nothing, and it trains and is evaluated through IPN's fitting code."""

from __future__ import annotations

import math

import geoopt
import pytest
import torch

from protolab.hyperbolic import attention_midpoint, expmap0, poincare_mean
from protolab.zsl.fit import TrainConfig, evaluate_test, fit_ipn
from protolab.zsl.hyperbolic_ipn import HyperbolicIPN, hyperbolic_attention, hyperbolic_propagate, into_ball
from protolab.zsl.ipn import IPN, IPNConfig, fill_unseen_prototypes, ipn_model

HYPERBOLIC = IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16, geometry="hyperbolic")


def _model(config: IPNConfig = HYPERBOLIC, feature_dim: int = 12, attribute_dim: int = 5) -> HyperbolicIPN:
    torch.manual_seed(0)
    return ipn_model(feature_dim, torch.randn(3, attribute_dim), config)


def test_ipn_model_builds_the_geometry_its_config_names_and_each_model_refuses_the_other():
    assert type(_model()) is HyperbolicIPN
    assert type(_model(IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16))) is IPN
    with pytest.raises(ValueError, match="IPN is Euclidean"):
        IPN(12, torch.randn(3, 5), HYPERBOLIC)
    for wrong in (dict(spaces="semantic"), dict(shared_attention=True), dict(curvature=0.0), dict(clip_r=-1.0)):
        with pytest.raises(ValueError):
            _model(IPNConfig(**{**HYPERBOLIC.__dict__, **wrong}))
    with pytest.raises(ValueError, match="geometry"):
        _model(IPNConfig(**{**HYPERBOLIC.__dict__, "geometry": "spherical"}))


@pytest.mark.parametrize("c", [0.1, 1.0, 50.0])
def test_propagated_prototypes_stay_inside_the_ball_for_extreme_inputs(c):
    config = IPNConfig(**{**HYPERBOLIC.__dict__, "curvature": c, "clip_r": 30.0, "distance_threshold": 1e3})
    model = _model(config)
    means, attributes = 1e6 * torch.randn(7, 12), 1e4 * torch.randn(7, 5)
    spaces, attentions = model.propagated(means, attributes)
    for points in spaces.values():
        assert torch.isfinite(points).all()
        assert (points.norm(dim=1) < 1 / math.sqrt(c)).all()
    assert all(torch.allclose(a.sum(1), torch.ones(7)) for space in attentions.values() for a in space)


def test_the_attention_midpoint_is_geoopts_weighted_gyromidpoint_and_poincare_mean_row_by_row():
    torch.manual_seed(1)
    c = 0.7
    points = expmap0(0.6 * torch.randn(6, 4, dtype=torch.float64), c=c)
    attention = torch.softmax(torch.randn(5, 6, dtype=torch.float64), dim=1)
    midpoints = attention_midpoint(points, attention, c=c)
    ball = geoopt.PoincareBall(c=c)
    for row, weights in enumerate(attention):
        expected = ball.weighted_midpoint(points, weights, reducedim=[0])  # its tan/artan path: ~1e-8 in float64
        torch.testing.assert_close(midpoints[row], expected, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(midpoints[row], poincare_mean(points, weights, c=c, dim=0), rtol=1e-12, atol=1e-12)


def test_as_c_goes_to_zero_propagation_is_the_euclidean_weighted_mean_and_scores_doubled_distances():
    """At c = 1e-6 the ball is Euclidean to float64 precision (tolerance 1e-5): propagation is IPN's A P with the
    same attention, and the logits are −s (2‖e_sem − p_sem‖ + 2‖e_vis − p_vis‖)."""
    config = IPNConfig(**{**HYPERBOLIC.__dict__, "curvature": 1e-6})
    model = _model(config).double()
    points = 0.3 * torch.randn(6, 16, dtype=torch.float64)
    propagated, attentions = hyperbolic_propagate(points, model.graph_semantic, 1, c=1e-6, clip_r=1.0,
                                                  threshold=3.0, temperature=1.0)
    assert (attentions[0] > 0).sum() > 6  # the graph has edges besides the self-loops
    torch.testing.assert_close(propagated, attentions[0] @ points, rtol=1e-5, atol=1e-5)
    features, means = torch.randn(4, 12, dtype=torch.float64), torch.randn(6, 12, dtype=torch.float64)
    prototypes, _ = model.prototypes(means, torch.randn(6, 5, dtype=torch.float64))
    euclidean = lambda x, p: torch.cdist(torch.nn.functional.normalize(x, dim=1) * x.norm(dim=1, keepdim=True).clamp_max(1), p)
    expected = -(2 * euclidean(model.image_semantic(features), prototypes[:, :16])
                 + 2 * euclidean(model.visual(features), prototypes[:, 16:]))
    torch.testing.assert_close(model.score(features, prototypes), expected, rtol=1e-5, atol=1e-5)


def test_gradients_stay_finite_with_every_point_near_the_boundary():
    config = IPNConfig(**{**HYPERBOLIC.__dict__, "clip_r": 8.0, "distance_threshold": 40.0})  # tanh(8): 1 − 2e-7
    model = _model(config)
    means, features = 50 * torch.randn(6, 12), 50 * torch.randn(10, 12)
    assert (model._ball(model.visual(means)).norm(dim=1) > 0.999).all()
    logits, consistency = model(features, means, torch.randn(6, 5))
    (torch.nn.functional.cross_entropy(logits, torch.arange(10) % 6) + consistency).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_with_one_neighbour_per_class_propagation_is_the_identity():
    points = into_ball(torch.randn(5, 16), c=1.0, clip_r=1.0)
    projection = torch.randn(16, 8)
    distances, attention = hyperbolic_attention(points, projection, c=1.0, clip_r=1.0, threshold=1e-9,
                                                temperature=10.0)
    assert (distances.fill_diagonal_(1.0) > 1e-9).all()
    torch.testing.assert_close(attention, torch.eye(5))
    propagated, _ = hyperbolic_propagate(points, projection, 2, c=1.0, clip_r=1.0, threshold=1e-9, temperature=10.0)
    torch.testing.assert_close(propagated, points, rtol=1e-6, atol=1e-6)


def test_unseen_visual_prototypes_are_copied_from_the_nearest_class_in_the_semantic_ball():
    model = _model()
    attributes = torch.randn(6, 5)
    means, known = torch.randn(6, 12), torch.tensor([True, True, True, False, False, False])
    filled = fill_unseen_prototypes(model, means, attributes, known)
    nearest = model.semantic_similarity(attributes)[:, known].argmax(dim=1)
    torch.testing.assert_close(filled[~known], means[known][nearest[~known]])
    torch.testing.assert_close(filled[known], means[known])


def test_the_hyperbolic_ipn_trains_with_selection_and_refit_and_beats_chance_on_test_unseen():
    from protolab.data import load_zsl

    data = load_zsl("glyph-zsl")
    config = TrainConfig(epochs=3, lr=2e-3, n_way=20, n_shot=2, n_query=2, episode_unseen=4, episodes_per_epoch=40,
                         seed=0, consistency_weight=0.1)
    model, history = fit_ipn(data, IPNConfig(prototype_dim=64, graph_dim=32, hidden_dim=64, geometry="hyperbolic",
                                             curvature=0.5), config, progress=False)
    assert type(model) is HyperbolicIPN and list(history.phase.unique()) == ["select", "refit"]
    assert history[["loss", "kl"]].notna().all().all() and (history.kl > 0).all()
    scores = evaluate_test(model, data)
    assert scores["U"] > 2.0 / data.n_classes
