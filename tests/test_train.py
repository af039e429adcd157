"""Training and inference loops (train.py): determinism and order."""

from __future__ import annotations

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
