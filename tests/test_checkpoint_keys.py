"""A training checkpoint is resumed only by the configuration that wrote it (issue 23, B2).

Each case first writes a finished checkpoint, then trains another configuration with the same file: the
run must warn, train from scratch, and give exactly what a fresh run of that configuration gives.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from protolab.data import load_fewshot
from protolab.fewshot.protocol import train_and_test
from tests.test_fewshot_protocol import MODEL, splits  # noqa: F401 (the module's data fixture)
from tests.test_fewshot_protocol import SETTINGS as PROTOCOL

SETTINGS = replace(PROTOCOL, epochs=2, val_episodes=4, test_episodes=5)


def _same(first, second) -> bool:
    return first.history.equals(second.history) and torch.equal(first.test_accuracies, second.test_accuracies)


@pytest.mark.parametrize(("changed", "differs_in"), [
    ({"settings": {"temperature": 10.0}}, "protocol"),
    ({"settings": {"epochs": 1}}, "epochs"),
    ({"model": {"geometry": "hyperbolic", "c": 0.3}}, "geometry"),
    ({"model": {"c": 0.5, "geometry": "hyperbolic"}, "first": {"geometry": "hyperbolic", "c": 0.3}}, "c"),
    ({"settings": {"dim": 8}}, "model"),
])
def test_a_checkpoint_of_another_configuration_is_not_resumed(splits, tmp_path, changed, differs_in):
    checkpoint = tmp_path / "model.pt"
    first_model = {**MODEL, **changed.get("first", {})}
    train_and_test(SETTINGS, splits, **first_model, seed=0, checkpoint=checkpoint)
    settings = replace(SETTINGS, **changed.get("settings", {}))
    model = {**MODEL, **changed.get("model", {})}
    with pytest.warns(UserWarning, match=f"another configuration.*{differs_in}.*starts fresh"):
        reused = train_and_test(settings, splits, **model, seed=0, checkpoint=checkpoint)
    fresh = train_and_test(settings, splits, **model, seed=0)
    assert _same(reused, fresh)
    assert len(reused.history) == settings.epochs


def test_a_checkpoint_of_other_data_is_not_resumed(splits, tmp_path):
    checkpoint = tmp_path / "model.pt"
    train_and_test(SETTINGS, splits, **MODEL, seed=0, checkpoint=checkpoint)
    other = load_fewshot("glyphs", image_size=16, instances_per_class=6, hard=True)  # same classes, other pixels
    assert other.train.labels.equal(splits.train.labels)
    with pytest.warns(UserWarning, match="train_data"):
        reused = train_and_test(SETTINGS, other, **MODEL, seed=0, checkpoint=checkpoint)
    assert _same(reused, train_and_test(SETTINGS, other, **MODEL, seed=0))


def test_the_same_configuration_resumes_without_a_warning(splits, tmp_path, recwarn):
    checkpoint = tmp_path / "model.pt"
    first = train_and_test(SETTINGS, splits, **MODEL, seed=0, checkpoint=checkpoint)
    again = train_and_test(SETTINGS, splits, **MODEL, seed=0, checkpoint=checkpoint)
    assert _same(first, again)
    assert not [warning for warning in recwarn if "checkpoint" in str(warning.message)]


def test_the_data_fingerprint_follows_pixels_and_labels_not_metadata(splits):
    train = splits.train
    assert train.fingerprint() == replace(train, description="renamed", extra={}).fingerprint()
    brighter = replace(train, images=train.images.clone())
    brighter.images[0, 0, 0, 0] += 1
    assert brighter.fingerprint() != train.fingerprint()
    assert replace(train, labels=train.labels.flip(0)).fingerprint() != train.fingerprint()
