"""Metrics against values computed by hand on six predictions.

targets      0     0     0     1     1     2        (supports 3, 2, 1)
predicted    0     0     1     1     2     2
confidence  .92   .72   .62   .82   .62   .62
correct      y     y     n     y     n     y
"""

import math

import pytest
import torch

from cnnkit.evaluate.metrics import (
    classification_metrics,
    expected_calibration_error,
    hardest_examples,
    reliability_bins,
)

PROBS = torch.tensor(
    [
        [0.92, 0.04, 0.04],
        [0.72, 0.18, 0.10],
        [0.28, 0.62, 0.10],
        [0.09, 0.82, 0.09],
        [0.12, 0.26, 0.62],
        [0.19, 0.19, 0.62],
    ]
)
TARGETS = torch.tensor([0, 0, 0, 1, 1, 2])
NAMES = ["a", "b", "c"]


@pytest.fixture
def m():
    return classification_metrics(PROBS.log(), TARGETS, NAMES)


def test_per_class_and_averages(m):
    assert m["accuracy"] == pytest.approx(4 / 6)
    pc = m["per_class"]
    # precision: a 2/2, b 1/2, c 1/2; recall: a 2/3, b 1/2, c 1/1
    assert [pc[c]["precision"] for c in NAMES] == pytest.approx([1.0, 0.5, 0.5])
    assert [pc[c]["recall"] for c in NAMES] == pytest.approx([2 / 3, 0.5, 1.0])
    assert [pc[c]["f1"] for c in NAMES] == pytest.approx([0.8, 0.5, 2 / 3])
    assert [pc[c]["support"] for c in NAMES] == [3, 2, 1]
    assert m["macro"]["f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted"]["f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert m["weighted"]["precision"] == pytest.approx((3 * 1.0 + 2 * 0.5 + 0.5) / 6)
    assert m["weighted"]["recall"] == pytest.approx(m["accuracy"])  # always true for weighted recall
    assert m["loss"] == pytest.approx(-sum(math.log(PROBS[i, t]) for i, t in enumerate(TARGETS.tolist())) / 6, rel=1e-5)


def test_confusion_matrix_counts_and_row_normalised(m):
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    expected = [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]]
    for row, want in zip(m["confusion_matrix_normalized"], expected):
        assert row == pytest.approx(want, abs=1e-6)


def test_expected_calibration_error_on_a_constructed_example(m):
    # 15 bins of width 1/15: .62 x3 in [0.600, 0.667) with accuracy 1/3; .72, .82, .92 alone, all correct
    expected = (3 * abs(1 / 3 - 0.62) + abs(1 - 0.72) + abs(1 - 0.82) + abs(1 - 0.92)) / 6
    assert expected == pytest.approx(1.4 / 6)
    assert m["ece"] == pytest.approx(expected, abs=1e-6)  # torchmetrics
    bins = m["calibration"]
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 6
    b9 = bins[9]
    assert (b9["count"], b9["accuracy"], b9["confidence"]) == (3, pytest.approx(1 / 3), pytest.approx(0.62))
    assert expected_calibration_error(bins) == pytest.approx(expected, abs=1e-6)


def test_perfectly_calibrated_predictions_have_zero_ece():
    probs = torch.tensor([[0.75, 0.25]] * 4)
    targets = torch.tensor([0, 0, 0, 1])  # 75 % confident, 75 % right
    assert classification_metrics(probs.log(), targets, ["x", "y"])["ece"] == pytest.approx(0.0, abs=1e-6)
    assert reliability_bins(probs, targets, 4)[3]["accuracy"]  # [0.75, 1.0) == pytest.approx(0.75)


def test_hardest_examples_are_ordered_by_loss():
    hard = hardest_examples(PROBS.log(), TARGETS, k=3)
    assert [h["index"] for h in hard] == [4, 2, 5]
    assert hard[0] == {
        "index": 4,
        "true": 1,
        "predicted": 2,
        "probability_true": pytest.approx(0.26),
        "probability_predicted": pytest.approx(0.62),
        "loss": pytest.approx(-math.log(0.26), rel=1e-5),
    }


def test_multilabel_metrics_by_hand():
    """Class a: y 1 1 0 0, p .9 .6 .4 .7 -> ranked .9+ .7- .6+ .4-: AP (1/1 + 2/3) / 2; at 0.5,
    precision 2/3, recall 1. Class b: y 0 1 1 0, p .2 .7 .3 .1 -> AP 1; precision 1, recall 1/2."""
    from cnnkit.evaluate.format import format_metrics
    from cnnkit.evaluate.metrics import multilabel_metrics

    y = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0]]).float()
    p = torch.tensor([[0.9, 0.2], [0.6, 0.7], [0.4, 0.3], [0.7, 0.1]])
    m = multilabel_metrics(torch.logit(p), y, ["a", "b"])
    assert m["per_class"]["a"]["ap"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["per_class"]["b"]["ap"] == pytest.approx(1.0)
    assert m["mean_ap"] == pytest.approx(((1 + 2 / 3) / 2 + 1) / 2)
    assert (
        m["per_class"]["a"]["precision"],
        m["per_class"]["a"]["recall"],
        m["per_class"]["a"]["f1"],
    ) == pytest.approx((2 / 3, 1.0, 0.8))
    assert (
        m["per_class"]["b"]["precision"],
        m["per_class"]["b"]["recall"],
        m["per_class"]["b"]["f1"],
    ) == pytest.approx((1.0, 0.5, 2 / 3))
    assert m["exact_match"] == pytest.approx(0.5)  # rows 1 and 2 exactly right
    assert [m["per_class"][c]["support"] for c in "ab"] == [2, 2]
    text = format_metrics(m)
    assert "mean AP        0.9167" in text and "exact match    50.00%" in text
