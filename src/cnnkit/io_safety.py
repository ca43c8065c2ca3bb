"""Safe outputs for every command: complete files or none, clean stops on signals, clear disk errors.

- `write_file(path, text_or_writer)`: one file, replaced atomically (rundir.atomic_write);
  `replace_file` the same for library code, its OSErrors unchanged.
- `save_figure(fig, path)`: a matplotlib figure, through the same atomic writer.
- `staged_folder(dest)`: a command's set of files, built in a hidden sibling folder and moved
  into `dest` at the end, so an interrupted or failed command leaves `dest`'s previous files
  (or nothing), never half of a new set.
- `interruptible(verb)`: while a command runs, SIGINT / SIGTERM raise `Interrupted` (a
  KeyboardInterrupt, exit 130 / 143); the writers above remove their temporary files on the
  way out, and `Interrupted.summary()` says what was and was not written.
- `writing(path, hint)`: an OSError (read-only folder, full disk, no permission) becomes one
  `OutputError` naming the path and what to do, shown by the CLI without a traceback.

Signal handlers belong to the process, so the running command's guard is kept here while it
is active (`_GUARDS`, main thread only); writers report the files they finished to it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from cnnkit.errors import CnnkitError
from cnnkit.rundir import atomic_write, explain_os_error

EXIT_CODES: dict[int, int] = {signal.SIGINT: 130, signal.SIGTERM: 143}


def install_handlers(handler) -> dict:
    """Make `handler` the SIGINT and SIGTERM handler (main thread only: Python allows no other);
    returns the previous handlers for `restore_handlers`."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.signal(s, handler) for s in EXIT_CODES}


def restore_handlers(previous: dict) -> None:
    for s, handler in previous.items():
        signal.signal(s, handler)
    previous.clear()


class OutputError(CnnkitError):
    """An output file or folder could not be written (read-only folder, full disk, no permission)."""


class Interrupted(KeyboardInterrupt):
    """A command stopped on SIGINT (exit 130) or SIGTERM (exit 143); `kept` lists the outputs left as they were."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = EXIT_CODES.get(signum, 130)
        self.written: list[str] = []
        self.kept: list[str] = []

    def summary(self) -> str:
        """One line: what was written (complete) and what was left as it was."""
        done = (
            f"wrote {', '.join(self.written)} (complete); nothing else was written"
            if self.written
            else "nothing was written"
        )
        kept = f" ({', '.join(self.kept)} left as it was)" if self.kept else ""
        return f"stopped by {signal.Signals(self.signum).name}: {done}{kept}"


class _Guard:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.signum: int | None = None  # a signal that arrived while deferred
        self.defer = 0
        self.fired = False

    def handle(self, signum, frame) -> None:
        if self.fired:  # already stopping: let the clean-up finish (a second Ctrl-C stops at once)
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            return
        if self.defer:
            self.signum = self.signum or signum
            return
        self.raise_now(signum)

    def raise_now(self, signum: int) -> None:
        self.fired = True
        e = Interrupted(signum)
        e.written = list(self.written)
        raise e


_GUARDS: list[_Guard] = []


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT / SIGTERM into `Interrupted` while the block runs (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    guard = _Guard()
    previous = install_handlers(guard.handle)
    _GUARDS.append(guard)
    try:
        yield
    finally:
        _GUARDS.remove(guard)
        restore_handlers(previous)


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold a signal that arrives inside the block until its end (a few renames must all happen)."""
    guard = _GUARDS[-1] if _GUARDS else None
    if guard is None:
        yield
        return
    guard.defer += 1
    try:
        yield
    finally:
        guard.defer -= 1
        if not guard.defer and guard.signum is not None and not guard.fired:
            guard.raise_now(guard.signum)


def _record(path: Path) -> None:
    if _GUARDS:
        _GUARDS[-1].written.append(str(path))


@contextlib.contextmanager
def writing(path: str | os.PathLike, hint: str = "") -> Iterator[None]:
    """Turn an OSError while writing `path` into an OutputError: the path, why, and what to do
    (`hint` adds a command's own way out, e.g. "or write elsewhere with --out DIR"). An OSError
    about another file (one being read, say) passes unchanged."""
    try:
        yield
    except OSError as e:
        path = Path(path)
        if not _about(path, e.filename):
            raise
        reason, cure = explain_os_error(e)
        raise OutputError(
            f"{path}: could not be written ({reason}); {cure}{', ' + hint if hint else ''}. Nothing was left half-written there."
        ) from e


def _about(path: Path, filename) -> bool:
    """Whether an OSError's file is `path`, a folder above it, or one of its temporary files / staging folder."""
    if not filename:  # fsync, a writer's own error: the file being written
        return True
    name = Path(os.fsdecode(filename))
    return name == path or name in path.parents or any(part.startswith(f".{path.name}.") for part in name.parts)


def replace_file(path: str | os.PathLike, content: str | bytes | Callable[[BinaryIO], None]) -> Path:
    """Write one file atomically (creating its folder), a signal held until it is complete; OSErrors
    pass unchanged (library code; commands use write_file, or wrap this in `writing`)."""
    path = Path(path)
    if isinstance(content, str):
        content = content.encode("utf-8")
    write = content if callable(content) else (lambda f, data=content: f.write(data))
    with deferred_signals():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, write)
        _record(path)  # before a held signal is raised, so its message lists the file
    return path


def write_file(path: str | os.PathLike, content: str | bytes | Callable[[BinaryIO], None], *, hint: str = "") -> Path:
    """Write one output file atomically (creating its folder); an OSError becomes an OutputError naming it."""
    with writing(path, hint):
        return replace_file(path, content)


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Save and close a matplotlib figure, atomically (the format from the suffix, PNG by default)."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        atomic_write(path, lambda f: fig.savefig(f, format=path.suffix.lstrip(".") or "png", dpi=dpi))
    finally:
        plt.close(fig)
    return path


@contextlib.contextmanager
def staged_folder(dest: str | os.PathLike, *, hint: str = "") -> Iterator[Path]:
    """Yield an empty hidden folder beside `dest` to write a command's files into; at the end move
    them into `dest` (created if needed; other files there stay), each with an atomic rename and no
    signal in between. On an error or a signal the hidden folder is removed and `dest` is untouched.
    """
    dest = Path(dest)
    with writing(dest, hint):
        dest.parent.mkdir(parents=True, exist_ok=True)
        stage = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.tmp"
        stage.mkdir()
    committed = False
    try:
        with writing(dest, hint):
            yield stage
            with deferred_signals():
                files = sorted(p for p in stage.rglob("*") if p.is_file())
                if files:  # nothing to show: no empty folder either
                    dest.mkdir(exist_ok=True)
                for f in files:
                    target = dest / f.relative_to(stage)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(f, target)
                committed = True
                _record(dest)
    except Interrupted as e:
        if not committed:
            e.kept.append(str(dest))
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
