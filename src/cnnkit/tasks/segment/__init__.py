"""Semantic segmentation: one class per pixel (U-Net and friends), through the same engine as
classification. `SEGMENTATION` is the Task (loss, pixel accuracy); `setup.py` fills the run's hooks
(joint augmentation of image and mask), `final.py` scores the best checkpoint and draws samples,
`predict.py` writes mask PNGs and overlays, `report.py` is report.html's section.
Masks: (N, H, W) int64 class indices, 255 = ignore (data/masks.py).
Names load on first use, so that commands.py (the CLI's parser) imports no torch."""

from typing import TYPE_CHECKING

from cnnkit._lazy import lazy_attributes

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use
    from cnnkit.tasks.segment.task import IGNORE_INDEX as IGNORE_INDEX
    from cnnkit.tasks.segment.task import SEGMENTATION as SEGMENTATION
    from cnnkit.tasks.segment.task import Segmentation as Segmentation
    from cnnkit.tasks.segment.task import dice_loss as dice_loss
    from cnnkit.tasks.segment.task import segment_loss as segment_loss

_NAMES = dict.fromkeys(
    ("IGNORE_INDEX", "SEGMENTATION", "Segmentation", "dice_loss", "segment_loss"), "cnnkit.tasks.segment.task"
)
__all__ = sorted(_NAMES)
__getattr__ = lazy_attributes(__name__, _NAMES)
