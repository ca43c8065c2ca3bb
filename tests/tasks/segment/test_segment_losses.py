"""segment.loss / class_weights: soft Dice against a hand computation (255 left out), inverse pixel
frequency, weighted cross-entropy as torch's, the config's errors, and a tiny run training with them."""

import math

import pytest
import torch
import torch.nn.functional as F

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.tasks.segment import dice_loss
from cnnkit.tasks.segment.border import BorderWeights
from cnnkit.tasks.segment.losses import SegmentLoss, build_segment_loss, class_weights, inverse_frequency


def _two_pixels_and_an_ignored_one():
    # pixel 0: logits (0, 0) -> p = (.5, .5), label 0; pixel 1: (ln 3, 0) -> p = (.75, .25), label 1;
    # pixel 2: confidently wrong but labelled 255 (ignored)
    logits = torch.tensor([[0.0, math.log(3.0), 9.0], [0.0, 0.0, -9.0]]).view(1, 2, 1, 3)
    labels = torch.tensor([[[0, 1, 255]]])
    return logits, labels


def test_dice_loss_matches_a_hand_computation_and_ignores_255():
    logits, labels = _two_pixels_and_an_ignored_one()
    # class 0: overlap .5, probabilities .5 + .75, one true pixel: (2*.5 + 1) / (1.25 + 1 + 1)
    # class 1: overlap .25, probabilities .5 + .25, one true pixel: (2*.25 + 1) / (.75 + 1 + 1)  (eps = 1)
    by_hand = 1 - ((2.0 / 3.25) + (1.5 / 2.75)) / 2
    assert float(dice_loss(logits, labels)) == pytest.approx(by_hand, abs=1e-6)


def test_inverse_frequency_from_the_train_masks_leaves_255_out():
    masks = torch.tensor([[[0, 0, 255], [0, 1, 255]]])  # 3 pixels of class 0, 1 of class 1, class 2 absent
    w = inverse_frequency(masks, 3)
    assert w.tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1), 0.0])
    assert class_weights("auto", masks, 3).tolist() == pytest.approx(w.tolist())
    assert class_weights("1, 2.5,0", masks, 3).tolist() == [1.0, 2.5, 0.0]
    assert class_weights("none", masks, 3) is None


@pytest.mark.parametrize("bad", ["1,2", "balanced", "1,-1,2", "1,nan,2"])
def test_bad_class_weights_name_the_key(bad):
    with pytest.raises(ConfigError, match="segment.class_weights.*3 comma-separated"):
        class_weights(bad, torch.zeros(1, 2, 2, dtype=torch.long), 3)


def test_weighted_cross_entropy_is_torchs_and_the_border_map_without_border_equals_it():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 5, 6, generator=g)
    labels = torch.randint(0, 3, (2, 5, 6), generator=g)
    labels[0, 0, :] = 255
    w = torch.tensor([0.5, 2.0, 1.0])
    expected = F.cross_entropy(logits, labels, weight=w, ignore_index=255)
    torch.testing.assert_close(SegmentLoss("ce", weights=w)(logits, labels), expected)
    # the weight-map path (border term 0): the class weights as w_c, the same weighted mean
    mapped = SegmentLoss("ce", weights=w, border=BorderWeights(0.0, 5.0, w))(logits, labels)
    torch.testing.assert_close(mapped, expected)
    both = SegmentLoss("ce+dice", weights=w)(logits, labels)
    torch.testing.assert_close(both, expected + dice_loss(logits, labels))
    torch.testing.assert_close(SegmentLoss("dice")(logits, labels), dice_loss(logits, labels))


def test_config_keys_build_the_loss_and_refuse_weights_on_dice_alone():
    masks = torch.tensor([[[0, 0], [0, 1]]])
    assert build_segment_loss(Config(), masks, 2) is None  # plain ce: the Task's default loss
    cfg = Config().with_overrides({"segment.loss": "ce+dice", "segment.class_weights": "auto"})
    loss = build_segment_loss(cfg, masks, 2)
    assert loss is not None and loss.kind == "ce+dice" and loss.weights.tolist() == pytest.approx([4 / 6, 2.0])
    cfg = Config().with_overrides({"segment.border_weight": 10.0})
    loss = build_segment_loss(cfg, masks, 2)
    assert loss is not None and loss.border is not None and loss.border.w0 == 10.0
    with pytest.raises(ConfigError, match="segment.class_weights: weights the cross-entropy"):
        build_segment_loss(Config().with_overrides({"segment.loss": "dice", "segment.class_weights": "auto"}), masks, 2)
    with pytest.raises(ConfigError, match="'segment.loss'.*not one of ce, dice, ce\\+dice"):
        Config().with_overrides({"segment.loss": "focal"})


@pytest.mark.slow  # ~15 s on shared cores
def test_a_run_trains_with_dice_and_border_weights(tmp_path):
    from tests.data.segment_pairs import make_pairs
    from tests.tasks.segment.test_segment_run import _cfg

    from cnnkit.training.trainer import train

    data = make_pairs(tmp_path / "pairs", n=6, size=16, classes=2)
    extra = {
        "train.epochs": 1,
        "segment.loss": "ce+dice",
        "segment.class_weights": "auto",
        "segment.border_weight": 10.0,
    }
    run = train(_cfg(data, tmp_path / "runs", "dice", **extra), quiet=True)
    assert math.isfinite(run.metrics[-1]["train_loss"])
    assert (run.dir / "config.yaml").read_text().count("loss: ce+dice") == 1


def test_the_run_hooks_carry_the_configured_loss():
    from types import SimpleNamespace

    from cnnkit.tasks.segment.setup import segment_hooks
    from cnnkit.training.hooks import Hooks

    data = SimpleNamespace(train=SimpleNamespace(labels=torch.tensor([[[0, 1], [1, 1]]])), num_classes=2)
    hooks = segment_hooks(Config().with_overrides({"segment.loss": "dice"}), data, Hooks())
    assert isinstance(hooks.loss_fn, SegmentLoss) and hooks.loss_fn.kind == "dice"
    assert segment_hooks(Config(), data, Hooks()).loss_fn is None  # plain ce: the Task's train_loss
    own = lambda logits, targets: logits.sum()  # noqa: E731
    assert segment_hooks(Config().with_overrides({"segment.loss": "dice"}), data, Hooks(loss_fn=own)).loss_fn is own
