"""tasks/segment/augment.py: image and mask move together under every transform (the image encodes
its mask, so alignment is checked pixel by pixel), masks stay class indices, the draw is seeded."""

import pytest
import torch
import torch.nn.functional as F

from cnnkit.config import AugmentConfig
from cnnkit.errors import ConfigError
from cnnkit.tasks.segment.augment import JointAugment, Params, apply


def _pair():
    """A 48x48 mask of blocks (classes 0-2) and an image equal to 50 x class: one determines the other."""
    mask = torch.zeros(48, 48, dtype=torch.long)
    mask[8:24, 6:30] = 1
    mask[28:44, 20:40] = 2
    return (mask * 50.0).unsqueeze(0), mask


def _agreement(img, mask) -> float:
    """Share of the mask's interior pixels (3x3 neighbourhood of one class, no 255) where the image,
    rounded to the nearest 50 x class, says the mask's class: 1.0 when aligned (bilinear only blurs edges)."""
    m = mask.float()[None, None]
    hi, lo = F.max_pool2d(m, 3, 1, 1)[0, 0], -F.max_pool2d(-m, 3, 1, 1)[0, 0]
    inner = (hi == lo) & (mask != 255)
    return float(((img[0] / 50).round() == mask)[inner].float().mean())


@pytest.mark.parametrize(
    "params",
    [
        Params(hflip=True),
        Params(vflip=True),
        Params(angle=90.0),
        Params(dx=3, dy=-2),
        Params(angle=17.0, zoom=1.2, dx=1),
        Params(crop=(2, 3, 30, 30)),
        Params(warp=torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(0)) * 4),  # elastic
    ],
)
def test_every_transform_keeps_image_and_mask_aligned(params):
    img, mask = _pair()
    out_img, out_mask = apply(img, mask, params)
    assert out_img.shape == (1, 48, 48) and out_mask.shape == (48, 48) and out_mask.dtype == torch.long
    assert set(out_mask.unique().tolist()) <= {0, 1, 2, 255}  # nearest neighbour: no new class values
    assert _agreement(out_img, out_mask) == 1.0
    assert _agreement(out_img, out_mask.roll(2, -1)) < 0.99  # the check sees a 2-pixel misalignment


def test_flip_is_exact_and_outside_pixels_are_ignored():
    img, mask = _pair()
    _, flipped = apply(img, mask, Params(hflip=True))
    assert torch.equal(flipped, mask.flip(-1))
    _, shifted = apply(img, mask, Params(dx=4))
    assert (shifted[:, :4] == 255).all() and torch.equal(shifted[:, 4:], mask[:, :-4])


def test_batch_call_is_seeded_and_per_image():
    aug = JointAugment.from_config(AugmentConfig(translate=0, hflip=True, rotate=20.0, scale=0.1))
    assert aug.active
    x = torch.stack([_pair()[0]] * 4)
    y = torch.stack([_pair()[1]] * 4)
    a = aug(x, y, torch.Generator().manual_seed(3))
    b = aug(x, y, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1][0], a[1][1]) or not torch.equal(a[1][1], a[1][2])  # each image its own draw
    assert all(_agreement(a[0][i], a[1][i]) == 1.0 for i in range(4))


def test_colour_and_mixing_keys_are_refused_by_name():
    assert not JointAugment.from_config(AugmentConfig(translate=0)).active
    with pytest.raises(ConfigError, match="augment.brightness: not supported for segmentation"):
        JointAugment.from_config(AugmentConfig(brightness=0.2))
    with pytest.raises(ConfigError, match="augment.mixup"):
        JointAugment.from_config(AugmentConfig(mixup=0.2))


def test_elastic_field_is_the_coarse_grid_in_pixels():
    from cnnkit.tasks.segment.augment import displacement

    img, mask = _pair()
    shift = torch.zeros(2, 3, 3)
    shift[0] = 2.0  # every pixel samples 2 px to its right: the content moves 2 px left
    out_img, out_mask = apply(img, mask, Params(warp=shift))
    assert torch.equal(out_mask[:, :-2], mask[:, 2:]) and (out_mask[:, -2:] == 255).all()
    assert torch.allclose(out_img[0, :, :-2], img[0, :, 2:], atol=1e-3)
    warp = torch.randn(2, 3, 3, generator=torch.Generator().manual_seed(1)) * 5
    d = displacement(warp, 48, 40)
    assert d.shape == (1, 48, 40, 2)
    # the corners of the field are the coarse grid's corners (bicubic, corners aligned), in grid units
    assert torch.allclose(d[0, 0, 0], torch.stack([warp[0, 0, 0] * 2 / 40, warp[1, 0, 0] * 2 / 48]), atol=1e-6)
    assert torch.allclose(d[0, -1, -1], torch.stack([warp[0, 2, 2] * 2 / 40, warp[1, 2, 2] * 2 / 48]), atol=1e-6)


def test_elastic_is_drawn_from_the_run_generator_and_deforms():
    aug = JointAugment.from_config(AugmentConfig(translate=0, elastic=6.0))
    assert aug.active
    x, y = torch.stack([_pair()[0]] * 2), torch.stack([_pair()[1]] * 2)
    a = aug(x, y, torch.Generator().manual_seed(5))
    b = aug(x, y, torch.Generator().manual_seed(5))
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1][0], y[0])  # seeded, and it moved pixels
    assert all(_agreement(a[0][i], a[1][i]) == 1.0 for i in range(2))


def test_elastic_is_refused_outside_segmentation():
    from cnnkit.data.augment import BatchAugment

    with pytest.raises(ConfigError, match="augment.elastic: segmentation only"):
        BatchAugment.from_config(AugmentConfig(elastic=4.0))
