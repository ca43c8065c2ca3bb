"""Files of the run folder that training writes as it goes: metrics.csv, checkpoints, TensorBoard
events, and the message for a non-finite loss. Write errors become clear CheckpointWriteErrors."""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

from cnnkit.checkpoint import CheckpointWriteError, atomic_save
from cnnkit.errors import ConfigError
from cnnkit.training.loop import NonFiniteLossError

METRIC_COLUMNS = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"]


@contextlib.contextmanager
def writing(path: Path):
    """Turn an OSError while writing `path` (disk full, read-only folder) into a clear error."""
    try:
        yield
    except OSError as e:
        reason = e.strerror or str(e)
        raise CheckpointWriteError(
            f"{path}: could not be written ({reason}). Files already in {path.parent} are unchanged (checkpoints are replaced "
            f"atomically); free some disk space or make the folder writable, then continue with: cnnkit train --resume {path.parent}"
        ) from e


def write_metrics(rows: list[dict], path: Path) -> None:
    extra = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in METRIC_COLUMNS]
    with writing(path), open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_COLUMNS + extra)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.6g}" if isinstance(r.get(k), float) else r.get(k, "")) for k in METRIC_COLUMNS + extra})


def save(obj: dict, path: Path) -> None:
    with writing(path):
        atomic_save(obj, path)


def tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError("--tensorboard needs the tensorboard package: pip install tensorboard") from e
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def nan_message(e: NonFiniteLossError, *, epoch: int, steps: int, global_step: int, last_finite: float | None, lr: float, precision: str, run_dir: Path, saved_epoch: int, saved_step: int) -> str:
    last = f"{last_finite:.4g}" if last_finite is not None else "none yet"
    where = f"epoch {saved_epoch}" + (f", step {saved_step}" if saved_step else "")
    kept = f"The last good checkpoint, {run_dir / 'last.ckpt'} ({where}), is kept." if saved_epoch or saved_step else "No checkpoint had been written yet."
    causes = [f"a learning rate too high (lr is {lr:.3g}: try --lr {lr / 10:.3g} or --set optim.grad_clip=1.0)"]
    if precision == "fp16":
        causes.append("fp16 overflow (try --precision bf16 or fp32)")
    causes.append("NaN/Inf values in the input data")
    return (
        f"training stopped: the loss or gradient became {e.value} at step {global_step} (epoch {epoch}, step {e.step} of {steps}); "
        f"the last finite loss was {last}. Likely causes: {'; '.join(causes)}. {kept} "
        f"To skip such steps instead, use --on-nan skip."
    )
