"""Decode once (protolab.data.decoded): built once then memory-mapped, keyed by the files, rebuilt when damaged;
the image-file loaders return decoded data by default; uint8 LabeledImages; the paper-size data writers."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest
import scipy.io
import torch
from PIL import Image

from benchmarks.paper_size_data import write_cub_xlsa17, write_market1501
from benchmarks.paper_size_data import write_mini_imagenet as write_paper_mini_imagenet
from protolab.data import decoded as decoded_module
from protolab.data.cache import is_intact
from protolab.data.decoded import cache_path
from protolab.data.errors import DatasetFormatError
from protolab.data.fewshot_sets import load_cub, load_mini_imagenet, load_omniglot_splits
from protolab.data.images import LabeledImages
from protolab.data.reid import load_dukemtmc, load_market1501
from protolab.data.torchvision_sets import load_omniglot
from protolab.data.xlsa17 import load_xlsa17
from protolab.training.episodes import gather_images
from tests.layouts import colour_image, write_cub, write_dukemtmc, write_mini_imagenet, write_omniglot
from tests.layouts import write_market1501 as write_small_market1501


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh, empty cache root for the test; returns the folder of the decoded arrays."""
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / decoded_module.FOLDER


@pytest.fixture
def mini(tmp_path: Path) -> Path:
    """MiniImageNet's CSV layout: 3 splits × 2 classes × 3 JPEGs of 30×40, resized to 84×84 when read."""
    return write_mini_imagenet(tmp_path / "data")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The indices of the images decoded into a cache, in the order decoded."""
    calls: list[int] = []
    real = decoded_module._quantised

    def counting(data: LabeledImages, index: int):
        calls.append(index)
        return real(data, index)

    monkeypatch.setattr(decoded_module, "_quantised", counting)
    return calls


def _mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


def test_decoded_images_equal_the_pil_path_and_are_memory_mapped(cache: Path, mini: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoded_module, "_CHUNK", 4)  # 6 images per split: decoded in two chunks
    files, decoded = load_mini_imagenet(mini, decoded=False), load_mini_imagenet(mini)
    for file_backed, split in zip(files, decoded):
        assert file_backed.images is None and split.paths == file_backed.paths
        assert split.images.dtype == torch.uint8 and split.images.shape == (6, 3, 84, 84)
        for i in range(len(split)):
            image, label = split[i]
            expected, expected_label = file_backed[i]
            assert image.dtype == torch.float32 and label == expected_label
            torch.testing.assert_close(image, expected, rtol=0, atol=0.5 / 255)  # within uint8 rounding
        path = cache_path(split)
        assert path.parent == cache and f"decoded cache 127 kB at {path}" in split.description
        assert str(path) in _mapped_files()  # mapped, not read into memory
    batch = gather_images(decoded.train, torch.tensor([5, 0]))
    torch.testing.assert_close(batch, torch.stack([files.train[5][0], files.train[0][0]]), rtol=0, atol=0.5 / 255)
    assert gather_images(decoded.train, torch.tensor([5, 0]), as_float=False).dtype == torch.uint8


def test_the_cache_is_built_once_then_reused(cache: Path, mini: Path, decodes: list[int]) -> None:
    first = load_mini_imagenet(mini)
    assert sorted(decodes) == sorted(list(range(6)) * 3)  # every image of the three splits, once
    written = {path: path.stat().st_mtime_ns for path in cache.glob("*.npy")}
    assert len(written) == 3
    second = load_mini_imagenet(mini)
    assert len(decodes) == 18, "a load that finds the cache must not decode"
    assert {path: path.stat().st_mtime_ns for path in cache.glob("*.npy")} == written
    for a, b in zip(first, second):
        assert torch.equal(a.images, b.images) and a.description == b.description


def test_a_changed_file_or_size_gives_a_new_key(cache: Path, mini: Path, decodes: list[int]) -> None:
    val = load_mini_imagenet(mini).val
    before, old_key = val.images.clone(), cache_path(val)
    Image.fromarray(colour_image(99, (30, 40))).save(val.paths[4])  # same name, new content
    decodes.clear()
    changed = load_mini_imagenet(mini).val
    assert cache_path(changed) != old_key and old_key.is_file()
    assert len(decodes) == 6  # the val split only: the other splits' files did not change
    assert torch.equal(changed.images[:4], before[:4]) and not torch.equal(changed.images[4], before[4])

    changed_key, stat = cache_path(changed), val.paths[0].stat()
    os.utime(val.paths[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched, content unchanged
    touched = load_mini_imagenet(mini).val
    assert cache_path(touched) != changed_key and torch.equal(touched.images, changed.images)

    small = load_mini_imagenet(mini, image_size=32).val
    assert small.images.shape == (6, 3, 32, 32) and cache_path(small) != cache_path(touched)


@pytest.mark.parametrize("damage", ["one byte changed", "truncated", "checksum missing"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(cache: Path, mini: Path, decodes: list[int], damage: str) -> None:
    test = load_mini_imagenet(mini).test
    path, expected = cache_path(test), test.images.clone()
    content = bytearray(path.read_bytes())
    if damage == "one byte changed":
        content[-1] ^= 0xFF
    elif damage == "truncated":
        content = content[: len(content) // 2]
    else:
        path.with_name(path.name + ".sha256").unlink()
    damaged = path.with_name("damaged.tmp")
    damaged.write_bytes(content)
    damaged.replace(path)  # a new file: the arrays mapped above stay valid
    decodes.clear()
    with pytest.warns(RuntimeWarning, match="rebuilding"):
        rebuilt = load_mini_imagenet(mini).test
    assert len(decodes) == 6 and torch.equal(rebuilt.images, expected)
    assert is_intact(path)


def test_a_file_that_does_not_decode_is_named_either_way(cache: Path, mini: Path) -> None:
    bad = mini / "miniImageNet" / "images" / "n0193011200000002.jpg"  # a test image
    bad.write_bytes(b"not a JPEG" * 30)
    for decoded in (True, False):
        with pytest.raises(DatasetFormatError, match="not a readable image") as error:
            load_mini_imagenet(mini, decoded=decoded)
        assert error.value.path == bad
    assert not list(cache.glob("*.tmp")) and not list(cache.glob(".*.tmp")), "no partial array is left behind"


def _omniglot(root: Path) -> Path:
    write_omniglot(root, "images_background", ["Latin", "Greek", "Armenian"])
    write_omniglot(root, "images_evaluation", ["Tifinagh", "Hebrew"])
    return root


LOADERS = {
    "miniimagenet": (write_mini_imagenet, lambda root, decoded: load_mini_imagenet(root, decoded=decoded), (3, 84, 84)),
    "cub": (write_cub, lambda root, decoded: load_cub(root, decoded=decoded), (3, 84, 84)),
    "omniglot": (_omniglot, lambda root, decoded: load_omniglot_splits(root, n_val_alphabets=1, decoded=decoded),
                 (1, 28, 28)),
    "omniglot-set": (_omniglot, lambda root, decoded: [load_omniglot(root, True, invert=True, decoded=decoded)],
                     (1, 28, 28)),
    "market1501": (write_small_market1501, lambda root, decoded: load_market1501(root, decoded=decoded), (3, 128, 64)),
    "dukemtmc": (write_dukemtmc, lambda root, decoded: load_dukemtmc(root, decoded=decoded), (3, 128, 64)),
}


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_loaders_of_image_files_return_decoded_data_by_default(cache: Path, tmp_path: Path, name: str) -> None:
    write, load, shape = LOADERS[name]
    root = write(tmp_path / "data")
    for split, file_backed in zip(load(root, True), load(root, False)):
        assert split.images.dtype == torch.uint8 and split.images.shape == (len(split), *shape)
        assert file_backed.images is None and file_backed.paths == split.paths
        assert torch.equal(split.labels, file_backed.labels) and "decoded cache" in split.description
        torch.testing.assert_close(split[len(split) - 1][0], file_backed[len(split) - 1][0], rtol=0, atol=0.5 / 255)


def test_uint8_labeled_images() -> None:
    pixels = torch.arange(4 * 3 * 2 * 2, dtype=torch.uint8).reshape(4, 3, 2, 2)
    data = LabeledImages(labels=torch.tensor([0, 1, 0, 1]), class_names=["a", "b"], description="tiny", images=pixels)
    image, label = data[1]
    assert image.dtype == torch.float32 and torch.equal(image, pixels[1].float() / 255) and label == 1
    part = data.select_classes([1])
    assert part.images.dtype == torch.uint8 and torch.equal(part.images, pixels[[1, 3]])
    with pytest.raises(ValueError, match="uint8"):
        LabeledImages(labels=torch.tensor([0]), class_names=["a"], description="x",
                      images=torch.zeros(1, 1, 2, 2, dtype=torch.int32))
    with pytest.raises(ValueError, match="paths for"):
        LabeledImages(labels=torch.tensor([0]), class_names=["a"], description="x", images=pixels[:1],
                      paths=[Path("a.jpg"), Path("b.jpg")], transform=lambda image: image)


def test_subset_and_select_classes_slice_every_per_image_field() -> None:
    n, picked = 5, [3, 0, 4]
    data = LabeledImages(labels=torch.tensor([0, 1, 0, 1, 1]), class_names=["a", "b"], description="five",
                         images=torch.rand(n, 1, 2, 2), paths=[Path(f"{i}.png") for i in range(n)],
                         transform=lambda image: image, groups=["x", "y"], domains=torch.tensor([1, 2, 3, 4, 5]),
                         person_ids=torch.tensor([7, 8, 7, 9, 8]), extra={"seed": 1})
    values = {item.name: getattr(data, item.name) for item in fields(LabeledImages)}
    per_image = {name for name, value in values.items() if isinstance(value, (torch.Tensor, list)) and len(value) == n}
    assert per_image == {"labels", "images", "paths", "domains", "person_ids"}
    for part, index in ((data.subset(torch.tensor(picked)), picked), (data.select_classes([1]), [1, 3, 4])):
        for name in per_image - {"labels"}:
            whole, sliced = getattr(data, name), getattr(part, name)
            assert (torch.equal(sliced, whole[index]) if torch.is_tensor(whole)
                    else sliced == [whole[i] for i in index]), name
        assert part.extra == data.extra
    assert torch.equal(data.subset(torch.tensor(picked)).labels, data.labels[picked])
    assert data.select_classes([1]).labels.tolist() == [0, 0, 0]  # relabelled
    with pytest.raises(ValueError, match="person_ids"):
        LabeledImages(labels=torch.tensor([0, 1]), class_names=["a", "b"], description="x",
                      images=torch.rand(2, 1, 2, 2), person_ids=torch.tensor([1]))


def test_paper_size_writers_at_a_small_size(cache: Path, tmp_path: Path) -> None:
    mini = load_mini_imagenet(write_paper_mini_imagenet(tmp_path / "mini", classes=(5, 2, 3), images_per_class=4))
    assert [split.n_classes for split in mini] == [5, 2, 3] and [len(split) for split in mini] == [20, 8, 12]
    assert mini.train.images.shape[1:] == (3, 84, 84)

    market = load_market1501(write_market1501(tmp_path / "market", train_ids=4, train_images=10, test_ids=3,
                                              query_images=5, gallery_images=9, distractors=2, junk=3))
    assert market.train.n_classes == 4 and len(market.train) == 10 and market.train.images.shape[1:] == (3, 128, 64)
    assert len(market.query) == 5 and len(market.gallery) == 9 + 2 + 3
    ids = market.gallery.person_ids
    assert int((ids == 0).sum()) == 2 and int((ids == -1).sum()) == 3
    assert set(market.train.person_ids.tolist()).isdisjoint(market.query.person_ids.tolist())
    for q_id, q_cam in zip(market.query.person_ids, market.query.domains):  # a match on another camera
        assert bool(((ids == q_id) & (market.gallery.domains != q_cam)).any())

    folder = write_cub_xlsa17(tmp_path / "zsl", classes=(4, 2, 2), images=(12, 6, 7), test_seen=6, n_attributes=5,
                              dim=16)
    assert scipy.io.loadmat(folder / "res101.mat")["features"].shape == (16, 25)
    cub = load_xlsa17(tmp_path / "zsl", "CUB")
    assert (len(cub.trainval), len(cub.test_seen), len(cub.test_unseen)) == (12, 6, 7)
    assert (len(cub.train), len(cub.val)) == (12, 6)  # as in the official files: every image of their classes
    assert cub.train_classes.tolist() == [0, 1, 2, 3] and cub.unseen_classes.tolist() == [6, 7]
