"""Every committed notebook keeps the contract of DESIGN.md (that every one runs to its end and reaches the report:
tests/test_dry_runs.py)."""

from __future__ import annotations

import nbformat
import pytest

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


