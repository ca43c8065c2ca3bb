import torch

from cnnkit.data.augment import BatchAugment, hflip, sample_shifts, translate


def test_translate_known_answer():
    x = torch.arange(9.0).view(1, 1, 3, 3)
    # shift down by 1, right by 1: row 0 and column 0 become fill
    out = translate(x, torch.tensor([[1, 1]]))
    assert out[0, 0].tolist() == [[0, 0, 0], [0, 0, 1], [0, 3, 4]]
    out = translate(x, torch.tensor([[0, -1]]), fill=-1)
    assert out[0, 0].tolist() == [[1, 2, -1], [4, 5, -1], [7, 8, -1]]


def test_translate_per_image_shifts_and_uint8():
    x = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    x[:, :, 1, 1] = 255
    out = translate(x, torch.tensor([[0, 0], [2, 1]]))
    assert out.dtype == torch.uint8
    assert out[0, 0, 1, 1] == 255 and out[1, 0, 3, 2] == 255 and out[1].sum() == 255


def test_hflip_known_answer():
    x = torch.tensor([[[[1, 2, 3]]], [[[4, 5, 6]]]])
    out = hflip(x, torch.tensor([True, False]))
    assert out[:, 0, 0].tolist() == [[3, 2, 1], [4, 5, 6]]


def test_sampling_is_seeded_and_bounded():
    a = sample_shifts(100, 2, torch.Generator().manual_seed(0))
    b = sample_shifts(100, 2, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.abs().max() <= 2 and a.shape == (100, 2)


def test_batch_augment_inactive_is_identity():
    x = torch.rand(3, 1, 5, 5)
    aug = BatchAugment(translate=0, hflip=False)
    assert not aug.active and torch.equal(aug(x, None), x)


def test_alternating_flips_mirror_half_and_switch_every_epoch():
    from cnnkit.data.augment import alternating_flips

    index = torch.arange(10_000)
    first, second, third = (alternating_flips(index, e) for e in (1, 2, 3))
    assert abs(first.float().mean().item() - 0.5) < 0.02  # a fixed half starts mirrored
    assert torch.equal(second, ~first) and torch.equal(third, first)  # every image both ways in two epochs
    some = torch.tensor([9_999, 3, 512])
    assert torch.equal(
        alternating_flips(some, 1), first[some]
    )  # a function of the image, not of its place in the batch


def test_batch_augment_alternate_flip_follows_index_and_epoch():
    from cnnkit.data.augment import BatchAugment, alternating_flips

    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.uint8).view(2, 1, 2, 3).repeat(4, 1, 1, 1)  # 8 images
    aug = BatchAugment(hflip=True, alternate_flip=True)
    index = torch.tensor([5, 0, 7, 3, 2, 9, 1, 4])
    for epoch in (1, 2):
        out = aug(x, torch.Generator().manual_seed(0), index=index, epoch=epoch)
        mask = alternating_flips(index, epoch)
        for i in range(8):
            assert torch.equal(out[i], x[i].flip(-1) if mask[i] else x[i])
    # without the index (e.g. a caller that has none) the flips are random again, still valid mirrors
    out = aug(x, torch.Generator().manual_seed(0))
    assert all(torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(-1)) for i in range(8))
