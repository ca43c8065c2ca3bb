"""argparse with typo hints: an unknown flag or verb names the nearest valid one
(`--learning-rate` -> `--lr`, `trian` -> `train`), as unknown config keys do."""

from __future__ import annotations

import argparse
import difflib
import re
from collections.abc import Sequence
from typing import NoReturn

# words people bring from other tools, and the flag cnnkit spells them with
SYNONYMS = {
    "--learning-rate": "--lr",
    "--learning_rate": "--lr",
    "--learningrate": "--lr",
    "--bs": "--batch-size",
    "--batch": "--batch-size",
    "--num-epochs": "--epochs",
    "--max-epochs": "--epochs",
    "--n-epochs": "--epochs",
    "--epoch": "--epochs",
    "--wd": "--weight-decay",
    "--optim": "--optimizer",
    "--arch": "--model",
    "--network": "--model",
    "--net": "--model",
    "--data-dir": "--data",
    "--dataset-dir": "--data",
    "--output": "--out",
    "--output-dir": "--out",
    "--topk": "--top-k",
    "--k": "--top-k",
    "--gpus": "--devices",
    "--num-workers": "--threads",
    "--img-size": "--image-size",
    "--imgsz": "--image-size",
    "--size": "--image-size",
    "--smoothing": "--label-smoothing",
    "--patience": "--early-stopping",
}


def nearest(word: str, candidates: Sequence[str]) -> str | None:
    """The valid spelling closest to `word`: a known synonym, else difflib's best match (ratio >= 0.6)."""
    if word in SYNONYMS and SYNONYMS[word] in candidates:
        return SYNONYMS[word]
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


class SuggestingParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors add "did you mean ...?" and skip a long usage block."""

    def error(self, message: str) -> NoReturn:
        hint = self._hint(message)
        usage = self.format_usage()
        if usage.count("\n") > 3:  # the train verb's usage fills a screen: point to --help instead
            usage = f"usage: {self.prog} ... (see {self.prog} --help)\n"
        self.exit(2, f"{usage}{self.prog}: error: {message}{hint}\n")

    def _hint(self, message: str) -> str:
        m = re.match(r"argument (\S+): invalid choice: '([^']*)'", message)
        if m:
            action = next(
                (
                    a
                    for a in self._actions
                    if m.group(1) in (a.dest, a.metavar, *a.option_strings) or "/".join(a.option_strings) == m.group(1)
                ),
                None,
            )
            choices = [str(c) for c in (action.choices or [])] if action is not None else []
            near = nearest(m.group(2), choices)
            return f"; did you mean {near!r}?" if near else ""
        m = re.match(r"unrecognized arguments: (.*)", message)
        if m:
            options = [o for o in self._option_string_actions if o.startswith("--")]
            hints = []
            for token in m.group(1).split():
                flag = token.split("=", 1)[0]
                if flag.startswith("-"):
                    near = nearest(flag, options)
                    if near:
                        hints.append((flag, near))
            if len(hints) == 1:
                return f"; did you mean {hints[0][1]}?"
            return f"; did you mean {', '.join(f'{near} (for {flag})' for flag, near in hints)}?" if hints else ""
        return ""


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """parser.parse_args, but flags a subcommand does not know are reported by that subcommand's
    parser (so the hint comes from its own flags, not the top level's)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        sub = _subparser(parser, getattr(args, "command", None)) or parser
        sub.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _subparser(parser: argparse.ArgumentParser, command: str | None) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return None


__all__ = ["SuggestingParser", "nearest", "parse_args"]
