"""A pruned model's architecture, stored in its checkpoint as plain values (weights_only-loadable).

Structured pruning changes layer widths, nothing else: the model is rebuilt with the registry's
builder (as for any checkpoint), then every module listed in `checkpoint["pruning"]["structure"]`
gets its recorded width attributes (Conv2d in/out channels and groups, Linear in/out features,
norm layers' feature counts) and every parameter / buffer whose stored shape differs is replaced
by an empty tensor of the stored shape before `load_state_dict` fills it. The stored shapes come
from the weights themselves, so a checkpoint cannot make cnnkit allocate more than it holds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnkit.errors import CheckpointError

# the constructor attributes that carry a layer's width, per module type
WIDTH_ATTRS: dict[type, tuple[str, ...]] = {
    nn.Conv2d: ("in_channels", "out_channels", "groups"),
    nn.ConvTranspose2d: ("in_channels", "out_channels", "groups"),
    nn.Linear: ("in_features", "out_features"),
    nn.BatchNorm2d: ("num_features",),
    nn.BatchNorm1d: ("num_features",),
    nn.GroupNorm: ("num_groups", "num_channels"),
    nn.LayerNorm: ("normalized_shape",),
    nn.PReLU: ("num_parameters",),
}
MAX_WIDTH = 1_000_000


def _attrs(m: nn.Module) -> tuple[str, ...]:
    return next((a for t, a in WIDTH_ATTRS.items() if isinstance(m, t)), ())


def record_structure(pruned: nn.Module, fresh: nn.Module) -> dict[str, dict]:
    """{module name: {attribute: value}} for every module whose width attributes differ from `fresh`'s."""
    fresh_mods = dict(fresh.named_modules())
    out: dict[str, dict] = {}
    for name, m in pruned.named_modules():
        attrs = _attrs(m)
        f = fresh_mods.get(name)
        if not attrs or f is None:
            continue
        now = {a: _plain(getattr(m, a)) for a in attrs}
        if now != {a: _plain(getattr(f, a)) for a in attrs}:
            out[name] = {"type": type(m).__name__, **now}
    return out


def _plain(v):
    return [int(x) for x in v] if isinstance(v, (tuple, list, torch.Size)) else int(v)


def apply_structure(model: nn.Module, structure: dict, state_dict: dict, path: str | Path = "checkpoint") -> nn.Module:
    """Give the freshly built `model` the recorded widths and the stored tensors' shapes (in place)."""
    if not isinstance(structure, dict):
        raise CheckpointError(f"{path}: pruning.structure must be a mapping of module names to widths")
    mods = dict(model.named_modules())
    for name, spec in structure.items():
        m = mods.get(name) if isinstance(name, str) else None
        if m is None or not isinstance(spec, dict) or spec.get("type") != type(m).__name__:
            raise CheckpointError(
                f"{path}: pruning.structure names {str(name)[:80]!r}, which is not a {spec.get('type') if isinstance(spec, dict) else 'module'} of {type(model).__name__}; the file does not belong to this model"
            )
        for a in _attrs(m):
            v = spec.get(a)
            vals = v if isinstance(v, list) else [v]
            if not all(isinstance(x, int) and not isinstance(x, bool) and 1 <= x <= MAX_WIDTH for x in vals):
                raise CheckpointError(
                    f"{path}: pruning.structure.{name}.{a} is {str(v)[:40]}, not a width 1..{MAX_WIDTH:,}"
                )
            setattr(m, a, tuple(v) if isinstance(v, list) else v)
    for key, t in model.state_dict().items():
        w = state_dict.get(key)
        if not isinstance(w, torch.Tensor) or tuple(w.shape) == tuple(t.shape):
            continue
        owner_name, _, leaf = key.rpartition(".")
        owner = mods.get(owner_name)
        if owner is None:
            continue
        new = torch.empty(w.shape, dtype=t.dtype, device=t.device)
        if leaf in owner._parameters:
            owner._parameters[leaf] = nn.Parameter(new, requires_grad=owner._parameters[leaf].requires_grad)
        elif leaf in owner._buffers:
            owner._buffers[leaf] = new
    return model


def apply_pruning(model: nn.Module, ckpt: dict, path: str | Path = "checkpoint") -> nn.Module:
    """`apply_structure` for a checkpoint with a `pruning` entry; other checkpoints pass through."""
    pruning = ckpt.get("pruning")
    if pruning is None:
        return model
    if not isinstance(pruning, dict):
        raise CheckpointError(f"{path}: pruning must be a mapping (structure, method, parent...)")
    return apply_structure(model, pruning.get("structure", {}), ckpt["state_dict"], path)


def apply_file_pruning(model: nn.Module, path: str | Path, state_dict: dict) -> None:
    """`model.weights` naming a pruned checkpoint (e.g. `cnnkit prune`'s recovery run): give the fresh
    `model` its recorded widths before the weights load, and remember them as `model.cnnkit_pruning` so
    the run's own checkpoints (checkpoint.make_checkpoint) rebuild from themselves. Other files pass."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - read_state_dict already read it; not a checkpoint dict here
        return
    pruning = obj.get("pruning") if isinstance(obj, dict) else None
    if pruning is None:
        return
    if not isinstance(pruning, dict):
        raise CheckpointError(f"{path}: pruning must be a mapping (structure, method, parent...)")
    apply_structure(model, pruning.get("structure", {}), state_dict, path)
    model.cnnkit_pruning = {"structure": pruning.get("structure", {}), "parent": str(pruning.get("parent", ""))}  # type: ignore[assignment]
