"""The one early-stopping rule (training/convergence.py) and every training loop that follows it (issue 24)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from protolab.backbones import SmallCNN
from protolab.fewshot.protocol import train_protonet
from protolab.reid.fit import held_out_identities, reid_training, retrieval_score
from protolab.reid.model import build_reid_model
from protolab.training import loops
from protolab.training.convergence import EarlyStopping, StoppingRule
from protolab.training.loops import fit_classifier
from protolab.zsl.fit import TrainConfig, fit_ipn
from protolab.zsl.ipn import IPNConfig
from tests.test_episodic_training import _assert_same_weights, _model, _train
from tests.test_episodic_training import splits  # noqa: F401 (the few-shot data fixture)
from tests.test_fewshot_protocol import MODEL
from tests.test_fewshot_protocol import SETTINGS as PROTOCOL
from tests.test_reid import _toy as _reid_toy
from tests.test_train import _toy_data

CPU = torch.device("cpu")


def _drive(rule: StoppingRule, curve) -> tuple[EarlyStopping, list[int]]:
    """A loop of ``rule.max_steps`` steps at most that validates ``curve(step)`` when due; the steps validated."""
    stopping, validated = EarlyStopping(rule), []
    for step in range(1, rule.max_steps + 1):
        if stopping.due(step):
            validated.append(step)
            stopping.update(step, curve(step))
        if stopping.stop(step):
            break
    return stopping, validated


def test_a_plateau_stops_by_patience_at_the_hand_computed_step():
    # validated at 2, 4, ...: 0.2, 0.4, 0.6 (best, step 6), then 0.6 at 8 and 10 are no improvement: patience 2 spent
    stopping, validated = _drive(StoppingRule(eval_every=2, patience=2, max_steps=30), lambda step: min(step, 6) / 10)
    assert validated == [2, 4, 6, 8, 10]
    assert stopping.record() == {"steps": 10, "best_step": 6, "stopped_by": "patience", "converged": True,
                                 "final_score": 0.6, "best_score": 0.6}


def test_a_rising_curve_runs_to_max_steps_and_validates_at_the_last_step():
    stopping, validated = _drive(StoppingRule(eval_every=3, patience=1, max_steps=7), lambda step: step / 100)
    assert validated == [3, 6, 7]  # every third step, and the last
    assert stopping.record() == {"steps": 7, "best_step": 7, "stopped_by": "max_steps", "converged": False,
                                 "final_score": 0.07, "best_score": 0.07}


def test_without_patience_a_flat_curve_runs_to_max_steps_and_keeps_the_first_best():
    stopping, validated = _drive(StoppingRule(patience=None, max_steps=5), lambda step: 0.5)
    assert validated == [1, 2, 3, 4, 5]
    assert stopping.record()["stopped_by"] == "max_steps" and stopping.best_step == 1  # the earliest of ties


def test_small_improvements_do_not_reset_patience_but_the_best_weights_follow_the_maximum():
    scores = {1: 0.50, 2: 0.52, 3: 0.54, 4: 0.545, 5: 0.9}
    noisy, _ = _drive(StoppingRule(patience=3, max_steps=5, min_delta=0.05), scores.get)
    # 0.52, 0.54, 0.545 each beat the best, none beats the reference 0.50 by more than 0.05: stop after step 4
    assert noisy.record() == {"steps": 4, "best_step": 4, "stopped_by": "patience", "converged": True,
                              "final_score": 0.545, "best_score": 0.545}
    exact, _ = _drive(StoppingRule(patience=3, max_steps=5, min_delta=0.0), scores.get)
    assert exact.record()["stopped_by"] == "max_steps" and exact.best_step == 5
    jump, _ = _drive(StoppingRule(patience=2, max_steps=5, min_delta=0.05), {1: 0.5, 2: 0.52, 3: 0.56, 4: 0.57,
                                                                            5: 0.58}.get)
    assert jump.waited == 2 and jump.record()["steps"] == 5  # 0.56 > 0.50 + 0.05 reset the count at step 3


def test_impossible_rules_are_refused():
    for wrong in ({"patience": 0}, {"eval_every": 0}, {"max_steps": 0}, {"min_delta": -0.1}, {"patience": 1.5}):
        with pytest.raises(ValueError):
            StoppingRule(**wrong)


def test_state_round_trips_through_a_checkpoint_file(tmp_path):
    rule = StoppingRule(eval_every=1, patience=3, max_steps=20, min_delta=0.01)
    scores = [0.3, 0.5, 0.5, 0.505, 0.7, 0.69, 0.6, 0.6, 0.6, 0.8]
    whole, _ = _drive(rule, lambda step: scores[step - 1])
    part = EarlyStopping(rule)
    for step in range(1, 6):
        part.update(step, scores[step - 1])
    torch.save(part.state(), tmp_path / "stopping.pt")  # as a loop's checkpoint holds it
    resumed = EarlyStopping.from_state(rule, torch.load(tmp_path / "stopping.pt", weights_only=True))
    assert resumed == part
    for step in range(6, 21):
        resumed.update(step, scores[step - 1])
        if resumed.stop(step):
            break
    assert resumed == whole and resumed.record() == whole.record()
    assert whole.record()["steps"] == 8 and whole.best_step == 5  # 0.69, 0.6, 0.6 after the best 0.7


def _classifier(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2))


COMMON = {"batch_size": 16, "lr": 1e-2, "device": CPU, "seed": 0, "progress": False}


def test_fit_classifier_stops_by_patience_and_restores_the_best_epochs_weights():
    scores = [0.2, 0.5, 0.4, 0.5, 0.3, 0.9, 0.9, 0.9]  # best at epoch 2 (epoch 4 ties it); patience 3 spent at 5
    snapshots, modes, training_modes = [], [], []

    def validate(model: nn.Module) -> float:
        modes.append((model.training, torch.is_grad_enabled()))
        snapshots.append({name: value.clone() for name, value in model.state_dict().items()})
        return scores[len(snapshots) - 1]

    model = _classifier()
    model.register_forward_pre_hook(lambda module, inputs: training_modes.append(module.training))
    history = fit_classifier(model, _toy_data(), validate=validate, stopping=StoppingRule(patience=3, max_steps=8),
                             **COMMON)
    assert history.epoch.tolist() == [1, 2, 3, 4, 5] and history.val_score.tolist() == scores[:5]
    assert history.attrs["convergence"] == {"steps": 5, "best_step": 2, "stopped_by": "patience", "converged": True,
                                            "final_score": 0.3, "best_score": 0.5}
    assert modes == [(False, False)] * 5  # eval mode, no gradients
    assert all(training_modes), "training resumed in train mode after each validation"
    for name, value in model.state_dict().items():
        assert torch.equal(value, snapshots[1][name]), name
    assert any(not torch.equal(value, snapshots[4][name]) for name, value in model.state_dict().items())
    # validating does not change the training: the same numbers as five plain epochs
    plain = fit_classifier(_classifier(), _toy_data(), epochs=5, **COMMON)
    assert history.drop(columns="val_score").equals(plain)


def test_fit_classifier_validates_when_due_and_refuses_unclear_epoch_counts():
    history = fit_classifier(_classifier(), _toy_data(), epochs=3, validate=lambda model: 0.5,
                             stopping=StoppingRule(eval_every=2, patience=5, max_steps=3), **COMMON)
    assert history.val_score.isna().tolist() == [True, False, False]  # epoch 2, then the last
    assert history.attrs["convergence"]["stopped_by"] == "max_steps"
    selected = fit_classifier(_classifier(), _toy_data(), epochs=2, validate=lambda model: 0.5, **COMMON)
    assert selected.val_score.tolist() == [0.5, 0.5] and selected.attrs["convergence"]["best_step"] == 1
    with pytest.raises(ValueError, match="max_steps"):
        fit_classifier(_classifier(), _toy_data(), epochs=4, validate=lambda model: 0.5,
                       stopping=StoppingRule(max_steps=3), **COMMON)
    with pytest.raises(ValueError, match="validate"):
        fit_classifier(_classifier(), _toy_data(), stopping=StoppingRule(max_steps=3), **COMMON)


STOP_AT_2 = StoppingRule(patience=1, max_steps=4, min_delta=1.0)  # no accuracy gain exceeds 1: stops after epoch 2


def test_an_episodic_run_with_early_stopping_resumed_from_a_checkpoint_equals_the_uninterrupted_one(
        splits, tmp_path, monkeypatch):  # noqa: F811 (the fixture)
    reference = _model(0)
    expected = _train(reference, splits, epochs=None, stopping=STOP_AT_2)
    assert expected.epoch.tolist() == [1, 2] and expected.attrs["convergence"]["stopped_by"] == "patience"

    real_step, calls = loops._train_step, []

    def crash_at_eighth(*args, **kwargs):
        calls.append(1)
        if len(calls) == 8:  # last checkpoint after episode 6, in epoch 2
            raise KeyboardInterrupt
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loops, "_train_step", crash_at_eighth)
    checkpoint = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        _train(_model(0), splits, checkpoint, epochs=None, stopping=STOP_AT_2)
    assert torch.load(checkpoint, weights_only=True)["step"] == 6
    calls[:] = [None] * 100
    resumed = _model(1)
    history = _train(resumed, splits, checkpoint, epochs=None, stopping=STOP_AT_2)
    assert len(calls) - 100 == 10 - 6
    assert history.equals(expected) and history.attrs == expected.attrs
    _assert_same_weights(resumed, reference)

    finished = _model(2)  # a run that stopped early resumes to its end: nothing more is trained
    again = _train(finished, splits, checkpoint, epochs=None, stopping=STOP_AT_2)
    assert again.equals(expected) and again.attrs == expected.attrs and len(calls) - 100 == 4
    _assert_same_weights(finished, reference)

    with pytest.warns(UserWarning, match="differs in stopping"):
        _train(_model(0), splits, checkpoint, epochs=None, stopping=replace(STOP_AT_2, patience=2))


def test_the_few_shot_protocol_stops_by_its_patience_and_records_it(splits):  # noqa: F811 (the fixture)
    _, history = train_protonet(replace(PROTOCOL, epochs=4, patience=1, min_delta=1.0), splits, **MODEL, seed=0)
    assert history.epoch.tolist() == [1, 2]
    assert history.attrs["convergence"]["stopped_by"] == "patience"
    assert history.attrs["best_epoch"] == history.attrs["convergence"]["best_step"]


@pytest.fixture(scope="module")
def glyph_zsl():
    from protolab.data import load_zsl

    return load_zsl("glyph-zsl")


def test_ipn_selection_stops_by_patience_and_the_refit_trains_the_selected_epochs(glyph_zsl):
    config = TrainConfig(epochs=4, n_way=20, n_shot=1, n_query=1, episode_unseen=4, episodes_per_epoch=3, seed=0)
    model_config = IPNConfig(prototype_dim=16, graph_dim=8, hidden_dim=16)
    _, stopped = fit_ipn(glyph_zsl, model_config, replace(config, patience=1, min_delta=1.0), progress=False)
    select, refit = (stopped[stopped.phase == phase] for phase in ("select", "refit"))
    record = stopped.attrs["convergence"]
    assert select.epoch.tolist() == [1, 2] and record["stopped_by"] == "patience" and record["steps"] == 2
    assert record["best_step"] == int(select.val_H.idxmax()) + 1 == len(refit)
    _, full = fit_ipn(glyph_zsl, model_config, config, progress=False, refit=False)
    assert full.attrs["convergence"]["stopped_by"] == "max_steps" and len(full) == 4
    assert select.drop(columns="phase").equals(full.iloc[:2].drop(columns="phase"))  # same epochs until the stop
    with pytest.raises(ValueError, match="patience"):
        replace(config, patience=0)


def test_reid_training_early_stops_on_held_out_identities():
    train, query, gallery = held_out_identities(_reid_toy(n_ids=6), n_val_ids=2, seed=0)
    score = retrieval_score(query, gallery, device=CPU)
    torch.manual_seed(0)
    model = build_reid_model("euclidean", backbone="conv4", in_channels=1, dim=8, n_classes=train.n_classes, c=0.5,
                             clip_r=2.0)
    history = fit_classifier(model, train, epochs=4, batch_size=8, lr=3e-3, device=CPU, seed=0, progress=False,
                             **reid_training("sch2", 4, flip=False, pad=1, erasing=0.0, validate=score, patience=1,
                                             min_delta=1.0))
    assert history.epoch.tolist() == [1, 2] and history.attrs["convergence"]["stopped_by"] == "patience"
    assert score(model) == history.val_score.max()  # the best epoch's weights are the ones kept
    assert not math.isnan(history.attrs["convergence"]["best_score"])
    with pytest.raises(ValueError, match="validate"):
        reid_training("sch1", 4, flip=False, pad=0, erasing=0.0, patience=2)
    with pytest.raises(ValueError, match="metric"):
        retrieval_score(query, gallery, device=CPU, metric="rank3")
