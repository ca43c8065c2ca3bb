"""--resume checks what it resumes (issue 21 rows 1, 4, 5, 13): a changed dataset or a hand-edited
config.yaml is refused with what changed and how to fine-tune instead; a run with no last.ckpt yet
says to start again; stray temporary files of interrupted writes are removed."""

import os
from pathlib import Path

import pytest
import torch
from tests.conftest import make_image_folder, tiny_train_args
from tests.training.crash import Crash
from tests.training.crash import crash_at as _crash_at

from cnnkit.checkpoint import load_checkpoint
from cnnkit.cli import main
from cnnkit.config import Config
from cnnkit.training.trainer import train


def _cfg(data: Path, runs: Path, **extra) -> Config:
    return Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(data),
            "data.image_size": 12,
            "model.name": "simple_cnn",
            "model.kwargs": {"width": 4, "stages": 1, "depth": 1},
            "train.epochs": 2,
            "train.batch_size": 4,
            "runtime.num_threads": 1,
            "run.runs_dir": str(runs),
            "run.name": "r",
            **extra,
        }
    )


def _stopped_after_epoch_1(tmp_path: Path, classes=("a", "b")) -> tuple[Path, Path]:
    """An image folder and a run of it that crashed in epoch 2 (last.ckpt from epoch 1)."""
    data = make_image_folder(tmp_path / "images", classes=classes, per_class=6, size=12)
    with pytest.raises(Crash):
        train(_cfg(data, tmp_path / "runs"), quiet=True, on_step=_crash_at(2, 1))
    return data, tmp_path / "runs" / "r"


def test_resume_after_a_class_folder_rename_is_refused(tmp_path, capsys):
    data, run = _stopped_after_epoch_1(tmp_path)
    assert load_checkpoint(run / "last.ckpt")["train_state"]["dataset"]["class_names"] == ["a", "b"]
    (data / "a").rename(data / "zz")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{run}: --resume refused: the dataset changed since last.ckpt was written (classes renamed: 'a' -> 'zz'; "
        in err
    )
    assert "the labels now mean ['b', 'zz'] instead of ['a', 'b']" in err
    assert f"cnnkit train --config {run / 'config.yaml'} --weights {run / 'last.ckpt'}" in err
    assert "files:" not in err  # the renamed folder's files are the same files
    assert (
        main(["train", "--config", str(run / "config.yaml"), "--weights", str(run / "last.ckpt"), "--quiet"]) == 0
    )  # the advice works
    assert load_checkpoint(run.parent / "r-2" / "best.ckpt")["class_names"] == ["b", "zz"]


def test_resume_names_files_added_removed_changed_and_classes_added(tmp_path, capsys):
    data, run = _stopped_after_epoch_1(tmp_path)
    (data / "b" / "000.png").unlink()
    for name in ("100.png", "101.png"):
        (data / "a" / name).write_bytes((data / "a" / "001.png").read_bytes())
    st = os.stat(data / "a" / "002.png")
    os.utime(data / "a" / "002.png", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    make_image_folder(data, classes=("c",), per_class=2, size=12)
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "classes added: 'c'" in err
    assert "files: 4 added, 1 removed, 1 changed (size or modification time)" in err, (
        err
    )  # 2 in a, 2 in the new class c


def test_resume_on_unchanged_data_continues(tmp_path):
    _data, run = _stopped_after_epoch_1(tmp_path)
    resumed = train(resume=run, quiet=True)
    assert [r["epoch"] for r in resumed.metrics] == [1, 2]
    assert load_checkpoint(run / "last.ckpt")["train_state"]["dataset"]["kind"] == "files"


def test_hand_edited_config_is_refused_naming_each_key(tmp_path, capsys):
    _data, run = _stopped_after_epoch_1(tmp_path)
    text = (run / "config.yaml").read_text()
    assert "epochs: 2" in text and "lr: 0.2" in text
    (run / "config.yaml").write_text(text.replace("epochs: 2", "epochs: 5").replace("lr: 0.2", "lr: 0.05"))
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{run / 'config.yaml'}: --resume refused: training settings differ from those last.ckpt was trained with: "
        in err
    )
    assert "optim.lr: 0.05 in the config, 0.2 in last.ckpt; train.epochs: 5 in the config, 2 in last.ckpt" in err
    assert f"--weights {run / 'last.ckpt'}" in err
    # where the run lives or which device it uses may change
    assert (
        main(["train", "--resume", str(run), "--threads", "2", "--quiet"]) == 2
    )  # still refused for the edit, not for --threads
    (run / "config.yaml").write_text(text.replace("runs_dir: ", "runs_dir: moved-").replace("workers: 2", "workers: 0"))
    assert main(["train", "--resume", str(run), "--threads", "2", "--quiet"]) == 0


def test_old_checkpoint_without_fingerprint_resumes_with_a_note(tmp_path, capsys):
    _data, run = _stopped_after_epoch_1(tmp_path)
    ckpt = torch.load(run / "last.ckpt", weights_only=True)
    del ckpt["train_state"]["dataset"]
    torch.save(ckpt, run / "last.ckpt")
    assert main(["train", "--resume", str(run), "--plain"]) == 0
    assert (
        f"cnnkit: note: {run / 'last.ckpt'} predates dataset fingerprints; resuming without checking"
        in capsys.readouterr().err
    )


def test_killed_before_the_first_checkpoint_resume_says_start_again(tmp_path, capsys):
    data = make_image_folder(tmp_path / "images", classes=("a", "b"), per_class=6, size=12)
    with pytest.raises(Crash):  # like kill -9 in epoch 1: no last.ckpt, a temporary file left behind
        train(_cfg(data, tmp_path / "runs"), quiet=True, on_step=_crash_at(1, 1))
    run = tmp_path / "runs" / "r"
    stray = run / ".last.ckpt.k2j4_x9q.tmp"
    stray.write_bytes(b"")
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{run / 'last.ckpt'}: not written yet: the run stopped before its first checkpoint (written at the end of epoch 1), so there is nothing to resume"
        in err
    )
    assert f"Start the run again (a new run folder): cnnkit train --config {run / 'config.yaml'}" in err
    assert not stray.exists()
    assert main(["train", "--config", str(run / "config.yaml"), "--quiet"]) == 0  # the advice works
    assert (tmp_path / "runs" / "r-2" / "last.ckpt").is_file()


def test_stray_temporaries_are_removed_when_a_run_resumes(tmp_path):
    _data, run = _stopped_after_epoch_1(tmp_path)
    strays = [
        run / ".last.ckpt.abcd1234.tmp",
        run / ".best.ckpt.zz_00000.tmp",
        run / "plots" / ".loss.png.a1b2c3d4.tmp",
    ]
    for p in strays:
        p.write_bytes(b"partial")
    keep = run / "notes.tmp"  # not an atomic write's temporary file
    keep.write_text("mine")
    train(resume=run, quiet=True)
    assert not any(p.exists() for p in strays) and keep.exists()


def test_disk_full_at_the_first_best_ckpt_advises_starting_again(tmp_path, monkeypatch, capsys):
    data = make_image_folder(tmp_path / "images", classes=("a", "b"), per_class=6, size=12)
    run = tmp_path / "runs" / "r"
    args = tiny_train_args(data, tmp_path / "runs", "--threads", "1", "--name", "r")
    real_save = torch.save

    def disk_full_for_best(obj, f, *a, **k):
        if os.path.basename(f.name).startswith(".best.ckpt."):
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", disk_full_for_best)
    assert main(args) == 2
    monkeypatch.setattr(torch, "save", real_save)
    msg = capsys.readouterr().err
    assert f"{run / 'best.ckpt'}: could not be written (No space left on device). No last.ckpt was written yet" in msg
    assert f"free some disk space, then start the run again: cnnkit train --config {run / 'config.yaml'}" in msg
    assert "--resume" not in msg
    assert not (run / "last.ckpt").exists() and not [p for p in os.listdir(run) if p.endswith(".tmp")]
    assert main(["train", "--config", str(run / "config.yaml"), "--quiet"]) == 0  # the advice works


def test_a_key_added_after_the_checkpoint_counts_as_its_default():
    from cnnkit.config import Config
    from cnnkit.training.resume_check import config_changes

    saved = Config().to_dict()
    del saved["adv"]  # a checkpoint written before the adv: section existed
    assert config_changes(saved, Config()) == []
    changed = Config().with_overrides({"adv.method": "pgd"})
    assert config_changes(saved, changed) == ['adv.method: "pgd" in the config, "none" in last.ckpt']
