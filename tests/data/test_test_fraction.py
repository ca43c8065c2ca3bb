"""data.test_fraction (--test-fraction) and the one-class error, in data/folder.py's finish()."""

import pytest
import torch
from tests.conftest import make_image_folder, tiny_train_args

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset
from cnnkit.errors import ConfigError, DataError


def _cfg(path, **kw) -> DataConfig:
    return DataConfig(dataset="folder", path=str(path), image_size=12, **kw)


def test_test_fraction_holds_out_a_seeded_stratified_disjoint_test_split(tmp_path):
    root = make_image_folder(tmp_path / "im", per_class=20)
    a = build_dataset(_cfg(root, test_fraction=0.2), seed=3)
    b = build_dataset(_cfg(root, test_fraction=0.2), seed=3)
    assert (len(a.train), len(a.val), len(a.test)) == (28, 4, 8)
    assert a.test.labels.bincount().tolist() == [4, 4]  # stratified: 20 % of each class
    assert a.test.paths == b.test.paths  # seeded
    sets = [set(s.paths) for s in (a.train, a.val, a.test)]
    assert not (sets[0] & sets[2]) and not (sets[1] & sets[2]) and len(set.union(*sets)) == 40
    none = build_dataset(_cfg(root), seed=3)
    assert none.test is None and len(none.train) == 36


def test_test_fraction_errors_name_the_key(tmp_path):
    root = make_image_folder(tmp_path / "im", per_class=6)
    with pytest.raises(ConfigError, match=r"data.test_fraction must be between 0 and 1"):
        build_dataset(_cfg(root, test_fraction=1.5))
    with pytest.raises(ConfigError, match=r"data.test_fraction.*'mnist-mini' has its own test split"):
        build_dataset(DataConfig(test_fraction=0.2))
    make_image_folder(tmp_path / "sp" / "train", per_class=4)
    make_image_folder(tmp_path / "sp" / "test", per_class=2)
    with pytest.raises(ConfigError, match=r"already has a test split; drop --test-fraction"):
        build_dataset(_cfg(tmp_path / "sp", test_fraction=0.2))


def test_one_class_is_an_error_naming_the_folder(tmp_path):
    root = make_image_folder(tmp_path / "only", classes=("cat",), per_class=6)
    with pytest.raises(DataError, match=r"only: only one class, 'cat'; a classifier needs at least two classes"):
        build_dataset(_cfg(root))


def test_the_train_cli_takes_test_fraction(tmp_path, capsys):
    from cnnkit.cli import main

    root = make_image_folder(tmp_path / "im", per_class=10)
    args = tiny_train_args(root, tmp_path / "runs", "--test-fraction", "0.2", "--name", "t", epochs=1, batch_size=8)
    assert main(args) == 0
    summary = __import__("json").loads((tmp_path / "runs" / "t" / "summary.json").read_text())
    assert summary["split_sizes"] == {"train": 14, "val": 2, "test": 4} and summary["test"]["num_samples"] == 4
    assert torch.isfinite(torch.tensor(summary["test"]["accuracy"]))
