"""Valid ranges declared beside the types in parameters cells (`# [≥ 1] help`), checked wherever a value enters:
profiles, the runner's plan (before any kernel starts), figures.start, and shown by `protolab list`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import STANDARD_PARAMETERS, write_notebook
from protolab import figures
from protolab.runner.cli import main
from protolab.runner.execute import plan
from protolab.runner.parameters import (REQUIRED_PARAMETERS, ParameterError, check_values, discover,
                                        parse_parameters_cell)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPERIMENTS = discover(NOTEBOOKS)


def _refused(name: str, overrides: dict[str, str], profile: str = "smoke") -> str:
    with pytest.raises(ParameterError) as caught:
        plan(EXPERIMENTS, [name], profile, overrides)
    return str(caught.value)


@pytest.mark.parametrize("name, overrides, fragment", [
    ("ipn_gzsl", {"epochs": "0"}, "parameter 'epochs' must be ≥ 1, got 0"),
    ("poincare_uncertainty", {"epochs": "0"}, "parameter 'epochs' must be ≥ 1, got 0"),
    ("poincare_uncertainty", {"n_seeds": "0"}, "parameter 'n_seeds' must be ≥ 1, got 0"),
    ("ipn_ablations", {"n_seeds": "0"}, "parameter 'n_seeds' must be ≥ 1, got 0"),
    ("fewshot_tables", {"test_episodes": "0"}, "parameter 'test_episodes' must be ≥ 1, got 0"),
    ("fewshot_tables", {"image_size": "3"}, "parameter 'image_size' must be ≥ 16, got 3"),
    ("00_data_overview", {"image_size": "3"}, "parameter 'image_size' must be ≥ 8, got 3"),
    ("reid_embeddings", {"image_size": "[24, 3]"}, "parameter 'image_size': every item must be ≥ 16, got [24, 3]"),
    ("reid_embeddings", {"image_size": "24"}, "parameter 'image_size' must have 2 items, got 1: [24]"),
    ("fewshot_tables", {"epochs": "0"}, "parameter 'epochs' must be ≥ 1, got 0"),
    ("fewshot_tables", {"episodes": "0"}, "parameter 'episodes' must be ≥ 1, got 0"),
    ("fewshot_tables", {"train_way": "5"}, "parameter 'train_way' must have as many items as shots (2), got 1: [5]"),
    ("fewshot_tables", {"curvatures": "[0]"}, "parameter 'curvatures': every item must be > 0, got [0.0]"),
    ("fewshot_tables", {"euclidean_lrs": "[]"}, "parameter 'euclidean_lrs' must be non-empty, got []"),
    ("reid_embeddings", {"erasing": "1.5"}, "parameter 'erasing' must be ≤ 1, got 1.5"),
    ("reid_embeddings", {"dims": "[]"}, "parameter 'dims' must be non-empty, got []"),
    ("ipn_gzsl", {"episode_unseen": "30"}, "parameter 'episode_unseen' must be < n_way (30), got 30"),
    ("poincare_uncertainty", {"clip_r": "0"}, "parameter 'clip_r' must be > 0, got 0.0"),
    ("delta_hyperbolicity", {"seed": "-1"}, "parameter 'seed' must be ≥ 0, got -1"),
    ("ipn_gzsl", {"attributes": "orig"}, "parameter 'attributes': 'orig' is not one of the allowed values"),
])
def test_an_out_of_range_override_is_refused_before_any_kernel_naming_the_parameter(name, overrides, fragment):
    message = _refused(name, overrides)
    assert message.startswith("refused before running anything") and f"{name}: {fragment}" in message


def test_an_empty_shots_list_blames_shots_not_train_way():
    message = _refused("fewshot_tables", {"shots": "[]"})
    assert "parameter 'shots' must be non-empty, got []" in message and "train_way" not in message


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
@pytest.mark.parametrize("device, accepted", [("auto", True), ("cpu", True), ("cuda", True), ("cuda:1", True),
                                              ("gpu", False), ("cuda:", False), ("cuda:x", False), ("CPU", False)])
def test_every_notebook_accepts_only_torch_device_names(name, device, accepted):
    if accepted:
        assert plan(EXPERIMENTS, [name], "smoke", {"device": device})[name]["device"] == device
    else:
        assert "parameter 'device' must be auto, cpu, cuda or cuda:N" in _refused(name, {"device": device})


def test_every_bad_override_of_every_notebook_is_reported_in_one_error():
    with pytest.raises(ParameterError) as caught:
        plan(EXPERIMENTS, ["fewshot_tables", "poincare_uncertainty"], "smoke",
             {"epochs": "0", "episodes": "0", "device": "gpu", "c": "-1", "shots": "1,x"})
    message = str(caught.value)
    for problem in ["fewshot_tables: parameter 'epochs'", "fewshot_tables: parameter 'episodes'",
                    "fewshot_tables: parameter 'device'",
                    "fewshot_tables: parameter 'shots' expects list[int]", "poincare_uncertainty: parameter 'epochs'",
                    "poincare_uncertainty: parameter 'device'", "poincare_uncertainty: parameter 'c'"]:
        assert problem in message, problem
    assert len(message.splitlines()) == 1 + 7  # c is poincare_uncertainty's (fewshot_tables tunes curvatures)
    assert "train_way" not in message  # shots was ill-typed: nothing is compared with it


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_profile_satisfies_every_declared_range(name):
    experiment = EXPERIMENTS[name]
    assert set(experiment.profile_names) >= {"smoke", "default", "full"}
    for profile in experiment.profile_names:
        values = experiment.resolve(profile)
        assert check_values(experiment.parameters, values) == values, profile


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_notebook_declares_the_required_ranges_and_a_range_for_every_number(name):
    parameters = EXPERIMENTS[name].parameters
    for required, declared in REQUIRED_PARAMETERS.items():
        assert set(declared.range.clauses) <= set(parameters[required].range.clauses), required
    for parameter in parameters.values():
        if parameter.type.scalar in {"int", "float"} and not parameter.type.choices:
            assert parameter.range.clauses, f"{name}: {parameter.name!r} declares no range"


def test_a_profile_value_out_of_range_is_refused_naming_profiles_yaml(tmp_path):
    write_notebook(tmp_path / "exp.ipynb", STANDARD_PARAMETERS + "epochs: int = 10  # [≥ 1] passes\n")
    (tmp_path / "profiles.yaml").write_text("exp:\n  smoke: {epochs: 0}\n")
    with pytest.raises(ParameterError, match="profiles.yaml, exp, smoke: parameter 'epochs' must be ≥ 1, got 0"):
        discover(tmp_path)


CELL = '''from typing import Literal
epochs: int = 10  # [≥ 1] passes
lr: float = 0.001  # [> 0] step size
erasing: float = 0.5  # [≥ 0, ≤ 1] probability
clip_r: float | None = None  # [> 0] radius
    # (None: no clipping)
shots: list[int] = [1, 5]  # [non-empty, ≥ 1] support images
train_way: list[int] = [30, 20]  # [len = shots, ≥ 2] one way per shot
size: list[int] = [24, 24]  # [len = 2, ≥ 16] (H, W)
n_way: int = 30  # [≥ 2] classes per episode
held_out: int = 5  # [≥ 0, < n_way] of the n_way classes
limit: int | None = None  # [≥ 1] None: no limit
below: float = 2.0  # [≤ lr_cap] a bound taken from another parameter
lr_cap: float | None = 10.0  # [> 0] None: no cap
mode: Literal["a", "b"] = "a"  # no range
device: str = "auto"  # [device] where to compute
'''


def test_the_range_marker_is_parsed_from_the_start_of_the_help():
    parameters = parse_parameters_cell(CELL)
    assert parameters["epochs"].help == "passes" and str(parameters["epochs"].range) == "[≥ 1]"
    assert parameters["clip_r"].help == "radius (None: no clipping)"
    assert str(parameters["train_way"].range) == "[len = shots, ≥ 2]"
    assert str(parameters["erasing"].range) == "[≥ 0, ≤ 1]" and str(parameters["device"].range) == "[device]"
    assert not parameters["mode"].range.clauses and str(parameters["mode"].range) == ""
    values = {name: parameter.default for name, parameter in parameters.items()}
    assert check_values(parameters, values) == values


@pytest.mark.parametrize("changes, problems", [
    ({"epochs": 0}, ["parameter 'epochs' must be ≥ 1, got 0"]),
    ({"lr": 0.0, "erasing": -0.1},
     ["parameter 'lr' must be > 0, got 0.0", "parameter 'erasing' must be ≥ 0, got -0.1"]),
    ({"clip_r": 0.0, "limit": 0},
     ["parameter 'clip_r' must be > 0, got 0.0", "parameter 'limit' must be ≥ 1, got 0"]),
    ({"shots": [1, 0]}, ["parameter 'shots': every item must be ≥ 1, got [1, 0]"]),
    ({"shots": [5]}, ["parameter 'train_way' must have as many items as shots (1), got 2: [30, 20]"]),
    ({"shots": []}, ["parameter 'shots' must be non-empty, got []"]),
    ({"size": [24, 24, 16]}, ["parameter 'size' must have 2 items, got 3: [24, 24, 16]"]),
    ({"held_out": 30}, ["parameter 'held_out' must be < n_way (30), got 30"]),
    ({"n_way": 1, "held_out": 1}, ["parameter 'n_way' must be ≥ 2, got 1"]),  # held_out: not compared with a bad n_way
    ({"below": 11.0}, ["parameter 'below' must be ≤ lr_cap (10.0), got 11.0"]),
    ({"below": 11.0, "lr_cap": None}, []),  # a bound taken from a parameter that is None does not apply
    ({"device": "gpu"}, ["parameter 'device' must be auto, cpu, cuda or cuda:N, got 'gpu'"]),
    ({"epochs": "10", "device": "cuda:2"}, ["parameter 'epochs' expects int, got '10'"]),
])
def test_values_are_checked_against_every_declared_range_at_once(changes, problems):
    parameters = parse_parameters_cell(CELL)
    values = {**{name: parameter.default for name, parameter in parameters.items()}, **changes}
    if not problems:
        assert check_values(parameters, values) == values
        return
    with pytest.raises(ParameterError) as caught:
        check_values(parameters, values)
    assert list(caught.value.problems) == problems


@pytest.mark.parametrize("line, fragment", [
    ("n: int = 1  # [>= 1] ascii", "'>= 1'"),
    ("n: int = 1  # [between 1 and 3] words", "'between 1 and 3'"),
    ("n: int = 1  # [] empty", "empty range"),
    ("n: int = 1  # [≥ 1 unclosed", "unclosed"),
    ("n: int = 1  # [≥ one] not a number", "'≥ one'"),
    ("n: int = 1  # [non-empty] not a list", "non-empty.*list"),
    ("n: list[int] = [1]  # [len = 1.5] not a whole number", "'len = 1.5'"),
    ("n: int = 1  # [device] not a string", "device.*str"),
    ("n: str = 'a'  # [≥ 1] a string", "≥ 1.*int or float"),
    ("n: bool = True  # [≥ 1] a bool", "≥ 1.*int or float"),
    ("n: int = 1  # [≥ ghost] unknown", "'ghost'"),
    ("n: int = 1  # [≥ n] itself", "itself"),
    ("n: list[int] = [1]  # [len = m] m is no list\nm: int = 3  # m", "len = m.*list"),
    ("n: int = 1  # [≥ m] m is no number\nm: str = 'a'  # m", "≥ m.*int or float"),
    ("n: int = 0  # [≥ 1] default out of range", "parameter 'n' must be ≥ 1, got 0"),
])
def test_malformed_range_markers_and_defaults_out_of_range_are_refused(line, fragment):
    with pytest.raises(ParameterError, match=fragment) as caught:
        parse_parameters_cell(line + "\n")
    assert "'n'" in str(caught.value)


def test_a_help_may_mention_brackets_after_its_start():
    assert parse_parameters_cell("xs: list[float] = [1.0]  # extra values; [] skips it\n")["xs"].help == \
        "extra values; [] skips it"


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    for name in ("PROTOLAB_NOTEBOOKS_DIR", "PROTOLAB_RUN_ID", "PROTOLAB_STAGE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _namespace(**values):
    return {"dataset": "toy", "data_root": "", "profile": "smoke", "seed": 3, "device": "cpu", "out_dir": "figures",
            "epochs": 2, "shots": [1], "train_way": [5], **values}


RANGED = STANDARD_PARAMETERS + ("epochs: int = 2  # [≥ 1] passes\nshots: list[int] = [1]  # [non-empty, ≥ 1] shots\n"
                                "train_way: list[int] = [5]  # [len = shots, ≥ 2] one way per shot\n")


def test_figures_start_refuses_every_out_of_range_value(elsewhere):
    write_notebook(elsewhere / "exp.ipynb", RANGED)
    assert figures.start("exp", _namespace(epochs=1)).parameters["epochs"] == 1
    with pytest.raises(ParameterError) as caught:
        figures.start("exp", _namespace(epochs=0, shots=[1, 5], device="gpu"))
    assert list(caught.value.problems) == [  # in the order of the parameters cell
        "parameter 'device' must be auto, cpu, cuda or cuda:N, got 'gpu'",
        "parameter 'epochs' must be ≥ 1, got 0",
        "parameter 'train_way' must have as many items as shots (2), got 1: [5]"]


def test_figures_start_checks_ranges_of_an_executed_cell_and_of_the_required_parameters(elsewhere):
    history = ["", RANGED, "from protolab import figures"]
    with pytest.raises(ParameterError, match="'epochs' must be ≥ 1"):
        figures.start("exp", _namespace(In=history, epochs=0))
    with pytest.warns(UserWarning, match="exp.ipynb not found"):
        with pytest.raises(ParameterError, match="'seed' must be ≥ 0"):
            figures.start("exp", _namespace(seed=-1))


def test_the_runner_refuses_an_out_of_range_value_without_starting_a_kernel(tmp_path, capsys):
    write_notebook(tmp_path / "notebooks" / "exp.ipynb", RANGED, "raise SystemExit('a kernel ran')")
    arguments = ["--notebooks", str(tmp_path / "notebooks"), "run", "exp", "-p", "epochs=0", "-p", "shots=1,5"]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert "exp: parameter 'epochs' must be ≥ 1, got 0" in err
    assert "exp: parameter 'train_way' must have as many items as shots (2), got 1: [5]" in err
    assert not (tmp_path / "runs").exists()


def test_list_shows_each_parameters_range_before_its_help(capsys):
    assert main(["--notebooks", str(NOTEBOOKS), "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    shown = {line.split()[0]: line for line in lines if line.startswith("    ") and line.split()[0] in {
        "train_way", "erasing"}}
    assert "[len = shots, ≥ 2] classes per training episode" in shown["train_way"]
    assert "[≥ 0, ≤ 1] probability of random erasing" in shown["erasing"]
    assert any(line.split()[0] == "device" and "[device]" in line for line in lines if line.startswith("    "))


def test_a_profile_naming_an_undeclared_parameter_is_a_clear_error():
    from protolab.runner.parameters import parse_parameters_cell

    parameters = parse_parameters_cell("epochs: int = 3  # [≥ 1] epochs\n")
    with pytest.raises(ParameterError, match="unknown parameter 'patience'; known: epochs"):
        check_values(parameters, {"epochs": 2, "patience": 1})
