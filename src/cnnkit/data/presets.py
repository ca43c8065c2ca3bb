"""Named augmentation presets (`none`, `light`, `standard`, `strong`), chosen per dataset.

A preset is a set of AugmentConfig overrides. Digits and characters (MNIST, KMNIST,
mnist-mini, mnist-scenes) never get flips or hue changes; natural photos get flips, crops and colour
jitter. Mixup/cutmix are not in any preset (they change the labels; set augment.mixup /
augment.cutmix explicitly).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from cnnkit.errors import ConfigError

if TYPE_CHECKING:
    from cnnkit.config import AugmentConfig

PRESETS = ("none", "light", "standard", "strong")
GLYPH_DATASETS = frozenset({"mnist", "mnist-mini", "kmnist", "mnist-scenes"})  # orientation carries the meaning


def preset_overrides(name: str, *, dataset: str, image_size: int) -> dict[str, Any]:
    """AugmentConfig field values for preset `name` on `dataset` at `image_size`."""
    if name not in PRESETS:
        import difflib

        close = difflib.get_close_matches(name, PRESETS, n=1)
        raise ConfigError(
            f"augment preset {name!r} is unknown{f'; did you mean {close[0]!r}?' if close else ''} Presets: {', '.join(PRESETS)}"
        )
    off = {f.name: f.default for f in dataclasses.fields(_augment_config())}
    off["translate"] = 0
    if name == "none":
        return off
    shift = max(1, round(image_size / 8))
    steps: dict[str, dict[str, Any]]
    if dataset in GLYPH_DATASETS:
        steps = {
            "light": {"translate": 2},
            "standard": {"translate": 2, "rotate": 10.0, "scale": 0.1},
            "strong": {"translate": 2, "rotate": 15.0, "scale": 0.15, "shear": 10.0, "erase": 0.25},
        }
    else:
        steps = {
            "light": {"translate": shift, "hflip": True},
            "standard": {"translate": shift, "hflip": True, "brightness": 0.2, "contrast": 0.2, "saturation": 0.2},
            "strong": {"crop_scale": 0.35, "hflip": True, "auto": "trivialaugment", "erase": 0.25},
        }
    return {**off, **steps[name]}


def apply_preset(cfg: AugmentConfig, name: str, *, dataset: str, image_size: int) -> AugmentConfig:
    """A copy of AugmentConfig `cfg` with the preset's values."""
    return dataclasses.replace(cfg, **preset_overrides(name, dataset=dataset, image_size=image_size))


def _augment_config() -> AugmentConfig:
    from cnnkit.config import AugmentConfig

    return AugmentConfig()
