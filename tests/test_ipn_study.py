"""The IPN study the three IPN notebooks share (protolab.zsl.grid, protolab.zsl.tuning): arms one factor away from
the base, equal tuning budgets, the tuning rule, matched optimiser steps and the shared cell."""

from dataclasses import asdict, fields, replace

import pandas as pd
import pytest
import torch

from protolab.zsl import fit as ipn_fit
from protolab.zsl import grid as study
from protolab.zsl.fit import TrainConfig, fit_ipn, minibatches
from protolab.zsl.ipn import IPNConfig
from protolab.zsl.tuning import TuningGrid, chosen_settings, describe_chosen, has_consistency, tuning_table


@pytest.fixture(scope="module")
def glyph_zsl():
    from protolab.data import load_zsl

    return load_zsl("glyph-zsl")


BASE_MODEL, BASE_TRAIN = IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16), TrainConfig(epochs=2, patience=1)


def _changed(a, b):
    return {f.name for f in fields(a) if getattr(a, f.name) != getattr(b, f.name)}


def test_every_arm_changes_one_factor_of_the_base():
    arms = study.study_variants(BASE_MODEL, BASE_TRAIN)
    base = arms[study.BASE]
    assert has_consistency(base.model, base.train)
    expected = {study.NO_CONSISTENCY: (set(), {"consistency_weight"}),
                study.SEMANTIC_ONLY: ({"spaces"}, {"consistency_weight"}),
                study.VISUAL_ONLY: ({"spaces"}, {"consistency_weight"}),
                study.NON_EPISODIC: (set(), {"episodic"}),
                study.NO_GRAPH: ({"steps"}, {"consistency_weight"}),
                study.SHARED_ATTENTION: ({"shared_attention"}, {"consistency_weight"}),
                study.HYPERBOLIC: ({"geometry"}, set())}
    assert set(arms) == {study.BASE, *expected}
    for name, (model_fields, train_fields) in expected.items():
        arm = arms[name]
        assert (_changed(arm.model, base.model), _changed(arm.train, base.train)) == (model_fields, train_fields), name
        # only the arms that keep two attentions and the loss tune λ
        assert has_consistency(arm.model, arm.train) == (name in (study.NON_EPISODIC, study.HYPERBOLIC)), name
    assert arms[study.NO_GRAPH].model.steps == 0 and arms[study.NO_GRAPH].model.spaces == "both"


def test_tuning_budgets_must_be_equal_and_weights_positive():
    grid = TuningGrid((1e-3, 2e-3, 3e-3, 4e-3), (1e-3, 2e-3), (0.1, 1.0))
    with_loss, without = study.study_variants(BASE_MODEL, BASE_TRAIN)[study.BASE], \
        study.study_variants(BASE_MODEL, BASE_TRAIN)[study.NO_GRAPH]
    assert grid.settings(with_loss.model, with_loss.train) == [(1e-3, 0.1, None), (1e-3, 1.0, None), (2e-3, 0.1, None),
                                                               (2e-3, 1.0, None)]
    assert grid.settings(without.model, without.train) == [(1e-3, 0.0, None), (2e-3, 0.0, None), (3e-3, 0.0, None),
                                                           (4e-3, 0.0, None)]
    assert grid.budget == 4
    hyperbolic = study.study_variants(BASE_MODEL, replace(BASE_TRAIN, consistency_weight=0.3))[study.HYPERBOLIC]
    with pytest.raises(ValueError, match="needs curvatures"):
        grid.settings(hyperbolic.model, hyperbolic.train)
    grid = replace(grid, curvatures=(0.1, 1.0))  # the same budget: 2 learning rates × 2 curvatures, λ declared
    assert grid.settings(hyperbolic.model, hyperbolic.train) == [(1e-3, 1.0, 0.1), (1e-3, 1.0, 1.0), (2e-3, 1.0, 0.1),
                                                                 (2e-3, 1.0, 1.0)]
    with pytest.raises(ValueError, match="must number 4"):
        replace(grid, curvatures=(0.1, 0.3, 1.0))
    with pytest.raises(ValueError, match="unequal or empty tuning budgets: 3 learning rate"):
        TuningGrid((1e-3, 2e-3, 3e-3), (1e-3, 2e-3), (0.1, 1.0))
    with pytest.raises(ValueError, match="must be > 0"):
        TuningGrid((1e-3, 2e-3), (1e-3,), (0.0, 1.0))


def _tuning_cell(variant, lr, weight, c=None, threshold=0.766):
    return {"variant": variant, "train": {"lr": lr, "consistency_weight": weight},
            "model": {"geometry": "euclidean" if c is None else "hyperbolic", "curvature": c or 1.0,
                      "threshold": threshold}}


def _result(val_h):
    return {"convergence": {"best_score": val_h, "best_step": 3, "steps": 5, "stopped_by": "patience"}}


def test_the_tuning_rule_keeps_the_best_validation_h_and_the_first_on_ties():
    cells = [_tuning_cell("a", 1e-3, 0.1), _tuning_cell("a", 2e-3, 0.1), _tuning_cell("a", 4e-3, 0.1),
             _tuning_cell("b", 1e-3, 0.0), _tuning_cell("b", 2e-3, 0.0), _tuning_cell("h", 1e-3, 0.1, 0.1),
             _tuning_cell("h", 1e-3, 0.1, 1.0)]
    table = tuning_table(cells, [_result(0.4), _result(0.5), _result(0.5), _result(float("nan")), _result(0.2),
                                 _result(0.3), _result(0.35)])
    assert table.chosen.tolist() == [False, True, False, False, True, False, True]
    assert chosen_settings(table) == {"a": (2e-3, 0.1, None), "b": (2e-3, 0.0, None), "h": (1e-3, 0.1, 1.0)}
    assert describe_chosen(table, 3, 100) == ("Chosen on validation (seed 100, 3 selection runs per arm): a lr 0.002, "
                                              "λ 0.1 (validation H 50.0); b lr 0.002 (validation H 20.0); h lr 0.001, "
                                              "λ 0.1, c 1 (validation H 35.0).")
    assert describe_chosen(tuning_table([], []), 1, 100).startswith("Settings: one per arm")


def test_tuning_runs_one_selection_run_per_setting_from_the_tuning_seed(glyph_zsl, monkeypatch):
    seen = []

    def fake_grid(namespace, cells, compute, data, **options):
        seen.extend((namespace, compute, cell["variant"], cell["train"]["seed"], cell["train"]["lr"],
                     cell["train"]["consistency_weight"]) for cell in cells)
        scores = [0.1 * (i % 3) for i in range(len(cells))]
        return type("Run", (), {"results": [_result(h) for h in scores], "sources": ["computed"] * len(cells)})()

    monkeypatch.setattr(study, "run_model_grid", fake_grid)
    arms = study.study_variants(BASE_MODEL, BASE_TRAIN)
    arms = {study.BASE: arms[study.BASE], study.NO_GRAPH: arms[study.NO_GRAPH]}
    options = dict(dataset="glyph-zsl", data_root="", seed=0, device=torch.device("cpu"), reuse=True, workers=1)
    table, configs = study.tune_variants(glyph_zsl, arms, TuningGrid((1e-3, 2e-3), (1e-3,), (0.1, 0.5)),
                                         tuning_seed=100, **options)
    assert {entry[:2] for entry in seen} == {(study.GRID, study.tuning_cell)}
    assert [entry[3:] for entry in seen] == [(100, 1e-3, 0.1), (100, 1e-3, 0.5), (100, 1e-3, 0.0), (100, 2e-3, 0.0)]
    assert table.variant.tolist() == [study.BASE, study.BASE, study.NO_GRAPH, study.NO_GRAPH]
    assert (configs[study.BASE][1].lr, configs[study.BASE][1].consistency_weight) == (1e-3, 0.5)
    assert (configs[study.NO_GRAPH][1].lr, configs[study.NO_GRAPH][1].consistency_weight) == (1e-3, 0.0)
    seen.clear()  # one setting each: used untried
    table, configs = study.tune_variants(glyph_zsl, arms, TuningGrid((3e-3,), (2e-3,), (0.2,)), tuning_seed=100,
                                         **options)
    assert not seen and table.empty
    assert configs[study.BASE][1].lr == 2e-3 and configs[study.BASE][1].consistency_weight == 0.2
    assert configs[study.NO_GRAPH][1].lr == 3e-3


def test_the_hyperbolic_arm_is_tuned_after_the_base_at_its_lambda_over_lr_and_curvature(glyph_zsl, monkeypatch):
    seen = []

    def fake_grid(namespace, cells, compute, data, **options):
        seen.append([(cell["variant"], cell["train"]["lr"], cell["train"]["consistency_weight"],
                      cell["model"]["geometry"], cell["model"]["curvature"]) for cell in cells])
        scores = [0.1 * (i % 3) for i in range(len(cells))]
        return type("Run", (), {"results": [_result(h) for h in scores], "sources": ["computed"] * len(cells)})()

    monkeypatch.setattr(study, "run_model_grid", fake_grid)
    options = dict(dataset="glyph-zsl", data_root="", seed=0, device=torch.device("cpu"), reuse=True, workers=1)
    grid = TuningGrid((1e-3, 2e-3), (1e-3,), (0.1, 0.5), curvatures=(0.1, 1.0))
    table, configs = study.tuned_arms(glyph_zsl, [study.HYPERBOLIC, study.BASE], (BASE_MODEL, BASE_TRAIN), grid,
                                      tuning_seed=100, **options)
    assert [cell[0].split(" @")[0] for cell in seen[0]] == [study.BASE] * 2  # the base first, alone
    assert [cell[1:] for cell in seen[1]] == [(1e-3, 0.5, "hyperbolic", 0.1), (1e-3, 0.5, "hyperbolic", 1.0)]
    assert list(configs) == [study.BASE, study.HYPERBOLIC]  # the study's order
    assert table.variant.tolist() == [study.BASE] * 2 + [study.HYPERBOLIC] * 2 and table.c.isna().tolist()[:2] == [True] * 2
    model, train = configs[study.HYPERBOLIC]
    assert (model.geometry, model.curvature, train.lr, train.consistency_weight) == ("hyperbolic", 1.0, 1e-3, 0.5)
    with pytest.raises(ValueError, match="takes the λ the base chose"):
        study.tuned_arms(glyph_zsl, [study.HYPERBOLIC], (BASE_MODEL, BASE_TRAIN), grid, tuning_seed=100, **options)


def test_the_graph_threshold_is_the_base_s_best_and_every_arm_then_uses_it(glyph_zsl, monkeypatch):
    seen = []
    best = {(0.5, 2e-3): 0.6, (0.9, 1e-3): 0.7}  # validation H of the base's runs; the rest score 0.3

    def fake_grid(namespace, cells, compute, data, **options):
        seen.append([(cell["variant"].split(" @")[0], cell["model"]["threshold"], cell["train"]["lr"]) for cell in cells])
        scores = [best.get((cell["model"]["threshold"], cell["train"]["lr"]), 0.3)
                  if cell["variant"].startswith(study.BASE + " @") else 0.3 for cell in cells]
        return type("Run", (), {"results": [_result(h) for h in scores], "sources": ["computed"] * len(cells)})()

    monkeypatch.setattr(study, "run_model_grid", fake_grid)
    options = dict(dataset="glyph-zsl", data_root="", seed=0, device=torch.device("cpu"), reuse=True, workers=1)
    grid = TuningGrid((1e-3, 2e-3), (1e-3, 2e-3), (0.1,))
    table, configs = study.tuned_arms(glyph_zsl, [study.BASE, study.NO_CONSISTENCY], (BASE_MODEL, BASE_TRAIN), grid,
                                      tuning_seed=100, thresholds=(0.5, 0.9), **options)
    assert [run[:2] for run in seen[0]] == [(study.BASE, 0.5)] * 2 + [(study.BASE, 0.9)] * 2  # one grid
    assert [run[:2] for run in seen[1]] == [(study.NO_CONSISTENCY, 0.9)] * 2  # the others at the chosen threshold
    assert table.threshold.tolist() == [0.5, 0.5, 0.9, 0.9, 0.9, 0.9]
    assert table.chosen.tolist() == [False, False, True, False, True, False]
    assert {name: (model.threshold, train.lr) for name, (model, train) in configs.items()} == {
        study.BASE: (0.9, 1e-3), study.NO_CONSISTENCY: (0.9, 1e-3)}
    assert "IPN lr 0.001, λ 0.1, graph threshold 0.9" in describe_chosen(table, 2, 100)
    with pytest.raises(ValueError, match="needs tuning runs"):
        study.tuned_arms(glyph_zsl, [study.BASE], (BASE_MODEL, BASE_TRAIN), TuningGrid((1e-3,), (1e-3,), (0.1,)),
                         tuning_seed=100, thresholds=(0.5, 0.9), **options)
    seen.clear()  # one threshold: nothing to choose, the base tuned at it with the others
    table, configs = study.tuned_arms(glyph_zsl, [study.BASE, study.NO_CONSISTENCY], (BASE_MODEL, BASE_TRAIN), grid,
                                      tuning_seed=100, thresholds=(0.5,), **options)
    assert len(seen) == 1 and {run[1] for run in seen[0]} == {0.5} and set(table.variant) == {
        study.BASE, study.NO_CONSISTENCY}
    assert configs[study.BASE][0].threshold == configs[study.NO_CONSISTENCY][0].threshold == 0.5


def test_minibatches_make_as_many_steps_as_asked_across_passes():
    batches = list(minibatches(10, 4, 7, torch.Generator().manual_seed(0)))
    assert [len(b) for b in batches] == [4, 4, 2, 4, 4, 2, 4]
    assert sorted(torch.cat(batches[:3]).tolist()) == list(range(10))  # each pass a permutation


@pytest.mark.filterwarnings(r"ignore:Detected call of `lr_scheduler.step\(\)`")
@pytest.mark.parametrize("episodic", [True, False])
def test_non_episodic_training_makes_the_same_optimiser_steps_as_episodic(glyph_zsl, monkeypatch, episodic):
    steps = []
    monkeypatch.setattr(ipn_fit, "optimizer_step", lambda optimizer, loss: steps.append(1))
    config = TrainConfig(epochs=2, n_way=20, episode_unseen=4, batch_size=64, episodic=episodic, seed=0)
    fit_ipn(glyph_zsl, IPNConfig(prototype_dim=8, graph_dim=4, hidden_dim=8), config, progress=False, refit=False)
    per_epoch = ipn_fit.episodes_per_epoch(int((~ipn_fit.validation_split(glyph_zsl.train.labels, 0.2, 0)).sum()),
                                           config)
    assert per_epoch > -(-len(glyph_zsl.train.labels) // 64)  # more than one pass of minibatches
    assert len(steps) == 2 * per_epoch


def test_collapse_rates_count_runs_below_the_line_per_arm():
    runs = pd.DataFrame({"variant": ["a", "a", "b", "b", "b"], "H": [0.001, 0.3, 0.2, 0.0, 0.0]})
    assert study.collapse_rates(runs, "variant", 0.01, order=["b", "a"]) == ["2/3 (67%)", "1/2 (50%)"]


@pytest.mark.parametrize("spaces", ["both", "semantic"])
def test_a_study_cell_measures_alignment_only_with_two_spaces(glyph_zsl, spaces):
    model, train = replace(BASE_MODEL, spaces=spaces), TrainConfig(epochs=1, n_way=20, episodes_per_epoch=2,
                                                                     consistency_weight=0.0, patience=1)
    cell = study.grid_cells({"x": (model, train)}, range(0, 1), dataset="glyph-zsl", data_root="", data_seed=0,
                            data=glyph_zsl.fingerprint(), device=torch.device("cpu"))[0]
    result = study.ipn_cell(glyph_zsl, cell)
    finals = [result[f"final_{key}"] for key in ("similarity_kl", "feature_cka", "neighbours_semantic")]
    assert all(pd.notna(finals)) == (spaces == "both") and all(pd.isna(finals)) == (spaces != "both")
    assert ("feature_cka" in pd.DataFrame(result["history"]).columns) == (spaces == "both")
    assert 0.0 <= result["H"] <= 1.0 and result["convergence"]["steps"] == 1
    rebuilt = study.cell_model(glyph_zsl, cell, result)
    assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in result["state"].items())
    assert asdict(rebuilt.config) == cell["model"]
