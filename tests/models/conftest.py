import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """The models tests use tiny tensors: one intra-op thread avoids OpenMP's waiting on a busy
    2-core machine (measured: a 120-step head fit took 7.5 s on 2 threads, 0.2 s on 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
