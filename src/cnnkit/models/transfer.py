"""Building the model a training run asks for: the few calls the trainer makes.

    model = build_model(cfg.model, num_classes=n, in_chans=c, image_size=size)
    prep = preprocessing(model, c)       # {"source", "mean", "std"} of the weights, or None
    groups = param_groups_for(model, cfg.model, lr=..., weight_decay=...)
    for epoch in range(epochs):
        start_epoch(model, cfg.model, epoch, epochs)   # gradual unfreezing + train mode
        ...
    if use_feature_cache(cfg.model, augmenting=...): the head trains on features computed once
        (cnnkit.training.head_only: the trainer's loop, run on cached features)

`model.pretrained` / `model.weights` choose the starting weights (never recorded in the
checkpoint's model kwargs: its state dict carries them); `model.finetune` chooses what trains.
"""

from __future__ import annotations

from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models import finetune as ft
from cnnkit.models._registry import accepts, create_model, looks_like_spec, model_info
from cnnkit.models.weights import load_weights

KEEP_BN_STATS = ("full", "gradual", "fine_tune")  # modes whose batch norms normalise with the pretrained statistics
FREEZES_STAGES = ("full", "fine_tune")  # modes where model.frozen_stages applies (the backbone trains whole otherwise)


def build_model(mcfg, *, num_classes: int, in_chans: int, image_size: int | None = None) -> nn.Module:
    """The model of a `ModelConfig`, with its starting weights and its frozen parts set."""
    ft.check_mode(mcfg.finetune)
    if mcfg.frozen_stages and mcfg.finetune not in FREEZES_STAGES:
        raise ConfigError(
            f"model.frozen_stages: {mcfg.frozen_stages} freezes the first stages while the rest of a pretrained network "
            f"trains; it needs model.finetune full or fine_tune (it is {mcfg.finetune!r})"
        )
    name = mcfg.name
    kwargs = dict(mcfg.kwargs)
    if image_size is not None and accepts(name, "image_size") and (looks_like_spec(name) or name in ("spec", "lenet5")):
        kwargs.setdefault("image_size", image_size)
    if mcfg.pretrained:
        if looks_like_spec(name) or not accepts(name, "pretrained") or not model_info(name).pretrained:
            raise ConfigError(
                f"model.pretrained: {name} has no published weights (see the pretrained column of `cnnkit models`); use model.weights for a local file"
            )
        kwargs["pretrained"] = mcfg.pretrained
    model = create_model(name, num_classes=num_classes, in_chans=in_chans, **kwargs)
    if mcfg.weights:
        load_weights(model, mcfg.weights, strict=mcfg.strict_weights)
    if mcfg.finetune and not (mcfg.pretrained or mcfg.weights):
        raise ConfigError(
            f"model.finetune={mcfg.finetune}: fine-tuning needs starting weights (model.pretrained or model.weights)"
        )
    ft.prepare(model, mcfg.finetune)
    return model


def preprocessing(model: nn.Module, channels: int | None = None) -> dict | None:
    """Where the starting weights came from and the input normalisation they expect, or None
    (trained from scratch: the dataset's own statistics apply). With `channels=1` the RGB
    mean / std become their averages (the stem's weights were summed over colour)."""
    cfg = getattr(model, "pretrained_cfg", None)
    if not cfg:
        return None
    out = dict(cfg)
    if channels == 1 and len(out["mean"]) == 3:
        out["mean"], out["std"] = [sum(out["mean"]) / 3], [sum(out["std"]) / 3]
    return out


def param_groups_for(model: nn.Module, mcfg, *, lr: float, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups: one rate without fine-tuning, discriminative rates with it."""
    scale = mcfg.backbone_lr_scale if mcfg.finetune in ("full", "gradual", "fine_tune") else 1.0
    return ft.param_groups(model, lr, backbone_lr_scale=scale, weight_decay=weight_decay)


def start_epoch(model: nn.Module, mcfg, epoch: int, epochs: int) -> None:
    """Call at the start of every training epoch instead of model.train(). Fine-tuning beyond the
    head keeps the pretrained batch-norm statistics (`finetune.train_mode(keep_bn_stats=True)`)."""
    if mcfg.finetune == "gradual":
        ft.gradual_unfreeze(model, epoch, epochs)
    elif (
        mcfg.finetune == "fine_tune"
    ):  # the head trained alone before the first epoch (training/head_only.warm_up_head)
        ft.prepare(model, "full")
    if mcfg.finetune in FREEZES_STAGES and mcfg.frozen_stages:
        ft.freeze_first_stages(model, mcfg.frozen_stages)
    ft.train_mode(model, keep_bn_stats=mcfg.finetune in KEEP_BN_STATS)


def use_feature_cache(mcfg, *, augmenting: bool) -> bool:
    """Whether head-only training can run on features computed once per image."""
    return mcfg.finetune == "head" and mcfg.cache_features and not augmenting


def weights_config(name: str) -> dict | None:
    """What the published weights of model `name` expect as input, from the weights' own
    configuration (timm's pretrained_cfg for Lite0, torchvision's weights transforms for the
    torchvision models): {"size", "interpolation", "mean", "std", "source"}, or None when the
    model has none. Nothing is downloaded; the Lite0 package's weights use (x - 127) / 128."""
    try:
        info = model_info(name)
    except (ConfigError, KeyError, ValueError):
        return None  # a layer spec or an unknown name: no published weights
    if name == "efficientnet_lite0":
        import timm

        from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD

        cfg = timm.models.get_pretrained_cfg("tf_efficientnet_lite0")
        return {
            "size": int(cfg.input_size[-1]),
            "interpolation": cfg.interpolation,
            "mean": list(LITE0_MEAN),
            "std": list(LITE0_STD),
            "source": "timm pretrained_cfg tf_efficientnet_lite0",
        }
    if info.pretrained.startswith("torchvision"):
        import torchvision

        weights = torchvision.models.get_model_weights(name).DEFAULT
        t = weights.transforms()
        return {
            "size": int(t.crop_size[0]),
            "interpolation": t.interpolation.value,
            "mean": list(t.mean),
            "std": list(t.std),
            "source": f"torchvision {name} {weights.name} transforms",
        }
    return None
