"""The trivial pixel-statistic baseline of protolab.data.pixel_statistics."""

from __future__ import annotations

import pandas as pd
import torch

from protolab.data.pixel_statistics import PIXEL_STATISTICS, pixel_baseline


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
    assert table.auroc.is_monotonic_decreasing and len(table) == len(PIXEL_STATISTICS)
    best = table.iloc[0]
    assert best.auroc == 1.0 and not best.higher_in  # the OOD images score higher: oriented, still 1.0
    assert pixel_baseline(bright, dark).set_index("statistic").loc["mean intensity"].higher_in
    alike = pixel_baseline(dark, torch.rand(150, 1, 8, 8, generator=generator) * 0.5)
    assert (alike.auroc < 0.65).all() and (alike.auroc >= 0.5).all()


def test_uint8_images_are_scored_as_the_float_images_they_stand_for():
    generator = torch.Generator().manual_seed(0)
    stored_in = torch.randint(0, 256, (30, 1, 8, 8), generator=generator, dtype=torch.uint8)
    stored_ood = torch.randint(0, 128, (20, 1, 8, 8), generator=generator, dtype=torch.uint8)
    pd.testing.assert_frame_equal(pixel_baseline(stored_in, stored_ood),
                                  pixel_baseline(stored_in.float() / 255, stored_ood.float() / 255))
