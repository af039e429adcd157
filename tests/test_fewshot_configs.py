"""The official few-shot configs (fewshot_configs.py), their full-<config> profiles in profiles.yaml, the
runner's acceptance of such profiles, and the paper column of the few-shot table."""

from __future__ import annotations

import inspect

import pytest
import yaml

from protolab.fewshot import configs as fewshot_configs
from protolab.fewshot.configs import (
    CONFIGS,
    PROTOCOL,
    differences,
    find_config,
    paper_columns,
    profile_name,
    profile_overrides,
    profiles_yaml,
)
from protolab.paper_results import FEWSHOT_ACCURACY
from protolab.runner.cli import main
from protolab.runner.parameters import ParameterError, discover
from protolab.runner.project import notebooks_dir
from tests.conftest import STANDARD_PARAMETERS, write_notebook

# PAPERS.md's table of the official configs, restated as an independent check:
# (dataset, backbone, shot) → (reported, train way, lr, step, gamma, c, dim)
PAPERS_TABLE = {
    ("cub", "conv4", 1): ("64.02 ± 0.20", 5, 1e-3, 50, 0.8, 0.05, 1600),
    ("cub", "conv4", 5): ("82.53 ± 0.14", 5, 1e-3, 40, 0.8, 0.01, 1600),
    ("miniimagenet", "conv4", 1): ("54.43 ± 0.20", 30, 5e-3, 80, 0.5, 0.01, 1600),
    ("miniimagenet", "conv4", 5): ("72.69 ± 0.14", 20, 5e-3, 60, 0.8, 0.005, 1600),
    ("miniimagenet", "resnet18", 1): ("59.47 ± 0.20", 30, 1e-3, 80, 0.5, 0.01, 512),
    ("miniimagenet", "resnet18", 5): ("76.84 ± 0.14", 20, 1e-3, 40, 0.5, 0.005, 512),
    ("miniimagenet", "resnet12", 1): ("61.60 ± 0.20", 30, 1e-3, 40, 0.8, 0.01, 512),
    ("miniimagenet", "resnet12", 5): ("78.19 ± 0.14", 20, 5e-3, 50, 0.8, 0.005, 512),
}
EXPERIMENT = discover()["fewshot_tables"]


def test_the_eight_configs_are_papers_table():
    assert len(CONFIGS) == 8 and len({config.name for config in CONFIGS}) == 8
    for config in CONFIGS:
        assert config.name == f"{'mini' if config.dataset == 'miniimagenet' else 'cub'}-{config.backbone}-{config.shot}shot"
        expected = PAPERS_TABLE[(config.dataset, config.backbone, config.shot)]
        got = (config.reported, config.train_way, config.lr, config.step_size, config.gamma, config.c, config.dim)
        assert got == expected, config.name
        assert config.script in config.source
    assert (PROTOCOL.epochs, PROTOCOL.episodes, PROTOCOL.val_episodes, PROTOCOL.test_episodes) == (200, 100, 500, 10_000)
    assert (PROTOCOL.query, PROTOCOL.test_way, PROTOCOL.temperature) == (15, 5, 1.0)


def test_reported_numbers_live_only_in_paper_results():
    source = inspect.getsource(fewshot_configs)
    for config in CONFIGS:
        assert config.reported == FEWSHOT_ACCURACY[(config.dataset, config.backbone, "hyperbolic", config.shot)]
        assert config.reported.split(" ")[0] not in source


def test_profiles_yaml_holds_exactly_the_generated_profiles():
    text = (notebooks_dir() / "profiles.yaml").read_text()
    written = {name: values for name, values in yaml.safe_load(text)["fewshot_tables"].items()
               if name.startswith("full-")}
    assert written == {profile_name(config): profile_overrides(config) for config in CONFIGS}
    assert profiles_yaml() in text, "regenerate with `python -m protolab.fewshot.configs`"
    assert yaml.safe_load("x:\n" + profiles_yaml())["x"] == written


@pytest.mark.parametrize("config", CONFIGS, ids=lambda config: config.name)
def test_every_full_config_profile_resolves_to_the_config(config):
    values = EXPERIMENT.resolve(profile_name(config))
    assert values["profile"] == profile_name(config)
    assert values["shots"] == [config.shot] and values["train_way"] == [config.train_way]
    assert (values["dataset"], values["backbone"], values["curvatures"]) == (config.dataset, config.backbone, [config.c])
    assert values["euclidean_lrs"] == values["hyperbolic_lrs"] == [config.lr]  # one setting each: no tuning
    assert values["test_episodes"] == 10_000 and values["riemannian"] is True and values["image_size"] == 84
    assert EXPERIMENT.resolve(profile_name(config), {"epochs": "1"})["epochs"] == 1
    row = {**values, "geometry": "hyperbolic", "shot": config.shot, "train_way": config.train_way, "lr": config.lr,
           "c": config.c}
    assert differences(config, row) == []
    assert paper_columns(row) == {"paper": config.reported, "official_config": config.name}


def test_paper_columns_name_the_config_and_how_a_run_differs():
    config = find_config("miniimagenet", "conv4", 1)
    run = {**EXPERIMENT.resolve(profile_name(config)), "geometry": "hyperbolic", "shot": 1, "train_way": 30,
           "lr": config.lr, "c": config.c}
    changed = paper_columns({**run, "lr": 1e-3, "epochs": 2})
    assert changed == {"paper": "54.43 ± 0.20", "official_config": "mini-conv4-1shot (differs: epochs, lr)"}
    assert paper_columns({**run, "geometry": "euclidean"}) == {"paper": "49.42", "official_config": "—"}
    assert paper_columns({**run, "dataset": "glyphs"}) == {"paper": "—", "official_config": "—"}
    resnet = find_config("miniimagenet", "resnet12", 5)
    assert differences(resnet, {**profile_overrides(resnet), "shot": 5, "train_way": 20, "dim": 64, "lr": resnet.lr,
                                "c": resnet.c}) == []  # dim does not shape a ResNet
    assert find_config("omniglot", "conv4", 1) is None


def test_the_runner_accepts_a_notebooks_own_full_profiles_only(tmp_path, capsys):
    notebooks = tmp_path / "notebooks"
    write_notebook(notebooks / "exp.ipynb", STANDARD_PARAMETERS + "epochs: int = 10  # passes\n")
    write_notebook(notebooks / "other.ipynb", STANDARD_PARAMETERS)
    (notebooks / "profiles.yaml").write_text("exp:\n  smoke: {epochs: 1}\n  full-paper-a: {epochs: 200}\n")
    experiments = discover(notebooks)
    assert experiments["exp"].profile_names == ("smoke", "default", "full", "full-paper-a")
    assert experiments["exp"].resolve("full-paper-a")["epochs"] == 200
    with pytest.raises(ParameterError, match="full-paper-b.*smoke, default, full, full-paper-a"):
        experiments["exp"].resolve("full-paper-b")
    with pytest.raises(ParameterError, match="full-paper-a"):
        experiments["other"].resolve("full-paper-a")
    assert main(["--notebooks", str(notebooks), "list"]) == 0
    assert "full-paper-a epochs=200" in capsys.readouterr().out
    assert main(["--notebooks", str(notebooks), "run", "exp", "--profile", "full-paper-b"]) == 2
    assert "choose one of smoke, default, full, full-paper-a" in capsys.readouterr().err
    (notebooks / "profiles.yaml").write_text("exp:\n  fast: {epochs: 1}\n")
    with pytest.raises(ParameterError, match="'fast'.*full-"):
        discover(notebooks)
