"""Box-aware augmentation for detection training (`--task detect`, train split only), with torchvision.transforms.v2
moving the pixels and the `tv_tensors.BoundingBoxes` together.

Keys (the augment section, the same names and ranges as for classification):
    hflip, vflip        random horizontal / vertical flip (p 0.5 each)
    scale               scale jitter: zoom by a factor in [1 - s, 1 + s] (v2.ScaleJitter), then a random
                        crop (zoomed in) or zero padding (zoomed out) back to the image's size (v2.RandomCrop)
    crop_scale          random resized crop keeping an area fraction in [crop_scale, 1], back to the size
    brightness, contrast, saturation, hue   photometric jitter (v2.ColorJitter; saturation and hue: RGB only)
    min_visible         a box cropped to under this fraction of its (transformed) area is dropped
Boxes are clipped to the image; those that fall out, or end under 1 pixel wide or high, are dropped
(v2.SanitizeBoundingBoxes) with their labels; an image left without boxes stays, as a negative.
Other augment keys (rotate, shear, shift, erase, blur, grayscale, auto, mixup, cutmix, alternate_flip)
are not box-aware here: set to anything but their default they are a ConfigError; `translate` is
unused (scale jitter's crop and padding move the content already). `augment.preset: none` turns it all
off; the classification presets (light, standard, strong) are refused.

Left at their defaults, the keys above give the detection default: scale jitter 0.25, plus horizontal
flips for colour images, but never for digits and glyphs (data/presets.GLYPH_DATASETS, which holds
mnist-scenes: a mirrored 3 is no digit), the rule the classification presets follow.
Random numbers: each batch draws one seed from the training loop's generator and runs the transforms
under it, so the same seed gives the same augmented batches (and a resumed run continues the sequence)
without touching torch's global random state.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from cnnkit.config import AugmentConfig
    from cnnkit.data.detection import DetectionSplit

BOX_KEYS = ("hflip", "vflip", "scale", "crop_scale", "brightness", "contrast", "saturation", "hue")
NOT_BOX_AWARE = ("rotate", "shear", "shift", "erase", "blur", "grayscale", "auto", "mixup", "cutmix", "alternate_flip")
DEFAULT_SCALE = 0.25


@dataclasses.dataclass(frozen=True)
class BoxAugmentSettings:
    hflip: bool = False
    vflip: bool = False
    scale: float = 0.0
    crop_scale: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    min_visible: float = 0.5

    @property
    def active(self) -> bool:
        return any(getattr(self, k) for k in BOX_KEYS)


def box_settings(aug: AugmentConfig, dataset: str, channels: int) -> BoxAugmentSettings:
    """The detection augmentation the augment section asks for (see the module docstring)."""
    from cnnkit.config import AugmentConfig
    from cnnkit.data.presets import GLYPH_DATASETS

    default = AugmentConfig()
    if aug.preset == "none":
        return BoxAugmentSettings()
    if aug.preset is not None:
        raise ConfigError(
            f"augment.preset: {aug.preset!r} is a classification preset; --task detect takes `none` or the "
            f"box-aware keys augment.{', augment.'.join(BOX_KEYS)} (see cnnkit.data.box_augment)"
        )
    for key in NOT_BOX_AWARE:
        if getattr(aug, key) != getattr(default, key):
            raise ConfigError(
                f"augment.{key}: not box-aware, so not used by --task detect; leave it at "
                f"{getattr(default, key)!r} and use augment.{', augment.'.join(BOX_KEYS)}"
            )
    values: dict[str, Any] = {k: getattr(aug, k) for k in BOX_KEYS}
    if all(values[k] == getattr(default, k) for k in BOX_KEYS):
        values = {"scale": DEFAULT_SCALE, "hflip": channels == 3 and dataset not in GLYPH_DATASETS}
    return BoxAugmentSettings(**values, min_visible=aug.min_visible)


def build_transforms(s: BoxAugmentSettings, size: tuple[int, int], channels: int) -> tuple[Any, Any]:
    """(geometric, photometric) v2 transforms (None when there is nothing of that kind) for images of `size`."""
    from torchvision.transforms import v2

    geo: list[Any] = []
    if s.hflip:
        geo.append(v2.RandomHorizontalFlip())
    if s.vflip:
        geo.append(v2.RandomVerticalFlip())
    if s.scale:
        geo += [v2.ScaleJitter(size, scale_range=(1 - s.scale, 1 + s.scale)), v2.RandomCrop(size, pad_if_needed=True)]
    if s.crop_scale:
        geo.append(v2.RandomResizedCrop(size, scale=(s.crop_scale, 1.0), antialias=True))
    colour = channels == 3
    jitter = (s.brightness, s.contrast, s.saturation if colour else 0.0, s.hue if colour else 0.0)
    photo = v2.ColorJitter(*jitter) if any(jitter) else None
    return (v2.Compose(geo) if geo else None), photo


def _area(b: torch.Tensor) -> torch.Tensor:
    return (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)


def augment_one(
    image: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, geo: Any, photo: Any, min_visible: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One (C, H, W) uint8 image with its (K, 4) xyxy boxes and (K,) labels, augmented under torch's RNG."""
    from torchvision import tv_tensors
    from torchvision.transforms import v2

    h, w = image.shape[-2:]
    img: Any = tv_tensors.Image(image)
    if geo is not None:
        # unclamped while moving, so the share of each box still inside the image can be measured
        b = tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w), clamping_mode=None)
        out = geo({"image": img, "boxes": b})
        img, moved = out["image"], out["boxes"].as_subclass(torch.Tensor)
        clipped = moved.clone()
        clipped[:, 0::2] = clipped[:, 0::2].clamp(0, img.shape[-1])
        clipped[:, 1::2] = clipped[:, 1::2].clamp(0, img.shape[-2])
        seen = _area(clipped) >= min_visible * _area(moved)
        kept = tv_tensors.BoundingBoxes(clipped[seen], format="XYXY", canvas_size=tuple(img.shape[-2:]))
        out = v2.SanitizeBoundingBoxes(min_size=1.0, min_area=1.0)({"boxes": kept, "labels": labels[seen]})
        boxes, labels = out["boxes"].as_subclass(torch.Tensor), out["labels"]
    if photo is not None:
        img = photo(img)
    return img.as_subclass(torch.Tensor), boxes.float().reshape(-1, 4), labels


class BoxAugment:
    """Augments training batches; `batch(split, index)` -> (images, boxes, labels) lists, unchanged when off."""

    def __init__(self, settings: BoxAugmentSettings, size: tuple[int, int], channels: int, generator: torch.Generator):
        self.settings, self.generator = settings, generator
        self.geo, self.photo = build_transforms(settings, size, channels)

    @classmethod
    def off(cls) -> BoxAugment:
        return cls(BoxAugmentSettings(), (1, 1), 1, torch.Generator())

    def batch(
        self, split: DetectionSplit, index: list[int]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        images = [split.images[i] for i in index]
        boxes = [split.boxes[i] for i in index]
        labels = [split.labels[i] for i in index]
        if not self.settings.active:
            return images, boxes, labels
        seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            done = [
                augment_one(im, b, lb, self.geo, self.photo, self.settings.min_visible)
                for im, b, lb in zip(images, boxes, labels, strict=True)
            ]
        return [d[0] for d in done], [d[1] for d in done], [d[2] for d in done]


def box_augment(aug: AugmentConfig, data: Any, generator: torch.Generator) -> BoxAugment:
    """The training loop's augmenter for DetectionData `data` (its name, image size and channels)."""
    settings = box_settings(aug, data.name, data.channels)
    return BoxAugment(settings, tuple(data.train.images.shape[2:]), data.channels, generator)
