"""Corruptions of the hard few-shot glyphs: pure, seeded, in range, each knob doing what it says."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from protolab.data import calibration_table, load_fewshot
from protolab.data.difficulty import HARD_GLYPHS_CORRUPTION, HARD_GLYPHS_STYLE, Corruption, corrupt
from protolab.data.glyphs import GlyphStyle

SIDE = 20
ALL = Corruption(elastic=1.5, clutter=3, occlusion=0.3, noise=0.2)


@pytest.fixture
def glyphs() -> torch.Tensor:
    """``(12, 1, 20, 20)`` images: a bright cross (stroke 3 px) on black, shifted per image."""
    images = torch.zeros(12, 1, SIDE, SIDE)
    for i, image in enumerate(images):
        shift = i % 5
        image[0, 4 + shift:15 + shift, 8:11] = 1.0
        image[0, 8:11, 3 + shift:14 + shift] = 0.8
    return images


def test_zero_knobs_are_the_identity(glyphs):
    knobs = Corruption()
    assert knobs.is_identity
    out = corrupt(glyphs, knobs, seed=0)
    assert torch.equal(out, glyphs) and out is not glyphs


@pytest.mark.parametrize("knobs", [ALL, Corruption(noise=0.5), Corruption(clutter=5), Corruption(elastic=3.0)])
def test_values_stay_in_unit_interval_with_shape_and_dtype(glyphs, knobs):
    out = corrupt(glyphs.double(), knobs, seed=1)
    assert out.shape == glyphs.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("seed", [0, 7])
def test_deterministic_per_seed_and_index_whatever_the_order_or_batching(glyphs, seed):
    out = corrupt(glyphs, ALL, seed=seed)
    assert torch.equal(out, corrupt(glyphs, ALL, seed=seed))
    order = torch.randperm(len(glyphs), generator=torch.Generator().manual_seed(seed))
    shuffled = corrupt(glyphs[order], ALL, seed=seed, indices=order)
    assert torch.equal(shuffled, out[order])
    pieces = torch.cat([corrupt(glyphs[i:i + 1], ALL, seed=seed, indices=[i]) for i in range(len(glyphs))])
    assert torch.equal(pieces, out)


def test_different_seeds_and_indices_differ(glyphs):
    same = glyphs[:1].repeat(4, 1, 1, 1)
    out = corrupt(same, ALL, seed=0)
    assert all(not torch.equal(out[0], out[i]) for i in range(1, 4))
    assert not torch.equal(out, corrupt(same, ALL, seed=1))


def test_noise_has_the_documented_standard_deviation():
    grey = torch.full((64, 1, SIDE, SIDE), 0.5)  # far from the clipping bounds for std 0.1
    out = corrupt(grey, Corruption(noise=0.1), seed=0)
    assert float((out - grey).std()) == pytest.approx(0.1, rel=0.03)
    assert float((out - grey).mean()) == pytest.approx(0.0, abs=0.003)


def test_clutter_adds_ink_and_never_removes_any(glyphs):
    blank = torch.zeros(8, 1, SIDE, SIDE)
    ink = [float(corrupt(blank, Corruption(clutter=k), seed=0).sum()) for k in (1, 3, 6)]
    assert 0 < ink[0] < ink[1] < ink[2]
    out = corrupt(glyphs, Corruption(clutter=3), seed=0)
    assert (out >= glyphs).all() and out.sum() > glyphs.sum()
    width = 0.07 * SIDE  # one stroke of length ≥ 0.25·S covers at least about length × width pixels minus the border
    assert float(corrupt(blank, Corruption(clutter=1), seed=0)[0].sum()) > 0.25 * SIDE * width / 4


def test_occlusion_erases_one_square_of_the_documented_side():
    white = torch.ones(6, 1, SIDE, SIDE)
    out = corrupt(white, Corruption(occlusion=0.3), seed=0)
    width = round(0.3 * SIDE)
    for image in out[:, 0]:
        erased = (image == 0).nonzero()
        assert len(erased) == width**2
        assert (erased.max(0).values - erased.min(0).values + 1).tolist() == [width, width]
    assert torch.equal(corrupt(white, Corruption(occlusion=1.0), seed=0), torch.zeros_like(white))


def test_elastic_moves_ink_without_creating_much(glyphs):
    out = corrupt(glyphs, Corruption(elastic=1.5), seed=0)
    assert not torch.equal(out, glyphs)
    assert float(out.sum()) == pytest.approx(float(glyphs.sum()), rel=0.1)  # resampled, not added
    small = corrupt(glyphs, Corruption(elastic=0.3), seed=0)
    assert (small - glyphs).abs().mean() < (out - glyphs).abs().mean()


def test_knobs_are_validated():
    with pytest.raises(ValueError):
        Corruption(noise=-0.1)
    with pytest.raises(ValueError):
        Corruption(occlusion=1.5)
    with pytest.raises(ValueError):
        corrupt(torch.zeros(2, 1, 4, 5), Corruption(noise=0.1), seed=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ALL.noise = 0.3  # type: ignore[misc]


def test_presets_have_the_expected_types():
    assert isinstance(HARD_GLYPHS_STYLE, GlyphStyle) and isinstance(HARD_GLYPHS_CORRUPTION, Corruption)
    assert not HARD_GLYPHS_CORRUPTION.is_identity or HARD_GLYPHS_STYLE != GlyphStyle()


def test_load_fewshot_glyphs_uses_the_calibrated_harder_rendering_by_default():
    hard = load_fewshot("glyphs", image_size=16, instances_per_class=4, seed=0)
    plain = load_fewshot("glyphs", image_size=16, instances_per_class=4, seed=0, hard=False)
    assert "calibrated harder rendering" in hard.test.description and "calibrated" not in plain.test.description
    assert hard.test.class_names == plain.test.class_names and hard.test.images.shape == plain.test.images.shape
    assert not torch.equal(hard.test.images, plain.test.images)
    assert torch.equal(hard.test.images, load_fewshot("glyphs", image_size=16, instances_per_class=4, seed=0).test.images)


def test_the_calibration_tables_record_the_chosen_settings():
    fewshot = calibration_table("fewshot_glyphs")
    chosen = fewshot[fewshot.chosen]
    assert len(chosen) == 1 and 45 <= float(chosen["val_accuracy_%"].iloc[0]) <= 70
    assert float(chosen["elastic"].iloc[0]) == HARD_GLYPHS_CORRUPTION.elastic
    assert float(chosen["style_rotation"].iloc[0]) == HARD_GLYPHS_STYLE.rotation
    assert len(calibration_table("reid_glyphs")) >= 3
    with pytest.raises(ValueError, match="fewshot_glyphs"):
        calibration_table("nosuch")
