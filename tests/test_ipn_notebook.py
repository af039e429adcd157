"""The IPN GZSL notebook's full profile reads a dataset written in the xlsa17 layout."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from protolab.data.xlsa17 import write_xlsa17
from protolab.run import run_notebooks


def _awa2_like(root, n_classes: int = 8, per_class: int = 12, dim: int = 16, n_att: int = 6, seed: int = 0):
    """Classes 0–3 train, 4–5 val (together seen), 6–7 unseen; features = attributes · M + noise."""
    rng = np.random.default_rng(seed)
    original = rng.uniform(0, 100, (n_classes, n_att))
    attributes = original / np.linalg.norm(original, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_classes), per_class)
    features = attributes[labels] @ rng.normal(size=(n_att, dim)) + 0.1 * rng.normal(size=(len(labels), dim))
    index = np.arange(len(labels))
    test_part = (index % per_class) < 3
    seen = labels < 6
    trainval = index[seen & ~test_part]
    splits = dict(trainval_loc=trainval, train_loc=trainval[labels[trainval] < 4],
                  val_loc=trainval[labels[trainval] >= 4], test_seen_loc=index[seen & test_part],
                  test_unseen_loc=index[~seen])
    write_xlsa17(root, "AWA2", features=features, labels=labels, attributes=attributes,
                 original_attributes=original, class_names=[f"animal_{c}" for c in range(n_classes)], splits=splits)
    return root


@pytest.mark.notebook
def test_full_profile_runs_on_xlsa17_files(tmp_path):
    root = _awa2_like(tmp_path / "data")
    # Tiny epochs and widths keep the test fast; the full profile's lr (2e-05) is kept.
    result = run_notebooks(["ipn_gzsl"], profile="full", overrides={
        "data_root": str(root), "epochs": "2", "n_seeds": "2", "prototype_dim": "16", "graph_dim": "8",
        "hidden_dim": "16", "n_way": "4", "episodes_per_epoch": "3", "plot_classes": "6",
        "ridge_grid": "0.1,10"}, out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)[0]
    assert result.status == "ok", f"{result.failing_cell} {result.error}"
    figures = tmp_path / "figures"
    table = pd.read_csv(figures / "ipn_gzsl__gzsl.csv")
    assert list(table.method) == ["IPN", "ESZSL", "attribute regression"]
    assert (table.seeds == 2).all() and table.H_mean.between(0, 100).all()
    assert set(table.paper) <= {"not available here", "H 11.0 (Xian et al. 2018)"}
    sidecar = json.loads((figures / "ipn_gzsl__gzsl.json").read_text())
    assert sidecar["profile"] == "full" and sidecar["dataset"]["name"] == "AWA2"
    assert sidecar["parameters"]["lr"] == 2e-05
    assert "AWA2" in sidecar["dataset"]["description"]
    for figure in ("training_curves", "attention_heatmaps", "category_graphs"):
        assert (figures / f"ipn_gzsl__{figure}.png").exists()
    assert "IPN" in (figures / "ipn_gzsl__observations.md").read_text()
