"""The search space of `cnnkit tune`, read from YAML (never `eval`):

    params:                                   # any config key (see `cnnkit train --help`)
      optim.lr: loguniform(1e-3, 1)
      optim.weight_decay: uniform(0, 1e-3)
      train.batch_size: [128, 256, 512]       # a list: one of these
      train.epochs: int(1, 4)                 # int(lo, hi) | logint(lo, hi)
    architecture:                             # a network from the spec grammar (search/grammar.py)
      stages: int(1, 3)
      width: [8, 16, 32]
      block: [conv, res]
      attention: [none, se, cbam]
    objectives: [accuracy, macs]              # accuracy (default) | [accuracy, macs] | [accuracy, latency]: Pareto
    max_macs: 5e6                             # trials whose model needs more MACs per image are not trained
    max_latency_ms: 2                         # nor those slower than this (batch-1 CPU forward, measured here)
    trials: 20                                # budgets (flags --trials / --timeout win)
    timeout: 15m
    pruner: median                            # median | hyperband | none (single objective only)
    sampler: tpe                              # tpe | random
    seed: 0

Config keys are checked through `Config.with_overrides` at load time (each choice, both ends
of each range), so a typo or an out-of-range value is reported before any trial trains.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnkit.config import Config
from cnnkit.errors import ConfigError
from cnnkit.search.grammar import ARCH_KEYS, ArchSpace

TOP_KEYS = (
    "params",
    "architecture",
    "objectives",
    "max_macs",
    "max_latency_ms",
    "trials",
    "timeout",
    "pruner",
    "sampler",
    "seed",
)
OBJECTIVES = ("accuracy", "macs", "latency")
PRUNERS = ("median", "hyperband", "none")
SAMPLERS = ("tpe", "random")
_DIST = re.compile(r"(uniform|loguniform|int|logint)\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)")


@dataclass(frozen=True)
class Param:
    """One searched value: kind is uniform | loguniform | int | logint | choice | fixed."""

    name: str
    kind: str
    low: Any = None
    high: Any = None
    choices: tuple = ()

    def suggest(self, trial: Any) -> Any:
        if self.kind == "fixed":
            return self.choices[0]
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.name, self.low, self.high, log=self.kind == "logint")
        return trial.suggest_float(self.name, self.low, self.high, log=self.kind == "loguniform")

    def values(self) -> list[Any]:
        """The values to check at load time: every choice, or both ends."""
        return list(self.choices) if self.kind in ("choice", "fixed") else [self.low, self.high]


def parse_param(name: str, raw: Any, where: str) -> Param:
    """A YAML value as a Param: a list (categorical), a distribution string, or a fixed value."""
    if isinstance(raw, list):
        if not raw:
            raise ConfigError(f"{where}: {name}: an empty list; give the values to choose from, e.g. [128, 256]")
        if any(isinstance(v, (list, dict)) for v in raw):
            raise ConfigError(f"{where}: {name}: choices must be numbers, strings, booleans or null, got {raw!r}")
        return Param(name, "choice", choices=tuple(raw))
    if isinstance(raw, str) and "(" in raw:
        m = _DIST.fullmatch(raw.strip())
        if not m:
            raise ConfigError(
                f"{where}: {name}: cannot read {raw!r}; expected uniform(lo, hi), loguniform(lo, hi), int(lo, hi), "
                "logint(lo, hi) or a list of values"
            )
        kind, lo_text, hi_text = m.groups()
        lo, hi = _number(lo_text), _number(hi_text)
        number = int if kind in ("int", "logint") else (int, float)
        if not all(isinstance(v, number) and not isinstance(v, bool) for v in (lo, hi)):
            what = "integers" if kind in ("int", "logint") else "numbers"
            raise ConfigError(f"{where}: {name}: {raw}: both ends must be {what}")
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
            raise ConfigError(f"{where}: {name}: {raw}: needs lo < hi")
        if kind.startswith("log") and lo <= 0:
            raise ConfigError(f"{where}: {name}: {raw}: a log scale needs lo > 0")
        if kind in ("uniform", "loguniform"):
            lo, hi = float(lo), float(hi)
        return Param(name, kind, lo, hi)
    if isinstance(raw, dict):
        raise ConfigError(f"{where}: {name}: expected a value, a list or a distribution, got a mapping")
    return Param(name, "fixed", choices=(raw,))


@dataclass
class SearchSpace:
    params: list[Param] = field(default_factory=list)  # config keys
    arch: ArchSpace | None = None
    objectives: tuple[str, ...] = ("accuracy",)
    max_macs: float | None = None
    max_latency_ms: float | None = None
    trials: int | None = None
    timeout: float | None = None  # seconds
    pruner: str = "median"
    sampler: str = "tpe"
    seed: int = 0
    source: str = "search space"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def suggest(self, trial: Any) -> dict[str, Any]:
        """The dotted config overrides of one trial (model.name a spec when an architecture is searched)."""
        overrides = {p.name: p.suggest(trial) for p in self.params}
        if self.arch is not None:
            overrides["model.name"] = self.arch.suggest(trial)
            overrides["model.kwargs"] = {}
        return overrides

    def check(self, base: Config) -> None:
        """Every searched value must be a valid config value (the error names the file and key)."""
        for p in self.params:
            for v in p.values():
                base.with_overrides({p.name: v}, source=f"{self.source}: params")


def _number(text: str) -> Any:
    """'3' -> 3, '1e-3' -> 0.001 (YAML 1.1 reads 1e-3 as a string), anything else as YAML reads it."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return yaml.safe_load(text)


def parse_duration(raw: Any, where: str) -> float:
    """Seconds from 90, "90s", "15m", "2h"."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 0:
        return float(raw)
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(raw))
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{where}: expected a positive duration such as 90, 90s, 15m or 2h, got {raw!r}")
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def _choice(raw: Any, allowed: tuple[str, ...], where: str) -> str:
    if raw not in allowed:
        raise ConfigError(f"{where}: expected one of {', '.join(allowed)}, got {raw!r}")
    return str(raw)


def space_from_dict(raw: Any, source: str = "search space") -> SearchSpace:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with params: and/or architecture:, got {raw!r}")
    for key in raw:
        if key not in TOP_KEYS:
            close = difflib.get_close_matches(str(key), TOP_KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown key {key!r}.{hint} Valid keys: {', '.join(TOP_KEYS)}.")
    params_raw = raw.get("params") or {}
    if not isinstance(params_raw, dict):
        raise ConfigError(f"{source}: params: expected a mapping of config keys, e.g. optim.lr: loguniform(1e-3, 1)")
    params = [parse_param(str(k), v, f"{source}: params") for k, v in params_raw.items()]
    arch = None
    if raw.get("architecture") is not None:
        arch_raw = raw["architecture"]
        if not isinstance(arch_raw, dict):
            raise ConfigError(f"{source}: architecture: expected a mapping of {', '.join(ARCH_KEYS)}")
        arch = ArchSpace.from_params(
            {str(k): parse_param(f"arch.{k}", v, f"{source}: architecture") for k, v in arch_raw.items()}, source
        )
        if any(p.name.startswith("model.name") or p.name == "model.kwargs" for p in params):
            raise ConfigError(f"{source}: search either model.name/model.kwargs in params or an architecture, not both")
    if not params and arch is None:
        raise ConfigError(f"{source}: nothing to search: give params: (config keys) and/or architecture:")
    objectives = raw.get("objectives", ["accuracy"])
    objectives = [objectives] if isinstance(objectives, str) else objectives
    if not isinstance(objectives, list) or objectives not in (
        ["accuracy"],
        ["accuracy", "macs"],
        ["accuracy", "latency"],
    ):
        raise ConfigError(
            f"{source}: objectives: expected [accuracy], [accuracy, macs] or [accuracy, latency], got {objectives!r}"
        )
    space = SearchSpace(params, arch, tuple(objectives), source=source)
    if raw.get("max_macs") is not None:
        space.max_macs = _positive(raw["max_macs"], f"{source}: max_macs")
    if raw.get("max_latency_ms") is not None:
        space.max_latency_ms = _positive(raw["max_latency_ms"], f"{source}: max_latency_ms")
    if raw.get("trials") is not None:
        space.trials = int(_positive(raw["trials"], f"{source}: trials", integer=True))
    if raw.get("timeout") is not None:
        space.timeout = parse_duration(raw["timeout"], f"{source}: timeout")
    space.pruner = _choice(raw.get("pruner", "median"), PRUNERS, f"{source}: pruner")
    space.sampler = _choice(raw.get("sampler", "tpe"), SAMPLERS, f"{source}: sampler")
    space.seed = int(_positive(raw.get("seed", 0), f"{source}: seed", integer=True, zero=True))
    return space


def _positive(raw: Any, where: str, integer: bool = False, zero: bool = False) -> float:
    if isinstance(raw, str):
        with contextlib.suppress(ValueError):  # YAML 1.1 reads 5e6 as a string
            raw = float(raw) if not integer else int(raw)
    ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and (raw >= 0 if zero else raw > 0)
    if not ok or (integer and int(raw) != raw):
        raise ConfigError(
            f"{where}: expected a {'whole ' if integer else ''}number > {'=' if zero else ''}0, got {raw!r}"
        )
    return float(raw)


def load_space(path: str | Path) -> SearchSpace:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: search space file not found")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from e
    return space_from_dict(raw, source=str(path))
