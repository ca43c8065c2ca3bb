"""tasks/classify.py: the two classification tasks' losses and counts, checked against PyTorch by hand."""

import pytest
import torch
import torch.nn.functional as F

from cnnkit.data.types import Split
from cnnkit.tasks import CLASSIFICATION, MULTI_LABEL, task_for
from cnnkit.training.loop import evaluate


def test_task_for_follows_the_labels():
    assert task_for(False) is CLASSIFICATION and task_for(True) is MULTI_LABEL
    assert (CLASSIFICATION.name, CLASSIFICATION.checkpoint_task) == ("single_label", None)
    assert (MULTI_LABEL.name, MULTI_LABEL.checkpoint_task) == ("multi_label", "multi_label")


def test_classification_loss_and_top1():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0]])
    y = torch.tensor([0, 1])
    assert int(CLASSIFICATION.correct(logits, y)) == 1
    assert float(CLASSIFICATION.train_loss(logits, y, label_smoothing=0.1)) == pytest.approx(
        float(F.cross_entropy(logits, y, label_smoothing=0.1))
    )
    assert float(CLASSIFICATION.eval_loss(logits, y)) == pytest.approx(float(F.cross_entropy(logits, y)))


def test_multilabel_exact_match_and_bce():
    logits = torch.tensor([[3.0, -3.0], [3.0, 3.0], [-1.0, 0.5]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert int(MULTI_LABEL.correct(logits, y)) == 2  # the second image has a wrong second label
    p = torch.sigmoid(logits)
    by_hand = -(y * p.log() + (1 - y) * (1 - p).log()).mean()
    assert float(MULTI_LABEL.eval_loss(logits, y)) == pytest.approx(float(by_hand), rel=1e-5)
    smoothed = y * 0.8 + 0.1
    by_hand_s = -(smoothed * p.log() + (1 - smoothed) * (1 - p).log()).mean()
    assert float(MULTI_LABEL.train_loss(logits, y, label_smoothing=0.2)) == pytest.approx(float(by_hand_s), rel=1e-5)


def test_evaluate_reports_the_split_tasks_numbers():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    torch.nn.init.zeros_(model[1].weight)
    with torch.no_grad():
        model[1].bias.copy_(torch.tensor([2.0, -2.0]))
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    from cnnkit.data.preprocess import Normalize

    norm = Normalize((0.0,), (1.0,))
    single = evaluate(model, Split(images, torch.tensor([0, 0, 1, 1])), normalize=norm)
    multi = evaluate(
        model, Split(images, torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]])), normalize=norm
    )
    assert single["accuracy"] == 0.5 and multi["accuracy"] == 0.5  # top-1 right twice; exact match twice
    assert single["loss"] == pytest.approx(
        float(F.cross_entropy(torch.tensor([[2.0, -2.0]] * 4), torch.tensor([0, 0, 1, 1])))
    )
