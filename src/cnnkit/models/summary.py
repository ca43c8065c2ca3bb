"""Model summaries: per-layer output shape, parameters, MACs and receptive field.

MACs come from `torch.utils.flop_counter.FlopCounterMode` (FLOPs / 2), not from hand-written
formulas. Everything runs on the "meta" device: shapes and counts without computing or
allocating anything, so a summary of a 138 M-parameter VGG at 224 px takes a moment.

The receptive field of each layer's output is tracked through every tensor operation
(convolutions and poolings grow it by (kernel - 1) x dilation x jump, strides multiply the
jump, element-wise operations such as a residual addition take the larger of their inputs,
global pooling covers the whole input): the side, in input pixels, of the window that one
output position can see.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import cast

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

aten = torch.ops.aten
_POOLS = {aten.max_pool2d_with_indices, aten.max_pool2d, aten.avg_pool2d}
_ADAPTIVE = {aten._adaptive_avg_pool2d, aten.adaptive_max_pool2d, aten.adaptive_avg_pool2d}
_REDUCE = {aten.mean, aten.amax, aten.sum, aten.amin}


def _pair(v, i=-1):
    return v[i] if isinstance(v, (list, tuple)) else v


class ReceptiveFieldMode(TorchDispatchMode):
    """Records (receptive field, jump) for every tensor an operation produces."""

    def __init__(self):
        super().__init__()
        self.info: dict[int, tuple[int, int]] = {}
        self._alive: list[torch.Tensor] = []  # keeps ids unique while the mode is active

    def mark(self, t: torch.Tensor) -> None:
        self.info[id(t)] = (1, 1)
        self._alive.append(t)

    def rf(self, t) -> int | None:
        return self.info.get(id(t), (None, None))[0] if isinstance(t, torch.Tensor) else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        known = [
            self.info[id(t)] for t in tree_leaves((args, kwargs)) if isinstance(t, torch.Tensor) and id(t) in self.info
        ]
        if not known:
            return out
        rf, jump = max(known)
        packet = func.overloadpacket
        x = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if packet is aten.convolution:
            k, stride, dilation = args[1].shape[-1], _pair(args[3]), _pair(args[5])
            rf, jump = rf + (k - 1) * dilation * jump, jump * stride
        elif packet in _POOLS:
            k = _pair(args[1])
            stride = _pair(args[2]) if len(args) > 2 and args[2] else k
            dilation = _pair(args[4]) if packet is not aten.avg_pool2d and len(args) > 4 else 1
            rf, jump = rf + (k - 1) * dilation * jump, jump * stride
        elif packet in _ADAPTIVE and x is not None:
            size_in, size_out = x.shape[-1], max(1, _pair(args[1]))
            k, stride = math.ceil(size_in / size_out), max(1, size_in // size_out)
            rf, jump = rf + (k - 1) * jump, jump * stride
        elif (
            packet in _REDUCE
            and x is not None
            and x.dim() == 4
            and len(args) > 1
            and args[1] is not None
            and {d % 4 for d in (args[1] if isinstance(args[1], (list, tuple)) else [args[1]])} >= {2, 3}
        ):
            rf, jump = rf + (x.shape[-1] - 1) * jump, jump * x.shape[-1]  # global pooling
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.info[id(t)] = (rf, jump)
                self._alive.append(t)
        return out


@dataclass
class LayerRow:
    name: str
    kind: str
    shape: tuple[int, ...]  # output shape without the batch dimension
    params: int
    macs: int
    rf: int | None


@dataclass
class Summary:
    title: str
    input_shape: tuple[int, int, int]
    rows: list[LayerRow] = field(default_factory=list)
    params: int = 0
    trainable: int = 0
    macs: int = 0
    batch_size: int = 1

    @property
    def activation_bytes(self) -> int:
        """fp32 bytes of every layer's output for one batch: what training keeps for backward (an upper bound)."""
        return 4 * self.batch_size * sum(math.prod(r.shape) for r in self.rows)

    def to_dict(self) -> dict:
        return {
            "model": self.title,
            "input": list(self.input_shape),
            "params": self.params,
            "trainable_params": self.trainable,
            "macs": self.macs,
            "batch_size": self.batch_size,
            "activation_bytes": self.activation_bytes,
            "layers": [
                {
                    "name": r.name,
                    "type": r.kind,
                    "output": list(r.shape),
                    "params": r.params,
                    "macs": r.macs,
                    "receptive_field": r.rf,
                }
                for r in self.rows
            ],
        }

    def format(self) -> str:
        width = max([len(r.name) for r in self.rows] + [5])
        c, h, w = self.input_shape
        lines = [
            f"{self.title}: input {c}x{h}x{w}",
            f"{'layer':<{width}}  {'type':<20} {'output':>16} {'params':>12} {'MACs':>10} {'RF':>5}",
        ]
        for r in self.rows:
            shape = "x".join(str(s) for s in r.shape)
            lines.append(
                f"{r.name:<{width}}  {r.kind[:20]:<20} {shape:>16} {r.params:>12,} {human(r.macs):>10} {r.rf if r.rf is not None else '-':>5}"
            )
        lines += [
            "",
            f"parameters: {self.params:,} ({self.trainable:,} trainable), {human_bytes(4 * self.params)} in fp32",
            f"MACs per image: {human(self.macs)} ({self.macs:,})",
            f"activation memory for a batch of {self.batch_size}: {human_bytes(self.activation_bytes)} (fp32 outputs of every layer, kept for backward)",
        ]
        return "\n".join(lines)


def human(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:.0f}"


def human_bytes(n: float) -> str:
    for unit, div in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """MACs of one forward pass of one image, on the meta device (nothing is computed)."""
    return summarize(model, input_shape, per_layer=False).macs


def summarize(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    *,
    batch_size: int = 1,
    title: str | None = None,
    per_layer: bool = True,
) -> Summary:
    """Summarise `model` for one input of shape (C, H, W). The model itself is not changed
    (a meta-device copy runs)."""
    params = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    meta = model if _is_meta(model) else copy.deepcopy(model).to("meta")
    meta.eval()
    summary = Summary(
        title or type(model).__name__,
        cast("tuple[int, int, int]", tuple(input_shape)),
        params=params,
        trainable=trainable,
        batch_size=batch_size,
    )
    names = {m: n for n, m in meta.named_modules()}
    rf_mode = ReceptiveFieldMode()
    calls: list[tuple[nn.Module, tuple[int, ...], int | None]] = []  # (module, output shape, receptive field)

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor):
            calls.append((module, tuple(output.shape[1:]), rf_mode.rf(output)))

    handles = [m.register_forward_hook(hook) for m in meta.modules() if not list(m.children())] if per_layer else []
    counter = FlopCounterMode(display=False)
    try:
        x = torch.zeros(1, *input_shape, device="meta")
        if per_layer:
            with torch.no_grad(), counter, rf_mode:
                rf_mode.mark(x)
                meta(x)
        else:
            with torch.no_grad(), counter:
                meta(x)
    finally:
        for h in handles:
            h.remove()
    summary.macs = counter.get_total_flops() // 2
    flops = counter.get_flop_counts()
    root = type(meta).__name__
    for module, shape, rf in calls:
        name = names.get(module, "?")
        macs = sum(flops.get(f"{root}.{name}", {}).values()) // 2
        n_params = sum(p.numel() for p in module.parameters(recurse=False))
        summary.rows.append(LayerRow(name, type(module).__name__, shape, n_params, macs, rf))
    return summary


def _is_meta(model: nn.Module) -> bool:
    p = next(model.parameters(), None)
    return p is not None and p.device.type == "meta"
