import pytest
import torch
from torch import nn

from cnnkit.config import Config
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.errors import ConfigError
from cnnkit.evaluate.tta import predict_logits_tta, tta_views


class LeftRight(nn.Module):
    """Logits [sum of the left half, sum of the right half]: a flip swaps them."""

    def forward(self, x):
        w = x.shape[-1] // 2
        return torch.stack([x[..., :w].sum((1, 2, 3)), x[..., w:].sum((1, 2, 3))], 1)


def _split():
    images = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    images[0, :, :, :2] = 2  # bright left half
    return Split(images, torch.tensor([0, 1]))


def test_views():
    x = _split().images
    assert len(tta_views(x, "none")) == 1 and len(tta_views(x, "flip")) == 2 and len(tta_views(x, "flip+shift")) == 6
    assert torch.equal(tta_views(x, "flip")[1], x.flip(-1))
    shifted = tta_views(x, "flip+shift")[2]
    assert torch.equal(shifted[0, 0, 1:, 1:], x[0, 0, :-1, :-1]) and shifted[0, 0, 0].sum() == 0
    with pytest.raises(ConfigError, match="'eval.tta': 'rot' is not one of none, flip, flip\\+shift"):
        Config().with_overrides({"eval.tta": "rot"})  # the closed set is checked by the config loader


def test_d4_views_are_the_eight_rotations_and_mirrors_of_square_images():
    x = torch.arange(9, dtype=torch.uint8).view(1, 1, 3, 3)  # no symmetry: all 8 views differ
    views = tta_views(x, "d4")
    assert len(views) == 8 and torch.equal(views[0], x)
    assert len({tuple(v.flatten().tolist()) for v in views}) == 8
    assert torch.equal(views[1], x.rot90(1, (-2, -1))) and torch.equal(views[4], x.flip(-1))
    with pytest.raises(ConfigError, match="d4 .* square"):
        tta_views(torch.zeros(1, 1, 3, 4, dtype=torch.uint8), "d4")
    assert Config().with_overrides({"eval.tta": "d4"}).eval.tta == "d4"


def test_flip_tta_averages_softmax_over_views():
    data = _split()
    norm = Normalize([0.0], [1 / 255])  # (x/255 - 0) / (1/255) = x
    logits = predict_logits_tta(LeftRight(), data, normalize=norm, mode="flip")
    x = data.images.float()
    expected = ((LeftRight()(x).softmax(1) + LeftRight()(x.flip(-1)).softmax(1)) / 2).log()
    assert torch.allclose(logits, expected, atol=1e-6)
    assert torch.allclose(logits.exp().sum(1), torch.ones(2))
