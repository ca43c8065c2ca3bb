"""The end of an epoch: its metrics row (training, validation and the EMA's numbers), then the row
recorded: schedule and early stopping, progress, metrics.csv, TensorBoard, best.ckpt, last.ckpt."""

from __future__ import annotations

from cnnkit.training import distributed
from cnnkit.training.results import write_skipped_csv
from cnnkit.training.run_files import METRIC_COLUMNS, save, write_metrics
from cnnkit.training.session import Session, save_last
from cnnkit.training.validate import evaluate


def epoch_row(s: Session, epoch: int, tr: dict, lr: float | None, t0: float) -> dict:
    """The epoch's metrics row from train_one_epoch's result `tr`, the epoch's starting rate and start time."""
    p, ts = s.parts, s.parts.state
    batch, precision = p.cfg.eval.batch_size, p.cfg.runtime.precision
    va = evaluate(s.val_model, s.val_split, normalize=s.feed, batch_size=batch, precision=precision)
    if p.is_main and len(p.data.skipped) > s.skipped_files:  # streaming finds unreadable files as it reads them
        s.skipped_files = len(p.data.skipped)
        write_skipped_csv(p.folder, p.data.skipped)
    if p.world_size > 1:  # rank 0's numbers decide for everyone (BatchNorm buffers may differ a little)
        va = distributed.broadcast_object(va)
    row = {
        "epoch": epoch,
        "train_loss": tr["loss"],
        "train_accuracy": tr["accuracy"],
        "val_loss": va["loss"],
        "val_accuracy": va["accuracy"],
        "lr": lr,
        "seconds": s.clock() - t0,
    }
    if "l1" in tr:
        row["train_l1"] = tr["l1"]
    if ts.ema is not None:
        ve = evaluate(ts.ema.module, p.data.val, normalize=p.normalize, batch_size=batch, precision=precision)
        row.update(val_loss_ema=ve["loss"], val_accuracy_ema=ve["accuracy"])
    return row


def record_epoch(s: Session, epoch: int, row: dict) -> None:
    """Record the row: schedule and early stopping, progress, metrics.csv, TensorBoard, best.ckpt, last.ckpt."""
    p, ts, monitor = s.parts, s.parts.state, s.parts.cfg.train.monitor
    ts.rows.append(row)
    if p.per_epoch_schedule:
        ts.scheduler.step(row[monitor])
    improved = ts.stopper.update(row[monitor], epoch, tiebreak=row["val_loss"] if monitor == "val_accuracy" else None)
    s.progress.end_epoch(row)  # shown before the files are written: a full disk does not hide the numbers
    ts.epoch = epoch
    ck = None
    if p.is_main:
        write_metrics(ts.rows, p.run_dir / "metrics.csv")
        if p.writer is not None:
            for k, v in row.items():
                if k != "epoch":
                    p.writer.add_scalar(k, v, epoch)
            p.writer.flush()
        ck = p.model_checkpoint(epoch, {k: row[k] for k in METRIC_COLUMNS[1:]})
        if improved:  # before last.ckpt: if this save fails, resuming repeats the epoch and writes best.ckpt again
            save(ck, p.run_dir / "best.ckpt")
    save_last(s, ck)
    if s.hooks.on_epoch_end is not None:  # last: the folder is complete up to this epoch if the hook raises
        s.hooks.on_epoch_end(epoch, dict(row))
