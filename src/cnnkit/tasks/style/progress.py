"""A progress bar with the losses: rich's live bar on a terminal, a plain line every `every` steps otherwise."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from .optimise import Losses

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class StyleProgress:
    def __init__(self, steps: int, *, stream: TextIO | None = None, quiet: bool = False, every: int = 50):
        self.steps, self.quiet, self.every = steps, quiet, every
        self.stream = stream or sys.stdout
        self._live: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> StyleProgress:
        if not self.quiet and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._live = Progress(
                TextColumn("[bold]stylize"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[losses]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._live.__enter__()
            self._task = self._live.add_task("stylize", total=self.steps, losses="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def update(self, step: int, losses: Losses) -> None:
        text = f"content {losses.content:.4g}  style {losses.style:.4g}  tv {losses.tv:.3g}  total {losses.total:.4g}"
        if self._live is not None and self._task is not None:
            self._live.update(self._task, completed=step, losses=text)
        elif not self.quiet and (step % self.every == 0 or step in (1, self.steps)):
            print(f"step {step}/{self.steps}: {text}", file=self.stream, flush=True)
