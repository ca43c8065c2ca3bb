"""Dynamic batching: requests waiting for the model are gathered into one forward pass.

A request's images go into a queue; one dispatcher task takes the waiting requests, up to
`max_batch` images or until the first of them has waited `max_wait_s`, stacks them, runs the
forward pass on the model's own thread (the event loop never blocks on the model), and hands
each request its own rows. While a batch runs, the next one gathers. After a batch of one
image (a request that found no company) the next batch does not wait: under light load a lone
request is answered at once instead of `max_wait_s` later (at concurrency 1, waiting 2 ms cost
40 % of the requests per second, bench_serve_gil02_full.md), and as soon as two or more images
are waiting together, batches wait again. A queue holding
`max_queue` images refuses more at once (`QueueFull`: the caller answers 503 + Retry-After).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np


class QueueFull(Exception):
    """The queue holds `max_queue` images already."""


@dataclass
class _Item:
    images: np.ndarray  # (n, C, H, W) uint8
    future: asyncio.Future
    arrived: float = field(default_factory=time.monotonic)


class Batcher:
    def __init__(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int,
        max_wait_s: float,
        max_queue: int,
        on_batch: Callable[[int], None] | None = None,
        on_queue: Callable[[int], None] | None = None,
    ):
        self.forward, self.max_batch, self.max_wait_s, self.max_queue = forward, max_batch, max_wait_s, max_queue
        self.on_batch, self.on_queue = on_batch, on_queue
        self._pending: deque[_Item] = deque()
        self.queued = 0  # images in _pending
        self.last_batch = 0  # images in the last forward pass (0: none yet); 1 means the next batch does not wait
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="cnnkit-model")  # the model's one thread
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    # -- lifecycle (the app's lifespan calls these) --
    def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._dispatch(), name="cnnkit-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for item in self._pending:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the service is shutting down"))
        self._pending.clear()
        self._executor.shutdown(wait=True)

    # -- requests --
    async def submit(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) for these images, from a shared forward pass."""
        n = len(images)
        if self.queued + n > self.max_queue:
            raise QueueFull(f"{self.queued} images are waiting (limit {self.max_queue})")
        if self._wake is None:
            raise RuntimeError("the batcher is not started (the app's lifespan starts it)")
        item = _Item(images, asyncio.get_running_loop().create_future())
        self._pending.append(item)
        self._set_queued(self.queued + n)
        self._wake.set()
        try:
            return await item.future
        finally:  # cancelled (a timeout, a client gone) while still waiting: leave the queue
            if not item.future.done() or item.future.cancelled():
                try:
                    self._pending.remove(item)
                    self._set_queued(self.queued - n)
                except ValueError:
                    pass

    async def run_exclusive(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the model's thread, between batches (e.g. Grad-CAM, whose hooks must not see a batch)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _set_queued(self, n: int) -> None:
        self.queued = n
        if self.on_queue:
            self.on_queue(n)

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        size = 0
        while self._pending:
            item = self._pending[0]
            if item.future.done():  # cancelled meanwhile
                self._pending.popleft()
                self._set_queued(self.queued - len(item.images))
                continue
            if batch and size + len(item.images) > self.max_batch:
                break
            self._pending.popleft()
            self._set_queued(self.queued - len(item.images))
            batch.append(item)
            size += len(item.images)
        return batch

    async def _dispatch(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            deadline = self._pending[0].arrived + (self.max_wait_s if self.last_batch != 1 else 0.0)
            while self.queued < self.max_batch and (left := deadline - time.monotonic()) > 0:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), left)
                except TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            stacked = np.concatenate([item.images for item in batch])
            self.last_batch = len(stacked)
            if self.on_batch:
                self.on_batch(len(stacked))
            try:
                probs = await loop.run_in_executor(self._executor, self._forward_chunks, stacked)
            except Exception as e:  # noqa: BLE001 - handed to each waiting request
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(e)
                continue
            start = 0
            for item in batch:
                rows = probs[start : start + len(item.images)]
                start += len(item.images)
                if not item.future.done():
                    item.future.set_result(rows)

    def _forward_chunks(self, x: np.ndarray) -> np.ndarray:
        """One pass, or chunks of max_batch when a single request brought more images."""
        if len(x) <= self.max_batch:
            return self.forward(x)
        return np.concatenate([self.forward(x[i : i + self.max_batch]) for i in range(0, len(x), self.max_batch)])
