import io

import pytest
from PIL import Image
from tests.serve.conftest import png_bytes

from cnnkit.serve.decode import UploadError, decode_image, pixels


def test_decodes_in_memory():
    img = decode_image(png_bytes(0, size=20), "files[0]")
    assert img.size == (20, 20) and img.mode == "L"


@pytest.mark.parametrize(
    "data, status, message",
    [
        (b"", 422, "files[0]: empty file"),
        (b"hello, I am text\n", 415, "files[0]: not a readable image"),
        (png_bytes(0)[:60], 422, "files[0]: corrupt or truncated image"),
    ],
)
def test_bad_bytes(data, status, message):
    with pytest.raises(UploadError) as e:
        decode_image(data, "files[0]")
    assert e.value.status == status and e.value.message.startswith(message) and e.value.field == "files[0]"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_refused_on_the_header(monkeypatch):
    buf = io.BytesIO()
    Image.new("L", (300, 300)).save(buf, "PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 - 1)
    with pytest.raises(
        UploadError, match=r"refused, image too large \(300x300 = 90000 pixels exceeds the limit of 89999\)"
    ) as e:
        decode_image(buf.getvalue(), "files[0]")
    assert e.value.status == 422


def test_pixels_reads_the_header_only():
    big = io.BytesIO()
    Image.new("RGB", (300, 200)).save(big, "PNG")
    assert pixels(big.getvalue()) == 60_000
    assert pixels(png_bytes(0, size=20)) == 400
    assert pixels(b"text") == 0 and pixels(b"") == 0  # decode_image says why
