"""The Task protocol (tasks/base.py): every task has every method the engine calls, and the
classification tasks leave the engine's own stages to it (None) while segmentation fills them."""

import inspect

import pytest
import torch

from cnnkit.data.types import Split
from cnnkit.tasks import CLASSIFICATION, MULTI_LABEL, SEGMENTATION, Task, task_of

PROTOCOL_MEMBERS = sorted(
    name for name, _ in inspect.getmembers(Task) if not name.startswith("_") and name not in dir(object)
)


def test_the_protocol_lists_the_stages_the_engine_calls():
    assert PROTOCOL_MEMBERS == [
        "augments_images",
        "checkpoint_task",
        "correct",
        "default_model",
        "describe",
        "eval_loss",
        "final_evaluation",
        "headline",
        "name",
        "setup_hooks",
        "train_loss",
    ]


@pytest.mark.parametrize("task", [CLASSIFICATION, MULTI_LABEL, SEGMENTATION], ids=lambda t: t.name)
def test_every_task_has_every_member(task):
    missing = [m for m in PROTOCOL_MEMBERS if not hasattr(task, m)]
    assert missing == []


@pytest.mark.parametrize("task", [CLASSIFICATION, MULTI_LABEL], ids=lambda t: t.name)
def test_classification_leaves_the_stages_to_the_engine(task):
    assert task.augments_images is True
    assert task.default_model(3, 32) is None
    assert task.setup_hooks(None, None, object()) is None
    assert task.final_evaluation(torch.nn.Identity(), None, None, None, None, None) is None
    assert task.headline({"accuracy": 0.5}) is None and task.describe("test", {"accuracy": 0.5}) is None


def test_segmentation_fills_them():
    assert SEGMENTATION.augments_images is False and SEGMENTATION.default_model(1, 512) == "unet"
    final = {"accuracy": 0.9, "miou": 0.75, "dice": 0.8, "loss": 0.3, "num_samples": 5, "per_class": {}}
    head = SEGMENTATION.headline(final)
    assert head == {"accuracy": 0.9, "miou": 0.75, "dice": 0.8, "loss": 0.3, "num_samples": 5}
    assert SEGMENTATION.describe("val", head) == "val mIoU 0.7500, pixel accuracy 90.00%"


def test_task_of_reads_the_labels():
    images = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    assert task_of(Split(images, torch.tensor([0, 1]))) is CLASSIFICATION
    assert task_of(Split(images, torch.zeros(2, 4, 4, dtype=torch.long))) is SEGMENTATION
