import numpy as np
import pytest

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset, list_datasets, mnist
from cnnkit.data.download import sha256_file
from cnnkit.data.idx import write_idx
from cnnkit.errors import DataError


def _write_idx_dataset(folder, n_train=20, n_test=10):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        imgs = np.zeros((n, 28, 28), np.uint8)
        imgs[:, 6:22, 6:22] = rng.integers(50, 255, (n, 16, 16))
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", imgs)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


@pytest.mark.parametrize(
    "name, classes",
    [("fashion-mnist", mnist.FASHION_CLASSES), ("kmnist", mnist.KMNIST_CLASSES)],
)
def test_mnist_format_datasets_from_data_root(tmp_path, monkeypatch, name, classes):
    _write_idx_dataset(tmp_path / name)
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    ds = build_dataset(DataConfig(dataset=name, root=str(tmp_path), val_fraction=0.5), seed=0)
    assert ds.name == name and ds.class_names == classes
    assert (len(ds.train), len(ds.val), len(ds.test)) == (10, 10, 10)
    assert ds.test.images.shape[1:] == (1, 28, 28)
    assert ds.class_names[0] == ("T-shirt/top" if name == "fashion-mnist" else "o")


def test_fashion_mnist_count_check_names_the_dataset(tmp_path):
    _write_idx_dataset(tmp_path / "fashion-mnist")
    with pytest.raises(DataError, match=r"20 images, expected 60000; the file is incomplete or not Fashion-MNIST"):
        build_dataset(DataConfig(dataset="fashion-mnist", root=str(tmp_path)))


def test_kmnist_missing_without_download(tmp_path):
    with pytest.raises(DataError, match=r"KMNIST not found in .*kmnist .*missing train-images"):
        build_dataset(DataConfig(dataset="kmnist", root=str(tmp_path), download=False))


def test_kmnist_downloaded_with_checksums_from_the_next_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    _write_idx_dataset(mirror)
    monkeypatch.setattr(mnist, "KMNIST_MIRRORS", ["file:///nonexistent/", mirror.as_uri() + "/"])
    monkeypatch.setattr(mnist, "KMNIST_FILES", {n: sha256_file(mirror / n) for n in mnist.KMNIST_FILES})
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    ds = build_dataset(DataConfig(dataset="kmnist", root=str(tmp_path / "root")))
    assert len(ds.test) == 10
    assert sorted(p.name for p in (tmp_path / "root" / "kmnist").iterdir()) == sorted(mnist.KMNIST_FILES)


def test_wrong_checksum_is_refused(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    _write_idx_dataset(mirror)
    monkeypatch.setattr(mnist, "FASHION_MIRRORS", [mirror.as_uri() + "/"])
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        build_dataset(DataConfig(dataset="fashion-mnist", root=str(tmp_path / "root")))
    assert not any((tmp_path / "root" / "fashion-mnist").iterdir())


def test_label_out_of_range_is_an_error(tmp_path, monkeypatch):
    _write_idx_dataset(tmp_path / "kmnist")
    write_idx(tmp_path / "kmnist" / "t10k-labels-idx1-ubyte.gz", np.full(10, 12, np.uint8))
    monkeypatch.setattr(mnist, "MNIST_COUNTS", {"train": 20, "t10k": 10})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: label 12 out of range 0-9"):
        build_dataset(DataConfig(dataset="kmnist", root=str(tmp_path)))


def test_status_reports_where_and_whether_present(tmp_path):
    info = {d.name: d for d in list_datasets()}
    _write_idx_dataset(tmp_path / "kmnist")
    where, status = info["kmnist"].find(str(tmp_path))
    assert where == str(tmp_path / "kmnist") and status == "present"
    assert info["fashion-mnist"].find(str(tmp_path))[1].startswith("missing")
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / "train-labels-idx1-ubyte.gz", np.zeros(3, np.uint8))
    assert info["mnist"].find(str(tmp_path))[1] == "incomplete: 3 files missing"


def test_channels_option_converts_builtin_datasets():
    rgb = build_dataset(DataConfig(channels=3, subset_per_class=3), seed=0)
    gray = build_dataset(DataConfig(subset_per_class=3), seed=0)
    assert rgb.channels == 3 and rgb.test.images.shape[1:] == (3, 28, 28)
    assert (rgb.test.images[:, 0] == rgb.test.images[:, 2]).all() and (rgb.test.images[:, :1] == gray.test.images).all()
    assert len(rgb.mean) == 3 and rgb.mean[0] == pytest.approx(gray.mean[0], abs=1e-3)
