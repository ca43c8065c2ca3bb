"""`cnnkit stylize` end to end through cnnkit.cli.main, with a tiny random cnnkit checkpoint for speed."""

import json

import numpy as np
import pytest
from PIL import Image
from tests.tasks.style.conftest import photo, stripes

from cnnkit.cli import main
from cnnkit.tasks.style.colour import rgb_to_ycbcr
from cnnkit.tasks.style.images import load_rgb


def stylize(content, style, out, ckpt, *extra):
    args = ["stylize", str(content), str(style), "--out", str(out), "--weights", str(ckpt), "--size", "32"]
    return main([*args, "--steps", "5", *extra])


def test_cli_writes_the_result_at_the_contents_size_a_strip_and_the_json(images, tiny_ckpt, tmp_path, capsys):
    content, style = images
    out = tmp_path / "out.png"
    assert stylize(content, style, out, tiny_ckpt, "--strip", "2", "--style-weight", "1e5") == 0
    result = np.asarray(Image.open(out))
    assert result.shape == (40, 48, 3)  # the content's size, though optimised at 32 px
    assert np.abs(result.astype(float) - np.asarray(Image.open(content))).mean() > 1  # not the content
    assert np.abs(result.astype(float) - np.asarray(Image.open(style).resize((48, 40)))).mean() > 10  # nor the style
    rec = json.loads((tmp_path / "out.json").read_text())
    assert rec["output_size"] == [48, 40] and rec["working_size"] == [
        38,
        32,
    ]  # 48x40 at --size 32, shorter side MIN_SIDE
    assert rec["settings"]["steps"] == 5 and rec["settings"]["optimizer"] == "adam"
    assert rec["losses_end"]["style"] < rec["losses_start"]["style"]
    assert rec["content_layer"].startswith("features.stage")
    strip = Image.open(tmp_path / "out_progress.png")
    assert strip.height == 32 and strip.width == 4 * 38 + 3 * 4  # start + steps 2, 4, 5
    assert "style loss" in capsys.readouterr().out


def test_a_tiny_image_works_and_keeps_its_size(tmp_path, tiny_ckpt):
    Image.fromarray(photo(8, 8)).convert("P").save(tmp_path / "tiny.png")  # a palette image, 8x8
    Image.fromarray(stripes(16, 16)).convert("LA").save(tmp_path / "style.png")  # grey + alpha
    assert stylize(tmp_path / "tiny.png", tmp_path / "style.png", tmp_path / "o.png", tiny_ckpt, "--quiet") == 0
    assert Image.open(tmp_path / "o.png").size == (8, 8)
    assert json.loads((tmp_path / "o.json").read_text())["working_size"] == [32, 32]  # upsampled to MIN_SIDE


def test_a_huge_image_is_resized_with_a_message_and_written_at_its_size(tmp_path, tiny_ckpt, capsys):
    Image.fromarray(photo(40, 60)).resize((3000, 2000), Image.Resampling.BILINEAR).save(tmp_path / "huge.png")
    Image.fromarray(stripes(40, 40)).save(tmp_path / "style.png")
    assert stylize(tmp_path / "huge.png", tmp_path / "style.png", tmp_path / "o.png", tiny_ckpt, "--strip", "0") == 0
    said = capsys.readouterr().out
    assert "huge.png: 3000x2000 resized to 48x32 (--size 32); the result is scaled back to 3000x2000" in said
    assert Image.open(tmp_path / "o.png").size == (3000, 2000)
    assert not (tmp_path / "o_progress.png").exists()


def test_preserve_colour_keeps_the_contents_chroma(images, tiny_ckpt, tmp_path):
    content, style = images
    plain, kept = tmp_path / "plain.png", tmp_path / "kept.png"
    assert stylize(content, style, plain, tiny_ckpt, "--quiet", "--style-weight", "1e5") == 0
    assert stylize(content, style, kept, tiny_ckpt, "--quiet", "--style-weight", "1e5", "--preserve-colour") == 0
    c, p, k = (rgb_to_ycbcr(load_rgb(x))[:, 1:] for x in (content, plain, kept))
    assert (k - c).abs().mean() < 0.02  # chroma of the content (up to clipping and 8-bit rounding)
    assert (p - c).abs().mean() > 2 * (k - c).abs().mean()  # without the flag the colours moved more


def test_noise_init_follows_the_seed_and_a_jpg_out_is_a_jpeg(images, tiny_ckpt, tmp_path):
    content, style = images
    outs = [tmp_path / f"{name}.jpg" for name in ("a", "b", "c")]
    for out, seed in zip(outs, ("1", "1", "2"), strict=True):
        assert stylize(content, style, out, tiny_ckpt, "--quiet", "--init", "noise", "--seed", seed) == 0
    a, b, c = (np.asarray(Image.open(o), dtype=float) for o in outs)
    assert Image.open(outs[0]).format == "JPEG"
    assert np.array_equal(a, b) and np.abs(a - c).mean() > 5  # same seed, same picture; another seed, another
    assert json.loads((tmp_path / "a.json").read_text())["settings"]["init"] == "noise"


@pytest.mark.parametrize("bad", ["missing.png", "notes.txt"])
def test_a_bad_content_file_is_a_clear_error_naming_it(images, tmp_path, tiny_ckpt, bad, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    _, style = images
    assert stylize(tmp_path / bad, style, tmp_path / "o.png", tiny_ckpt) == 2
    err = capsys.readouterr().err
    assert f"cnnkit stylize: error: {tmp_path / bad}:" in err
    assert ("file not found" if bad == "missing.png" else "not a readable image") in err
    assert "Traceback" not in err and not (tmp_path / "o.png").exists()


@pytest.mark.slow
def test_the_default_network_is_pretrained_lite0(images, tmp_path):
    content, style = images
    out = tmp_path / "o.png"
    assert (
        main(["stylize", str(content), str(style), "--out", str(out), "--size", "32", "--steps", "2", "--quiet"]) == 0
    )
    rec = json.loads(out.with_suffix(".json").read_text())
    assert rec["network"].startswith("efficientnet_lite0 (ImageNet")
    assert rec["content_layer"] == "net.blocks.3" and len(rec["style_layers"]) == 5
