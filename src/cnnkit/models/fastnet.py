"""A fast family for 28-64 px images, in the style of the CIFAR-10 speed-record networks
(Page's ResNet-9, hlb-CIFAR10, airbench).

Every stage is the speed-record block: a 3x3 convolution, a 2x2 max pool (halving H and W
before the normalisation, so batch norm and the activation run on a quarter of the pixels),
batch norm and GELU, then `depth` conv-BN-GELU layers at the pooled size, optionally as a
residual branch. Three more choices make a variant:

- stem: "whiten" (a frozen 2x2 convolution whose filters are the training patches'
  principal components scaled to unit variance, +/- each, set by `init_from_data` before
  training: the network starts on decorrelated inputs), "conv" (conv-BN-GELU) or "none";
- head: "max" (global max pooling), "maxavg" (global max and average, concatenated) or
  "grid" (adaptive max pooling to 3x3, flattened: keeps where things are, which glyphs
  need); then a bias-free linear layer whose logits are scaled down (airbench's 1/9);
- batch norm with fast running statistics (momentum 0.4) and, for the big variants, a
  frozen scale (only the shift trains), and identity ("dirac") initialisation of the first
  filters of every 3x3 convolution, so a fresh block passes its input through.

    fastnet_t  no stem, widths 16-32-64, one extra layer at 3x3, grid head: MNIST-type glyphs
               (2.3 MMACs at 28 px)
    fastnet_s  whitening stem, 32-128-128, one layer per stage (~33 MMACs at 32 px): the
               CPU-sized one, ~1,100 training images/s on 2 cores in bf16
    fastnet_m  whitening stem, 64-256-256: airbench94's size (~118 MMACs, ~480 images/s)
    fastnet_l  whitening stem, 128-384-512, two residual layers per stage (ResNet-9-like)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from cnnkit.models._registry import register_model
from cnnkit.models.base import ClassifierBase


@dataclass(frozen=True)
class Variant:
    stem: str  # whiten | conv | none
    widths: tuple[int, ...]
    depth: tuple[int, ...]  # conv-BN-GELU layers after each stage's pooling conv
    residual: bool = False  # those layers as a residual branch: x + f(x)
    head: str = "max"  # max | maxavg | grid
    scale: float = 1 / 9  # logits multiplier
    bn_momentum: float = 0.4  # PyTorch convention: weight of the new batch statistics
    bn_scale: bool = False  # train batch norm's scale (False: frozen at 1, only the shift trains)
    stem_width: int = 32  # stem "conv" only


VARIANTS = {
    "fastnet_t": Variant("none", (16, 32, 64), (0, 0, 1), head="grid", scale=1.0, bn_momentum=0.1, bn_scale=True),
    "fastnet_s": Variant("whiten", (32, 128, 128), (1, 1, 1)),
    "fastnet_m": Variant("whiten", (64, 256, 256), (1, 1, 1)),
    "fastnet_l": Variant("whiten", (128, 384, 512), (2, 2, 2), residual=True),
}


def batch_norm(c: int, v: Variant) -> nn.BatchNorm2d:
    bn = nn.BatchNorm2d(c, momentum=v.bn_momentum, eps=1e-5)
    bn.weight.requires_grad_(v.bn_scale)
    return bn


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(conv.weight[:c_in])  # the first filters start as the identity
    return conv


class ConvBNAct(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, v: Variant):
        super().__init__(OrderedDict(conv=conv3x3(c_in, c_out), norm=batch_norm(c_out, v), act=nn.GELU()))


class Stage(nn.Module):
    """conv -> 2x2 max pool -> BN -> GELU (B, c_out, H/2, W/2), then `depth` conv-BN-GELU layers."""

    def __init__(self, c_in: int, c_out: int, depth: int, v: Variant):
        super().__init__()
        self.conv = conv3x3(c_in, c_out)
        self.pool = nn.MaxPool2d(2)
        self.norm = batch_norm(c_out, v)
        self.act = nn.GELU()
        self.layers = nn.Sequential(*[ConvBNAct(c_out, c_out, v) for _ in range(depth)])
        self.residual = v.residual and depth > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm(self.pool(self.conv(x))))
        return x + self.layers(x) if self.residual else self.layers(x)


class Whiten(nn.Conv2d):
    """A 2x2 convolution (no padding: H, W shrink by 1) with 2 * C * 4 frozen filters: the
    training patches' eigenvectors divided by the square root of their eigenvalues, and
    their negatives. `init_from_data` sets them; until then they are random."""

    def __init__(self, in_chans: int, kernel: int = 2):
        super().__init__(in_chans, 2 * in_chans * kernel * kernel, kernel, padding=0, bias=True)
        self.weight.requires_grad_(False)
        nn.init.zeros_(self.bias)  # type: ignore[arg-type]  # bias=True above: never None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # the bias inside the convolution: with frozen filters and an input that needs no gradient,
        # its backward only sums the bias gradient (adding the bias outside, in fp32, made every
        # step ~12 % slower in bf16: a float32 copy of the stem's output and its GELU)
        return nn.functional.conv2d(x, self.weight, self.bias)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        c, k = self.in_channels, self.kernel_size[0]
        patches = images.float().unfold(2, k, 1).unfold(3, k, 1)  # (N, C, H-k+1, W-k+1, k, k)
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)  # one row per patch
        cov = patches.T @ patches / len(patches)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
        filters = (eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).flip(0)  # largest first
        filters = filters.reshape(c * k * k, c, k, k)
        self.weight.copy_(torch.cat([filters, -filters]).to(self.weight.dtype))


class FastNet(ClassifierBase):
    def __init__(self, variant: Variant, num_classes: int = 10, in_chans: int = 3):
        super().__init__()
        self.variant = variant
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        c = in_chans
        if variant.stem == "whiten":
            layers["stem"] = nn.Sequential(Whiten(in_chans), nn.GELU())  # (B, 8C, H-1, W-1)
            c = layers["stem"][0].out_channels
        elif variant.stem == "conv":
            layers["stem"] = ConvBNAct(in_chans, variant.stem_width, variant)  # (B, stem, H, W)
            c = variant.stem_width
        for i, (w, d) in enumerate(zip(variant.widths, variant.depth), 1):
            layers[f"stage{i}"] = Stage(c, w, d, variant)  # (B, w, H/2^i, W/2^i): 32 -> 4 (whiten: 31 -> 3), 28 -> 3
            c = w
        self.features = nn.Sequential(layers)
        self.target_layer = f"features.stage{len(variant.widths)}"
        self.grid = 3 if variant.head == "grid" else 1
        self.num_features = c * {"max": 1, "maxavg": 2, "grid": 9}[variant.head]
        self.fc = nn.Linear(self.num_features, num_classes, bias=False)

    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening stem from normalised training images (N, C, H, W); a no-op without one."""
        if self.variant.stem == "whiten":
            self.features.stem[0].init_from_data(images)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        if self.variant.head == "grid":
            pooled = nn.functional.adaptive_max_pool2d(features, 3).flatten(1)  # (B, 9C): a 3x3 grid of maxima
        elif self.variant.head == "maxavg":
            pooled = torch.cat([features.amax((2, 3)), features.mean((2, 3))], 1)  # (B, 2C)
        else:
            pooled = features.amax((2, 3))  # (B, C): global max pooling
        return self.fc(pooled) * self.variant.scale

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes, bias=False)


def _register(name: str, description: str, default_input: tuple[int, int, int]) -> None:
    def build(num_classes: int = 10, in_chans: int = 3) -> FastNet:
        return FastNet(VARIANTS[name], num_classes, in_chans)

    build.__name__ = name
    register_model(name, description=description, default_input=default_input)(build)


_register(
    "fastnet_t",
    "tiny fast net for 28-32 px glyphs (MNIST-type): 3 conv-pool-BN-GELU stages, 3x3 grid head",
    (1, 28, 28),
)
_register(
    "fastnet_s",
    "fast net for 28-64 px colour images (speed-record style, CPU-sized): whitening stem, 32-128-128",
    (3, 32, 32),
)
_register("fastnet_m", "fast net for 28-64 px, airbench94's size: whitening stem, 64-256-256", (3, 32, 32))
_register(
    "fastnet_l",
    "fast net for 28-64 px, residual: whitening stem, 128-384-512, two residual layers per stage",
    (3, 32, 32),
)
