import torch

from cnnkit.data.cache import decode_files
from cnnkit.data.folder import list_image_files
from cnnkit.data.stream import collate, stream_batches
from tests.conftest import make_image_folder


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
    assert [p.rsplit("/", 1)[1] for p, _ in skipped] == ["003b.jpg"] and skipped[0][1] == "not a readable image (unknown or unsupported format)"


def test_shuffled_stream_is_seeded():
    import pathlib
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        root = make_image_folder(pathlib.Path(d), per_class=6, size=6)
        files = list_image_files(root)
        run = lambda seed: torch.cat([b.labels for b in stream_batches(files, list(range(12)), 1, (6, 6), 5, shuffle=True, seed=seed, workers=0)])  # noqa: E731
        assert torch.equal(run(1), run(1)) and not torch.equal(run(1), run(2)) and sorted(run(1).tolist()) == list(range(12))


def test_collate_of_only_bad_files_is_an_empty_batch():
    b = collate([(None, torch.tensor(0), ("a.jpg", "corrupt"))])
    assert b.images.shape[0] == 0 and b.skipped == [("a.jpg", "corrupt")]
