import errno
import os
from pathlib import Path

import pytest

from cnnkit import rundir
from cnnkit.rundir import RunDirError, atomic_write, atomic_write_text, create_run_dir, explain_os_error


def test_failed_text_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "summary.json"
    atomic_write_text(path, "old")

    def half_then_full(f):
        f.write(b"ne")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, half_then_full)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["summary.json"]  # no temporary file left behind
    atomic_write_text(path, "new ü")
    assert path.read_text(encoding="utf-8") == "new ü" and (path.stat().st_mode & 0o777) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize(
    "err, cure",
    [
        (errno.ENOSPC, "free some disk space"),
        (errno.EDQUOT, "free some disk space"),
        (errno.EACCES, "make the folder writable"),
        (errno.EROFS, "make the folder writable"),
        (errno.EIO, "check the disk and the folder's permissions"),
    ],
)
def test_explain_os_error_says_what_to_do(err, cure):
    assert explain_os_error(OSError(err, os.strerror(err))) == (os.strerror(err), cure)


def test_runs_dir_behind_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "a-file").write_text("")
    with pytest.raises(
        RunDirError,
        match=r"a-file/runs: cannot create the run folder there \(Not a directory\); use --runs-dir with a writable folder",
    ):
        create_run_dir(tmp_path / "a-file" / "runs", "x", dataset="d", model="m")


def test_runs_dir_that_refuses_folders_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", refuse)  # what a read-only folder does for a user other than root
    with pytest.raises(RunDirError, match=r"cannot create the run folder there \(Permission denied\); use --runs-dir"):
        create_run_dir(tmp_path, "x", dataset="d", model="m")


def test_taken_names_get_a_suffix(tmp_path):
    assert [create_run_dir(tmp_path, "x", dataset="d", model="m").name for _ in range(3)] == ["x", "x-2", "x-3"]
    assert rundir._slug("a b/c") == "a-b-c"


def test_error_raised_while_a_writer_cleans_up_after_a_full_disk_is_the_full_disk(tmp_path):
    import torch

    class FullOnce:  # the disk fills up at the second write; torch.save's zip writer then fails its own check
        def __init__(self, f):
            self.f, self.writes = f, 0

        def write(self, data):
            self.writes += 1
            if self.writes == 2:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

    path = tmp_path / "last.ckpt"
    atomic_write_text(path, "previous")
    with pytest.raises(OSError, match="No space left on device") as info:
        atomic_write(path, lambda f: torch.save({"w": torch.ones(1000)}, FullOnce(f)))
    assert isinstance(info.value.__cause__, RuntimeError)  # torch's "unexpected pos", kept as the cause
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["last.ckpt"]
    with pytest.raises(ValueError):  # other errors pass unchanged
        atomic_write(path, lambda f: int("x"))
