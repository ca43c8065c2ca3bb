import math

import pytest
import torch

from cnnkit.config import AugmentConfig
from cnnkit.data import augment as A


def test_vflip_known_answer():
    x = torch.tensor([[[[1], [2], [3]]], [[[4], [5], [6]]]])
    out = A.vflip(x, torch.tensor([True, False]))
    assert out[:, 0, :, 0].tolist() == [[3, 2, 1], [4, 5, 6]]


def test_resized_crop_exact_subimage_and_upscale():
    x = torch.arange(16, dtype=torch.uint8).view(1, 1, 4, 4)
    out = A.resized_crop(x, torch.tensor([[1.0, 2.0, 2.0, 2.0]]), size=(2, 2))
    assert out[0, 0].tolist() == [[6, 7], [10, 11]] and out.dtype == torch.uint8
    # a 1x1 box at 2x2 samples at pixel offsets -0.25 / +0.25 (bilinear, border clamped):
    # rows 0 and 0.25 of the way to row 1 (+4), columns 0 and 0.25 of the way to column 1 (+1)
    assert A.resized_crop(x.float(), torch.tensor([[0.0, 0.0, 1.0, 1.0]]), size=(2, 2))[0, 0].tolist() == [
        [0, 0.25],
        [1, 1.25],
    ]
    # a 2x2 box to 4x4 with nearest repeats pixels
    up = A.resized_crop(x, torch.tensor([[0.0, 0.0, 2.0, 2.0]]), size=(4, 4), mode="nearest")
    assert up[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [4, 4, 5, 5], [4, 4, 5, 5]]


def test_sample_resized_crop_boxes_fit_and_respect_scale():
    b = A.sample_resized_crop(500, 20, 30, (0.25, 0.5), generator=torch.Generator().manual_seed(0))
    top, left, h, w = b.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 20 + 1e-4).all() and (left + w <= 30 + 1e-4).all()
    frac = h * w / 600
    assert ((frac > 0.25 - 1e-4) & (frac < 0.5 + 1e-4)).float().mean() > 0.95


def test_rotate_90_is_rot90_and_keeps_uint8():
    x = torch.arange(9, dtype=torch.uint8).view(1, 1, 3, 3)
    out = A.rotate(x, torch.tensor([90.0]), mode="nearest")
    assert torch.equal(out, torch.rot90(x, 1, dims=(-2, -1)))  # counter-clockwise
    assert torch.equal(A.rotate(x, torch.tensor([0.0])), x)
    assert torch.equal(A.rotate(x, torch.tensor([180.0]), mode="nearest"), x.flip(-1).flip(-2))


def test_affine_translation_and_fill():
    x = torch.arange(1, 10, dtype=torch.float32).view(1, 1, 3, 3)
    m = A.affine_matrix(torch.zeros(1), translate=torch.tensor([[1.0, 0.0]]))  # one pixel right
    out = A.affine(x, m, fill=-1.0)
    assert out[0, 0].tolist() == [[-1, 1, 2], [-1, 4, 5], [-1, 7, 8]]


def test_affine_scale_and_shear_known_answers():
    ramp = torch.arange(5.0).expand(5, 5).reshape(1, 1, 5, 5)  # value = column
    zoom = A.affine(ramp, A.affine_matrix(torch.zeros(1), scale=torch.tensor([2.0])))
    # zoom x2 about the centre: output column j reads input column 2 + (j - 2) / 2
    assert torch.allclose(zoom[0, 0, 2], torch.tensor([1.0, 1.5, 2.0, 2.5, 3.0]))
    m = A.affine_matrix(torch.zeros(1), shear=torch.tensor([[45.0, 0.0]]))
    assert torch.allclose(m[0, :2, :2], torch.tensor([[1.0, 1.0], [0.0, 1.0]]), atol=1e-6)
    y = torch.zeros(1, 1, 5, 5)
    y[0, 0, 3, 2] = 1.0  # one pixel below centre: x-shear by 45 degrees moves it one right
    assert A.affine(y, m, mode="nearest")[0, 0, 3, 3] == 1.0


def test_brightness_contrast_saturation_known_answers():
    x = torch.tensor([[[[100, 200]], [[50, 50]], [[0, 250]]]], dtype=torch.uint8)  # (1, 3, 1, 2)
    assert A.adjust_brightness(x, 0.5)[0, :, 0].tolist() == [[50, 100], [25, 25], [0, 125]]
    assert A.adjust_brightness(x, 2.0)[0, 0, 0].tolist() == [200, 255]  # clamped
    g = torch.tensor([[[[10.0, 30.0]]]]) / 255  # gray, mean 20/255
    assert torch.allclose(A.adjust_contrast(g, 0.5) * 255, torch.tensor([[[[15.0, 25.0]]]]), atol=1e-4)
    gray = A.to_gray(x)
    assert torch.allclose(
        gray[0, 0, 0] * 255, torch.tensor([0.299 * 100 + 0.587 * 50, 0.299 * 200 + 0.587 * 50 + 0.114 * 250]), atol=1e-3
    )
    assert torch.equal(A.adjust_saturation(x, 1.0), x)
    desat = A.adjust_saturation(x, 0.0)
    assert (desat[0, 0] == desat[0, 1]).all() and (desat[0, 1] == desat[0, 2]).all()


def test_hue_rotates_primaries_and_roundtrips():
    red = torch.tensor([255, 0, 0], dtype=torch.uint8).view(1, 3, 1, 1)
    assert A.adjust_hue(red, 1 / 3).flatten().tolist() == [0, 255, 0]
    assert A.adjust_hue(red, -1 / 3).flatten().tolist() == [0, 0, 255]
    x = torch.rand(2, 3, 4, 4)
    assert torch.allclose(A.hsv_to_rgb(A.rgb_to_hsv(x)), x, atol=1e-5)
    one = torch.rand(1, 1, 2, 2)
    assert torch.equal(A.adjust_hue(one, 0.2), one)  # colour ops leave 1-channel images alone


def test_grayscale_mask():
    x = torch.tensor([[[[255]], [[0]], [[0]]], [[[255]], [[0]], [[0]]]], dtype=torch.uint8)
    out = A.grayscale(x, torch.tensor([True, False]))
    assert out[0].flatten().tolist() == [76, 76, 76] and out[1].flatten().tolist() == [255, 0, 0]


def test_gaussian_blur_of_a_delta_is_the_kernel():
    x = torch.zeros(2, 1, 5, 5)
    x[:, 0, 2, 2] = 1.0
    out = A.gaussian_blur(x, torch.tensor([1.0, 0.5]), kernel_size=3)
    for i, s in enumerate((1.0, 0.5)):
        k = torch.tensor([math.exp(-1 / (2 * s * s)), 1.0, math.exp(-1 / (2 * s * s))])
        k = k / k.sum()
        assert torch.allclose(out[i, 0, 1:4, 1:4], torch.outer(k, k), atol=1e-6)
        assert out[i, 0, 0].abs().sum() == 0
    flat = torch.full((1, 3, 4, 4), 0.4)
    assert torch.allclose(A.gaussian_blur(flat, 2.0), flat)  # reflect padding keeps flat images flat


def test_erase_box():
    x = torch.ones(2, 1, 4, 4, dtype=torch.uint8)
    out = A.erase(x, torch.tensor([[1, 2, 2, 1], [0, 0, 0, 0]]), value=7)
    assert out[0, 0].tolist() == [[1, 1, 1, 1], [1, 1, 7, 1], [1, 1, 7, 1], [1, 1, 1, 1]]
    assert out[1].eq(1).all()
    b = A.sample_erase_boxes(200, 10, 10, p=0.5, generator=torch.Generator().manual_seed(0))
    applied = b[:, 2] > 0
    assert 0.35 < applied.float().mean() < 0.65
    assert ((b[:, 0] + b[:, 2] <= 10) & (b[:, 1] + b[:, 3] <= 10)).all()


def test_mixup_mixes_images_and_labels():
    x = torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)
    y = A.soft_targets(torch.tensor([0, 1]), 3)
    xm, ym = A.mixup(x, y, 0.75, torch.tensor([1, 0]))
    assert xm.flatten().tolist() == [0.25, 0.75]
    assert ym.tolist() == [[0.75, 0.25, 0.0], [0.25, 0.75, 0.0]]


def test_cutmix_pastes_box_and_mixes_by_area():
    x = torch.stack([torch.zeros(1, 4, 4), torch.ones(1, 4, 4)])
    y = A.soft_targets(torch.tensor([0, 1]), 2)
    xc, yc = A.cutmix(x, y, (0, 0, 2, 2), torch.tensor([1, 0]))
    assert xc[0, 0].sum() == 4 and xc[0, 0, :2, :2].eq(1).all() and xc[1, 0, :2, :2].eq(0).all()
    assert yc.tolist() == [[0.75, 0.25], [0.25, 0.75]]


def test_mix_batch_targets_sum_to_one_and_are_seeded():
    x = torch.rand(8, 3, 6, 6)
    y = torch.arange(8) % 4
    a = A.mix_batch(x, y, 4, torch.Generator().manual_seed(1), mixup_alpha=0.4, cutmix_alpha=1.0)
    b = A.mix_batch(x, y, 4, torch.Generator().manual_seed(1), mixup_alpha=0.4, cutmix_alpha=1.0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert a[1].shape == (8, 4) and torch.allclose(a[1].sum(1), torch.ones(8))
    same = A.mix_batch(x, y, 4, None)
    assert torch.equal(same[0], x) and torch.equal(same[1].argmax(1), y)


def test_mixer_from_config():
    m = A.Mixer.from_config(AugmentConfig(mixup=0.2), num_classes=10)
    assert m.active and m.mixup == 0.2 and not A.Mixer.from_config(AugmentConfig(), 10).active


@pytest.mark.parametrize("policy", ["randaugment", "trivialaugment"])
def test_auto_policies_are_seeded_per_image_and_restore_global_rng(policy):
    x = torch.randint(0, 256, (6, 3, 16, 16), dtype=torch.uint8)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = A.auto_augment(x, policy, torch.Generator().manual_seed(0))
    assert torch.equal(torch.rand(1), before)  # global RNG untouched
    b = A.auto_augment(x, policy, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.dtype == torch.uint8 and a.shape == x.shape


def test_batch_augment_default_config_matches_the_old_behaviour():
    cfg = AugmentConfig()
    aug = A.BatchAugment.from_config(cfg)
    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    expected = A.translate(x, A.sample_shifts(16, 2, g2))
    assert torch.equal(aug(x, g1), expected)


def test_batch_augment_everything_on_keeps_shape_dtype_and_reproduces():
    cfg = AugmentConfig(
        hflip=True,
        vflip=True,
        crop_scale=0.5,
        rotate=15,
        scale=0.1,
        shear=5,
        shift=0.1,
        brightness=0.3,
        contrast=0.3,
        saturation=0.3,
        hue=0.05,
        grayscale=0.2,
        blur=0.5,
        erase=0.5,
        auto="trivialaugment",
    )
    aug = A.BatchAugment.from_config(cfg)
    x = torch.randint(0, 256, (8, 3, 12, 12), dtype=torch.uint8)
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    assert aug.active and a.dtype == torch.uint8 and a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)


def test_batch_augment_rejects_bad_values():
    from cnnkit.config import Config
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="'augment.auto': 'autoaugment' is not one of none, randaugment"):
        Config().with_overrides({"augment.auto": "autoaugment"})  # the closed set is checked by the config loader
    with pytest.raises(ConfigError, match="augment.hue in"):
        A.BatchAugment(hue=0.7)


def test_translate_matches_a_per_image_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (12, 3, 7, 9), dtype=torch.uint8)
    shifts = A.sample_shifts(12, 3, g)
    out = A.translate(x, shifts, fill=5)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        ref = torch.full((3, 7, 9), 5, dtype=torch.uint8)
        src = x[i, :, max(0, -dy) : 7 - max(0, dy), max(0, -dx) : 9 - max(0, dx)]
        ref[:, max(0, dy) : max(0, dy) + src.shape[1], max(0, dx) : max(0, dx) + src.shape[2]] = src
        assert torch.equal(out[i], ref), (dy, dx)
