"""Training and inference loops (training/loops.py): determinism, order, and fit_classifier's hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from protolab.backbones import SmallCNN
from protolab.data.images import LabeledImages
from protolab.training.loops import apply_batched, fit_classifier


def _toy_data(n: int = 64) -> LabeledImages:
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 2
    images = torch.rand(n, 1, 12, 12, generator=generator) * 0.3
    images[labels == 1, :, 3:9, 3:9] += 0.6
    return LabeledImages(labels=labels, class_names=["blank", "square"], description="toy squares", images=images)


def _fit(seed: int) -> tuple[nn.Module, object]:
    torch.manual_seed(seed)
    model = nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2))
    history = fit_classifier(model, _toy_data(), epochs=3, batch_size=16, lr=1e-2, device=torch.device("cpu"),
                             seed=seed, progress=False)
    return model, history


def test_same_seed_gives_identical_weights_and_history():
    (first, history_a), (second, history_b) = _fit(0), _fit(0)
    assert history_a.equals(history_b)
    for a, b in zip(first.parameters(), second.parameters()):
        assert torch.equal(a, b)


def test_training_learns_a_separable_task_and_history_has_one_row_per_epoch():
    model, history = _fit(1)
    assert list(history.epoch) == [1, 2, 3] and history.loss.iloc[-1] < history.loss.iloc[0]
    data = _toy_data()
    predictions = apply_batched(model, data, batch_size=10, device=torch.device("cpu")).argmax(1)
    assert (predictions == data.labels).float().mean() > 0.9


def test_apply_batched_keeps_order_and_eval_mode():
    data = _toy_data(23)
    module = nn.Sequential(nn.Flatten(), nn.Dropout(0.9))
    out = apply_batched(module, data, batch_size=5, device=torch.device("cpu"))
    assert torch.equal(out, data.images.flatten(1)) and not module.training


def test_without_hooks_training_reproduces_the_recorded_numbers():
    """Plain fit_classifier (fused Adam, every batch, constant learning rate) trains as before the re-ID and
    glyph-zsl hooks were added: numbers recorded then; the tolerance only allows for another CPU's rounding."""
    model, history = _fit(0)
    assert list(history.columns) == ["epoch", "lr", "loss", "accuracy"] and history.lr.tolist() == [1e-2] * 3
    assert history.loss.tolist() == pytest.approx([0.9006226360797882, 0.6002204269170761, 0.1979177314788103],
                                                  rel=1e-4)
    weights = float(sum(parameter.detach().double().abs().sum() for parameter in model.parameters()))
    assert weights == pytest.approx(13806.121736598372, rel=1e-6)


def test_augment_draws_from_the_loops_generator_after_each_permutation_and_drop_last_keeps_full_batches():
    data, seed, calls = _toy_data(20), 5, []

    def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        calls.append((len(images), generator.get_state()))
        return images + 0.01 * torch.rand(images.shape, generator=generator)

    torch.manual_seed(0)
    history = fit_classifier(nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2)), data, epochs=3, batch_size=8, lr=1e-2,
                             device=torch.device("cpu"), seed=seed, augment=augment, drop_last=True, progress=False)
    assert [size for size, _ in calls] == [8, 8] * 3  # two full batches per epoch, the last 4 images left out
    replay = torch.Generator().manual_seed(seed)
    for epoch in range(3):
        torch.randperm(len(data), generator=replay)  # the epoch's order first, then each batch's augmentation
        for size, state in calls[2 * epoch: 2 * epoch + 2]:
            assert torch.equal(state, replay.get_state())
            torch.rand((size, 1, 12, 12), generator=replay)
    assert all(abs(16 * accuracy - round(16 * accuracy)) < 1e-9 for accuracy in history.accuracy)
    calls.clear()
    fit_classifier(nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2)), _toy_data(6), epochs=1, batch_size=8, lr=1e-2,
                   device=torch.device("cpu"), seed=0, augment=augment, drop_last=True, progress=False)
    assert [size for size, _ in calls] == [6]  # fewer images than a batch: the one short batch is kept


def test_learning_rate_hooks_per_epoch_and_per_batch():
    data = _toy_data(20)  # 3 batches of 8 per epoch
    common = dict(epochs=3, batch_size=8, lr=1e-2, device=torch.device("cpu"), seed=0, progress=False)
    per_epoch = fit_classifier(nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2)), data,
                               lr_at=lambda epoch: 0.5 ** epoch, **common)
    assert per_epoch.lr.tolist() == [1e-2, 5e-3, 2.5e-3]
    per_batch = fit_classifier(nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2)), data, **common,
                               scheduler=lambda optimizer: torch.optim.lr_scheduler.LambdaLR(
                                   optimizer, lambda step: 1 / (1 + step)))
    assert per_batch.lr.tolist() == pytest.approx([1e-2 / 4, 1e-2 / 7, 1e-2 / 10])  # stepped after every batch
    with pytest.raises(ValueError, match="not both"):
        fit_classifier(nn.Linear(1, 2), data, lr_at=lambda epoch: 1.0, scheduler=lambda optimizer: None, **common)


def test_an_unmetered_loop_runs_to_its_end_in_a_dry_run(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PROTOLAB_DRY_RUN", "1")
    common = dict(epochs=2, batch_size=8, lr=1e-2, device=torch.device("cpu"), seed=0, progress=False)
    metered = fit_classifier(nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2)), _toy_data(40), **common)
    unmetered = fit_classifier(nn.Sequential(SmallCNN(dim=4), nn.Linear(4, 2)), _toy_data(40), metered=False, **common)
    assert len(metered) == 1 and len(unmetered) == 2
