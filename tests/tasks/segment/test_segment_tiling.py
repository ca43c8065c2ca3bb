"""Tiled prediction (tiling.py): a 1x1-conv model gives the whole image's probabilities exactly,
the model never sees more than a tile, the window keeps every pixel, flip TTA, and the Segmenter
tiles large images (automatically and with --tile)."""

import numpy as np
import pytest
import torch

from cnnkit.tasks.segment.tiling import probabilities, ramp, starts, tiled_mask, tiled_probabilities


class Pointwise(torch.nn.Module):
    """A 1x1 convolution: its receptive field is one pixel, so tiles cannot change its output."""

    def __init__(self, cin=1, k=3):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(cin, k, 1)
        self.seen = []

    def forward(self, x):
        self.seen.append(tuple(x.shape[-2:]))
        return self.conv(x)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread avoids OpenMP's waiting on busy shared cores
    yield
    torch.set_num_threads(before)


def _fn(model):
    return lambda t: probabilities(model, t.float() / 255)


def test_starts_cover_the_side_with_the_last_tile_flush():
    assert starts(100, 32, 8) == [0, 24, 48, 68]
    assert starts(20, 32, 8) == [0]
    w = ramp(10, 4, first=False, last=True)
    assert w[:4].tolist() == pytest.approx([0.2, 0.4, 0.6, 0.8]) and w[4:].tolist() == [1.0] * 6
    assert ramp(10, 4, first=True, last=True).tolist() == [1.0] * 10


@pytest.mark.parametrize("hw, tile, overlap", [((70, 53), 32, 8), ((40, 40), 16, 6), ((20, 90), 32, 10)])
def test_tiled_probabilities_equal_the_whole_image_for_a_pointwise_model(hw, tile, overlap):
    model = Pointwise().eval()
    image = torch.randint(0, 256, (1, *hw), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    whole = probabilities(model, image.float().unsqueeze(0) / 255)[0]
    model.seen.clear()
    tiled = tiled_probabilities(_fn(model), image, tile, overlap)
    torch.testing.assert_close(tiled, whole, atol=1e-6, rtol=1e-5)
    assert np.array_equal(tiled_mask(_fn(model), image, tile, overlap), whole.argmax(0).numpy())
    assert max(h for h, _ in model.seen) <= tile and max(w for _, w in model.seen) <= tile


def test_a_large_image_is_segmented_in_tile_sized_pieces():
    model = Pointwise(k=4).eval()
    image = torch.randint(0, 256, (1, 1000, 700), dtype=torch.uint8)
    mask = tiled_mask(_fn(model), image, 128, 16)
    assert mask.shape == (1000, 700) and mask.dtype == np.uint8
    assert set(model.seen) == {(128, 128)} and len(model.seen) == 9 * 7


def test_flip_tta_averages_the_mirror_image():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 2, 3, padding=1).eval()
    x = torch.randn(1, 1, 8, 9)
    expected = (model(x).softmax(1) + model(x.flip(-1)).softmax(1).flip(-1)) / 2
    torch.testing.assert_close(probabilities(model, x, "flip"), expected)
    with pytest.raises(ValueError, match="tta: 'flip\\+shift' is not one of none, flip"):
        probabilities(model, x, "flip+shift")


HUGE = """
import resource, sys, torch
torch.set_num_threads(1)
from cnnkit.tasks.segment.tiling import probabilities, tiled_mask
torch.manual_seed(0)
model = torch.nn.Conv2d(1, 16, 1).eval()
image = torch.randint(0, 256, (1, 4096, 4096), dtype=torch.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mask = tiled_mask(lambda t: probabilities(model, t.float() / 255), image, 512, 64)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(mask.shape[0], mask.shape[1], (after - before) // 1024)
"""


@pytest.mark.slow  # a 4096 x 4096 image in a fresh process (~10 s on shared cores)
def test_a_huge_image_needs_a_band_of_memory_not_the_whole_probability_map():
    import os
    import subprocess
    import sys
    from pathlib import Path

    src = str(Path(__file__).resolve().parents[3] / "src")
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", HUGE], capture_output=True, text=True, env=env, check=True).stdout
    h, w, grown_mb = map(int, out.split())
    # the whole image's probabilities alone would be 16 classes x 4096^2 x 4 bytes = 1024 MB
    assert (h, w) == (4096, 4096) and grown_mb < 400, grown_mb


def test_d4_tta_is_exact_for_a_pointwise_model_and_makes_any_model_rotation_equivariant():
    x = torch.rand(2, 1, 6, 9)
    pointwise = Pointwise()
    assert torch.allclose(probabilities(pointwise, x, "d4"), probabilities(pointwise, x), atol=1e-6)
    assert len(pointwise.seen) == 1 + 8 and {(6, 9), (9, 6)} == set(pointwise.seen)  # rotated views: sides swap
    torch.manual_seed(0)
    lopsided = torch.nn.Conv2d(1, 3, (1, 3), padding=(0, 1))  # sees left and right neighbours differently
    p = probabilities(lopsided, x, "d4")
    assert not torch.allclose(p, probabilities(lopsided, x), atol=1e-4)  # the views did change something
    for k in range(1, 4):  # the averaged prediction of a rotated image is the rotated prediction
        assert torch.allclose(probabilities(lopsided, x.rot90(k, (-2, -1)), "d4"), p.rot90(k, (-2, -1)), atol=1e-6)
    assert torch.allclose(probabilities(lopsided, x.flip(-1), "d4"), p.flip(-1), atol=1e-6)
    with pytest.raises(ValueError, match="tta: 'rot'"):
        probabilities(lopsided, x, "rot")
