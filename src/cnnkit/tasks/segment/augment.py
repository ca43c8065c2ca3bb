"""Joint augmentation of images and their masks: the same flip, affine and crop applied to both,
bilinear for the image and nearest neighbour for the mask (torchvision.transforms.v2's kernels on
`tv_tensors.Image` / `tv_tensors.Mask`: the Mask kernels always resample by nearest neighbour, so
no new class value appears). Pixels moved in from outside the image are filled with the mean
(0 after normalisation) and labelled 255 = ignore.

The parameters of every image are drawn from the run's generator (apart from the kernels), so a
resumed run replays the same augmentation. Used as the run's `batch_transform` hook (on the
normalised batch, after the engine's image-only augmentation, which segmentation runs switch off).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from cnnkit.config import AugmentConfig
from cnnkit.errors import ConfigError
from cnnkit.tasks.segment.task import IGNORE_INDEX

# augment.* keys that move pixels (applied to image and mask alike)
GEOMETRIC = ("translate", "hflip", "vflip", "rotate", "scale", "shift", "crop_scale", "elastic")
# keys that would change the image alone (colour) or mix labels: not applied to segmentation yet
UNSUPPORTED = (
    "brightness", "contrast", "saturation", "hue", "grayscale", "blur", "erase", "mixup", "cutmix", "shear",
    "alternate_flip",
)  # fmt: skip


@dataclass(frozen=True)
class Params:
    """One image's draw: flips, the affine (degrees, pixels, zoom) and a crop box (top, left, h, w) or None."""

    hflip: bool = False
    vflip: bool = False
    angle: float = 0.0
    dx: int = 0
    dy: int = 0
    zoom: float = 1.0
    crop: tuple[int, int, int, int] | None = None
    warp: torch.Tensor | None = None  # elastic: (2, 3, 3) coarse displacements in pixels (x, y), or None


@dataclass(frozen=True)
class JointAugment:
    translate: int = 0  # pixels either way
    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0  # degrees either way
    scale: float = 0.0  # zoom in [1 - s, 1 + s]
    shift: float = 0.0  # fraction of the side either way
    crop_scale: float = 0.0  # random resized crop keeping at least this area fraction (0: off)
    elastic: float = 0.0  # the U-Net paper's deformation: std in pixels of a coarse 3x3 displacement grid (0: off)

    @classmethod
    def from_config(cls, cfg: AugmentConfig) -> JointAugment:
        """From augment.*; a key that cannot keep image and mask aligned yet is a ConfigError naming it."""
        defaults = AugmentConfig()
        bad = [k for k in UNSUPPORTED if getattr(cfg, k) != getattr(defaults, k)]
        if cfg.auto != "none":
            bad.append("auto")
        if bad:
            raise ConfigError(
                f"augment.{bad[0]}: not supported for segmentation yet (it would change the image without its mask "
                f"or mix labels); segmentation applies {', '.join(GEOMETRIC)} to image and mask together"
            )
        return cls(**{k: getattr(cfg, k) for k in GEOMETRIC})

    @property
    def active(self) -> bool:
        return bool(
            self.translate
            or self.hflip
            or self.vflip
            or self.rotate
            or self.scale
            or self.shift
            or self.crop_scale
            or self.elastic
        )

    def sample(self, size: tuple[int, int], generator: torch.Generator) -> Params:
        """One image's parameters, drawn from `generator` (the same number of draws every time)."""
        h, w = size
        u = torch.rand(9, generator=generator).tolist()
        crop = None
        if self.crop_scale:
            area = self.crop_scale + (1.0 - self.crop_scale) * u[7]
            ch, cw = max(1, round(h * math.sqrt(area))), max(1, round(w * math.sqrt(area)))
            crop = (int(u[8] * (h - ch + 1)), int(u[0] * (w - cw + 1)), ch, cw)
        shift_x = self.translate + self.shift * w
        shift_y = self.translate + self.shift * h
        return Params(
            hflip=self.hflip and u[1] < 0.5,
            vflip=self.vflip and u[2] < 0.5,
            angle=(2 * u[3] - 1) * self.rotate,
            dx=round((2 * u[4] - 1) * shift_x),
            dy=round((2 * u[5] - 1) * shift_y),
            zoom=1.0 + (2 * u[6] - 1) * self.scale,
            crop=crop,
            warp=torch.randn(2, 3, 3, generator=generator) * self.elastic if self.elastic else None,
        )

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) float, y (B, H, W) class indices -> both moved alike, image by image."""
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        xs, ys = [], []
        for i in range(x.shape[0]):
            xi, yi = apply(x[i], y[i], self.sample(tuple(x.shape[-2:]), g))  # type: ignore[arg-type]
            xs.append(xi)
            ys.append(yi)
        return torch.stack(xs), torch.stack(ys)


def apply(image: torch.Tensor, mask: torch.Tensor, p: Params) -> tuple[torch.Tensor, torch.Tensor]:
    """One image (C, H, W) and its mask (H, W) transformed by `p` (image bilinear, mask nearest)."""
    img = tv_tensors.Image(image)
    m = tv_tensors.Mask(mask.unsqueeze(0))
    h, w = image.shape[-2:]
    if p.crop is not None:
        top, left, ch, cw = p.crop
        img = TF.resized_crop(img, top, left, ch, cw, [h, w], interpolation=InterpolationMode.BILINEAR, antialias=False)
        m = TF.resized_crop(m, top, left, ch, cw, [h, w])
    if p.hflip:
        img, m = TF.horizontal_flip(img), TF.horizontal_flip(m)
    if p.vflip:
        img, m = TF.vertical_flip(img), TF.vertical_flip(m)
    if p.angle or p.dx or p.dy or p.zoom != 1.0:
        kw = {"angle": p.angle, "translate": [p.dx, p.dy], "scale": p.zoom, "shear": [0.0, 0.0]}
        img = TF.affine(img, **kw, interpolation=InterpolationMode.BILINEAR, fill=0.0)
        m = TF.affine(m, **kw, fill=IGNORE_INDEX)
    if p.warp is not None:
        d = displacement(p.warp, h, w)
        img = TF.elastic(img, d, interpolation=InterpolationMode.BILINEAR, fill=0.0)
        m = TF.elastic(m, d, fill=IGNORE_INDEX)
    return img.as_subclass(torch.Tensor), m.as_subclass(torch.Tensor)[0]


def displacement(warp: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The U-Net paper's elastic field: coarse (2, 3, 3) displacements in pixels, bicubic up to every
    pixel, as torchvision's `elastic` takes it: (1, H, W, 2) in grid units (2 / side per pixel), where the
    output at x samples the input at x + d."""
    field = torch.nn.functional.interpolate(warp[None].float(), size=(h, w), mode="bicubic", align_corners=True)
    scale = torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
    return (field * scale).permute(0, 2, 3, 1)
