import torch
from tests.conftest import make_image_folder

from cnnkit.data.cache import decode_files
from cnnkit.data.folder import list_image_files
from cnnkit.data.stream import collate, stream_batches


def test_streamed_batches_equal_the_cached_decode_and_report_bad_files(tmp_path):
    root = make_image_folder(tmp_path / "imgs", per_class=5, size=10)
    (root / "dog" / "003b.jpg").write_bytes(b"\xff\xd8\xff broken")
    files = list_image_files(root)
    labels = [0 if f.parent.name == "cat" else 1 for f in files]
    batches = list(stream_batches(files, labels, 3, (8, 8), batch_size=4, workers=2))
    images = torch.cat([b.images for b in batches])
    skipped = [s for b in batches for s in b.skipped]
    ref = decode_files(files, 3, (8, 8))
    assert torch.equal(images, ref.images) and images.dtype == torch.uint8
    assert torch.cat([b.labels for b in batches]).tolist() == [labels[i] for i in ref.kept]
    assert [p.rsplit("/", 1)[1] for p, _ in skipped] == ["003b.jpg"] and skipped[0][
        1
    ] == "not a readable image (unknown or unsupported format)"


def test_shuffled_stream_is_seeded():
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = make_image_folder(pathlib.Path(d), per_class=6, size=6)
        files = list_image_files(root)

        def run(seed):
            return torch.cat(
                [
                    b.labels
                    for b in stream_batches(files, list(range(12)), 1, (6, 6), 5, shuffle=True, seed=seed, workers=0)
                ]
            )

        assert (
            torch.equal(run(1), run(1))
            and not torch.equal(run(1), run(2))
            and sorted(run(1).tolist()) == list(range(12))
        )


def test_collate_of_only_bad_files_is_an_empty_batch():
    b = collate([(None, torch.tensor(0), ("a.jpg", "corrupt"))])
    assert b.images.shape[0] == 0 and b.skipped == [("a.jpg", "corrupt")]


# --- streamed datasets (data.stream, data.cache_max_gb, data.workers) ---

import pytest  # noqa: E402

from cnnkit.config import DataConfig  # noqa: E402
from cnnkit.data import build_dataset  # noqa: E402
from cnnkit.data.stream import FileImages, is_streamed, load_batches, should_stream  # noqa: E402
from cnnkit.errors import ConfigError, DataError  # noqa: E402


def _folder_cfg(root, **kw) -> DataConfig:
    return DataConfig(dataset="folder", path=str(root), image_size=8, **kw)


def test_auto_streams_only_above_the_size_limit(image_folder):
    # 12 images x 3 x 8 x 8 = 2304 bytes decoded
    assert not is_streamed(build_dataset(_folder_cfg(image_folder, cache_max_gb=2304e-9), seed=0).train)
    data = build_dataset(_folder_cfg(image_folder, cache_max_gb=2303e-9), seed=0)
    assert is_streamed(data.train) and is_streamed(data.val)
    assert data.image_size == (8, 8) and data.channels == 3 and (len(data.train), len(data.val)) == (10, 2)
    assert data.train.images.workers == 2 and data.train.images.shape == (10, 3, 8, 8)
    assert not is_streamed(build_dataset(DataConfig(), seed=0).train)  # built-in datasets never stream (make demo)


def test_stream_choice_is_checked():
    with pytest.raises(ConfigError, match="data.stream must be auto, true or false, got 'sometimes'"):
        should_stream(DataConfig(stream="sometimes"), 10, 3, (8, 8))
    with pytest.raises(ConfigError, match="data.workers must be 0"):
        should_stream(DataConfig(workers=-1), 10, 3, (8, 8))
    assert should_stream(DataConfig(stream=True), 1, 1, (1, 1)) and not should_stream(
        DataConfig(stream=False, cache_max_gb=0.0), 10**9, 3, (8, 8)
    )


def test_streamed_split_equals_the_cached_one_in_any_order(image_folder):
    cached = build_dataset(_folder_cfg(image_folder, stream=False), seed=0)
    streamed = build_dataset(_folder_cfg(image_folder, stream=True, workers=2), seed=0)
    assert streamed.train.paths == cached.train.paths and torch.equal(streamed.train.labels, cached.train.labels)
    assert (streamed.mean, streamed.std) == (cached.mean, cached.std)  # every image in the start-up sample
    order = torch.randperm(len(cached.train), generator=torch.Generator().manual_seed(3))
    batches = [order[:4], order[4:9], order[9:]]
    got = list(load_batches(streamed.train.images, streamed.train.labels, batches))
    assert [x.shape[0] for x, _ in got] == [4, 5, 1]
    assert torch.equal(torch.cat([x for x, _ in got]), cached.train.images[order])
    assert torch.equal(torch.cat([y for _, y in got]), cached.train.labels[order])
    assert torch.equal(streamed.val.images[[0]], cached.val.images[[0]])  # indexing decodes in process


def test_unreadable_streamed_file_is_dropped_in_training_black_in_evaluation_and_reported_once(image_folder, caplog):
    (image_folder / "dog" / "bad.png").write_bytes(b"not a png")
    data = build_dataset(_folder_cfg(image_folder, stream=True, workers=0, val_fraction=0.2), seed=0)
    split = data.train if str(image_folder / "dog" / "bad.png") in data.train.paths else data.val
    bad = split.paths.index(str(image_folder / "dog" / "bad.png"))
    every = [torch.arange(len(split))]
    ((x, y),) = load_batches(split.images, split.labels, every)
    assert x.shape[0] == len(split) - 1 and y.shape[0] == len(split) - 1
    ((x, y),) = load_batches(split.images, split.labels, every, drop_unreadable=False)
    assert x.shape[0] == len(split) and int(x[bad].sum()) == 0 and torch.equal(y, split.labels)
    assert [(s.path.rsplit("/", 1)[1], s.reason) for s in data.skipped] == [
        ("bad.png", "not a readable image (unknown or unsupported format)")
    ]
    assert caplog.text.count("bad.png") == 1  # (found by the mean/std sample when in train)
    with pytest.raises(  # noqa: PT012 - at start-up (sample) or when read: either statement may raise
        DataError, match=r"bad.png: not a readable image.*without --strict"
    ):
        strict = build_dataset(_folder_cfg(image_folder, stream=True, workers=0, strict=True, val_fraction=0.2), seed=0)
        list(load_batches(strict.val.images, strict.val.labels, [torch.arange(len(strict.val))]))


def test_file_images_take_is_lazy(image_folder, monkeypatch):
    import cnnkit.data.stream as stream

    images = FileImages(list_image_files(image_folder), 3, (8, 8))
    monkeypatch.setattr(stream, "load_image", lambda *a: (_ for _ in ()).throw(AssertionError("decoded")))
    part = images.take(torch.tensor([5, 0]))
    assert part.files == [images.files[5], images.files[0]] and part.shape == (2, 3, 8, 8) and len(part) == 2


def test_oversample_cannot_stream(image_folder):
    with pytest.raises(ConfigError, match="data.balance: sampler"):
        build_dataset(_folder_cfg(image_folder, stream=True, balance="oversample"), seed=0)


def test_manifest_streams_too(image_folder):
    rows = ["path,label,split"] + [
        f"{p.relative_to(image_folder)},{p.parent.name},{'val' if i % 3 == 0 else 'train'}"
        for i, p in enumerate(list_image_files(image_folder))
    ]
    (image_folder / "labels.csv").write_text("\n".join(rows))
    cfg = {"dataset": "manifest", "path": str(image_folder / "labels.csv"), "image_size": 8}
    streamed, cached = (
        build_dataset(DataConfig(**cfg, stream=True), seed=0),
        build_dataset(DataConfig(**cfg, stream=False), seed=0),
    )
    assert is_streamed(streamed.val) and len(streamed.val) == 4
    assert torch.equal(streamed.train.images[torch.arange(8)], cached.train.images)


def test_path_list_round_trips_any_name():
    from cnnkit.data.stream import PathList

    names = ["/data/a/001.jpg", "/données/çat/ß.png", "rel/x y.JPEG"]
    packed = PathList(names)
    assert len(packed) == 3 and [packed[i] for i in range(3)] == names
