"""Batched augmentation as pure tensor functions, randomness sampled apart from the kernel.

`sample_*` draws parameters from a seeded generator (on the CPU, so runs reproduce on
any device); the kernels are deterministic functions of the batch and the parameters.
Kernels take (B, C, H, W) images, uint8 (values 0..255, results rounded and clamped) or
float in [0, 1], and return the same dtype. Colour kernels (saturation, hue, grayscale)
leave 1-channel images unchanged. The flip and crop kernels double as test-time
augmentation.

`BatchAugment` applies the switched-on label-preserving ones (`BatchAugment.from_config`);
`Mixer` / `mix_batch` do mixup and cutmix, which change the labels too: (x, y) -> (x, y_soft).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from cnnkit.config import AugmentConfig

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's "L" conversion


# ----------------------------------------------------------------------------- helpers
def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x


def _restore(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.uint8:
        return y.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return y.to(dtype)


def _per_image(v: torch.Tensor | float, x: torch.Tensor) -> torch.Tensor:
    """A scalar or (B,) parameter as a (B, 1, 1, 1) float tensor on x's device."""
    v = torch.as_tensor(v, dtype=torch.float32, device=x.device)
    return v.view(-1, 1, 1, 1) if v.ndim else v


def _uniform(n: int, lo: float, hi: float, generator: torch.Generator | None) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=generator)


# ----------------------------------------------------------------------------- flips and shifts
def sample_shifts(n: int, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """(n, 2) integer shifts (dy, dx), each uniform in [-max_shift, max_shift]."""
    return torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator)


def translate(x: torch.Tensor, shifts: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """Shift each image by (dy, dx) pixels, filling uncovered pixels with `fill`.

    Equivalent to a random crop of the zero-padded image. x: (B, C, H, W); shifts: (B, 2).
    """
    if x.shape[0] == 0:
        return x
    p = int(shifts.abs().max())
    if p == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (p, p, p, p), value=fill)  # (B, C, H+2p, W+2p)
    s = shifts.to(x.device)
    # content moves by (dy, dx): output pixel (i, j) reads padded pixel (i + p - dy, j + p - dx)
    rows = torch.arange(h, device=x.device).view(1, h) + p - s[:, :1]  # (B, H)
    cols = torch.arange(w, device=x.device).view(1, w) + p - s[:, 1:]  # (B, W)
    idx = (rows[:, :, None] * (w + 2 * p) + cols[:, None, :]).view(b, 1, h * w).expand(b, c, h * w)
    return padded.view(b, c, -1).gather(2, idx).view(b, c, h, w)  # one gather for the whole batch


def sample_flips(n: int, p: float = 0.5, generator: torch.Generator | None = None) -> torch.Tensor:
    return torch.rand(n, generator=generator) < p


def alternating_flips(index: torch.Tensor, epoch: int) -> torch.Tensor:
    """Which images of a batch to mirror under airbench's alternating flip: image i is mirrored
    in epoch e iff coin(i) XOR (e is even), coin(i) a fixed pseudo-random bit per image (a
    Fibonacci hash of its index, half of them set). Every image is seen both ways in any two
    consecutive epochs, instead of by chance. index: the images' indices in the split (B,)."""
    h = (index.long() * 0x9E3779B1) % (1 << 32)
    return (h >= (1 << 31)) ^ (epoch % 2 == 0)


def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images where mask is True."""
    mask = mask.to(x.device).view(-1, *([1] * (x.ndim - 1)))
    return torch.where(mask, x.flip(-1), x)


def vflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Turn the images upside down where mask is True."""
    mask = mask.to(x.device).view(-1, *([1] * (x.ndim - 1)))
    return torch.where(mask, x.flip(-2), x)


# ----------------------------------------------------------------------------- geometry
def sample_resized_crop(
    n: int,
    height: int,
    width: int,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    generator: torch.Generator | None = None,
    tries: int = 10,
) -> torch.Tensor:
    """(n, 4) float boxes (top, left, height, width): area a fraction in `scale` of the image,
    aspect ratio log-uniform in `ratio`; the whole image when no try fits."""
    area = height * width * _uniform(n * tries, scale[0], scale[1], generator).view(n, tries)
    r = torch.exp(_uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), generator)).view(n, tries)
    w, h = torch.sqrt(area * r), torch.sqrt(area / r)
    ok = (w <= width) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    rows = torch.arange(n)
    hh = torch.where(first >= 0, h[rows, first.clamp_min(0)], torch.full((n,), float(height)))
    ww = torch.where(first >= 0, w[rows, first.clamp_min(0)], torch.full((n,), float(width)))
    top = torch.rand(n, generator=generator) * (height - hh)
    left = torch.rand(n, generator=generator) * (width - ww)
    return torch.stack([top, left, hh, ww], 1)


def resized_crop(
    x: torch.Tensor, boxes: torch.Tensor, size: tuple[int, int] | None = None, mode: str = "bilinear"
) -> torch.Tensor:
    """Crop each image to its box (top, left, height, width; pixels, may be fractional) and
    resize it to `size` (default: the input size)."""
    dtype, (h, w) = x.dtype, x.shape[-2:]
    out_h, out_w = size or (h, w)
    b = boxes.to(device=x.device, dtype=torch.float32)
    top, left, bh, bw = b.unbind(1)
    theta = torch.zeros(x.shape[0], 2, 3, device=x.device)
    theta[:, 0, 0] = bw / w
    theta[:, 0, 2] = (2 * left + bw) / w - 1
    theta[:, 1, 1] = bh / h
    theta[:, 1, 2] = (2 * top + bh) / h - 1
    grid = F.affine_grid(theta, [x.shape[0], x.shape[1], out_h, out_w], align_corners=False)
    y = F.grid_sample(_to_float(x), grid, mode=mode, padding_mode="border", align_corners=False)
    return _restore(y, dtype)


def affine_matrix(
    angle: torch.Tensor,
    translate: torch.Tensor | None = None,
    scale: torch.Tensor | None = None,
    shear: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, 3, 3) forward maps in pixel coordinates about the image centre: shear, then scale,
    then rotation by `angle` degrees (counter-clockwise on screen), then translation (dx, dy)."""
    n = angle.shape[0]
    a = torch.deg2rad(angle.float())
    cos, sin = torch.cos(a), torch.sin(a)
    m = torch.zeros(n, 3, 3)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2] = cos, sin, -sin, cos, 1.0  # y points down
    if shear is not None:
        sh = torch.eye(3).repeat(n, 1, 1)
        sh[:, 0, 1] = torch.tan(torch.deg2rad(shear[:, 0].float()))
        sh[:, 1, 0] = torch.tan(torch.deg2rad(shear[:, 1].float()))
        m = (
            m
            @ (torch.diag_embed(torch.stack([scale, scale, torch.ones(n)], 1)) if scale is not None else torch.eye(3))
            @ sh
        )
    elif scale is not None:
        m = m @ torch.diag_embed(torch.stack([scale, scale, torch.ones(n)], 1))
    if translate is not None:
        m[:, 0, 2] += translate[:, 0].float()
        m[:, 1, 2] += translate[:, 1].float()
    return m


def affine(x: torch.Tensor, matrix: torch.Tensor, fill: float = 0.0, mode: str = "bilinear") -> torch.Tensor:
    """Warp each image by its forward map `matrix` (B, 3, 3) from `affine_matrix`; pixels that
    come from outside the image get `fill` (in the dtype's scale: 0..255 for uint8)."""
    dtype, (h, w) = x.dtype, x.shape[-2:]
    inv = torch.linalg.inv(matrix.double()).float()  # output pixel -> input pixel
    # normalised coordinates (align_corners=False): x_norm = 2 x / W about the centre
    theta = torch.stack(
        [
            torch.stack([inv[:, 0, 0], inv[:, 0, 1] * h / w, 2 * inv[:, 0, 2] / w], 1),
            torch.stack([inv[:, 1, 0] * w / h, inv[:, 1, 1], 2 * inv[:, 1, 2] / h], 1),
        ],
        1,
    ).to(x.device)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    f = fill / 255.0 if dtype == torch.uint8 else fill
    y = F.grid_sample(_to_float(x) - f, grid, mode=mode, padding_mode="zeros", align_corners=False) + f
    return _restore(y, dtype)


def rotate(x: torch.Tensor, angles: torch.Tensor, fill: float = 0.0, mode: str = "bilinear") -> torch.Tensor:
    """Rotate each image by its angle in degrees (counter-clockwise) about its centre."""
    return affine(
        x, affine_matrix(torch.as_tensor(angles, dtype=torch.float32).reshape(-1).expand(x.shape[0])), fill, mode
    )


def sample_affine(
    n: int,
    height: int,
    width: int,
    degrees: float = 0.0,
    shift: float = 0.0,
    scale: float = 0.0,
    shear: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, 3, 3) random forward maps: rotation in [-degrees, degrees], translation up to
    `shift` of the side, zoom in [1 - scale, 1 + scale], shear up to `shear` degrees."""
    angle = _uniform(n, -degrees, degrees, generator) if degrees else torch.zeros(n)
    t = (
        torch.stack([_uniform(n, -shift, shift, generator) * width, _uniform(n, -shift, shift, generator) * height], 1)
        if shift
        else None
    )
    s = _uniform(n, 1 - scale, 1 + scale, generator) if scale else None
    sh = (
        torch.stack([_uniform(n, -shear, shear, generator), _uniform(n, -shear, shear, generator)], 1)
        if shear
        else None
    )
    return affine_matrix(angle, t, s, sh)


# ----------------------------------------------------------------------------- colour
def to_gray(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luma of RGB images (ITU-R 601), float; 1-channel images as float."""
    xf = _to_float(x)
    if xf.shape[1] == 1:
        return xf
    wts = torch.tensor(LUMA, device=x.device, dtype=xf.dtype).view(1, 3, 1, 1)
    return (xf * wts).sum(1, keepdim=True)


def _blend(a: torch.Tensor, b: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return (factor * a + (1 - factor) * b).clamp_(0, 1)


def adjust_brightness(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Multiply by `factor` (scalar or per image)."""
    xf = _to_float(x)
    return _restore(_blend(xf, torch.zeros_like(xf), _per_image(factor, x)), x.dtype)


def adjust_contrast(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Blend each image with its mean gray level by `factor` (0: flat gray, 1: unchanged)."""
    xf = _to_float(x)
    mean = to_gray(xf).mean(dim=(1, 2, 3), keepdim=True)
    return _restore(_blend(xf, mean, _per_image(factor, x)), x.dtype)


def adjust_saturation(x: torch.Tensor, factor: torch.Tensor | float) -> torch.Tensor:
    """Blend each RGB image with its grayscale version by `factor` (0: gray, 1: unchanged)."""
    if x.shape[1] != 3:
        return x
    xf = _to_float(x)
    return _restore(_blend(xf, to_gray(xf), _per_image(factor, x)), x.dtype)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    """Float RGB in [0, 1] (B, 3, H, W) to HSV, all channels in [0, 1]."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, ((g - b) / d) % 6, torch.where(maxc == g, (b - r) / d + 2, (r - g) / d + 4))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)

    def k(n: int) -> torch.Tensor:
        return (n + h * 6) % 6

    def f(n: int) -> torch.Tensor:
        return v - v * s * torch.clamp(torch.minimum(k(n), 4 - k(n)), 0, 1)

    return torch.stack([f(5), f(3), f(1)], 1)


def adjust_hue(x: torch.Tensor, shift: torch.Tensor | float) -> torch.Tensor:
    """Rotate the hue of RGB images by `shift` turns (in [-0.5, 0.5]; 1/3: red -> green)."""
    if x.shape[1] != 3:
        return x
    hsv = rgb_to_hsv(_to_float(x))
    hsv[:, 0] = (hsv[:, 0] + _per_image(shift, x).view(-1, 1, 1)) % 1.0
    return _restore(hsv_to_rgb(hsv), x.dtype)


def grayscale(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace RGB images by their luma (kept as 3 equal channels) where mask is True."""
    if x.shape[1] != 3:
        return x
    gray = _restore(to_gray(x).expand_as(x), x.dtype)
    return torch.where(mask.to(x.device).view(-1, 1, 1, 1), gray, x)


def gaussian_kernel1d(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) normalised Gaussian weights, one row per sigma."""
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    k = torch.exp(-(t.view(1, -1) ** 2) / (2 * sigma.float().view(-1, 1) ** 2))
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor | float, kernel_size: int | None = None) -> torch.Tensor:
    """Separable Gaussian blur with a sigma per image (reflect padding at the borders)."""
    dtype, (b, c, h, w) = x.dtype, x.shape
    sigma = torch.as_tensor(sigma, dtype=torch.float32).reshape(-1).expand(b)
    size = kernel_size or 2 * math.ceil(3 * float(sigma.max())) + 1
    size = max(1, min(size, 2 * min(h, w) - 1)) | 1  # odd, and reflect padding needs pad < side
    if size == 1 or b == 0:
        return x
    k = gaussian_kernel1d(sigma, size).to(x.device).repeat_interleave(c, 0)  # (B*C, size)
    p = size // 2
    y = _to_float(x).reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (p, p, 0, 0), mode="reflect"), k.view(b * c, 1, 1, size), groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, p, p), mode="reflect"), k.view(b * c, 1, size, 1), groups=b * c)
    return _restore(y.view(b, c, h, w), dtype)


# ----------------------------------------------------------------------------- erasing
def sample_erase_boxes(
    n: int,
    height: int,
    width: int,
    p: float = 0.5,
    scale: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, 4) integer boxes (top, left, height, width) to erase; height 0 where not erased."""
    apply = torch.rand(n, generator=generator) < p
    area = height * width * _uniform(n, scale[0], scale[1], generator)
    r = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), generator))
    bh = torch.sqrt(area / r).round().clamp(1, height).long()
    bw = torch.sqrt(area * r).round().clamp(1, width).long()
    top = (torch.rand(n, generator=generator) * (height - bh + 1)).long()
    left = (torch.rand(n, generator=generator) * (width - bw + 1)).long()
    return torch.stack([top, left, bh * apply, bw * apply], 1)


def box_mask(boxes: torch.Tensor, height: int, width: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(B, 1, H, W) bool: True inside each integer box (top, left, height, width)."""
    b = boxes.to(device).long()
    rows = torch.arange(height, device=device).view(1, -1)
    cols = torch.arange(width, device=device).view(1, -1)
    in_r = (rows >= b[:, :1]) & (rows < b[:, :1] + b[:, 2:3])
    in_c = (cols >= b[:, 1:2]) & (cols < b[:, 1:2] + b[:, 3:4])
    return (in_r[:, :, None] & in_c[:, None, :]).unsqueeze(1)


def erase(x: torch.Tensor, boxes: torch.Tensor, value: float = 0.0) -> torch.Tensor:
    """Cutout / random erasing: set each image's box to `value` (dtype's scale)."""
    return torch.where(
        box_mask(boxes, x.shape[-2], x.shape[-1], device=x.device),
        torch.tensor(value, dtype=x.dtype, device=x.device),
        x,
    )


# ----------------------------------------------------------------------------- automatic policies
def auto_augment(x: torch.Tensor, policy: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """RandAugment or TrivialAugmentWide from torchvision v2, a separate draw per image.

    v2 draws from torch's global generator, so each image's draw is seeded from `generator`
    inside `torch.random.fork_rng` (the global state is left as it was). uint8 only."""
    from torchvision.transforms import v2

    if x.dtype != torch.uint8:
        raise TypeError("auto_augment needs uint8 images")
    t = {"randaugment": v2.RandAugment, "trivialaugment": v2.TrivialAugmentWide}[policy]()
    seeds = torch.randint(0, 2**62, (x.shape[0],), generator=generator).tolist()
    out = torch.empty_like(x)
    with torch.random.fork_rng(devices=[]):
        for i, s in enumerate(seeds):
            torch.manual_seed(s)
            out[i] = t(x[i])
    return out


# ----------------------------------------------------------------------------- mixup / cutmix
def sample_beta(alpha: float, generator: torch.Generator | None = None) -> float:
    """One Beta(alpha, alpha) draw, seeded from `generator`."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def soft_targets(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B, K) float targets from class indices (B,) or multi-hot/soft rows (B, K)."""
    return F.one_hot(y.long(), num_classes).float() if y.ndim == 1 else y.float()


def mixup(x: torch.Tensor, y_soft: torch.Tensor, lam: float, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """lam * (x, y) + (1 - lam) * (x, y)[perm]. Float images; returns (x, y_soft)."""
    perm = perm.to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * y_soft + (1 - lam) * y_soft[perm.to(y_soft.device)]


def cutmix(
    x: torch.Tensor, y_soft: torch.Tensor, box: tuple[int, int, int, int], perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste box (top, left, height, width) of image perm[i] into image i; labels mixed by area."""
    top, left, bh, bw = box
    h, w = x.shape[-2:]
    perm = perm.to(x.device)
    out = x.clone()
    out[:, :, top : top + bh, left : left + bw] = x[perm, :, top : top + bh, left : left + bw]
    lam = 1.0 - bh * bw / (h * w)
    return out, lam * y_soft + (1 - lam) * y_soft[perm.to(y_soft.device)]


def cutmix_box(
    lam: float, height: int, width: int, generator: torch.Generator | None = None
) -> tuple[int, int, int, int]:
    """A box covering about 1 - lam of the image, centred uniformly, clipped to the image."""
    cut = math.sqrt(1.0 - lam)
    ch, cw = int(height * cut), int(width * cut)
    cy, cx = (int(v) for v in torch.randint(0, 2**31, (2,), generator=generator) % torch.tensor([height, width]))
    top, bottom = max(cy - ch // 2, 0), min(cy + ch - ch // 2, height)
    left, right = max(cx - cw // 2, 0), min(cx + cw - cw // 2, width)
    return top, left, bottom - top, right - left


def mix_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    generator: torch.Generator | None = None,
    *,
    mixup_alpha: float = 0.0,
    cutmix_alpha: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix on a float batch (normalised or not): returns (x, y_soft (B, K)).

    With both on, each batch uses one of the two at random (as timm does); with neither,
    x is returned with one-hot targets."""
    y_soft = soft_targets(y, num_classes)
    use = [m for m, a in (("mixup", mixup_alpha), ("cutmix", cutmix_alpha)) if a > 0]
    if not use or x.shape[0] < 2:
        return x, y_soft
    which = use[int(torch.randint(len(use), (1,), generator=generator))]
    perm = torch.randperm(x.shape[0], generator=generator)
    if which == "mixup":
        return mixup(_to_float(x), y_soft, sample_beta(mixup_alpha, generator), perm)
    box = cutmix_box(sample_beta(cutmix_alpha, generator), x.shape[-2], x.shape[-1], generator=generator)
    return cutmix(x, y_soft, box, perm)


class Mixer:
    """Mixup/cutmix as configured: `x, y_soft = mixer(x, y, generator)` (see mix_batch)."""

    def __init__(self, num_classes: int, mixup: float = 0.0, cutmix: float = 0.0) -> None:
        self.num_classes, self.mixup, self.cutmix = num_classes, mixup, cutmix

    @classmethod
    def from_config(cls, cfg: AugmentConfig, num_classes: int) -> Mixer:
        return cls(num_classes, mixup=cfg.mixup, cutmix=cfg.cutmix)

    @property
    def active(self) -> bool:
        return self.mixup > 0 or self.cutmix > 0

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return mix_batch(x, y, self.num_classes, generator, mixup_alpha=self.mixup, cutmix_alpha=self.cutmix)


# ----------------------------------------------------------------------------- the configured pipeline
class BatchAugment:
    """The training-time, label-preserving augmentation the config asks for.

    `augment(x, generator)` on a uint8 (or float [0, 1]) batch returns the same dtype. Steps,
    each only when switched on: auto policy, random resized crop, flips, affine (rotation,
    zoom, shear, shift), pixel shift, colour jitter, grayscale, blur, erasing.
    """

    def __init__(
        self,
        translate: int = 0,
        hflip: bool = False,
        *,
        vflip: bool = False,
        crop_scale: float = 0.0,
        rotate: float = 0.0,
        scale: float = 0.0,
        shear: float = 0.0,
        shift: float = 0.0,
        brightness: float = 0.0,
        contrast: float = 0.0,
        saturation: float = 0.0,
        hue: float = 0.0,
        grayscale: float = 0.0,
        blur: float = 0.0,
        blur_sigma: float = 1.0,
        erase: float = 0.0,
        auto: str = "none",
        alternate_flip: bool = False,
    ) -> None:
        from cnnkit.errors import ConfigError

        if not 0.0 <= crop_scale <= 1.0 or not 0.0 <= hue <= 0.5 or not 0.0 <= scale < 1.0:
            raise ConfigError(
                "augment.crop_scale must be in [0, 1], augment.hue in [0, 0.5] and augment.scale in [0, 1)"
            )
        self.max_shift = translate
        self.hflip, self.alternate_flip = hflip, alternate_flip
        self.vflip, self.crop_scale, self.auto = vflip, crop_scale, auto
        self.rotate, self.scale, self.shear, self.shift = rotate, scale, shear, shift
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self.grayscale, self.blur, self.blur_sigma, self.erase = grayscale, blur, blur_sigma, erase

    @classmethod
    def from_config(cls, cfg: AugmentConfig) -> BatchAugment:
        """From an AugmentConfig (mixup/cutmix excluded: they go through `Mixer`)."""
        if cfg.elastic:
            from cnnkit.errors import ConfigError

            raise ConfigError(
                "augment.elastic: segmentation only (it deforms image and mask together); set it to 0 here"
            )
        keys = (
            "vflip",
            "crop_scale",
            "rotate",
            "scale",
            "shear",
            "shift",
            "brightness",
            "contrast",
            "saturation",
            "hue",
            "grayscale",
            "blur",
            "blur_sigma",
            "erase",
            "auto",
            "alternate_flip",
        )
        return cls(cfg.translate, cfg.hflip, **{k: getattr(cfg, k) for k in keys})

    @property
    def _affine(self) -> bool:
        return bool(self.rotate or self.scale or self.shear or self.shift)

    @property
    def active(self) -> bool:
        return bool(
            self.max_shift > 0
            or self.hflip
            or self.vflip
            or self.crop_scale
            or self._affine
            or self.brightness
            or self.contrast
            or self.saturation
            or self.hue
            or self.grayscale
            or self.blur
            or self.erase
            or self.auto != "none"
        )

    def __call__(
        self, x: torch.Tensor, generator: torch.Generator | None, *, index: torch.Tensor | None = None, epoch: int = 1
    ) -> torch.Tensor:
        """`index` (the images' indices in the split) and `epoch` drive alternate_flip; without them flips are random."""
        n, _, h, w = x.shape
        if self.auto != "none":
            x = auto_augment(x, self.auto, generator)
        if self.crop_scale:
            x = resized_crop(x, sample_resized_crop(n, h, w, (self.crop_scale, 1.0), generator=generator))
        if self.hflip:
            alternate = self.alternate_flip and index is not None and len(index) == x.shape[0]
            x = hflip(
                x,
                alternating_flips(index, epoch)
                if alternate and index is not None
                else sample_flips(x.shape[0], generator=generator),
            )
        if self.vflip:
            x = vflip(x, sample_flips(n, generator=generator))
        if self._affine:
            x = affine(x, sample_affine(n, h, w, self.rotate, self.shift, self.scale, self.shear, generator))
        if self.max_shift > 0:
            x = translate(x, sample_shifts(x.shape[0], self.max_shift, generator))
        if self.brightness:
            x = adjust_brightness(x, _uniform(n, 1 - self.brightness, 1 + self.brightness, generator))
        if self.contrast:
            x = adjust_contrast(x, _uniform(n, 1 - self.contrast, 1 + self.contrast, generator))
        if self.saturation:
            x = adjust_saturation(x, _uniform(n, 1 - self.saturation, 1 + self.saturation, generator))
        if self.hue:
            x = adjust_hue(x, _uniform(n, -self.hue, self.hue, generator))
        if self.grayscale:
            x = grayscale(x, sample_flips(n, self.grayscale, generator))
        if self.blur:
            apply = sample_flips(n, self.blur, generator)
            sigma = _uniform(n, 0.1, max(self.blur_sigma, 0.1), generator)
            if bool(apply.any()):
                x = torch.where(apply.to(x.device).view(-1, 1, 1, 1), gaussian_blur(x, sigma), x)
        if self.erase:
            x = erase(x, sample_erase_boxes(n, h, w, self.erase, generator=generator))
        return x
