"""Ctrl-C / SIGTERM during training: finish the step, checkpoint, exit 130 / 143."""

from __future__ import annotations

import signal
import sys

from cnnkit.errors import CnnkitError

# shared with every command (cnnkit.io_safety); the launcher imports them from here
from cnnkit.io_safety import EXIT_CODES, install_handlers, restore_handlers


class TrainingInterrupted(CnnkitError):
    """Training stopped on a signal after writing a checkpoint; `exit_code` is 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self):  # pickles with its exit code (the --devices launcher receives it from rank 0)
        return type(self), (str(self), self.exit_code)


class GracefulInterrupt:
    """While active, the first SIGINT/SIGTERM only sets `signum`; a second SIGINT raises KeyboardInterrupt at once
    (a repeated SIGTERM changes nothing: schedulers and dying parents may send it more than once).

    Handlers are installed only in the main thread and restored on exit. Checkpoints are
    written atomically, so stopping at once never leaves a half-written file behind.
    """

    def __init__(self, notify=None):
        self.signum: int | None = None
        self._notify = notify or (lambda text: print(text, file=sys.stderr, flush=True))
        self._previous: dict = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def exit_code(self) -> int:
        return 130 if self.signum is None else EXIT_CODES.get(self.signum, 130)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return  # another SIGTERM: already stopping (only a second Ctrl-C means "at once")
        self.signum = signum
        self._notify(
            f"cnnkit: {signal.Signals(signum).name} received: finishing this step and saving a checkpoint (Ctrl-C again stops at once)"
        )

    def __enter__(self) -> GracefulInterrupt:
        self._previous = install_handlers(self._handle)
        return self

    def __exit__(self, *exc) -> None:
        restore_handlers(self._previous)
