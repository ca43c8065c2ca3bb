import io
import tarfile
from dataclasses import replace

import numpy as np
import pytest

from cnnkit.config import Config, DataConfig
from cnnkit.data import build_dataset, cifar
from cnnkit.data.download import sha256_file
from cnnkit.errors import ConfigError, DataError


def _records(labels: list[tuple[int, ...]], seed: int = 0) -> tuple[bytes, np.ndarray]:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (len(labels), 3, 32, 32), dtype=np.uint8)
    rows = [bytes(lab) + pixels[i].tobytes() for i, lab in enumerate(labels)]
    return b"".join(rows), pixels


def _fake_cifar10(folder, n_per_batch=4, n_test=6, as_archive=False):
    """A tiny CIFAR-10 binary release: 5 train batches + test batch + class names."""
    files = {}
    truth = {}
    for i in range(1, 6):
        labels = [((i + j) % 10,) for j in range(n_per_batch)]
        files[f"data_batch_{i}.bin"], truth[f"data_batch_{i}.bin"] = _records(labels, i)
    files["test_batch.bin"], truth["test"] = _records([(j % 10,) for j in range(n_test)], 9)
    files["batches.meta.txt"] = ("\n".join(cifar.CIFAR10_CLASSES) + "\n\n").encode()
    folder.mkdir(parents=True, exist_ok=True)
    if as_archive:
        with tarfile.open(folder / "cifar-10-binary.tar.gz", "w:gz") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    else:
        (folder / "cifar-10-batches-bin").mkdir()
        for name, data in files.items():
            (folder / "cifar-10-batches-bin" / name).write_bytes(data)
    return truth


@pytest.fixture
def small_counts(monkeypatch):
    monkeypatch.setattr(cifar, "CIFAR10", replace(cifar.CIFAR10, counts=(20, 6)))
    monkeypatch.setattr(cifar, "CIFAR100", replace(cifar.CIFAR100, counts=(12, 4)))


@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar10_binary_pixels_and_labels(tmp_path, small_counts, as_archive):
    truth = _fake_cifar10(tmp_path / "cifar10", as_archive=as_archive)
    ds = build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path), val_fraction=0.25), seed=0)
    assert ds.class_names == cifar.CIFAR10_CLASSES and ds.channels == 3 and ds.image_size == (32, 32)
    assert len(ds.train) + len(ds.val) == 20 and len(ds.test) == 6
    # test split is in file order: pixels and labels exactly as written (R, G, B planes)
    assert np.array_equal(ds.test.images.numpy(), truth["test"])
    assert ds.test.labels.tolist() == [0, 1, 2, 3, 4, 5]


def _fake_cifar100(folder):
    folder.mkdir(parents=True)
    d = folder / "cifar-100-binary"
    d.mkdir()
    train, _ = _records([(j % 20, (j * 7) % 100) for j in range(12)], 1)
    test, pixels = _records([(3, 42), (19, 99), (0, 0), (5, 17)], 2)
    (d / "train.bin").write_bytes(train)
    (d / "test.bin").write_bytes(test)
    (d / "coarse_label_names.txt").write_text("\n".join(f"super{i}" for i in range(20)))
    (d / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)))
    return pixels


def test_cifar100_fine_and_coarse_labels(tmp_path, small_counts):
    pixels = _fake_cifar100(tmp_path / "cifar100")
    fine = build_dataset(DataConfig(dataset="cifar100", root=str(tmp_path), val_fraction=0.2))
    assert fine.num_classes == 100 and fine.class_names[42] == "fine42"
    assert fine.test.labels.tolist() == [42, 99, 0, 17]
    assert np.array_equal(fine.test.images.numpy(), pixels)
    coarse = build_dataset(
        DataConfig(dataset="cifar100", root=str(tmp_path), val_fraction=0.2, cifar100_labels="coarse")
    )
    assert coarse.num_classes == 20 and coarse.name == "cifar100-coarse"
    assert coarse.test.labels.tolist() == [3, 19, 0, 5] and coarse.class_names[19] == "super19"
    with pytest.raises(ConfigError, match="'data.cifar100_labels': 'medium' is not one of fine, coarse"):
        Config().with_overrides({"data.cifar100_labels": "medium"})  # checked by the config loader


def test_truncated_batch_is_named(tmp_path, small_counts):
    _fake_cifar10(tmp_path / "cifar10")
    f = tmp_path / "cifar10" / "cifar-10-batches-bin" / "data_batch_3.bin"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(DataError, match=r"data_batch_3.bin: .* not a whole number of 3073-byte CIFAR records"):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path)))


def test_count_is_checked(tmp_path):
    _fake_cifar10(tmp_path / "cifar10")
    with pytest.raises(DataError, match=r"20 images in data_batch_1.bin.*expected 50000"):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path)))


def test_missing_without_download(tmp_path):
    with pytest.raises(DataError, match=r"cifar10 not found in .*cifar-10-batches-bin/ or cifar-10-binary.tar.gz"):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path), download=False))


def test_archive_is_downloaded_with_checksum(tmp_path, monkeypatch, small_counts):
    _fake_cifar10(tmp_path / "mirror", as_archive=True)
    archive = tmp_path / "mirror" / "cifar-10-binary.tar.gz"
    rel = replace(cifar.CIFAR10, url=archive.as_uri(), sha256=sha256_file(archive))
    monkeypatch.setattr(cifar, "CIFAR10", rel)
    ds = build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path / "root")))
    assert len(ds.test) == 6 and (tmp_path / "root" / "cifar10" / "cifar-10-binary.tar.gz").is_file()
    monkeypatch.setattr(cifar, "CIFAR10", replace(rel, sha256="0" * 64))
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path / "other")))


def test_corrupt_archive_names_it(tmp_path):
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    with pytest.raises(DataError, match=r"(?s)cifar-10-binary.tar.gz: cannot be read .*delete it to download it again"):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path), download=False))


def test_missing_batch_and_out_of_range_label_are_named(tmp_path, small_counts):
    _fake_cifar10(tmp_path / "cifar10")
    batch = tmp_path / "cifar10" / "cifar-10-batches-bin" / "data_batch_2.bin"
    data = batch.read_bytes()
    batch.unlink()
    with pytest.raises(
        DataError, match=r"cifar-10-batches-bin: data_batch_2.bin is missing; the cifar10 binary release is incomplete"
    ):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path)))
    batch.write_bytes(bytes([12]) + data[1:])  # the first record's label byte: 12 of 10 classes
    with pytest.raises(DataError, match=r"label 12 out of range 0-9 in data_batch_1.bin"):
        build_dataset(DataConfig(dataset="cifar10", root=str(tmp_path)))
