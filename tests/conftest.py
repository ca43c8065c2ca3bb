from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"

# A shell starts background jobs (`make test &`) with SIGINT ignored, and an ignored signal stays
# ignored in every process they start: the Ctrl-C tests' subprocesses would never see the signal
# they are sent. Restore Python's own handler so the tests run the same in the background.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def make_image_folder(
    root: Path, classes=("cat", "dog"), per_class: int = 6, size: int = 12, mode: str = "RGB"
) -> Path:
    """Class folders of small synthetic images whose class is decidable (bright top vs bottom)."""
    rng = np.random.default_rng(0)
    for ci, name in enumerate(classes):
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            arr = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            rows = slice(0, size // 2) if ci % 2 == 0 else slice(size // 2, size)
            arr[rows] = 220
            Image.fromarray(arr).convert(mode).save(d / f"{i:03d}.png")
    return root


def tiny_train_args(
    data: Path, runs: Path, *extra: str, image_size: int = 12, epochs: int = 2, batch_size: int = 4
) -> list[str]:
    """`cnnkit train` arguments for a seconds-long run of a 4-wide simple_cnn on an image folder."""
    return [
        "train",
        "--data",
        str(data),
        "--image-size",
        str(image_size),
        "--model",
        "simple_cnn",
        "--set",
        "model.kwargs={width: 4, stages: 1, depth: 1}",
        "--epochs",
        str(epochs),
        "--batch-size",
        str(batch_size),
        "--runs-dir",
        str(runs),
        "--quiet",
        *extra,
    ]


@pytest.fixture(autouse=True, scope="session")
def _private_decode_cache(tmp_path_factory):
    """Keep the decode-once cache of folder datasets out of the user's ~/.cache during tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNKIT_CACHE", str(tmp_path_factory.mktemp("decode_cache")))
    yield
    mp.undo()


@pytest.fixture(autouse=True)
def _fixed_thread_count(request, monkeypatch):
    """Tests compare runs number for number, and the thread count changes float sums: the load-following
    governor (training/threads.py) keeps PyTorch's count here, except in its own tests."""
    if request.module.__name__.endswith("test_threads"):
        return
    import torch

    from cnnkit.training import threads

    monkeypatch.setattr(threads.ThreadGovernor, "start", lambda self: torch.get_num_threads())


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return make_image_folder(tmp_path / "images")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A real (tiny) training run on mnist-mini, shared by the evaluate / predict / checkpoint tests."""
    from cnnkit.config import Config
    from cnnkit.training.trainer import train

    runs = tmp_path_factory.mktemp("runs")
    cfg = Config().with_overrides(
        {
            "data.subset_per_class": 20,
            "model.name": "simple_cnn",
            "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
            "train.epochs": 2,
            "train.batch_size": 32,
            "runtime.num_threads": 1,  # the same weights whatever the machine's load (threads change float sums)
            "run.runs_dir": str(runs),
            "run.name": "tiny",
        }
    )
    return train(cfg, quiet=True).dir
