"""The IPN GZSL notebook's full profile reads a dataset written in the xlsa17 layout."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from protolab.runner.execute import run_notebooks
from tests.layouts import write_awa2_like


@pytest.mark.notebook
def test_full_profile_runs_on_xlsa17_files(tmp_path):
    root = write_awa2_like(tmp_path / "data")
    # Tiny epochs and widths keep the test fast; the full profile's tuning grid (around the official 2e-5) is kept.
    result = run_notebooks(["ipn_gzsl"], profile="full", overrides={
        "data_root": str(root), "epochs": "2", "n_seeds": "2", "prototype_dim": "16", "graph_dim": "8",
        "hidden_dim": "16", "n_way": "4", "episodes_per_epoch": "3", "plot_classes": "6",
        "ridge_grid": "0.1,10"}, out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    figures = tmp_path / "figures"
    table = pd.read_csv(figures / "ipn_gzsl__gzsl.csv")
    assert list(table.method) == ["IPN", "no graph (K = 0)", "ESZSL", "attribute regression"]
    assert (table.seeds == 2).all()
    # published numbers only where recorded (ESZSL on AWA2), never filled in for the others
    assert table.paper.tolist() == ["not available here", "not available here", "H 11.0 (Xian et al. 2018)",
                                    "not available here"]
    sidecar = json.loads((figures / "ipn_gzsl__gzsl.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == "AWA2"
    assert sidecar["parameters"]["tuning_consistency_lrs"] == [2e-05, 4e-05]
    tuning = pd.read_csv(figures / "ipn_gzsl__tuning.csv")  # 4 settings per arm, one chosen each
    assert tuning.groupby("variant").size().tolist() == [4, 4] and tuning.chosen.sum() == 2
    assert "AWA2" in sidecar["dataset"]["description"]
    for figure in ("training_curves", "attention_heatmaps", "category_graphs"):
        assert (figures / f"ipn_gzsl__{figure}.png").exists()
    assert "IPN" in (figures / "ipn_gzsl__observations.md").read_text()
    # the full profile switches to the official code's semantic input and episodes rule
    assert sidecar["parameters"]["attributes"] == "original"
    assert sidecar["parameters"]["episodes_rule"] == "official"
    claims = pd.read_csv(figures / "ipn_gzsl__claims.csv")
    assert claims.claim.tolist() == ["IPN beats ESZSL (H)", "IPN beats attribute regression (H)",
                                     "IPN beats its prototype scorer without a graph (K = 0) (H)"]
    assert (claims.paper_evidence == "not available offline").all()
    assert set(claims.verdict) <= {"holds", "does not hold", "inconclusive"}
