"""A trial model's measured CPU latency, for `cnnkit tune --max-latency-ms` and `objectives: [accuracy, latency]`.

Batch 1, eval mode, no autograd, on the CPU at the run's input size and `runtime.num_threads`
(PyTorch's default when unset): `warmup` untimed forwards (allocator, oneDNN's kernel choice),
then the median of `repeats` timed ones. The median, not the mean, because a forward
interrupted by another process on a shared machine is an outlier, not the model's cost.
The number is this machine's: a limit set on a laptop means something else on a server.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch import nn


@torch.no_grad()
def measure_latency_ms(
    model: nn.Module, input_shape: tuple[int, ...], threads: int | None = None, warmup: int = 2, repeats: int = 5
) -> float:
    """Median milliseconds of one batch-1 forward of `model` on a (1, *input_shape) CPU tensor."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats}, {warmup}")
    prev_threads = torch.get_num_threads()
    was_training = model.training
    if threads:
        torch.set_num_threads(threads)
    try:
        model.eval()
        x = torch.randn(1, *input_shape)
        for _ in range(warmup):
            model(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(prev_threads)
        model.train(was_training)
    return 1000.0 * statistics.median(times)
