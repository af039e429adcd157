"""OOD images normalised to look like the in-distribution ones (protolab.data.ood_normalisation)."""

from __future__ import annotations

import pytest
import torch

from protolab.data.images import LabeledImages
from protolab.data.ood_normalisation import match_histograms, normalise_like, size_normalise
from protolab.data.pixel_statistics import PIXEL_STATISTICS, pixel_baseline


def _blobs(n: int, side: int, seed: int, *, bright: float, size: tuple[int, int]) -> torch.Tensor:
    """Random bright rectangles of random size in ``size`` at random places on black."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, side, side)
    for image in images:
        h, w = (int(torch.randint(size[0], size[1] + 1, (), generator=generator)) for _ in range(2))
        top, left = (int(torch.randint(0, side - s + 1, (), generator=generator)) for s in (h, w))
        image[0, top:top + h, left:left + w] = bright * (0.5 + 0.5 * torch.rand(h, w, generator=generator))
    return images


def test_size_normalisation_fits_the_ink_in_mnists_box_centred_by_its_centre_of_mass():
    image = torch.zeros(1, 1, 28, 28)
    image[0, 0, 2:6, 1:13] = 1.0  # a 4 × 12 bar in a corner
    out = size_normalise(image)[0, 0]
    rows, cols = torch.nonzero(out > 0.05, as_tuple=True)
    assert int(cols.max() - cols.min() + 1) == 20 and int(rows.max() - rows.min() + 1) <= 8  # aspect kept
    mass = out / out.sum()
    centre = ((mass.sum(1) * torch.arange(28)).sum(), (mass.sum(0) * torch.arange(28)).sum())
    assert all(abs(float(c) - 13.5) <= 0.5 for c in centre)
    assert torch.equal(size_normalise(torch.zeros(2, 1, 28, 28)), torch.zeros(2, 1, 28, 28))  # no ink: kept


def test_histogram_matching_gives_each_image_its_references_values_where_it_is_brightest():
    images, references = _blobs(6, 16, 0, bright=1.0, size=(8, 12)), _blobs(6, 16, 1, bright=0.6, size=(3, 6))
    matched = match_histograms(images, references)
    assert torch.equal(matched.flatten(1).sort(dim=1).values, references.flatten(1).sort(dim=1).values)
    for statistic in PIXEL_STATISTICS.values():  # every per-image statistic is the reference's
        assert torch.allclose(statistic(matched), statistic(references))
    # the reference's (fewer) ink pixels land inside the image's blob, none in its far background
    assert ((matched > 0) <= (images > 0)).all()


def test_normalised_ood_images_defeat_every_pixel_statistic_and_keep_their_labels():
    side = 20
    reference = LabeledImages(images=_blobs(400, side, 2, bright=1.0, size=(3, 7)), labels=torch.zeros(400).long(),
                              class_names=["in"], description="in-distribution")
    held_out = _blobs(300, side, 3, bright=1.0, size=(3, 7))
    ood = LabeledImages(images=_blobs(300, side, 4, bright=0.4, size=(10, 16)), labels=torch.arange(300) % 3,
                        class_names=["a", "b", "c"], description="OOD set")
    assert pixel_baseline(held_out, ood.images).auroc.iloc[0] > 0.95  # brightness alone tells them apart
    normalised = normalise_like(ood, reference, seed=0)
    histogram = pixel_baseline(held_out, normalised.images).set_index("statistic").loc[list(PIXEL_STATISTICS)]
    assert (histogram.auroc < 0.6).all()  # the histogram's statistics are equalised; the stroke width need not be
    assert torch.equal(normalised.labels, ood.labels) and "normalised to look like" in normalised.description
    assert torch.equal(normalised.images, normalise_like(ood, reference, seed=0).images)  # seeded
    with pytest.raises(ValueError, match="one-channel images of one size"):
        normalise_like(ood, LabeledImages(images=torch.zeros(2, 1, 8, 8), labels=torch.zeros(2).long(),
                                          class_names=["x"], description="small"), seed=0)
