"""The Poincaré-uncertainty notebook: its full profile reads the real MNIST/Omniglot layouts; its smoke profile
stores every trained model and a rerun reuses them all."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from protolab.runner.execute import run_notebooks
from protolab.runner.parameters import ParameterError
from tests.layouts import write_mnist, write_omniglot


@pytest.mark.notebook
def test_full_profile_runs_on_mnist_and_omniglot_files_in_torchvision_layout(tmp_path):
    root = write_mnist(tmp_path / "data", n_train=40, n_test=20)
    write_omniglot(root, "images_evaluation", ["Tifinagh", "Hebrew"], characters=3, drawers=4)
    result = run_notebooks(["poincare_uncertainty"], profile="full", overrides={
        "data_root": str(root), "n_seeds": "1", "table_dims": "2", "epochs": "2"},
        out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=600)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    sidecar = json.loads((tmp_path / "figures" / "poincare_uncertainty__separation.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == "mnist"
    assert "MNIST" in sidecar["dataset"]["description"] and "Omniglot" in sidecar["dataset"]["description"]
    table = pd.read_csv(tmp_path / "figures" / "poincare_uncertainty__separation.csv")
    assert set(table.geometry) == {"euclidean", "hyperbolic"} and table.auroc_mean.between(0, 1).all()
    assert set(zip(table.geometry, table.score)) == {(g, s) for g in ("euclidean", "hyperbolic")
                                                     for s in ("radius", "p_max")}  # the 2 × 2 design
    pixels = pd.read_csv(tmp_path / "figures" / "poincare_uncertainty__pixel_baseline.csv")
    assert pixels.auroc.between(0.5, 1).all() and set(pixels.images) == {"as scored", "as loaded (before normalisation)"}
    scored = pixels[pixels.images == "as scored"]  # the OOD images as the models score them: normalised
    assert scored.ood.tolist() == table.ood.unique().tolist()
    # normalised, no histogram statistic gives them away; the stroke width may (these generated strokes differ)
    assert ((scored.auroc < 0.75) | scored.statistic.str.startswith("stroke width")).all()
    claims = pd.read_csv(tmp_path / "figures" / "poincare_uncertainty__claims.csv")
    assert claims.claim.str.contains("better than the best pixel statistic").sum() == len(scored)  # one dim
    assert claims.claim.str.startswith("geometry: ").sum() == len(scored)
    assert claims.claim.str.startswith("score: ").sum() == len(scored)


def test_real_dataset_without_data_root_is_refused_before_any_kernel(tmp_path):
    with pytest.raises(ParameterError, match="data_root is empty") as refused:
        run_notebooks(["poincare_uncertainty"], profile="full", overrides={"skip_missing_ood": "false"},
                      out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)
    assert "dataset='mnist'" in str(refused.value) and "MNIST/raw/train-images-idx3-ubyte" in str(refused.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figures").exists()


@pytest.mark.notebook
def test_smoke_rerun_reuses_every_trained_model_and_models_has_one_row_each(tmp_path, fresh_grid_cache):
    def smoke(run: str):
        result = run_notebooks(["poincare_uncertainty"], profile="smoke", out_dir=tmp_path / run,
                               runs_dir=tmp_path / "runs", timeout=400)[0]
        assert result.status == "ok", f"{result.failing_cell} {result.error}"
        return tmp_path / run

    first, second = smoke("first"), smoke("second")
    runs, rerun = (pd.read_csv(out / "poincare_uncertainty__runs.csv") for out in (first, second))
    assert (runs.source == "computed").all() and (rerun.source == "cached").all()
    pd.testing.assert_frame_equal(runs.drop(columns="source"), rerun.drop(columns="source"))
    assert len(list((fresh_grid_cache / "grids" / "poincare_uncertainty").glob("*.pt"))) == 2
    models = pd.read_csv(first / "poincare_uncertainty__models.csv")
    assert sorted(models.arm) == ["euclidean, d=2", "hyperbolic, d=2"] and set(models.seed) == {0}  # 1 seed, d = 2
    assert set(models.stopped_by) <= {"patience", "max_steps"} and (models.steps == 1).all()  # smoke: 1 epoch
    pd.testing.assert_frame_equal(models, pd.read_csv(second / "poincare_uncertainty__models.csv"))
    curves = pd.read_csv(first / "poincare_uncertainty__curves.csv")
    assert curves.groupby("arm").epoch.max().to_dict() == dict(zip(models.arm, models.steps))
    assert curves.val_score.between(0, 1).all()
    observations = (second / "poincare_uncertainty__observations.md").read_text()
    assert "stopped by patience" in observations and "0 trained in this run, 2 reused from the cache" in observations
    assert (second / "poincare_uncertainty__training_curves.png").exists()
