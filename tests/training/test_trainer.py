import csv
import io
import json

import torch

from cnnkit.config import Config, load_config
from cnnkit.rundir import create_run_dir
from cnnkit.training.progress import Progress
from cnnkit.training.trainer import METRIC_COLUMNS, train

TINY = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
    "train.epochs": 2,
    "train.batch_size": 25,
    "runtime.num_threads": 1,
}


def test_run_folder_is_complete(tiny_run):
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "best.ckpt",
        "last.ckpt",
        "report.md",
        "environment.json",
        "test_metrics.json",
    ):
        assert (tiny_run / name).is_file(), name
    for plot in ("learning_curves.png", "confusion_matrix.png"):
        assert (tiny_run / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((tiny_run / "metrics.csv").read_text().splitlines()))
    assert list(rows[0]) == METRIC_COLUMNS and [r["epoch"] for r in rows] == ["1", "2"]
    summary = json.loads((tiny_run / "summary.json").read_text())
    for key in ("dataset", "model", "num_classes", "class_names", "epochs", "train_seconds", "best_epoch", "test"):
        assert key in summary, key
    assert summary["dataset"] == "mnist-mini" and summary["num_classes"] == 10 and summary["epochs"] == 2
    assert set(summary["test"]) >= {"accuracy", "loss", "top5_accuracy"}
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0 and summary["test"]["num_samples"] == 2000
    report = (tiny_run / "report.md").read_text()
    assert f"{100 * summary['test']['accuracy']:.2f} %" in report and "plots/confusion_matrix.png" in report
    cfg = load_config(tiny_run / "config.yaml")
    assert cfg.run.name == "tiny" and cfg.data.subset_per_class == 20


def test_same_seed_same_metrics(tmp_path):
    cfg = Config().with_overrides({**TINY, "run.runs_dir": str(tmp_path)})
    a = train(cfg, quiet=True)
    b = train(load_config(a.dir / "config.yaml"), quiet=True)
    assert b.dir != a.dir and b.dir.name == a.dir.name + "-2"
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a.metrics) == strip(b.metrics)
    assert a.summary["test"] == b.summary["test"]


def test_run_names_never_overwrite(tmp_path):
    first = create_run_dir(tmp_path, "exp", dataset="d", model="m")
    (first / "keep.txt").write_text("x")
    second = create_run_dir(tmp_path, "exp", dataset="d", model="m")
    assert second.name == "exp-2" and (first / "keep.txt").read_text() == "x"
    auto = create_run_dir(tmp_path, None, dataset="mnist-mini", model="simple_cnn")
    assert auto.name.startswith("mnist-mini-simple_cnn-")
    spec = create_run_dir(tmp_path, None, dataset="mnist-mini", model="conv(8,3)-bn-relu-gap-fc")
    assert spec.name.startswith("mnist-mini-spec-")


def test_batch_size_larger_than_dataset_is_clamped_with_a_note(tmp_path, capsys):
    # (was an error until the batch size was clamped: a deliberate change, issue 12)
    cfg = Config().with_overrides({**TINY, "train.epochs": 1, "train.batch_size": 5000, "run.runs_dir": str(tmp_path)})
    run = train(cfg, stream=__import__("io").StringIO())
    assert (
        "train.batch_size 5000 is larger than the 100 training images; using 100 (one step per epoch)"
        in capsys.readouterr().err
    )
    assert run.config.train.batch_size == 100 and run.summary["steps"] == 1
    assert "batch_size: 100" in (run.dir / "config.yaml").read_text()  # the run reproduces from its config


def test_plain_progress_lines():
    out = io.StringIO()
    with Progress(2, 4, stream=out, interactive=False, log_every=2) as p:
        p.start_epoch(1)
        p.step(2, 4, 0.5, 0.75, 64)
        p.end_epoch(
            {
                "epoch": 1,
                "train_loss": 0.5,
                "train_accuracy": 0.75,
                "val_loss": 0.4,
                "val_accuracy": 0.8,
                "lr": 0.1,
                "seconds": 1.0,
            }
        )
    text = out.getvalue()
    assert "epoch 1/2 step 2/4 loss 0.5000 acc 75.00%" in text and "img/s" in text and "ETA" in text
    assert "val loss 0.4000 acc 80.00%" in text


def test_live_progress_renders_on_a_terminal():
    out = io.StringIO()
    with Progress(1, 4, stream=out, interactive=True) as p:
        p.start_epoch(1)
        p.step(4, 4, 0.25, 0.5, 128)
    assert "epoch 1/1" in out.getvalue() and "img/s" in out.getvalue()


def test_init_from_data_gets_normalised_images_capped_by_size():
    from cnnkit.data.preprocess import Normalize
    from cnnkit.data.types import Split
    from cnnkit.training.trainer import _init_from_data

    seen = []

    class Model(torch.nn.Module):
        def init_from_data(self, x):
            seen.append(x)

    images = torch.full((3000, 1, 64, 64), 255, dtype=torch.uint8)
    _init_from_data(Model(), Split(images, torch.zeros(3000, dtype=torch.long)), Normalize((0.5,), (0.5,)), seed=0)
    assert seen[0].shape == (1250, 1, 64, 64) and torch.allclose(
        seen[0], torch.ones(())
    )  # 5,000 x 32 x 32 pixels; (1 - 0.5) / 0.5
    _init_from_data(
        torch.nn.Linear(1, 1), Split(images[:2], torch.zeros(2, dtype=torch.long)), Normalize((0.5,), (0.5,)), seed=0
    )  # no hook: nothing
    assert len(seen) == 1


def test_images_per_second_counts_a_short_last_batch_as_its_own_size(tmp_path):
    # 100 images in batches of 30: the remainder joins the last batch (30 + 30 + 40), so 2 epochs are 200
    # images, not 6 steps × 30 = 180
    cfg = Config().with_overrides({**TINY, "train.batch_size": 30, "run.runs_dir": str(tmp_path)})
    run = train(cfg, quiet=True)
    state = torch.load(run.dir / "last.ckpt", weights_only=False)["train_state"]
    assert state["images_seen"] == 200 and run.summary["steps"] == 6
    seconds = run.summary["train_seconds"]
    assert abs(run.summary["images_per_second"] * seconds - 200) < 0.05 * 200
