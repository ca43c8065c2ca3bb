import pytest
import torch
from tests.conftest import make_image_folder

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset
from cnnkit.errors import ConfigError, DataError


def test_class_folders_with_val_split(image_folder):
    ds = build_dataset(DataConfig(dataset="folder", path=str(image_folder), image_size=16, val_fraction=0.34), seed=0)
    assert ds.class_names == ["cat", "dog"]
    assert ds.channels == 3 and ds.image_size == (16, 16)
    assert len(ds.train) == 8 and len(ds.val) == 4 and ds.test is None
    assert ds.val.class_counts(2) == [2, 2]


def test_split_folders(tmp_path):
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        make_image_folder(tmp_path / split, per_class=n)
    ds = build_dataset(DataConfig(dataset="folder", path=str(tmp_path), channels=1, image_size=8))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (8, 4, 6)
    assert ds.channels == 1


def test_hidden_and_non_image_files_are_ignored(image_folder):
    (image_folder / "cat" / "notes.txt").write_text("hello")
    (image_folder / "cat" / ".DS_Store").write_bytes(b"\0\0")
    (image_folder / ".cache").mkdir()
    ds = build_dataset(DataConfig(dataset="folder", path=str(image_folder), image_size=8), seed=0)
    assert ds.class_names == ["cat", "dog"] and not ds.skipped


def test_corrupt_image_is_skipped_and_reported_by_name(image_folder, caplog):
    caplog.set_level(
        "DEBUG", logger="cnnkit"
    )  # the per-file line is a debug message: train prints one line with the count
    (image_folder / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (image_folder / "dog" / "empty.png").write_bytes(b"")
    ds = build_dataset(DataConfig(dataset="folder", path=str(image_folder), image_size=8), seed=0)
    names = sorted(s.path.rsplit("/", 1)[1] for s in ds.skipped)
    assert names == ["broken.jpg", "empty.png"]
    assert "broken.jpg" in caplog.text
    assert len(ds.train) + len(ds.val) == 12


def test_strict_makes_a_bad_file_an_error(image_folder):
    (image_folder / "dog" / "broken.jpg").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"broken.jpg.*without --strict"):
        build_dataset(DataConfig(dataset="folder", path=str(image_folder), image_size=8, strict=True))


def test_class_with_no_readable_image_is_an_error(image_folder):
    (image_folder / "bird").mkdir()
    (image_folder / "bird" / "x.png").write_bytes(b"nope")
    with pytest.raises(DataError, match=r"class folder 'bird' has no readable image"):
        build_dataset(DataConfig(dataset="folder", path=str(image_folder), image_size=8))


def test_missing_folder_and_missing_path(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        build_dataset(DataConfig(dataset="folder", path=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="--data PATH"):
        build_dataset(DataConfig(dataset="folder"))
    with pytest.raises(ConfigError, match="data.path is only used with"):
        build_dataset(DataConfig(dataset="mnist-mini", path=str(tmp_path)))


def test_images_are_decoded_once_into_uint8(image_folder):
    ds = build_dataset(DataConfig(dataset="folder", path=str(image_folder), image_size=12), seed=0)
    assert ds.train.images.dtype == torch.uint8 and ds.train.images.shape[1:] == (3, 12, 12)
    assert ds.train.paths is not None and len(ds.train.paths) == len(ds.train)


def test_folder_without_class_folders_names_it(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    (root / "a.png").write_bytes(b"")  # images directly in the folder, no class folders
    with pytest.raises(DataError, match=r"flat: no class folders found; expected .*flat/<class name>/<images>"):
        build_dataset(DataConfig(dataset="folder", path=str(root), image_size=8))


def test_a_class_missing_from_train_is_an_error(tmp_path):
    make_image_folder(tmp_path / "train", per_class=2)
    make_image_folder(tmp_path / "val", classes=("cat", "bird"), per_class=1)
    with pytest.raises(
        DataError, match=r"val: classes \['bird'\] do not appear in .*train; every class needs training images"
    ):
        build_dataset(DataConfig(dataset="folder", path=str(tmp_path), image_size=8))
