"""Re-identification loaders: Market-1501 and DukeMTMC-reID on generated files in their release layouts,
the embedded ``reid-glyphs`` stand-in, and the ``load_reid`` family function."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from protolab.data import EMBEDDED, DatasetFormatError, DatasetNotFoundError, check_dataset, load_reid
from protolab.data.reid import DUKEMTMC_SOURCE, load_dukemtmc, load_market1501, load_reid_release
from protolab.data.reid_glyphs import CAMERAS, identity_pool, load_reid_glyphs
from tests.layouts import DUKEMTMC_FILES, colour_image, write_dukemtmc, write_market1501

# ------------------------------------------------------------------------------------------ DukeMTMC-reID


@pytest.fixture
def duke_root(tmp_path: Path) -> Path:
    return write_dukemtmc(tmp_path)


def test_dukemtmc(duke_root: Path) -> None:
    splits = load_dukemtmc(duke_root)
    assert splits.train.class_names == ["0001", "0005"] and splits.train.labels.tolist() == [0, 0, 1]
    assert splits.train.domains.tolist() == [2, 5, 1] and splits.train.person_ids.tolist() == [1, 1, 5]
    query, gallery = splits.query, splits.gallery
    assert query.class_names == gallery.class_names == ["0003", "0008", "5000"]
    assert [p.name for p in gallery.paths] == sorted(DUKEMTMC_FILES["bounding_box_test"])  # Thumbs.db ignored
    assert gallery.domains.tolist() == [1, 8, 7, 2] and query.domains.tolist() == [1, 6]
    assert [query.class_names[label] for label in query.labels] == ["0003", "0008"]
    assert query[0][0].shape == (3, 128, 64) and gallery[3][0].shape == (3, 128, 64)  # files of varying size
    direct = load_reid_release("dukemtmc", duke_root / "DukeMTMC-reID", image_size=(32, 16))
    assert direct.gallery[0][0].shape == (3, 32, 16) and "DukeMTMC-reID" in direct.train.description


def test_dukemtmc_errors_name_the_expected_folders(duke_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="bounding_box_train") as error:
        load_dukemtmc(tmp_path / "elsewhere")
    assert "query" in str(error.value) and "PPPP_cC_fFFFFFFF.jpg" in str(error.value)
    bad = duke_root / "DukeMTMC-reID" / "query" / "0002_c1s1_000451_03.jpg"  # a Market-1501 name
    Image.fromarray(colour_image(0, (16, 8))).save(bad)
    with pytest.raises(DatasetFormatError, match="0002_c1s1_000451_03.jpg") as error:
        load_dukemtmc(duke_root)
    assert "PPPP_cC_fFFFFFFF.jpg" in str(error.value) and DUKEMTMC_SOURCE.split()[0] in str(error.value)


def test_each_release_refuses_the_other_layout(tmp_path: Path) -> None:
    write_market1501(tmp_path / "m")
    write_dukemtmc(tmp_path / "d")
    with pytest.raises(DatasetNotFoundError, match="DukeMTMC-reID"):
        load_dukemtmc(tmp_path / "m")
    with pytest.raises(DatasetNotFoundError, match="Market-1501"):
        load_market1501(tmp_path / "d")
    with pytest.raises(ValueError, match="market1501, dukemtmc"):
        load_reid_release("cuhk03", tmp_path / "m")


def test_zero_byte_duke_image_is_refused(duke_root: Path) -> None:
    (duke_root / "DukeMTMC-reID" / "bounding_box_test" / "0003_c8_f0049000.jpg").write_bytes(b"")
    with pytest.raises(DatasetFormatError, match="0003_c8_f0049000.jpg"):
        load_dukemtmc(duke_root)


# ------------------------------------------------------------------------------------ family function


def test_load_reid_reads_both_real_layouts(tmp_path: Path) -> None:
    write_market1501(tmp_path)
    write_dukemtmc(tmp_path)
    market = load_reid("market1501", tmp_path, image_size=(32, 16))
    duke = load_reid("dukemtmc", tmp_path, image_size=24)
    assert market.query[0][0].shape == (3, 32, 16) and duke.query[0][0].shape == (3, 24, 24)
    assert "Market-1501" in market.train.description and "DukeMTMC-reID" in duke.train.description
    for name in ("market1501", "dukemtmc"):
        check_dataset(name, tmp_path)


def test_load_reid_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="data_root is empty"):
        load_reid("dukemtmc", "")
    with pytest.raises(DatasetNotFoundError, match="DukeMTMC-reID"):
        check_dataset("dukemtmc", tmp_path)
    with pytest.raises(ValueError, match="reid-glyphs"):
        load_reid("cuhk03", tmp_path)


# ---------------------------------------------------------------------------------- embedded stand-in


@pytest.fixture(scope="module")
def glyphs():
    return load_reid_glyphs(seed=0, image_size=16, n_train_ids=12, n_test_ids=10, n_distractors=5,
                            images_per_camera=2)


def test_reid_glyphs_is_embedded_and_builds_without_files(glyphs) -> None:
    assert "reid-glyphs" in EMBEDDED
    check_dataset("reid-glyphs", "")
    assert len(identity_pool()) >= 500  # enough distinct characters for Market-sized splits of a few hundred


def test_reid_glyphs_structure(glyphs) -> None:
    train, query, gallery = glyphs
    assert train.images.shape[1:] == (1, 16, 16) and float(train.images.max()) <= 1.0
    train_ids = set(train.person_ids.tolist())
    test_ids = set(query.person_ids.tolist())
    assert train_ids == set(range(1, 13)) and test_ids == set(range(13, 23))  # disjoint identities
    assert train.labels.tolist() == (train.person_ids - 1).tolist() and train.n_classes == 12
    assert set(gallery.person_ids.tolist()) == test_ids | {0}  # distractors are person id 0
    assert int((gallery.person_ids == 0).sum()) == 10  # 5 distractor characters × 2 images
    pairs = list(zip(query.person_ids.tolist(), query.domains.tolist()))
    assert len(pairs) == len(set(pairs))  # one query per identity per camera
    for pid in test_ids:
        cameras = {cam for p, cam in pairs if p == pid}
        assert 2 <= len(cameras) <= 4 and cameras <= set(range(1, len(CAMERAS) + 1))
        in_gallery = gallery.domains[gallery.person_ids == pid].tolist()
        assert sorted(in_gallery) == sorted(cam for cam in cameras for _ in range(2))
    assert query.class_names == gallery.class_names and query.class_names[-1] == "0000"
    names = [query.class_names[label] for label in query.labels]
    assert names == [f"{pid:04d}" for pid in query.person_ids.tolist()]
    chars = query.extra["chars"]
    assert len({chars[str(pid)] for pid in train_ids | test_ids}) == 22  # one character per identity


def test_reid_glyphs_is_deterministic_and_cached(glyphs) -> None:
    again = load_reid_glyphs(seed=0, image_size=16, n_train_ids=12, n_test_ids=10, n_distractors=5,
                             images_per_camera=2)
    for first, second in zip(glyphs, again):
        assert torch.equal(first.images, second.images) and torch.equal(first.domains, second.domains)
    other = load_reid_glyphs(seed=1, image_size=16, n_train_ids=12, n_test_ids=10, n_distractors=5,
                             images_per_camera=2)
    assert not torch.equal(other.train.images[:4], glyphs.train.images[:4])


def test_reid_glyphs_strength_and_size(glyphs) -> None:
    mild = load_reid_glyphs(seed=0, image_size=16, n_train_ids=12, n_test_ids=10, n_distractors=5,
                            images_per_camera=2, strength=0.0)
    assert mild.train.person_ids.tolist() == glyphs.train.person_ids.tolist()
    assert not torch.equal(mild.train.images, glyphs.train.images)
    wide = load_reid_glyphs(seed=0, image_size=(16, 8), n_train_ids=12, n_test_ids=10, n_distractors=5,
                            images_per_camera=2)
    assert wide.query.images.shape[-2:] == (16, 8)
    with pytest.raises(ValueError, match="distinct characters"):
        load_reid_glyphs(n_train_ids=1000)


def test_load_reid_builds_the_stand_in() -> None:
    splits = load_reid("reid-glyphs", "", image_size=(24, 24), seed=0)
    assert splits.train.images.shape[-2:] == (24, 24) and "reid-glyphs" in splits.train.description
