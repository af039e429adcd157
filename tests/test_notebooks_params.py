"""Typed parameters cells and profiles (lib/protolab/runner/parameters.py)."""

from __future__ import annotations

import pytest

from tests.conftest import STANDARD_PARAMETERS, write_notebook
from protolab.runner.parameters import ParameterError, ParamType, discover, parse_parameters_cell


def test_parameters_cell_is_parsed_with_types_defaults_and_help():
    parameters = parse_parameters_cell('epochs: int = 3  # passes = epochs\nshots: list[int] = [1, 5]\n'
                                       'lr: float = 1e-3  # step size\nroot: str | None = None\n')
    assert parameters["epochs"].default == 3 and parameters["epochs"].help == "passes = epochs"
    assert str(parameters["shots"].type) == "list[int]" and parameters["shots"].default == [1, 5]
    assert parameters["lr"].default == pytest.approx(1e-3)
    assert parameters["root"].type.optional and parameters["root"].default is None


def test_a_long_parameter_spans_lines_and_its_help_continues_on_indented_comments():
    parameters = parse_parameters_cell('names: list[str] = [\n    "a", "b"]  # which names:\n    #   a or b\n'
                                       '# a heading, not help\nepochs: int = 3  # passes\n')
    assert parameters["names"].default == ["a", "b"] and parameters["names"].help == "which names: a or b"
    assert parameters["epochs"].help == "passes"


@pytest.mark.parametrize("source, fragment", [
    ("epochs = 3\n", "name: type = literal"),
    ("epochs: int = 3 + x\n", "epochs"),
    ("epochs: dict = {}\n", "epochs"),
    ("epochs: int = 'three'\n", "epochs"),
])
def test_malformed_parameters_cells_are_refused_naming_the_problem(source, fragment):
    with pytest.raises(ParameterError, match=fragment):
        parse_parameters_cell(source)


@pytest.mark.parametrize("annotation, text, expected", [
    ("int", "7", 7), ("float", "2", 2.0), ("bool", "false", False), ("bool", "yes", True),
    ("str", "cub", "cub"), ("list[int]", "1,5", [1, 5]), ("list[int]", "[1, 5]", [1, 5]),
    ("list[str]", "a,b", ["a", "b"]), ("str | None", "none", None), ("float | None", "0.5", 0.5),
    ('Literal["a", "b"]', "b", "b"), ("list[Literal[1, 5]]", "1,5", [1, 5]), ("Literal[0.5, 1.0] | None", "none", None),
    ("Literal[0.5, 1.0]", "1", 1.0),
])
def test_command_line_text_is_converted_to_the_declared_type(annotation, text, expected):
    assert ParamType.parse_annotation(annotation).parse_text("x", text) == expected


@pytest.mark.parametrize("annotation, text", [("int", "2.5"), ("int", "abc"), ("bool", "maybe"),
                                              ("list[int]", "1,x"), ("float", ""), ('Literal["a", "b"]', "c"),
                                              ("list[Literal[1, 5]]", "1,2")])
def test_ill_typed_command_line_text_names_the_parameter(annotation, text):
    with pytest.raises(ParameterError, match="'epochs'"):
        ParamType.parse_annotation(annotation).parse_text("epochs", text)


def test_choices_are_shown_in_the_type_and_only_typing_literal_may_be_imported():
    parameters = parse_parameters_cell('from typing import Literal\nmode: Literal["a", "b"] | None = None  # m\n')
    assert str(parameters["mode"].type) == "Literal['a', 'b'] | None" and parameters["mode"].type.choices == ("a", "b")
    with pytest.raises(ParameterError, match="name: type = literal"):
        parse_parameters_cell("import os\nmode: str = 'a'\n")


def test_bool_is_not_accepted_for_int_and_int_is_accepted_for_float():
    with pytest.raises(ParameterError):
        ParamType("int").check("n", True)
    assert ParamType("float").check("lr", 1) == 1.0 and isinstance(ParamType("float").check("lr", 1), float)


def test_profiles_override_defaults_and_bad_profile_entries_are_refused(tmp_path):
    write_notebook(tmp_path / "exp.ipynb", STANDARD_PARAMETERS + "epochs: int = 10  # passes\n")
    (tmp_path / "profiles.yaml").write_text("exp:\n  smoke: {epochs: 1}\n")
    experiment = discover(tmp_path)["exp"]
    assert experiment.resolve("smoke")["epochs"] == 1
    assert experiment.resolve("default")["epochs"] == 10
    assert experiment.resolve("smoke", {"epochs": "4"})["epochs"] == 4
    with pytest.raises(ParameterError, match="'epoch'"):
        experiment.resolve("smoke", {"epoch": "4"})
    (tmp_path / "profiles.yaml").write_text("exp:\n  smoke: {epochs: fast}\n")
    with pytest.raises(ParameterError, match="'epochs'"):
        discover(tmp_path)
    (tmp_path / "profiles.yaml").write_text("ghost:\n  smoke: {epochs: 1}\n")
    with pytest.raises(ParameterError, match="ghost"):
        discover(tmp_path)


def test_first_code_cell_must_be_tagged_parameters(tmp_path):
    path = write_notebook(tmp_path / "exp.ipynb", STANDARD_PARAMETERS)
    text = path.read_text().replace('"parameters"', '"other"')
    path.write_text(text)
    with pytest.raises(ParameterError, match="tagged 'parameters'"):
        discover(tmp_path)
