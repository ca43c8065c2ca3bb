"""CPU threads that follow the machine's load (`runtime.num_threads: null`, the default).

Why: PyTorch's CPU kernels split each operation over all threads and wait for the slowest.
When another program keeps a core busy, the thread that shares that core runs in time
slices, and every operation waits for it: on 2 cores beside one busy process a 2-thread
step ran several times slower than a 1-thread one (benchmarks/bench_contention.py).

`ThreadGovernor` measures how many cores *other* processes keep busy (from /proc/stat, less
this process's own CPU time) and uses the cores that are left, at least one. It looks once
before training and then every few seconds from the training thread (OpenMP's thread count
is per calling thread, so it must be set there). A fixed `--threads N` turns it off; it is
off too where /proc/stat does not exist (macOS, Windows) and off the CPU.

The thread count changes float reductions, so a run whose count changed is not bit-for-bit
reproducible; a fixed `--threads N` is (the README says so).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

_STAT = "/proc/stat"


@dataclass(frozen=True)
class CpuSample:
    """Jiffies from /proc/stat's first line (all cores) and this process's CPU seconds."""

    total: float  # every core's jiffies, busy or idle
    busy: float  # the same less idle and iowait
    own: float  # this process's user + system seconds (all its threads)
    at: float  # time.monotonic()


def read_sample(stat_path: str = _STAT) -> CpuSample | None:
    """The machine's CPU counters now, or None where /proc/stat cannot be read."""
    try:
        with open(stat_path) as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [float(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(values)
    busy = total - values[3] - values[4]
    t = os.times()
    return CpuSample(total=total, busy=busy, own=t.user + t.system, at=time.monotonic())


def busy_cores_of_others(a: CpuSample, b: CpuSample, cores: int, ticks_per_second: float) -> float:
    """How many cores other processes kept busy between samples `a` and `b` (0 when unknown)."""
    total = b.total - a.total
    if total <= 0:
        return 0.0
    cores_total = os.cpu_count() or cores  # /proc/stat counts every online core, not just ours
    others = (b.busy - a.busy) - (b.own - a.own) * ticks_per_second
    return max(0.0, others / total * cores_total)


def threads_for(cores: int, others: float) -> int:
    """The threads to use on `cores` cores when others keep `others` of them busy.

    A core counts as taken once others use more than 0.4 of it on average: a thread that
    shares a core even part of the time slows every operation down to its pace.
    """
    taken = int(others + 0.6)  # 0.4 -> 1 core, 1.4 -> 2 cores
    return max(1, min(cores, cores - taken))


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass
class ThreadGovernor:
    """Sets torch's intra-op thread count to the cores other processes leave free.

    `start()` measures for `probe_seconds` and sets the first count; `tick()` (called from the
    training thread, e.g. after every step) re-measures every `every_seconds` and changes the
    count when two measurements in a row agree. `changes` lists (seconds since start, threads).
    """

    cores: int = field(default_factory=available_cores)
    every_seconds: float = 3.0
    probe_seconds: float = 0.25
    on_change: Callable[[int, int, float], None] | None = None  # (old, new, busy cores of others)
    sample: Callable[[], CpuSample | None] = read_sample
    ticks_per_second: float = field(
        default_factory=lambda: float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    )
    changes: list[tuple[float, int]] = field(default_factory=list)
    _last: CpuSample | None = None
    _pending: int | None = None
    _t0: float = 0.0

    @property
    def active(self) -> bool:
        return self._last is not None

    def start(self) -> int:
        """Measure, set the first thread count and return it (the current count when inactive)."""
        self._t0 = time.monotonic()
        first = self.sample()
        if first is None or self.cores < 2:
            return torch.get_num_threads()
        time.sleep(self.probe_seconds)
        self._last = self.sample()
        n = (
            threads_for(self.cores, busy_cores_of_others(first, self._last, self.cores, self.ticks_per_second))
            if self._last
            else self.cores
        )
        self._set(n, None)
        return n

    def tick(self) -> None:
        if self._last is None or time.monotonic() - self._last.at < self.every_seconds:
            return
        now = self.sample()
        if now is None:
            return
        others = busy_cores_of_others(self._last, now, self.cores, self.ticks_per_second)
        self._last = now
        n = threads_for(self.cores, others)
        if n == torch.get_num_threads():
            self._pending = None
        elif self._pending == n:  # two windows in a row: the load really changed
            self._pending = None
            self._set(n, others)
        else:
            self._pending = n

    def _set(self, n: int, others: float | None) -> None:
        old = torch.get_num_threads()
        torch.set_num_threads(n)
        self.changes.append((round(time.monotonic() - self._t0, 2), n))
        if old != n and self.on_change is not None:
            self.on_change(old, n, others if others is not None else float(self.cores - n))


StepHook = Callable[[int, int, float], None]


def follow_load(on_step: StepHook | None, device: str, stream=None) -> StepHook | None:
    """Start a governor for a CPU run and return `on_step` with its `tick` in front.

    Returns `on_step` unchanged off the CPU or where the load cannot be measured. Changes are
    reported on `stream` (None: silent), from rank 0 only."""
    from cnnkit.device import resolve_device
    from cnnkit.training import distributed

    if resolve_device(device).type != "cpu":
        return on_step
    governor = ThreadGovernor()
    governor.on_change = _ReportChange(stream if distributed.world()[0] == 0 else None, governor.cores)
    governor.start()
    if not governor.active:
        return on_step
    return _TickThenStep(governor, on_step)


@dataclass
class _ReportChange:
    """The governor's on_change: one line on `stream` (None: silent) when it changes the count."""

    stream: Any
    cores: int

    def __call__(self, old: int, new: int, others: float) -> None:
        if self.stream is not None:
            print(
                f"cnnkit: other programs keep about {others:.1f} of {self.cores} cores busy; "
                f"training on {new} thread{'s' if new != 1 else ''} instead of {old} (--threads N fixes the count)",
                file=self.stream,
            )


@dataclass
class _TickThenStep:
    """A run's on_step with the governor's tick in front."""

    governor: ThreadGovernor
    on_step: StepHook | None

    def __call__(self, epoch: int, step: int, loss: float) -> None:
        self.governor.tick()
        if self.on_step is not None:
            self.on_step(epoch, step, loss)
