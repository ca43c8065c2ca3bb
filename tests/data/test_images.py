import numpy as np
import pytest
from PIL import Image

from cnnkit.data.images import ImageError, is_image_file, load_image, resize_center_crop


def _save(tmp_path, name, img, **kw):
    p = tmp_path / name
    img.save(p, **kw)
    return p


def test_gray_to_rgb_and_rgb_to_gray(tmp_path):
    rgb = Image.new("RGB", (4, 3), (255, 0, 0))
    p = _save(tmp_path, "red.png", rgb)
    a3 = load_image(p, 3)
    assert a3.shape == (3, 3, 4) and a3[0].min() == 255 and a3[1].max() == 0
    a1 = load_image(p, 1)
    assert a1.shape == (1, 3, 4) and a1[0, 0, 0] == 76  # ITU-R 601 luma of pure red
    g = _save(tmp_path, "g.png", Image.new("L", (4, 3), 100))
    assert (load_image(g, 3) == 100).all()


def test_alpha_is_composited_on_white(tmp_path):
    img = Image.new("RGBA", (2, 1))
    img.putpixel((0, 0), (0, 0, 0, 0))  # fully transparent -> white
    img.putpixel((1, 0), (0, 0, 255, 255))  # opaque blue stays blue
    a = load_image(_save(tmp_path, "a.png", img), 3)
    assert a[:, 0, 0].tolist() == [255, 255, 255]
    assert a[:, 0, 1].tolist() == [0, 0, 255]
    la = Image.new("LA", (1, 1), (0, 0))
    assert load_image(_save(tmp_path, "la.png", la), 1)[0, 0, 0] == 255


def test_palette_image(tmp_path):
    img = Image.new("P", (2, 2))
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    a = load_image(_save(tmp_path, "p.png", img), 3)
    assert a[:, 1, 1].tolist() == [0, 255, 0] and a[:, 0, 0].tolist() == [0, 0, 0]


def test_cmyk_jpeg(tmp_path):
    img = Image.new("CMYK", (8, 8), (0, 0, 0, 0))  # no ink: white
    a = load_image(_save(tmp_path, "c.jpg", img, quality=95), 3)
    assert a.min() > 240


def test_16bit_image_scaled_to_8bit(tmp_path):
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    img = Image.fromarray(arr)
    a = load_image(_save(tmp_path, "d.png", img), 1)
    assert a[0].tolist() == [[0, 255], [128, 4]]


def test_float_image(tmp_path):
    img = Image.fromarray(np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32), mode="F")
    a = load_image(_save(tmp_path, "f.tiff", img), 1)
    assert a[0].tolist() == [[0, 255], [128, 64]]


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("L", (4, 2), 0)
    img.putpixel((0, 0), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    a = load_image(_save(tmp_path, "o.jpg", img, exif=exif, quality=100), 1)
    assert a.shape == (1, 4, 2)  # width and height swap
    assert a[0, 0, 1] > 200  # top-left pixel moved to top-right


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("L", (3, 3), v) for v in (10, 200)]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:])
    assert abs(int(load_image(p, 1).mean()) - 10) <= 1


def test_resize_center_crop_keeps_the_centre():
    img = Image.new("L", (20, 10), 0)
    for x in range(5, 15):
        img.putpixel((x, 5), 255)
    out = resize_center_crop(img, (10, 10))
    assert out.size == (10, 10)


@pytest.mark.parametrize(
    "content,match",
    [
        (b"", "empty file"),
        (b"this is not an image", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "not a readable image|corrupt"),
    ],
)
def test_bad_files_name_the_file(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ImageError, match=rf"bad.png: ({match})"):
        load_image(p, 3)


def test_truncated_jpeg_names_the_file(tmp_path):
    p = _save(tmp_path, "t.jpg", Image.effect_noise((64, 64), 50).convert("RGB"))
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(ImageError, match=r"t.jpg: corrupt or truncated"):
        load_image(p, 3)


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    p = _save(tmp_path, "big.png", Image.new("L", (64, 64)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"big.png: refused, image too large"):
        load_image(p, 1)


def test_is_image_file():
    assert is_image_file("a/b.JPG") and is_image_file("x.webp")
    assert not is_image_file("notes.txt") and not is_image_file(".hidden.png")


def test_resize_follows_the_interpolation_and_refuses_unknown_names():
    from cnnkit.data.images import pil_to_array
    from cnnkit.errors import ConfigError

    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8))
    bilinear = pil_to_array(img, 3, (10, 10))
    assert np.array_equal(bilinear, pil_to_array(img, 3, (10, 10), "bilinear"))  # the default
    bicubic = pil_to_array(img, 3, (10, 10), "bicubic")
    expected = np.asarray(img.resize((10, 13), Image.Resampling.BICUBIC, reducing_gap=3.0).crop((0, 1, 10, 11)))
    assert np.array_equal(bicubic, expected.transpose(2, 0, 1)) and not np.array_equal(bicubic, bilinear)
    with pytest.raises(ConfigError, match="data.interpolation: 'cubic' is not an interpolation; choose one of"):
        resize_center_crop(img, (10, 10), "cubic")
