import os

import pytest
import torch

from cnnkit import __version__
from cnnkit.checkpoint import atomic_save, load_checkpoint, model_from_checkpoint
from cnnkit.errors import CheckpointError


def test_checkpoint_is_self_describing_and_weights_only(tiny_run):
    ckpt = torch.load(tiny_run / "best.ckpt", weights_only=True)
    assert ckpt["model"] == {
        "name": "simple_cnn",
        "kwargs": {"num_classes": 10, "in_chans": 1, "width": 4, "stages": 2, "depth": 1},
    }
    assert ckpt["class_names"] == [str(d) for d in range(10)]
    assert ckpt["input"]["channels"] == 1 and ckpt["input"]["size"] == [28, 28]
    assert len(ckpt["input"]["mean"]) == 1 and len(ckpt["input"]["std"]) == 1
    assert ckpt["config"]["train"]["epochs"] == 2 and ckpt["cnnkit_version"] == __version__
    model = model_from_checkpoint(ckpt)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    atomic_save({"a": torch.ones(3)}, path)

    def disk_full(obj, f, *a, **k):
        f.write(b"partial bytes")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_save({"a": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))
    assert os.listdir(tmp_path) == ["last.ckpt"]  # no temporary file left behind


def test_truncated_checkpoint_names_the_file(tmp_path, tiny_run):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes((tiny_run / "best.ckpt").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match=r"broken.ckpt: not a readable cnnkit checkpoint"):
        load_checkpoint(bad)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_unsafe_pickle_is_refused(tmp_path):
    p = tmp_path / "evil.ckpt"
    torch.save({"format": "cnnkit.checkpoint/1", "payload": Evil()}, p)
    with pytest.raises(CheckpointError, match="evil.ckpt"):
        load_checkpoint(p)


def test_not_a_cnnkit_checkpoint(tmp_path):
    p = tmp_path / "plain.pt"
    torch.save({"weights": torch.ones(1)}, p)
    with pytest.raises(CheckpointError, match=r"plain.pt: not a cnnkit checkpoint \(missing format"):
        load_checkpoint(p)


def test_run_folder_resolves_to_best(tiny_run):
    assert load_checkpoint(tiny_run)["epoch"] >= 1
    with pytest.raises(CheckpointError, match="no best.ckpt or last.ckpt"):
        load_checkpoint(tiny_run / "plots")


def test_atomic_save_gives_ordinary_file_permissions(tmp_path):
    path = tmp_path / "x.ckpt"
    atomic_save({"a": torch.ones(1)}, path)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


# --- error paths: each names the file and says what is wrong ----------------------------------------------


@pytest.mark.parametrize("keep", [0, 10, 100, 5000])
def test_a_checkpoint_cut_anywhere_is_a_checkpoint_error(tmp_path, tiny_run, keep):
    bad = tmp_path / "cut.ckpt"
    bad.write_bytes((tiny_run / "best.ckpt").read_bytes()[:keep])  # 0: before, an IndexError traceback
    with pytest.raises(
        CheckpointError, match=r"cut.ckpt: not a readable cnnkit checkpoint \(\w+.*\); it may be truncated"
    ):
        load_checkpoint(bad)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"^{tmp_path / 'nope.ckpt'}: checkpoint not found$"):
        load_checkpoint(tmp_path / "nope.ckpt")


@pytest.mark.parametrize(
    "content, missing",
    [
        ({"format": "cnnkit.checkpoint/1", "model": {}, "class_names": []}, "state_dict, input"),
        (torch.zeros(3), "format, model, state_dict, class_names, input"),  # a bare tensor, not a dict
    ],
)
def test_missing_keys_are_listed(tmp_path, content, missing):
    p = tmp_path / "part.ckpt"
    torch.save(content, p)
    with pytest.raises(CheckpointError, match=rf"^{p}: not a cnnkit checkpoint \(missing {missing}\)$"):
        load_checkpoint(p)


def test_another_format_version_is_refused(tmp_path, tiny_run):
    ckpt = torch.load(tiny_run / "best.ckpt", weights_only=True)
    ckpt["format"] = "cnnkit.checkpoint/2"
    p = tmp_path / "future.ckpt"
    torch.save(ckpt, p)
    with pytest.raises(
        CheckpointError,
        match=rf"^{p}: checkpoint format 'cnnkit.checkpoint/2' is not supported by this cnnkit \(cnnkit.checkpoint/1\)$",
    ):
        load_checkpoint(p)


def test_weights_that_do_not_fit_the_model_are_a_checkpoint_error(tiny_run):
    ckpt = load_checkpoint(tiny_run / "best.ckpt")
    ckpt["state_dict"].pop(next(iter(ckpt["state_dict"])))
    with pytest.raises(CheckpointError, match=r"(?s)^checkpoint weights do not fit model simple_cnn: .*Missing key"):
        model_from_checkpoint(ckpt)


def test_make_checkpoint_refuses_a_model_cnnkit_did_not_build():
    from cnnkit.checkpoint import make_checkpoint

    with pytest.raises(ValueError, match="model was not built by cnnkit.create_model; it cannot describe itself"):
        make_checkpoint(
            torch.nn.Linear(2, 2),
            class_names=["a", "b"],
            channels=1,
            size=(2, 1),
            mean=[0.0],
            std=[1.0],
            config={},
            dataset="x",
            epoch=0,
            metrics={},
        )


def test_model_from_checkpoint_passes_cnnkits_own_errors_through(tiny_run):
    from cnnkit.errors import ConfigError

    ckpt = load_checkpoint(tiny_run / "best.ckpt")
    ckpt["model"]["name"] = "resnet9000"  # load_checkpoint refuses this; a dict built in code reaches the builder
    with pytest.raises(ConfigError, match="unknown model 'resnet9000'"):
        model_from_checkpoint(ckpt)
