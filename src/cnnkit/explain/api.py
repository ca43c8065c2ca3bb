"""`explain_files(checkpoint, paths, method=...)`: heat-map PNGs for image files and folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnkit.errors import ConfigError, DataError
from cnnkit.explain.attention_map import resolve_attention, save_attention_panel, spatial_attention
from cnnkit.explain.attribution import LAYER_METHODS, attribute, resolve_layer
from cnnkit.explain.attribution import METHODS as ATTRIBUTION_METHODS
from cnnkit.explain.render import METHOD_TITLES, save_contact_sheet, save_panel
from cnnkit.explain.transformer import rollout_maps
from cnnkit.io_safety import staged_folder

# attention: a CBAM model's own map (explain/attention_map.py); rollout: a ViT's attention rollout (explain/transformer.py)
METHODS = (*ATTRIBUTION_METHODS, "attention", "rollout")


@dataclass
class Explained:
    source: str
    label: str  # the prediction
    probability: float  # of the prediction
    target: str  # the class explained
    path: Path  # the PNG


@dataclass
class ExplainResult:
    items: list[Explained] = field(default_factory=list)
    contact_sheet: Path | None = None
    errors: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path | None = None


def class_index(class_names: list[str], name: str | None) -> int | None:
    if name is None:
        return None
    if name in class_names:
        return class_names.index(name)
    raise ConfigError(f"--class {name!r} is not one of the model's classes: {', '.join(class_names)}")


def explain_batch(
    clf, images: torch.Tensor, method: str = "gradcam", targets: list[int] | None = None, layer: str | None = None
) -> tuple[np.ndarray, torch.Tensor]:
    """Heat maps (B, H, W) in [0, 1] and class probabilities (B, K) for uint8 images (B, C, H, W)
    already at the model's input size: a softmax, or each label's sigmoid for a multi-label model
    (`clf.multi_label`). Integrated gradients start from a black image; "attention" is the
    CBAM spatial gate at `layer` (explain/attention_map.py), not a per-image scaled map."""
    x = clf.normalize(images)
    with torch.no_grad():
        logits = clf.model(x).float()
        probs = (torch.sigmoid(logits) if getattr(clf, "multi_label", False) else torch.softmax(logits, 1)).cpu()
    if targets is None:
        targets = probs.argmax(1).tolist()
    if method == "attention":
        return spatial_attention(clf.model, x, layer), probs
    if method == "rollout":
        return rollout_maps(clf.model, x), probs
    baseline = clf.normalize(torch.zeros_like(images)) if method == "integrated-gradients" else None
    heat = attribute(clf.model, x, method, targets, layer=layer, baseline=baseline)
    return heat, probs


def _unique_names(files: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for f in files:
        stem = f.stem if f.parent.name in ("", ".") else f"{f.parent.name}_{f.stem}"
        seen[stem] = seen.get(stem, 0) + 1
        names.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return names


def explain_files(
    checkpoint: str | os.PathLike,
    paths: Iterable[str | os.PathLike],
    *,
    method: str = "gradcam",
    layer: str | None = None,
    class_name: str | None = None,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    sheet_limit: int = 60,
) -> ExplainResult:
    """Explain each image (folders expanded): one PNG per image (original | heat map | overlay,
    titled with the prediction and its probability) and, for several images, a contact sheet.
    Output goes to `out` (default: explain/<method>/ beside the checkpoint)."""
    from cnnkit.checkpoint import resolve_checkpoint
    from cnnkit.data.images import read_batches
    from cnnkit.inference import expand_paths, load

    paths = list(paths)
    clf = load(checkpoint, device=device)
    target = class_index(clf.class_names, class_name)
    layer_name = resolve_layer(clf.model, layer)[0] if method in LAYER_METHODS else None
    cam_layer = None
    if method == "attention":  # the CBAM gate at --layer beside Grad-CAM at the model's own layer
        layer_name, cam_layer = resolve_attention(clf.model, layer)[0], resolve_layer(clf.model, None)[0]
    out_dir = (
        Path(out) if out is not None else resolve_checkpoint(checkpoint).parent / "explain" / method.replace("+", "p")
    )
    result = ExplainResult(out_dir=out_dir)
    files = expand_paths(paths)
    if not files:
        raise DataError(f"no image files found in {', '.join(map(str, paths))}")
    names = dict(zip(files, _unique_names(files)))
    sheet: tuple[list, list, list] = ([], [], [])
    how = METHOD_TITLES[method] + (f" at {layer_name}" if layer_name else "")
    # built in a hidden folder and moved into out_dir at the end: a signal or a full disk leaves its previous files
    with staged_folder(out_dir, hint="or write elsewhere with --out DIR") as stage:
        for ok, images in read_batches(files, clf.channels, clf.size, batch_size, result.errors, clf.interpolation):
            targets = [target] * len(ok) if target is not None else None
            heat, probs = explain_batch(clf, images, method, targets, layer_name)
            cams = explain_batch(clf, images, "gradcam", targets, cam_layer)[0] if method == "attention" else None
            for i, (f, img, h, p) in enumerate(zip(ok, images.numpy(), heat, probs)):
                pred = int(p.argmax())
                t = pred if target is None else target
                label, prob = clf.class_names[pred], float(p[pred])
                title = f"{f.name}: predicted {label} ({prob:.1%})"
                if t != pred:
                    title += f"; explaining {clf.class_names[t]} ({float(p[t]):.1%})"
                if cams is not None:
                    save_attention_panel(img, h, cams[i], stage / f"{names[f]}.png", title=f"{title}\n{how}")
                else:
                    save_panel(img, h, stage / f"{names[f]}.png", title=f"{title}\n{how}", method=method)
                png = out_dir / f"{names[f]}.png"
                result.items.append(Explained(str(f), label, prob, clf.class_names[t], png))
                if len(sheet[0]) < sheet_limit:
                    sheet[0].append(img)
                    sheet[1].append(h)
                    sheet[2].append(
                        f"{names[f][:18]}\n{label} {prob:.0%}" + (f" (→{clf.class_names[t]})" if t != pred else "")
                    )
        if len(result.items) > 1:
            shown = f" (first {sheet_limit} of {len(result.items)})" if len(result.items) > sheet_limit else ""
            save_contact_sheet(*sheet, stage / "contact_sheet.png", title=f"{how}{shown}")
            result.contact_sheet = out_dir / "contact_sheet.png"
    return result
