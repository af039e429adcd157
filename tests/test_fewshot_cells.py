"""The few-shot grid's cell (fewshot/cells.py): the protocol's model of its seed, tested on the shared episodes."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd
import pytest
import torch

from protolab.data import FewShotSplits, load_fewshot
from protolab.fewshot.cells import arm_name, fewshot_cell
from protolab.fewshot.protocol import ProtocolSettings, train_and_test, train_protonet
from protolab.runner.model_grid import data_fingerprint
from protolab.training.loops import evaluate_episodic

CPU = torch.device("cpu")
SETTINGS = ProtocolSettings(backbone="conv4", dim=16, query=2, test_way=5, temperature=1.0, riemannian=False,
                            epochs=3, episodes=3, val_episodes=6, test_episodes=7, lr=1e-2, step_size=1, gamma=1.0,
                            patience=1)
MODEL = {"geometry": "euclidean", "shot": 1, "train_way": 5}


@pytest.fixture(scope="module")
def splits() -> FewShotSplits:
    return load_fewshot("glyphs", image_size=16, instances_per_class=6, hard=False)  # trains in a second


def _cell(splits: FewShotSplits, seed: int, test_seed: int | None) -> dict:
    return {**MODEL, "c": None, "seed": seed, "test_seed": test_seed, "protocol": asdict(SETTINGS), "amp": False,
            "device": "cpu", "dataset": "glyphs", "data": data_fingerprint(*splits)}


def test_every_seed_is_tested_on_the_episodes_of_the_test_seed(splits, tmp_path):
    first = fewshot_cell(splits, _cell(splits, seed=0, test_seed=0), checkpoints=tmp_path, num_workers=0)
    protocol = train_and_test(SETTINGS, splits, **MODEL, c=0.0, seed=0, device=CPU, progress=False)
    assert torch.equal(first["test_accuracies"], protocol.test_accuracies)  # one seed: the protocol's own test
    assert pd.DataFrame(first["history"]).equals(protocol.history)
    assert first["best_epoch"] == protocol.history.attrs["best_epoch"]
    assert first["convergence"] == protocol.history.attrs["convergence"] and first["wall_seconds"] > 0

    second = fewshot_cell(splits, _cell(splits, seed=1, test_seed=0), checkpoints=tmp_path, num_workers=0)
    model, history = train_protonet(SETTINGS, splits, **MODEL, c=0.0, seed=1, device=CPU, progress=False)
    _, _, expected = evaluate_episodic(model, splits.test, n_way=SETTINGS.test_way, n_shot=1, n_query=SETTINGS.query,
                                       n_episodes=SETTINGS.test_episodes, device=CPU, seed=2, progress=False)
    assert pd.DataFrame(second["history"]).equals(history)  # trained from its own seed ...
    assert torch.equal(second["test_accuracies"], expected)  # ... tested on the episodes of seed 0 (seeded 0 + 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["euclidean-1-shot-lr0.01-5way-seed0.pt",
                                                                "euclidean-1-shot-lr0.01-5way-seed1.pt"]


def test_a_tuning_cell_is_trained_and_validated_but_never_tested(splits, tmp_path):
    tuned = fewshot_cell(splits, _cell(splits, seed=0, test_seed=None), checkpoints=None, num_workers=0)
    _, history = train_protonet(SETTINGS, splits, **MODEL, c=0.0, seed=0, device=CPU, progress=False)
    assert tuned["test_accuracies"].shape == (0,) and pd.DataFrame(tuned["history"]).equals(history)


def test_arm_names_give_the_curvature_of_hyperbolic_models_only():
    assert arm_name("hyperbolic", 1, 1.0) == "hyperbolic, 1-shot, c=1"
    assert arm_name("hyperbolic", 5, 0.25) == "hyperbolic, 5-shot, c=0.25"
    assert arm_name("euclidean", 5, None) == "euclidean, 5-shot"
    assert arm_name("hyperbolic", 1, 0.05, 4e-3) == "hyperbolic, 1-shot, c=0.05, lr=0.004"
