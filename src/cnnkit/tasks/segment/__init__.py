"""Semantic segmentation: one class per pixel (U-Net and friends), through the same engine as
classification. `SEGMENTATION` is the Task (loss, pixel accuracy); `setup.py` fills the run's hooks
(joint augmentation of image and mask), `final.py` scores the best checkpoint and draws samples,
`predict.py` writes mask PNGs and overlays, `report.py` is report.html's section.
Masks: (N, H, W) int64 class indices, 255 = ignore (data/masks.py)."""

from cnnkit.tasks.segment.task import IGNORE_INDEX, SEGMENTATION, Segmentation, dice_loss, segment_loss

__all__ = ["IGNORE_INDEX", "SEGMENTATION", "Segmentation", "dice_loss", "segment_loss"]
