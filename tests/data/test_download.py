import pytest

from cnnkit.data.download import download, sha256_file
from cnnkit.errors import DataError


@pytest.fixture
def source(tmp_path):
    p = tmp_path / "src" / "blob.bin"
    p.parent.mkdir()
    p.write_bytes(bytes(range(256)) * 4000)
    return p


def test_download_verifies_and_renames(tmp_path, source):
    dest = download(source.as_uri(), tmp_path / "out" / "blob.bin", sha256_file(source))
    assert dest.read_bytes() == source.read_bytes()
    assert not (tmp_path / "out" / "blob.bin.part").exists()


def test_partial_download_is_resumed(tmp_path, source):
    out = tmp_path / "out"
    out.mkdir()
    data = source.read_bytes()
    (out / "blob.bin.part").write_bytes(data[:1000])
    download(source.as_uri(), out / "blob.bin", sha256_file(source))
    assert (out / "blob.bin").read_bytes() == data


def test_checksum_mismatch_keeps_nothing_and_says_so(tmp_path, source):
    with pytest.raises(DataError, match=r"SHA-256 mismatch"):
        download(source.as_uri(), tmp_path / "blob.bin", "0" * 64)
    assert not (tmp_path / "blob.bin").exists() and not (tmp_path / "blob.bin.part").exists()


def test_falls_back_to_the_next_mirror(tmp_path, source):
    dest = download(["file:///does/not/exist.bin", source.as_uri()], tmp_path / "blob.bin", sha256_file(source))
    assert dest.exists()


def test_all_mirrors_failing_names_each(tmp_path):
    with pytest.raises(DataError, match=r"(?s)could not download blob.bin.*does/not/exist"):
        download(["file:///does/not/exist"], tmp_path / "blob.bin", "0" * 64)


def test_existing_good_file_is_not_fetched_again(tmp_path, source):
    dest = tmp_path / "blob.bin"
    dest.write_bytes(source.read_bytes())
    assert download("file:///does/not/exist", dest, sha256_file(source)) == dest
