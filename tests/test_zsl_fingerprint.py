"""ZSLData.fingerprint identifies the features a zero-shot model is trained on (IPN grid cells record it)."""

from __future__ import annotations

from dataclasses import replace

from protolab.data.xlsa17 import load_xlsa17
from tests.layouts import write_awa2_like


def test_the_fingerprint_follows_features_attributes_and_splits_not_names(tmp_path):
    data = load_xlsa17(write_awa2_like(tmp_path / "a"), "AWA2")
    same = load_xlsa17(write_awa2_like(tmp_path / "b"), "AWA2")
    assert data.fingerprint() == same.fingerprint() == replace(data, description="renamed").fingerprint()
    features = data.test_unseen.features.clone()
    features[0, 0] += 1e-3
    assert replace(data, test_unseen=replace(data.test_unseen, features=features)).fingerprint() != data.fingerprint()
    assert replace(data, attributes=data.attributes.flip(0)).fingerprint() != data.fingerprint()
    other = load_xlsa17(write_awa2_like(tmp_path / "c", seed=1), "AWA2")
    assert other.fingerprint() != data.fingerprint()
