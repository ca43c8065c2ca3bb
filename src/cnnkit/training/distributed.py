"""DistributedDataParallel through PyTorch's own launcher (torchrun) or `cnnkit train --devices N`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; `launch` sets the
same for N local processes. Every rank sees the same data order (same seed); each takes its
share of every global batch; gradients are averaged by DDP; rank 0 alone writes the run folder.

    cnnkit train --devices 2 ...                                  # one machine, 2 processes
    torchrun --nproc-per-node 4 -m cnnkit train ...               # one machine, 4 GPUs
    # two machines (run on each; --node-rank 0 on the first, whose address is HOST):
    torchrun --nnodes 2 --node-rank 0 --nproc-per-node 4 --master-addr HOST --master-port 29500 -m cnnkit train ...
    torchrun ... -m cnnkit train --resume RUN_DIR                  # resume works the same way

With several nodes the run folder (and the dataset cache) must be on a filesystem every
node sees at the same path, since rank 0 writes and --resume reads it.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch

from cnnkit.errors import ConfigError


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the environment torchrun sets; (0, 1, 0) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init(device: torch.device) -> None:
    """Join the process group (gloo on the CPU, nccl on CUDA) if WORLD_SIZE > 1 and not joined yet."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)


def device_for_rank(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return device


def broadcast_object(obj, src: int = 0):
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(local_rank: int, world_size: int, port: int, cfg, run_dir: str, kwargs: dict) -> None:  # pragma: no cover - in a child
    os.environ.update({"RANK": str(local_rank), "LOCAL_RANK": str(local_rank), "WORLD_SIZE": str(world_size), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    from cnnkit.training.trainer import train

    try:
        resume = kwargs.get("resume")
        train(cfg, run_dir=None if resume else Path(run_dir), resume=resume, quiet=kwargs.get("quiet", False) or local_rank != 0, interactive=False)
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def launch(cfg, devices: int, *, quiet: bool = False, resume: str | Path | None = None) -> Path:
    """Train with `devices` local processes (gloo on the CPU); returns the run folder rank 0 wrote."""
    import torch.multiprocessing as mp

    from cnnkit.rundir import create_run_dir

    if devices < 2:
        raise ConfigError(f"--devices {devices}: launch needs at least 2 processes")
    if cfg.train.batch_size % devices:
        raise ConfigError(f"train.batch_size {cfg.train.batch_size} must be divisible by --devices {devices} (it is the global batch)")
    if resume is not None:
        run_dir = Path(resume)
    else:
        run_dir = create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=cfg.data.dataset, model=cfg.model.name)
    kwargs = {"quiet": quiet, "resume": str(resume) if resume is not None else None}
    mp.start_processes(_worker, args=(devices, _free_port(), cfg, str(run_dir), kwargs), nprocs=devices, join=True, start_method="spawn")
    return run_dir
