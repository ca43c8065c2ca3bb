"""What a segmentation run adds to the engine's setup (training/setup.py calls `segment_hooks`):
the config's checks, the joint image / mask augmentation as the run's batch_transform, and the
loss of the `segment:` section (losses.py: Dice, class and border weights) as its loss_fn. Plain
`segment.loss: ce` leaves the Task's (cross-entropy with ignore index 255 and the config's label
smoothing); a `loss_fn` hook given by the caller wins over both."""

from __future__ import annotations

import dataclasses
from typing import Any

from cnnkit.config import Config
from cnnkit.data.types import Dataset
from cnnkit.errors import ConfigError
from cnnkit.tasks.segment.augment import JointAugment
from cnnkit.tasks.segment.losses import build_segment_loss
from cnnkit.tasks.segment.tiling import TTA_MODES


def check_config(cfg: Config) -> None:
    """Settings that have no meaning (yet) for masks, each a ConfigError naming its key."""
    tc, oc = cfg.train, cfg.optim
    if cfg.eval.tta not in TTA_MODES:
        raise ConfigError(
            f"eval.tta: {cfg.eval.tta} averages class scores of shifted copies; segmentation supports "
            + ", ".join(TTA_MODES)
        )
    if tc.progressive_resize:
        raise ConfigError(
            "train.progressive_resize resizes the images but not their masks: set it to 0 for segmentation"
        )
    if oc.class_weights != "none":
        raise ConfigError(
            "optim.class_weights: for segmentation use segment.class_weights (auto: inverse pixel frequency, or a list)"
        )
    if cfg.model.finetune:
        raise ConfigError(
            "model.finetune: the fine-tuning modes split a classifier's head from its backbone; not for segmentation models"
        )


def segment_hooks(cfg: Config, data: Dataset, hooks: Any) -> Any:
    """`hooks` (the engine's training.hooks.Hooks; tasks sit below training, so not imported) with a segmentation run's defaults: the joint augmentation as batch_transform."""
    check_config(cfg)
    batch_transform = hooks.batch_transform
    if batch_transform is None:
        joint = JointAugment.from_config(cfg.augment)
        batch_transform = joint if joint.active else None
    loss_fn = hooks.loss_fn
    if loss_fn is None:
        loss_fn = build_segment_loss(cfg, data.train.labels, data.num_classes)
    return dataclasses.replace(hooks, batch_transform=batch_transform, loss_fn=loss_fn)
