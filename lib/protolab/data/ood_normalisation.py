"""Out-of-distribution images normalised to look like the in-distribution ones, as the paper did for Omniglot.

Khrulkov et al. (Sec. 5.1) evaluate MNIST against Omniglot "normalised to look like MNIST". Without that step an
OOD detector can succeed on brightness alone (:mod:`protolab.data.pixel_statistics`), and a claim about the
geometry of the embedding says nothing. :func:`normalise_like` applies two steps to each OOD image:

1. **MNIST's size normalisation** (:func:`size_normalise`, LeCun et al.'s procedure for MNIST): the ink's bounding
   box is scaled, aspect ratio kept, to fit a ``20/28`` box of the side, and the image is centred by its centre of
   mass.
2. **Histogram matching to a random in-distribution training image** (:func:`match_histograms`): the image's pixels,
   ranked, take the sorted values of that image, so that every per-image pixel statistic (mean intensity, ink and
   mid-grey fractions, spread) is the reference image's; ties among equal pixels are broken by the distance to the
   strokes (a blurred copy), so extra ink thickens strokes and missing ink thins them instead of lighting up
   isolated background pixels.

The references are the in-distribution *training* images, never the test images the detector is scored on.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F
from torchvision.transforms.functional import gaussian_blur

from protolab.data.images import LabeledImages, float_images

__all__ = ["match_histograms", "normalise_like", "size_normalise"]

BOX = 20 / 28
"""MNIST's digit box, as a fraction of the side (20 pixels of 28)."""


def size_normalise(images: torch.Tensor, *, box: float = BOX, ink: float = 0.05) -> torch.Tensor:
    """Each image of ``images`` ``(N, 1, S, S)`` (values in [0, 1], bright ink on black) with its ink — the pixels
    above ``ink`` × its maximum — cropped to their bounding box, resized (bilinear, antialiased) so that the longer
    side is ``round(box · S)`` with the aspect ratio kept, and pasted so that its centre of mass falls on the
    centre of the image (as near as whole pixels allow; clipped at the border). An image without ink is kept."""
    side = images.shape[-1]
    target = max(1, round(box * side))
    out = torch.zeros_like(images)
    for index, image in enumerate(images[:, 0]):
        rows, cols = torch.nonzero(image > ink * image.max(), as_tuple=True)
        if not len(rows) or image.max() <= 0:
            out[index, 0] = image
            continue
        crop = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        scale = target / max(crop.shape)
        size = (max(1, round(crop.shape[0] * scale)), max(1, round(crop.shape[1] * scale)))
        glyph = F.interpolate(crop[None, None], size=size, mode="bilinear", antialias=True,
                              align_corners=False)[0, 0].clamp(0, 1)
        weights = glyph / glyph.sum()
        centre = ((weights.sum(1) * torch.arange(size[0])).sum(), (weights.sum(0) * torch.arange(size[1])).sum())
        top, left = (round((side - 1) / 2 - float(c)) for c in centre)
        dst_top, dst_left = max(0, top), max(0, left)
        src_top, src_left = dst_top - top, dst_left - left
        height = min(size[0] - src_top, side - dst_top)
        width = min(size[1] - src_left, side - dst_left)
        out[index, 0, dst_top:dst_top + height, dst_left:dst_left + width] = \
            glyph[src_top:src_top + height, src_left:src_left + width]
    return out


def match_histograms(images: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """``images`` ``(N, C, H, W)`` with each image's pixel values replaced, rank for rank, by the sorted pixel
    values of ``references[i]`` ``(N, C, H, W)``: the result has exactly the reference's values, placed where the
    image is brightest. Ties (the black background) are ranked by a Gaussian blur of the image (σ = side / 14), so
    the reference's extra ink goes next to the strokes."""
    blurred = gaussian_blur(images, kernel_size=2 * (images.shape[-1] // 7) + 1, sigma=images.shape[-1] / 14)
    key = (images + 1e-3 * blurred).flatten(1)
    values = references.flatten(1).sort(dim=1).values
    matched = torch.empty_like(key).scatter_(1, key.argsort(dim=1, stable=True), values.to(key.dtype))
    return matched.view_as(images)


def normalise_like(ood: LabeledImages, reference: LabeledImages, *, seed: int) -> LabeledImages:
    """``ood`` size-normalised (:func:`size_normalise`) and histogram-matched (:func:`match_histograms`) to
    in-distribution ``reference`` images drawn at random with ``seed`` (one per OOD image, with replacement); same
    labels and metadata, its description saying so. Both sets must have one channel and the same side (float in
    [0, 1] or uint8, converted by :func:`~protolab.data.images.float_images`)."""
    images, references = float_images(ood.images), float_images(reference.images)
    if images.shape[1:] != references.shape[1:] or images.shape[1] != 1:
        raise ValueError(f"normalise_like needs one-channel images of one size: OOD {tuple(images.shape[1:])}, "
                         f"reference {tuple(references.shape[1:])}")
    pick = torch.randint(len(references), (len(images),), generator=torch.Generator().manual_seed(seed))
    normalised = match_histograms(size_normalise(images), references[pick])
    return LabeledImages(images=normalised, labels=ood.labels, class_names=ood.class_names,
                         description=f"{ood.description}; normalised to look like the in-distribution training "
                         "images (MNIST's size normalisation, then each image's histogram matched to a random one)",
                         groups=ood.groups, domains=ood.domains, person_ids=ood.person_ids, extra=ood.extra)
