"""data/segment_folder.py: image / mask folders in both layouts, bad pairs skipped and named (or an
error under data.strict), classes from classes.txt or inferred, resizing with nearest masks."""

import numpy as np
import pytest
from PIL import Image
from tests.data.segment_pairs import make_pairs

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset
from cnnkit.errors import ConfigError, DataError


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(dataset="folder", path=str(path), task="segment", cache=False, **kw)


def test_flat_folder_decodes_pairs_and_holds_out_val(tmp_path):
    make_pairs(tmp_path, n=8, size=32, classes=3)
    data = build_dataset(_cfg(tmp_path, val_fraction=0.25))
    assert (len(data.train), len(data.val), data.test) == (6, 2, None)
    assert data.train.images.shape == (6, 1, 32, 32) and data.train.labels.shape == (6, 32, 32)
    assert data.class_names == ["0", "1", "2"] and data.train.masks
    # the mask and the image agree: the square (class 1) is exactly the bright pixels
    x, y = data.train.images[0, 0], data.train.labels[0]
    assert torch_equal((x == 220), (y == 1))
    counts = data.train.class_counts(3)
    assert sum(counts) == 6 * 32 * 32 and counts[1] == int((data.train.labels == 1).sum())


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_binary_0_255_masks_become_background_foreground(tmp_path):
    make_pairs(tmp_path, n=4, binary=True)
    data = build_dataset(_cfg(tmp_path))
    assert data.class_names == ["background", "foreground"]
    assert set(data.train.labels.unique().tolist()) == {0, 1}


def test_bad_pairs_are_skipped_and_named(tmp_path):
    make_pairs(tmp_path, n=6, classes=2)
    (tmp_path / "classes.txt").write_text("bg\nsquare\n")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "images" / "nomask.png")  # no mask
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "masks" / "orphan.png")  # no image
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(tmp_path / "masks" / "01.png")  # size mismatch
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(tmp_path / "masks" / "02.png")  # unknown class 7
    data = build_dataset(_cfg(tmp_path))
    reasons = {p.split("/")[-1]: r for p, r in ((s.path, s.reason) for s in data.skipped)}
    assert set(reasons) == {"nomask.png", "orphan.png", "01.png", "02.png"}
    assert reasons["01.png"] == "mask is 16x16 but its image is 32x32"
    assert reasons["02.png"].startswith("unknown class index 7")
    assert len(data.train) + len(data.val) == 4 and data.class_names == ["bg", "square"]


def test_strict_makes_a_bad_pair_an_error(tmp_path):
    make_pairs(tmp_path, n=3)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "masks" / "00.png")
    with pytest.raises(DataError, match=r"00.png: mask is 8x8 but its image is 32x32 \(data.strict is on"):
        build_dataset(_cfg(tmp_path, strict=True))


def test_split_layout_and_resize_keeps_masks_nearest(tmp_path):
    for split, n in (("train", 5), ("val", 2), ("test", 2)):
        make_pairs(tmp_path / split, n=n, size=30, classes=3, seed=n)
    data = build_dataset(_cfg(tmp_path, image_size=16))
    assert (len(data.train), len(data.val), len(data.test)) == (5, 2, 2)
    assert data.train.images.shape[-2:] == (16, 16) and data.test.labels.shape == (2, 16, 16)
    assert set(data.train.labels.unique().tolist()) <= {0, 1, 2}  # no blended class values
    assert data.channels == 1


def test_task_must_fit_the_data(tmp_path):
    with pytest.raises(ConfigError, match="data.task must be one of auto, classify, segment"):
        build_dataset(DataConfig(task="detect"))
    with pytest.raises(ConfigError, match="data.task segment: dataset 'mnist-mini' holds class labels"):
        build_dataset(DataConfig(task="segment"))
    with pytest.raises(DataError, match="expected images/ and masks/"):
        build_dataset(_cfg(tmp_path))


def test_fingerprint_sees_a_changed_mask(tmp_path):
    from cnnkit.data.fingerprint import changes, fingerprint

    make_pairs(tmp_path, n=4, classes=3)
    before = fingerprint(build_dataset(_cfg(tmp_path)))
    assert fingerprint(build_dataset(_cfg(tmp_path)))["digest"] == before["digest"]
    mask = np.asarray(Image.open(tmp_path / "masks" / "02.png")).copy()
    mask[0, 0] = 2 if mask[0, 0] != 2 else 0
    Image.fromarray(mask).save(tmp_path / "masks" / "02.png")
    now = fingerprint(build_dataset(_cfg(tmp_path)))
    assert now["digest"] != before["digest"] and any("changed" in line for line in changes(before, now))
