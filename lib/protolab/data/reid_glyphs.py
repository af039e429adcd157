"""``reid-glyphs``: an embedded person re-identification stand-in (no download).

Identity = a character; camera = a rendering domain, one font of matplotlib's bundled DejaVu families
(Sans, Serif, Sans Mono; regular and bold/italic) with its own distortion style (affine jitter plus one
:func:`~protolab.data.difficulty.corrupt` corruption: pixel noise, elastic distortion, clutter strokes
or occlusion). It mirrors Market-1501's structure (:class:`~protolab.data.reid.ReidSplits`):

- disjoint training and test identities (Market-1501: 751 / 750), each seen by a random 2–4 of the
  :data:`CAMERAS` (Market-1501: every identity by at least 2 of 6 cameras);
- ``train``: ``images_per_camera`` images per identity and camera, labels ``0..n_train_ids-1``;
- ``query``: one image per test identity per camera that sees it;
- ``gallery``: ``images_per_camera`` further images per test identity and camera, plus distractors
  (characters of neither split, person id 0, two images each from random cameras).

Person ids are ``1..n_train_ids`` (train) and ``n_train_ids+1..`` (test); labels, ``domains`` (the
camera, 1–6) and ``person_ids`` follow :mod:`protolab.data.reid` exactly, so every re-ID
function reads the stand-in and the real releases alike. ``extra['chars']`` maps a person id to its
character. Characters are drawn only when every camera font encodes them and no two identities
render identically (Latin A and Greek Alpha are one identity at most).

``strength`` scales every jitter and corruption of the cameras together: the difficulty knob that
``scripts/calibrate_reid.py`` calibrates on a validation split of the training identities
(:data:`CALIBRATED_STRENGTH`, table in ``lib/protolab/data/calibration/reid_glyphs.csv``).

Built deterministically from its options and cached under ``cache_dir()/reid_glyphs/``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from protolab.data.cache import cache_dir, is_intact, record_checksum
from protolab.data.difficulty import Corruption, corrupt
from protolab.data.glyphs import GlyphStyle, _cmap, _draw, _instance, bundled_fonts, glyph_letters, options_key
from protolab.data.images import LabeledImages
from protolab.data.reid import DISTRACTOR_ID, ReidSplits, _class_name
from protolab.core.atomic import atomic_write

CACHE_VERSION = 1


@dataclass(frozen=True)
class Camera:
    """One rendering domain: a font file, its jitter at ``strength`` 1 and its corruption at ``strength`` 1."""

    font: str
    style: GlyphStyle
    corruption: Corruption


_BASE = GlyphStyle(rotation=10.0, shear=0.15, scale=(0.8, 1.05), translation=0.06, stroke=(0.0, 0.03))
CAMERAS: tuple[Camera, ...] = (
    Camera("DejaVuSans.ttf", _BASE, Corruption(noise=0.12)),
    Camera("DejaVuSans-Bold.ttf", _BASE, Corruption(elastic=1.2)),
    Camera("DejaVuSerif.ttf", _BASE, Corruption(clutter=1)),
    Camera("DejaVuSerif-Italic.ttf", replace(_BASE, rotation=16.0), Corruption(noise=0.08, elastic=0.6)),
    Camera("DejaVuSansMono.ttf", _BASE, Corruption(occlusion=0.3)),
    Camera("DejaVuSansMono-Bold.ttf", replace(_BASE, shear=0.25), Corruption(elastic=0.8, noise=0.06)),
)
"""The six cameras, numbered 1–6 in this order (three font families × two weights/slants, each with
its own distortion)."""

CALIBRATED_STRENGTH = 0.5
"""``strength`` chosen by ``scripts/calibrate_reid.py`` (see ``lib/protolab/data/calibration/reid_glyphs.csv``)."""


def scaled_camera(camera: Camera, strength: float) -> tuple[GlyphStyle, Corruption]:
    """The camera's style and corruption with every jitter and corruption amount multiplied by ``strength``
    (scale range widened around 1; clutter strokes rounded; occlusion capped at 0.6 of the side)."""
    style, knobs = camera.style, camera.corruption
    low, high = style.scale
    style = replace(style, rotation=style.rotation * strength, shear=style.shear * strength,
                    translation=style.translation * strength,
                    scale=(1 - (1 - low) * strength, 1 + (high - 1) * strength))
    knobs = replace(knobs, noise=knobs.noise * strength, elastic=knobs.elastic * strength,
                    clutter=int(round(knobs.clutter * strength)), occlusion=min(0.6, knobs.occlusion * strength))
    return style, knobs


def identity_pool(cameras: tuple[Camera, ...] = CAMERAS) -> list[str]:
    """Letters every camera font encodes and draws, with no two drawn identically in any camera font
    (undistorted), sorted by code point."""
    fonts = {path.name: path for path in bundled_fonts()}
    paths = [fonts[camera.font] for camera in cameras]
    seen: set[tuple[int, bytes]] = set()
    kept = []
    for char in glyph_letters(None, min_fonts=2):
        if not all(ord(char) in _cmap(path) for path in paths):
            continue
        signatures = set()
        for index, path in enumerate(paths):
            ink = _draw(char, path, 96, 0)
            if ink is None:
                break
            signatures.add((index, hashlib.blake2b(ink.tobytes() + bytes(str(ink.size), "ascii")).digest()))
        else:
            if not seen & signatures:
                seen |= signatures
                kept.append(char)
    return kept


def _render(chars: list[str], camera_ids: list[int], *, image_size: int, strength: float, seed: int,
            tags: list[int]) -> torch.Tensor:
    """One image per ``(chars[i], camera_ids[i])`` (camera 1-based), ``(N, 1, S, S)``; ``tags[i]`` makes each
    image's random stream unique."""
    fonts = {path.name: path for path in bundled_fonts()}
    images = []
    for camera_id in sorted(set(camera_ids)):
        camera = CAMERAS[camera_id - 1]
        style, knobs = scaled_camera(camera, strength)
        side = image_size * style.supersample
        font_px = round(style.em * side)
        strokes = np.arange(round(style.stroke[0] * font_px), round(style.stroke[1] * font_px) + 1)
        rows = [i for i, cam in enumerate(camera_ids) if cam == camera_id]
        pixels = np.stack([_instance(chars[i], fonts[camera.font], style, side, font_px, strokes,
                                     np.random.default_rng([seed, ord(chars[i]), camera_id, tags[i]]), None)
                           for i in rows])
        block = corrupt(torch.from_numpy(pixels).unsqueeze(1).float() / style.levels, knobs,
                        seed=seed * 7 + camera_id, indices=np.asarray([tags[i] for i in rows]))
        images.append((rows, block))
    out = torch.zeros(len(chars), 1, image_size, image_size)
    for rows, block in images:
        out[rows] = block
    return out


def _build(seed: int, image_size: int, n_train_ids: int, n_test_ids: int, n_distractors: int,
           images_per_camera: int, strength: float) -> dict[str, object]:
    pool = identity_pool()
    needed = n_train_ids + n_test_ids + n_distractors
    if needed > len(pool):
        raise ValueError(f"reid-glyphs has {len(pool)} distinct characters; asked for {n_train_ids} train + "
                         f"{n_test_ids} test identities + {n_distractors} distractors = {needed}")
    rng = np.random.default_rng([seed, 14])
    chosen = [pool[i] for i in rng.permutation(len(pool))[:needed]]
    n_cameras = len(CAMERAS)
    rows: dict[str, list[tuple[int, int, str]]] = {"train": [], "query": [], "gallery": []}  # (pid, camera, char)
    for k, char in enumerate(chosen[:n_train_ids + n_test_ids]):
        pid = k + 1
        cameras = sorted(rng.choice(np.arange(1, n_cameras + 1), size=int(rng.integers(2, 5)), replace=False).tolist())
        for camera in cameras:
            if pid <= n_train_ids:
                rows["train"] += [(pid, camera, char)] * images_per_camera
            else:
                rows["query"].append((pid, camera, char))
                rows["gallery"] += [(pid, camera, char)] * images_per_camera
    for char in chosen[n_train_ids + n_test_ids:]:
        rows["gallery"] += [(DISTRACTOR_ID, int(camera), char) for camera in rng.integers(1, n_cameras + 1, 2)]
    tensors, tag = {}, 0
    for split, items in rows.items():
        tags = list(range(tag, tag + len(items)))
        tag += len(items)
        images = _render([c for _, _, c in items], [cam for _, cam, _ in items], image_size=image_size,
                         strength=strength, seed=seed, tags=tags)
        tensors[split] = {"pixels": (images * 255).round().to(torch.uint8),
                          "person_ids": torch.tensor([p for p, _, _ in items], dtype=torch.int64),
                          "cameras": torch.tensor([cam for _, cam, _ in items], dtype=torch.int64)}
    chars = {str(k + 1): char for k, char in enumerate(chosen[:n_train_ids + n_test_ids])}
    return {"tensors": tensors, "chars": chars, "pool": len(pool)}


def load_reid_glyphs(seed: int = 0, image_size: int | tuple[int, int] = 24, *, n_train_ids: int = 100,
                     n_test_ids: int = 100, n_distractors: int = 100, images_per_camera: int = 4,
                     strength: float = CALIBRATED_STRENGTH) -> ReidSplits:
    """The embedded re-ID stand-in as :class:`~protolab.data.reid.ReidSplits` of in-memory images.

    Parameters
    ----------
    seed : choice of identities, of their cameras and every jitter.
    image_size : side ``S`` of the square renderings, or ``(H, W)`` to resize them to (bilinear).
    n_train_ids, n_test_ids, n_distractors : disjoint numbers of characters used as training identities,
        test identities and gallery distractors.
    images_per_camera : training images, and gallery images, per identity and camera.
    strength : multiplier of every camera's jitter and corruption (the difficulty knob).

    Returns
    -------
    ReidSplits
        ``images`` ``(N, 1, H, W)`` float32 in ``[0, 1]`` (white ink on black); ``domains`` the camera
        (1–6); ``person_ids``, ``extra['chars']`` (person id → character), ``extra['cameras']``
        (camera number → font and distortion).
    """
    side = image_size if isinstance(image_size, int) else max(image_size)
    options = {"seed": seed, "image_size": side, "n_train_ids": n_train_ids, "n_test_ids": n_test_ids,
               "n_distractors": n_distractors, "images_per_camera": images_per_camera, "strength": strength,
               "cameras": [asdict(camera) for camera in CAMERAS], "version": CACHE_VERSION}
    options = json.loads(json.dumps(options))
    path = cache_dir() / "reid_glyphs" / f"{options_key(options)}.pt"
    blob = torch.load(path, weights_only=True) if is_intact(path) else None
    if blob is None or json.loads(blob["meta"])["options"] != options:
        built = _build(seed, side, n_train_ids, n_test_ids, n_distractors, images_per_camera, strength)
        blob = {**built["tensors"], "meta": json.dumps({"options": options, "chars": built["chars"], "pool": built["pool"]})}
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda handle: torch.save(blob, handle))
        record_checksum(path)
    meta = json.loads(blob["meta"])
    shape = None if isinstance(image_size, int) else tuple(image_size)
    cameras = {k + 1: f"{camera.font}, {', '.join(f'{key} {value}' for key, value in asdict(scaled_camera(camera, strength)[1]).items() if value and key in ('noise', 'elastic', 'clutter', 'occlusion'))}"
               for k, camera in enumerate(CAMERAS)}
    what = (f"Embedded reid-glyphs: identity = character, camera = one of {len(CAMERAS)} font/distortion domains "
            f"(DejaVu Sans, Serif, Sans Mono), strength {strength}, {side}x{side}"
            + (f" resized to {shape[0]}x{shape[1]}" if shape and shape != (side, side) else "") + f", seed {seed}")
    test_ids = sorted(set(blob["query"]["person_ids"].tolist()) | set(blob["gallery"]["person_ids"].tolist()))
    return ReidSplits(*(_split(blob[split], split, meta, what, cameras, shape, n_train_ids, test_ids)
                        for split in ("train", "query", "gallery")))


def _split(tensors: dict[str, torch.Tensor], split: str, meta: dict, what: str, cameras: dict,
           shape: tuple[int, int] | None, n_train_ids: int, test_ids: list[int]) -> LabeledImages:
    images = tensors["pixels"].float() / 255
    if shape is not None and tuple(images.shape[-2:]) != shape:
        images = F.interpolate(images, size=shape, mode="bilinear", align_corners=False).clamp(0, 1)
    person_ids = tensors["person_ids"]
    if split == "train":
        class_names = [_class_name(pid) for pid in range(1, n_train_ids + 1)]
        labels = person_ids - 1
        what = f"{what}: train ({n_train_ids} identities, {len(person_ids)} images)"
    else:
        order = [pid for pid in test_ids if pid != DISTRACTOR_ID] + [pid for pid in test_ids if pid == DISTRACTOR_ID]
        class_names = [_class_name(pid) for pid in order]
        index = {pid: i for i, pid in enumerate(order)}
        labels = torch.tensor([index[pid] for pid in person_ids.tolist()], dtype=torch.int64)
        what = f"{what}: {split} ({len(person_ids)} images; person id 0 = distractor)"
    return LabeledImages(labels=labels, class_names=class_names, description=what, images=images,
                         domains=tensors["cameras"].clone(), person_ids=person_ids.clone(),
                         extra={"chars": meta["chars"], "cameras": cameras, "channels": 1})
