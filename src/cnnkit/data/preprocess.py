"""uint8 batches to normalised float model input, on the target device."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class Normalize:
    """(x / 255 - mean) / std per channel; the mean/std travel with the checkpoint."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        device: torch.device | str = "cpu",
        channels_last: bool = False,
    ):
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, -1, 1, 1) * 255.0
        self.device = torch.device(device)
        self.channels_last = channels_last

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True).float()
        x = (x - self.mean) / self.std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def batches(
    n: int, batch_size: int, *, shuffle: bool = False, generator: torch.Generator | None = None, drop_last: bool = False
) -> Iterator[torch.Tensor]:
    """Index tensors covering range(n) in batches (shuffled with `generator` when asked)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i : i + batch_size]


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    if drop_last and n >= batch_size:
        return n // batch_size
    return -(-n // batch_size)
