"""Streaming for datasets too large for the decode-once cache: DataLoader workers decode.

Each worker reads files through the same `load_image` as everything else (EXIF, modes,
bomb refusal), so streamed and cached images are identical. A bad file does not stop the
stream: its batch comes back without it, and `StreamBatch.skipped` names it. Batches are
uint8 (B, C, H, W), pinned when the target is CUDA; augment and normalise them on the
device exactly like cached batches.

    for batch in stream_batches(files, labels, 3, (224, 224), 64, shuffle=True, seed=epoch):
        x = normalize(augment(batch.images, generator)); y = batch.labels
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from cnnkit.data.images import ImageError, load_image


class ImageFiles(torch.utils.data.Dataset):
    """files[i] decoded to uint8 (C, H, W) at `size`, with labels[i]; errors returned, not raised."""

    def __init__(self, files: list, labels, channels: int, size: tuple[int, int]):
        self.files, self.labels, self.channels, self.size = [str(f) for f in files], torch.as_tensor(labels), channels, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        try:
            return torch.from_numpy(load_image(self.files[i], self.channels, self.size)), self.labels[i], None
        except ImageError as e:
            return None, self.labels[i], (self.files[i], str(e).removeprefix(f"{self.files[i]}: "))


@dataclass
class StreamBatch:
    images: torch.Tensor  # (B, C, H, W) uint8
    labels: torch.Tensor
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of files left out

    def pin_memory(self) -> "StreamBatch":  # called by DataLoader(pin_memory=True)
        return StreamBatch(self.images.pin_memory(), self.labels.pin_memory(), self.skipped)


def collate(items) -> StreamBatch:
    ok = [(x, y) for x, y, err in items if err is None]
    skipped = [err for _, _, err in items if err is not None]
    if not ok:
        return StreamBatch(torch.zeros(0, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), skipped)
    return StreamBatch(torch.stack([x for x, _ in ok]), torch.stack([y for _, y in ok]), skipped)


def stream_batches(
    files: list, labels, channels: int, size: tuple[int, int], batch_size: int, *, shuffle: bool = False, seed: int = 0,
    workers: int = 2, device: torch.device | str = "cpu", drop_last: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader of `StreamBatch`es decoded in `workers` processes (pinned memory on CUDA)."""
    ds = ImageFiles(files, labels, channels, size)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed) if shuffle else None,
        num_workers=workers, collate_fn=collate, pin_memory=torch.device(device).type == "cuda", drop_last=drop_last,
        persistent_workers=False,
    )
