"""The trivial pixel-statistic baseline of protolab.data.pixel_statistics."""

from __future__ import annotations

import pandas as pd
import torch

from protolab.data.pixel_statistics import (PIXEL_STATISTICS, TRIVIAL_STATISTICS, pixel_baseline, skeleton,
                                            stroke_width)


def test_each_statistic_gives_one_number_per_image():
    images = torch.zeros(3, 1, 4, 4)
    images[1] = 1.0
    images[2, 0, :2] = 0.5
    values = {name: statistic(images).tolist() for name, statistic in PIXEL_STATISTICS.items()}
    assert values["mean intensity"] == [0.0, 1.0, 0.25]
    assert values["ink fraction (> 0.5)"] == [0.0, 1.0, 0.0]
    assert values["mid-grey fraction (0.1–0.9)"] == [0.0, 0.0, 0.5]
    assert values["intensity spread (std)"][:2] == [0.0, 0.0] and values["intensity spread (std)"][2] > 0


def test_a_brighter_ood_set_is_given_away_whichever_direction_and_a_like_one_is_not():
    generator = torch.Generator().manual_seed(0)
    dark = torch.rand(200, 1, 8, 8, generator=generator) * 0.5
    bright = 0.5 + torch.rand(150, 1, 8, 8, generator=generator) * 0.5
    table = pixel_baseline(dark, bright)
    assert table.auroc.is_monotonic_decreasing and len(table) == len(TRIVIAL_STATISTICS)
    best = table.iloc[0]
    assert best.auroc == 1.0 and not best.higher_in  # the OOD images score higher: oriented, still 1.0
    assert pixel_baseline(bright, dark).set_index("statistic").loc["mean intensity"].higher_in
    alike = pixel_baseline(dark, torch.rand(150, 1, 8, 8, generator=generator) * 0.5)
    assert (alike.auroc < 0.65).all() and (alike.auroc >= 0.5).all()


def test_thinning_leaves_a_one_pixel_line_through_the_middle_of_a_stroke():
    masks = torch.zeros(3, 1, 24, 24, dtype=torch.bool)
    masks[0, 0, 4:20, 10:15] = True  # a vertical bar 16 × 5
    masks[1, 0, 11:13, 3:21] = True  # a horizontal bar 2 × 18
    masks[2, 0, 5:19, 5:19] = True
    masks[2, 0, 8:16, 8:16] = False  # a square ring 3 pixels thick
    lines = skeleton(masks)
    assert (lines <= masks).all() and torch.equal(skeleton(lines), lines)  # inside the shape; thin already
    assert set(lines[0, 0].nonzero()[:, 1].tolist()) == {12} and lines[0, 0].sum() >= 16 - 5  # its middle column
    assert lines[1, 0].sum(0).max() == 1 and lines[1, 0].sum() >= 15  # one pixel per column, nearly full length
    ring = lines[2, 0]
    assert ring[8:16, 8:16].sum() == 0 and ring.sum(0)[6:18].min() >= 1 and ring.sum(1)[6:18].min() >= 1  # closed
    assert torch.equal(skeleton(torch.zeros(1, 1, 5, 5, dtype=torch.bool)), torch.zeros(1, 1, 5, 5, dtype=torch.bool))


def test_stroke_width_tells_thick_strokes_from_thin_ones_of_the_same_ink():
    thin, thick = torch.zeros(1, 1, 40, 40), torch.zeros(1, 1, 40, 40)
    thin[0, 0, 2:38, 19:21] = 1.0  # 36 × 2: 72 ink pixels
    thick[0, 0, 14:26, 14:20] = 1.0  # 12 × 6: 72 ink pixels
    assert PIXEL_STATISTICS["mean intensity"](thin) == PIXEL_STATISTICS["mean intensity"](thick)
    widths = stroke_width(torch.cat([thin, thick, torch.zeros(1, 1, 40, 40)]))
    assert 2.0 <= widths[0] < 2.3 and widths[1] > 6.0 and widths[2] == 0.0


def test_uint8_images_are_scored_as_the_float_images_they_stand_for():
    generator = torch.Generator().manual_seed(0)
    stored_in = torch.randint(0, 256, (30, 1, 8, 8), generator=generator, dtype=torch.uint8)
    stored_ood = torch.randint(0, 128, (20, 1, 8, 8), generator=generator, dtype=torch.uint8)
    pd.testing.assert_frame_equal(pixel_baseline(stored_in, stored_ood),
                                  pixel_baseline(stored_in.float() / 255, stored_ood.float() / 255))
