"""The few-shot table notebook: its full profile reads MiniImageNet files in Ravi & Larochelle's CSV layout; its
models are grid cells, stored once trained and reused by a re-run; each geometry's settings are chosen on
validation classes by tuning runs with the same budget; several seeds give paired claims."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from protolab.runner.execute import run_notebooks
from tests.layouts import write_mini_imagenet


@pytest.mark.notebook
def test_full_profile_runs_on_mini_imagenet_files_in_csv_layout(tmp_path):
    classes = {split: [f"n{9000000 + 100 * s + k:08d}" for k in range(5)]
               for s, split in enumerate(("train", "val", "test"))}
    root = write_mini_imagenet(tmp_path / "data", classes, images_per_class=4, shape=(20, 20))
    result = run_notebooks(["fewshot_tables"], profile="full", overrides={
        "data_root": str(root), "image_size": "16", "dim": "16", "shots": "1", "train_way": "5", "query": "2",
        "epochs": "1", "episodes": "2", "val_episodes": "2", "test_episodes": "4", "euclidean_lrs": "0.005, 0.01",
        "hyperbolic_lrs": "0.005", "curvatures": "0.01, 0.1", "n_seeds": "1",
        "checkpoint_dir": str(tmp_path / "checkpoints")},
        out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    sidecar = json.loads((tmp_path / "figures" / "fewshot_tables__accuracy.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == "miniimagenet"
    assert "miniimagenet" in sidecar["dataset"]["description"].lower()
    table = pd.read_csv(tmp_path / "figures" / "fewshot_tables__accuracy.csv")
    assert set(table.geometry) == {"euclidean", "hyperbolic"} and table["accuracy_%"].between(0, 100).all()
    assert set(table.paper) == {"49.42", "54.43 ± 0.20"}  # the paper's Conv4 1-shot numbers sit beside ours
    tuning = pd.read_csv(tmp_path / "figures" / "fewshot_tables__tuning.csv")
    assert len(tuning) == 4 and tuning.groupby("geometry").chosen.sum().tolist() == [1, 1]
    chosen = tuning[tuning.chosen & (tuning.geometry == "hyperbolic")].iloc[0]
    assert table.set_index("geometry").loc["hyperbolic", ["c", "lr"]].tolist() == [chosen.c, chosen.lr]
    euclidean_lr = tuning[tuning.chosen & (tuning.geometry == "euclidean")].lr.iloc[0]
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == sorted([  # 4 tuning, 2 compared
        "euclidean-1-shot-lr0.005-5way-seed100.pt", "euclidean-1-shot-lr0.01-5way-seed100.pt",
        "hyperbolic-1-shot-c0.01-lr0.005-5way-seed100.pt", "hyperbolic-1-shot-c0.1-lr0.005-5way-seed100.pt",
        f"euclidean-1-shot-lr{euclidean_lr:g}-5way-seed0.pt", f"hyperbolic-1-shot-c{chosen.c:g}-lr0.005-5way-seed0.pt"])
    assert not list((tmp_path / "figures").glob("*.pt"))


TUNING = {"euclidean_lrs": "[0.001, 0.01]", "hyperbolic_lrs": "[0.001]", "curvatures": "[0.25, 1.0]"}
"""Two settings per geometry (the smoke profile has one each: no tuning)."""


def _smoke(tmp_path, run: str, **overrides) -> dict[str, pd.DataFrame]:
    """The smoke profile with :data:`TUNING` run into ``tmp_path / run``; its runs, models, accuracy, claims and
    learning-curve tables."""
    overrides = {**TUNING, **{k: str(v) for k, v in overrides.items()}}
    result = run_notebooks(["fewshot_tables"], profile="smoke", overrides=overrides,
                           out_dir=tmp_path / run, runs_dir=tmp_path / "runs", timeout=400)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    return {name: pd.read_csv(tmp_path / run / f"fewshot_tables__{name}.csv")
            for name in ("runs", "models", "accuracy", "claims", "learning_curves")}


@pytest.mark.notebook
def test_a_rerun_trains_no_model_and_a_second_seed_trains_only_its_own(tmp_path, fresh_grid_cache):
    first = _smoke(tmp_path, "first")
    tuning = pd.read_csv(tmp_path / "first" / "fewshot_tables__tuning.csv")
    assert len(tuning) == 8 and (tuning.groupby(["geometry", "shot"]).size() == 2).all()  # 2 runs per geometry
    assert tuning.groupby(["geometry", "shot"]).chosen.sum().eq(1).all()
    arms = first["runs"].arm.tolist()  # both geometries per shot, each with its chosen setting
    chosen_c = tuning[tuning.chosen & (tuning.geometry == "hyperbolic")].c.tolist()
    assert arms == ["euclidean, 1-shot", f"hyperbolic, 1-shot, c={chosen_c[0]:g}", "euclidean, 5-shot",
                    f"hyperbolic, 5-shot, c={chosen_c[1]:g}"] and (first["runs"].source == "computed").all()
    assert len(first["models"]) == 12 and first["models"].arm.str.startswith("tuning: ").sum() == 8
    again = _smoke(tmp_path, "again")
    assert (again["runs"].source == "cached").all()
    for name in ("runs", "models", "accuracy"):
        pd.testing.assert_frame_equal(first[name].drop(columns=["source", "wall_seconds"], errors="ignore"),
                                      again[name].drop(columns=["source", "wall_seconds"], errors="ignore"))

    two = _smoke(tmp_path, "two", n_seeds=2)
    runs, models = two["runs"], two["models"]
    assert dict(zip(zip(runs.arm, runs.seed), runs.source)) == {
        (arm, seed): "cached" if seed == 0 else "computed" for arm in arms for seed in (0, 1)}
    compared = models[~models.arm.str.startswith("tuning: ")]
    assert len(compared) == len(runs) == 8 and sorted(zip(compared.arm, compared.seed)) == sorted(zip(runs.arm,
                                                                                                      runs.seed))
    assert models.stopped_by.isin(["patience", "max_steps"]).all() and (models.steps <= 2).all()
    assert sorted(set(zip(two["learning_curves"].arm, two["learning_curves"].seed))) == sorted(zip(runs.arm, runs.seed))
    claims = two["claims"]
    assert len(claims) == 3 and (claims.seeds == 2).all() and (claims.verdict == "inconclusive").all()  # < 5 seeds
    by_model = runs.set_index(["arm", "seed"])["accuracy_%"]
    for shot, estimate, hyperbolic in zip((1, 5), claims.estimate, arms[1::2]):  # per-seed gains, paired episodes
        gains = [by_model[(hyperbolic, seed)] - by_model[(f"euclidean, {shot}-shot", seed)] for seed in (0, 1)]
        assert estimate == pytest.approx(sum(gains) / 2, abs=0.02)
    differences = pd.read_csv(tmp_path / "two" / "fewshot_tables__seed_differences.csv")
    assert differences[["shot", "seed"]].values.tolist() == [[1, 0], [1, 1], [5, 0], [5, 1]]
    accuracy = two["accuracy"].assign(arm=arms).set_index("arm")
    assert (accuracy.seeds == 2).all()
    for arm, group in runs.groupby("arm"):
        assert accuracy.loc[arm, "accuracy_%"] == pytest.approx(group["accuracy_%"].mean(), abs=0.02)
        assert accuracy.loc[arm, "seed_std_%"] == pytest.approx(group["accuracy_%"].std(), abs=0.02)
    observations = (tmp_path / "two" / "fewshot_tables__observations.md").read_text()
    assert "4 of 16 models trained in this run" in observations and "Models stopped by patience" in observations
