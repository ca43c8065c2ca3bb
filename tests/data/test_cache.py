import os

import numpy as np
import pytest
import torch
from PIL import Image
from tests.conftest import make_image_folder, tiny_train_args

from cnnkit.config import DataConfig
from cnnkit.data import build_dataset, cache
from cnnkit.data.cache import decode_files
from cnnkit.data.folder import list_image_files
from cnnkit.errors import DataError


def _cfg(folder, tmp_path, **kw):
    return DataConfig(dataset="folder", path=str(folder), image_size=8, cache_dir=str(tmp_path / "cache"), **kw)


def _no_decoding(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(cache, "load_image", refuse)


def test_second_build_reads_the_cache_without_decoding(tmp_path, image_folder, monkeypatch):
    first = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    entries = sorted(p.suffix for p in (tmp_path / "cache").iterdir())
    assert entries == [".json", ".u8"]
    _no_decoding(monkeypatch)
    second = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    assert torch.equal(first.train.images, second.train.images) and torch.equal(first.val.labels, second.val.labels)
    assert first.train.paths == second.train.paths


def test_cache_file_holds_the_decoded_rows(tmp_path, image_folder):
    files = list_image_files(image_folder)
    dec = decode_files(files, 3, (8, 8), cache_dir=tmp_path / "c", source=str(image_folder))
    assert not dec.cache_hit and dec.cache_file.stat().st_size == len(files) * 3 * 8 * 8
    raw = np.fromfile(dec.cache_file, dtype=np.uint8).reshape(-1, 3, 8, 8)
    assert np.array_equal(raw, dec.images.numpy()) and dec.kept == list(range(len(files)))
    again = decode_files(files, 3, (8, 8), cache_dir=tmp_path / "c", source=str(image_folder))
    assert again.cache_hit and torch.equal(again.images, dec.images)


def test_changed_file_rebuilds_and_removes_the_stale_entry(tmp_path, image_folder, monkeypatch):
    build_dataset(_cfg(image_folder, tmp_path), seed=0)
    old = {p.name for p in (tmp_path / "cache").iterdir()}
    target = image_folder / "cat" / "000.png"
    Image.new("RGB", (12, 12), (1, 2, 3)).save(target)
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    ds = build_dataset(_cfg(image_folder, tmp_path, val_fraction=0.5), seed=0)
    new = {p.name for p in (tmp_path / "cache").iterdir()}
    assert len(new) == 2 and not (old & new)
    i = (ds.train.paths + ds.val.paths).index(str(target))
    images = torch.cat([ds.train.images, ds.val.images])
    assert images[i, :, 0, 0].tolist() == [1, 2, 3]


def test_resize_settings_are_part_of_the_key(tmp_path, image_folder):
    a = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    b = build_dataset(
        DataConfig(dataset="folder", path=str(image_folder), image_size=6, cache_dir=str(tmp_path / "cache")), seed=0
    )
    assert a.image_size == (8, 8) and b.image_size == (6, 6)
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 2


def test_skipped_files_are_reported_again_from_the_cache(tmp_path, image_folder, monkeypatch, caplog):
    caplog.set_level(
        "DEBUG", logger="cnnkit"
    )  # the per-file line is a debug message: train prints one line with the count
    (image_folder / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    first = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    assert [s.path.rsplit("/", 1)[1] for s in first.skipped] == ["broken.jpg"]
    caplog.clear()
    _no_decoding(monkeypatch)
    second = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    assert [(s.path, s.reason) for s in second.skipped] == [(s.path, s.reason) for s in first.skipped]
    assert "broken.jpg" in caplog.text
    with pytest.raises(DataError, match=r"broken.jpg.*without --strict"):
        build_dataset(_cfg(image_folder, tmp_path, strict=True), seed=0)


def test_cache_off_decodes_every_time(tmp_path, image_folder, monkeypatch):
    build_dataset(_cfg(image_folder, tmp_path, cache=False), seed=0)
    assert not (tmp_path / "cache").exists()


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "x"))
    assert cache.default_cache_dir() == tmp_path / "x"
    assert cache.default_cache_dir(str(tmp_path / "y")) == tmp_path / "y"


def test_scan_lists_images_recursively_without_hidden_entries(tmp_path):
    root = make_image_folder(tmp_path / "imgs", classes=("a",), per_class=2, size=4)
    (root / "a" / "deeper").mkdir()
    (root / "a" / "deeper" / "x.JPG").write_bytes(b"")
    (root / "a" / ".hidden").mkdir()
    (root / "a" / ".hidden" / "y.png").write_bytes(b"")
    (root / "a" / "notes.txt").write_text("x")
    names = [p.relative_to(root).as_posix() for p in list_image_files(root)]
    assert names == ["a/000.png", "a/001.png", "a/deeper/x.JPG"]


def test_entries_of_deleted_folders_are_pruned(tmp_path):
    c = tmp_path / "cache"
    one = make_image_folder(tmp_path / "one", per_class=2, size=4)
    decode_files(list_image_files(one), 3, (4, 4), cache_dir=c, source=str(one))
    import shutil

    shutil.rmtree(one)
    two = make_image_folder(tmp_path / "two", per_class=2, size=4)
    decode_files(list_image_files(two), 3, (4, 4), cache_dir=c, source=str(two))
    assert len(list(c.glob("*.u8"))) == 1


def test_bomb_is_refused_in_the_thread_pool_without_touching_warning_filters(tmp_path, monkeypatch):
    import warnings

    root = make_image_folder(tmp_path / "imgs", classes=("a",), per_class=6, size=8)
    Image.new("L", (64, 64)).save(root / "a" / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    before = list(warnings.filters)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's own warning at open is fine; it must still be refused
        dec = decode_files(list_image_files(root), 1, (8, 8), workers=4)
    assert [s.path.rsplit("/", 1)[1] for s in dec.skipped] == ["big.png"] and "refused, image too large" in dec.skipped[
        0
    ].reason
    assert len(dec.kept) == 6 and warnings.filters == before


def test_unwritable_cache_folder_falls_back_to_memory(tmp_path, image_folder, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    dec = decode_files(list_image_files(image_folder), 3, (8, 8), cache_dir=blocker / "cache", source=str(image_folder))
    assert dec.images.shape == (12, 3, 8, 8) and dec.cache_file is None and "not writable" in caplog.text


def _entry(tmp_path):
    (meta,) = (tmp_path / "cache").glob("*.json")
    return meta, meta.with_suffix(".u8")


@pytest.mark.parametrize(
    "corrupt, bad_file, reason",
    [
        (
            lambda meta, u8: u8.write_bytes(bytes(reversed(u8.read_bytes()))),
            ".u8",
            "its bytes do not match the checksum written with it",
        ),
        (
            lambda meta, u8: meta.write_text(meta.read_text().replace('"kept": [0, ', '"kept": [99, ')),
            ".json",
            "'kept' indices must increase within 0..11",
        ),
        (
            lambda meta, u8: meta.write_text(meta.read_text().replace('"kept": [0, ', '"kept": [')),
            ".json",
            "'kept' must list 12 file indices",
        ),
        (lambda meta, u8: meta.write_text("{not json"), ".json", "Expecting property name"),
        (
            lambda meta, u8: meta.write_text(meta.read_text().replace('"skipped": []', '"skipped": [["x", "y"]]')),
            ".json",
            "'skipped' must name exactly the files not kept",
        ),
    ],
)
def test_corrupt_entry_is_rebuilt_with_one_warning_naming_the_file(
    tmp_path, image_folder, caplog, corrupt, bad_file, reason
):
    """Issue 21 rows 2 and 3: a cache that lies is rebuilt, never trained on or crashed over."""
    first = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    meta, u8 = _entry(tmp_path)
    corrupt(meta, u8)
    caplog.clear()
    again = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert (
        warnings[0].startswith(f"decode cache file {meta.with_suffix(bad_file)} failed its check (")
        and reason in warnings[0]
    )
    assert warnings[0].endswith("rebuilding the entry")
    assert torch.equal(first.train.images, again.train.images) and torch.equal(first.val.labels, again.val.labels)
    caplog.clear()
    build_dataset(_cfg(image_folder, tmp_path), seed=0)  # the rebuilt entry passes its check
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_training_on_a_corrupted_cache_matches_an_uncorrupted_run(tmp_path, image_folder, capsys):
    from cnnkit.cli import main

    args = tiny_train_args(
        image_folder, tmp_path / "runs", "--set", f"data.cache_dir={tmp_path / 'cache'}", "--threads", "1", image_size=8
    )
    assert main([*args, "--name", "clean"]) == 0
    _meta, u8 = _entry(tmp_path)
    u8.write_bytes(bytes(255 - b for b in u8.read_bytes()))  # other bytes, the same size
    capsys.readouterr()
    assert main([*args, "--name", "rebuilt"]) == 0
    err = capsys.readouterr().err
    assert err.count("failed its check") == 1 and f"decode cache file {u8} failed its check" in err

    def metrics(name):
        return [
            line.rsplit(",", 1)[0] for line in (tmp_path / "runs" / name / "metrics.csv").read_text().splitlines()
        ]  # without seconds

    assert metrics("rebuilt") == metrics("clean") and len(metrics("clean")) == 3


def test_interpolation_is_part_of_the_key_and_a_bilinear_decode_is_not_reused(tmp_path, image_folder):
    files = list_image_files(image_folder)
    stats = cache.stat_files(files)
    assert cache.cache_key(stats, 3, (6, 6)) == cache.cache_key(stats, 3, (6, 6), "bilinear")  # old keys stay valid
    assert cache.cache_key(stats, 3, (6, 6), "bicubic") != cache.cache_key(stats, 3, (6, 6))
    bilinear = decode_files(files, 3, (5, 5), cache_dir=tmp_path / "c", source=str(image_folder))
    bicubic = decode_files(
        files, 3, (5, 5), cache_dir=tmp_path / "c", source=str(image_folder), interpolation="bicubic"
    )
    assert not bicubic.cache_hit and bicubic.cache_file != bilinear.cache_file
    assert not torch.equal(bicubic.images, bilinear.images)  # 12 px noise images resized to 5 px
    again = decode_files(files, 3, (5, 5), cache_dir=tmp_path / "c", source=str(image_folder), interpolation="bicubic")
    assert again.cache_hit and torch.equal(again.images, bicubic.images)


def test_data_interpolation_reaches_the_decode(tmp_path, image_folder):
    a = build_dataset(_cfg(image_folder, tmp_path), seed=0)
    b = build_dataset(_cfg(image_folder, tmp_path, interpolation="bicubic"), seed=0)
    assert a.train.paths == b.train.paths and not torch.equal(a.train.images, b.train.images)
