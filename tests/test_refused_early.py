"""Problems the runner reports before any kernel starts, naming the parameter or the file (issue 23, item 6)."""

from __future__ import annotations

from pathlib import Path

import pytest

from protolab.runner.execute import plan
from protolab.runner.parameters import ParameterError, discover

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def experiments():
    return discover(NOTEBOOKS)


@pytest.mark.parametrize("notebook", ["ipn_gzsl", "ipn_ablations", "consistency_study"])
def test_an_unknown_dataset_name_on_a_free_text_parameter_is_refused(experiments, notebook):
    with pytest.raises(ParameterError, match=r"dataset='glyph_zsl': unknown dataset 'glyph_zsl'"):
        plan(experiments, [notebook], "smoke", {"dataset": "glyph_zsl"})


def test_a_missing_xlsa17_file_is_named(experiments, tmp_path):
    (tmp_path / "AWA2").mkdir()
    (tmp_path / "AWA2" / "res101.mat").write_bytes(b"")
    with pytest.raises(ParameterError) as refused:
        plan(experiments, ["ipn_gzsl"], "smoke", {"dataset": "AWA2", "data_root": str(tmp_path)})
    message = str(refused.value)
    assert f"{tmp_path / 'AWA2' / 'att_splits.mat'}   <- missing" in message
    assert f"{tmp_path / 'AWA2' / 'res101.mat'}\n" in message, "the file present is listed, not marked"


def test_a_labelled_choice_the_data_layer_does_not_know_is_not_a_problem(experiments):
    assert plan(experiments, ["00_data_overview"], "smoke", {})["00_data_overview"]["dataset"] == "embedded"


def test_grid_cells_on_slurm_without_slurm_are_refused_before_any_kernel(tmp_path, monkeypatch):
    from protolab.runner.execute import run_notebooks

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch, srun, squeue or scancel
    with pytest.raises(ParameterError, match=r"-p executor=slurm \(ipn_ablations\): .*sbatch"):
        run_notebooks(["ipn_ablations"], profile="smoke", overrides={"executor": "slurm"}, notebooks=NOTEBOOKS,
                      runs_dir=tmp_path / "runs", out_dir=tmp_path / "out")
    assert not (tmp_path / "runs").exists()


def test_a_dataset_cache_that_cannot_be_written_is_refused_before_any_kernel(tmp_path, monkeypatch):
    from protolab.runner.execute import run_notebooks
    from protolab.runner.project import ProjectError

    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(ProjectError, match="dataset cache .*a-file.* is not a writable directory"):
        run_notebooks(["00_data_overview"], profile="smoke", notebooks=NOTEBOOKS, runs_dir=tmp_path / "runs",
                      out_dir=tmp_path / "out")
    assert not (tmp_path / "runs").exists()


def test_lowercase_cub_on_the_zero_shot_notebooks_is_xlsa17_cub_for_the_check_and_the_loader(experiments, tmp_path):
    """`cub` is the few-shot CUB-200-2011 image set to check_dataset; on the IPN notebooks it is xlsa17's CUB,
    for the runner's check as for load_zsl."""
    from protolab.data import check_dataset, load_zsl
    from protolab.data.errors import DatasetNotFoundError

    (tmp_path / "CUB").mkdir()
    with pytest.raises(ParameterError, match=r"(?s)dataset='cub': xlsa17 dataset 'CUB'.*att_splits.mat   <- missing"):
        plan(experiments, ["ipn_gzsl"], "smoke", {"dataset": "cub", "data_root": str(tmp_path)})
    with pytest.raises(DatasetNotFoundError, match="att_splits.mat"):
        load_zsl("cub", tmp_path)
    with pytest.raises(DatasetNotFoundError, match="CUB_200_2011"):  # the few-shot family's own check is unchanged
        check_dataset("cub", tmp_path)
