"""Isometric Propagation Network: the model (ipn.py), its fitting and evaluation (ipn_fit.py), the study grid
(ipn_grid.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from protolab.zsl import baselines as zsl_baselines, fit as ipn_fit
from protolab.zsl.ipn import (IPN, IPNConfig, attribute_centres, category_graph, consistency_loss,
                          fill_unseen_prototypes, graph_attention, propagate, space_alignment)
from protolab.zsl.fit import (TrainConfig, evaluate_test, fit_ipn, score_test_sets, search_space_means,
                              validation_split)
from protolab.zsl.grid import base_configs, grid_cells, seed_table
from protolab.metrics import gzsl_scores, linear_cka, similarity_kl


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


def _state(data, **switches):
    config = TrainConfig(epochs=2, lr=1e-3, n_way=20, n_shot=2, n_query=2, episode_unseen=4, episodes_per_epoch=10,
                         batch_size=64, seed=0, **switches)
    model, history = fit_ipn(data, IPNConfig(prototype_dim=32, graph_dim=16, hidden_dim=32), config, progress=False,
                             refit=False)
    return model.state_dict(), history


@pytest.mark.parametrize("switch, off, on", [("episodic", False, True), ("consistency_weight", 0.0, 1.0)])
def test_non_episodic_training_and_switched_off_consistency_change_the_trained_weights(glyph_zsl, switch, off, on):
    state_off, history_off = _state(glyph_zsl, **{switch: off})
    state_on, _ = _state(glyph_zsl, **{switch: on})
    # same seed, same initial weights: only the switch can make the trained weights differ
    assert any(not torch.equal(state_off[key], state_on[key]) for key in state_off)
    # the consistency KL is still recorded (and not zero: the two spaces' graphs differ) when it is not trained
    assert history_off["loss"].notna().all() and (history_off["kl"] > 0).all()


def test_test_scores_are_what_evaluate_test_measures(glyph_zsl):
    config = TrainConfig(epochs=1, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=3, seed=0)
    model, _ = fit_ipn(glyph_zsl, IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), config, progress=False)
    seen, unseen = score_test_sets(model, glyph_zsl)
    assert seen.shape == (len(glyph_zsl.test_seen), glyph_zsl.n_classes)
    measured = gzsl_scores(seen, glyph_zsl.test_seen.labels, unseen, glyph_zsl.test_unseen.labels,
                           glyph_zsl.seen_classes, glyph_zsl.unseen_classes)
    assert measured == pytest.approx(evaluate_test(model, glyph_zsl))


def test_validation_split_holds_out_round_fraction_of_each_class():
    order = torch.randperm(41, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0] * 10 + [1] * 5 + [2] * 2 + [3] + [4] * 23)[order]
    mask = validation_split(labels, 0.2, seed=3)
    held = torch.bincount(labels[mask], minlength=5).tolist()
    # round(0.2 n), at least 1 and at most n - 1; a single image stays in training
    assert held == [2, 1, 1, 0, 5]
    assert torch.equal(mask, validation_split(labels, 0.2, seed=3))
    assert not torch.equal(mask, validation_split(labels, 0.2, seed=4))


def test_fit_ipn_selects_on_the_validation_split_of_its_seed(glyph_zsl):
    config = TrainConfig(epochs=2, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=3, seed=5)
    model_config = IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16)
    _, default = fit_ipn(glyph_zsl, model_config, config, progress=False, refit=False)
    mask = validation_split(glyph_zsl.train.labels, config.val_fraction, config.seed)
    _, explicit = fit_ipn(glyph_zsl, model_config, config, progress=False, refit=False, validation=mask)
    pd.testing.assert_frame_equal(default, explicit)
    other = validation_split(glyph_zsl.train.labels, config.val_fraction, config.seed + 1)
    _, moved = fit_ipn(glyph_zsl, model_config, config, progress=False, refit=False, validation=other)
    assert not default[["loss", "val_S"]].equals(moved[["loss", "val_S"]])


def test_ipn_and_the_baselines_are_selected_on_the_same_images(glyph_zsl, monkeypatch):
    """What the notebook does: one mask per seed, passed to fit_ipn and to select_baseline."""
    used = {"IPN": [], "ESZSL": []}
    evaluate, scores = ipn_fit.evaluate_gzsl, zsl_baselines.baseline_scores

    def spy_evaluate(model, support_features, support_labels, attributes, seen, unseen, *classes):
        used["IPN"].append((support_features, seen[0], unseen[0]))
        return evaluate(model, support_features, support_labels, attributes, seen, unseen, *classes)

    def spy_scores(method, features, labels, attributes, classes, hyperparameters, queries):
        if torch.equal(classes, glyph_zsl.train_classes):
            used["ESZSL"].append((features, *queries))
        return scores(method, features, labels, attributes, classes, hyperparameters, queries)

    monkeypatch.setattr(ipn_fit, "evaluate_gzsl", spy_evaluate)
    monkeypatch.setattr(zsl_baselines, "baseline_scores", spy_scores)
    mask = validation_split(glyph_zsl.train.labels, 0.2, seed=7)
    config = TrainConfig(epochs=1, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=2, seed=7)
    fit_ipn(glyph_zsl, IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), config, progress=False,
            refit=False, validation=mask)
    zsl_baselines.select_baseline(glyph_zsl, "ESZSL", [1.0], mask)
    (ipn_fit_x, ipn_seen, ipn_unseen), = used["IPN"]
    (eszsl_fit_x, eszsl_seen, eszsl_unseen), = used["ESZSL"]
    for ipn_images, eszsl_images in ((ipn_fit_x, eszsl_fit_x), (ipn_seen, eszsl_seen), (ipn_unseen, eszsl_unseen)):
        assert torch.equal(ipn_images, eszsl_images)
    assert torch.equal(ipn_seen, glyph_zsl.train.features[mask]) and torch.equal(ipn_unseen, glyph_zsl.val.features)
    assert mask.sum() == sum(min(n - 1, max(1, round(0.2 * n)))
                             for n in torch.bincount(glyph_zsl.train.labels).tolist() if n > 1)


def test_space_alignment_measures_what_it_names():
    model, means, attributes = _model("both", steps=2)
    with torch.no_grad():
        spaces, attentions = model.propagated(means, attributes)
    alignment = space_alignment(model, means, attributes)
    assert alignment["attention_kl"] == pytest.approx(consistency_loss(attentions["visual"], attentions["semantic"]).item())
    assert alignment["similarity_kl"] == pytest.approx(similarity_kl(spaces["visual"], spaces["semantic"], 2.0))
    assert alignment["feature_cka"] == pytest.approx(linear_cka(spaces["visual"], spaces["semantic"]))
    assert alignment["similarity_kl"] > 0 and alignment["feature_cka"] < 1  # two different spaces
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


def test_grid_cells_are_variants_by_seeds_with_the_base_configs(glyph_zsl):
    model, train = base_configs(glyph_zsl, steps=1, threshold=0.5, temperature=5.0, logit_scale=1.0,
                                prototype_dim=8, graph_dim=4, hidden_dim=8, epochs=3, n_way=10_000,
                                episode_unseen=2, episodes_per_epoch=None)
    assert (model.steps, model.threshold, model.spaces) == (1, 0.5, "both")
    assert train.consistency_weight > 0  # the base has the loss; its weight is tuned
    assert train.episodic and train.n_way == len(glyph_zsl.train_classes)  # capped at the train classes
    cells = grid_cells({"a": (model, train), "b": (model, train)}, range(3, 5), dataset="glyph-zsl", data_root="",
                       data_seed=0, data=glyph_zsl.fingerprint(), device=torch.device("cpu"))
    assert [(cell["variant"], cell["train"]["seed"]) for cell in cells] == [("a", 3), ("a", 4), ("b", 3), ("b", 4)]
    assert {cell["data"] for cell in cells} == {glyph_zsl.fingerprint()}
    assert IPNConfig(**cells[0]["model"]) == model and TrainConfig(**cells[1]["train"]).seed == 4
    swept = grid_cells({"a": (model, train), "sweep": (model, train)}, range(3, 6), dataset="glyph-zsl",
                       data_root="", data_seed=0, data=glyph_zsl.fingerprint(), device=torch.device("cpu"),
                       seed_counts={"sweep": 2})
    assert [(cell["variant"], cell["train"]["seed"]) for cell in swept] == [
        ("a", 3), ("a", 4), ("a", 5), ("sweep", 3), ("sweep", 4)]  # a sweep's seeds are the first of the claims'


def test_seed_table_is_mean_and_std_over_seeds():
    runs = pd.DataFrame({"variant": ["b", "b", "a", "a"], "seed": [0, 1, 0, 1], "H": [0.5, 0.6, 0.2, 0.2],
                         "final_kl": [0.001, 0.003, 0.0, 0.0]})
    table = seed_table(runs, "variant", {"H": 100, "final_kl": 1}, order=["a", "b"], label=" (ours)")
    assert table.variant.tolist() == ["a", "b"] and table.seeds.tolist() == [2, 2]
    assert table.H_mean.tolist() == [20.0, 55.0] and table.H_std.tolist() == pytest.approx([0.0, 7.07], abs=1e-9)
    assert table["H (ours)"].tolist() == ["20.0 ± 0.0", "55.0 ± 7.1"]
    assert table["kl (ours)"].tolist() == ["0.000 ± 0.000", "0.002 ± 0.001"]
    assert seed_table(runs[runs.seed == 0], "variant", {"H": 100}, order=["b"]).H.tolist() == ["50.0 ± 0.0"]


def test_refit_replays_the_selection_runs_learning_rate_schedule(glyph_zsl, monkeypatch):
    # selection: 6 epochs, lr ×0.1 after epoch 4; validation H peaks at epoch 3, so the refit trains 3 epochs,
    # all of them at the full learning rate, as the selected model had them
    epochs = iter(range(1, 100))
    monkeypatch.setattr(ipn_fit, "evaluate_gzsl",
                        lambda *args, **kwargs: {"U": 0.0, "S": 0.0, "H": float(next(epochs) == 3)})
    rates, step = [], torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    config = TrainConfig(epochs=6, lr=1e-3, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=2)
    _, history = fit_ipn(glyph_zsl, IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), config, progress=False)
    assert rates[:12] == pytest.approx([1e-3] * 8 + [1e-4] * 4)  # the selection run: 6 epochs of 2 steps
    assert rates[12:] == pytest.approx(rates[:6])  # the refit: its first 3 epochs, step by step
    refit = history[history.phase == "refit"]
    assert refit.lr.tolist() == pytest.approx(history[history.phase == "select"].lr.tolist()[:3])


def test_episodes_rule_official_is_the_official_formula_and_ours_covers_each_image_once():
    official = TrainConfig(episodes_rule="official")
    assert [ipn_fit.episodes_per_epoch(n, official) for n in (23527, 7057, 5932, 2999, 3000)] == [800, 300, 200,
                                                                                                  100, 200]
    assert ipn_fit.episodes_per_epoch(7057, TrainConfig()) == 7057 // 60  # 30 classes × (1 + 1) images
    assert ipn_fit.episodes_per_epoch(7057, TrainConfig(episodes_per_epoch=7, episodes_rule="official")) == 7
    with pytest.raises(ValueError):
        TrainConfig(episodes_rule="paper")


def test_semantic_input_original_feeds_original_att_scaled_as_the_official_code(glyph_zsl):
    from dataclasses import replace

    assert ipn_fit.semantic_input(glyph_zsl, "normalised") is glyph_zsl
    original = ipn_fit.semantic_input(glyph_zsl, "original")
    assert torch.equal(original.attributes, glyph_zsl.original_attributes)
    assert torch.equal(ipn_fit.semantic_input(original, "original").attributes, original.attributes)  # idempotent
    apy = ipn_fit.semantic_input(replace(glyph_zsl, name="APY"), "original")
    assert torch.allclose(apy.attributes, 100 * glyph_zsl.original_attributes)
    with pytest.raises(ValueError):
        TrainConfig(semantic_input="raw")
    # fit_ipn switches the attributes itself: the K-means centres are in the original scale
    config = TrainConfig(epochs=1, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=1,
                         semantic_input="original")
    model, _ = fit_ipn(glyph_zsl, IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), config, progress=False,
                       refit=False)
    expected = attribute_centres(original.attributes[glyph_zsl.train_classes], model.config.n_clusters, config.seed)
    assert torch.allclose(model.semantic.centres, expected)


def test_graph_figure_helpers_count_edges_and_pick_connected_classes():
    import numpy as np

    from protolab.plots import best_connected, circle_positions, edge_counts

    semantic = np.eye(5)
    semantic[3, 1] = semantic[1, 3] = semantic[3, 4] = 0.2  # self-loops are not edges
    matrices = {"semantic": semantic, "visual": np.eye(5)}
    assert edge_counts(matrices) == {"semantic": 3, "visual": 0}
    assert best_connected(matrices, 2).tolist() == [3, 1]  # most edges first, then by index
    assert best_connected({"visual": np.eye(5)}, 3).tolist() == []
    assert np.allclose(np.linalg.norm(circle_positions(6), axis=1), 1.0)
