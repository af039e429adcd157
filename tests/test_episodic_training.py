"""Episodic training and evaluation (train.py): learning, determinism, resume, best-on-val, CI."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from protolab.training import loops as train
from protolab.backbones import Conv4
from protolab.data import FewShotSplits, load_fewshot
from protolab.fewshot.protonet import ProtoNet
from protolab.training.loops import evaluate_episodic, train_episodic

CPU = torch.device("cpu")
EPISODE = {"n_way": 5, "n_shot": 1, "n_query": 3}


@pytest.fixture(scope="module")
def splits() -> FewShotSplits:
    return load_fewshot("glyphs", image_size=16, instances_per_class=6, hard=False)  # learnable in seconds


def _model(seed: int = 0, geometry: str = "euclidean") -> ProtoNet:
    torch.manual_seed(seed)
    return ProtoNet(Conv4(in_channels=1, width=16), geometry=geometry, c=0.05)


def _train(model: ProtoNet, splits: FewShotSplits, checkpoint: Path | None = None, **overrides):
    settings = {**EPISODE, "episodes_per_epoch": 5, "epochs": 2, "val_episodes": 6, "lr": 5e-3, "step_size": 1,
                "gamma": 0.5, "device": CPU, "seed": 3, "checkpoint": checkpoint, "checkpoint_every": 3,
                "progress": False, **overrides}
    return train_episodic(model, splits.train, splits.val, **settings)


def _assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    state_b = b.state_dict()
    for name, value in a.state_dict().items():
        assert torch.equal(value, state_b[name]), name


@pytest.mark.parametrize("geometry", ["euclidean", "hyperbolic"])
def test_training_beats_chance_and_lowers_the_loss(splits, geometry):
    model = _model(0, geometry)
    history = _train(model, splits, episodes_per_epoch=12, epochs=3, lr=1e-2, val_episodes=4)
    assert list(history["epoch"]) == [1, 2, 3] and list(history["episodes"]) == [12, 24, 36]
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    mean, _, _ = evaluate_episodic(model, splits.train, **EPISODE, n_episodes=20, device=CPU, seed=9,
                                   progress=False)
    assert mean > 1 / EPISODE["n_way"] + 0.2


def test_same_seed_same_history_and_weights_and_global_rng_untouched(splits):
    first, second = _model(0), _model(0)
    state = torch.get_rng_state()
    history_a, history_b = _train(first, splits), _train(second, splits)
    assert torch.equal(state, torch.get_rng_state())
    assert history_a.equals(history_b)
    _assert_same_weights(first, second)


def test_resumed_run_equals_uninterrupted_run(splits, tmp_path, monkeypatch):
    reference = _model(0)
    expected = _train(reference, splits)

    real_step, calls = train._train_step, []

    def crash_at_eighth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # killed during episode 8 (index 7): last checkpoint after episode 6, mid-epoch 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(train, "_train_step", crash_at_eighth)
    checkpoint = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(_model(0), splits, checkpoint)
    assert torch.load(checkpoint, weights_only=True)["step"] == 6

    calls.clear()
    calls.extend([None] * 100)  # no more crashes; count the episodes the resumed run trains
    resumed = _model(1)  # other initial weights: everything must come from the checkpoint
    history = _train(resumed, splits, checkpoint)
    assert len(calls) - 100 == 10 - 6, "the resumed run must not repeat the checkpointed episodes"
    assert history.equals(expected)
    _assert_same_weights(resumed, reference)

    finished = _model(2)  # resuming a finished run trains nothing and restores the same weights
    assert _train(finished, splits, checkpoint).equals(expected) and len(calls) - 100 == 4
    _assert_same_weights(finished, reference)


def test_checkpoint_with_other_settings_is_not_resumed_but_overwritten(splits, tmp_path):
    checkpoint = tmp_path / "run.pt"
    _train(_model(0), splits, checkpoint, epochs=1)
    with pytest.warns(UserWarning, match="differs in lr"):
        history = _train(_model(0), splits, checkpoint, epochs=1, lr=1e-3)
    assert history.equals(_train(_model(0), splits, epochs=1, lr=1e-3))
    assert torch.load(checkpoint, weights_only=True)["settings"]["lr"] == 1e-3


def test_best_validation_weights_are_restored(splits, tmp_path):
    checkpoint = tmp_path / "run.pt"
    model = _model(0)
    # the learning rate grows 30× per epoch, so later epochs wreck the weights and validation accuracy drops
    history = _train(model, splits, checkpoint, epochs=3, lr=3e-3, gamma=30.0, val_episodes=10)
    best = history.attrs["best_epoch"]
    assert best == int(history["val_accuracy"].idxmax()) + 1 and best < 3
    saved = torch.load(checkpoint, weights_only=True)
    assert any(not torch.equal(v, model.state_dict()[k]) for k, v in saved["model"].items()), "last ≠ best"
    for name, value in saved["best_model"].items():
        assert torch.equal(value, model.state_dict()[name]), name
    mean, ci95, _ = evaluate_episodic(model, splits.val, **EPISODE, n_episodes=10, device=CPU, seed=3 + 1,
                                      progress=False)
    assert mean == history["val_accuracy"].max() and ci95 == history["val_ci95"].iloc[best - 1]


def test_evaluate_reports_mean_and_ci_of_per_episode_accuracies(splits):
    model = _model(0)
    mean, ci95, accuracies = evaluate_episodic(model, splits.test, **EPISODE, n_episodes=12, device=CPU, seed=5,
                                               progress=False)
    assert accuracies.shape == (12,) and accuracies.dtype == torch.float64
    assert set((accuracies * 15).round().tolist()) <= set(range(16))  # multiples of 1/15 (5-way × 3 queries)
    values = accuracies.tolist()
    expected_mean = sum(values) / len(values)
    s = math.sqrt(sum((v - expected_mean) ** 2 for v in values) / (len(values) - 1))  # the sample std
    t = 2.200985160082949  # Student-t 0.975 quantile, 11 degrees of freedom
    assert mean == pytest.approx(expected_mean) and ci95 == pytest.approx(t * s / math.sqrt(12))
    again = evaluate_episodic(model, splits.test, **EPISODE, n_episodes=12, device=CPU, seed=5, progress=False)
    assert torch.equal(again[2], accuracies)


def test_impossible_episodes_fail_before_training(splits):
    with pytest.raises(ValueError, match="at least 7 samples"):
        _train(_model(0), splits, n_shot=1, n_query=6)
    with pytest.raises(ValueError, match="n_query"):
        _train(_model(0), splits, n_query=0)
