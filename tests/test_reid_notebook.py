"""The re-ID notebook: its full profile on tiny generated Market-1501 and DukeMTMC-reID folders, its smoke
profile on the embedded stand-in (every trained model stored, a rerun reusing them all), and its profile contract
(ResNet-50 on real data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from protolab.runner.execute import run_notebooks
from protolab.runner.parameters import ParameterError
from tests.layouts import write_dukemtmc, write_market1501

ROOT = Path(__file__).resolve().parents[1]

# Fast overrides of the full profile: tiny images, a small backbone, one epoch, one validation identity. Everything
# else (both schedules, flip + pad-crop + random erasing, the full query/gallery evaluation) is the full profile's own.
FAST = {"image_size": "[32, 16]", "backbone": "conv4", "dims": "[4, 8]", "epochs": "1", "n_seeds": "2",
        "batch_size": "8", "pad": "2", "strip_queries": "2", "val_identities": "1"}

# Training images added to the generated releases so that any identity held out for validation has a query with a
# match from another camera: after them, every training identity has two images from one camera and one from
# another (the first image per camera is a validation query, the rest its gallery).
MORE_TRAINING = {"Market-1501-v15.09.15": ["0002_c1s1_000601_01.jpg", "0007_c3s3_071101_01.jpg",
                                           "0007_c4s3_071201_01.jpg"],
                 "DukeMTMC-reID": ["0001_c2_f0046999.jpg", "0005_c1_f0000099.jpg", "0005_c3_f0000500.jpg"]}


def with_validation_matches(root: Path) -> Path:
    """Add :data:`MORE_TRAINING` (copies of a training image) to the release under ``root``; returns ``root``."""
    for release, names in MORE_TRAINING.items():
        folder = root / release / "bounding_box_train"
        if folder.is_dir():
            source = sorted(folder.glob("*.jpg"))[0]
            for name in names:
                shutil.copy(source, folder / name)
    return root


def test_full_profile_is_the_real_protocol_with_resnet50() -> None:
    full = yaml.safe_load((ROOT / "notebooks" / "profiles.yaml").read_text())["reid_embeddings"]["full"]
    assert full["backbone"] == "resnet50" and full["dataset"] == "market1501"
    assert full["image_size"] == [256, 128] and full["flip"] is True and full["erasing"] > 0 and full["pad"] > 0
    assert set(full["schedules"]) == {"sch1", "sch2"} and min(full["dims"]) <= 8


@pytest.mark.notebook
@pytest.mark.parametrize("dataset, write, title", [("market1501", write_market1501, "Market-1501"),
                                                   ("dukemtmc", write_dukemtmc, "DukeMTMC-reID")])
def test_full_profile_runs_on_generated_release_files(tmp_path: Path, dataset: str, write, title: str) -> None:
    root = with_validation_matches(write(tmp_path / "data"))
    result = run_notebooks(["reid_embeddings"], profile="full",
                           overrides={"dataset": dataset, "data_root": str(root), **FAST},
                           out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=600)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    figures = tmp_path / "figures"
    sidecar = json.loads((figures / "reid_embeddings__results.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == dataset
    assert title in sidecar["dataset"]["description"]
    results = pd.read_csv(figures / "reid_embeddings__results.csv")
    assert set(results.geometry) == {"euclidean", "hyperbolic"} and set(results.schedule) == {"sch1", "sch2"}
    assert set(results["dim"]) == {4, 8} and results.rank1_mean.between(0, 100).all() and set(results.seeds) == {2}
    claims = pd.read_csv(figures / "reid_embeddings__claims.csv")
    # 2 dims + 1 low-vs-high claim, per schedule and per metric (Rank-1 and mAP both primary)
    assert len(claims) == 12 and claims.verdict.notna().all()
    assert claims.claim.str.startswith("Hyperbolic mAP > Euclidean").sum() == 4
    assert claims.claim.str.startswith("Hyperbolic Rank-1 > Euclidean").sum() == 4
    for name in ("metrics_vs_dim", "cmc", "retrieval_euclidean", "retrieval_hyperbolic", "paper_table", "observations",
                 "training_curves", "curves"):
        assert list(figures.glob(f"reid_embeddings__{name}.*")), name
    models = pd.read_csv(figures / "reid_embeddings__models.csv")
    assert len(models) == 2 * 2 * 2 * 2 and set(models.arm) == {f"{g}, d={d}, {s}" for g in ("euclidean", "hyperbolic")
                                                                for d in (4, 8) for s in ("sch1", "sch2")}


@pytest.mark.notebook
def test_full_profile_with_its_own_resnet50_runs_on_generated_market_files(tmp_path: Path) -> None:
    root = with_validation_matches(write_market1501(tmp_path / "data"))
    result = run_notebooks(["reid_embeddings"], profile="full",
                           overrides={"data_root": str(root), "image_size": "[64, 32]", "dims": "[8]", "epochs": "1",
                                      "n_seeds": "1", "batch_size": "4", "schedules": "[sch2]", "val_identities": "1"},
                           out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=600)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    sidecar = json.loads((tmp_path / "figures" / "reid_embeddings__results.json").read_text())
    assert sidecar["parameters"]["backbone"] == "resnet50" and sidecar["parameters"]["flip"] is True


@pytest.mark.notebook
def test_smoke_profile_on_the_embedded_stand_in_and_its_rerun_from_the_stored_models(tmp_path: Path,
                                                                                   fresh_grid_cache: Path) -> None:
    def smoke(run: str) -> Path:
        result = run_notebooks(["reid_embeddings"], profile="smoke", out_dir=tmp_path / run,
                               runs_dir=tmp_path / "runs", timeout=300)[0]
        assert result.status == "ok", f"{result.failing_cell} {result.error}"
        return tmp_path / run

    first, second = smoke("first"), smoke("second")
    layout = pd.read_csv(first / "reid_embeddings__paper_table.csv")
    assert list(layout.columns[:3]) == ["dataset", "schedule", "dim"] and set(layout.dataset) == {"reid-glyphs"}
    text = (first / "reid_embeddings__observations.md").read_text()
    assert "embedded stand-in" in text and "Claim" in text and "stopped by patience" in text
    runs, rerun = (pd.read_csv(out / "reid_embeddings__runs.csv") for out in (first, second))
    assert (runs.source == "computed").all() and (rerun.source == "cached").all()
    pd.testing.assert_frame_equal(runs.drop(columns="source"), rerun.drop(columns="source"))
    models = pd.read_csv(first / "reid_embeddings__models.csv")
    assert sorted(models.arm) == sorted(f"{g}, d={d}, sch1" for g in ("euclidean", "hyperbolic") for d in (8, 32))
    assert len(models) == len(runs) == len(list((fresh_grid_cache / "grids" / "reid_embeddings").glob("*.pt")))
    assert (models.steps <= 2).all() and set(models.stopped_by) <= {"patience", "max_steps"}  # smoke: 2 epochs
    pd.testing.assert_frame_equal(models, pd.read_csv(second / "reid_embeddings__models.csv"))
    curves = pd.read_csv(first / "reid_embeddings__curves.csv")
    assert curves.groupby("arm").epoch.max().to_dict() == dict(zip(models.arm, models.steps))
    assert "0 trained in this run, 4 reused from the cache" in (second / "reid_embeddings__observations.md").read_text()
    for name in ("retrieval_euclidean", "retrieval_hyperbolic", "training_curves"):  # strips from the stored weights
        assert (second / f"reid_embeddings__{name}.png").exists(), name


@pytest.mark.notebook
def test_real_dataset_without_files_is_refused_before_any_kernel(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="DukeMTMC-reID") as refused:
        run_notebooks(["reid_embeddings"], profile="full", overrides={"dataset": "dukemtmc",
                      "data_root": str(tmp_path / "nowhere")},
                      out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)
    assert "dataset='dukemtmc'" in str(refused.value) and not (tmp_path / "runs").exists()
