"""What a deploy verb was given (a run folder, a checkpoint or an ONNX file) and the data it
measures on: the run's own test split (or training images for calibration), when reachable."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from cnnkit.data.types import Split
from cnnkit.errors import CheckpointError, CnnkitError

log = logging.getLogger("cnnkit")


@dataclass
class Source:
    """A resolved input: `checkpoint` (a dict) and/or `onnx` (a path); `run_dir` when it came from a run."""

    path: Path
    checkpoint: dict | None = None
    checkpoint_path: Path | None = None
    onnx: Path | None = None

    @property
    def run_dir(self) -> Path:
        """The folder results go beside: the run folder, or the checkpoint's / ONNX file's folder."""
        base = self.checkpoint_path if self.checkpoint_path is not None else self.onnx
        assert base is not None
        return base.parent.parent if base.parent.name == "export" else base.parent

    @property
    def export_dir(self) -> Path:
        return self.run_dir / "export"


def resolve(path: str | os.PathLike, *, allow_onnx: bool = True) -> Source:
    """RUN folder -> its best.ckpt; CKPT -> itself; `.onnx` -> the file and (when the metadata says
    where it came from and it still exists) its checkpoint."""
    from cnnkit.checkpoint import load_checkpoint, resolve_checkpoint

    p = Path(path)
    if p.suffix.lower() == ".onnx":
        if not allow_onnx:
            raise CnnkitError(f"{p}: this verb needs a run folder or a checkpoint, not an ONNX file")
        from cnnkit.deploy.metadata import read_metadata

        meta = read_metadata(p)
        src = Source(p, onnx=p)
        ck = meta.get("checkpoint")
        if ck and Path(ck).is_file():
            try:
                src.checkpoint = load_checkpoint(ck)
                src.checkpoint_path = Path(ck)
            except CnnkitError as e:
                log.warning("%s: its checkpoint %s is not usable (%s); measuring without it", p, ck, e)
        return src
    if not p.exists():
        raise CheckpointError(f"{p}: not found; give a run folder, a .ckpt file or a .onnx file")
    ckpt_path = resolve_checkpoint(p)
    return Source(p, checkpoint=load_checkpoint(ckpt_path), checkpoint_path=ckpt_path)


def load_split(meta: dict, split: str = "test", limit: int | None = None, seed: int = 0) -> Split | None:
    """The split of the model's own dataset (from the stored config), labels in the model's class order;
    None (with a note) when the data cannot be reached. `limit`: a seeded random subset of that size."""
    from cnnkit.config import Config
    from cnnkit.data import build_dataset
    from cnnkit.evaluate.api import _align_classes

    config = meta.get("config")
    if not isinstance(config, dict):
        log.warning("no training config stored with the model: measuring on random inputs")
        return None
    try:
        cfg = Config.from_dict(config, source="the model's stored config")
        data_cfg = cfg.data
        if data_cfg.dataset == "folder":
            data_cfg = dataclasses.replace(
                data_cfg, channels=meta["input"]["channels"], image_size=meta["input"]["size"][0]
            )
        ds = build_dataset(data_cfg, seed=cfg.train.seed)
        s = _align_classes(ds.split(split), ds.class_names, list(meta["class_names"]))
    except (CnnkitError, OSError, ValueError) as e:
        log.warning(
            "the model's %s data is not reachable (%s): measuring on random inputs", split, str(e).splitlines()[0][:200]
        )
        return None
    if list(s.images.shape[1:]) != [meta["input"]["channels"], *meta["input"]["size"]]:
        log.warning(
            "the %s images are %s, the model expects %s: measuring on random inputs",
            split,
            tuple(s.images.shape[1:]),
            meta["input"],
        )
        return None
    if limit is not None and len(s) > limit:
        idx = torch.randperm(len(s), generator=torch.Generator().manual_seed(seed))[:limit].sort().values
        s = Split(s.images[idx], s.labels[idx], [s.paths[i] for i in idx.tolist()] if s.paths else None)
    return s


def random_images(meta: dict, n: int, seed: int = 0) -> torch.Tensor:
    """uint8 noise shaped like the model's input, for when no data is at hand."""
    c, (h, w) = meta["input"]["channels"], meta["input"]["size"]
    return torch.randint(0, 256, (n, c, h, w), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
