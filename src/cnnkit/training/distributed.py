"""DistributedDataParallel through PyTorch's own launcher (torchrun) or `cnnkit train --devices N`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; training/launcher.py
sets the same for N local processes. Every rank sees the same data order (same seed); each takes its
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

import torch


def world() -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from the environment torchrun sets; (0, 1, 0) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def init(device: torch.device) -> None:
    """Join the process group (gloo on the CPU, nccl on CUDA) if WORLD_SIZE > 1 and not joined yet."""
    import torch.distributed as dist

    if dist.is_initialized():
        return
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:  # torch's own error is a ValueError traceback about "env:// rendezvous"
        from cnnkit.errors import ConfigError

        raise ConfigError(
            f"WORLD_SIZE={os.environ.get('WORLD_SIZE')} asks for several processes, but {' and '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not set; start them with torchrun or cnnkit train --devices N"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)


def device_for_rank(device: torch.device, local_rank: int) -> torch.device:
    if device.type == "cuda":  # pragma: no cover - needs a GPU (the test machines have none); torchrun's runs use it
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return device


def broadcast_object(obj, src: int = 0):
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_epoch_sums(state, device: torch.device) -> torch.Tensor:
    """(world_size, 4) float64: every rank's running sums of the epoch so far (loss, L1, correct, images).

    Each rank sums only its share of every batch, so a step checkpoint keeps every rank's row;
    `epoch_state_for_rank` hands each its own back on resume. A collective: all ranks call it.
    """
    import torch.distributed as dist

    mine = torch.stack(
        [
            state.loss_sum.detach().double(),
            state.l1_sum.detach().double(),
            state.correct.detach().double(),
            torch.tensor(float(state.seen), dtype=torch.float64, device=state.loss_sum.device),
        ]
    ).to(device)
    rows = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(rows, mine)
    return torch.stack(rows).cpu()


def epoch_state_for_rank(saved: dict, sums: torch.Tensor | None, rank: int, world_size: int) -> dict:
    """A step checkpoint's epoch state with this rank's running sums: its own row if the run had as
    many processes; else the totals on rank 0 and zeros elsewhere (the epoch's all-reduce adds them up)."""
    if sums is None:  # written by one process: its sums are the totals
        if world_size == 1:
            return saved
        sums = torch.tensor(
            [[float(saved["loss_sum"]), float(saved["l1_sum"]), float(saved["correct"]), float(saved["seen"])]],
            dtype=torch.float64,
        )
    if len(sums) == world_size:
        row = sums[rank]
    else:
        row = sums.sum(0) if rank == 0 else torch.zeros(4, dtype=torch.float64)
    return {
        **saved,
        "loss_sum": row[0].float(),
        "l1_sum": row[1].float(),
        "correct": row[2].round().long(),
        "seen": int(row[3]),
    }
