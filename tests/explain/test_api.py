"""explain/api.py: the probabilities shown with a heat map are a softmax, or for a multi-label model each label's sigmoid."""

import types

import pytest
import torch

from cnnkit.data.preprocess import Normalize
from cnnkit.explain.api import explain_batch


def _clf(multi_label: bool):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()
    )
    return types.SimpleNamespace(model=model.eval(), normalize=Normalize((0.5,), (0.5,)), multi_label=multi_label)


@pytest.mark.parametrize("multi_label", [False, True])
def test_explain_batch_probabilities_follow_the_task(multi_label):
    clf = _clf(multi_label)
    images = torch.randint(0, 255, (2, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    heat, probs = explain_batch(clf, images, method="gradcam")
    logits = clf.model(clf.normalize(images)).detach()
    expected = torch.sigmoid(logits) if multi_label else torch.softmax(logits, 1)
    assert heat.shape == (2, 8, 8) and torch.allclose(probs, expected, atol=1e-6)
    assert torch.allclose(probs.sum(1), torch.ones(2)) != multi_label  # independent labels do not sum to one
