"""Box-aware augmentation: boxes follow the pixels under every transform, cropped-out boxes go, negatives
survive, a seed fixes the batches, and the augment section picks the transforms (no flips for digits)."""

import dataclasses

import pytest
import torch
from torchvision.transforms import v2

from cnnkit.config import AugmentConfig
from cnnkit.data.box_augment import BoxAugment, BoxAugmentSettings, augment_one, box_settings, build_transforms
from cnnkit.data.detection import DetectionSplit
from cnnkit.errors import ConfigError

BOX = (14.0, 20.0, 40.0, 36.0)  # a white rectangle on black, 64x64


def _rect(box=BOX, c=1):
    img = torch.zeros(c, 64, 64, dtype=torch.uint8)
    x1, y1, x2, y2 = (int(v) for v in box)
    img[:, y1:y2, x1:x2] = 255
    return img


def _pixel_box(img):
    ys, xs = torch.nonzero(img[0] > 127, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1]


SETTINGS = {
    "hflip": BoxAugmentSettings(hflip=True),
    "vflip": BoxAugmentSettings(vflip=True),
    "scale": BoxAugmentSettings(scale=0.4, min_visible=0.0),
    "crop": BoxAugmentSettings(crop_scale=0.3, min_visible=0.0),
    "all": BoxAugmentSettings(hflip=True, vflip=True, scale=0.3, crop_scale=0.5, brightness=0.3, min_visible=0.0),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_boxes_equal_the_augmented_rectangles_pixels(name):
    geo, photo = build_transforms(SETTINGS[name], (64, 64), 1)
    exact = name in ("hflip", "vflip")  # no resampling: to the pixel
    seen = 0
    for seed in range(12):
        torch.manual_seed(seed)
        img, boxes, labels = augment_one(_rect(), torch.tensor([BOX]), torch.tensor([3]), geo, photo, 0.0)
        assert img.shape == (1, 64, 64) and img.dtype == torch.uint8
        if boxes.shape[0] == 0:  # cropped wholly away: no pixel of it left either
            assert int((img > 127).sum()) <= 64 and labels.tolist() == []
            continue
        seen += 1
        assert labels.tolist() == [3]
        got, want = boxes[0].tolist(), _pixel_box(img)
        assert got == want if exact else max(abs(a - b) for a, b in zip(got, want, strict=True)) <= 1.0, (
            seed,
            got,
            want,
        )
    assert seen >= 8


def test_boxes_mostly_cropped_away_are_dropped_with_their_labels():
    geo = v2.Compose([v2.CenterCrop(32), v2.Resize(64)])  # keeps x, y in [16, 48)
    boxes = torch.tensor([[20.0, 20.0, 40.0, 40.0], [6.0, 20.0, 26.0, 40.0], [0.0, 0.0, 10.0, 10.0]])
    _, kept, labels = augment_one(_rect(), boxes, torch.tensor([0, 1, 2]), geo, None, 0.5)  # 2nd: 10/20 inside
    assert labels.tolist() == [0, 1] and kept.tolist() == [[8.0, 8.0, 48.0, 48.0], [0.0, 8.0, 20.0, 48.0]]
    _, kept, labels = augment_one(_rect(), boxes, torch.tensor([0, 1, 2]), geo, None, 0.6)
    assert labels.tolist() == [0] and kept.tolist() == [[8.0, 8.0, 48.0, 48.0]]


@pytest.mark.parametrize("name", list(SETTINGS))
def test_an_image_without_boxes_survives(name):
    geo, photo = build_transforms(SETTINGS[name], (64, 64), 1)
    img, boxes, labels = augment_one(_rect(), torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64), geo, photo, 0.5)
    assert img.shape == (1, 64, 64) and boxes.shape == (0, 4) and labels.shape == (0,)


def _split():
    return DetectionSplit(
        torch.stack([_rect(), _rect((2.0, 2.0, 20.0, 30.0))]),
        [torch.tensor([BOX]), torch.zeros(0, 4)],
        [torch.tensor([1]), torch.zeros(0, dtype=torch.int64)],
    )


def test_a_seed_gives_the_same_batches_and_leaves_the_global_rng_alone():
    def run(seed):
        aug = BoxAugment(SETTINGS["all"], (64, 64), 1, torch.Generator().manual_seed(seed))
        return [aug.batch(_split(), [0, 1]) for _ in range(3)]

    state = torch.get_rng_state()
    a, b, c = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), state)
    flat = [[t for batch in run_ for part in batch for t in part] for run_ in (a, b, c)]
    assert all(torch.equal(x, y) for x, y in zip(flat[0], flat[1], strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(flat[0], flat[2], strict=True))


def test_off_passes_the_batch_through():
    aug = BoxAugment(BoxAugmentSettings(), (64, 64), 1, torch.Generator())
    images, boxes, labels = aug.batch(_split(), [1, 0])
    assert torch.equal(images[1], _rect()) and boxes[1].tolist() == [list(BOX)] and labels[0].tolist() == []


def test_photometric_jitter_moves_no_box():
    _, photo = build_transforms(BoxAugmentSettings(brightness=0.5, saturation=0.5, hue=0.2), (64, 64), 3)
    torch.manual_seed(0)
    img, boxes, _ = augment_one(_rect(c=3), torch.tensor([BOX]), torch.tensor([0]), None, photo, 0.5)
    assert boxes.tolist() == [list(BOX)] and not torch.equal(img, _rect(c=3))


def test_defaults_no_flip_for_digits_flips_for_colour_folders_and_strict_keys():
    assert box_settings(AugmentConfig(), "mnist-scenes", 1) == BoxAugmentSettings(scale=0.25)
    assert box_settings(AugmentConfig(), "mnist-scenes", 3).hflip is False  # digits, whatever the channels
    assert box_settings(AugmentConfig(), "pets", 3) == BoxAugmentSettings(scale=0.25, hflip=True)
    assert box_settings(AugmentConfig(), "xrays", 1).hflip is False
    mine = dataclasses.replace(AugmentConfig(), crop_scale=0.5, min_visible=0.3)
    assert box_settings(mine, "mnist-scenes", 1) == BoxAugmentSettings(crop_scale=0.5, min_visible=0.3)
    assert not box_settings(dataclasses.replace(AugmentConfig(), preset="none"), "pets", 3).active
    with pytest.raises(ConfigError, match="augment.rotate: not box-aware, so not used by --task detect"):
        box_settings(dataclasses.replace(AugmentConfig(), rotate=10.0), "pets", 3)
    with pytest.raises(ConfigError, match="augment.preset: 'standard' is a classification preset"):
        box_settings(dataclasses.replace(AugmentConfig(), preset="standard"), "pets", 3)
