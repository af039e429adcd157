"""The Poincaré-uncertainty notebook's full profile reads the real MNIST/Omniglot layouts."""

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


def test_real_dataset_without_data_root_is_refused_before_any_kernel(tmp_path):
    with pytest.raises(ParameterError, match="data_root is empty") as refused:
        run_notebooks(["poincare_uncertainty"], profile="full", overrides={"skip_missing_ood": "false"},
                      out_dir=tmp_path / "figures", runs_dir=tmp_path / "runs", timeout=300)
    assert "dataset='mnist'" in str(refused.value) and "MNIST/raw/train-images-idx3-ubyte" in str(refused.value)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "figures").exists()
