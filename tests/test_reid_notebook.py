"""The re-ID notebook: its full profile on tiny generated Market-1501 and DukeMTMC-reID folders, its smoke
profile on the embedded stand-in, and its profile contract (ResNet-50 on real data)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from protolab.runner.execute import run_notebooks
from protolab.runner.parameters import ParameterError
from tests.layouts import write_dukemtmc, write_market1501

ROOT = Path(__file__).resolve().parents[1]

# Fast overrides of the full profile: tiny images, a small backbone, one epoch. Everything else (both
# schedules, flip + pad-crop + random erasing, the full query/gallery evaluation) is the full profile's own.
FAST = {"image_size": "[32, 16]", "backbone": "conv4", "dims": "[4, 8]", "epochs": "1", "n_seeds": "2",
        "batch_size": "8", "pad": "2", "strip_queries": "2"}


def test_full_profile_is_the_real_protocol_with_resnet50() -> None:
    full = yaml.safe_load((ROOT / "notebooks" / "profiles.yaml").read_text())["reid_embeddings"]["full"]
    assert full["backbone"] == "resnet50" and full["dataset"] == "market1501"
    assert full["image_size"] == [256, 128] and full["flip"] is True and full["erasing"] > 0 and full["pad"] > 0
    assert set(full["schedules"]) == {"sch1", "sch2"} and min(full["dims"]) <= 8


@pytest.mark.notebook
@pytest.mark.parametrize("dataset, write, title", [("market1501", write_market1501, "Market-1501"),
                                                   ("dukemtmc", write_dukemtmc, "DukeMTMC-reID")])
def test_full_profile_runs_on_generated_release_files(tmp_path: Path, dataset: str, write, title: str) -> None:
    root = write(tmp_path / "data")
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
    assert len(claims) == 6 and claims.verdict.notna().all()  # 2 dims + 1 low-vs-high claim, per schedule
    for name in ("metrics_vs_dim", "cmc", "retrieval_euclidean", "retrieval_hyperbolic", "paper_table", "observations"):
        assert list(figures.glob(f"reid_embeddings__{name}.*")), name


@pytest.mark.notebook
def test_full_profile_with_its_own_resnet50_runs_on_generated_market_files(tmp_path: Path) -> None:
    root = write_market1501(tmp_path / "data")
    result = run_notebooks(["reid_embeddings"], profile="full",
                           overrides={"data_root": str(root), "image_size": "[64, 32]", "dims": "[8]", "epochs": "1",
                                      "n_seeds": "1", "batch_size": "4", "schedules": "[sch2]"},
                           out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=600)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    sidecar = json.loads((tmp_path / "figures" / "reid_embeddings__results.json").read_text())
    assert sidecar["parameters"]["backbone"] == "resnet50" and sidecar["parameters"]["flip"] is True


@pytest.mark.notebook
def test_smoke_profile_on_the_embedded_stand_in(tmp_path: Path) -> None:
    result = run_notebooks(["reid_embeddings"], profile="smoke", out_dir=tmp_path / "figures",
                           runs_dir=tmp_path / "runs", timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    layout = pd.read_csv(tmp_path / "figures" / "reid_embeddings__paper_table.csv")
    assert list(layout.columns[:3]) == ["dataset", "schedule", "dim"] and set(layout.dataset) == {"reid-glyphs"}
    text = (tmp_path / "figures" / "reid_embeddings__observations.md").read_text()
    assert "embedded stand-in" in text and "Claim" in text


@pytest.mark.notebook
def test_real_dataset_without_files_is_refused_before_any_kernel(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="DukeMTMC-reID") as refused:
        run_notebooks(["reid_embeddings"], profile="full", overrides={"dataset": "dukemtmc",
                      "data_root": str(tmp_path / "nowhere")},
                      out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)
    assert "dataset='dukemtmc'" in str(refused.value) and not (tmp_path / "runs").exists()
