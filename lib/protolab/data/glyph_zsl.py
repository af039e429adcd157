"""Embedded glyph-zsl: attribute-based generalised zero-shot learning over precomposed letters.

Classes are letters of the Latin, Greek and Cyrillic scripts, bare or with diacritics (é, Ä, ŷ, ά,
ё…). Their attributes come from Unicode alone — the canonical decomposition (NFD) and the character
names: script, case, base letter (case-insensitive), one bit per combining mark and, by default, where the
marks sit (above, below, attached below, attached above right: their canonical combining class), the one
visible property the identity attributes lack (calibration below). Unseen classes
are new combinations of attribute values that all occur in seen classes (Ǘ unseen when Ü, Ú and ü
are seen). Images are drawn by :func:`protolab.data.glyphs.render_glyphs`; visual features come
from a small CNN trained on the trainval images of the seen classes only. The result is written in
the xlsa17 layout, so the zero-shot notebooks read it through :func:`load_xlsa17` as they read AWA2.
The mark positions were chosen on seen classes only (``scripts/calibrate_glyph_zsl.py``, table
``calibration/glyph_zsl.csv``): with them, a seen class's nearest class by visual class mean is one of its nearest
by attributes for 49% of the seen classes instead of 16%.
The feature CNN always trains on one thread on the pinned AVX2 path (:func:`_build_pinned`), so every machine
builds the same features whichever process needs them first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.optim.lr_scheduler import OneCycleLR

from protolab.backbones import GlyphFeatureCNN
from protolab.core.atomic import current_umask
from protolab.core.cpu_paths import AVX2_PATHS
from protolab.core.reproducibility import one_thread
from protolab.data.cache import cache_dir, is_intact, record_checksum
from protolab.data.glyphs import GlyphStyle, font_coverage, options_key, render_glyphs, script_of
from protolab.data.images import LabeledImages
from protolab.data.xlsa17 import FILES, ZSLData, load_xlsa17, write_xlsa17

GLYPH_ZSL = "GLYPH-ZSL"
"""Folder name of the dataset under the root :func:`build_glyph_zsl` returns."""

BUILD_RECORD = "build.json"
"""File beside the ``.mat`` files: options, attribute names, and the images the CNN was trained on."""

ZSL_SCRIPTS = ("LATIN", "GREEK", "CYRILLIC")
_EXTENDED_BLOCKS_START = 0x1E00  # Latin Extended Additional (Vietnamese…), then Greek Extended (polytonic)
_MIN_MARK_CLASSES = 3


def _parts(char: str) -> tuple[str, str, str, tuple[str, ...]] | None:
    """``(script, case, base letter, marks)`` of a letter from its NFD and names; None when it is not
    a cased letter (optionally followed by combining marks) of one script.

    ``"ǘ" -> ("LATIN", "small", "LATIN LETTER U", ("DIAERESIS", "ACUTE ACCENT"))``.
    """
    if unicodedata.category(char) not in ("Lu", "Ll") or unicodedata.decomposition(char).startswith("<"):
        return None
    base, *marks = unicodedata.normalize("NFD", char)
    script = script_of(char)
    if script is None or script_of(base) != script or unicodedata.decomposition(base):
        return None
    if any(unicodedata.category(m) != "Mn" for m in marks):
        return None
    words = unicodedata.name(base).split()
    case = "capital" if "CAPITAL" in words else "small"
    letter = " ".join(word for word in words if word not in ("CAPITAL", "SMALL"))
    return script, case, letter, tuple(unicodedata.name(m).removeprefix("COMBINING ") for m in marks)


def zsl_letters(
    scripts: Sequence[str] = ZSL_SCRIPTS, max_marks: int = 2, extended: bool = False, min_fonts: int = 4
) -> list[str]:
    """Candidate classes: letters with 1..``max_marks`` combining marks, each mark carried by at least 3
    of them, plus the bare base letters they decompose to, sorted by code point.

    ``extended`` adds the Latin Extended Additional and Greek Extended blocks (Vietnamese, polytonic
    Greek). ``min_fonts`` bundled fonts must encode a letter (whether they draw it is checked when
    rendering).
    """
    unknown = sorted(set(scripts) - set(ZSL_SCRIPTS))
    if unknown:
        raise ValueError(f"glyph-zsl scripts must be among {ZSL_SCRIPTS}, got {unknown}")
    counts = font_coverage()
    marked = {}
    for code, count in sorted(counts.items()):
        if count < min_fonts or (code >= _EXTENDED_BLOCKS_START and not extended):
            continue
        parts = _parts(chr(code))
        if parts is not None and parts[0] in scripts and 1 <= len(parts[3]) <= max_marks:
            marked[chr(code)] = parts
    mark_counts: dict[str, int] = {}
    for parts in marked.values():
        for mark in parts[3]:
            mark_counts[mark] = mark_counts.get(mark, 0) + 1
    kept: dict[tuple, str] = {}
    for char, (script, case, letter, marks) in marked.items():
        if all(mark_counts[m] >= _MIN_MARK_CLASSES for m in marks):
            kept.setdefault((script, case, letter, frozenset(marks)), char)  # ǖ, not also ṻ (same marks)
    bases = {unicodedata.normalize("NFD", char)[0] for char in kept.values()}
    bases = {base for base in bases if counts.get(ord(base), 0) >= min_fonts}
    return sorted(set(kept.values()) | bases, key=ord)


MARK_POSITIONS = {230: "above", 220: "below", 202: "attached below", 216: "attached above right"}
"""Where a combining mark sits, by its Unicode canonical combining class (``unicodedata.combining``)."""


def mark_positions(char: str) -> set[str]:
    """Where the combining marks of ``char``'s canonical decomposition sit (:data:`MARK_POSITIONS`; another class
    is named by its number): ``"ǘ" -> {"above"}``, ``"ţ" -> {"attached below"}``, ``"e" -> set()``."""
    return {MARK_POSITIONS.get(unicodedata.combining(mark), str(unicodedata.combining(mark)))
            for mark in unicodedata.normalize("NFD", char)[1:]}


def letter_attributes(chars: Sequence[str], positions: bool = True) -> tuple[list[str], np.ndarray]:
    """Binary attributes of letters: script, case, base letter (one-hot), combining marks and, with
    ``positions``, where the marks sit (:func:`mark_positions`).

    Returns
    -------
    names : list of str
        ``A`` attribute names, e.g. ``"script: GREEK"``, ``"case: capital"``,
        ``"letter: LATIN LETTER E"``, ``"mark: ACUTE ACCENT"``, ``"position: above"``; only attributes some
        letter has.
    matrix : np.ndarray
        ``(len(chars), A)`` float64 in ``{0, 1}``.
    """
    parts = [_parts(char) for char in chars]
    if any(p is None for p in parts):
        raise ValueError(f"not letters with marks: {[c for c, p in zip(chars, parts) if p is None]}")
    active = [
        {f"script: {script}", f"case: {case}", f"letter: {letter}", *(f"mark: {m}" for m in marks),
         *(f"position: {where}" for where in (mark_positions(char) if positions else ()))}
        for char, (script, case, letter, marks) in zip(chars, parts)
    ]
    order = {"script": 0, "case": 1, "letter": 2, "mark": 3, "position": 4}
    names = sorted(set().union(*active), key=lambda name: (order[name.split(":")[0]], name))
    column = {name: j for j, name in enumerate(names)}
    matrix = np.zeros((len(chars), len(names)))
    for i, names_i in enumerate(active):
        matrix[i, [column[name] for name in names_i]] = 1.0
    return names, matrix


def hold_out_classes(attributes: np.ndarray, candidates: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """About ``fraction`` of ``candidates`` such that every attribute active in a held-out class stays
    active in some remaining candidate (classes visited in a seeded random order, taken greedily).

    Parameters
    ----------
    attributes : np.ndarray
        ``(C, A)`` binary class attributes.
    candidates : np.ndarray
        int ``(K,)`` class ids to choose from.
    fraction : float
        Target share of ``candidates`` held out.
    seed : int
        Seed of the visiting order.

    Returns
    -------
    np.ndarray
        Sorted int64 class ids held out.
    """
    target = round(fraction * len(candidates))
    remaining = attributes[candidates].sum(axis=0)
    held = []
    for c in np.random.default_rng(seed).permutation(candidates):
        if len(held) == target:
            break
        active = attributes[c] > 0
        if np.all(remaining[active] >= 2):
            held.append(c)
            remaining[active] -= 1
    return np.sort(np.asarray(held, dtype=np.int64))


def _fit_feature_cnn(
    images: torch.Tensor, labels: torch.Tensor, *, feature_dim: int, epochs: int, seed: int
) -> nn.Module:
    """Train :class:`~protolab.backbones.GlyphFeatureCNN` to classify ``images`` ``(M, 1, S, S)`` into
    ``labels`` ``(M,)`` (``0..K-1``) and return its feature extractor (``(M, 1, S, S) -> (M, feature_dim)``),
    in eval mode.

    :func:`~protolab.training.loops.fit_classifier` trains it on the CPU: batches of 128, torch's default
    (unfused) Adam under a one-cycle schedule peaking at 3e-3, stepped per batch, never stopped early by a dry
    run. Only the images passed here are seen in training; torch's global random state is left as it was.
    """
    from protolab.training.loops import fit_classifier  # imported here: training/ imports data/

    n_classes = int(labels.max()) + 1
    seen = LabeledImages(labels=labels, class_names=[str(k) for k in range(n_classes)],
                         description="glyph-zsl seen-class trainval images", images=images)
    steps = epochs * -(-len(labels) // 128)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = GlyphFeatureCNN(images.shape[-1], feature_dim, n_classes)
        fit_classifier(model, seen, epochs=epochs, batch_size=128, lr=3e-3, device=torch.device("cpu"), seed=seed,
                       scheduler=lambda optimizer: OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps),
                       fused_adam=False, metered=False, progress=False)
    return model.features


def _splits(attributes: np.ndarray, labels: np.ndarray, options: dict) -> dict[str, np.ndarray]:
    """The xlsa17 splits (0-based image indices) of images with class ``labels`` ``(N,)``.

    Unseen classes (``unseen_fraction``) and, among the seen, val classes (``val_fraction``) are held
    out by :func:`hold_out_classes`; ``test_seen_fraction`` of each seen class's images are test_seen.
    """
    seed = options["seed"]
    classes = np.arange(len(attributes))
    unseen = hold_out_classes(attributes, classes, options["unseen_fraction"], seed)
    seen = np.setdiff1d(classes, unseen)
    val_classes = hold_out_classes(attributes, seen, options["val_fraction"], seed + 1)
    rng = np.random.default_rng(seed)
    test_seen = np.sort(np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[: round(options["test_seen_fraction"] * np.sum(labels == c))]
        for c in seen
    ]))
    trainval = np.setdiff1d(np.flatnonzero(np.isin(labels, seen)), test_seen)
    return {
        "trainval_loc": trainval,
        "train_loc": trainval[~np.isin(labels[trainval], val_classes)],
        "val_loc": trainval[np.isin(labels[trainval], val_classes)],
        "test_seen_loc": test_seen,
        "test_unseen_loc": np.flatnonzero(np.isin(labels, unseen)),
    }


def _build(folder: Path, options: dict) -> None:
    """Render, split, train the feature CNN and write the dataset into ``folder/GLYPH-ZSL``."""
    seed = options["seed"]
    rendered = render_glyphs(
        zsl_letters(options["scripts"], options["max_marks"], options["extended"], options["min_fonts"]),
        image_size=options["image_size"], instances_per_class=options["instances_per_class"], seed=seed,
        style=GlyphStyle(**options["style"]), min_fonts=options["min_fonts"], dedupe=True,
    )
    attribute_names, attributes = letter_attributes(rendered.chars, options["position_attributes"])
    labels = rendered.labels
    splits = _splits(letter_attributes(rendered.chars, positions=False)[1], labels, options)  # positions follow marks
    trainval = splits["trainval_loc"]

    images = rendered.images()
    seen = np.unique(labels[trainval])
    seen_index = np.full(len(rendered.chars), -1)
    seen_index[seen] = np.arange(len(seen))
    with one_thread():  # the CNN is tiny: on shared cores, more threads made it ~20× slower
        extractor = _fit_feature_cnn(
            images[trainval], torch.from_numpy(seen_index[labels[trainval]]),
            feature_dim=options["feature_dim"], epochs=options["epochs"], seed=seed,
        )
        with torch.no_grad():
            features = torch.cat([extractor(batch) for batch in images.split(512)]).numpy()

    norms = np.linalg.norm(attributes, axis=1, keepdims=True)
    dataset = write_xlsa17(
        folder, GLYPH_ZSL,
        features=features, labels=labels, attributes=attributes / norms, original_attributes=attributes,
        class_names=[unicodedata.name(char).lower().replace(" ", "_") for char in rendered.chars],
        splits=splits,
        image_files=[
            f"U+{ord(rendered.chars[label]):04X}/{rendered.font_names[font]}/{i}"
            for i, (label, font) in enumerate(zip(labels, rendered.fonts))
        ],
    )
    record = {
        "options": options,
        "chars": rendered.chars,
        "attribute_names": attribute_names,
        "feature_training_indices": trainval.tolist(),
        "fonts": sorted({rendered.font_names[f] for f in rendered.fonts.tolist()}),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the path the feature CNN trained on
    }
    (dataset / BUILD_RECORD).write_text(json.dumps(record, ensure_ascii=False, indent=1))
    for name in FILES:
        record_checksum(dataset / name)


def _on_pinned_path() -> bool:
    """Whether this process runs PyTorch, oneDNN and MKL on the pinned AVX2 paths (:mod:`protolab.runner.kernel_paths`;
    read when the libraries load, so the variables must have been there since the process started)."""
    return all(os.environ.get(key) == value for key, value in AVX2_PATHS.items())


def _build_pinned(folder: Path, options: dict) -> None:
    """:func:`_build` in a fresh process on the pinned AVX2 paths: the feature CNN's training turns the last bits of
    its kernels into other features, so the dataset is built on the one path every x86-64 CPU with AVX2 shares,
    whoever needs it first (a test, a JupyterLab kernel, a notebook the runner started)."""
    script = ("import json, sys; from pathlib import Path; from protolab.data.glyph_zsl import _build; "
              "_build(Path(sys.argv[1]), json.loads(sys.argv[2]))")
    done = subprocess.run([sys.executable, "-c", script, str(folder), json.dumps(options)],
                          env={**os.environ, **AVX2_PATHS}, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"building glyph-zsl failed (exit {done.returncode}):\n{done.stderr[-4000:]}")


def _is_complete(root: Path, options: dict) -> bool:
    """Whether ``root`` holds a finished build for ``options`` whose ``.mat`` files match their recorded
    checksums (an altered one gives a warning)."""
    folder = root / GLYPH_ZSL
    try:
        record = json.loads((folder / BUILD_RECORD).read_text())
    except (OSError, ValueError):
        return False
    return record.get("options") == options and all(is_intact(folder / name) for name in FILES)


def build_glyph_zsl(
    seed: int = 0,
    *,
    image_size: int = 32,
    instances_per_class: int = 20,
    scripts: Sequence[str] = ZSL_SCRIPTS,
    max_marks: int = 2,
    extended: bool = False,
    min_fonts: int = 4,
    unseen_fraction: float = 0.2,
    val_fraction: float = 0.2,
    test_seen_fraction: float = 0.2,
    feature_dim: int = 128,
    epochs: int = 8,
    style: GlyphStyle = GlyphStyle(),
    position_attributes: bool = True,
    rebuild: bool = False,
) -> Path:
    """Build glyph-zsl (or find it in the cache) and return the root to pass to :func:`load_xlsa17`.

    Parameters
    ----------
    seed : int
        Seed of the drawings, the class and sample splits and the CNN.
    image_size : int
        Side of the drawn images (a multiple of 8).
    instances_per_class : int
        Images per letter (font × jitter).
    scripts, max_marks, extended, min_fonts
        Which letters are classes (see :func:`zsl_letters`).
    unseen_fraction : float
        Share of the classes held out as unseen (new combinations of seen attribute values).
    val_fraction : float
        Share of the seen classes in xlsa17's ``val_loc`` (disjoint from ``train_loc``'s classes).
    test_seen_fraction : float
        Share of each seen class's images in ``test_seen_loc`` (the rest are ``trainval_loc``).
    feature_dim : int
        Dimension ``D`` of the visual features.
    epochs : int
        Training epochs of the feature CNN (seen classes, trainval images only).
    style : GlyphStyle
        Drawing of the letters.
    position_attributes : bool
        Attributes of where the marks sit (:func:`letter_attributes`; chosen on seen classes, module docstring).
    rebuild : bool
        Build even when a cached copy exists.

    Returns
    -------
    Path
        ``cache_dir()/glyph_zsl/<hash of options>``, holding ``GLYPH-ZSL/{res101.mat, att_splits.mat,
        build.json}`` and the sha256 of each ``.mat`` file beside it (``res101.mat.sha256``…): a cached
        copy whose files do not match them is rebuilt, with a warning.
    """
    if image_size % 8:
        raise ValueError(f"image_size must be a multiple of 8, got {image_size}")
    options = json.loads(json.dumps({
        "seed": seed, "image_size": image_size, "instances_per_class": instances_per_class,
        "scripts": sorted(scripts), "max_marks": max_marks, "extended": extended, "min_fonts": min_fonts,
        "unseen_fraction": unseen_fraction, "val_fraction": val_fraction,
        "test_seen_fraction": test_seen_fraction, "feature_dim": feature_dim, "epochs": epochs,
        "style": asdict(style), "position_attributes": position_attributes,
    }))
    root = cache_dir() / "glyph_zsl" / options_key(options)
    if not rebuild and _is_complete(root, options):
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=root.parent, prefix=f"{root.name}.tmp"))
    staging.chmod(0o777 & ~current_umask())  # as mkdir would make it (mkdtemp's 0o700 hides a shared cache)
    try:
        (_build if _on_pinned_path() else _build_pinned)(staging, options)
        shutil.rmtree(root, ignore_errors=True)
        os.replace(staging, root)
    except OSError:
        if not _is_complete(root, options):  # not a concurrent build that finished first
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root


def load_glyph_zsl(seed: int = 0, **options) -> ZSLData:
    """glyph-zsl read back through :func:`load_xlsa17` (built first if needed; a cached copy whose files
    were altered is rebuilt). ``options`` are those of :func:`build_glyph_zsl`.

    Returns
    -------
    ZSLData
        Features ``(M, D)`` per split, attributes ``(C, A)`` unit-L2 rows, ``original_attributes``
        binary.
    """
    root = build_glyph_zsl(seed, **options)
    data = load_xlsa17(root, GLYPH_ZSL)
    record = json.loads((root / GLYPH_ZSL / BUILD_RECORD).read_text())
    data.description = (
        f"Embedded synthetic glyph-zsl: {data.n_classes} {'/'.join(record['options']['scripts']).title()} letters "
        f"with diacritics rendered from matplotlib's bundled fonts ({len(data.seen_classes)} seen / "
        f"{len(data.unseen_classes)} unseen), "
        f"{data.attributes.shape[1]} attributes from Unicode names and decompositions, {data.feature_dim}-d "
        f"features of a CNN trained on seen-class trainval images only; seed {record['options']['seed']} "
        "(a stand-in, not AWA2/CUB/aPY)"
    )
    return data


def describe_glyph_zsl(data: ZSLData) -> dict[str, int | float]:
    """Statistics of a glyph-zsl (or any xlsa17) dataset for a notebook table: class counts, attributes,
    feature dimension, samples per split and mean active attributes per class."""
    return {
        "classes": data.n_classes,
        "seen classes": len(data.seen_classes),
        "unseen classes": len(data.unseen_classes),
        "train classes": len(data.train_classes),
        "val classes": len(data.val_classes),
        "attributes": int(data.attributes.shape[1]),
        "mean active attributes per class": round(float((data.original_attributes > 0).sum(1).double().mean()), 2),
        "feature dim": data.feature_dim,
        **{f"{name} samples": len(getattr(data, name))
           for name in ("trainval", "train", "val", "test_seen", "test_unseen")},
    }
