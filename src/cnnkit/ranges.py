"""Valid ranges of numbers: declared once with the config's types, checked where a number enters.

A config key declares its range in its type, `lr: Annotated[float, Range(0, 10)] = 0.2`; the
config loader checks it for YAML files, `--set` and flags alike. Flags of the other verbs
(`predict --top-k`, `evaluate --batch-size`...) use `flag_type(Range(...))` as their argparse
type, so every refused number reads the same way: what it is, its valid range, what was given.
NaN and infinity are refused everywhere: no key means them.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

from cnnkit.errors import ConfigError


@dataclass(frozen=True)
class Range:
    """lo <= x <= hi (None: unbounded), `lo_open`/`hi_open` for strict bounds; `note` says what 0 or the key means."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    note: str = ""

    def __contains__(self, x: Any) -> bool:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return False
        if self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo):
            return False
        return self.hi is None or (x < self.hi if self.hi_open else x <= self.hi)

    def text(self) -> str:
        """E.g. '(0, 10]', '>= 1', 'any finite number'."""
        if self.lo is not None and self.hi is not None:
            return f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return "any finite number"

    def check(self, value: Any, name: str) -> Any:
        """Return `value` if it lies in the range, else raise ConfigError naming `name` and the range."""
        if value in self:
            return value
        note = f" ({self.note})" if self.note else ""
        where = f"in {self.text()}" if self.lo is not None and self.hi is not None else self.text()
        raise ConfigError(f"{name}: must be {where}{note}, got {value!r}")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def ranged(tp: Any) -> Range | None:
    """The Range declared in an `Annotated[..., Range(...)]` type hint, if any."""
    return next((m for m in getattr(tp, "__metadata__", ()) if isinstance(m, Range)), None)


def flag_type(rng: Range, convert=int):
    """An argparse `type=` that converts the flag's text and checks it against `rng`.

    argparse prints "argument --top-k: must be >= 1, got 0" and exits with status 2.
    """

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if convert is int else 'a number'}, got {text!r}"
            ) from None
        try:
            return rng.check(value, "value")
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix("value: ")) from None

    parse.__name__ = convert.__name__  # argparse names the type in its own messages
    return parse
