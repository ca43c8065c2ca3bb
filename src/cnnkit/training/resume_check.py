"""`--resume` checks what it resumes: the checkpoint, the config and the data.

`load_last(run_dir)`: removes temporary files an interrupted atomic write left in the run
folder (`.NAME.XXXXXXXX.tmp`, see rundir.atomic_write), and reads last.ckpt; when there is none
yet, the error says why and to start the run again (there is nothing to resume).

`check(ckpt, cfg, data, run_dir)`: the dataset's fingerprint (data/fingerprint.py), which
last.ckpt records. On resume, a config whose training keys differ from the checkpoint's saved
config (config.yaml edited by hand) or a dataset that changed (classes renamed, files added...)
is refused, naming each difference and how to start a fine-tune from the checkpoint instead.
A checkpoint from before fingerprints resumes with a one-line note.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from cnnkit.checkpoint import load_checkpoint
from cnnkit.config import Config, upgrade
from cnnkit.data.fingerprint import changes, fingerprint
from cnnkit.data.types import Dataset
from cnnkit.errors import CheckpointError

# keys that may differ on resume: where things run or live, not what is trained (the data itself is fingerprinted)
NOT_TRAINING = (
    "runtime.device",
    "runtime.num_threads",
    "runtime.devices",
    "run.tensorboard",
    "data.path",
    "data.root",
    "data.cache",
    "data.cache_dir",
    "data.download",
    "data.workers",
)
NOT_TRAINING_SECTIONS = ("run",)
STRAY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".NAME.", suffix=".tmp")


def remove_strays(run_dir: Path) -> list[Path]:
    """Delete what interrupted atomic writes left in `run_dir` and its sub-folders; returns them."""
    strays = [p for p in run_dir.rglob(".*.tmp") if STRAY.match(p.name) and p.is_file()]
    for p in strays:
        p.unlink(missing_ok=True)
    return strays


def _fresh_start(run_dir: Path) -> str:
    return f"cnnkit train --config {run_dir / 'config.yaml'}"


def _fine_tune(run_dir: Path) -> str:
    return f"cnnkit train --config {run_dir / 'config.yaml'} --weights {run_dir / 'last.ckpt'}"


def load_last(run_dir: Path, checkpoint_every: int = 0) -> dict:
    """The run's last.ckpt (after removing stray temporary files), or a CheckpointError saying what to do."""
    remove_strays(run_dir)
    last = run_dir / "last.ckpt"
    if not last.exists():
        every = f" or after {checkpoint_every} steps (train.checkpoint_every)" if checkpoint_every else ""
        raise CheckpointError(
            f"{last}: not written yet: the run stopped before its first checkpoint (written at the end of epoch 1{every}), "
            f"so there is nothing to resume. Start the run again (a new run folder): {_fresh_start(run_dir)}"
        )
    return load_checkpoint(last)


def _flat(cfg: dict) -> dict[str, str]:
    return {
        f"{section}.{k}": json.dumps(v, sort_keys=True, default=str)
        for section, keys in cfg.items()
        if isinstance(keys, dict)
        for k, v in keys.items()
    }


def config_changes(saved: dict, cfg: Config) -> list[str]:
    """'key: X in the config, Y in last.ckpt' for each training key that differs."""
    before, now = _flat(upgrade(saved)), _flat(cfg.to_dict())  # a checkpoint from before a key moved: its new place
    # a key added after the checkpoint was written (e.g. the adv: section) ran as its default then
    before = {**{k: v for k, v in _flat(Config().to_dict()).items() if k not in before}, **before}
    diffs = []
    for key in sorted(before.keys() | now.keys()):
        if key in NOT_TRAINING or key.split(".", 1)[0] in NOT_TRAINING_SECTIONS or before.get(key) == now.get(key):
            continue
        diffs.append(f"{key}: {now.get(key, '(absent)')} in the config, {before.get(key, '(absent)')} in last.ckpt")
    return diffs


def check(ckpt: dict | None, cfg: Config, data: Dataset, run_dir: Path | None, *, quiet: bool = False) -> dict:
    """The fingerprint of `data`, for last.ckpt; on resume (`ckpt` given) refuse a changed config or dataset."""
    now = fingerprint(data)
    if ckpt is None or run_dir is None:
        return now
    diffs = config_changes(ckpt.get("config") or {}, cfg)
    if diffs:
        raise CheckpointError(
            f"{run_dir / 'config.yaml'}: --resume refused: training settings differ from those last.ckpt was trained with: "
            f"{'; '.join(diffs)}. --resume continues a run exactly as it was configured: restore the value(s), or start a new run "
            f"from these weights with the new settings: {_fine_tune(run_dir)}"
        )
    before = ckpt["train_state"].get("dataset")
    if before is None:
        if not quiet:
            print(
                f"cnnkit: note: {run_dir / 'last.ckpt'} predates dataset fingerprints; resuming without checking that the data is unchanged",
                file=sys.stderr,
                flush=True,
            )
        return now
    what = changes(before, now)
    if what:
        raise CheckpointError(
            f"{run_dir}: --resume refused: the dataset changed since last.ckpt was written ({'; '.join(what)}). Resuming would "
            f"continue the schedule on other data. Restore the data, or start a fine-tune from the checkpoint as a new run: {_fine_tune(run_dir)}"
        )
    return now
