"""Embedded glyphs: letters of many scripts rendered from the fonts matplotlib ships (no download).

One renderer (:func:`render_glyphs`) draws every embedded glyph image: each instance is one bundled
font × a random affine (rotation, shear, scale, translation) × a random stroke thickening, drawn at
``supersample`` times the output side and area-downsampled. On top of it:

- :func:`load_glyphs` — classes = characters, groups = scripts: the Omniglot stand-in for few-shot
  (with :func:`split_by_group` for alphabet-wise splits) and a re-identification set (identity =
  character, domain = font, as the camera is for Market-1501).
- :func:`load_digit_like_glyphs` — letters drawn like scikit-learn's digits (8×8, 0..16 ink counts),
  none of them digit look-alikes: the out-of-distribution set of a digits model.

Every dataset is deterministic for its options and cached under ``cache_dir()/<kind>/<hash>.pt`` with its
sha256 beside it (``<hash>.pt.sha256``); a cached file that does not match it is rebuilt, with a warning.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

import matplotlib
import numpy as np
import PIL
import torch
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw, ImageFont

from protolab.data.cache import cache_dir, is_intact, record_checksum
from protolab.data.digits import DIGIT_SIDE, digit_images
from protolab.data.images import LabeledImages
from protolab.data.transforms import resize_images
from protolab.core.atomic import atomic_write

CACHE_VERSION = 1
"""Bumped whenever a change of the code changes the pixels: old cache files are then ignored."""

_FONT_FILE = re.compile(r"(DejaVu(Sans|Serif|SansMono)(-\w+)?|STIXGeneral(Bol|BolIta|Italic)?)\.ttf")
# Left out: LastResort draws a placeholder box for every code point, the Computer Modern files (cm*)
# map ASCII code points to TeX symbol glyphs, and STIX NonUni/Siz* and DejaVu *Display hold only
# unencoded or size variants.

_SCRIPT_END = ("LETTER", "SYLLABLE", "CAPITAL", "SMALL")
_MIN_SCRIPT_CLASSES = 10
_LETTER_CATEGORIES = ("Lu", "Ll", "Lt", "Lo")


@functools.cache
def bundled_fonts() -> tuple[Path, ...]:
    """The text fonts matplotlib bundles that encode real Unicode glyphs (DejaVu and STIX), sorted."""
    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return tuple(sorted(path for path in root.glob("*.ttf") if _FONT_FILE.fullmatch(path.name)))


@functools.cache
def _cmap(path: Path) -> frozenset[int]:
    """Code points ``path`` maps to a real glyph (not ``.notdef``)."""
    with TTFont(path, lazy=True) as font:
        return frozenset(code for code, glyph in font.getBestCmap().items() if glyph != ".notdef")


@functools.cache
def _font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), size, layout_engine=ImageFont.Layout.BASIC)


@functools.cache
def font_coverage() -> dict[int, int]:
    """For every code point some bundled font encodes, how many of :func:`bundled_fonts` encode it."""
    counts: dict[int, int] = {}
    for path in bundled_fonts():
        for code in _cmap(path):
            counts[code] = counts.get(code, 0) + 1
    return counts


def script_of(char: str) -> str | None:
    """The script of a letter from its Unicode name: the words before ``LETTER``/``SYLLABLE``/case.

    ``"GREEK SMALL LETTER ALPHA" -> "GREEK"``, ``"CANADIAN SYLLABICS E" -> "CANADIAN SYLLABICS"``;
    ``None`` when the name has no such word or the character has no name.
    """
    words = unicodedata.name(char, "").split()
    if words[:2] == ["CANADIAN", "SYLLABICS"]:
        return "CANADIAN SYLLABICS"
    for i, word in enumerate(words):
        if word in _SCRIPT_END:
            return " ".join(words[:i]) or None
    return None


def glyph_letters(scripts: Sequence[str] | None = None, min_fonts: int = 2) -> list[str]:
    """Letters that at least ``min_fonts`` bundled fonts encode, sorted by code point.

    Letters are characters of category ``Lu``/``Ll``/``Lt``/``Lo`` with no Unicode decomposition (so
    no precomposed accented letter and no presentation form) whose :func:`script_of` is one of
    ``scripts``; with ``scripts=None``, every script with at least 10 such letters.
    """
    by_script: dict[str, list[str]] = {}
    for code in sorted(code for code, count in font_coverage().items() if count >= min_fonts):
        char = chr(code)
        if unicodedata.category(char) not in _LETTER_CATEGORIES or unicodedata.decomposition(char):
            continue
        script = script_of(char)
        if script is not None:
            by_script.setdefault(script, []).append(char)
    if scripts is None:
        wanted = {name for name, chars in by_script.items() if len(chars) >= _MIN_SCRIPT_CLASSES}
    else:
        unknown = sorted(set(scripts) - set(by_script))
        if unknown:
            raise ValueError(f"no bundled font covers scripts {unknown}; available: {sorted(by_script)}")
        wanted = set(scripts)
    return sorted((char for name in wanted for char in by_script[name]), key=ord)


@dataclass(frozen=True)
class GlyphStyle:
    """How a glyph instance is drawn.

    Attributes:
        em: font size as a fraction of the side, so that letters keep their relative size (case,
            accents); ``None`` scales every glyph to fill ``box`` instead.
        box: largest ``(height, width)`` of an upright glyph, as fractions of the side.
        rotation: largest rotation, degrees (uniform in ``±rotation``).
        shear: largest horizontal shear factor (uniform in ``±shear``).
        scale: range of the random scale factor.
        translation: largest shift along each axis, as a fraction of the side.
        stroke: range of the added stroke width, as a fraction of the font size.
        supersample: drawing resolution, as a multiple of the output side.
        bitmap: binarise the drawing and count ink pixels per ``supersample × supersample`` block
            (intensities ``0..supersample²``, as in the UCI digits) instead of area-averaging to 255
            levels.
    """

    em: float | None = 0.75
    box: tuple[float, float] = (0.9, 0.9)
    rotation: float = 10.0
    shear: float = 0.15
    scale: tuple[float, float] = (0.85, 1.05)
    translation: float = 0.05
    stroke: tuple[float, float] = (0.0, 0.04)
    supersample: int = 4
    bitmap: bool = False

    @property
    def levels(self) -> int:
        """Intensity levels of a pixel: an image is ``pixels / levels``."""
        return self.supersample**2 if self.bitmap else 255


@dataclass(frozen=True)
class RenderedGlyphs:
    """Output of :func:`render_glyphs`.

    Attributes:
        pixels: ``(N, S, S)`` uint8 in ``0..levels``, white ink on black.
        levels: intensity levels; the image is ``pixels / levels``.
        labels: ``(N,)`` int64 index into ``chars``.
        fonts: ``(N,)`` int64 index into ``font_names``.
        chars: the characters drawn (those of the request that passed the coverage checks).
        font_names: file names of the bundled fonts.
    """

    pixels: np.ndarray
    levels: int
    labels: np.ndarray
    fonts: np.ndarray
    chars: list[str]
    font_names: list[str]

    def images(self) -> torch.Tensor:
        """``(N, 1, S, S)`` float32 in ``[0, 1]``."""
        return torch.from_numpy(self.pixels).unsqueeze(1).float() / self.levels

    def select(self, indices: np.ndarray) -> "RenderedGlyphs":
        """The images at ``indices`` (int ``(M,)``); characters left without an image are dropped and
        labels renumbered."""
        used = np.unique(self.labels[indices])
        relabel = np.zeros(len(self.chars), dtype=np.int64)
        relabel[used] = np.arange(len(used))
        return RenderedGlyphs(
            pixels=self.pixels[indices], levels=self.levels, labels=relabel[self.labels[indices]],
            fonts=self.fonts[indices], chars=[self.chars[i] for i in used], font_names=self.font_names,
        )


def _draw(char: str, path: Path, font_px: int, stroke_px: int) -> Image.Image | None:
    """``char`` drawn white on black in font ``path`` at ``font_px``, cropped to its ink; ``None``
    when it draws nothing."""
    font = _font(path, font_px)
    left, top, right, bottom = font.getbbox(char, stroke_width=stroke_px)
    canvas = Image.new("L", (max(right - left, 1), max(bottom - top, 1)))
    ImageDraw.Draw(canvas).text((-left, -top), char, fill=255, font=font, stroke_width=stroke_px, stroke_fill=255)
    ink = canvas.getbbox()
    return None if ink is None else canvas.crop(ink)


def _place(
    ink: Image.Image, side: int, scale: float, angle: float, shear: float, shift: np.ndarray
) -> Image.Image:
    """``ink`` centred on a ``side × side`` canvas through the affine map scale · rotation · shear,
    then shifted by ``shift`` pixels."""
    cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    forward = scale * np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]])
    inverse = np.linalg.inv(forward)
    centre_in = np.array(ink.size, dtype=float) / 2
    offset = centre_in - inverse @ (side / 2 + shift)
    coefficients = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
    return ink.transform((side, side), Image.Transform.AFFINE, coefficients, resample=Image.Resampling.BILINEAR)


def _downsample(canvas: Image.Image, style: GlyphStyle) -> np.ndarray:
    """Area-downsample (or, for ``style.bitmap``, binarise and count per block) by ``supersample``."""
    k = style.supersample
    if not style.bitmap:
        return np.asarray(canvas.reduce(k))
    ink = np.asarray(canvas) >= 128
    side = ink.shape[0] // k
    return ink.reshape(side, k, side, k).sum(axis=(1, 3)).astype(np.uint8)


def _fit_scale(ink: Image.Image, side: int, style: GlyphStyle) -> float:
    """Scale that fits ``ink`` into ``style.box``; with ``style.em``, never above the natural size."""
    width, height = ink.size
    fit = min(style.box[0] * side / height, style.box[1] * side / width)
    return fit if style.em is None else min(1.0, fit)


def _instance(
    char: str,
    path: Path,
    style: GlyphStyle,
    side: int,
    font_px: int,
    strokes: np.ndarray,
    rng: np.random.Generator,
    mean_targets: np.ndarray | None,
) -> np.ndarray:
    """One jittered drawing of ``char`` in font ``path``, ``(S, S)`` uint8 (``S = side / supersample``).

    The added stroke width is drawn from ``strokes`` (pixels at ``font_px``); with ``mean_targets``,
    every width is tried and the drawing whose mean intensity is closest to a random target is kept.
    """
    angle, shear = rng.uniform(-1, 1, 2) * (style.rotation, style.shear)
    scale = rng.uniform(*style.scale)
    shift = rng.uniform(-1, 1, 2) * style.translation * side
    if mean_targets is None:
        widths, target = [int(strokes[rng.integers(len(strokes))])], None
    else:
        widths, target = strokes.tolist(), mean_targets[rng.integers(len(mean_targets))]
    drawings = []
    for width in widths:
        ink = _draw(char, path, font_px, width)
        canvas = _place(ink, side, scale * _fit_scale(ink, side, style), angle, shear, shift)
        drawings.append(_downsample(canvas, style))
    if target is None:
        return drawings[0]
    return min(drawings, key=lambda image: abs(image.mean() / style.levels - target))


def render_glyphs(
    chars: Sequence[str],
    *,
    image_size: int,
    instances_per_class: int,
    seed: int,
    style: GlyphStyle = GlyphStyle(),
    min_fonts: int = 1,
    dedupe: bool = False,
    mean_targets: np.ndarray | None = None,
) -> RenderedGlyphs:
    """Draw ``instances_per_class`` jittered instances of each character.

    A character is kept when at least ``min_fonts`` bundled fonts map it to a glyph that draws ink;
    its instances cycle through those fonts in a random order. The random stream of a character
    depends only on ``seed`` and its code point, so a character looks the same whatever else is drawn.

    Parameters
    ----------
    chars : sequence of str
        Characters to draw, one class each.
    image_size : int
        Side ``S`` of the images.
    instances_per_class : int
        Images per character.
    seed : int
        Seed of fonts' order and jitter.
    style : GlyphStyle
        Placement, jitter and quantisation.
    min_fonts : int
        Fewest fonts that must draw a character for it to be kept.
    dedupe : bool
        Drop a character whose undistorted drawing in some font is identical to that of an earlier
        kept character (e.g. Greek Alpha after Latin A).
    mean_targets : np.ndarray, optional
        ``(M,)`` mean intensities in ``[0, 1]``: when given, each instance draws a target from them
        and uses the stroke width in ``style.stroke`` whose image mean comes closest.

    Returns
    -------
    RenderedGlyphs
        ``pixels`` ``(N, S, S)`` with ``N = instances_per_class × len(chars kept)``.
    """
    fonts = bundled_fonts()
    side = image_size * style.supersample
    font_px = round((1.0 if style.em is None else style.em) * side)
    strokes = np.arange(round(style.stroke[0] * font_px), round(style.stroke[1] * font_px) + 1)
    seen: set[tuple[int, bytes]] = set()
    kept, pixels, labels, font_ids = [], [], [], []
    for char in chars:
        usable = []
        signatures = []
        for index, path in enumerate(fonts):
            if ord(char) not in _cmap(path):
                continue
            ink = _draw(char, path, font_px, 0)
            if ink is not None:
                usable.append(index)
                signatures.append((index, hashlib.blake2b(ink.tobytes() + bytes(str(ink.size), "ascii")).digest()))
        if len(usable) < min_fonts or (dedupe and seen.intersection(signatures)):
            continue
        seen.update(signatures)
        rng = np.random.default_rng([seed, ord(char)])
        order = rng.permutation(usable)
        for i in range(instances_per_class):
            font = order[i % len(order)]
            pixels.append(_instance(char, fonts[font], style, side, font_px, strokes, rng, mean_targets))
            labels.append(len(kept))
            font_ids.append(font)
        kept.append(char)
    return RenderedGlyphs(
        pixels=np.stack(pixels) if pixels else np.zeros((0, image_size, image_size), np.uint8),
        levels=style.levels,
        labels=np.asarray(labels, dtype=np.int64),
        fonts=np.asarray(font_ids, dtype=np.int64),
        chars=kept,
        font_names=[path.name for path in fonts],
    )


def options_key(options: Mapping) -> str:
    """Short stable hash of JSON-able ``options`` (with the renderer's and libraries' versions)."""
    stamp = {"options": options, "cache_version": CACHE_VERSION, "pillow": PIL.__version__,
             "matplotlib": matplotlib.__version__, "fonts": [path.name for path in bundled_fonts()]}
    return hashlib.sha256(json.dumps(stamp, sort_keys=True).encode()).hexdigest()[:16]


_TENSORS = ("pixels", "labels", "fonts")


def _cached(
    kind: str, options: dict, build: Callable[[], tuple[dict[str, torch.Tensor], dict]]
) -> tuple[dict[str, torch.Tensor], dict, Path]:
    """Tensors and JSON metadata from ``cache_dir()/kind/<options_key>.pt``, built and saved (with its
    checksum, see :func:`~protolab.data.cache.record_checksum`) when the file is missing, altered (a
    warning says so) or for other options."""
    options = json.loads(json.dumps(options))
    path = cache_dir() / kind / f"{options_key(options)}.pt"
    if is_intact(path):
        blob = torch.load(path, weights_only=True)
        meta = json.loads(blob.pop("meta"))
        if meta["options"] == options:
            return blob, meta, path
    tensors, meta = build()
    meta = {**meta, "options": options}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save({**tensors, "meta": json.dumps(meta)}, handle))
    record_checksum(path)
    return tensors, meta, path


def _to_labeled(
    tensors: dict[str, torch.Tensor], meta: dict, path: Path, image_size: int | None = None
) -> LabeledImages:
    """A cached entry as :class:`LabeledImages`, resized (bilinear) to ``image_size`` when given."""
    images = tensors["pixels"].unsqueeze(1).float() / meta["levels"]
    resized = image_size is not None and image_size != images.shape[-1]
    return LabeledImages(
        labels=tensors["labels"],
        class_names=[unicodedata.name(char) for char in meta["chars"]],
        description=meta["description"] + (f", resized to {image_size}x{image_size}" if resized else ""),
        images=resize_images(images, image_size) if resized else images,
        groups=[script_of(char) for char in meta["chars"]],
        domains=tensors["fonts"],
        extra={"chars": meta["chars"], "fonts": meta["font_names"], "cache_file": str(path), **meta["options"],
               **meta.get("extra", {})},
    )


def _cache_entry(rendered: RenderedGlyphs, description: str, **extra) -> tuple[dict[str, torch.Tensor], dict]:
    """What :func:`_cached` stores of ``rendered``: its arrays as tensors and the rest as metadata."""
    tensors = {key: torch.from_numpy(getattr(rendered, key)) for key in _TENSORS}
    meta = {"levels": rendered.levels, "chars": rendered.chars, "font_names": rendered.font_names,
            "description": description, "extra": extra}
    return tensors, meta


def load_glyphs(
    seed: int = 0,
    image_size: int = 28,
    scripts: Sequence[str] | None = None,
    instances_per_class: int = 20,
    min_fonts: int = 2,
    style: GlyphStyle = GlyphStyle(),
) -> LabeledImages:
    """Letters of many scripts, each drawn ``instances_per_class`` times: the Omniglot stand-in.

    Parameters
    ----------
    seed : int
        Seed of the jitter.
    image_size : int
        Side of the images.
    scripts : sequence of str, optional
        Scripts to draw (names as :func:`script_of` gives them); all with at least 10 letters if None.
    instances_per_class : int
        Images per character.
    min_fonts : int
        Fewest bundled fonts that must draw a letter for it to be a class.
    style : GlyphStyle
        Placement and jitter.

    Returns
    -------
    LabeledImages
        ``images`` ``(N, 1, S, S)`` float32 in ``[0, 1]`` (white strokes on black), ``labels``
        ``(N,)`` one class per character (``class_names`` are Unicode names, ``extra['chars']`` the
        characters), ``groups`` the script of each class, ``domains`` ``(N,)`` the font of each image
        (names in ``extra['fonts']``). Identical drawings across scripts are kept once.
    """
    options = {"seed": seed, "image_size": image_size, "scripts": None if scripts is None else sorted(scripts),
               "instances_per_class": instances_per_class, "min_fonts": min_fonts, "style": asdict(style)}

    def build() -> tuple[dict[str, torch.Tensor], dict]:
        rendered = render_glyphs(glyph_letters(scripts, min_fonts), image_size=image_size,
                                 instances_per_class=instances_per_class, seed=seed, style=style,
                                 min_fonts=min_fonts, dedupe=True)
        used = sorted(set(rendered.fonts.tolist()))
        n_scripts = len({script_of(char) for char in rendered.chars})
        description = (
            f"Embedded synthetic glyphs: {len(rendered.chars)} letters of {n_scripts} scripts rendered with PIL "
            f"from {len(used)} fonts bundled with matplotlib (DejaVu, STIX), {instances_per_class} random "
            f"affine/stroke variants each, {image_size}x{image_size}, seed {seed}"
        )
        return _cache_entry(rendered, description)

    return _to_labeled(*_cached("glyphs", options, build))


def split_by_group(
    data: LabeledImages,
    fractions: tuple[float, float, float] | None = (0.6, 0.2, 0.2),
    *,
    groups: tuple[Sequence[str], Sequence[str], Sequence[str]] | None = None,
    seed: int = 0,
) -> tuple[LabeledImages, LabeledImages, LabeledImages]:
    """Train/val/test splits by group (alphabet-wise, as in Omniglot): test classes come from unseen
    groups.

    Parameters
    ----------
    data : LabeledImages
        With ``groups`` set (one per class).
    fractions : tuple of float
        Target fractions of the classes in train, val and test; groups are taken in a seeded random
        order, each to the split furthest below its target (so every split with a positive fraction
        gets a group when there are enough). Ignored when ``groups`` is given.
    groups : tuple of three sequences of str, optional
        Explicit, disjoint group names of each split; classes of unlisted groups are dropped.
    seed : int
        Seed of the group order.

    Returns
    -------
    tuple of LabeledImages
        ``(train, val, test)`` subsets, class ids unchanged; ``extra['split_groups']`` names each
        subset's groups.
    """
    if data.groups is None:
        raise ValueError("split_by_group needs data with `groups` (one per class)")
    names = sorted(set(data.groups))
    if groups is None:
        if fractions is None or len(fractions) != 3 or min(fractions) < 0 or not math.isclose(sum(fractions), 1.0):
            raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")
        sizes = {name: data.groups.count(name) for name in names}
        targets = np.asarray(fractions) * len(data.groups)
        assigned: list[list[str]] = [[], [], []]
        counts = np.zeros(3)
        for name in np.random.default_rng(seed).permutation(names).tolist():
            deficit = np.where(targets > 0, (targets - counts) / np.maximum(targets, 1e-12), -np.inf)
            split = int(np.argmax(deficit))
            assigned[split].append(name)
            counts[split] += sizes[name]
        groups = tuple(sorted(part) for part in assigned)
    listed = [name for part in groups for name in part]
    if len(listed) != len(set(listed)) or not set(listed) <= set(names):
        raise ValueError(f"groups must be disjoint names among {names}, got {groups}")
    class_group = np.asarray(data.groups, dtype=object)
    labels = data.labels.numpy()
    splits = []
    for part, name in zip(groups, ("train", "val", "test")):
        indices = np.flatnonzero(np.isin(class_group[labels], list(part)))
        subset = data.subset(torch.from_numpy(indices), f"{data.description}; {name} scripts: {', '.join(part)}")
        subset.extra["split_groups"] = list(part)
        splits.append(subset)
    return splits[0], splits[1], splits[2]


DIGIT_LIKE_STYLE = GlyphStyle(
    em=None, box=(1.0, 0.8), rotation=8.0, shear=0.15, scale=(0.9, 1.0), translation=0.0,
    stroke=(0.0, 0.2), supersample=4, bitmap=True,
)
"""Drawing of :func:`load_digit_like_glyphs`: as the UCI digits, a 32×32 bitmap whose 4×4 blocks are
counted (0..16), the glyph filling the height; the stroke width is picked per image to match a digit's
mean intensity."""

_DIGIT_LOOKALIKES = frozenset("OoQDIlij|SsZzBbGgqJ")
"""Latin letters read as digits (0, 1, 5, 2, 8, 6, 9, 3); look-alikes in other scripts are found by
:func:`digit_lookalikes`' similarity test."""


def digit_lookalikes(chars: Sequence[str], threshold: float = 0.88) -> set[str]:
    """Characters that look like a digit: listed Latin look-alikes, and those whose undistorted
    drawing in some font has cosine similarity above ``threshold`` with a digit drawn in that font
    (both drawn as in :data:`DIGIT_LIKE_STYLE`, 16×16, without jitter)."""
    style = GlyphStyle(em=None, box=DIGIT_LIKE_STYLE.box, rotation=0.0, shear=0.0, scale=(1.0, 1.0),
                       translation=0.0, stroke=(0.0, 0.0), supersample=4)
    side = 16 * style.supersample
    origin = np.zeros(2)

    def vector(char: str, path: Path) -> np.ndarray | None:
        ink = _draw(char, path, side, 0)
        if ink is None:
            return None
        image = _downsample(_place(ink, side, _fit_scale(ink, side, style), 0.0, 0.0, origin), style)
        flat = image.astype(np.float64).ravel()
        return flat / np.linalg.norm(flat)

    found = {char for char in chars if char in _DIGIT_LOOKALIKES}
    for path in bundled_fonts():
        digits = [vector(d, path) for d in "0123456789" if ord(d) in _cmap(path)]
        digits = np.stack([v for v in digits if v is not None])
        for char in chars:
            if char in found or ord(char) not in _cmap(path):
                continue
            candidate = vector(char, path)
            if candidate is not None and float((digits @ candidate).max()) > threshold:
                found.add(char)
    return found


def load_digit_like_glyphs(
    seed: int = 0,
    n: int = 1000,
    image_size: int = DIGIT_SIDE,
    scripts: Sequence[str] | None = None,
    min_fonts: int = 2,
) -> LabeledImages:
    """Letters drawn like scikit-learn's digits, none a digit look-alike: out-of-distribution images
    for a digits model (the role Omniglot plays for MNIST).

    Drawn as :data:`DIGIT_LIKE_STYLE` (counts ``0..16`` of 4×4 blocks of a drawing at 4× the side, scaled by
    ``1/16``) directly at ``image_size`` (8: like scikit-learn's digits; 28: like MNIST, not an upsampled 8×8
    image), each image's stroke width chosen to match the mean intensity of a random digit. Which letters are
    drawn does not depend on ``image_size``.

    Parameters
    ----------
    seed : int
        Seed of the letters chosen, the jitter and the stroke targets.
    n : int
        Number of images.
    image_size : int
        Side of the images (as ``load_digits``' ``image_size``).
    scripts, min_fonts
        As :func:`load_glyphs`.

    Returns
    -------
    LabeledImages
        ``images`` ``(n, 1, image_size, image_size)`` float32 in ``[0, 1]``; one class per letter.
    """
    options = {"seed": seed, "n": n, "scripts": None if scripts is None else sorted(scripts),
               "min_fonts": min_fonts, "style": asdict(DIGIT_LIKE_STYLE), "side": image_size}

    def build() -> tuple[dict[str, torch.Tensor], dict]:
        distinct = render_glyphs(glyph_letters(scripts, min_fonts), image_size=DIGIT_SIDE, instances_per_class=0,
                                 seed=seed, style=DIGIT_LIKE_STYLE, min_fonts=min_fonts, dedupe=True).chars
        lookalikes = digit_lookalikes(distinct)
        candidates = [char for char in distinct if char not in lookalikes]
        rng = np.random.default_rng(seed)
        chosen = sorted(rng.choice(candidates, size=min(n, len(candidates)), replace=False).tolist(), key=ord)
        targets = digit_images()[0].mean(dim=(1, 2, 3)).numpy()
        rendered = render_glyphs(chosen, image_size=image_size, instances_per_class=-(-n // len(chosen)),
                                 seed=seed, style=DIGIT_LIKE_STYLE, min_fonts=min_fonts, mean_targets=targets)
        rendered = rendered.select(np.sort(rng.permutation(len(rendered.labels))[:n]))
        description = (
            f"Embedded synthetic digit-like glyphs: {n} images of {len(rendered.chars)} letters (no digit "
            f"look-alikes) rendered with PIL from matplotlib's bundled fonts as {4 * image_size}x{4 * image_size} "
            f"bitmaps counted in 4x4 blocks ({image_size}x{image_size}, 0..16 levels like scikit-learn's digits), "
            f"seed {seed}"
        )
        return _cache_entry(rendered, description, excluded_lookalikes=sorted(lookalikes, key=ord))

    return _to_labeled(*_cached("digit_like_glyphs", options, build), image_size=image_size)
