"""`cnnkit conv-demo`: one convolution worked out by hand, as the textbooks teach it.

Plain Python on small lists (no torch): the same cross-correlation that
`torch.nn.functional.conv2d` computes, with every step written out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnkit.errors import ConfigError

Matrix = list[list[float]]


def parse_matrix(text: str, name: str = "matrix") -> Matrix:
    """Rows separated by `;`, values by `,` (spaces allowed): "3,5,2;9,7,5" -> [[3,5,2],[9,7,5]]."""
    rows = [r.strip() for r in text.strip().strip(";").split(";")]
    if not text.strip() or not rows or any(r == "" for r in rows):
        raise ConfigError(
            f"--{name} {text!r}: give rows separated by ';' and values by ',', e.g. \"3,5,2;9,7,5;2,0,6\""
        )
    out: Matrix = []
    for i, row in enumerate(rows, 1):
        values = []
        for j, cell in enumerate(row.split(","), 1):
            cell = cell.strip()
            try:
                v = float(cell)
            except ValueError:
                raise ConfigError(f"--{name}: row {i}, value {j} is {cell!r}, not a number") from None
            if not math.isfinite(v):
                raise ConfigError(f"--{name}: row {i}, value {j} is {cell!r}; values must be finite numbers")
            values.append(v)
        out.append(values)
    widths = {len(r) for r in out}
    if len(widths) != 1:
        lengths = ", ".join(f"row {i} has {len(r)}" for i, r in enumerate(out, 1))
        raise ConfigError(
            f"--{name}: rows have different lengths ({lengths}); every row needs the same number of values"
        )
    return out


def pad(m: Matrix, p: int) -> Matrix:
    w = len(m[0]) + 2 * p
    return [[0.0] * w for _ in range(p)] + [[0.0] * p + list(r) + [0.0] * p for r in m] + [[0.0] * w for _ in range(p)]


def output_size(n: int, k: int, p: int, s: int) -> int:
    """⌊(n − k + 2p) / s⌋ + 1"""
    return (n - k + 2 * p) // s + 1


def conv2d(x: Matrix, k: Matrix, stride: int = 1, padding: int = 0) -> Matrix:
    """Cross-correlation (what deep-learning frameworks call convolution), no kernel flip."""
    xp = pad(x, padding)
    kh, kw = len(k), len(k[0])
    oh, ow = output_size(len(x), kh, padding, stride), output_size(len(x[0]), kw, padding, stride)
    return [
        [sum(xp[i * stride + a][j * stride + b] * k[a][b] for a in range(kh) for b in range(kw)) for j in range(ow)]
        for i in range(oh)
    ]


def relu(m: Matrix) -> Matrix:
    return [[max(0.0, v) for v in r] for r in m]


def max_pool(m: Matrix, size: int = 2) -> Matrix:
    """size x size windows with stride size; a ragged last row / column is dropped (as nn.MaxPool2d does)."""
    return [
        [max(m[i + a][j + b] for a in range(size) for b in range(size)) for j in range(0, len(m[0]) - size + 1, size)]
        for i in range(0, len(m) - size + 1, size)
    ]


def fmt(v: float) -> str:
    if v == int(v):
        return str(int(v))
    return f"{v:.4g}"


def _term(v: float) -> str:
    return f"({fmt(v)})" if v < 0 else fmt(v)


def format_matrix(m: Matrix, indent: str = "  ", mark: tuple[int, int, int, int] | None = None) -> str:
    """Aligned rows; `mark` = (row, col, height, width) puts the window in [brackets]."""
    cells = [[fmt(v) for v in r] for r in m]
    width = max(len(c) for r in cells for c in r)
    lines = []
    for i, r in enumerate(cells):
        parts = []
        for j, c in enumerate(r):
            inside = mark is not None and mark[0] <= i < mark[0] + mark[2] and mark[1] <= j < mark[1] + mark[3]
            parts.append(f"[{c:>{width}}]" if inside else f" {c:>{width}} ")
        lines.append(indent + "".join(parts).rstrip())
    return "\n".join(lines)


@dataclass
class ConvDemo:
    input: Matrix
    kernel: Matrix
    stride: int = 1
    padding: int = 0

    def __post_init__(self) -> None:
        if self.stride < 1:
            raise ConfigError(f"--stride must be at least 1 (got {self.stride})")
        if self.padding < 0:
            raise ConfigError(f"--padding must be 0 or more (got {self.padding})")
        h, w = len(self.input) + 2 * self.padding, len(self.input[0]) + 2 * self.padding
        if len(self.kernel) > h or len(self.kernel[0]) > w:
            raise ConfigError(
                f"the {len(self.kernel)}x{len(self.kernel[0])} kernel does not fit in the {h}x{w} (padded) input; "
                f"use a smaller kernel or more --padding"
            )

    def _sum_text(self, xp: Matrix, i: int, j: int) -> str:
        k, s = self.kernel, self.stride
        terms = [f"{_term(xp[i * s + a][j * s + b])}×{_term(k[a][b])}" for a in range(len(k)) for b in range(len(k[0]))]
        return " + ".join(terms) + f" = {fmt(self.feature_map[i][j])}"

    @property
    def feature_map(self) -> Matrix:
        return conv2d(self.input, self.kernel, self.stride, self.padding)

    def text(self) -> str:
        x, k, s, p = self.input, self.kernel, self.stride, self.padding
        h, w, kh, kw = len(x), len(x[0]), len(k), len(k[0])
        xp = pad(x, p)
        fm = self.feature_map
        oh, ow = len(fm), len(fm[0])
        out = [f"Input ({h}x{w}):", format_matrix(x), "", f"Kernel ({kh}x{kw}):", format_matrix(k), ""]
        if p:
            out += [
                f"Input with padding {p} (zeros around the border, {h + 2 * p}x{w + 2 * p}):",
                format_matrix(xp),
                "",
            ]
        out += [
            "Output size: ⌊(W − K + 2P) / S⌋ + 1",
            f"  width:  ⌊({w} − {kw} + 2·{p}) / {s}⌋ + 1 = ⌊{w - kw + 2 * p} / {s}⌋ + 1 = {ow}",
            f"  height: ⌊({h} − {kh} + 2·{p}) / {s}⌋ + 1 = ⌊{h - kh + 2 * p} / {s}⌋ + 1 = {oh}",
            "",
            f"Sliding window: the kernel visits {oh}x{ow} = {oh * ow} position{'s' if oh * ow != 1 else ''}, "
            f"moving {s} step{'s' if s != 1 else ''} at a time, left to right, top to bottom.",
            "",
            "First output cell (row 1, column 1): the window in [brackets],",
            format_matrix(xp, mark=(0, 0, kh, kw)),
            "multiply each value by the kernel value at the same place and add up:",
        ]
        out.append("  " + self._sum_text(xp, 0, 0))
        if len(k) * len(k[0]) > 1:
            out.append(
                "  = "
                + " + ".join(_term(xp[a][b] * k[a][b]) for a in range(kh) for b in range(kw))
                + f" = {fmt(fm[0][0])}"
            )
        if 1 < oh * ow <= 9:
            out += ["", "The other positions, the same way (window's top-left corner in the padded input):"]
            for i in range(oh):
                for j in range(ow):
                    if i or j:
                        out.append(f"  row {i * s + 1}, column {j * s + 1}: " + self._sum_text(xp, i, j))
        elif oh * ow > 9:
            out += ["", f"The other {oh * ow - 1} positions work the same way; their sums form the feature map."]
        out += ["", f"Feature map ({oh}x{ow}):", format_matrix(fm), ""]
        r = relu(fm)
        out += ["After ReLU, max(0, x) (negative values become 0):", format_matrix(r), ""]
        if oh >= 2 and ow >= 2:
            mp = max_pool(r)
            out += [
                f"After 2x2 max pooling, stride 2 (the largest value of each 2x2 block; {len(mp)}x{len(mp[0])}):",
                format_matrix(mp),
            ]
        else:
            out.append(f"2x2 max pooling needs a feature map of at least 2x2; this one is {oh}x{ow}, so it stops here.")
        return "\n".join(out)
