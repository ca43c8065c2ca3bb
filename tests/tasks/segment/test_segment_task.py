"""tasks/segment/task.py: the loss ignores 255, Dice is 0 for a perfect prediction, accuracy is per pixel."""

import torch
import torch.nn.functional as F

from cnnkit.data.types import Split
from cnnkit.tasks import SEGMENTATION, task_of
from cnnkit.tasks.segment import dice_loss, segment_loss
from cnnkit.tasks.segment.task import pixel_accuracy_sum


def test_task_of_masks_is_segmentation():
    split = Split(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, 4, 4, dtype=torch.long))
    assert task_of(split) is SEGMENTATION and SEGMENTATION.checkpoint_task == "segment"


def test_cross_entropy_leaves_ignored_pixels_out():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 2, 2)
    y = torch.tensor([[[0, 2], [255, 1]]])
    expected = F.cross_entropy(logits[0].permute(1, 2, 0).reshape(4, 3)[[0, 1, 3]], torch.tensor([0, 2, 1]))
    torch.testing.assert_close(segment_loss(logits, y), expected)
    changed = logits.clone()
    changed[0, :, 1, 0] = torch.tensor([9.0, -9.0, 3.0])  # the ignored pixel's scores do not matter
    torch.testing.assert_close(segment_loss(changed, y), expected)


def test_dice_loss_is_zero_when_right_and_near_one_when_wrong():
    y = torch.tensor([[[0, 1], [1, 255]]])
    right = F.one_hot(y.clamp(0, 1), 2).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(right, y)) < 1e-3
    wrong = F.one_hot(1 - y.clamp(0, 1), 2).permute(0, 3, 1, 2).float() * 50
    assert float(dice_loss(wrong, y)) > 0.6  # eps = 1 keeps it below 1 on a 3-pixel example
    total = segment_loss(right, y, dice=1.0)
    torch.testing.assert_close(total, segment_loss(right, y) + dice_loss(right, y))


def test_pixel_accuracy_is_averaged_per_image():
    y = torch.tensor([[[0, 1], [1, 255]], [[1, 1], [1, 1]]])
    pred = torch.tensor([[[0, 1], [0, 0]], [[1, 1], [1, 0]]])  # image 1: 2 of 3 labelled right; image 2: 3 of 4
    logits = F.one_hot(pred, 2).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(pixel_accuracy_sum(logits, y), torch.tensor(2 / 3 + 3 / 4))
    torch.testing.assert_close(SEGMENTATION.correct(logits, y), torch.tensor(2 / 3 + 3 / 4))
