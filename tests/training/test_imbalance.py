"""Class imbalance in training: class-weighted loss (optim.class_weights) and balanced
sampling of each epoch (data.balance: sampler), reported in summary.json and report.md."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.config import Config
from cnnkit.data import build_dataset
from cnnkit.data.balance import class_weights
from cnnkit.errors import ConfigError
from cnnkit.training.loop import EpochState
from cnnkit.training.losses import build_loss, loss_weights
from cnnkit.training.trainer import _epoch_sampler, train

COUNTS = {"a": 48, "b": 12, "c": 6}  # 8 : 2 : 1


def imbalanced_folder(root: Path, size: int = 12) -> Path:
    """Class folders with COUNTS images; each class lights a different region (learnable)."""
    rng = np.random.default_rng(1)
    for ci, (name, n) in enumerate(COUNTS.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
            region = [
                (slice(0, size // 2), slice(None)),
                (slice(size // 2, None), slice(None)),
                (slice(None), slice(0, size // 2)),
            ][ci]
            arr[region] = 220
            Image.fromarray(arr).save(root / name / f"{i:03d}.png")
    return root


def _cfg(root: Path, runs: Path, **extra) -> Config:
    return Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(root),
            "data.image_size": 12,
            "data.val_fraction": 0.25,
            "model.name": "simple_cnn",
            "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
            "train.epochs": 3,
            "train.batch_size": 8,
            "runtime.num_threads": 1,
            "run.runs_dir": str(runs),
            "run.html_report": False,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return imbalanced_folder(tmp_path_factory.mktemp("imbalanced") / "imgs")


def test_weighted_cross_entropy_equals_the_hand_computed_value():
    labels = torch.tensor([0, 0, 0, 1])  # 3 : 1
    loss = build_loss("balanced", labels, 2)
    # inverse frequency [1/3, 1], scaled so that the 4 training images' weights sum to 4: [2/3, 2]
    assert torch.allclose(loss.weights, torch.tensor([2 / 3, 2.0]))
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
    nll0, nll1 = math.log(1 + math.exp(-2)), math.log(1 + math.exp(-1))
    by_hand = (2 / 3 * nll0 + 2 * nll1) / (2 / 3 + 2)
    assert float(loss(logits, y)) == pytest.approx(by_hand, rel=1e-6)
    assert float(torch.nn.functional.cross_entropy(logits, y)) != pytest.approx(by_hand, rel=1e-3)  # the weights matter
    # sqrt: weights ~ count^-1/2, same scaling
    w = loss_weights("sqrt", labels, 2)
    raw = torch.tensor([3**-0.5, 1.0])
    assert torch.allclose(w, raw * 4 / (raw * torch.tensor([3.0, 1.0])).sum())
    assert build_loss("none", labels, 2) is None  # the loop's default loss: default runs unchanged
    with pytest.raises(ConfigError, match="'optim.class_weights': 'inverse' is not one of none, balanced, sqrt"):
        Config().with_overrides({"optim.class_weights": "inverse"})  # checked once, by the config loader


def test_multilabel_pos_weight_loss_by_hand():
    y = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # label 0: 1 of 4; label 1: 2 of 4
    loss = build_loss("balanced", y, 2)
    assert torch.allclose(loss.weights, torch.tensor([3.0, 1.0]))  # negatives / positives
    logits = torch.tensor([[0.5, -1.0], [1.0, 0.0], [-2.0, 2.0], [0.0, 0.0]])
    s = torch.sigmoid(logits).double()
    pw = torch.tensor([3.0, 1.0]).double()
    by_hand = float(-(pw * y * s.log() + (1 - y) * (1 - s).log()).mean())
    assert float(loss(logits, y)) == pytest.approx(by_hand, rel=1e-6)


def test_balanced_sampler_equalises_the_classes_of_each_epoch(folder, tmp_path):
    cfg = _cfg(folder, tmp_path, **{"data.balance": "sampler"})
    data = build_dataset(cfg.data, seed=0)
    labels = data.train.labels
    assert data.train.class_counts(3) == [36, 9, 4]  # the dataset itself is unchanged
    sampler = _epoch_sampler(cfg, data)
    g = torch.Generator().manual_seed(0)
    orders = [EpochState.start(len(labels), g, sampler=sampler).order for _ in range(30)]
    assert all(len(o) == len(labels) for o in orders)
    frac = torch.bincount(labels[torch.cat(orders)], minlength=3).double() / (30 * len(labels))
    assert torch.allclose(frac, torch.full((3,), 1 / 3).double(), atol=0.04), frac
    plain = EpochState.start(len(labels), g).order  # no sampler: a permutation, as before
    assert sorted(plain.tolist()) == list(range(len(labels)))
    assert _epoch_sampler(_cfg(folder, tmp_path), data) is None


@pytest.mark.parametrize(
    "extra, epochs, correction",
    [
        ({"optim.class_weights": "balanced"}, 8, "class-weighted loss (balanced)"),
        ({"data.balance": "sampler"}, 4, "balanced sampling of each epoch"),
    ],
)
def test_imbalanced_run_trains_and_reports_its_balance(folder, tmp_path, extra, epochs, correction):
    run = train(_cfg(folder, tmp_path, **extra, **{"train.epochs": epochs, "run.name": "imb"}), quiet=True)
    s = run.summary
    assert s["class_counts"]["train"] == [36, 9, 4]
    b = s["class_balance"]
    assert b["imbalance_ratio"] == pytest.approx(9.0)
    assert (b["balance"], b["class_weights"]) == (
        extra.get("data.balance", "none"),
        extra.get("optim.class_weights", "none"),
    )
    data = build_dataset(run.config.data, seed=0)
    if "optim.class_weights" in extra:
        assert b["loss_weights"] == pytest.approx(class_weights(data.train.labels, 3).tolist(), abs=1e-6)
    else:
        assert b["loss_weights"] is None
    assert s["val"]["accuracy"] >= 0.8, s["val"]  # learnt, minority classes included
    final = json.loads((run.dir / "val_metrics.json").read_text())
    assert all(final["per_class"][c]["recall"] > 0 for c in COUNTS), final["per_class"]
    report = (run.dir / "report.md").read_text()
    assert "| a | 36 |" in report and "| c | 4 |" in report
    assert f"9x the images of the smallest; correction: {correction}." in report


def test_sampler_and_class_weights_together_are_refused(folder, tmp_path):
    with pytest.raises(ConfigError, match="would over-correct"):
        train(_cfg(folder, tmp_path, **{"data.balance": "sampler", "optim.class_weights": "balanced"}), quiet=True)
    assert not (tmp_path / "imb").exists() and not any(tmp_path.iterdir())  # refused before a run folder exists


class Crash(Exception):
    pass


def test_resume_replays_the_balanced_epoch_exactly(folder, tmp_path):
    extra = {"data.balance": "sampler", "train.checkpoint_every": 3}
    ref = train(_cfg(folder, tmp_path, **extra, **{"run.name": "ref"}), quiet=True)

    def crash(epoch: int, step: int, loss: float) -> None:
        if (epoch, step) == (2, 4):
            raise Crash

    with pytest.raises(Crash):
        train(_cfg(folder, tmp_path, **extra, **{"run.name": "cut"}), quiet=True, on_step=crash)
    st = torch.load(tmp_path / "cut" / "last.ckpt", weights_only=True)["train_state"]
    order = st["epoch_state"]["order"]
    assert st["epoch"] == 1 and st["epoch_state"]["step"] == 3  # global step 9 = epoch 2, step 3
    assert len(set(order.tolist())) < len(order)  # drawn with replacement: not a permutation
    resumed = train(resume=tmp_path / "cut", quiet=True)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(resumed.metrics) == strip(ref.metrics)
    wa = torch.load(ref.dir / "last.ckpt", weights_only=True)["state_dict"]
    wb = torch.load(resumed.dir / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
