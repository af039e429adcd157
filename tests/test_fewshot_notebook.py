"""The few-shot table notebook's full profile reads MiniImageNet files in Ravi & Larochelle's CSV layout."""

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
        "euclidean-1-shot-5way.pt", "hyperbolic-1-shot-c0.01-5way.pt", "hyperbolic-1-shot-c0.1-5way.pt"]
    assert not list((tmp_path / "figures").glob("*.pt"))
