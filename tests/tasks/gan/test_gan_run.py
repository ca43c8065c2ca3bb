import csv
import json

import pytest
import torch
from tests.conftest import make_image_folder

from cnnkit.config import Config
from cnnkit.tasks.gan.run import load_gan_checkpoint, train_gan
from cnnkit.training.trainer import train


class _Never:
    requested = False


class _After:
    """Asks to stop once `n` steps have been taken (the loop checks after each step)."""

    def __init__(self, n: int):
        self.n = n

    @property
    def requested(self) -> bool:
        self.n -= 1
        return self.n <= 0


def tiny_cfg(tmp_path, epochs=2, name="a", **gan) -> Config:
    data = tmp_path / "imgs"
    if not data.exists():
        make_image_folder(data, per_class=5, size=8)  # 10 images, 1 held out for val -> 9; batch 4: 2 steps
    return Config.from_dict(
        {
            "data": {"dataset": "folder", "path": str(data), "task": "gan", "image_size": 8},
            "gan": {"latent": 8, "width": 4, "samples": 4, **gan},
            "train": {"epochs": epochs, "batch_size": 4, "seed": 3},
            "runtime": {"device": "cpu", "precision": "fp32", "num_threads": 1},
            "run": {"runs_dir": str(tmp_path / "runs"), "name": name},
        }
    )


def _weights(ckpt):
    return ckpt["train_state"]["generator_net"], ckpt["train_state"]["discriminator_net"]


def test_run_folder(tmp_path):
    run = train(tiny_cfg(tmp_path), quiet=True)
    names = {p.relative_to(run.dir).as_posix() for p in run.dir.rglob("*") if p.is_file()}
    assert {"config.yaml", "metrics.csv", "last.ckpt", "summary.json", "plots/gan_curves.png"} <= names
    assert {"samples/epoch_001.png", "samples/epoch_002.png", "samples/progress.gif", "report.html"} <= names
    page = (run.dir / "report.html").read_text()
    assert "Generated images (DCGAN)" in page and page.count("data:image/png;base64") == 3  # last, first, curves
    assert page.count("data:image/gif;base64") == 1 and "progression over 2 epochs" in page
    assert "--score CLASSIFIER" in page  # no classifier given: how to get the quality numbers
    assert 'id="config"' in page and "gan:" in page  # the run's config.yaml, its gan: keys included
    rows = list(csv.DictReader((run.dir / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert list(rows[0]) == ["epoch", "loss_d", "loss_g", "d_real", "d_fake", "seconds"]
    for r in rows:
        assert 0 < float(r["d_real"]) < 1 and 0 < float(r["d_fake"]) < 1 and float(r["loss_d"]) > 0
    ckpt = load_gan_checkpoint(run.dir / "last.ckpt")
    arch = {"latent": 8, "channels": 3, "side": 8, "width": 4, "num_classes": 0, "class_names": [], "ema": False}
    assert ckpt["finished"] and ckpt["gan"] == arch
    ts = ckpt["train_state"]
    assert ts["epoch"] == 2 and ts["opt_g"]["state"] and ts["opt_d"]["state"]  # both optimisers, with moments
    assert ts["opt_g"]["param_groups"][0]["lr"] == 2e-4 and ts["opt_g"]["param_groups"][0]["betas"] == (0.5, 0.999)
    assert json.loads((run.dir / "summary.json").read_text())["shape"] == [3, 8, 8]
    from PIL import Image

    assert Image.open(run.dir / "samples" / "epoch_002.png").size == (2 * 10 + 2, 2 * 10 + 2)  # 2x2 grid, 2 px borders


ALL_OPTIONS = {"ema": 0.5, "spectral_norm": True, "loss": "hinge", "conditional": True}


@pytest.mark.parametrize("options", [{}, ALL_OPTIONS], ids=["plain", "all-options"])
def test_resume_mid_epoch_gives_the_same_weights(tmp_path, options):
    whole = train_gan(tiny_cfg(tmp_path, name="whole", **options), stop=_Never(), quiet=True)
    cut = train_gan(tiny_cfg(tmp_path, name="cut", **options), stop=_After(3), quiet=True)  # epoch 2, 1st step
    assert cut.interrupted
    saved = load_gan_checkpoint(cut.dir / "last.ckpt")
    assert (saved["train_state"]["epoch"], saved["train_state"]["step"], saved["finished"]) == (1, 1, False)
    resumed = train_gan(tiny_cfg(tmp_path, name="cut", **options), stop=_Never(), resume=cut.dir, quiet=True)
    a, b = load_gan_checkpoint(whole.dir / "last.ckpt"), load_gan_checkpoint(resumed.dir / "last.ckpt")
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    if options:  # the EMA, spectral norm's power-iteration vectors, the conditional input layer
        ema_a, ema_b = a["train_state"]["generator_ema"], b["train_state"]["generator_ema"]
        assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_a)
        assert any(k.endswith("parametrizations.weight.original") for k in _weights(a)[1])
        assert a["gan"]["num_classes"] == 2 and a["gan"]["class_names"] == ["cat", "dog"] and a["gan"]["ema"]
    assert a["train_state"]["rows"][1]["loss_g"] == b["train_state"]["rows"][1]["loss_g"]


def _interrupted_after_one_epoch(tmp_path, monkeypatch, **gan):
    """A run through `train` stopped by Ctrl-C in its second epoch (after 3 steps): last.ckpt at epoch 1."""
    import os
    import signal

    from cnnkit.tasks.gan import run as gan_run
    from cnnkit.training.interrupt import TrainingInterrupted

    real_step, calls = gan_run.gan_step, []

    def step(*args, **kwargs):
        out = real_step(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(gan_run, "gan_step", step)
    with pytest.raises(TrainingInterrupted):
        train(tiny_cfg(tmp_path, **gan), quiet=True)
    monkeypatch.setattr(gan_run, "gan_step", real_step)
    return tmp_path / "runs" / "a"


def test_resume_through_train_uses_the_run_config(tmp_path, monkeypatch):
    run_dir = _interrupted_after_one_epoch(tmp_path, monkeypatch, width=5)
    run = train(resume=run_dir, quiet=True)
    assert [r["epoch"] for r in run.metrics] == [1, 2] and run.config.gan.width == 5


def test_resume_refuses_changed_settings(tmp_path, monkeypatch):
    from cnnkit.errors import CheckpointError

    run_dir = _interrupted_after_one_epoch(tmp_path, monkeypatch)
    (run_dir / "config.yaml").write_text((run_dir / "config.yaml").read_text().replace("width: 4", "width: 6"))
    with pytest.raises(CheckpointError, match=r"--resume refused: .*gan.width: 6 in the config, 4 in last.ckpt"):
        train(resume=run_dir, quiet=True)


def test_resume_refuses_changed_data(tmp_path, monkeypatch):
    from PIL import Image

    from cnnkit.errors import CheckpointError

    run_dir = _interrupted_after_one_epoch(tmp_path, monkeypatch)
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "cat" / "new.png")
    with pytest.raises(CheckpointError, match="--resume refused: the dataset changed"):
        train(resume=run_dir, quiet=True)


def test_bf16_autocast_trains(tmp_path):
    cfg = tiny_cfg(tmp_path, epochs=1).with_overrides({"runtime.precision": "bf16"})
    run = train(cfg, quiet=True)
    assert torch.isfinite(torch.tensor(run.metrics[0]["loss_g"]))


def test_a_classification_checkpoint_is_refused(tmp_path):
    p = tmp_path / "x.ckpt"
    torch.save({"task": "classify"}, p)
    with pytest.raises(Exception, match="not a GAN checkpoint"):
        load_gan_checkpoint(p)


def test_settings_a_gan_run_does_not_have_are_refused(tmp_path):
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match=r"runtime.devices \(--devices\): a GAN run"):
        train(tiny_cfg(tmp_path).with_overrides({"runtime.devices": 2}), quiet=True)


def test_time_budget_ends_the_run_mid_epoch(tmp_path):
    run = train(tiny_cfg(tmp_path, epochs=5).with_overrides({"train.time_budget": 1e-6}), quiet=True)
    assert [r["epoch"] for r in run.metrics] == [1]  # the budget ran out after the first step
    ckpt = load_gan_checkpoint(run.dir / "last.ckpt")
    assert ckpt["finished"] and ckpt["train_state"]["epoch"] == 1 and (run.dir / "samples" / "epoch_001.png").is_file()
    assert json.loads((run.dir / "summary.json").read_text())["epochs"] == 1


def test_ctrl_c_leaves_last_ckpt_and_exit_code_130(tmp_path, monkeypatch):
    import os
    import signal

    from cnnkit.tasks.gan import run as gan_run
    from cnnkit.training.interrupt import TrainingInterrupted

    real_step = gan_run.gan_step

    def step_then_ctrl_c(*args, **kwargs):
        out = real_step(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # the engine's GracefulInterrupt only flags it
        return out

    monkeypatch.setattr(gan_run, "gan_step", step_then_ctrl_c)
    with pytest.raises(TrainingInterrupted, match="--resume") as e:
        train(tiny_cfg(tmp_path), quiet=True)
    assert e.value.exit_code == 130
    ts = load_gan_checkpoint(tmp_path / "runs" / "a" / "last.ckpt")["train_state"]
    assert (ts["epoch"], ts["step"]) == (0, 1)


def test_conditional_needs_single_label_data(tmp_path):
    from types import SimpleNamespace

    from cnnkit.errors import ConfigError
    from cnnkit.tasks.gan.run import conditional_classes

    cfg = tiny_cfg(tmp_path, conditional=True)
    multi = SimpleNamespace(train=SimpleNamespace(labels=torch.zeros(4, 3)), num_classes=3)
    with pytest.raises(
        ConfigError, match=r"gan.conditional: needs single-label data .* 3 class\(es\) with multi-label"
    ):
        conditional_classes(cfg, multi)
    single = SimpleNamespace(train=SimpleNamespace(labels=torch.zeros(4)), num_classes=3)
    assert conditional_classes(cfg, single) == 3 and conditional_classes(tiny_cfg(tmp_path), single) == 0
