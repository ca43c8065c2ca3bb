import json
import os
import time
from pathlib import Path

import pytest
from tests.conftest import make_image_folder

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset, scan
from cnnkit.data.scan import cache_file, scan_tree, walk


def _age(root: Path, seconds: float = 60.0) -> None:
    """Set every folder's mtime into the past, as for a tree not touched for a while (a folder
    modified just before a scan is not cached: see scan.RACY_SECONDS)."""
    t = time.time() - seconds
    for d, _, _ in os.walk(root):
        os.utime(d, (t, t))


@pytest.fixture
def tree(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=3, size=4)
    (root / "cat" / "notes.txt").write_text("x")
    _age(root)
    return root


def _no_listing(monkeypatch):
    def fail(path):
        raise AssertionError(f"listed {path}")

    monkeypatch.setattr(scan.os, "scandir", fail)


def test_second_scan_reads_the_cache_without_listing_a_folder(tree, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    first = scan_tree(tree, cache)
    assert not first.from_cache and cache_file(tree, cache).is_file()
    assert [Path(p).name for p in first.image_files("cat")] == ["000.png", "001.png", "002.png"] and first.ignored == 1
    _no_listing(monkeypatch)
    second = scan_tree(tree, cache)
    assert second.from_cache and second.dirs == first.dirs and second.ignored == 1
    assert second.image_files() == first.image_files() and len(second.image_files()) == 6


@pytest.mark.parametrize("change", ["add", "remove", "new_folder"])
def test_a_changed_tree_invalidates_the_cache(tree, tmp_path, change):
    cache = tmp_path / "cache"
    scan_tree(tree, cache)
    if change == "add":
        (tree / "dog" / "new.png").write_bytes((tree / "dog" / "000.png").read_bytes())
    elif change == "remove":
        (tree / "dog" / "000.png").unlink()
    else:
        (tree / "bird").mkdir()
    again = scan_tree(tree, cache)
    names = {Path(p).name for p in again.image_files("dog")}
    assert not again.from_cache
    assert {
        "add": "new.png" in names,
        "remove": "000.png" not in names,
        "new_folder": again.subdirs() == ["bird", "cat", "dog"],
    }[change]


def test_a_folder_modified_just_before_the_scan_is_not_cached(tmp_path):
    root = make_image_folder(tmp_path / "fresh", per_class=1, size=4)  # mtimes: now
    assert not scan_tree(root, tmp_path / "cache").from_cache
    assert not cache_file(root, tmp_path / "cache").exists()


@pytest.mark.parametrize("content", [b"{not json", b"", b'{"version": 1}', json.dumps({"version": 99}).encode()])
def test_a_corrupt_cache_file_is_ignored_and_rebuilt(tree, tmp_path, monkeypatch, content):
    cache = tmp_path / "cache"
    scan_tree(tree, cache)
    cache_file(tree, cache).write_bytes(content)
    rebuilt = scan_tree(tree, cache)
    assert not rebuilt.from_cache and len(rebuilt.image_files()) == 6
    _no_listing(monkeypatch)
    assert scan_tree(tree, cache).from_cache  # rewritten whole


def test_unreadable_folder_is_reported_and_the_scan_not_cached(tree, tmp_path, monkeypatch):
    real = os.scandir

    def scandir(path):
        if str(path).endswith("dog"):
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(scan.os, "scandir", scandir)
    result = scan_tree(tree, tmp_path / "cache")
    assert [(Path(s.path).name, s.reason) for s in result.skipped] == [("dog", "unreadable folder (Permission denied)")]
    assert not cache_file(tree, tmp_path / "cache").exists()  # reported again next time


def test_symlink_loop_is_skipped(tmp_path):
    root = make_image_folder(tmp_path / "imgs", classes=("a",), per_class=1, size=4)
    (root / "a" / "loop").symlink_to(root / "a", target_is_directory=True)
    result = walk(root)
    assert [Path(p).name for p in result.image_files()] == ["000.png"]
    assert [s.reason for s in result.skipped] == ["symlink loop (a link to a folder above it)"]


def test_file_order_is_the_order_of_sorted_paths(tmp_path):
    for rel in ("a/b/x.png", "a/b-c/x.png", "a/b.png", "a/B.png", "a/b0/y.png", "a/a.png"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    listed = walk(tmp_path).image_files("a")
    assert listed == [str(p) for p in sorted(Path(p) for p in listed)] and len(listed) == 6


def test_folder_dataset_scans_once_then_reads_the_cache(tree, tmp_path, monkeypatch):
    cfg = DataConfig(dataset="folder", path=str(tree), image_size=4, cache_dir=str(tmp_path / "cache"))
    first = build_dataset(cfg, seed=0)
    _no_listing(monkeypatch)
    second = build_dataset(cfg, seed=0)
    assert (
        second.train.paths == first.train.paths
        and second.val.paths == first.val.paths
        and len(first.train) + len(first.val) == 6
    )
