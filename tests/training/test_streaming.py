"""Training from streamed files (data.stream): same run as from the decode-once cache."""

import csv
import io
import json

import pytest
import torch
from tests.conftest import make_image_folder

from cnnkit.config import Config
from cnnkit.training.trainer import train


class Crash(Exception):
    pass


def _cfg(root, runs, name, **extra) -> Config:
    return Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(root),
            "data.image_size": 8,
            "data.workers": 0,
            "model.name": "simple_cnn",
            "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
            "augment.hflip": True,
            "augment.translate": 1,
            "train.epochs": 2,
            "train.batch_size": 5,
            "train.checkpoint_every": 2,
            "runtime.num_threads": 1,
            "run.runs_dir": str(runs),
            "run.name": name,
            "run.html_report": False,
            **extra,
        }
    )


def _weights(run) -> dict:
    return torch.load(run.dir / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def _assert_same(a, b) -> None:
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics) and a.summary["val"] == b.summary["val"]
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("streaming") / "imgs", per_class=12, size=10)


@pytest.fixture(scope="module")
def cached_run(folder, tmp_path_factory):
    return train(_cfg(folder, tmp_path_factory.mktemp("runs"), "cached", **{"data.stream": False}), quiet=True)


def test_forced_streaming_trains_the_same_run_as_the_cache(folder, cached_run, tmp_path, capsys):
    run = train(_cfg(folder, tmp_path, "streamed", **{"data.stream": True, "data.workers": 1}), interactive=False)
    assert "cnnkit: streaming the images from their files, decoded in 1 DataLoader workers" in capsys.readouterr().out
    assert {"config.yaml", "metrics.csv", "last.ckpt", "best.ckpt", "summary.json", "report.md"} <= {
        p.name for p in run.dir.iterdir()
    }
    assert json.loads((run.dir / "summary.json").read_text())["split_sizes"] == {"train": 22, "val": 2, "test": 0}
    assert run.config.data.stream is True and len(run.metrics) == 2
    _assert_same(cached_run, run)  # same order, same augmentation draws, same pixels


def test_streamed_run_resumes_mid_epoch_to_the_same_result(folder, cached_run, tmp_path):
    def crash(epoch, step, loss):
        if (epoch, step) == (2, 3):
            raise Crash()

    with pytest.raises(Crash):
        train(_cfg(folder, tmp_path, "r", **{"data.stream": True}), quiet=True, on_step=crash)
    _assert_same(cached_run, train(resume=tmp_path / "r", quiet=True))


def test_auto_streams_above_the_size_limit_and_records_unreadable_files(tmp_path, capsys):
    root = make_image_folder(tmp_path / "imgs", per_class=12, size=10)
    (root / "cat" / "zz-bad.png").write_bytes(b"broken")
    run = train(
        _cfg(root, tmp_path / "runs", "auto", **{"data.cache_max_gb": 1e-6, "train.epochs": 1}), interactive=False
    )
    assert "streaming the images from their files" in capsys.readouterr().out
    rows = list(csv.reader(io.StringIO((run.dir / "skipped.csv").read_text())))
    assert rows == [
        ["path", "reason"],
        [str(root / "cat" / "zz-bad.png"), "not a readable image (unknown or unsupported format)"],
    ]
    assert run.summary["skipped_files"] == 1
