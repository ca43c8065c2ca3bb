"""Progressive resizing (`train.progressive_resize`): early epochs on smaller images.

Epoch 1 trains on images scaled to `start` of their side (e.g. 0.75: 24 px for 32 px
CIFAR), growing linearly to the full size at `end` of the epochs (e.g. 0.6), and the rest
train at full size, so the network settles on the size it is evaluated at. A small epoch
costs about its pixel share of a full one (less on a CPU, where 24 px steps of fastnet_s
take 0.45x the time of 32 px ones), so the same time holds more epochs. The idea is
fast.ai's progressive resizing and FFCV's resolution ramp; sides are rounded down to a
multiple of 1/8 of the full side (4 px at 32), which keeps the number of distinct shapes small.

The images are resized after augmentation and normalisation (bilinear, antialiased), on
the batch; validation and the final evaluation always use the full size. The model must
accept other input sizes (global pooling before its head): `check_resizable` says so
before training starts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.errors import ConfigError


class Resize:
    """The image size of each epoch for a run of `epochs` epochs (which a time budget may re-plan)."""

    def __init__(self, full: tuple[int, int], start: float, end: float = 0.6):
        if not 0.0 < start <= 1.0:
            raise ConfigError(
                f"train.progressive_resize must be in (0, 1] (a fraction of the image side; 0: off), got {start}"
            )
        if not 0.0 < end <= 1.0:
            raise ConfigError(
                f"train.progressive_end must be in (0, 1] (the fraction of the epochs by which the full size is reached), got {end}"
            )
        self.full, self.start, self.end = (int(full[0]), int(full[1])), float(start), float(end)

    def fraction(self, epoch: int, epochs: int) -> float:
        """Scale of the side in 1-based `epoch`: start at epoch 1, 1.0 from epoch round(end * epochs) on."""
        last = max(1, round(self.end * epochs))
        if epoch >= last:
            return 1.0
        return self.start + (1.0 - self.start) * (epoch - 1) / max(last - 1, 1)

    def size(self, epoch: int, epochs: int) -> tuple[int, int]:
        """(H, W) for `epoch`: each side scaled and rounded down to a multiple of side // 8 (at least 2 px)."""
        f = self.fraction(epoch, epochs)
        out = []
        for side in self.full:
            step = max(2, side // 8)
            out.append(side if f >= 1.0 else max(step, int(side * f) // step * step))
        return out[0], out[1]

    def work(self, epoch: int, epochs: int) -> float:
        """Cost of a step of `epoch` relative to a full-size step (its share of the pixels)."""
        h, w = self.size(epoch, epochs)
        return h * w / (self.full[0] * self.full[1])


def resize_batch(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A normalised float batch (B, C, H, W) resized to `size` (bilinear, antialiased), keeping its memory format."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    out = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out.contiguous(memory_format=torch.channels_last) if channels_last else out


@torch.no_grad()
def check_resizable(model: nn.Module, channels: int, size: tuple[int, int], name: str, device: torch.device) -> None:
    """A ConfigError unless `model` runs on (channels, *size) inputs (a head that flattens a fixed grid does not)."""
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros(2, channels, *size, device=device))
    except RuntimeError as e:
        raise ConfigError(
            f"train.progressive_resize: {name} does not run on {size[0]}x{size[1]} images ({str(e).splitlines()[0][:120]}); "
            "its head needs the full size. Use a model with global pooling (fastnet_s, resnet18...) or set train.progressive_resize 0"
        ) from None
    finally:
        model.train(was_training)
