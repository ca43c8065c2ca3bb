"""A readable layer-spec language: a CNN written the way it is drawn.

    conv(32,3)-bn-relu-maxpool(2)-conv(64,3,stride=1,padding=same)-bn-relu-gap-dropout(0.3)-fc(10)

or the same as a YAML list (``[conv(32,3), bn, relu, ...]``). Layers are joined by ``-``;
arguments are positional or ``key=value``. Parsed by hand (never `eval`):

    conv(out, kernel, stride=1, padding=same|valid|N, bias=auto)   convolution
    dwconv(kernel, stride=1, padding=same|valid|N, mult=1)         depthwise convolution
    bn                                                             batch norm (2-d or 1-d)
    relu | gelu | silu | sigmoid | tanh                            activations
    maxpool(kernel=2, stride=kernel, padding=0) | avgpool(...)     pooling
    gap                                                            global average pool -> vector
    dropout(p=0.5) | flatten                                       regularisation, reshaping
    fc(out)                                                        fully connected (a feature map is flattened first)
    res(out, stride=1)                                             ResNet basic block (conv-bn-relu-conv-bn, + x, relu)
    res(conv(64,3)-bn-relu-conv(64,3)-bn)                          any layers, + x (a 1x1 projection if the shape changes)
    res(out, stride=1, attn=se|cbam)                               the basic block with an attention block before the addition
    se(r=16)                                                       Squeeze-and-Excitation: channels re-weighted (models/attention.py)
    cbam(r=16, kernel=7)                                           CBAM: channel, then spatial attention

Padding defaults to kernel//2 ("same" at stride 1); a convolution's bias defaults to off
when batch norm follows. A classifier ``fc(num_classes)`` is appended when the spec does not
end in ``fc``; a final ``fc`` without a number means ``fc(num_classes)``.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn

from cnnkit.errors import ConfigError
from cnnkit.models._registry import register_model
from cnnkit.models.attention import CBAM, SqueezeExcite
from cnnkit.models.base import ClassifierBase

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}

# name -> (expected form, parameter names in positional order, how many are required)
FORMS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "conv": (
        "conv(out_channels, kernel, stride=1, padding=same|valid|N, bias=true|false)",
        ("out", "kernel", "stride", "padding", "bias"),
        2,
    ),
    "dwconv": ("dwconv(kernel, stride=1, padding=same|valid|N, mult=1)", ("kernel", "stride", "padding", "mult"), 1),
    "bn": ("bn", (), 0),
    **{a: (a, (), 0) for a in ACTIVATIONS},
    "maxpool": ("maxpool(kernel=2, stride=kernel, padding=0)", ("kernel", "stride", "padding"), 0),
    "avgpool": ("avgpool(kernel=2, stride=kernel, padding=0)", ("kernel", "stride", "padding"), 0),
    "gap": ("gap", (), 0),
    "dropout": ("dropout(p) with 0 <= p < 1", ("p",), 0),
    "flatten": ("flatten", (), 0),
    "fc": ("fc(out_features)", ("out",), 0),
    "res": ("res(out_channels, stride=1, attn=se|cbam) or res(<layers joined by ->)", ("out", "stride", "attn"), 1),
    "se": ("se(r=16): reduction r >= 1", ("r",), 0),
    "cbam": ("cbam(r=16, kernel=7): reduction r >= 1, odd kernel", ("r", "kernel"), 0),
}

DEFAULT_SPEC = "conv(32,3)-bn-relu-maxpool(2)-conv(64,3)-bn-relu-maxpool(2)-conv(128,3)-bn-relu-gap-dropout(0.2)-fc"


class SpecError(ConfigError):
    """A spec that does not parse or does not fit its input; the message points at the token."""


@dataclass
class Token:
    name: str
    args: list[Any]
    kwargs: dict[str, Any]
    text: str  # as written (spaces removed)
    pos: int  # offset in the whole spec string
    body: list[Token] | None = field(default=None)  # res(<layers>)

    def get(self, key: str, default: Any = None) -> Any:
        names = FORMS[self.name][1]
        if key in self.kwargs:
            return self.kwargs[key]
        i = names.index(key)
        return self.args[i] if i < len(self.args) else default


def _pointer(spec: str, pos: int, length: int) -> str:
    return f"\n  {spec}\n  {' ' * pos}{'^' * max(1, length)}"


def _fail(spec: str, tok_text: str, pos: int, why: str) -> SpecError:
    return SpecError(f"model spec: {why}{_pointer(spec, pos, len(tok_text))}")


def _split(text: str, sep: str, offset: int, spec: str) -> list[tuple[str, int]]:
    """Split at `sep` outside parentheses; (piece, absolute position) pairs."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise _fail(spec, ")", offset + i, "unmatched ')'")
        elif ch == sep and depth == 0:
            pieces.append((text[start:i], offset + start))
            start = i + 1
    if depth > 0:
        raise _fail(spec, text[start:], offset + start, "unclosed '(': every '(' needs a ')'")
    pieces.append((text[start:], offset + start))
    return pieces


def _value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if re.fullmatch(r"[+]?\d+", raw):
        return int(raw)
    if re.fullmatch(r"[+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", raw):
        return float(raw)
    if re.fullmatch(r"[A-Za-z_]\w*", raw):
        return low
    raise ValueError(raw)


def parse_spec(spec: str | list) -> list[Token]:
    """Parse a spec string (or a list of layer strings) into tokens; errors point at the token."""
    if isinstance(spec, (list, tuple)):
        if not all(isinstance(s, str) for s in spec):
            raise SpecError(f"model spec: a YAML list spec holds layer strings such as 'conv(32,3)'; got {spec!r}")
        spec = "-".join(s.strip() for s in spec)
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError("model spec: empty; write layers joined by '-', e.g. 'conv(32,3)-bn-relu-gap-fc(10)'")
    spec = re.sub(r"\s+", "", spec)
    return _parse(spec, spec, 0)


def _parse(text: str, spec: str, offset: int) -> list[Token]:
    tokens = []
    for piece, pos in _split(text, "-", offset, spec):
        if not piece:
            raise _fail(spec, "-", max(pos - 1, 0), "empty layer between '-' (or a '-' at an end)")
        m = re.fullmatch(r"([A-Za-z_]\w*)(?:\((.*)\))?", piece)
        if not m:
            raise _fail(spec, piece, pos, f"cannot read layer {piece!r}: expected name or name(args), e.g. conv(32,3)")
        name, inner = m.group(1).lower(), m.group(2)
        if name not in FORMS:
            close = difflib.get_close_matches(name, list(FORMS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise _fail(spec, piece, pos, f"unknown layer {m.group(1)!r}.{hint} Known: {', '.join(FORMS)}")
        form, names, required = FORMS[name]
        inner_pos = pos + len(m.group(1)) + 1
        if name == "res" and inner and re.match(r"[A-Za-z_]", inner):  # res(<layers>)
            body = _parse(inner, spec, inner_pos)
            tokens.append(Token(name, [], {}, piece, pos, body))
            continue
        args, kwargs = [], {}
        if inner is not None and inner != "":
            for raw, _apos in _split(inner, ",", inner_pos, spec):
                key, eq, val = raw.partition("=")
                try:
                    v = _value(val if eq else raw)
                except ValueError:
                    raise _fail(spec, piece, pos, f"{piece}: cannot read argument {raw!r}; expected {form}") from None
                if eq:
                    if key not in names:
                        raise _fail(spec, piece, pos, f"{piece}: unknown argument {key!r}; expected {form}")
                    kwargs[key] = v
                elif kwargs:
                    raise _fail(spec, piece, pos, f"{piece}: positional argument after key=value; expected {form}")
                else:
                    args.append(v)
        elif inner == "":
            raise _fail(spec, piece, pos, f"{piece}: empty parentheses; expected {form}")
        given = len(args) + len([k for k in kwargs if names.index(k) >= len(args)])
        if len(args) > len(names) or given < required or any(names.index(k) < len(args) for k in kwargs):
            raise _fail(spec, piece, pos, f"{piece}: wrong arguments; expected {form}")
        tokens.append(Token(name, args, kwargs, piece, pos))
    return tokens


class Residual(nn.Module):
    """y = body(x) + shortcut(x); the shortcut is a 1x1 conv + BN when the shape changes."""

    def __init__(self, body: nn.Module, shortcut: nn.Module | None, post: nn.Module | None = None):
        super().__init__()
        self.body = body
        self.shortcut = shortcut if shortcut is not None else nn.Identity()
        self.post = post if post is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.body(x) + self.shortcut(x))


Shape = tuple  # (C, H, W) with H, W None when the input size is unknown, or (N,) for a vector


def _int(tok: Token, spec: str, key: str, value: Any, low: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise _fail(
            spec,
            tok.text,
            tok.pos,
            f"{tok.text}: {key} must be an integer >= {low}, got {value!r}; expected {FORMS[tok.name][0]}",
        )
    return value


def _out_size(size: int | None, k: int, s: int, p: int) -> int | None:
    return None if size is None else (size + 2 * p - k) // s + 1


class _Builder:
    def __init__(self, spec: str, input_desc: str):
        self.spec, self.input_desc = spec, input_desc

    def fail(self, tok: Token, why: str) -> SpecError:
        return _fail(self.spec, tok.text, tok.pos, why)

    def build(self, tokens: list[Token], shape: Shape) -> tuple[list[tuple[nn.Module, Token, Shape]], Shape]:
        out = []
        for i, tok in enumerate(tokens):
            followed_by_bn = i + 1 < len(tokens) and tokens[i + 1].name == "bn"
            module, shape = self.layer(tok, shape, followed_by_bn)
            out.append((module, tok, shape))
        return out, shape

    def spatial(self, tok: Token, shape: Shape) -> tuple[int, int | None, int | None]:
        if len(shape) != 3:
            raise self.fail(
                tok,
                f"{tok.text} needs a feature map, but the layers before it made a vector of {shape[0]} (after gap / flatten / fc)",
            )
        return shape

    def check(self, tok: Token, before: Shape, after: Shape) -> Shape:
        if len(after) == 3 and after[1] is not None and (after[1] < 1 or after[2] < 1):
            raise self.fail(
                tok,
                f"{tok.text} turns its {before[1]}x{before[2]} input into {after[1]}x{after[2]}: the image collapses to nothing (model input {self.input_desc}); use a larger input, fewer poolings or padding",
            )
        return after

    def conv_geometry(self, tok: Token, k: int, s: int, pad: Any) -> tuple[Any, int]:
        if pad is None:
            return k // 2, k // 2
        if pad == "same":
            if s != 1:
                raise self.fail(
                    tok, f"{tok.text}: padding=same needs stride=1; give padding=N for a strided convolution"
                )
            if k % 2 == 0:
                raise self.fail(tok, f"{tok.text}: padding=same needs an odd kernel here")
            return "same", k // 2
        if pad == "valid":
            return 0, 0
        p = _int(tok, self.spec, "padding", pad, low=0)
        return p, p

    def layer(self, tok: Token, shape: Shape, followed_by_bn: bool) -> tuple[nn.Module, Shape]:
        name, spec = tok.name, self.spec
        if name in ("conv", "dwconv"):
            c, h, w = self.spatial(tok, shape)
            k = _int(tok, spec, "kernel", tok.get("kernel"))
            s = _int(tok, spec, "stride", tok.get("stride", 1))
            pad, p = self.conv_geometry(tok, k, s, tok.get("padding"))
            if name == "conv":
                out = _int(tok, spec, "out_channels", tok.get("out"))
                bias = tok.get("bias", not followed_by_bn)
                module: nn.Module = nn.Conv2d(c, out, k, stride=s, padding=pad, bias=bool(bias))
            else:
                out = c * _int(tok, spec, "mult", tok.get("mult", 1))
                module = nn.Conv2d(c, out, k, stride=s, padding=pad, groups=c, bias=not followed_by_bn)
            return module, self.check(tok, shape, (out, _out_size(h, k, s, p), _out_size(w, k, s, p)))
        if name == "bn":
            return (nn.BatchNorm2d(shape[0]) if len(shape) == 3 else nn.BatchNorm1d(shape[0])), shape
        if name in ACTIVATIONS:
            return ACTIVATIONS[name](), shape
        if name in ("maxpool", "avgpool"):
            c, h, w = self.spatial(tok, shape)
            k = _int(tok, spec, "kernel", tok.get("kernel", 2))
            s = _int(tok, spec, "stride", tok.get("stride", k))
            p = _int(tok, spec, "padding", tok.get("padding", 0), low=0)
            if p > k // 2:
                raise self.fail(tok, f"{tok.text}: padding must be at most half the kernel ({k // 2})")
            module = nn.MaxPool2d(k, s, p) if name == "maxpool" else nn.AvgPool2d(k, s, p)
            return module, self.check(tok, shape, (c, _out_size(h, k, s, p), _out_size(w, k, s, p)))
        if name == "gap":
            c, _, _ = self.spatial(tok, shape)
            return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (c,)  # (B, C)
        if name == "dropout":
            p = tok.get("p", 0.5)
            if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
                raise self.fail(tok, f"{tok.text}: expected {FORMS['dropout'][0]}")
            return nn.Dropout(float(p)), shape
        if name == "flatten":
            return nn.Flatten(), (self.flat_size(tok, shape),)
        if name == "fc":
            out = _int(tok, spec, "out_features", tok.get("out"))
            n = self.flat_size(tok, shape)
            linear = nn.Linear(n, out)
            return (nn.Sequential(nn.Flatten(), linear) if len(shape) == 3 else linear), (out,)
        if name == "res":
            return self.residual(tok, shape)
        if name in ("se", "cbam"):
            c, _h, _w = self.spatial(tok, shape)
            r = _int(tok, spec, "r", tok.get("r", 16))
            if name == "se":
                return SqueezeExcite(c, r), shape
            k = _int(tok, spec, "kernel", tok.get("kernel", 7))
            if k % 2 == 0:
                raise self.fail(tok, f"{tok.text}: the spatial kernel must be odd (it keeps the map's size)")
            return CBAM(c, r, k), shape
        raise AssertionError(name)  # pragma: no cover - FORMS lists every name

    def flat_size(self, tok: Token, shape: Shape) -> int:
        if len(shape) == 1:
            return shape[0]
        c, h, w = shape
        if h is None:
            raise self.fail(
                tok,
                f"{tok.text} flattens a {c}-channel feature map whose size depends on the input: give the input size (model.kwargs.image_size) or use gap",
            )
        return c * h * w

    def residual(self, tok: Token, shape: Shape) -> tuple[nn.Module, Shape]:
        c, _h, _w = self.spatial(tok, shape)
        post = None
        if tok.body is None:  # res(out, stride): the ResNet basic block
            out = _int(tok, self.spec, "out_channels", tok.get("out"))
            s = _int(tok, self.spec, "stride", tok.get("stride", 1))
            body = [
                Token("conv", [out, 3, s, 1], {}, tok.text, tok.pos),
                Token("bn", [], {}, tok.text, tok.pos),
                Token("relu", [], {}, tok.text, tok.pos),
                Token("conv", [out, 3], {}, tok.text, tok.pos),
                Token("bn", [], {}, tok.text, tok.pos),
            ]
            attn = tok.get("attn")
            if attn is not None:
                if attn not in ("se", "cbam"):
                    raise self.fail(tok, f"{tok.text}: attn must be se or cbam, got {attn!r}")
                body.append(Token(attn, [], {}, tok.text, tok.pos))  # before the addition, as in SE-ResNet
            post = nn.ReLU()
        else:
            body = tok.body
        layers, out_shape = self.build(body, shape)
        if len(out_shape) != 3:
            raise self.fail(tok, f"{tok.text}: a residual block must keep a feature map (no gap / flatten / fc inside)")
        stride = math.prod(
            t.get("stride", t.get("kernel", 2) if t.name.endswith("pool") else 1)
            for t in _flat(body)
            if t.name in ("conv", "dwconv", "maxpool", "avgpool")
        )
        shortcut = None
        if out_shape[0] != c or stride != 1:
            shortcut = nn.Sequential(
                nn.Conv2d(c, out_shape[0], 1, stride=stride, bias=False), nn.BatchNorm2d(out_shape[0])
            )  # projection
        return Residual(nn.Sequential(*(m for m, _, _ in layers)), shortcut, post), out_shape


def _flat(tokens: list[Token]) -> list[Token]:
    return [t for tok in tokens for t in ([tok] if tok.body is None else [tok, *_flat(tok.body)])]


class SpecNet(ClassifierBase):
    """A network built from a layer spec: `layers` up to the last feature map are the features,
    the rest (gap / flatten / dropout / fc) the head; the last fc is the classifier."""

    def __init__(
        self, spec: str | list = DEFAULT_SPEC, num_classes: int = 10, in_chans: int = 1, image_size: int | None = None
    ):
        super().__init__()
        tokens = parse_spec(spec)
        self.spec_string = "-".join(t.text for t in tokens)
        last = tokens[-1]
        if last.name == "fc" and last.get("out") is None:
            last.args = [num_classes]
        elif last.name != "fc":
            tokens.append(Token("fc", [num_classes], {}, "fc", len(self.spec_string)))
        elif last.get("out") != num_classes:
            raise _fail(
                self.spec_string,
                last.text,
                last.pos,
                f"the spec ends in {last.text} but the model needs {num_classes} outputs (num_classes); write 'fc' without a number to use num_classes",
            )
        self.input_desc = f"{in_chans}x{image_size}x{image_size}" if image_size else f"{in_chans}xHxW"
        layers, _ = _Builder(self.spec_string, self.input_desc).build(tokens, (in_chans, image_size, image_size))
        n_feat = max(
            (i + 1 for i, (_, t, s) in enumerate(layers) if len(s) == 3 and t.name not in ("dropout",)), default=0
        )
        if n_feat == 0:
            raise SpecError(
                f"model spec {self.spec_string!r}: no convolution or pooling layer, so no feature map; start with e.g. conv(32,3)"
            )
        self.tokens = [t.text for _, t, _ in layers]
        self.features = nn.Sequential(*(m for m, _, _ in layers[:n_feat]))
        self.head = nn.Sequential(*(m for m, _, _ in layers[n_feat:]))
        self.target_layer = f"features.{n_feat - 1}"
        self.num_features = layers[n_feat - 1][2][0]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.features):
            try:
                x = layer(x)
            except RuntimeError as e:
                raise SpecError(
                    f"model spec: layer {i + 1} {self.tokens[i]!r} fails on input of shape {tuple(x.shape[1:])} (model input {self.input_desc}): {str(e).splitlines()[0]}"
                ) from e
            if x.numel() == 0:
                raise SpecError(
                    f"model spec: layer {i + 1} {self.tokens[i]!r} collapses its input to shape {tuple(x.shape[1:])} (model input {self.input_desc}); use a larger input or fewer poolings"
                )
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def reset_classifier(self, num_classes: int) -> None:
        fc = self.head[-1]
        if isinstance(fc, nn.Sequential):  # implicit flatten + linear
            fc[-1] = nn.Linear(cast(nn.Linear, fc[-1]).in_features, num_classes)
        else:
            self.head[-1] = nn.Linear(cast(nn.Linear, fc).in_features, num_classes)


@register_model(
    "spec",
    description="a network from a layer spec, e.g. 'conv(32,3)-bn-relu-gap-fc' (also: pass the spec as the model name)",
    default_input=(1, 28, 28),
)
def spec(
    num_classes: int = 10, in_chans: int = 1, spec: str | list = DEFAULT_SPEC, image_size: int | None = None
) -> SpecNet:
    return SpecNet(spec, num_classes, in_chans, image_size=image_size)
