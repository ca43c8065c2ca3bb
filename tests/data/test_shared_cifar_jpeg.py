"""Integration test on a few hundred images of the real CIFAR-10 JPEG tarball in ../shared/datasets."""

import tarfile

import numpy as np
import pytest
from PIL import Image
from tests.conftest import SHARED

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset, cache
from cnnkit.data.cifar import CIFAR10_CLASSES

TARBALL = SHARED / "cifar10-jpg.tar.gz"
PER_CLASS = 30

pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not TARBALL.is_file(), reason=f"{TARBALL} not present (the shared datasets folder is absent)"),
]


@pytest.fixture(scope="module")
def cifar_slice(tmp_path_factory):
    """test/<class>/0000..0029.jpg of every class, extracted (the tarball lists test/ first)."""
    out = tmp_path_factory.mktemp("cifar-jpg")
    with tarfile.open(TARBALL) as tar:
        for m in tar:
            parts = m.name.split("/")
            if parts[0] == "train":
                break
            if m.isfile() and len(parts) == 3 and int(parts[2].split(".")[0]) < PER_CLASS:
                (out / parts[1]).mkdir(exist_ok=True)
                (out / parts[1] / parts[2]).write_bytes(tar.extractfile(m).read())
    return out


def test_real_cifar10_jpegs_through_the_folder_loader_and_cache(cifar_slice, tmp_path, monkeypatch):
    cfg = DataConfig(
        dataset="folder", path=str(cifar_slice), image_size=32, val_fraction=0.2, cache_dir=str(tmp_path / "c")
    )
    ds = build_dataset(cfg, seed=0)
    assert ds.class_names == CIFAR10_CLASSES and not ds.skipped
    assert len(ds.train) + len(ds.val) == 10 * PER_CLASS and ds.val.class_counts(10) == [6] * 10
    assert ds.image_size == (32, 32) and ds.channels == 3
    assert all(0.35 < m < 0.6 for m in ds.mean) and all(0.18 < s < 0.32 for s in ds.std)
    # pixel-exact with a plain PIL decode (32x32 files: no resize)
    i = 3
    ref = np.asarray(Image.open(ds.train.paths[i]).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(ds.train.images[i].numpy(), ref)
    monkeypatch.setattr(cache, "load_image", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    again = build_dataset(cfg, seed=0)
    assert np.array_equal(again.train.images.numpy(), ds.train.images.numpy())
