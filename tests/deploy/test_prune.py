import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cnnkit.cli import main
from cnnkit.deploy.prune import count_macs, structured_prune, unstructured_prune
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.models import create_model
from cnnkit.models.structure import apply_structure, record_structure

RESIDUAL = "conv(16,3)-bn-relu-res(16)-res(32,stride=2)-gap-fc"


def _residual():
    torch.manual_seed(0)
    return create_model(RESIDUAL, num_classes=4, in_chans=3).eval()


def test_pruning_a_residual_model_meets_the_mac_target_and_runs():
    model = _residual()
    before = count_macs(model, (3, 16, 16))
    structured_prune(model, (3, 16, 16), 4, target_macs=0.5)
    after = count_macs(model, (3, 16, 16))
    assert 0.35 <= after / before <= 0.5  # the requested share, measured by the summary's MAC counter
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)
    widths = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert max(widths) < 32  # channels really removed, not zeroed


def test_amount_removes_that_share_of_channels_in_steps():
    model = _residual()
    structured_prune(model, (3, 16, 16), 4, amount=0.5, steps=2)
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert first.out_channels == 8  # 16 -> 8 in two steps


def test_structure_rebuilds_the_same_function():
    model = _residual()
    structured_prune(model, (3, 16, 16), 4, amount=0.25)
    structure = record_structure(model, _residual())
    assert structure and all("type" in v for v in structure.values())
    rebuilt = apply_structure(_residual(), structure, model.state_dict())
    rebuilt.load_state_dict(model.state_dict())
    x = torch.randn(3, 3, 16, 16)
    assert torch.equal(rebuilt.eval()(x), model(x))


def test_unstructured_zeroes_weights_but_keeps_macs():
    model = _residual()
    before = count_macs(model, (3, 16, 16))
    unstructured_prune(model, 0.6)
    from cnnkit.deploy.prune import sparsity

    assert sparsity(model) == pytest.approx(0.6, abs=0.01)
    assert count_macs(model, (3, 16, 16)) == before


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"target_macs": 1.5}, "--target-macs must be between 0 and 1"),
        ({"amount": 0.0}, "--amount must be between 0 and 1"),
        ({}, "give one of --target-macs"),
    ],
)
def test_bad_shares_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        structured_prune(_residual(), (3, 16, 16), 4, **kwargs)


def test_cli_refuses_target_macs_above_one(run_copy, capsys):
    with pytest.raises(SystemExit) as e:
        main(["prune", str(run_copy), "--target-macs", "1.5"])
    assert e.value.code == 2 and "--target-macs" in capsys.readouterr().err


def test_prune_run_with_recovery_writes_a_reloadable_run(run_copy, capsys):
    code = main(["prune", str(run_copy), "--amount", "0.5", "--finetune-epochs", "3", "--train-images", "300"])
    out = capsys.readouterr().out
    assert code == 0 and "recovered" in out and "MACs kept" in out
    pruned = run_copy.parent / "tiny-pruned"
    report = json.loads((pruned / "export" / "prune.json").read_text())
    assert (
        report["after_pruning"]["macs"] < report["before"]["macs"]
        and report["after_recovery"]["params"] == report["after_pruning"]["params"]
    )
    # recovery trained through the engine: a run folder of its own, 30 per class of mnist-mini's 10 classes
    ft = report["finetune"]
    assert ft["engine"] == "cnnkit.training.train" and ft["epochs"] == 3 and ft["train_images"] == 300
    assert len(ft["history"]) == 3 and ft["run_dir"] == str(pruned / "recovery")
    for name in ("best.ckpt", "last.ckpt", "metrics.csv", "config.yaml", "summary.json"):
        assert (pruned / "recovery" / name).is_file(), name
    assert len((pruned / "recovery" / "metrics.csv").read_text().splitlines()) == 4  # header + 3 epochs
    assert torch.load(pruned / "recovery" / "best.ckpt", weights_only=True)["pruning"]["structure"]
    # the pruned-without-recovery model (chance on 10 classes) gains accuracy from recovery
    assert report["after_pruning"]["accuracy"] <= 0.12
    assert report["after_recovery"]["accuracy"] >= report["after_pruning"]["accuracy"] + 0.05
    assert json.loads((run_copy / "export" / "prune.json").read_text()) == report  # the parent's report shows it too
    ckpt = torch.load(pruned / "best.ckpt", weights_only=True)
    assert ckpt["pruning"]["parent"] == str(run_copy / "best.ckpt") and ckpt["pruning"]["structure"]
    # a fresh process rebuilds the pruned model from the checkpoint alone
    code = "import cnnkit,torch,sys; c=cnnkit.load(sys.argv[1]); print(sum(p.numel() for p in c.model.parameters())); print(c.predict(torch.zeros(1,28,28,dtype=torch.uint8))[0].label)"
    src = str(Path(__file__).resolve().parents[2] / "src")
    res = subprocess.run(
        [sys.executable, "-c", code, str(pruned)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": src, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    params, label = res.stdout.split()
    assert int(params) == report["after_recovery"]["params"] and label in ckpt["class_names"]
    from cnnkit.deploy.export import export_checkpoint  # and it exports like any other run

    exported = export_checkpoint(pruned, exporter="torchscript", images=8)
    assert exported.parity.ok and exported.path == pruned / "export" / "model.onnx"


def test_a_tampered_structure_is_a_clear_error(run_copy, tmp_path):
    from cnnkit.checkpoint import atomic_save, load_checkpoint

    main(["prune", str(run_copy), "--amount", "0.25", "--out", str(tmp_path / "p")])
    ckpt = torch.load(tmp_path / "p" / "best.ckpt", weights_only=True)
    name = next(iter(ckpt["pruning"]["structure"]))
    ckpt["pruning"]["structure"][name]["out_channels"] = -3
    atomic_save(ckpt, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=r"bad\.ckpt: pruning\.structure\..*out_channels is -3"):
        load_checkpoint(tmp_path / "bad.ckpt")


def test_unstructured_recovery_is_refused(run_copy):
    from cnnkit.deploy.prune import prune_run

    with pytest.raises(ConfigError, match="--unstructured with --finetune-epochs"):
        prune_run(run_copy, amount=0.5, unstructured=True, finetune_epochs=1)


def test_a_finished_recovery_folder_is_not_overwritten(run_copy, tmp_path):
    from cnnkit.deploy.prune import prune_run
    from cnnkit.errors import CnnkitError

    (tmp_path / "p" / "recovery").mkdir(parents=True)
    (tmp_path / "p" / "recovery" / "summary.json").write_text("{}")
    with pytest.raises(CnnkitError, match="a finished recovery run is already here"):
        prune_run(run_copy, amount=0.5, finetune_epochs=1, train_images=20, out=tmp_path / "p")


def test_an_interrupted_recovery_continues(run_copy, tmp_path, monkeypatch):
    """Ctrl-C during recovery (a real SIGINT: the engine saves last.ckpt and stops); the same command resumes it."""
    import os
    import signal

    import cnnkit.training.trainer as trainer
    from cnnkit.deploy.prune import prune_run
    from cnnkit.training.interrupt import TrainingInterrupted

    out, real = tmp_path / "p", trainer.train

    def interrupted(*a, **k):
        return real(*a, on_step=lambda epoch, step, loss: epoch == 2 and os.kill(os.getpid(), signal.SIGINT), **k)

    monkeypatch.setattr(trainer, "train", interrupted)
    with pytest.raises(TrainingInterrupted):
        prune_run(run_copy, amount=0.5, finetune_epochs=3, train_images=100, out=out)
    assert (out / "recovery" / "last.ckpt").is_file() and not (out / "recovery" / "summary.json").is_file()
    monkeypatch.setattr(trainer, "train", real)
    again = prune_run(run_copy, amount=0.5, finetune_epochs=3, train_images=100, out=out)
    assert (out / "recovery" / "summary.json").is_file() and len(again["finetune"]["history"]) == 3
    assert again["finetune"]["run_dir"] == str(out / "recovery") and (out / "best.ckpt").is_file()
