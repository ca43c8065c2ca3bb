"""Files of the run folder that training writes: metrics.csv and checkpoints as it goes, the final
results at the end, TensorBoard events, and the message for a non-finite loss.

Every file is replaced atomically (complete or not there), so a full disk or a read-only folder
never leaves a half-written file; write errors become CheckpointWriteErrors that name the file,
say why, and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from cnnkit.checkpoint import CheckpointWriteError, atomic_save
from cnnkit.errors import ConfigError
from cnnkit.rundir import atomic_write, explain_os_error
from cnnkit.training.step import NonFiniteLossError

METRIC_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]

Writer = Callable[[BinaryIO], None]  # writes one file's bytes to an open binary file


@contextlib.contextmanager
def writing(path: Path, *, started: bool = True):
    """Turn an OSError while writing `path` (disk full, read-only folder) into a clear error.

    started: training has begun, so the advice is to resume when last.ckpt exists, else to start
    the run again (from its config.yaml); before that, it is to start again with another --runs-dir.
    """
    try:
        yield
    except OSError as e:
        reason, cure = explain_os_error(e)
        run = path.parent
        if started and not (run / "last.ckpt").exists():  # the first epoch's files: no checkpoint to resume from yet
            then = (
                f"No last.ckpt was written yet (the first one is written at the end of epoch 1), so there is nothing to resume; "
                f"{cure}, then start the run again: cnnkit train --config {run / 'config.yaml'}"
            )
        elif started:
            then = (
                f"Files already in {run} are unchanged (checkpoints are replaced atomically); {cure}, then continue with: "
                f"cnnkit train --resume {run} (or copy the folder to another disk and resume the copy)"
            )
        else:
            then = f"Nothing was trained yet; {cure} or use --runs-dir with another folder, and start again"
        raise CheckpointWriteError(f"{path}: could not be written ({reason}). {then}") from e


def write_metrics(rows: list[dict], path: Path) -> None:
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in METRIC_COLUMNS]
    text = io.StringIO(newline="")
    w = csv.DictWriter(text, fieldnames=METRIC_COLUMNS + extra)
    w.writeheader()
    for r in rows:
        w.writerow(
            {k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in METRIC_COLUMNS + extra}
        )
    with writing(path):
        atomic_write(path, lambda f: f.write(text.getvalue().encode("utf-8")))


def save(obj: dict, path: Path) -> None:
    with writing(path):
        atomic_save(obj, path)


def write_final_files(run_dir: Path, files: list[tuple[Path, Writer]], result: str) -> None:
    """Write the end-of-run files in order, each atomically; a file that fails does not stop the others.

    If any failed, raise one CheckpointWriteError naming them, with `result` (the final metrics,
    so they are not lost) and how to write them again: `cnnkit train --resume` repeats only the
    final evaluation, since last.ckpt is marked finished only after these files exist.
    """
    failed: list[tuple[Path, OSError]] = []
    for path, write in files:
        try:
            atomic_write(path, write)
        except OSError as e:
            failed.append((path, e))
    if not failed:
        return
    (first, error), others = failed[0], [p.relative_to(run_dir).as_posix() for p, _ in failed[1:]]
    reason, cure = explain_os_error(error)
    also = f" (nor could {', '.join(others)})" if others else ""
    raise CheckpointWriteError(
        f"{first}: could not be written ({reason}){also}. Training finished: {result}; last.ckpt and best.ckpt are intact. "
        f"{cure[0].upper()}{cure[1:]}, then write the missing files with: cnnkit train --resume {run_dir} "
        f"(it repeats only the final evaluation; or copy the folder to another disk and resume the copy)"
    )


def text(content: str) -> Writer:
    """A Writer for a UTF-8 text file."""

    def write(f: BinaryIO) -> None:
        f.write(content.encode("utf-8"))

    return write


def warn(message: str) -> None:
    print(f"cnnkit: warning: {message}", file=sys.stderr, flush=True)


def tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard") from e
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def nan_message(
    e: NonFiniteLossError,
    *,
    epoch: int,
    steps: int,
    global_step: int,
    last_finite: float | None,
    lr: float,
    precision: str,
    run_dir: Path,
    saved_epoch: int,
    saved_step: int,
) -> str:
    last = f"{last_finite:.4g}" if last_finite is not None else "none yet"
    where = f"epoch {saved_epoch}" + (f", step {saved_step}" if saved_step else "")
    kept = (
        f"The last good checkpoint, {run_dir / 'last.ckpt'} ({where}), is kept."
        if saved_epoch or saved_step
        else "No checkpoint had been written yet."
    )
    causes = [f"a learning rate too high (lr is {lr:.3g}: try --lr {lr / 10:.3g} or --set optim.grad_clip=1.0)"]
    if precision == "fp16":
        causes.append("fp16 overflow (try --precision bf16 or fp32)")
    causes.append("NaN/Inf values in the input data")
    return (
        f"training stopped: the loss or gradient became {e.value} at step {global_step} (epoch {epoch}, step {e.step} of {steps}); "
        f"the last finite loss was {last}. Likely causes: {'; '.join(causes)}. {kept} "
        f"To skip such steps instead, use --on-nan skip."
    )
