"""The few-shot table notebook: its full profile reads MiniImageNet files in Ravi & Larochelle's CSV layout; its
models are grid cells, stored once trained and reused by a re-run; several seeds give paired claims."""

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
        "epochs": "1", "episodes": "2", "val_episodes": "2", "test_episodes": "4", "curvatures": "0.1",
        "checkpoint_dir": str(tmp_path / "checkpoints")},
        out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    sidecar = json.loads((tmp_path / "figures" / "fewshot_tables__accuracy.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == "miniimagenet"
    assert "miniimagenet" in sidecar["dataset"]["description"].lower()
    table = pd.read_csv(tmp_path / "figures" / "fewshot_tables__accuracy.csv")
    assert set(table.geometry) == {"euclidean", "hyperbolic"} and table["accuracy_%"].between(0, 100).all()
    assert set(table.paper) == {"49.42", "54.43 ± 0.20"}  # the paper's Conv4 1-shot numbers sit beside ours
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == [
        "euclidean-1-shot-5way-seed0.pt", "hyperbolic-1-shot-c0.01-5way-seed0.pt",
        "hyperbolic-1-shot-c0.1-5way-seed0.pt"]
    assert not list((tmp_path / "figures").glob("*.pt"))


def _smoke(tmp_path, run: str, **overrides) -> dict[str, pd.DataFrame]:
    """The smoke profile run into ``tmp_path / run``; its runs, models, accuracy and claims tables."""
    result = run_notebooks(["fewshot_tables"], profile="smoke", overrides={k: str(v) for k, v in overrides.items()},
                           out_dir=tmp_path / run, runs_dir=tmp_path / "runs", timeout=400)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    return {name: pd.read_csv(tmp_path / run / f"fewshot_tables__{name}.csv")
            for name in ("runs", "models", "accuracy", "claims", "learning_curves")}


@pytest.mark.notebook
def test_a_rerun_trains_no_model_and_a_second_seed_trains_only_its_own(tmp_path, fresh_grid_cache):
    first = _smoke(tmp_path, "first")
    arms = ["euclidean, 1-shot", "hyperbolic, 1-shot, c=0.25", "euclidean, 5-shot", "hyperbolic, 5-shot, c=0.25",
            "hyperbolic, 1-shot, c=1"]  # both geometries per shot, then the curvature sweep
    assert first["runs"].arm.tolist() == arms and (first["runs"].source == "computed").all()
    again = _smoke(tmp_path, "again")
    assert (again["runs"].source == "cached").all()
    for name in ("runs", "models", "accuracy"):
        pd.testing.assert_frame_equal(first[name].drop(columns=["source", "wall_seconds"], errors="ignore"),
                                      again[name].drop(columns=["source", "wall_seconds"], errors="ignore"))

    two = _smoke(tmp_path, "two", n_seeds=2)
    runs, models = two["runs"], two["models"]
    assert dict(zip(zip(runs.arm, runs.seed), runs.source)) == {
        (arm, seed): "cached" if seed == 0 else "computed" for arm in arms for seed in (0, 1)}
    assert len(models) == len(runs) == 10 and sorted(zip(models.arm, models.seed)) == sorted(zip(runs.arm, runs.seed))
    assert models.stopped_by.isin(["patience", "max_steps"]).all() and (models.steps <= 2).all()
    assert sorted(set(zip(two["learning_curves"].arm, two["learning_curves"].seed))) == sorted(zip(runs.arm, runs.seed))
    claims = two["claims"]
    assert len(claims) == 3 and (claims.seeds == 2).all() and (claims.verdict == "inconclusive").all()  # < 5 seeds
    by_model = runs.set_index(["arm", "seed"])["accuracy_%"]
    for shot, estimate in zip((1, 5), claims.estimate):  # the per-seed gains, paired on the shared test episodes
        gains = [by_model[(f"hyperbolic, {shot}-shot, c=0.25", seed)] - by_model[(f"euclidean, {shot}-shot", seed)]
                 for seed in (0, 1)]
        assert estimate == pytest.approx(sum(gains) / 2, abs=0.02)
    accuracy = two["accuracy"].assign(arm=arms[:4]).set_index("arm")
    assert (accuracy.seeds == 2).all()
    for arm, group in runs[runs.arm.isin(arms[:4])].groupby("arm"):
        assert accuracy.loc[arm, "accuracy_%"] == pytest.approx(group["accuracy_%"].mean(), abs=0.02)
        assert accuracy.loc[arm, "seed_std_%"] == pytest.approx(group["accuracy_%"].std(), abs=0.02)
    observations = (tmp_path / "two" / "fewshot_tables__observations.md").read_text()
    assert "5 of 10 models trained in this run" in observations and "Models stopped by patience" in observations
