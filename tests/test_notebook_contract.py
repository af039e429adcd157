"""Every committed notebook keeps the contract of DESIGN.md, and every one runs in the smoke profile."""

from __future__ import annotations

import json

import nbformat
import pytest

from protolab.runner.execute import run_notebooks
from protolab.runner.parameters import PROFILES, REQUIRED_PARAMETERS, discover
from protolab.runner.project import notebooks_dir

EXPERIMENTS = discover()


def test_there_are_notebooks():
    assert EXPERIMENTS, f"no notebooks found in {notebooks_dir()}"


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_parameters_cell_declares_the_required_parameters_with_help(name):
    parameters = EXPERIMENTS[name].parameters
    assert set(REQUIRED_PARAMETERS) <= set(parameters), f"{name} lacks {set(REQUIRED_PARAMETERS) - set(parameters)}"
    assert all(parameter.help for parameter in parameters.values()), f"{name}: every parameter needs a # help"
    assert parameters["profile"].default == "default" and parameters["out_dir"].default == "figures"
    assert parameters["device"].default == "auto"
    for profile in PROFILES:
        EXPERIMENTS[name].resolve(profile)


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_notebook_is_committed_clean_and_records_its_outputs(name):
    notebook = nbformat.read(EXPERIMENTS[name].path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), f"{name} has outputs"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    assert f'figures.start("{name}", globals())' in code[1].source, "second code cell must call figures.start"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    assert any("save_text(" in cell.source for cell in code), f"{name} must save a computed observations text"


@pytest.mark.notebook
def test_every_notebook_runs_in_the_smoke_profile_and_reaches_the_report(tmp_path):
    results = run_notebooks(profile="smoke", jobs=2, timeout=600, out_dir=tmp_path / "figures",
                            runs_dir=tmp_path / "runs")
    failures = {r.notebook: f"{r.failing_cell} {r.error}" for r in results if r.status != "ok"}
    assert not failures, failures
    report = (tmp_path / "figures" / "REPORT.md").read_text()
    for name, experiment in EXPERIMENTS.items():
        sidecars = [json.loads(path.read_text()) for path in (tmp_path / "figures").glob(f"{name}__*.json")]
        assert any(record["kind"] == "figure" for record in sidecars), f"{name} wrote no figure"
        assert all(record["profile"] == "smoke" and record["dataset"]["description"] for record in sidecars)
        assert f"## {experiment.title}" in report
