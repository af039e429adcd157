"""Embedded datasets: digits, glyphs, digit-like glyphs and glyph-zsl (small options, fresh caches)."""

from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from sklearn.metrics import roc_auc_score

from protolab.backbones import GlyphFeatureCNN
from protolab.data import glyph_zsl, glyphs
from protolab.data.digits import load_digits
from protolab.data.glyph_zsl import GLYPH_ZSL, build_glyph_zsl, describe_glyph_zsl, load_glyph_zsl
from protolab.data.glyphs import (
    digit_lookalikes,
    glyph_letters,
    load_digit_like_glyphs,
    load_glyphs,
    script_of,
    split_by_group,
)
from protolab.data.xlsa17 import load_xlsa17
from protolab.runner.kernel_paths import AVX2_PATHS

GLYPH_OPTIONS = dict(image_size=16, scripts=("GREEK", "ARMENIAN", "HEBREW", "GEORGIAN", "OGHAM"), instances_per_class=3)
ZSL_OPTIONS = dict(image_size=16, instances_per_class=5, scripts=("LATIN",), feature_dim=16, epochs=1)


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def forbid(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
    """Make ``module.name`` fail when called: what must come from the cache must not be rebuilt."""

    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was called: the cache was not used")

    monkeypatch.setattr(module, name, fail)


# ------------------------------------------------------------------------------------------- digits


def test_digits_are_a_stratified_split_of_the_bundled_images() -> None:
    train, test = load_digits(seed=0)
    assert len(train) + len(test) == 1797 and len(test) == pytest.approx(0.25 * 1797, abs=1)
    for part in (train, test):
        assert part.images.shape[1:] == (1, 8, 8) and part.images.dtype == torch.float32
        assert part.images.min() >= 0 and part.images.max() == 1
        assert torch.equal(part.images * 16, (part.images * 16).round())
        assert part.labels.dtype == torch.int64 and part.class_names == [str(d) for d in range(10)]
        assert "scikit-learn" in part.description
    share = torch.bincount(test.labels, minlength=10) / torch.bincount(train.labels, minlength=10)
    assert share.min() > 0.3 and share.max() < 0.37


def test_digits_are_deterministic_and_resizable() -> None:
    a, b, c = load_digits(seed=3)[1], load_digits(seed=3)[1], load_digits(seed=4)[1]
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    big = load_digits(seed=3, image_size=28)[1]
    assert big.images.shape == (len(a), 1, 28, 28) and 0 <= big.images.min() and big.images.max() <= 1
    assert torch.equal(big.labels, a.labels)


# ------------------------------------------------------------------------------------------- glyphs


def test_bundled_fonts_are_every_dejavu_and_stix_general_text_face() -> None:
    names = {path.name for path in glyphs.bundled_fonts()}
    folder = glyphs.bundled_fonts()[0].parent
    faces = {p.name for p in folder.glob("*.ttf") if p.name.startswith(("DejaVuSans", "DejaVuSerif", "STIXGeneral"))}
    assert names == {name for name in faces if "Display" not in name} and len(names) == 16


def test_scripts_come_from_unicode_names_and_cover_many_alphabets() -> None:
    assert script_of("α") == "GREEK" and script_of("ᐁ") == "CANADIAN SYLLABICS" and script_of("1") is None
    letters = glyph_letters()
    scripts = {script_of(char) for char in letters}
    expected = {"LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "GEORGIAN", "HEBREW", "ARABIC", "TIFINAGH"}
    assert expected | {"CANADIAN SYLLABICS"} <= scripts
    assert not any(unicodedata.decomposition(char) for char in letters)  # no é, no presentation forms


def test_glyphs_shapes_ranges_groups_and_fonts(fresh_cache: Path) -> None:
    data = load_glyphs(seed=0, **GLYPH_OPTIONS)
    n_classes = data.n_classes
    assert n_classes > 100 and len(data) == 3 * n_classes
    assert data.images.shape == (len(data), 1, 16, 16) and data.images.dtype == torch.float32
    assert data.images.min() == 0 and data.images.max() <= 1
    assert torch.equal(torch.bincount(data.labels), torch.full((n_classes,), 3))
    assert set(data.groups) == set(GLYPH_OPTIONS["scripts"]) and len(data.groups) == n_classes
    assert [script_of(char) for char in data.extra["chars"]] == data.groups
    assert data.images.flatten(1).amax(1).min() > 0.2  # no glyph that draws nothing
    assert 0 <= data.domains.min() and data.domains.max() < len(data.extra["fonts"])
    fonts_per_class = [len(set(data.domains[data.labels == c].tolist())) for c in range(n_classes)]
    assert min(fonts_per_class) >= 2  # min_fonts=2 fonts, and instances cycle through them
    assert "synthetic" in data.description and "matplotlib" in data.description


def test_renderer_keeps_identical_drawings_once_and_skips_unencoded_characters() -> None:
    chars = ["A", "Α", "А", "ж", "\uffff"]
    rendered = glyphs.render_glyphs(chars, image_size=8, instances_per_class=2, seed=0, dedupe=True)
    assert rendered.chars == ["A", "ж"]  # Greek Alpha and Cyrillic A draw exactly as Latin A
    assert rendered.pixels.shape == (4, 8, 8) and rendered.pixels.dtype == np.uint8
    assert glyphs.render_glyphs(["Α"], image_size=8, instances_per_class=1, seed=0).chars == ["Α"]


def test_glyphs_are_deterministic_per_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / name))
        built[name] = load_glyphs(seed=seed, **GLYPH_OPTIONS)
    assert torch.equal(built["a"].images, built["b"].images) and torch.equal(built["a"].domains, built["b"].domains)
    assert built["a"].class_names == built["c"].class_names
    assert not torch.equal(built["a"].images, built["c"].images)


def test_glyphs_second_load_is_from_cache_and_equal(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_glyphs(seed=0, **GLYPH_OPTIONS)
    files = list((fresh_cache / "glyphs").glob("*.pt"))
    assert [Path(first.extra["cache_file"])] == files
    forbid(monkeypatch, glyphs, "render_glyphs")
    second = load_glyphs(seed=0, **GLYPH_OPTIONS)
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert first.class_names == second.class_names and first.groups == second.groups


def test_corrupt_glyph_cache_is_rebuilt_with_a_warning(fresh_cache: Path) -> None:
    first = load_glyphs(seed=0, **GLYPH_OPTIONS)
    path = Path(first.extra["cache_file"])
    assert (path.parent / f"{path.name}.sha256").read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    for garbage in (b"not a torch file", path.read_bytes()[:1000]):
        path.write_bytes(garbage)
        with pytest.warns(RuntimeWarning, match=f"{path.name} does not match its recorded sha256"):
            again = load_glyphs(seed=0, **GLYPH_OPTIONS)
        assert torch.equal(first.images, again.images)
    torch.save({"pixels": torch.zeros(1), "meta": json.dumps({"options": {}})}, path)  # a file for other options
    with pytest.warns(RuntimeWarning, match="recorded sha256"):
        assert torch.equal(first.images, load_glyphs(seed=0, **GLYPH_OPTIONS).images)
    (path.parent / f"{path.name}.sha256").unlink()
    with pytest.warns(RuntimeWarning, match="has no recorded checksum"):
        assert torch.equal(first.images, load_glyphs(seed=0, **GLYPH_OPTIONS).images)


def test_glyph_cache_altered_by_a_few_bytes_is_rebuilt(fresh_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache file with a few pixel bytes changed still loads as a well-formed file: only its checksum tells."""
    first = load_glyphs(seed=0, **GLYPH_OPTIONS)
    path = Path(first.extra["cache_file"])
    content = bytearray(path.read_bytes())
    start = content.find(torch.load(path, weights_only=True)["pixels"][:4].numpy().tobytes())
    content[start : start + 4] = bytes(255 - value for value in content[start : start + 4])
    path.write_bytes(bytes(content))
    altered = torch.load(path, weights_only=True)["pixels"]
    assert altered.shape == (len(first), 16, 16) and not torch.equal(altered.float() / 255, first.images.squeeze(1))
    with pytest.warns(RuntimeWarning, match="does not match its recorded sha256"):
        again = load_glyphs(seed=0, **GLYPH_OPTIONS)
    assert torch.equal(first.images, again.images)
    forbid(monkeypatch, glyphs, "render_glyphs")  # the rebuilt file and its checksum agree again
    assert torch.equal(first.images, load_glyphs(seed=0, **GLYPH_OPTIONS).images)


def test_split_by_group_holds_out_whole_alphabets(fresh_cache: Path) -> None:
    data = load_glyphs(seed=0, **GLYPH_OPTIONS)
    for seed in (0, 1):
        splits = split_by_group(data, (0.6, 0.2, 0.2), seed=seed)
        classes = [set(part.labels.tolist()) for part in splits]
        groups = [set(part.extra["split_groups"]) for part in splits]
        assert all(classes) and all(groups)
        for i in range(3):
            for j in range(i + 1, 3):
                assert not classes[i] & classes[j] and not groups[i] & groups[j]
            assert {data.groups[c] for c in classes[i]} == groups[i]
        assert set().union(*classes) == set(range(data.n_classes)) and sum(map(len, splits)) == len(data)
    train, val, test = split_by_group(data, groups=(["GREEK", "GEORGIAN"], ["OGHAM"], ["HEBREW"]))
    assert {data.groups[c] for c in test.labels.tolist()} == {"HEBREW"} and len(train) + len(val) + len(test) < len(data)
    with pytest.raises(ValueError):
        split_by_group(data, groups=(["GREEK"], ["GREEK"], ["HEBREW"]))
    with pytest.raises(ValueError):
        split_by_group(data, (0.5, 0.2, 0.2))


# ---------------------------------------------------------------------------------- digit-like glyphs


def test_digit_like_glyphs_match_digits_intensity_statistics(fresh_cache: Path) -> None:
    _, digits = load_digits(seed=0)
    glyph = load_digit_like_glyphs(seed=0, n=len(digits))
    assert glyph.images.shape == digits.images.shape
    assert torch.equal(glyph.images * 16, (glyph.images * 16).round()) and glyph.images.max() <= 1
    outlier = np.r_[np.zeros(len(digits)), np.ones(len(glyph))]
    pixels = torch.cat([digits.images, glyph.images]).flatten(1)
    for statistic in (pixels.mean(1), (pixels > 0.5).float().mean(1)):
        assert 0.3 <= roc_auc_score(outlier, statistic.numpy()) <= 0.7
    chars = set(glyph.extra["chars"])
    assert not chars & set("OoIlSsZz0123456789") and not chars & set(glyph.extra["excluded_lookalikes"])
    assert {"О", "З", "Ѕ", "θ"} <= digit_lookalikes(["О", "З", "Ѕ", "θ", "ж", "ᐊ"])
    assert not {"ж", "ᐊ"} & digit_lookalikes(["ж", "ᐊ"])
    big = load_digit_like_glyphs(seed=0, n=len(digits), image_size=28)
    assert big.images.shape == (len(digits), 1, 28, 28)
    # drawn at 28 px, not an upsampled 8×8 image: 17 levels (4×4 block counts) and the same letters
    assert torch.equal(big.images * 16, (big.images * 16).round()) and big.extra["chars"] == glyph.extra["chars"]
    assert "112x112 bitmaps" in big.description and "resized" not in big.description
    assert not torch.equal(glyph.images, load_digit_like_glyphs(seed=1, n=len(digits)).images)


# ------------------------------------------------------------------------------------------ glyph-zsl


@pytest.fixture(scope="module")
def zsl_build(tmp_path_factory: pytest.TempPathFactory):
    """One small glyph-zsl build, recording what the feature CNN was trained on."""
    captured: dict = {}
    render, fit = glyph_zsl.render_glyphs, glyph_zsl._fit_feature_cnn
    captured["fit"] = fit

    def spy_render(*args, **kwargs):
        captured["rendered"] = render(*args, **kwargs)
        return captured["rendered"]

    def spy_fit(images, labels, **kwargs):
        captured["training_images"] = images.clone()
        return fit(images, labels, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path_factory.mktemp("zsl-cache")))
        patch.setattr(glyph_zsl, "_on_pinned_path", lambda: True)  # build here, where the spies are
        patch.setattr(glyph_zsl, "render_glyphs", spy_render)
        patch.setattr(glyph_zsl, "_fit_feature_cnn", spy_fit)
        threads = torch.get_num_threads()
        root = build_glyph_zsl(seed=0, **ZSL_OPTIONS)
        assert torch.get_num_threads() == threads  # the build leaves the caller's setting alone
        data = load_xlsa17(root, GLYPH_ZSL, normalize_attributes=False)
    return root, data, captured


def test_glyph_zsl_feature_cnn_trains_as_the_plain_loop_it_replaced(zsl_build) -> None:
    """The feature CNN, trained by fit_classifier (torch's default Adam, a one-cycle schedule stepped per batch),
    gives the features of the plain loop glyph-zsl used before the shared one (written out here), bit for bit on
    one machine: every IPN number depends on them. A constant would not do: another CPU rounds otherwise."""
    _, _, captured = zsl_build
    images = captured["training_images"][:200]
    labels = torch.arange(len(images)) % 7
    options = dict(feature_dim=16, epochs=2, seed=3)
    shared = captured["fit"](images, labels, **options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(options["seed"])
        model = GlyphFeatureCNN(images.shape[-1], options["feature_dim"], 7)
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=2 * 2)
        generator = torch.Generator().manual_seed(options["seed"])
        model.train()
        for _ in range(options["epochs"]):
            for batch in torch.randperm(len(labels), generator=generator).split(128):
                loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
    with torch.no_grad():
        expected, obtained = model.features.eval()(images), shared(images)
    assert not shared.training
    assert obtained.abs().sum() > 0
    torch.testing.assert_close(obtained, expected, rtol=0, atol=0)


def test_glyph_zsl_reads_back_through_xlsa17(zsl_build) -> None:
    root, data, captured = zsl_build
    rendered = captured["rendered"]
    n_images = len(rendered.labels)
    assert data.n_classes == len(rendered.chars) and data.feature_dim == 16
    names = [unicodedata.lookup(name.replace("_", " ")) for name in data.class_names]
    assert names == rendered.chars
    assert torch.allclose(data.attributes.norm(dim=1), torch.ones(data.n_classes))
    seen, unseen = set(data.seen_classes.tolist()), set(data.unseen_classes.tolist())
    assert not seen & unseen and len(seen | unseen) == data.n_classes
    assert len(unseen) == pytest.approx(0.2 * data.n_classes, abs=2)
    train, val = set(data.train_classes.tolist()), set(data.val_classes.tolist())
    assert not train & val and train | val == seen and len(val) == pytest.approx(0.2 * len(seen), abs=2)
    trainval, test_seen = set(data.trainval.indices.tolist()), set(data.test_seen.indices.tolist())
    assert not trainval & test_seen and set(data.train.indices.tolist()) | set(data.val.indices.tolist()) == trainval
    assert len(test_seen) == len(seen) * 1  # round(0.2 × 5) images of each seen class
    assert len(trainval) + len(test_seen) + len(data.test_unseen) == n_images
    assert set(data.test_unseen.labels.tolist()) == unseen and set(data.test_seen.labels.tolist()) == seen
    assert data.trainval.features.min() >= 0 and torch.isfinite(data.trainval.features).all()
    stats = describe_glyph_zsl(data)
    assert stats["seen classes"] == len(seen) and stats["unseen classes"] == len(unseen)
    assert stats["test_unseen samples"] == len(data.test_unseen) and stats["attributes"] == data.attributes.shape[1]


def test_unseen_classes_combine_seen_attribute_values(zsl_build) -> None:
    _, data, _ = zsl_build
    attributes = (data.original_attributes > 0).numpy()
    assert set(torch.unique(data.original_attributes).tolist()) == {0.0, 1.0}
    assert covered(attributes, data.unseen_classes.numpy(), data.seen_classes.numpy())
    assert covered(attributes, data.val_classes.numpy(), data.train_classes.numpy())
    assert len({tuple(row.tolist()) for row in attributes}) == data.n_classes  # combinations are distinct


def covered(attributes: np.ndarray, held: np.ndarray, kept: np.ndarray) -> bool:
    """Every attribute active in a held-out class is active in some kept class."""
    return bool(attributes[kept].any(0)[attributes[held].any(0)].all())


def test_hold_out_classes_only_takes_combinations_of_kept_attribute_values() -> None:
    pairs = np.repeat(np.eye(10), 2, axis=0)  # attribute k is shared by classes 2k and 2k + 1 only
    attributes = np.hstack([np.ones((20, 1)), pairs, np.eye(20)[:, :1]])  # class 0 also has its own attribute
    for seed in range(5):
        held = glyph_zsl.hold_out_classes(attributes, np.arange(20), 0.5, seed)
        assert 0 not in held and len(held) == 10 and covered(attributes, held, np.setdiff1d(np.arange(20), held))
    letters = glyph_zsl.zsl_letters()
    _, attributes = glyph_zsl.letter_attributes(letters)
    for seed in range(3):
        unseen = glyph_zsl.hold_out_classes(attributes, np.arange(len(letters)), 0.2, seed)
        assert len(unseen) == round(0.2 * len(letters))
        assert covered(attributes, unseen, np.setdiff1d(np.arange(len(letters)), unseen))


def test_mark_position_attributes_follow_the_canonical_combining_class() -> None:
    assert glyph_zsl.mark_positions("ǘ") == {"above"} and glyph_zsl.mark_positions("ţ") == {"attached below"}
    assert glyph_zsl.mark_positions("ạ") == {"below"} and glyph_zsl.mark_positions("e") == set()
    names, matrix = glyph_zsl.letter_attributes(["é", "ẹ", "e"])
    plain, without = glyph_zsl.letter_attributes(["é", "ẹ", "e"], positions=False)
    assert names == plain + ["position: above", "position: below"]
    assert np.array_equal(matrix[:, :-2], without)
    assert matrix[:, -2:].tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]


def test_feature_cnn_sees_no_unseen_and_no_test_image(zsl_build) -> None:
    root, data, captured = zsl_build
    record = json.loads((root / GLYPH_ZSL / "build.json").read_text())
    used = np.asarray(record["feature_training_indices"])
    rendered = captured["rendered"]
    assert torch.equal(captured["training_images"], rendered.images()[torch.from_numpy(used)])
    assert set(used.tolist()) <= set(data.trainval.indices.tolist())
    assert not set(used.tolist()) & (set(data.test_seen.indices.tolist()) | set(data.test_unseen.indices.tolist()))
    assert set(rendered.labels[used].tolist()) <= set(data.seen_classes.tolist())
    assert len(record["attribute_names"]) == data.attributes.shape[1]


def test_glyph_zsl_is_cached_deterministic_and_rebuilt_when_corrupt(
    fresh_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(glyph_zsl, "_on_pinned_path", lambda: True)  # builds in this process: quicker
    first = load_glyph_zsl(seed=0, **ZSL_OPTIONS)
    assert "synthetic" in first.description
    assert not torch.equal(first.trainval.features, load_glyph_zsl(seed=1, **ZSL_OPTIONS).trainval.features)
    root = build_glyph_zsl(seed=0, **ZSL_OPTIONS)
    rebuilt = load_glyph_zsl(seed=0, rebuild=True, **ZSL_OPTIONS)
    assert torch.equal(first.trainval.features, rebuilt.trainval.features)
    assert torch.equal(first.attributes, rebuilt.attributes)

    (root / GLYPH_ZSL / "att_splits.mat").write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="att_splits.mat does not match its recorded sha256"):
        repaired = load_glyph_zsl(seed=0, **ZSL_OPTIONS)
    assert torch.equal(first.test_unseen.features, repaired.test_unseen.features)

    # Finite garbage in the features still loads as xlsa17 (and failed later in training): the checksum catches it.
    res101 = root / GLYPH_ZSL / "res101.mat"
    content = scipy.io.loadmat(res101)
    scipy.io.savemat(res101, {**{k: v for k, v in content.items() if not k.startswith("__")},
                              "features": content["features"] + 1e3})
    assert torch.isfinite(load_xlsa17(root, GLYPH_ZSL).trainval.features).all()
    with pytest.warns(RuntimeWarning, match="res101.mat does not match its recorded sha256"):
        repaired = load_glyph_zsl(seed=0, **ZSL_OPTIONS)
    assert torch.equal(first.trainval.features, repaired.trainval.features)

    forbid(monkeypatch, glyph_zsl, "_build")
    forbid(monkeypatch, glyph_zsl, "_build_pinned")
    assert build_glyph_zsl(seed=0, **ZSL_OPTIONS) == root
    assert torch.equal(load_glyph_zsl(seed=0, **ZSL_OPTIONS).test_seen.features, first.test_seen.features)


def test_glyph_zsl_is_built_on_the_pinned_path_whoever_asks(fresh_cache: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Training the feature CNN turns kernel rounding into other features, so a caller that is not on the pinned AVX2
    path (a test, a JupyterLab kernel) builds in a pinned child process; build.json records the path used."""
    for key in AVX2_PATHS:
        monkeypatch.delenv(key, raising=False)
    root = build_glyph_zsl(seed=0, **ZSL_OPTIONS)
    assert json.loads((root / GLYPH_ZSL / "build.json").read_text())["cpu_capability"] == "AVX2"


def test_classes_near_unseen_are_unseen_anchors_followed_by_their_nearest_seen_classes(zsl_build) -> None:
    data = zsl_build[1]
    chosen = data.classes_near_unseen(8, seed=3)
    assert len(chosen) == len(set(chosen)) <= 8
    unseen = set(data.unseen_classes.tolist())
    anchor = chosen[0]
    assert anchor in unseen and chosen == data.classes_near_unseen(8, seed=3)
    unit = torch.nn.functional.normalize(data.attributes, dim=1)
    seen = data.seen_classes
    nearest = seen[(unit[seen] @ unit[anchor]).argsort(descending=True)[:3]].tolist()
    assert chosen[1:4] == [c for c in nearest if c not in chosen[:1]][:3]


def test_glyph_zsl_cache_folders_honour_the_umask(zsl_build) -> None:
    """A shared cache (SLURM) must be readable by the group the umask allows, not mkdtemp's 0o700."""
    from protolab.core.atomic import current_umask

    root, _, _ = zsl_build
    assert root.stat().st_mode & 0o777 == 0o777 & ~current_umask()
