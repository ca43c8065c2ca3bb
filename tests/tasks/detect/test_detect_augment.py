"""The detection loop's batches go through box-aware augmentation (train split only): what reaches the model
is the flipped image with its flipped boxes, or the original; with augment.preset none, the original."""

import dataclasses

import torch
from tests.tasks.detect.detect_tiny import tiny_data

from cnnkit.config import AugmentConfig
from cnnkit.data.box_augment import box_augment
from cnnkit.tasks.detect.train import LOSSES, _train_epoch


class Spy(torch.nn.Module):
    """Records the images and targets it is given; its losses are a single weight."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.seen = []

    def forward(self, images, targets):
        self.seen += list(zip(images, targets, strict=True))
        return dict.fromkeys(LOSSES, self.w * 1.0)


def _epoch(aug):
    data, model = tiny_data(), Spy()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    augment = box_augment(aug, data, torch.Generator().manual_seed(0))
    _train_epoch(model, opt, sched, data, [0, 1, 2, 3], 2, torch.device("cpu"), 0, augment=augment, sums={})
    return data, model.seen


def test_train_batches_carry_the_flipped_pixels_and_boxes():
    data, seen = _epoch(dataclasses.replace(AugmentConfig(), hflip=True))
    assert len(seen) == 4
    flipped = 0
    for i, (image, target) in enumerate(seen):
        raw, boxes = data.train.images[i].float() / 255, data.train.boxes[i]
        mirrored = torch.stack([64 - boxes[:, 2], boxes[:, 1], 64 - boxes[:, 0], boxes[:, 3]], 1)
        if torch.equal(image, raw.flip(-1)) and not torch.equal(image, raw):
            flipped += 1
            assert torch.equal(target["boxes"], mirrored)
        else:
            assert torch.equal(image, raw) and torch.equal(target["boxes"], boxes)
        assert torch.equal(target["labels"], data.train.labels[i] + 1)
    assert 0 < flipped < 4  # seed 0: some of each


def test_preset_none_feeds_the_data_unchanged():
    data, seen = _epoch(dataclasses.replace(AugmentConfig(), preset="none"))
    for i, (image, target) in enumerate(seen):
        assert torch.equal(image, data.train.images[i].float() / 255)
        assert torch.equal(target["boxes"], data.train.boxes[i])
