"""Equal tuning of the few-shot geometries (fewshot/tuning.py): the grid, its budget check, the choice rule."""

from __future__ import annotations

import pandas as pd
import pytest

from protolab.fewshot.tuning import chosen_settings, curvature_sweep, settings_grid, tuning_models, tuning_table


def test_both_geometries_get_the_same_number_of_runs_per_shot():
    grid = settings_grid(["euclidean", "hyperbolic"], euclidean_lrs=[1e-3, 2e-3, 4e-3, 8e-3],
                         hyperbolic_lrs=[1e-3, 4e-3], curvatures=[0.1, 1.0])
    models = tuning_models(grid, [1, 5], [30, 20])
    assert len(models) == 16
    assert models[:8] == [("euclidean", 1, 30, None, 1e-3), ("euclidean", 1, 30, None, 2e-3),
                          ("euclidean", 1, 30, None, 4e-3), ("euclidean", 1, 30, None, 8e-3),
                          ("hyperbolic", 1, 30, 0.1, 1e-3), ("hyperbolic", 1, 30, 1.0, 1e-3),
                          ("hyperbolic", 1, 30, 0.1, 4e-3), ("hyperbolic", 1, 30, 1.0, 4e-3)]
    assert {(shot, way) for _, shot, way, _, _ in models[8:]} == {(5, 20)}


def test_unequal_or_empty_budgets_are_refused_and_one_setting_each_means_no_tuning():
    with pytest.raises(ValueError, match="unequal or empty tuning budgets.*'euclidean': 2, 'hyperbolic': 3"):
        settings_grid(["euclidean", "hyperbolic"], euclidean_lrs=[1e-3, 2e-3], hyperbolic_lrs=[1e-3],
                      curvatures=[0.1, 0.5, 1.0])
    with pytest.raises(ValueError, match="'hyperbolic': 0"):
        settings_grid(["hyperbolic"], euclidean_lrs=[], hyperbolic_lrs=[1e-3], curvatures=[])
    single = settings_grid(["euclidean", "hyperbolic"], euclidean_lrs=[5e-3], hyperbolic_lrs=[1e-3], curvatures=[0.01])
    assert tuning_models(single, [1, 5], [30, 20]) == []
    assert chosen_settings(single, [1, 5], tuning_table([], [])) == {
        ("euclidean", 1): (None, 5e-3), ("euclidean", 5): (None, 5e-3), ("hyperbolic", 1): (0.01, 1e-3),
        ("hyperbolic", 5): (0.01, 1e-3)}
    one_geometry = settings_grid(["hyperbolic"], euclidean_lrs=[], hyperbolic_lrs=[1e-3], curvatures=[0.1, 1.0])
    assert len(tuning_models(one_geometry, [1], [30])) == 2  # one geometry: nothing to match


def _result(scores: list[float], best: int, stopped_by: str = "patience") -> dict:
    history = [{"epoch": epoch, "val_accuracy": score, "val_ci95": 0.01 * epoch}
               for epoch, score in enumerate(scores, start=1)]
    return {"history": history, "best_epoch": best, "convergence": {"stopped_by": stopped_by}}


def _cell(geometry: str, shot: int, c: float | None, lr: float) -> dict:
    return {"geometry": geometry, "shot": shot, "train_way": 10, "c": c, "protocol": {"lr": lr}}


def test_the_setting_with_the_best_validation_score_is_chosen_per_geometry_and_shot_first_on_ties():
    cells = [_cell("euclidean", 1, None, 1e-3), _cell("euclidean", 1, None, 2e-3),
             _cell("hyperbolic", 1, 0.1, 1e-3), _cell("hyperbolic", 1, 1.0, 1e-3),
             _cell("euclidean", 5, None, 1e-3), _cell("euclidean", 5, None, 2e-3)]
    results = [_result([0.40, 0.50, 0.45], 2), _result([0.52, 0.48], 1),
               _result([0.60, 0.61], 2), _result([0.55, 0.58, 0.59], 3, "max_steps"),
               _result([0.70], 1), _result([0.60, 0.70], 2)]  # a tie at 5-shot: the first listed wins
    table = tuning_table(cells, results)
    assert table["val_accuracy_%"].tolist() == [50.0, 52.0, 61.0, 59.0, 70.0, 70.0]
    assert table["val_ci95_%"].tolist() == [2.0, 1.0, 2.0, 3.0, 1.0, 2.0]  # the CI of the selected epoch
    assert table.chosen.tolist() == [False, True, True, False, True, False]
    assert table.stopped_by.tolist()[3] == "max_steps" and table.epochs.tolist() == [3, 2, 2, 3, 1, 2]
    assert chosen_settings({}, [1, 5], table) == {("euclidean", 1): (None, 2e-3), ("hyperbolic", 1): (0.1, 1e-3),
                                                  ("euclidean", 5): (None, 1e-3)}
    runs, best = curvature_sweep(table, 1)
    assert len(runs) == 2 and best.values.tolist() == [[0.1, 1e-3, 61.0, 2.0], [1.0, 1e-3, 59.0, 3.0]]
    assert curvature_sweep(tuning_table([], []), 1)[1].empty
    assert pd.isna(table.c[0]) and table.c[2] == 0.1


def test_runs_without_a_validated_epoch_are_kept_unscored_and_the_first_is_chosen():  # a dry run's models
    cells = [_cell("hyperbolic", 1, 0.1, 1e-3), _cell("hyperbolic", 1, 1.0, 1e-3)]
    table = tuning_table(cells, [{"history": [], "best_epoch": 0, "convergence": {"stopped_by": "max_steps"}}] * 2)
    assert table["val_accuracy_%"].isna().all() and table.chosen.tolist() == [True, False]
    assert curvature_sweep(table, 1)[1].empty  # nothing to draw
