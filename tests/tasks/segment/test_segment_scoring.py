"""scoring.py: metrics accumulated batch by batch equal segment_metrics on the whole split's logits,
and an epoch's validation numbers equal the Task's loss and pixel accuracy; flip TTA is recorded."""

import pytest
import torch

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.evaluate.predict import predict_logits
from cnnkit.models.unet import UNet
from cnnkit.tasks.segment import SEGMENTATION
from cnnkit.tasks.segment.metrics import segment_metrics
from cnnkit.tasks.segment.scoring import score_split, validation_scores

NAMES = ["bg", "a", "b"]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (7, 1, 16, 20), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 3, (7, 16, 20), generator=g)
    labels[2, :4] = 255
    labels[5] = 255  # an image with no labelled pixel
    model = UNet(num_classes=3, in_chans=1, width=4, depth=2).eval()
    return model, Split(images, labels), Normalize([0.5], [0.25])


def test_batched_metrics_equal_the_whole_split_ones(setup):
    model, split, norm = setup
    whole = segment_metrics(predict_logits(model, split, normalize=norm, batch_size=7), split.labels, NAMES)
    batched, preds = score_split(model, split, NAMES, normalize=norm, batch_size=3)
    assert batched["confusion_matrix"] == whole["confusion_matrix"]
    assert batched["per_image"] == whole["per_image"]
    for key in ("miou", "dice", "pixel_accuracy", "accuracy", "num_pixels", "num_samples", "per_class", "macro"):
        assert batched[key] == whole[key], key
    assert batched["loss"] == pytest.approx(whole["loss"], rel=1e-5)
    assert preds.dtype == torch.uint8 and preds.shape == (7, 16, 20)


def test_validation_numbers_are_the_tasks(setup):
    model, split, norm = setup
    logits = predict_logits(model, split, normalize=norm)
    v = validation_scores(model, split, normalize=norm, batch_size=2)
    assert v["loss"] == pytest.approx(float(SEGMENTATION.eval_loss(logits, split.labels)), rel=1e-5)
    assert v["accuracy"] == pytest.approx(float(SEGMENTATION.correct(logits, split.labels)) / len(split), rel=1e-6)


def test_flip_tta_changes_the_scores_and_says_so(setup):
    model, split, norm = setup
    plain, _ = score_split(model, split, NAMES, normalize=norm)
    flipped, _ = score_split(model, split, NAMES, normalize=norm, tta="flip")
    assert flipped["tta"] == "flip" and "tta" not in plain
    assert flipped["loss"] != pytest.approx(plain["loss"], rel=1e-6)
