"""How an epoch is cut into batches: every image of the epoch's order is used.

The last full batch also takes the remainder (n % batch_size images), instead of the remainder
being dropped (drop_last) or trained as a small batch of its own:
- nothing is left out: with 245 images and batch 64, drop_last skipped 53 images (22 %) every epoch;
- no batch is smaller than batch_size, so a remainder of one image never meets batch norm in
  training mode (which cannot normalise a single sample) and never takes a full-rate step on its own;
- the number of steps stays n // batch_size, so schedules, time budgets and step checkpoints
  (resume parity) are planned as before.
The cost: one batch per epoch has up to 2 x batch_size - 1 images (memory for it once an epoch).

`train_batches` reads the batches: indexed from the decoded tensor, or for a
streamed split (data too large to decode once) decoded in DataLoader workers, in the same order.
"""

from __future__ import annotations

import sys

import torch

from cnnkit.data.stream import FileImages, is_streamed, load_batches
from cnnkit.data.types import Split


def batch_end(start: int, batch_size: int, n: int) -> int:
    """End (exclusive) of the batch that starts at `start` in an order of `n` images."""
    return n if start + 2 * batch_size > n else start + batch_size


def clamp_batch_size(batch_size: int, n: int, world_size: int = 1, *, quiet: bool = False) -> int:
    """A batch larger than the training set becomes the whole set (a multiple of the processes),
    with a note on stderr; otherwise `batch_size` unchanged."""
    if batch_size <= n:
        return batch_size
    clamped = n - n % world_size
    if clamped < 1:
        from cnnkit.errors import ConfigError

        raise ConfigError(f"{n} training images cannot be split across {world_size} processes; use fewer --devices")
    if not quiet:
        print(clamp_note(batch_size, n, clamped), file=sys.stderr, flush=True)
    return clamped


def clamp_note(batch_size: int, n: int, clamped: int) -> str:
    return f"cnnkit: note: train.batch_size {batch_size} is larger than the {n} training images; using {clamped} (one step per epoch)"


def train_batches(data: Split, order: torch.Tensor, starts: range, batch_size: int, device: torch.device):
    """(start, uint8 images, labels) of the batches of `order` beginning at `starts`: indexed from the
    decoded tensor, or for a streamed split decoded in DataLoader workers (unreadable files left out)."""
    if is_streamed(data):
        assert isinstance(data.images, FileImages)  # what is_streamed checked
        index = [order[s : batch_end(s, batch_size, len(order))] for s in starts]
        yield from (
            (s, x, y) for s, (x, y) in zip(starts, load_batches(data.images, data.labels, index, device=device))
        )
        return
    for s in starts:
        idx = order[s : batch_end(s, batch_size, len(order))]
        yield s, data.images[idx], data.labels[idx]
