"""check_dataset: a data_root is checked, cheaply, before anything runs; and the family functions refuse an
empty data_root for a real dataset with the same message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from protolab.data import (EMBEDDED, DatasetNotFoundError, check_dataset, load_fewshot, load_in_distribution,
                           load_out_of_distribution, load_zsl, packaged)
from protolab.data.fewshot_sets import CUB_SOURCE, MINI_IMAGENET_SOURCE
from protolab.data.reid import MARKET1501_SOURCE
from protolab.data.torchvision_sets import MNIST_SOURCE, OMNIGLOT_SOURCE
from protolab.data.xlsa17 import XLSA17_SOURCE
from tests.layouts import (CUB_CLASSES, write_awa2_like, write_cub, write_fashion_mnist, write_market1501,
                           write_mini_imagenet, write_mnist, write_omniglot)


def _omniglot(root: Path) -> None:
    write_omniglot(root, "images_evaluation", ["Hebrew"])


def _mini_imagenet_pickles(root: Path) -> None:
    for split in ("train", "val", "test"):
        (root / f"mini-imagenet-cache-{split}.pkl").write_bytes(b"")  # existence is all that is checked


# name: (writer of the real layout, a file or folder it needs, what the message names, where to get it)
LAYOUTS = {
    "mnist": (write_mnist, "MNIST/raw/t10k-labels-idx1-ubyte", "t10k-labels-idx1-ubyte", MNIST_SOURCE),
    "omniglot": (_omniglot, "omniglot-py/images_evaluation", "images_evaluation", OMNIGLOT_SOURCE),
    "fashion-mnist": (write_fashion_mnist, "FashionMNIST/raw/t10k-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                      packaged.FASHION_MNIST_SOURCE),
    "miniimagenet": (write_mini_imagenet, "miniImageNet/images", "miniImageNet/images/<filename>.jpg",
                     MINI_IMAGENET_SOURCE),
    "cub": (write_cub, "CUB_200_2011/classes.txt", "classes.txt", CUB_SOURCE),
    "market1501": (write_market1501, "Market-1501-v15.09.15/query", "query/PPPP_cCsS_FFFFFF_NN.jpg", MARKET1501_SOURCE),
    "AWA2": (write_awa2_like, "AWA2/att_splits.mat", "att_splits.mat", XLSA17_SOURCE),
}


@pytest.fixture(autouse=True)
def no_debian_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fashion-MNIST is found only under data_root, whether or not Debian's package is installed here."""
    monkeypatch.setattr(packaged, "FASHION_MNIST_DEBIAN", tmp_path / "no-debian-package")


def _remove(path: Path) -> None:
    shutil.rmtree(path) if path.is_dir() else path.unlink()


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_a_complete_layout_passes_and_a_missing_file_is_named(tmp_path: Path, name: str) -> None:
    write, needed, named, source = LAYOUTS[name]
    root = tmp_path / "data"
    root.mkdir()
    write(root)
    check_dataset(name, str(root))
    _remove(root / needed)
    with pytest.raises(DatasetNotFoundError) as error:
        check_dataset(name, str(root))
    assert named in str(error.value) and source in str(error.value)


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_an_empty_folder_or_an_empty_data_root_is_refused_with_the_expected_files(tmp_path: Path, name: str) -> None:
    _, _, named, source = LAYOUTS[name]
    (tmp_path / "empty").mkdir()
    for data_root in (str(tmp_path / "empty"), str(tmp_path / "nowhere"), ""):
        with pytest.raises(DatasetNotFoundError) as error:
            check_dataset(name, data_root)
        assert named in str(error.value) and source in str(error.value)
    assert "data_root is empty" in str(error.value)


def test_only_existence_is_checked_no_file_is_decoded(tmp_path: Path) -> None:
    write_cub(tmp_path)
    for image in (tmp_path / "CUB_200_2011" / "images" / CUB_CLASSES[0]).glob("*.jpg"):
        image.write_bytes(b"")  # the loader refuses these; the cheap check does not open them
    check_dataset("cub", str(tmp_path))


def test_embedded_datasets_need_no_data_root(tmp_path: Path) -> None:
    assert set(EMBEDDED) == {"digits", "mnist-5k", "glyphs", "glyph-zsl", "reid-glyphs"}
    for name in EMBEDDED:
        check_dataset(name, "")
        check_dataset(name, str(tmp_path / "nowhere"))


def test_xlsa17_names_match_any_case_and_any_folder_in_the_layout(tmp_path: Path) -> None:
    write_awa2_like(tmp_path)
    check_dataset("awa2", str(tmp_path))
    (tmp_path / "AWA2").rename(tmp_path / "MyZSL")
    check_dataset("MyZSL", str(tmp_path))
    (tmp_path / "MyZSL" / "res101.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match="res101.mat"):
        check_dataset("MyZSL", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="xlsa17 dataset 'SUN'"):
        check_dataset("SUN", str(tmp_path))


def test_cub_is_the_few_shot_layout_and_CUB_the_xlsa17_folder(tmp_path: Path) -> None:
    write_cub(tmp_path)
    check_dataset("cub", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="res101.mat"):
        check_dataset("CUB", str(tmp_path))


def test_an_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    for data_root in ("", str(tmp_path)):
        with pytest.raises(ValueError, match="unknown dataset 'imagenet'") as error:
            check_dataset("imagenet", data_root)
        for known in ("digits", "glyphs", "glyph-zsl", "mnist", "omniglot", "miniimagenet", "cub", "AWA2", "SUN"):
            assert known in str(error.value)


@pytest.mark.parametrize("load, name", [
    (load_in_distribution, "mnist"), (load_out_of_distribution, "omniglot"), (load_fewshot, "miniimagenet"),
    (load_fewshot, "cub"), (load_fewshot, "omniglot"), (load_zsl, "AWA2"), (load_zsl, "cub"),
])
def test_family_functions_refuse_an_empty_data_root_naming_the_files(load, name: str) -> None:
    with pytest.raises(DatasetNotFoundError, match="data_root is empty") as error:
        load(name, "")
    assert "Get them from" in str(error.value)
    if load is load_zsl:
        assert "res101.mat" in str(error.value)


def test_family_functions_refuse_names_of_other_families() -> None:
    for load, name in ((load_in_distribution, "omniglot"), (load_out_of_distribution, "mnist"),
                       (load_fewshot, "mnist")):
        with pytest.raises(ValueError, match="unknown"):
            load(name)
