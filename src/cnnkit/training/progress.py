"""Live training progress: a rich progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID


def _fmt_eta(seconds: float) -> str:
    seconds = max(0, int(seconds))
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Shows epoch, step, loss, accuracy, images/s and ETA.

    `interactive=None` picks the live display when `stream` is a terminal.
    Plain mode prints a line every `log_every` steps and one per epoch.
    """

    def __init__(
        self,
        epochs: int,
        steps_per_epoch: int,
        *,
        stream: TextIO | None = None,
        interactive: bool | None = None,
        log_every: int = 50,
        quiet: bool = False,
    ):
        self.stream = stream or sys.stdout
        self.epochs, self.steps = epochs, steps_per_epoch
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.log_every = log_every
        self.quiet = quiet
        self.t_start = time.perf_counter()
        self.t_epoch = self.t_start
        self.epoch = 0
        self._live: RichProgress | None = None
        self._task: TaskID | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def __enter__(self) -> Progress:
        if self.interactive and not self.quiet:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import (
                Progress as RichProgress,
            )

            self._live = RichProgress(
                TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.2%}  {task.fields[ips]:,.0f} img/s"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    # -- events -----------------------------------------------------------------------------
    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.t_epoch = time.perf_counter()
        if self._live is not None:
            self._task = self._live.add_task(
                "train", total=self.steps, epoch=epoch, epochs=self.epochs, loss=0.0, acc=0.0, ips=0.0
            )

    def step(self, step: int, steps: int, loss: float, acc: float, images: int) -> None:
        elapsed = time.perf_counter() - self.t_epoch
        ips = images / elapsed if elapsed > 0 else 0.0
        if self._live is not None:
            assert self._task is not None  # start_epoch added it
            self._live.update(self._task, completed=step, loss=loss, acc=acc, ips=ips)
        elif not self.quiet and (step % self.log_every == 0):
            done = (self.epoch - 1) * self.steps + step
            total = self.epochs * self.steps
            eta = (time.perf_counter() - self.t_start) / done * (total - done)
            self._print(
                f"epoch {self.epoch}/{self.epochs} step {step}/{steps} loss {loss:.4f} acc {acc:.2%} {ips:,.0f} img/s ETA {_fmt_eta(eta)}"
            )

    def end_epoch(self, row: dict) -> None:
        line = (
            f"epoch {row['epoch']}/{self.epochs}: train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.2%} | "
            f"val loss {row['val_loss']:.4f} acc {row['val_accuracy']:.2%} | lr {row['lr']:.3g} | {row['seconds']:.1f}s"
        )
        if self._live is not None:
            self._live.console.print(line, markup=False, highlight=False)
        elif not self.quiet:
            self._print(line)

    def message(self, text: str) -> None:
        if self.quiet:
            return
        if self._live is not None:  # as written: a path with [brackets] is not rich markup
            self._live.console.print(text, markup=False, highlight=False)
        else:
            self._print(text)

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)
