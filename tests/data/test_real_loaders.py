"""Real-dataset loaders on small files written here in each dataset's real on-disk layout."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torchvision import datasets

from protolab.data.errors import DatasetFormatError, DatasetNotFoundError
from protolab.data.fewshot_sets import load_cub, load_mini_imagenet, load_omniglot_splits
from protolab.data.reid import load_market1501
from protolab.data.torchvision_sets import load_mnist, load_omniglot
from protolab.data.xlsa17 import load_xlsa17, write_xlsa17
from tests.layouts import (CUB_CLASSES, MARKET1501_FILES, MINI_IMAGENET_CLASSES, colour_image, write_cub, write_idx,
                           write_market1501, write_mini_imagenet, write_mnist, write_omniglot)

# --------------------------------------------------------------------------------------------- xlsa17

N_PER_CLASS, N_CLASSES, N_ATTRIBUTES, DIM = 6, 6, 5, 8
SEEN, UNSEEN, TRAIN, VAL = [0, 1, 2, 3], [4, 5], [0, 1], [2, 3]


def zsl_arrays(seed: int = 0) -> dict:
    """A 6-class dataset: classes 0–3 seen (0–1 train, 2–3 val), 4–5 unseen; 2 test images per seen class."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(N_CLASSES), N_PER_CLASS)
    index = np.arange(len(labels))
    first_two = (index % N_PER_CLASS) < 2
    seen = np.isin(labels, SEEN)
    trainval = index[seen & ~first_two]
    original = rng.uniform(0, 100, (N_CLASSES, N_ATTRIBUTES))
    return dict(
        features=rng.normal(size=(len(labels), DIM)),
        labels=labels,
        attributes=original / np.linalg.norm(original, axis=1, keepdims=True),
        original_attributes=original,
        class_names=[f"class_{c}" for c in range(N_CLASSES)],
        splits=dict(
            trainval_loc=trainval,
            train_loc=trainval[np.isin(labels[trainval], TRAIN)],
            val_loc=trainval[np.isin(labels[trainval], VAL)],
            test_seen_loc=index[seen & first_two],
            test_unseen_loc=index[~seen],
        ),
    )


@pytest.fixture
def zsl_root(tmp_path: Path) -> Path:
    write_xlsa17(tmp_path, "AWA2", **zsl_arrays(), image_files=[f"/BS/xian/AWA2/img_{i}.jpg" for i in range(36)])
    return tmp_path


def edit_mat(path: Path, **changes) -> None:
    """Rewrite a MAT file with some variables replaced (None removes one)."""
    content = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    content.update(changes)
    scipy.io.savemat(path, {k: v for k, v in content.items() if v is not None})


def test_xlsa17_writer_uses_matlab_layout(zsl_root: Path) -> None:
    arrays = zsl_arrays()
    res = scipy.io.loadmat(zsl_root / "AWA2" / "res101.mat")
    att = scipy.io.loadmat(zsl_root / "AWA2" / "att_splits.mat")
    assert res["features"].shape == (DIM, 36) and res["features"].dtype == np.float64
    np.testing.assert_array_equal(res["labels"], arrays["labels"].reshape(-1, 1) + 1)
    assert res["image_files"].shape == (36, 1) and res["image_files"][3, 0][0] == "/BS/xian/AWA2/img_3.jpg"
    assert att["att"].shape == (N_ATTRIBUTES, N_CLASSES)
    np.testing.assert_allclose(np.linalg.norm(att["att"], axis=0), 1.0)
    assert att["allclasses_names"].shape == (N_CLASSES, 1) and att["allclasses_names"][5, 0][0] == "class_5"
    np.testing.assert_array_equal(att["test_unseen_loc"].ravel(), arrays["splits"]["test_unseen_loc"] + 1)
    assert att["test_unseen_loc"].min() == 25  # 1-based: image 24 is the first unseen one


def test_xlsa17_round_trip_is_exact(zsl_root: Path) -> None:
    arrays = zsl_arrays()
    data = load_xlsa17(zsl_root, "AWA2", normalize_attributes=False)
    assert data.class_names == arrays["class_names"] and data.image_files[35] == "/BS/xian/AWA2/img_35.jpg"
    torch.testing.assert_close(data.attributes, torch.tensor(arrays["attributes"], dtype=torch.float32), rtol=0, atol=0)
    torch.testing.assert_close(
        data.original_attributes, torch.tensor(arrays["original_attributes"], dtype=torch.float32), rtol=0, atol=0
    )
    for key, idx in arrays["splits"].items():
        split = getattr(data, key.removesuffix("_loc"))
        assert split.features.dtype == torch.float32 and split.labels.dtype == torch.int64
        assert split.features.shape == (len(idx), DIM)
        np.testing.assert_array_equal(split.indices.numpy(), idx)
        np.testing.assert_array_equal(split.labels.numpy(), arrays["labels"][idx])
        np.testing.assert_array_equal(split.features.numpy(), arrays["features"][idx].astype(np.float32))
    assert data.seen_classes.tolist() == SEEN and data.unseen_classes.tolist() == UNSEEN
    assert data.train_classes.tolist() == TRAIN and data.val_classes.tolist() == VAL
    assert data.n_classes == N_CLASSES and data.feature_dim == DIM and "4 seen / 2 unseen" in data.description


def test_xlsa17_normalises_attribute_rows(tmp_path: Path) -> None:
    arrays = zsl_arrays()
    arrays["attributes"] = arrays["original_attributes"]
    write_xlsa17(tmp_path, "CUB", **arrays)
    data = load_xlsa17(tmp_path, "CUB")
    torch.testing.assert_close(data.attributes.norm(dim=1), torch.ones(N_CLASSES))
    assert data.image_files is None
    raw = load_xlsa17(tmp_path, "CUB", normalize_attributes=False).attributes
    torch.testing.assert_close(data.attributes, raw / raw.norm(dim=1, keepdim=True))


def test_xlsa17_reads_official_dtypes_and_any_case(tmp_path: Path) -> None:
    """Official files store some indices as integer types; folder names match case-insensitively."""
    folder = write_xlsa17(tmp_path / "data", "APY", **zsl_arrays())
    edit_mat(
        folder / "res101.mat", labels=scipy.io.loadmat(folder / "res101.mat")["labels"].astype(np.uint8)
    )
    locs = scipy.io.loadmat(folder / "att_splits.mat")
    edit_mat(folder / "att_splits.mat", **{k: locs[k].astype(np.uint16) for k in locs if k.endswith("_loc")})
    data = load_xlsa17(tmp_path, "apy")  # the zip's top folder, with its data/ sub-folder
    assert data.name == "APY" and len(data.test_unseen) == 12 and data.test_unseen.labels.min() == 4


def test_xlsa17_derives_train_val_from_class_lists(zsl_root: Path) -> None:
    folder = zsl_root / "AWA2"
    expected = load_xlsa17(zsl_root, "AWA2")
    edit_mat(folder / "att_splits.mat", train_loc=None, val_loc=None)
    with pytest.raises(DatasetFormatError, match="trainclasses1.txt"):
        load_xlsa17(zsl_root, "AWA2")
    (folder / "trainclasses1.txt").write_text("class_0\nclass_1\n")
    (folder / "valclasses1.txt").write_text("class_2\nclass_3\n")
    data = load_xlsa17(zsl_root, "AWA2")
    assert torch.equal(data.train.indices, expected.train.indices)
    assert torch.equal(data.val.indices, expected.val.indices)


def test_xlsa17_missing_files(zsl_root: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as missing_root:
        load_xlsa17(zsl_root / "nowhere", "CUB")
    message = str(missing_root.value)
    assert "res101.mat" in message and "att_splits.mat" in message and "xlsa17.zip" in message
    assert "https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-learning/research/zero-shot-learning/" \
           "zero-shot-learning-the-good-the-bad-and-the-ugly" in message
    (zsl_root / "AWA2" / "att_splits.mat").unlink()
    with pytest.raises(DatasetNotFoundError, match="att_splits.mat"):
        load_xlsa17(zsl_root, "AWA2")


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is not a MAT file at all" * 40, "not a readable MATLAB"),
        (b"\x89HDF\r\n\x1a\n" + bytes(600), "-v7.3"),
        (b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(512, b" ") + b"\x89HDF\r\n\x1a\n" + bytes(64), "-v7.3"),
    ],
)
def test_xlsa17_unreadable_file(zsl_root: Path, content: bytes, message: str) -> None:
    (zsl_root / "AWA2" / "res101.mat").write_bytes(content)
    with pytest.raises(DatasetFormatError, match=message) as error:
        load_xlsa17(zsl_root, "AWA2")
    assert "res101.mat" in str(error.value)
    if message == "-v7.3":
        assert "re-save it with -v7" in str(error.value) and "official xlsa17 files" in str(error.value)
    else:
        assert error.value.__cause__ is not None


def test_xlsa17_truncated_file(zsl_root: Path) -> None:
    path = zsl_root / "AWA2" / "res101.mat"
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(DatasetFormatError, match="not a readable MATLAB") as error:
        load_xlsa17(zsl_root, "AWA2")
    assert error.value.__cause__ is not None


@pytest.mark.parametrize(
    "file, change, message",
    [
        ("res101.mat", lambda m: {"features": np.zeros((DIM, 35))}, "35 columns"),
        ("res101.mat", lambda m: {"labels": m["labels"] - 1}, "outside 1..6"),
        ("res101.mat", lambda m: {"labels": m["labels"] + 0.5}, "whole numbers"),
        ("res101.mat", lambda m: {"features": None}, "missing variable 'features'"),
        ("att_splits.mat", lambda m: {"att": m["att"][:, :5]}, "C = 6 classes"),
        ("att_splits.mat", lambda m: {"original_att": m["original_att"].T}, "A×C"),
        ("att_splits.mat", lambda m: {"allclasses_names": np.arange(6.0).reshape(6, 1)}, "cell array of strings"),
        ("att_splits.mat", lambda m: {"test_unseen_loc": m["test_unseen_loc"] + 1}, "outside 1..36"),
        ("att_splits.mat", lambda m: {"test_seen_loc": m["test_seen_loc"] - 1}, "outside 1..36"),
        ("att_splits.mat", lambda m: {"test_unseen_loc": np.vstack([m["test_unseen_loc"], [[3]]])}, "shares classes"),
        ("att_splits.mat", lambda m: {"test_seen_loc": np.vstack([m["test_seen_loc"], [[25]]])}, "not in trainval"),
        ("att_splits.mat", lambda m: {"test_seen_loc": m["trainval_loc"][:3]}, "share 3 images"),
        ("att_splits.mat", lambda m: {"val_loc": m["trainval_loc"]}, "train_loc and val_loc share classes"),
        ("att_splits.mat", lambda m: {"att": np.full((N_ATTRIBUTES, N_CLASSES), np.nan)}, "NaN"),
    ],
)
def test_xlsa17_inconsistent_content(zsl_root: Path, file: str, change, message: str) -> None:
    path = zsl_root / "AWA2" / file
    edit_mat(path, **change(scipy.io.loadmat(path)))
    with pytest.raises(DatasetFormatError, match=message):
        load_xlsa17(zsl_root, "AWA2")


def test_xlsa17_writer_rejects_bad_input(tmp_path: Path) -> None:
    arrays = zsl_arrays()
    with pytest.raises(ValueError, match="0-based"):
        write_xlsa17(tmp_path, "X", **{**arrays, "labels": arrays["labels"] + 1})
    with pytest.raises(ValueError, match="keys"):
        write_xlsa17(tmp_path, "X", **{**arrays, "splits": {"trainval_loc": np.arange(3)}})


# ---------------------------------------------------------------------------------------------- MNIST


@pytest.fixture
def mnist_root(tmp_path: Path) -> Path:
    return write_mnist(tmp_path, n_train=20, n_test=8)


def test_mnist(mnist_root: Path) -> None:
    train, test = load_mnist(mnist_root)
    assert train.images.shape == (20, 1, 28, 28) and test.images.shape == (8, 1, 28, 28)
    assert train.images.dtype == torch.float32 and 0 <= train.images.min() and train.images.max() <= 1
    raw = np.frombuffer((mnist_root / "MNIST/raw/train-images-idx3-ubyte").read_bytes()[16:], np.uint8)
    np.testing.assert_allclose(train.images.numpy().ravel() * 255, raw, atol=1e-4)
    assert train.labels.tolist() == [i % 10 for i in range(20)] and train.labels.dtype == torch.int64
    assert train.class_names == [str(d) for d in range(10)]
    image, label = test[3]
    assert image.shape == (1, 28, 28) and label == 3


def test_mnist_missing_and_corrupt(mnist_root: Path) -> None:
    (mnist_root / "MNIST/raw/t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(mnist_root)
    assert "t10k-labels-idx1-ubyte" in str(error.value) and "download=True" in str(error.value)
    (mnist_root / "MNIST/raw/t10k-labels-idx1-ubyte").write_bytes(b"garbage bytes, not an idx file")
    with pytest.raises(DatasetFormatError, match="idx files"):
        load_mnist(mnist_root)
    write_idx(mnist_root / "MNIST/raw/t10k-labels-idx1-ubyte", np.arange(5))
    with pytest.raises(DatasetFormatError, match="5 labels"):
        load_mnist(mnist_root)


# ------------------------------------------------------------------------------------------- Omniglot


@pytest.fixture
def omniglot_root(tmp_path: Path) -> Path:
    write_omniglot(tmp_path, "images_background", ["Latin", "Greek", "Armenian"])
    write_omniglot(tmp_path, "images_evaluation", ["Tifinagh", "Hebrew"])
    return tmp_path


def test_omniglot(omniglot_root: Path) -> None:
    data = load_omniglot(omniglot_root, background=True)
    assert len(data) == 12 and data.n_classes == 6
    assert data.class_names[0] == "Armenian/character01" and data.groups[:3] == ["Armenian", "Armenian", "Greek"]
    image, label = data[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32 and label == 0
    assert image.mean() > 0.5  # white paper, dark strokes, as in the files
    inverted, _ = load_omniglot(omniglot_root, background=True, image_size=32, invert=True)[0]
    assert inverted.shape == (1, 32, 32) and inverted.mean() < 0.5  # bright strokes on black, like MNIST
    assert load_omniglot(omniglot_root, background=False).groups[0] == "Hebrew"
    picklable = pickle.loads(pickle.dumps(data.transform))  # for DataLoader workers
    torch.testing.assert_close(picklable(Image.open(data.paths[0]).convert("L")), image)


def test_omniglot_needs_no_checksummed_zip(omniglot_root: Path) -> None:
    """torchvision's Omniglot refuses an extracted folder without its zip; load_omniglot reads it."""
    with pytest.raises(RuntimeError, match="not found or corrupted"):
        datasets.Omniglot(str(omniglot_root), background=True, download=False)
    assert len(load_omniglot(omniglot_root, background=True)) == 12


def test_omniglot_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        load_omniglot(tmp_path, background=False)
    assert "images_evaluation" in str(error.value) and "download=True" in str(error.value)


def test_omniglot_splits(omniglot_root: Path) -> None:
    splits = load_omniglot_splits(omniglot_root, n_val_alphabets=1)
    assert set(splits.val.groups) == {"Latin"} and set(splits.train.groups) == {"Armenian", "Greek"}
    assert set(splits.test.groups) == {"Hebrew", "Tifinagh"}
    names = [set(split.class_names) for split in splits]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert splits.train.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and splits.val.labels.max() == 1
    assert splits.val[0][0].shape == (1, 28, 28)
    with pytest.raises(ValueError, match="n_val_alphabets"):
        load_omniglot_splits(omniglot_root, n_val_alphabets=3)


# --------------------------------------------------------------------------------------- MiniImageNet

MINI_CLASSES = MINI_IMAGENET_CLASSES


@pytest.fixture
def mini_csv_root(tmp_path: Path) -> Path:
    return write_mini_imagenet(tmp_path)


def test_mini_imagenet_csv(mini_csv_root: Path) -> None:
    splits = load_mini_imagenet(mini_csv_root)
    for split, data in zip(("train", "val", "test"), splits):
        assert data.class_names == MINI_CLASSES[split] and data.labels.tolist() == [0, 0, 0, 1, 1, 1]
        image, _ = data[4]
        assert image.shape == (3, 84, 84) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert load_mini_imagenet(mini_csv_root, image_size=32).test[0][0].shape == (3, 32, 32)


def test_mini_imagenet_csv_errors(mini_csv_root: Path) -> None:
    folder = mini_csv_root / "miniImageNet"
    for name in ("n0185567200000002.jpg", "n0209124400000003.jpg"):
        (folder / "images" / name).unlink()
    with pytest.raises(DatasetNotFoundError) as error:
        load_mini_imagenet(mini_csv_root)
    assert "2 of the 6 images listed in val.csv" in str(error.value)
    assert "n0185567200000002.jpg" in str(error.value) and "n0209124400000003.jpg" in str(error.value)
    (folder / "val.csv").write_text("file,wnid\n")
    with pytest.raises(DatasetFormatError, match="filename,label"):
        load_mini_imagenet(mini_csv_root)
    (folder / "val.csv").write_text((folder / "train.csv").read_text())
    with pytest.raises(DatasetFormatError, match="share classes"):
        load_mini_imagenet(mini_csv_root)


def test_mini_imagenet_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as error:
        load_mini_imagenet(tmp_path)
    assert "train.csv" in str(error.value) and "mini-imagenet-cache-train.pkl" in str(error.value)


def write_cache_pickles(folder: Path, protocol: int = pickle.HIGHEST_PROTOCOL) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for s, (split, wnids) in enumerate(MINI_CLASSES.items()):
        images = np.stack([colour_image(10 * s + i, (84, 84)) for i in range(4)])
        class_dict = {wnids[0]: [0, 2], wnids[1]: [1, 3]}
        with open(folder / f"mini-imagenet-cache-{split}.pkl", "wb") as handle:
            pickle.dump({"image_data": images, "class_dict": class_dict}, handle, protocol=protocol)
        arrays[split] = images
    return arrays


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_mini_imagenet_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: int) -> None:
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / "cache"))
    arrays = write_cache_pickles(tmp_path / "data", protocol)
    splits = load_mini_imagenet(tmp_path / "data")
    assert splits.train.class_names == MINI_CLASSES["train"] and splits.train.labels.tolist() == [0, 0, 1, 1]
    image, label = splits.val[1]  # second image of class 0 = image_data[2]
    assert label == 0 and image.shape == (3, 84, 84)
    np.testing.assert_array_equal((image * 255).round().byte().permute(1, 2, 0).numpy(), arrays["val"][2])
    again = load_mini_imagenet(tmp_path / "data")
    assert again.test.paths == splits.test.paths


def test_pickles_with_code_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / "cache"))
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    folder = tmp_path / "miniImageNet"
    write_cache_pickles(folder)
    payload = {"image_data": np.zeros((1, 84, 84, 3), np.uint8), "class_dict": {"n1": [0]}, "x": Exploit()}
    (folder / "mini-imagenet-cache-train.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(DatasetFormatError, match="pickles that reference code are refused|Pickles that reference code"):
        load_mini_imagenet(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload, message",
    [
        ([1, 2, 3], "expected a dict"),
        ({"image_data": np.zeros((2, 84, 84), np.uint8), "class_dict": {"n1": [0, 1]}}, "uint8 array"),
        ({"image_data": np.zeros((2, 84, 84, 3), np.uint8), "class_dict": {"n1": [0, 0]}}, "exactly one class"),
        ({"image_data": np.zeros((1, 84, 84, 3), np.uint8), "class_dict": {"../escape": [0]}}, "class names"),
    ],
)
def test_malformed_pickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, payload, message: str) -> None:
    monkeypatch.setenv("PROTOLAB_CACHE_DIR", str(tmp_path / "cache"))
    write_cache_pickles(tmp_path)
    (tmp_path / "mini-imagenet-cache-train.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(DatasetFormatError, match=message):
        load_mini_imagenet(tmp_path)
    (tmp_path / "mini-imagenet-cache-train.pkl").write_bytes(b"\x80\x05garbage")
    with pytest.raises(DatasetFormatError, match="not a readable pickle"):
        load_mini_imagenet(tmp_path)


# ------------------------------------------------------------------------------------------------ CUB

@pytest.fixture
def cub_root(tmp_path: Path) -> Path:
    return write_cub(tmp_path)


def test_cub_closer_look_split(cub_root: Path) -> None:
    splits = load_cub(cub_root)
    assert splits.train.class_names == [CUB_CLASSES[i] for i in (0, 2, 4, 6)]
    assert splits.val.class_names == [CUB_CLASSES[i] for i in (1, 5)]
    assert splits.test.class_names == [CUB_CLASSES[i] for i in (3, 7)]
    assert splits.train.labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3] and len(splits.test) == 4
    assert splits.test.paths[0].parent.name == CUB_CLASSES[3]
    image, label = splits.val[3]
    assert image.shape == (3, 84, 84) and label == 1


def test_cub_errors(cub_root: Path) -> None:
    folder = cub_root / "CUB_200_2011"
    next((folder / "images" / CUB_CLASSES[2]).glob("*.jpg")).unlink()
    with pytest.raises(DatasetNotFoundError, match="1 of the 16 images listed in images.txt"):
        load_cub(cub_root)
    (folder / "image_class_labels.txt").write_text("1 1\n2 99\n")
    with pytest.raises(DatasetFormatError, match="image ids differ"):
        load_cub(cub_root)
    (folder / "classes.txt").write_text("1 001.A\nnot a line\n")
    with pytest.raises(DatasetFormatError, match="line 2"):
        load_cub(cub_root)
    (folder / "classes.txt").unlink()
    with pytest.raises(DatasetNotFoundError, match="classes.txt"):
        load_cub(cub_root)


# ---------------------------------------------------------------------------------------- Market-1501

MARKET = MARKET1501_FILES


@pytest.fixture
def market_root(tmp_path: Path) -> Path:
    return write_market1501(tmp_path)


def test_market1501(market_root: Path) -> None:
    splits = load_market1501(market_root)
    assert splits.train.class_names == ["0002", "0007"] and splits.train.labels.tolist() == [0, 0, 1]
    assert splits.train.domains.tolist() == [1, 2, 3] and splits.train.person_ids.tolist() == [2, 2, 7]
    gallery, query = splits.gallery, splits.query
    assert gallery.class_names == query.class_names == ["0002", "0010", "0000", "-1"]
    names = [p.name for p in gallery.paths]
    assert names == sorted(MARKET["bounding_box_test"]) and len(gallery) == 5
    person_ids = dict(zip(names, gallery.person_ids.tolist()))
    assert person_ids["-1_c3s1_000401_03.jpg"] == -1 and person_ids["0000_c1s1_000000_01.jpg"] == 0
    assert [gallery.class_names[label] for label in gallery.labels] == ["-1", "0000", "0002", "0002", "0010"]
    image, _ = query[0]
    assert image.shape == (3, 128, 64)
    # The standard protocol from these fields: for query 0 (id 2, camera 1), drop same id + same camera and junk.
    q_id, q_cam = query.person_ids[0], query.domains[0]
    g_ids, g_cams = gallery.person_ids, gallery.domains
    valid = ~((g_ids == q_id) & (g_cams == q_cam)) & (g_ids != -1)
    assert [n for n, v in zip(names, valid) if v] == ["0000_c1s1_000000_01.jpg", "0002_c4s2_045701_02.jpg",
                                                    "0010_c5s3_015240_04.jpg"]
    direct = load_market1501(market_root / "Market-1501-v15.09.15", image_size=(64, 32))
    assert direct.gallery[0][0].shape == (3, 64, 32)


def test_market1501_errors(market_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="bounding_box_train"):
        load_market1501(tmp_path / "elsewhere")
    bad = market_root / "Market-1501-v15.09.15" / "query" / "person2_cam1.jpg"
    Image.fromarray(colour_image(0, (16, 8))).save(bad)
    with pytest.raises(DatasetFormatError, match="person2_cam1.jpg") as error:
        load_market1501(market_root)
    assert "PPPP_cCsS_FFFFFF_NN.jpg" in str(error.value)


# ------------------------------------------------------------------------------- files that do not decode


def _omniglot(root: Path) -> Path:
    write_omniglot(root, "images_background", ["Latin", "Greek"])
    write_omniglot(root, "images_evaluation", ["Tifinagh", "Hebrew"])
    return root


IMAGE_LAYOUTS = {
    "omniglot": (_omniglot, "omniglot-py/images_evaluation/Hebrew/character02/1001_02.png",
                 lambda root: load_omniglot_splits(root, n_val_alphabets=1)),
    "miniimagenet": (write_mini_imagenet, "miniImageNet/images/n0185567200000002.jpg", load_mini_imagenet),
    "cub": (write_cub, f"CUB_200_2011/images/{CUB_CLASSES[5]}/Bird_F_0001_6.jpg", load_cub),
    "market1501": (write_market1501, "Market-1501-v15.09.15/query/0010_c2s1_002551_00.jpg", load_market1501),
}


@pytest.mark.parametrize("layout", sorted(IMAGE_LAYOUTS))
@pytest.mark.parametrize("damage", ["zero bytes", "garbage", "truncated"])
def test_an_image_that_does_not_decode_is_refused_when_loading(tmp_path: Path, layout: str, damage: str) -> None:
    write, relative, load = IMAGE_LAYOUTS[layout]
    write(tmp_path)
    load(tmp_path)  # the intact layout loads
    path = tmp_path / relative
    content = {"zero bytes": b"", "garbage": b"not an image at all " * 20,
               "truncated": path.read_bytes()[: len(path.read_bytes()) // 2]}[damage]
    path.write_bytes(content)
    with pytest.raises(DatasetFormatError, match="not a readable image") as error:
        load(tmp_path)
    assert error.value.path == path and str(path) in str(error.value)
