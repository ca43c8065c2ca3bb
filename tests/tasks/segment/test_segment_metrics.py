"""tasks/segment/metrics.py: IoU, Dice and pixel accuracy against hand-computed values and torchmetrics."""

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from cnnkit.tasks.segment.metrics import confusion, from_confusion, segment_metrics


def test_hand_computed_example():
    truth = torch.tensor([[0, 0, 1], [1, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [1, 2, 0]])
    cm = confusion(pred, truth, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 1]]  # the 255 pixel is left out
    m = from_confusion(cm, ["a", "b", "c"])
    # IoU: a 1/(1+1) = 0.5, b 2/(2+1) = 2/3, c 1; Dice: a 2/3, b 4/5, c 1
    assert m["per_class"]["a"]["iou"] == pytest.approx(0.5)
    assert m["per_class"]["b"]["iou"] == pytest.approx(2 / 3)
    assert m["miou"] == pytest.approx((0.5 + 2 / 3 + 1) / 3)
    assert m["dice"] == pytest.approx((2 / 3 + 4 / 5 + 1) / 3)
    assert m["pixel_accuracy"] == pytest.approx(4 / 5)
    assert m["per_class"]["a"]["recall"] == pytest.approx(0.5) and m["per_class"]["b"]["precision"] == pytest.approx(
        2 / 3
    )
    assert m["per_class"]["b"]["support"] == 2


def test_miou_matches_torchmetrics_jaccard_index():
    g = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 4, (3, 8, 8), generator=g)
    truth[0, 0] = 255
    logits = torch.randn(3, 4, 8, 8, generator=g) + 2 * F.one_hot(truth.clamp(0, 3), 4).permute(0, 3, 1, 2)
    m = segment_metrics(logits, truth, ["a", "b", "c", "d"])
    ref = MulticlassJaccardIndex(num_classes=4, ignore_index=255, average="macro")(logits.argmax(1), truth)
    assert m["miou"] == pytest.approx(float(ref), abs=1e-6)
    assert m["num_samples"] == 3 and m["num_pixels"] == 3 * 64 - 8
    assert len(m["per_image"]) == 3 and 0 <= m["per_image"][0]["pixel_accuracy"] <= 1
    assert m["accuracy"] == m["pixel_accuracy"] and m["task"] == "segment"
