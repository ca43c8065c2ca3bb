"""The dataset fingerprint that --resume checks (data/fingerprint.py)."""

import os

import torch
from tests.conftest import make_image_folder

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset
from cnnkit.data.fingerprint import changes, fingerprint


def _folder(path, tmp_path):
    return build_dataset(
        DataConfig(dataset="folder", path=str(path), image_size=8, cache_dir=str(tmp_path / "cache")), seed=0
    )


def test_same_files_same_fingerprint_and_it_saves_weights_only(tmp_path):
    root = make_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=4, size=8)
    fp = fingerprint(_folder(root, tmp_path))
    assert fp["kind"] == "files" and fp["files"].shape == (8, 4) and fp["class_names"] == ["a", "b"]
    assert fingerprint(_folder(root, tmp_path))["digest"] == fp["digest"]
    torch.save(fp, tmp_path / "fp.pt")
    assert torch.load(tmp_path / "fp.pt", weights_only=True)["digest"] == fp["digest"]
    moved = tmp_path / "elsewhere"
    os.rename(root, moved)  # the same files in another place: the same data
    assert changes(fp, fingerprint(_folder(moved, tmp_path))) == []


def test_renamed_class_is_told_apart_from_removed_and_added(tmp_path):
    root = make_image_folder(tmp_path / "imgs", classes=("a", "b", "c"), per_class=3, size=8)
    before = fingerprint(_folder(root, tmp_path))
    os.rename(root / "a", root / "x")
    (root / "c" / "000.png").unlink()
    os.rename(root / "b", root / "y")
    (root / "y" / "000.png").unlink()  # b renamed but with a file less: removed + added, not renamed
    assert changes(before, fingerprint(_folder(root, tmp_path))) == [
        "classes renamed: 'a' -> 'x'",
        "classes removed: 'b'",
        "classes added: 'y'",
        "the labels now mean ['c', 'x', 'y'] instead of ['a', 'b', 'c']",
        "files: 2 added, 4 removed",
    ]


def test_manifest_relabel_is_a_move_to_another_class(tmp_path):
    make_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3, size=8)
    rows = [f"imgs/{c}/{i:03d}.png,{c}" for c in "ab" for i in range(3)]
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "\n".join(rows) + "\n")
    cfg = DataConfig(dataset="folder", path=str(csv), image_size=8, cache_dir=str(tmp_path / "cache"))
    before = fingerprint(build_dataset(cfg, seed=0))
    csv.write_text("path,label\n" + "\n".join(rows).replace("imgs/a/000.png,a", "imgs/a/000.png,b") + "\n")
    assert changes(before, fingerprint(build_dataset(cfg, seed=0))) == ["files: 1 moved to another class"]


def test_builtin_dataset_is_fingerprinted_by_its_images():
    a = fingerprint(build_dataset(DataConfig(subset_per_class=5), seed=0))
    assert a["kind"] == "tensors" and a["splits"]["train"][0] == 50
    assert fingerprint(build_dataset(DataConfig(subset_per_class=5), seed=0))["digest"] == a["digest"]
    b = fingerprint(build_dataset(DataConfig(subset_per_class=5), seed=1))  # another subset
    assert changes(a, b) == [
        "the train split's images differ (50 before, 50 now)",
        "the val split's images differ (1000 before, 1000 now)",
    ]


def test_multi_label_row_relabelled_is_a_changed_file(tmp_path):
    make_image_folder(tmp_path / "imgs", classes=("a", "b"), per_class=3, size=8)
    rows = [f"imgs/{c}/{i:03d}.png,a;b" if i == 0 else f"imgs/{c}/{i:03d}.png,{c}" for c in "ab" for i in range(3)]
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "\n".join(rows) + "\n")
    cfg = DataConfig(
        dataset="folder", path=str(csv), image_size=8, label_delimiter=";", cache_dir=str(tmp_path / "cache")
    )
    before = fingerprint(build_dataset(cfg, seed=0))
    assert before["files"][:, 0].tolist() == [-1] * 6
    csv.write_text("path,label\n" + "\n".join(rows).replace("imgs/b/000.png,a;b", "imgs/b/000.png,b") + "\n")
    assert changes(before, fingerprint(build_dataset(cfg, seed=0))) == [
        "files: 1 changed (size, labels or modification time)"
    ]
