"""The few-shot train-and-test protocol (fewshot/protocol.py): shapes, best-on-validation, seeds, determinism."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from protolab.data import FewShotSplits, load_fewshot
from protolab.fewshot.protocol import ProtocolSettings, evaluate_protonet, train_and_test, train_protonet
from protolab.training.loops import evaluate_episodic

CPU = torch.device("cpu")
SETTINGS = ProtocolSettings(backbone="conv4", dim=16, query=2, test_way=5, temperature=1.0, riemannian=False,
                            epochs=3, episodes=3, val_episodes=6, test_episodes=7, lr=1e-2, step_size=1, gamma=1.0)
MODEL = {"geometry": "euclidean", "c": 0.1, "shot": 1, "train_way": 5, "device": CPU, "progress": False}


@pytest.fixture(scope="module")
def splits() -> FewShotSplits:
    return load_fewshot("glyphs", image_size=16, instances_per_class=6, hard=False)  # trains in a second


def test_one_history_row_per_epoch_and_one_accuracy_per_test_episode(splits):
    history, accuracies = train_and_test(SETTINGS, splits, **MODEL, seed=0)
    assert list(history["epoch"]) == [1, 2, 3] and list(history["episodes"]) == [3, 6, 9]
    assert accuracies.shape == (SETTINGS.test_episodes,) and accuracies.dtype == torch.float64
    queries = SETTINGS.test_way * SETTINGS.query
    assert torch.equal(accuracies * queries, (accuracies * queries).round())  # correct queries / queries
    assert ((accuracies >= 0) & (accuracies <= 1)).all()


def test_the_weights_kept_are_those_of_the_best_validation_epoch(splits):
    model, history = train_protonet(SETTINGS, splits, **MODEL, seed=0)
    best = history.attrs["best_epoch"]
    assert best < SETTINGS.epochs, "the last epoch is the best: this run cannot tell best from last weights"
    assert history["val_accuracy"].idxmax() == best - 1  # the earliest maximum
    validation, _, _ = evaluate_episodic(model, splits.val, n_way=SETTINGS.test_way, n_shot=1, n_query=SETTINGS.query,
                                         n_episodes=SETTINGS.val_episodes, device=CPU, seed=1, progress=False)
    assert validation == history["val_accuracy"].iloc[best - 1] != history["val_accuracy"].iloc[-1]


def test_the_test_is_seed_plus_two_episodes_of_the_novel_classes(splits):
    model, history = train_protonet(SETTINGS, splits, **MODEL, seed=5)
    _, _, expected = evaluate_episodic(model, splits.test, n_way=SETTINGS.test_way, n_shot=1, n_query=SETTINGS.query,
                                       n_episodes=SETTINGS.test_episodes, device=CPU, seed=7, progress=False)
    assert torch.equal(evaluate_protonet(model, SETTINGS, splits.test, shot=1, seed=5, device=CPU, progress=False),
                       expected)
    result = train_and_test(SETTINGS, splits, **MODEL, seed=5)
    assert result.history.equals(history) and torch.equal(result.test_accuracies, expected)


def test_same_seed_same_result_other_seed_other_result(splits):
    first, again = train_and_test(SETTINGS, splits, **MODEL, seed=0), train_and_test(SETTINGS, splits, **MODEL, seed=0)
    assert first.history.equals(again.history) and torch.equal(first.test_accuracies, again.test_accuracies)
    assert first.history.attrs == again.history.attrs
    other = train_and_test(SETTINGS, splits, **MODEL, seed=1)
    assert not first.history.equals(other.history)


def test_riemannian_scaling_reaches_hyperbolic_models_only(splits):
    settings = replace(SETTINGS, riemannian=True, epochs=1)
    hyperbolic, _ = train_protonet(settings, splits, **{**MODEL, "geometry": "hyperbolic", "c": 0.3}, seed=0)
    assert hyperbolic.to_poincare.riemannian and hyperbolic.c == pytest.approx(0.3)
    euclidean, _ = train_protonet(settings, splits, **MODEL, seed=0)  # ProtoNet refuses riemannian=True here
    assert euclidean.geometry == "euclidean" and euclidean.to_poincare is None


def test_a_checkpointed_run_resumes_to_the_same_result(splits, tmp_path):
    checkpoint = tmp_path / "model.pt"
    first = train_and_test(SETTINGS, splits, **MODEL, seed=0, checkpoint=checkpoint)
    assert checkpoint.exists()
    resumed = train_and_test(SETTINGS, splits, **MODEL, seed=0, checkpoint=checkpoint)  # all done: nothing retrained
    assert first.history.equals(resumed.history) and torch.equal(first.test_accuracies, resumed.test_accuracies)
