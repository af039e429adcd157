"""Post-rendering corruptions that make the embedded few-shot glyphs harder (issue 13, item 3).

The glyphs of :func:`protolab.data.glyphs.load_glyphs` with the default :class:`GlyphStyle` put a
Euclidean ProtoNet at 96–99 % 5-way 1-shot accuracy, a ceiling at which geometries cannot be
compared. Difficulty comes from two places:

- the rendering (:class:`~protolab.data.glyphs.GlyphStyle`: stronger rotation, shear, scale,
  translation and stroke jitter), and
- :func:`corrupt`, applied to the rendered ``(N, 1, S, S)`` images with the knobs of a
  :class:`Corruption`: elastic distortion, clutter strokes, occlusion, additive pixel noise.

:data:`HARD_GLYPHS_STYLE` and :data:`HARD_GLYPHS_CORRUPTION` are the calibrated default, chosen by
``scripts/calibrate_fewshot.py`` on the *validation* classes with the Euclidean ProtoNet only
(table in ``lib/protolab/data/calibration/fewshot_glyphs.csv``).

:func:`corrupt` is pure: image ``i`` of the output depends only on image ``i`` of the input, the
knobs, ``seed`` and its index ``indices[i]`` (each knob draws from its own generator seeded with
``(seed, indices[i], knob)``), so corrupting a split in any order or in pieces gives the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from protolab.data.glyphs import GlyphStyle

__all__ = ["HARD_GLYPHS_CORRUPTION", "HARD_GLYPHS_STYLE", "Corruption", "corrupt"]

_ELASTIC, _CLUTTER, _OCCLUSION, _NOISE = range(4)  # sub-stream of each knob
_CURVE_POINTS = 32  # points sampled along each clutter stroke
_CHUNK = 128  # images per vectorised block (bounds memory)


@dataclass(frozen=True)
class Corruption:
    """Knobs of :func:`corrupt`, applied in this order; every knob at 0 leaves images unchanged.

    Attributes:
        elastic: root-mean-square displacement, in pixels, of an elastic distortion (Simard et al.
            2003): a per-image random displacement field, Gaussian-smoothed with standard deviation
            ``elastic_smoothness × S`` and rescaled to this RMS, applied by bilinear resampling.
        elastic_smoothness: smoothing width of the displacement field, as a fraction of the side.
        clutter: number of random ink strokes added to each image: quadratic Bézier curves of length
            ``0.25–0.6 × S`` at random places, anti-aliased, ``clutter_width × S`` wide, intensity 1
            (the glyphs' own ink), merged with the glyph by a pixel-wise maximum.
        clutter_width: width of a clutter stroke, as a fraction of the side (glyph strokes are about
            ``0.05–0.1 × S``).
        occlusion: side of one square, as a fraction of the side, set to 0 (background) at a random
            place fully inside the image; erases the ink under it.
        noise: standard deviation of additive i.i.d. Gaussian pixel noise; the result is clipped to
            ``[0, 1]``.
    """

    elastic: float = 0.0
    elastic_smoothness: float = 0.12
    clutter: int = 0
    clutter_width: float = 0.07
    occlusion: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if min(self.elastic, self.clutter, self.occlusion, self.noise) < 0 or self.occlusion > 1:
            raise ValueError(f"knobs must be non-negative and occlusion ≤ 1, got {self}")
        if self.elastic_smoothness <= 0 or self.clutter_width <= 0:
            raise ValueError(f"elastic_smoothness and clutter_width must be positive, got {self}")

    @property
    def is_identity(self) -> bool:
        """True when :func:`corrupt` returns its input unchanged."""
        return self.elastic == 0 and self.clutter == 0 and self.occlusion == 0 and self.noise == 0


def _rngs(seed: int, indices: np.ndarray, knob: int) -> list[np.random.Generator]:
    return [np.random.default_rng([seed, int(index), knob]) for index in indices]


def _gaussian_blur(field: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, S, S)`` with standard deviation ``sigma`` pixels (reflect padding)."""
    radius = max(1, min(int(3 * sigma + 0.5), field.shape[-1] - 1))
    x = torch.arange(-radius, radius + 1, dtype=field.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = field.shape[1]
    field = F.pad(field, (radius, radius, radius, radius), mode="reflect")
    field = F.conv2d(field, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    return F.conv2d(field, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def _elastic(images: torch.Tensor, knobs: Corruption, rngs: list[np.random.Generator]) -> torch.Tensor:
    n, _, side, _ = images.shape
    raw = torch.from_numpy(np.stack([rng.uniform(-1, 1, (2, side, side)) for rng in rngs])).float()
    field = _gaussian_blur(raw, knobs.elastic_smoothness * side)
    rms = field.pow(2).sum(dim=1).mean(dim=(1, 2)).sqrt().clamp_min(1e-12)
    field = field * (knobs.elastic / rms).view(n, 1, 1, 1)  # pixels
    axis = torch.arange(side, dtype=torch.float32)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    x = (xs + field[:, 0]) * 2 / (side - 1) - 1
    y = (ys + field[:, 1]) * 2 / (side - 1) - 1
    grid = torch.stack([x, y], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _clutter(images: torch.Tensor, knobs: Corruption, rngs: list[np.random.Generator]) -> torch.Tensor:
    n, _, side, _ = images.shape
    t = np.linspace(0.0, 1.0, _CURVE_POINTS)[:, None]
    points = []
    for rng in rngs:
        strokes = []
        for _ in range(knobs.clutter):
            start = rng.uniform(0, side, 2)
            angle = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(0.25, 0.6) * side
            end = start + length * np.array([np.cos(angle), np.sin(angle)])
            bend = rng.uniform(-0.4, 0.4) * length * np.array([-np.sin(angle), np.cos(angle)])
            middle = (start + end) / 2 + bend
            strokes.append((1 - t) ** 2 * start + 2 * t * (1 - t) * middle + t**2 * end)
        points.append(np.concatenate(strokes))
    points = torch.from_numpy(np.stack(points)).float() - 0.5  # pixel i covers [i, i+1): centre at i + 0.5
    axis = torch.arange(side, dtype=torch.float32)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    pixels = torch.stack([xs.ravel(), ys.ravel()], dim=-1)  # (S², 2) as (x, y)
    distance = torch.cdist(pixels.expand(n, -1, -1), points).amin(dim=-1)  # (n, S²)
    ink = (knobs.clutter_width * side / 2 + 0.5 - distance).clamp(0, 1).view(n, 1, side, side)
    return torch.maximum(images, ink)


def _occlusion(images: torch.Tensor, knobs: Corruption, rngs: list[np.random.Generator]) -> torch.Tensor:
    side = images.shape[-1]
    width = round(knobs.occlusion * side)
    out = images.clone()
    if width == 0:
        return out
    for image, rng in zip(out, rngs):
        top, left = rng.integers(0, side - width + 1, 2)
        image[:, top:top + width, left:left + width] = 0
    return out


def _noise(images: torch.Tensor, knobs: Corruption, rngs: list[np.random.Generator]) -> torch.Tensor:
    shape = images.shape[1:]
    noise = torch.from_numpy(np.stack([rng.standard_normal(shape) for rng in rngs])).float()
    return images + knobs.noise * noise


def corrupt(images: torch.Tensor, knobs: Corruption, *, seed: int,
            indices: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
    """``images`` with the corruptions of ``knobs`` (elastic → clutter → occlusion → noise), clipped to ``[0, 1]``.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, S, S)`` float in ``[0, 1]``, ink bright on a dark background (as every embedded set).
    knobs : Corruption
        What to apply; :attr:`Corruption.is_identity` knobs return a copy of ``images``.
    seed : int
        Seed of every random draw.
    indices : array of int, optional
        ``(N,)`` stable index of each image (default ``0..N-1``): image ``i``'s corruption depends only
        on ``(seed, indices[i])`` and its own pixels, so the output does not depend on the order or the
        batching of the images.

    Returns
    -------
    torch.Tensor
        ``(N, C, S, S)`` float32 in ``[0, 1]``.
    """
    if images.dim() != 4 or images.shape[-1] != images.shape[-2]:
        raise ValueError(f"expected square images (N, C, S, S), got {tuple(images.shape)}")
    indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
    if indices.shape != (len(images),):
        raise ValueError(f"indices must have shape ({len(images)},), got {indices.shape}")
    images = images.detach().to("cpu", torch.float32)
    if knobs.is_identity:
        return images.clone()
    steps = [(knobs.elastic > 0, _ELASTIC, _elastic), (knobs.clutter > 0, _CLUTTER, _clutter),
             (knobs.occlusion > 0, _OCCLUSION, _occlusion), (knobs.noise > 0, _NOISE, _noise)]
    blocks = []
    for start in range(0, len(images), _CHUNK):
        block, block_indices = images[start:start + _CHUNK], indices[start:start + _CHUNK]
        for active, knob, apply in steps:
            if active:
                block = apply(block, knobs, _rngs(seed, block_indices, knob))
        blocks.append(block.clamp(0, 1))
    return torch.cat(blocks) if blocks else images.clone()


HARD_GLYPHS_STYLE = GlyphStyle(rotation=30.0, shear=0.35, scale=(0.65, 1.1), translation=0.12, stroke=(0.0, 0.08))
"""Rendering of the hard few-shot glyphs: the default :class:`GlyphStyle` with three times its rotation,
more than twice its shear, translation and stroke jitter, and a wider scale range (calibration setting 2)."""

HARD_GLYPHS_CORRUPTION = Corruption(elastic=1.5)
"""Corruption of the hard few-shot glyphs: an elastic distortion of 1.5 pixels RMS (at 28×28) and nothing else.

With :data:`HARD_GLYPHS_STYLE`, seed 0, 28×28 and 20 instances per class, the Euclidean ProtoNet of
``fewshot_tables``' default protocol scores 55.3 ± 1.0 % at 5-way 1-shot on the validation classes
(``lib/protolab/data/calibration/fewshot_glyphs.csv``; the current rendering: 96.3 ± 0.5 %)."""
