"""A constrained grammar over the layer-spec language, so architecture search yields specs a
person can read and re-train by hand (`cnnkit train --model "<spec>"`):

    net    := stem stage{stages} gap [dropout(p)] fc
    stem   := conv(width, 3)-bn-relu
    stage  := block{depth}                       stage i has width * widen^i channels
    block  := conv(w, kernel)-bn-relu[-se(r) | -cbam(r)]      (block: conv; a maxpool(2) first
                                                               when it opens stage 2, 3, ...)
            | res(w, stride, attn=se|cbam)                    (block: res; stride 2 when it opens
                                                               stage 2, 3, ...; 3x3 kernels)

Every choice is a value of the space (fixed, a list or a distribution; search/space.py), so
every sampled spec is well-formed; only an input too small for `stages - 1` halvings fails,
and the study records that trial as not trainable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnnkit.errors import ConfigError

# key -> (default, check(value) -> error text or None)
ARCH_KEYS = ("stages", "depth", "width", "widen", "kernel", "block", "attention", "reduction", "dropout")
BLOCKS = ("conv", "res")
ATTENTIONS = ("none", "se", "cbam")


def _int_in(lo: int, hi: int):
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"an integer from {lo} to {hi}"

    return check


def _odd_kernel(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 11 and v % 2 == 1
    return None if ok else "an odd kernel size from 1 to 11 (give a list such as [3, 5, 7])"


def _one_of(options: tuple[str, ...]):
    def check(v: Any) -> str | None:
        return None if (v if v is not None else "none") in options else f"one of {', '.join(options)}"

    return check


def _fraction(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
    return None if ok else "a dropout probability in [0, 1)"


DEFAULTS: dict[str, Any] = {
    "stages": 2,
    "depth": 1,
    "width": 16,
    "widen": 2,
    "kernel": 3,
    "block": "conv",
    "attention": "none",
    "reduction": 4,
    "dropout": 0.0,
}
CHECKS = {
    "stages": _int_in(1, 6),
    "depth": _int_in(1, 4),
    "width": _int_in(1, 1024),
    "widen": _int_in(1, 4),
    "kernel": _odd_kernel,
    "block": _one_of(BLOCKS),
    "attention": _one_of(ATTENTIONS),
    "reduction": _int_in(1, 64),
    "dropout": _fraction,
}


def build_spec(
    stages: int = 2,
    depth: int = 1,
    width: int = 16,
    widen: int = 2,
    kernel: int = 3,
    block: str = "conv",
    attention: str | None = "none",
    reduction: int = 4,
    dropout: float = 0.0,
) -> str:
    """The spec string of one point of the grammar."""
    attention = attention or "none"
    layers = [f"conv({width},3)", "bn", "relu"]  # stem
    for s in range(stages):
        w = width * widen**s
        for d in range(depth):
            opens = s > 0 and d == 0  # halve the map where a stage starts
            if block == "res":
                attn = f",attn={attention}" if attention != "none" else ""
                layers.append(f"res({w},stride={2 if opens else 1}{attn})")
            else:
                layers += (["maxpool(2)"] if opens else []) + [f"conv({w},{kernel})", "bn", "relu"]
                if attention != "none":
                    layers.append(f"{attention}({reduction})")
    layers.append("gap")
    if dropout > 0:
        layers.append(f"dropout({dropout:.3g})")
    layers.append("fc")
    return "-".join(layers)


@dataclass
class ArchSpace:
    """The architecture part of a search space: one Param (search/space.py) per grammar key."""

    params: dict[str, Any]  # key -> Param

    @classmethod
    def from_params(cls, params: dict[str, Any], source: str) -> ArchSpace:
        for key, p in params.items():
            if key not in CHECKS:
                raise ConfigError(
                    f"{source}: architecture: unknown key {key!r}; the grammar's keys are {', '.join(ARCH_KEYS)}"
                )
            if key == "kernel" and p.kind in ("int", "logint"):
                raise ConfigError(f"{source}: architecture: kernel: {CHECKS['kernel'](0)}")
            for v in p.values():
                why = CHECKS[key](int(v) if p.kind in ("int", "logint") else v)
                if why is not None:
                    raise ConfigError(f"{source}: architecture: {key}: expected {why}, got {v!r}")
        return cls(params)

    def choose(self, trial: Any) -> dict[str, Any]:
        return {k: self.params[k].suggest(trial) if k in self.params else DEFAULTS[k] for k in ARCH_KEYS}

    def suggest(self, trial: Any) -> str:
        return build_spec(**self.choose(trial))
