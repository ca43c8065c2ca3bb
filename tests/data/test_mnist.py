import numpy as np
import pytest
import torch
from tests.conftest import SHARED

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset, mnist
from cnnkit.data.download import sha256_file
from cnnkit.data.idx import write_idx
from cnnkit.errors import ConfigError, DataError


def test_mnist_mini_is_balanced_and_held_out():
    ds = build_dataset(DataConfig(), seed=0)
    assert ds.num_classes == 10 and ds.channels == 1 and ds.image_size == (28, 28)
    assert len(ds.train) + len(ds.val) == 10000 and len(ds.test) == 2000
    assert len(ds.val) == 1000
    assert ds.train.class_counts(10) == [900] * 10
    assert ds.test.class_counts(10) == [200] * 10
    # MNIST polarity: black background, so the mean is small
    assert 0.08 < ds.mean[0] < 0.2


def test_val_split_is_seeded():
    a = build_dataset(DataConfig(), seed=3)
    b = build_dataset(DataConfig(), seed=3)
    c = build_dataset(DataConfig(), seed=4)
    assert torch.equal(a.val.images, b.val.images)
    assert not torch.equal(a.val.images, c.val.images)


def test_subset_per_class():
    ds = build_dataset(DataConfig(subset_per_class=7), seed=0)
    assert ds.train.class_counts(10) == [7] * 10


def test_unknown_dataset_suggests():
    with pytest.raises(ConfigError, match="Did you mean 'mnist-mini'"):
        build_dataset(DataConfig(dataset="mnist-mnii"))


def _write_fake_mnist(folder, n_train=20, n_test=10, invert=False):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = np.zeros((n, 28, 28), np.uint8)
        imgs[:, 8:20, 8:20] = rng.integers(100, 255, (n, 12, 12))
        if invert:
            imgs = 255 - imgs
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", imgs)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


def test_mnist_from_data_root_validates_counts(tmp_path, monkeypatch):
    _write_fake_mnist(tmp_path / "mnist")
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: 20 images, expected 60000"):
        build_dataset(DataConfig(dataset="mnist", root=str(tmp_path)))
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    ds = build_dataset(DataConfig(dataset="mnist", root=str(tmp_path), val_fraction=0.5))
    assert len(ds.train) == 10 and len(ds.val) == 10 and len(ds.test) == 10


def test_cnnkit_data_env_var_is_the_default_root(tmp_path, monkeypatch):
    _write_fake_mnist(tmp_path / "mnist")
    monkeypatch.setenv("CNNKIT_DATA", str(tmp_path))
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    assert len(build_dataset(DataConfig(dataset="mnist")).test) == 10


def test_inverted_polarity_is_restored_with_a_warning(tmp_path, monkeypatch, caplog):
    _write_fake_mnist(tmp_path / "mnist", invert=True)
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    ds = build_dataset(DataConfig(dataset="mnist", root=str(tmp_path)))
    assert ds.test.images[:, :, 0, 0].max() == 0  # border is background (0) again
    assert "polarity is inverted" in caplog.text and "train-images-idx3-ubyte.gz" in caplog.text


def test_labels_count_mismatch_names_the_file(tmp_path, monkeypatch):
    _write_fake_mnist(tmp_path / "mnist")
    write_idx(tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz", np.zeros(9, np.uint8))
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: 9 labels for 10 images"):
        build_dataset(DataConfig(dataset="mnist", root=str(tmp_path)))


def test_missing_files_without_download_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"MNIST not found in .*missing train-images"):
        build_dataset(DataConfig(dataset="mnist", root=str(tmp_path), download=False))


def test_missing_files_are_downloaded_with_checksums(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    _write_fake_mnist(mirror)
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ["file:///nonexistent/", mirror.as_uri() + "/"])
    monkeypatch.setattr(mnist, "MNIST_FILES", {n: sha256_file(mirror / n) for n in mnist.MNIST_FILES})
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    ds = build_dataset(DataConfig(dataset="mnist", root=str(tmp_path / "root")))
    assert len(ds.test) == 10
    assert sorted(p.name for p in (tmp_path / "root" / "mnist").iterdir()) == sorted(mnist.MNIST_FILES)


@pytest.mark.shared_data
@pytest.mark.skipif(not (SHARED / "mnist").is_dir(), reason="../shared/datasets/mnist not present")
def test_full_mnist_from_shared_data_root():
    ds = build_dataset(DataConfig(dataset="mnist", root=str(SHARED), download=False))
    assert len(ds.train) + len(ds.val) == 60000 and len(ds.test) == 10000
    assert ds.test.class_counts(10) == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert 0.1 < ds.mean[0] < 0.15  # black background after the polarity check


def test_read_idx_pair_names_a_missing_file_and_a_wrong_image_size(tmp_path):
    _write_fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte.gz"):
        mnist.read_idx_pair(tmp_path, "t10k", expected=10)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((10, 32, 32), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(10, np.uint8))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: images are 32x32, expected 28x28"):
        mnist.read_idx_pair(tmp_path, "t10k", expected=10)
