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


class _Server:
    """A loopback HTTP server for one blob; honours Range requests or ignores them (status 200)."""

    def __init__(self, data: bytes, ranges: bool):
        import http.server
        import threading

        self.requests: list[str | None] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                rng = self.headers.get("Range")
                outer.requests.append(rng)
                body, status = data, 200
                if ranges and rng:
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    body, status = data[start:], 206
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/blob.bin"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("ranges", [True, False])
def test_http_resume_asks_for_the_rest_and_restarts_when_the_server_ignores_it(tmp_path, source, ranges):
    data = source.read_bytes()
    part = tmp_path / "blob.bin.part"
    part.write_bytes(data[:1000] if ranges else b"x" * 1000)  # a server that ignores Range gets the stale part replaced
    with _Server(data, ranges) as server:
        dest = download(server.url, tmp_path / "blob.bin", sha256_file(source), timeout=10)
    assert server.requests == ["bytes=1000-"]
    assert dest.read_bytes() == data and not part.exists()
