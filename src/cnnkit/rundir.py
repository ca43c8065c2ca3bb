"""The run folder: the single artefact of a run, never overwritten, its files replaced atomically."""

from __future__ import annotations

import errno
import os
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cnnkit.errors import CnnkitError


class RunDirError(CnnkitError):
    """The run folder cannot be created (missing permission, read-only or full disk, a file in the way)."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def explain_os_error(e: OSError) -> tuple[str, str]:
    """(what went wrong, what to do) for an OSError while writing: full disk, read-only folder..."""
    reason = e.strerror or str(e)
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return reason, "free some disk space"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return reason, "make the folder writable"
    return reason, "check the disk and the folder's permissions"


def create_run_dir(runs_dir: str | Path, name: str | None, *, dataset: str, model: str) -> Path:
    """Create and return a new run folder.

    With no `name`, the name is `<dataset>-<model>-<YYYYmmdd-HHMMSS>`. A name that is
    taken gets a `-2`, `-3`... suffix: an existing run is never overwritten. A folder that
    cannot be created raises RunDirError naming it.
    """
    runs = Path(runs_dir)
    model_part = "spec" if "(" in model else _slug(model)  # a layer spec would make an unreadable name
    base = _slug(name) if name else f"{_slug(dataset)}-{model_part}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        runs.mkdir(parents=True, exist_ok=True)
        for i in range(1, 10_000):
            candidate = runs / (base if i == 1 else f"{base}-{i}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            (candidate / "plots").mkdir()
            return candidate
    except OSError as e:
        reason, _ = explain_os_error(e)
        raise RunDirError(
            f"{runs}: cannot create the run folder there ({reason}); use --runs-dir with a writable folder"
        ) from e
    raise RunDirError(f"could not find a free run name for {base!r} in {runs}; choose another --name")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(f)` on a temporary file in `path`'s folder, fsync, then rename it over `path`.

    If anything fails (a full disk, say), the previous file at `path` is untouched and the
    temporary file is removed. The new file gets the permissions open() would give it. An
    error raised while a writer cleans up after an OSError (torch.save's zip writer raises
    RuntimeError "unexpected pos" after a full disk) is reported as that OSError.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:  # by name, so f.name says which file is being written
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error_behind(e)
        if cause is not None:
            raise cause from e
        raise


def _os_error_behind(e: BaseException) -> OSError | None:
    """The OSError that `e` (not itself an OSError) was raised while handling, if any."""
    if isinstance(e, OSError) or not isinstance(e, Exception):
        return None
    seen = e.__context__
    while seen is not None and not isinstance(seen, OSError):
        seen = seen.__context__
    return seen


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file (UTF-8) so that it is either complete or not there (see atomic_write)."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
