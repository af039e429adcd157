"""Isometric Propagation Network (ipn.py): graphs, attention, propagation, losses, ablations, training."""

from __future__ import annotations

import math

import pytest
import torch

from protolab.ipn import (IPN, IPNConfig, TrainConfig, attribute_centres, category_graph, consistency_loss,
                          search_space_means, space_alignment,
                          evaluate_test, fill_unseen_prototypes, fit_ipn, graph_attention, propagate)


def test_graph_threshold_and_self_loops():
    prototypes = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    similarity, edges = category_graph(prototypes, torch.eye(2), threshold=0.7)
    # cos 45° ≈ 0.707 ≥ 0.7: edges 0–1 and 1–2; 0–2 (cos 0) and anything with 3 are not
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1]], dtype=torch.bool)
    assert torch.equal(edges, expected)
    _, strict = category_graph(prototypes, torch.eye(2), threshold=1.5)  # no pair passes: self-loops stay
    assert torch.equal(strict, torch.eye(4, dtype=torch.bool))
    torch.testing.assert_close(similarity, similarity.T)


def test_attention_rows_sum_to_one_and_vanish_off_graph():
    prototypes = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    similarity, edges = category_graph(prototypes, torch.eye(5, dtype=torch.float64), threshold=0.2)
    attention = graph_attention(similarity, edges, temperature=10.0)
    torch.testing.assert_close(attention.sum(1), torch.ones(6, dtype=torch.float64))
    assert torch.all(attention[~edges] == 0) and torch.all(attention[edges] > 0)


def test_zero_steps_is_no_propagation_and_steps_recompute_the_graph():
    prototypes = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    same, attentions = propagate(prototypes, torch.eye(4), steps=0, threshold=0.0, temperature=10.0)
    assert torch.equal(same, prototypes) and attentions == []
    out, attentions = propagate(prototypes, torch.eye(4), steps=2, threshold=-1.0, temperature=1.0)
    assert len(attentions) == 2 and not torch.allclose(attentions[0], attentions[1])
    torch.testing.assert_close(out, attentions[1] @ attentions[0] @ prototypes)


def test_consistency_loss_zero_iff_same_structure():
    generator = torch.Generator().manual_seed(2)
    a = torch.softmax(torch.randn(4, 4, generator=generator), dim=1)
    b = torch.softmax(torch.randn(4, 4, generator=generator), dim=1)
    assert consistency_loss([a, a], [a, a]).item() == pytest.approx(0.0, abs=1e-6)
    assert consistency_loss([a], [b]).item() > 1e-3
    assert consistency_loss([], []).item() == 0.0


def _model(spaces="both", shared=False, steps=2, seed=0):
    torch.manual_seed(seed)
    attributes = torch.rand(6, 5, generator=torch.Generator().manual_seed(seed))
    config = IPNConfig(prototype_dim=8, graph_dim=4, hidden_dim=8, n_clusters=2, steps=steps, threshold=-1.0,
                       temperature=2.0, spaces=spaces, shared_attention=shared)
    model = IPN(7, attribute_centres(attributes, 2), config)
    means = torch.randn(6, 7, generator=torch.Generator().manual_seed(seed + 1))
    return model, means, attributes


def test_visual_only_ignores_attributes_and_semantic_only_ignores_images():
    features = torch.randn(3, 7)
    model, means, attributes = _model("visual")
    torch.testing.assert_close(model(features, means, attributes)[0], model(features, means, attributes + 1)[0])
    model, means, attributes = _model("semantic")
    logits, kl = model(features, means, attributes)
    torch.testing.assert_close(logits, model(features, means + 1, attributes)[0])
    assert kl.item() == 0.0
    model, means, attributes = _model("both")
    logits, kl = model(features, means, attributes)
    assert not torch.allclose(logits, model(features, means + 1, attributes)[0])
    assert not torch.allclose(logits, model(features, means, attributes + 1)[0])
    assert kl.item() > 0


def test_shared_attention_uses_the_semantic_matrix_for_both_spaces():
    model, means, attributes = _model("both", shared=True)
    _, attentions = model.prototypes(means, attributes)
    assert all(v is s for v, s in zip(attentions["visual"], attentions["semantic"], strict=True))
    assert model(torch.randn(2, 7), means, attributes)[1].item() == pytest.approx(0.0, abs=1e-6)


def test_unseen_visual_prototype_is_a_copy_of_the_most_similar_seen_class():
    model, means, attributes = _model("both")
    known = torch.tensor([True, True, True, False, True, False])
    filled = fill_unseen_prototypes(model, means, attributes, known)
    similarity = model.semantic_similarity(attributes)
    seen = known.nonzero().flatten()
    for c in (3, 5):
        assert torch.equal(filled[c], means[seen[similarity[c, seen].argmax()]])
    assert torch.equal(filled[known], means[known])


@pytest.fixture(scope="module")
def glyph_zsl():
    from protolab.data import load_zsl

    return load_zsl("glyph-zsl")


def test_short_training_beats_chance_on_test_unseen(glyph_zsl):
    config = TrainConfig(epochs=3, lr=1e-3, n_way=20, n_shot=2, n_query=2, episode_unseen=4,
                         episodes_per_epoch=40, seed=0)
    model_config = IPNConfig(prototype_dim=64, graph_dim=32, hidden_dim=64)
    model, history = fit_ipn(glyph_zsl, model_config, config, progress=False)
    assert {"epoch", "loss", "kl", "val_H", "phase"} <= set(history.columns)
    assert (history["phase"] == "select").sum() == 3
    scores = evaluate_test(model, glyph_zsl)
    assert scores["U"] > 2.0 / glyph_zsl.n_classes


@pytest.mark.parametrize("episodic, weight", [(False, 1.0), (True, 0.0)])
def test_non_episodic_training_and_switched_off_consistency_run_and_record_kl(glyph_zsl, episodic, weight):
    config = TrainConfig(epochs=2, lr=1e-3, n_way=20, n_shot=2, n_query=2, episode_unseen=4, episodes_per_epoch=10,
                         batch_size=64, consistency_weight=weight, episodic=episodic, seed=0)
    model, history = fit_ipn(glyph_zsl, IPNConfig(prototype_dim=32, graph_dim=16, hidden_dim=32), config,
                             progress=False)
    assert history["loss"].notna().all() and history["kl"].notna().all() and (history["kl"] >= 0).all()
    scores = evaluate_test(model, glyph_zsl)
    assert all(0.0 <= scores[key] <= 1.0 for key in ("U", "S", "H")) and scores["S"] > 0.0


def test_space_alignment_measures_what_it_names():
    model, means, attributes = _model("both", steps=2)
    spaces, attentions = model.propagated(means, attributes)
    alignment = space_alignment(model, means, attributes)
    assert alignment["attention_kl"] == pytest.approx(consistency_loss(attentions["visual"], attentions["semantic"]).item())
    assert alignment["similarity_kl"] > 0 and 0 < alignment["feature_cka"] <= 1
    assert alignment["neighbours_semantic"] == pytest.approx(5.0)  # threshold -1: every other class
    shared = space_alignment(_model("both", shared=True)[0], means, attributes)
    assert shared["attention_kl"] == pytest.approx(0.0, abs=1e-6)
    unpropagated = space_alignment(_model("both", steps=0)[0], means, attributes)
    assert math.isnan(unpropagated["attention_kl"]) and math.isnan(unpropagated["neighbours_visual"])
    with pytest.raises(ValueError, match="two spaces"):
        space_alignment(_model("visual")[0], means, attributes)


def test_monitor_adds_columns_in_both_phases_and_search_space_means_copy_unseen(glyph_zsl):
    config = TrainConfig(epochs=2, lr=1e-3, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=5,
                         seed=0)
    calls = []

    def monitor(model):
        calls.append(model.training)
        return {"probe": float(len(calls))}

    model, history = fit_ipn(glyph_zsl, IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), config,
                             progress=False, monitor=monitor)
    assert history["probe"].tolist() == [float(i) for i in range(1, len(history) + 1)]
    assert set(history["phase"]) == {"select", "refit"}
    means = search_space_means(model, glyph_zsl)
    assert means.shape == (glyph_zsl.n_classes, glyph_zsl.feature_dim)
    copied = means[glyph_zsl.unseen_classes]
    seen_rows = means[glyph_zsl.seen_classes]
    assert all((seen_rows == row).all(dim=1).any() for row in copied), "unseen rows are copies of seen rows"
