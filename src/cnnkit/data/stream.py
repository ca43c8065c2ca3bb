"""Streaming: datasets too large for the decode-once cache are read from their files as they train.

`should_stream` decides (data.stream, data.cache_max_gb). A streamed split holds a
`FileImages` where a decoded split holds its uint8 (N, C, H, W) tensor: it answers `len`,
`shape`, `dtype` and `ndim` like that tensor without reading a file, so the rest of cnnkit
treats both alike. The training loop and evaluation read it through `load_batches`: batches
of given indices decoded in `data.workers` DataLoader processes, through the same
`load_image` as the cache (EXIF, modes, bomb refusal), so streamed and cached pixels are
identical; pinned memory when the target is CUDA; augmentation and normalisation then run on
the device exactly as for cached batches. The order of the indices is the trainer's (drawn
from its seeded generator and stored in checkpoints), so resume stays exact.

An unreadable file is found when it is first read: it is named in a warning once and added
to the dataset's skipped list (with `strict`, a DataError). A training batch leaves it out;
an evaluation batch scores it as a black image, so predictions stay aligned with labels.

    for x, y in load_batches(split.images, split.labels, [order[:64], order[64:128]], device="cuda"):
        x = normalize(augment(x, generator))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cnnkit.config import DataConfig
from cnnkit.data.images import ImageError, load_image
from cnnkit.data.types import SkippedFile, Split, channel_stats
from cnnkit.errors import ConfigError, DataError

log = logging.getLogger("cnnkit")

STATS_SAMPLE = 1024  # training images decoded at start-up for the normalisation mean/std


def should_stream(cfg: DataConfig, num_images: int, channels: int, size: tuple[int, int]) -> bool:
    """data.stream: true / false, or "auto": stream when the decoded uint8 images would exceed
    data.cache_max_gb (decimal GB). Checks data.workers and data.cache_max_gb too."""
    if cfg.workers < 0:
        raise ConfigError(f"data.workers must be 0 (decode in the training process) or more, got {cfg.workers}")
    if cfg.cache_max_gb < 0:
        raise ConfigError(f"data.cache_max_gb must be >= 0, got {cfg.cache_max_gb}")
    if isinstance(cfg.stream, bool):
        return cfg.stream
    if cfg.stream != "auto":
        raise ConfigError(f"data.stream must be auto, true or false, got {cfg.stream!r}")
    return num_images * channels * size[0] * size[1] > cfg.cache_max_gb * 1e9


class _Report:
    """Unreadable files met while streaming: each warned about once and recorded in `skipped`."""

    def __init__(self, skipped: list[SkippedFile], strict: bool):
        self.skipped, self.strict, self.seen = skipped, strict, {s.path for s in skipped}

    def __call__(self, path: str, reason: str) -> None:
        if self.strict:
            raise DataError(f"{path}: {reason} (remove the file, or train without --strict to skip bad files)")
        if path not in self.seen:
            self.seen.add(path)
            self.skipped.append(SkippedFile(path, reason))
            log.warning("skipping %s: %s", path, reason)


Index = int | np.integer[Any] | list[int] | np.ndarray[Any, Any] | torch.Tensor  # what `FileImages[...]` accepts


class FileImages:
    """Image files standing in for a decoded (N, C, H, W) uint8 tensor.

    `images[index]` decodes those files now, in this process (threads), for the occasional
    consumer that wants pixels (test-time augmentation, error galleries); training and
    evaluation read through `load_batches` instead. `take(index)` is the lazy subset.
    `skipped` is where unreadable files are recorded (pass the Dataset's list).
    """

    dtype = torch.uint8
    ndim = 4

    def __init__(
        self,
        files: Sequence[str | os.PathLike[str]],
        channels: int,
        size: tuple[int, int],
        *,
        workers: int = 2,
        strict: bool = False,
        skipped: list[SkippedFile] | None = None,
        interpolation: str | None = None,
        _report: _Report | None = None,
    ):
        self.files = [str(f) for f in files]
        self.channels, self.size, self.workers = channels, (size[0], size[1]), workers
        self.interpolation = interpolation  # the resize's filter (data.interpolation; None: bilinear)
        self.report = _report or _Report(skipped if skipped is not None else [], strict)
        self._packed: PathList | None = None

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), self.channels, *self.size))

    @property
    def skipped(self) -> list[SkippedFile]:
        return self.report.skipped

    @property
    def packed(self) -> PathList:
        """The files as a `PathList`, built once, for DataLoader workers."""
        if self._packed is None:
            self._packed = PathList(self.files)
        return self._packed

    def __len__(self) -> int:
        return len(self.files)

    def __repr__(self) -> str:
        return f"FileImages({len(self.files)} files, {self.channels}x{self.size[0]}x{self.size[1]}, workers={self.workers})"

    def _positions(self, index: Index) -> torch.Tensor:
        return torch.arange(len(self.files))[torch.as_tensor(index) if isinstance(index, (list, np.ndarray)) else index]

    def take(self, index: Index) -> FileImages:
        pos = self._positions(index).reshape(-1).tolist()
        return FileImages(
            [self.files[i] for i in pos],
            self.channels,
            self.size,
            workers=self.workers,
            interpolation=self.interpolation,
            _report=self.report,
        )

    def decode(self, index: Index) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, readable) of the files at `index`: unreadable ones are black and reported."""
        pos = self._positions(index).reshape(-1).tolist()
        out = np.zeros((len(pos), self.channels, *self.size), dtype=np.uint8)
        ok = torch.ones(len(pos), dtype=torch.bool)

        def one(k: int) -> ImageError | None:
            try:
                out[k] = load_image(self.files[pos[k]], self.channels, self.size, self.interpolation)
            except ImageError as e:
                ok[k] = False
                return e
            return None

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(pos)))) as pool:  # PIL decodes outside the GIL
            errors = list(pool.map(one, range(len(pos))))
        for k, e in enumerate(errors):
            if e is not None:
                path = self.files[pos[k]]
                self.report(path, str(e).removeprefix(f"{path}: "))
        return torch.from_numpy(out), ok

    def __getitem__(self, index: Index) -> torch.Tensor:
        images, _ = self.decode(index)
        return images[0] if isinstance(index, (int, np.integer)) else images


def is_streamed(split: Split | None) -> bool:
    return split is not None and isinstance(split.images, FileImages)


def subset(split: Split, index: torch.Tensor) -> Split:
    """`split.subset(index)`, without decoding when the split is streamed."""
    if not is_streamed(split):
        return split.subset(index)
    paths = [split.paths[i] for i in index.tolist()] if split.paths is not None else None
    images: FileImages = split.images  # type: ignore[assignment]  # Split.images is typed as the tensor FileImages stands in for
    return Split(images.take(index), split.labels[index], paths)  # type: ignore[arg-type]  # same stand-in


def sample_stats(
    images: FileImages, seed: int = 0, n: int = STATS_SAMPLE
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean/std (as `channel_stats`) of up to `n` seeded-random images (in file order)."""
    count = len(images)
    index = (
        torch.arange(count)
        if count <= n
        else torch.sort(torch.randperm(count, generator=torch.Generator().manual_seed(seed))[:n]).values
    )
    x, ok = images.decode(index)
    return channel_stats(x[ok])


class PathList:
    """Paths packed into one byte buffer plus offsets. A list of a million `str` objects would be
    copied page by page into every forked DataLoader worker as reading them touches their
    reference counts; these two arrays are shared, never written."""

    def __init__(self, paths: Sequence[str | os.PathLike[str]]):
        encoded = [os.fsencode(p) for p in paths]
        self.buffer = np.frombuffer(b"".join(encoded), dtype=np.uint8)
        self.offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> str:
        return os.fsdecode(self.buffer[self.offsets[i] : self.offsets[i + 1]].tobytes())


# one decoded file: (image or None, label, None or (path, reason) when unreadable)
FileItem = tuple[torch.Tensor | None, torch.Tensor, tuple[str, str] | None]


class ImageFiles(torch.utils.data.Dataset[FileItem]):
    """files[i] decoded to uint8 (C, H, W) at `size`, with labels[i]; errors returned, not raised."""

    def __init__(
        self,
        files: Sequence[str | os.PathLike[str]] | PathList,
        labels: torch.Tensor | Sequence[Any],
        channels: int,
        size: tuple[int, int],
        interpolation: str | None = None,
    ):
        self.files = files if isinstance(files, PathList) else PathList([str(f) for f in files])
        self.labels, self.channels, self.size = torch.as_tensor(labels), channels, size
        self.interpolation = interpolation

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> FileItem:
        path = self.files[i]
        try:
            return (
                torch.from_numpy(load_image(path, self.channels, self.size, self.interpolation)),
                self.labels[i],
                None,
            )
        except ImageError as e:
            return None, self.labels[i], (path, str(e).removeprefix(f"{path}: "))


@dataclass
class StreamBatch:
    images: torch.Tensor  # (B, C, H, W) uint8
    labels: torch.Tensor
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason) of files left out

    def pin_memory(self) -> StreamBatch:  # called by DataLoader(pin_memory=True)
        return StreamBatch(self.images.pin_memory(), self.labels.pin_memory(), self.skipped)


def collate(items: list[FileItem]) -> StreamBatch:
    ok = [(x, y) for x, y, err in items if err is None and x is not None]  # x is None exactly when err is set
    skipped = [err for _, _, err in items if err is not None]
    if not ok:
        return StreamBatch(torch.zeros(0, dtype=torch.uint8), torch.zeros(0, dtype=torch.long), skipped)
    return StreamBatch(torch.stack([x for x, _ in ok]), torch.stack([y for _, y in ok]), skipped)


def _loader(
    files: Sequence[str | os.PathLike[str]] | PathList,
    labels: torch.Tensor | Sequence[Any],
    channels: int,
    size: tuple[int, int],
    workers: int,
    device: torch.device | str,
    generator: torch.Generator | None = None,
    interpolation: str | None = None,
    **kwargs: Any,
) -> torch.utils.data.DataLoader[FileItem]:
    # its own generator even unshuffled: the loader draws its workers' base seed from it, which
    # would otherwise advance the global RNG (dropout...) and make streamed training differ from cached
    return torch.utils.data.DataLoader(
        ImageFiles(files, labels, channels, size, interpolation),
        num_workers=workers,
        collate_fn=collate,
        pin_memory=torch.device(device).type == "cuda",
        persistent_workers=False,
        generator=generator or torch.Generator(),
        **kwargs,
    )


def load_batches(
    images: FileImages,
    labels: torch.Tensor,
    index_batches: Sequence[torch.Tensor],
    *,
    device: torch.device | str = "cpu",
    drop_unreadable: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(uint8 images, labels) of each index batch, decoded in `images.workers` DataLoader processes.

    An unreadable file is reported (see `FileImages`) and left out of its batch, or with
    `drop_unreadable=False` given as a black image, so the batch keeps its length.
    """
    batches = [b.tolist() for b in index_batches]
    if not batches:
        return
    loader = _loader(
        images.packed,
        labels,
        images.channels,
        images.size,
        images.workers,
        device,
        interpolation=images.interpolation,
        batch_sampler=batches,
    )
    for idx, batch in zip(batches, loader):
        if not batch.skipped:
            yield batch.images, batch.labels
            continue
        for path, reason in batch.skipped:
            images.report(path, reason)
        if drop_unreadable:
            yield batch.images, batch.labels
            continue
        bad = {p for p, _ in batch.skipped}
        ok = torch.tensor([images.files[i] not in bad for i in idx])
        x = torch.zeros((len(idx), images.channels, *images.size), dtype=torch.uint8)
        if ok.any():
            x[ok] = batch.images
        yield x, labels[idx]


def stream_batches(
    files: list[str],
    labels: torch.Tensor | Sequence[Any],
    channels: int,
    size: tuple[int, int],
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    workers: int = 2,
    device: torch.device | str = "cpu",
    drop_last: bool = False,
) -> torch.utils.data.DataLoader[FileItem]:
    """A DataLoader of `StreamBatch`es over `files` decoded in `workers` processes (pinned memory on CUDA)."""
    return _loader(
        files,
        labels,
        channels,
        size,
        workers,
        device,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last,
        generator=torch.Generator().manual_seed(seed) if shuffle else None,
    )
