"""Multi-label end to end: a CSV manifest whose rows carry several labels trains with a
sigmoid / BCE head, writes a complete run folder, and evaluate / predict agree with it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.cli import main
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.training.loop import evaluate
from cnnkit.training.losses import multilabel_bce

LABELS = ("left", "right", "bottom")  # which quarter / half of the image is bright
SIZE = 12


def write_multilabel_manifest(root: Path, n: int = 48, seed: int = 0) -> Path:
    """n small PNGs and labels.csv (path,label with ';' between labels). Each label is a bright
    region, so the labels are independent and learnable; every row has at least one."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        on = rng.random(3) < 0.5
        if not on.any():
            on[i % 3] = True
        arr = rng.integers(0, 50, (SIZE, SIZE, 3), dtype=np.uint8)
        h = SIZE // 2
        if on[0]:
            arr[:h, :h] = 230
        if on[1]:
            arr[:h, h:] = 230
        if on[2]:
            arr[h:, :] = 230
        name = f"img/{i:03d}.png"
        Image.fromarray(arr).save(root / name)
        rows.append((name, ";".join(c for c, flag in zip(LABELS, on) if flag)))
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label"])
        w.writerows(rows)
    return root / "labels.csv"


TRAIN = [
    "--image-size",
    str(SIZE),
    "--epochs",
    "15",
    "--batch-size",
    "8",
    "--lr",
    "0.1",
    "--threads",
    "1",
    "--plain",
    "--quiet",
    "--set",
    "data.label_delimiter=;",
    "--model",
    "simple_cnn",
    "--set",
    "model.kwargs={width: 8}",
    "--set",
    "data.val_fraction=0.25",
]


@pytest.fixture(scope="module")
def ml_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("multilabel")
    manifest = write_multilabel_manifest(root)
    assert main(["train", "--data", str(manifest), *TRAIN, "--runs-dir", str(root / "runs"), "--name", "ml"]) == 0
    return root / "runs" / "ml", manifest


def test_bce_loss_and_exact_match_in_the_loop():
    logits = torch.tensor([[2.0, -1.0, 0.0], [-3.0, 1.0, 0.5]])
    y = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    by_hand = -(y * torch.log(torch.sigmoid(logits)) + (1 - y) * torch.log(1 - torch.sigmoid(logits))).mean()
    assert float(multilabel_bce(logits, y)) == pytest.approx(float(by_hand), rel=1e-6)
    smooth = y * 0.8 + 0.1
    by_hand_s = -(
        smooth * torch.log(torch.sigmoid(logits)) + (1 - smooth) * torch.log(1 - torch.sigmoid(logits))
    ).mean()
    assert float(multilabel_bce(logits, y, label_smoothing=0.2)) == pytest.approx(float(by_hand_s), rel=1e-6)

    class Fixed(torch.nn.Module):  # returns the logits above whatever the images are
        def forward(self, x):
            return logits[: x.shape[0]]

    split = Split(torch.zeros(2, 1, 2, 2, dtype=torch.uint8), y)
    out = evaluate(Fixed(), split, normalize=Normalize((0.0,), (1.0,), torch.device("cpu")))
    # row 0: sigmoid(0) = 0.5 counts as on, so [1, 0, 1] is exactly right; row 1: label 2 is wrongly on
    assert out["accuracy"] == 0.5 and out["loss"] == pytest.approx(float(by_hand), rel=1e-6)


def test_multilabel_run_writes_every_file(ml_run):
    run, _ = ml_run
    for name in (
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "best.ckpt",
        "last.ckpt",
        "report.md",
        "report.html",
        "val_metrics.json",
    ):
        assert (run / name).is_file(), name
    assert {p.name for p in (run / "plots").iterdir()} == {"learning_curves.png", "per_class.png"}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["task"] == "multi_label" and summary["class_names"] == sorted(LABELS)
    assert set(summary["val"]) >= {"mean_ap", "exact_match", "macro_f1", "loss", "num_samples"}
    assert summary["val"]["accuracy"] == summary["val"]["exact_match"]
    assert len(summary["class_counts"]["train"]) == 3 and summary["class_balance"]["class_weights"] == "none"
    final = json.loads((run / "val_metrics.json").read_text())
    assert final["task"] == "multilabel" and set(final["per_class"]) == set(LABELS)
    assert all({"ap", "f1", "precision", "recall", "support"} <= set(v) for v in final["per_class"].values())
    # the labels are easy: the model has learnt them
    assert summary["val"]["mean_ap"] > 0.9, summary["val"]
    ckpt = torch.load(run / "best.ckpt", weights_only=True)
    assert ckpt["task"] == "multi_label" and ckpt["epoch"] == summary["best_epoch"]
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert len(rows) == 15 and all(0.0 <= float(r["val_accuracy"]) <= 1.0 for r in rows)
    best = max(rows, key=lambda r: (float(r["val_accuracy"]), -float(r["val_loss"])))
    assert int(best["epoch"]) == summary["best_epoch"]
    report = (run / "report.md").read_text()
    assert "mean AP" in report and "plots/per_class.png" in report and "confusion_matrix" not in report
    assert f"{summary['val']['mean_ap']:.4f}" in report and "Class balance:" in report
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "mean AP" in page and "Not shown for multi-label runs." in page


def test_evaluate_agrees_with_summary(ml_run, tmp_path, capsys):
    run, _ = ml_run
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run), "--split", "val", "--out", str(out), "--plots", str(tmp_path / "ev")]) == 0
    printed = capsys.readouterr().out
    m = json.loads(out.read_text())
    summary = json.loads((run / "summary.json").read_text())
    assert m["mean_ap"] == pytest.approx(summary["val"]["mean_ap"], abs=1e-9)
    assert m["exact_match"] == pytest.approx(summary["val"]["exact_match"], abs=1e-9)
    assert m["loss"] == pytest.approx(summary["val"]["loss"], rel=1e-5)
    assert "mean AP" in printed and "exact match" in printed
    assert {p.name for p in (tmp_path / "ev").iterdir()} == {"per_class.png", "metrics.json"}


def test_predict_gives_every_label_above_the_threshold(ml_run, tmp_path, capsys):
    """predict's labels (sigmoid >= 0.5) on the val images reproduce the stored exact match."""
    run, _manifest = ml_run
    from cnnkit.evaluate.api import predict_split

    p = predict_split(run, split="val")
    truth = {
        Path(path).resolve(): {LABELS_SORTED[i] for i in torch.nonzero(row).flatten().tolist()}
        for path, row in zip(p.split.paths, p.split.labels)
    }
    assert main(["predict", str(run), *map(str, truth), "--format", "json"]) == 0
    preds = json.loads(capsys.readouterr().out)["predictions"]
    assert len(preds) == len(truth)
    exact = sum({lab["label"] for lab in q["labels"]} == truth[Path(q["source"]).resolve()] for q in preds) / len(preds)
    summary = json.loads((run / "summary.json").read_text())
    assert exact == pytest.approx(summary["val"]["exact_match"], abs=1e-9)
    for q in preds:  # sigmoid probabilities, not a softmax: they need not sum to 1
        assert all(lab["probability"] >= 0.5 for lab in q["labels"])
    # a threshold of 1 keeps (almost) nothing; the table says so
    assert main(["predict", str(run), str(next(iter(truth))), "--threshold", "1.0"]) == 0
    assert "(no label above the threshold)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as refused:  # checked by the flag's type, before the checkpoint is loaded
        main(["predict", str(run), str(next(iter(truth))), "--threshold", "2"])
    assert refused.value.code == 2 and "argument --threshold: must be in [0, 1], got 2.0" in capsys.readouterr().err
    # the library call: the same labels
    import cnnkit

    clf = cnnkit.load(run)
    assert clf.multi_label
    for q in preds[:4]:
        mine = clf.predict(q["source"])[0]
        assert [name for name, _ in mine.labels] == [lab["label"] for lab in q["labels"]]
        assert [prob for _, prob in mine.labels] == pytest.approx([lab["probability"] for lab in q["labels"]], abs=1e-5)
    probs = clf.predict_proba([q["source"] for q in preds])
    assert probs.shape == (len(preds), 3) and bool(((probs > 0) & (probs < 1)).all())
    assert not torch.allclose(probs.sum(1), torch.ones(len(preds)))  # independent sigmoids, not a softmax


LABELS_SORTED = sorted(LABELS)


def test_csv_output_and_a_single_label_folder(ml_run, tmp_path, capsys):
    """CSV: one row per label above the threshold. Evaluating the multi-label model on a class
    folder (one label per image) scores it as multi-label with one-hot rows."""
    run, manifest = ml_run
    src = sorted((manifest.parent / "img").glob("*.png"))[:3]
    assert main(["predict", str(run), *map(str, src), "--format", "csv"]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["source", "rank", "label", "probability"]
    assert {r[0] for r in rows[1:]} == set(map(str, src)) and all(
        r[2] in LABELS and float(r[3]) >= 0.5 for r in rows[1:]
    )
    folder = tmp_path / "classes"
    for name in LABELS:
        (folder / name).mkdir(parents=True)
    for i, f in enumerate(src * 2):
        (folder / LABELS[i % 3] / f"{i}.png").write_bytes(f.read_bytes())
    out = tmp_path / "m.json"
    assert main(["evaluate", str(run), "--data", str(folder), "--split", "train", "--no-plots", "--out", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["task"] == "multilabel" and sum(v["support"] for v in m["per_class"].values()) == m["num_samples"]
