"""scikit-learn's bundled handwritten digits: the embedded MNIST stand-in (real data, no download).

The 1,797 images are the UCI "optdigits" set: 32×32 binary bitmaps of handwritten digits, each 4×4
block counted into one pixel, so every image is 8×8 with integer intensities 0..16.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split

from protolab.data.images import LabeledImages
from protolab.data.transforms import resize_images

DIGIT_LEVELS = 16
"""Intensity levels of the digits: every pixel is a count of ink pixels in a 4×4 block, ``0..16``."""

DIGIT_SIDE = 8
"""Native side of the digits in pixels."""


def digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits: images ``(N, 1, 8, 8)`` float32 in ``[0, 1]`` (intensity ``/16``) and labels
    int64 ``(N,)``."""
    bunch = datasets.load_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / DIGIT_LEVELS).unsqueeze(1)
    return images, torch.from_numpy(bunch.target.astype(np.int64))


def load_digits(
    seed: int = 0, test_fraction: float = 0.25, image_size: int = DIGIT_SIDE
) -> tuple[LabeledImages, LabeledImages]:
    """scikit-learn's handwritten digits, split into train and test, stratified by class.

    Parameters
    ----------
    seed : int
        Seed of the split (the images themselves are fixed data).
    test_fraction : float
        Fraction of the images in the test split, in ``(0, 1)``.
    image_size : int
        Side of the returned images; other than 8, the digits are resized bilinearly (e.g. 28 for
        MNIST-shaped backbones).

    Returns
    -------
    tuple of LabeledImages
        ``(train, test)``: images ``(N, 1, image_size, image_size)`` float32 in ``[0, 1]``
        (intensity ``/16``), labels int64 ``(N,)`` in ``0..9``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    pixels, labels = digit_images()
    images = resize_images(pixels, image_size)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels.numpy(), random_state=seed
    )
    resized = "" if image_size == DIGIT_SIDE else f", resized to {image_size}x{image_size}"
    data = LabeledImages(
        labels=labels,
        class_names=[str(digit) for digit in range(10)],
        description=(
            f"scikit-learn's bundled handwritten digits (real data: UCI optdigits, {len(labels)} images, "
            f"8x8 intensities 0..16 scaled to [0, 1]{resized})"
        ),
        images=images,
        extra={"seed": seed, "test_fraction": test_fraction, "image_size": image_size},
    )
    return (
        data.subset(torch.from_numpy(np.sort(train_idx)), f"{data.description}, train split (seed {seed})"),
        data.subset(torch.from_numpy(np.sort(test_idx)), f"{data.description}, test split (seed {seed})"),
    )
