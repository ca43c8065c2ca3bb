"""Recipes: cnnkit's tuned settings per dataset, applied under what the user sets.

A recipe is a named set of dotted config overrides. `train.recipe: auto` (the default)
picks the dataset's recipe, if it has one; `none` turns recipes off; a name picks that
recipe. As with augmentation presets, every key the config sets to a non-default value
wins over the recipe, and the resolved config records the expanded values (recipe: none),
so `cnnkit train --config <run>/config.yaml` reproduces the run without recipes.

`cnnkit recipes` lists them. The numbers in the descriptions come from
benchmarks/bench_mnist.py and benchmarks/bench_cifar.py on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    datasets: tuple[str, ...]  # the datasets it is the default for
    overrides: dict[str, Any] = field(default_factory=dict)
    finetune: str | None = (
        None  # the model.finetune mode it is the default for (with starting weights, no dataset recipe)
    )


_GLYPHS = {"model.name": "fastnet_t", "runtime.precision": "auto"}

# the speed-record recipe (airbench's hyperparameters, in PyTorch's mean-loss units for batch 512)
_CIFAR = {
    "model.name": "fastnet_s",
    "runtime.precision": "auto",
    "train.batch_size": 512,
    "train.epochs": 14,
    "train.progressive_resize": 0.75,
    "train.progressive_end": 0.6,  # 14 epochs from 24 px take about the time of 10 at 32 px
    "optim.name": "sgd",
    "optim.lr": 0.75,
    "optim.momentum": 0.85,
    "optim.nesterov": True,
    "optim.weight_decay": 1.36e-3,
    "optim.bias_lr_scale": 64.0,
    "optim.label_smoothing": 0.2,
    "schedule.name": "triangle",
    "schedule.warmup_fraction": 0.23,
    "schedule.initial_factor": 0.2,
    "schedule.final_factor": 0.07,
    "train.lookahead": True,
    "eval.tta": "flip+shift",
    "augment.translate": 2,
    "augment.hflip": True,
    "augment.alternate_flip": True,
}

# transfer learning, measured on benchmarks/bench_photos.py's stand-in (two CIFAR-10 classes, 125 + 75 images each, upscaled):
# a sweep of Lite0's head on cached features at 128/160/224 px (AdamW lr 1e-3/3e-3/1e-2, weight decay 1e-4/0.05, label
# smoothing 0/0.1, 10/20 epochs, with and without mirrored views) put these within noise of the best accuracy with a low ECE:
# label smoothing 0.1 makes the head under-confident (automobile/horse ECE 6.6-8.8 % against 1.2-4.6 % without), mirrored
# views bought nothing measurable (so no augmentation, and the features are computed once); the head is cheap, so 20 epochs
_HEAD = {
    "optim.name": "adamw",
    "optim.lr": 3e-3,
    "optim.weight_decay": 0.05,
    "optim.label_smoothing": 0.0,
    "train.epochs": 20,
    "train.batch_size": 32,
    "schedule.name": "onecycle",
    "augment.translate": 0,
    "augment.hflip": False,
}
_FULL = {
    "optim.name": "adamw",
    "optim.lr": 1e-3,
    "optim.weight_decay": 0.05,
    "optim.label_smoothing": 0.0,
    "train.epochs": 5,
    "train.batch_size": 32,
    "schedule.name": "onecycle",
    "model.backbone_lr_scale": 0.1,
}  # no flips here: photos get them from training/auto.py, digits and text never
# fastai-style fine_tune, the photo default (training/auto.py): measured idle on the three stand-ins of bench_photos.py
# (bench_photos_ft_bf16.md), 3 whole-network epochs gave 98.0 / 84.7 / 96.7 % (ship/truck, cat/dog, automobile/horse) in
# 76-79 s wall against 96.7 / 84.7 / 98.7 % for 5 epochs in 112-122 s; bf16 where native (precision auto)
_FINE_TUNE = {**_FULL, "train.epochs": 3, "runtime.precision": "auto"}

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "mnist-mini",
            "the demo: fastnet_t, 8 epochs on 10,000 digits, fp32",
            ("mnist-mini",),
            {"model.name": "fastnet_t"},
        ),
        Recipe(
            "mnist-fast",
            "fastnet_t for one epoch, batch 128: >= 99 % MNIST test accuracy in about 6 s of training on 2 CPU cores (bf16)",
            ("mnist",),
            {**_GLYPHS, "train.epochs": 1, "train.batch_size": 128},
        ),
        Recipe(
            "glyphs",
            "fastnet_t, 10 epochs, batch 128: Fashion-MNIST and KMNIST",
            ("fashion-mnist", "kmnist"),
            {**_GLYPHS, "train.epochs": 10, "train.batch_size": 128},
        ),
        Recipe(
            "cifar-fast",
            "the CIFAR-10 speed-record recipe (airbench-style): fastnet_s with a whitening stem, Nesterov SGD with a "
            "triangular schedule, 64x batch-norm rates, lookahead, label smoothing 0.2, alternating flips and 2 px shifts, progressive "
            "resizing from 3/4 size, flip+shift TTA",
            ("cifar10", "cifar100"),
            dict(_CIFAR),
        ),
        Recipe(
            "transfer-head",
            "pretrained backbone frozen, the head trained on its features computed once (no augmentation): AdamW 3e-3, "
            "no label smoothing, 20 epochs of seconds each; the default for --pretrained alone",
            (),
            dict(_HEAD),
            finetune="head",
        ),
        Recipe(
            "transfer-full",
            "everything trains, the backbone at 0.1x the head's rate: AdamW 1e-3, no label smoothing, 5 epochs (photos also get flips)",
            (),
            dict(_FULL),
            finetune="full",
        ),
        Recipe(
            "fine-tune",
            "fastai-style: the head alone on features computed once for model.head_epochs (10) epochs, then the whole network at discriminative rates "
            "(backbone 0.1x, batch norms on the pretrained statistics) for 3 epochs: AdamW 1e-3, no label smoothing, bf16 where "
            "native (photos also get flips); the default for colour photos: about 80 s on 2 CPU cores for 400 photos, "
            "0-3 points above head-only on the photo stand-ins with a lower calibration error",
            (),
            dict(_FINE_TUNE),
            finetune="fine_tune",
        ),
    )
}


def recipe_for(name: str, dataset: str, finetune: str | None = None) -> Recipe | None:
    """The recipe `name` (train.recipe) means for `dataset`: auto -> the dataset's, else the one of
    fine-tuning mode `finetune` (pass it only when the model has starting weights); none -> None."""
    if name == "none":
        return None
    if name == "auto":
        own = next((r for r in RECIPES.values() if dataset in r.datasets), None)
        return own or next((r for r in RECIPES.values() if finetune is not None and r.finetune == finetune), None)
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(name, RECIPES, n=1)
        raise ConfigError(
            f"train.recipe: {name!r} is not a recipe{f'; did you mean {close[0]!r}?' if close else ''} Choose auto, none or one of: {', '.join(RECIPES)}"
        )
    return RECIPES[name]


def _segmentation_model(name: str) -> bool:
    from cnnkit.models import model_info

    try:
        return model_info(name).task == "segment"
    except (ConfigError, KeyError, ValueError):
        return False


def apply_recipe(cfg):
    """`cfg` with its recipe's values wherever `cfg` keeps the default; recipe recorded as none."""
    from cnnkit.config import Config

    if (
        cfg.model.pretrained
        and cfg.model.finetune is None
        and cfg.train.recipe == "auto"
        and recipe_for("auto", cfg.data.dataset) is None
        and not _segmentation_model(cfg.model.name)  # a pretrained encoder under a new decoder: everything trains
    ):
        cfg = cfg.with_overrides(
            {"model.finetune": "head"}, source="--pretrained"
        )  # alone: head-only, measured best (README, bench_photos)
    recipe = recipe_for(
        cfg.train.recipe, cfg.data.dataset, cfg.model.finetune if (cfg.model.pretrained or cfg.model.weights) else None
    )
    if recipe is not None:
        defaults = Config()
        keep = {}
        for key, value in recipe.overrides.items():
            group, name = key.split(".")
            current = getattr(getattr(cfg, group), name)
            if current == getattr(getattr(defaults, group), name):
                keep[key] = value
        cfg = cfg.with_overrides(keep, source=f"recipe {recipe.name!r}")
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, recipe="none"))
