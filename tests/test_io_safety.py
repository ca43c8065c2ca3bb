"""Every command writes atomically, stops cleanly on signals and explains disk errors (issue 21, rows 6-9, 16)."""

import builtins
import csv
import errno
import io
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.io_safety import (
    Interrupted,
    OutputError,
    interruptible,
    staged_folder,
    write_file,
)

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture
def read_only(monkeypatch):
    """make(folder): creating folders or files under `folder` fails with EROFS, as on a read-only mount
    (chmod cannot simulate it: the tests run as root)."""

    def make(folder: Path) -> None:
        folder = Path(folder).resolve()

        def inside(p) -> bool:
            return isinstance(p, (str, os.PathLike)) and Path(os.path.abspath(p)).is_relative_to(folder)

        def refuse(p):
            raise OSError(errno.EROFS, "Read-only file system", str(p))

        real_mkdir, real_mkstemp, real_open = os.mkdir, tempfile.mkstemp, io.open
        monkeypatch.setattr(os, "mkdir", lambda p, *a, **k: refuse(p) if inside(p) else real_mkdir(p, *a, **k))
        monkeypatch.setattr(
            tempfile,
            "mkstemp",
            lambda *a, dir=None, **k: refuse(dir) if inside(dir) else real_mkstemp(*a, dir=dir, **k),
        )

        def open_(file, mode="r", *a, **k):
            if inside(file) and any(c in mode for c in "wax+"):
                refuse(file)
            return real_open(file, mode, *a, **k)

        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)

    return make


@pytest.fixture(scope="module")
def digit_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("img") / "digit.png"
    Image.fromarray(np.tile(np.arange(28, dtype=np.uint8) * 9, (28, 1))).save(path)
    return path


def _leftovers(folder: Path) -> list[str]:
    """Temporary files and staging folders (hidden, *.tmp) anywhere under `folder`."""
    return sorted(str(p) for p in folder.rglob(".*.tmp"))


# --- the module -----------------------------------------------------------------------------


def test_staged_folder_moves_files_in_at_the_end_and_keeps_other_files(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "other.txt").write_text("kept")
    (dest / "a.txt").write_text("old")
    with staged_folder(dest) as stage:
        (stage / "a.txt").write_text("new")
        assert (dest / "a.txt").read_text() == "old"  # nothing visible before the end
    assert (dest / "a.txt").read_text() == "new" and (dest / "other.txt").read_text() == "kept"
    assert _leftovers(tmp_path) == []


def test_staged_folder_error_leaves_previous_files_and_no_stage(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(RuntimeError), staged_folder(dest) as stage:  # noqa: PT012 - the error must come from inside
        (stage / "a.txt").write_text("new")
        raise RuntimeError("boom")
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_interrupt_inside_staged_folder_says_what_was_kept(tmp_path):
    dest = tmp_path / "out"
    with pytest.raises(Interrupted) as e, interruptible(), staged_folder(dest) as stage:  # noqa: PT012 - the signal arrives mid-stage
        (stage / "a.txt").write_text("new")
        os.kill(os.getpid(), signal.SIGTERM)
    assert e.value.exit_code == 143 and not dest.exists() and _leftovers(tmp_path) == []
    assert e.value.summary() == f"stopped by SIGTERM: nothing was written ({dest} left as it was)"


def test_signal_during_a_file_write_is_held_until_the_file_is_complete(tmp_path, monkeypatch):
    from cnnkit import io_safety

    real = io_safety.atomic_write
    monkeypatch.setattr(
        io_safety,
        "atomic_write",
        lambda path, write: real(
            path, lambda f: (f.write(b"half "), os.kill(os.getpid(), signal.SIGINT), f.write(b"and rest"))
        ),
    )
    with pytest.raises(Interrupted) as e, interruptible():
        write_file(tmp_path / "a.txt", "ignored")
    assert (tmp_path / "a.txt").read_bytes() == b"half and rest" and e.value.exit_code == 130
    assert e.value.summary() == f"stopped by SIGINT: wrote {tmp_path / 'a.txt'} (complete); nothing else was written"
    assert _leftovers(tmp_path) == []


def test_write_file_disk_full_is_one_clear_error(tmp_path, monkeypatch):
    from cnnkit import rundir

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", full)
    with pytest.raises(OutputError) as e:
        write_file(tmp_path / "m.json", "{}", hint="or choose another --out")
    assert (
        str(e.value)
        == f"{tmp_path / 'm.json'}: could not be written (No space left on device); free some disk space, or choose another --out. Nothing was left half-written there."
    )
    assert list(tmp_path.iterdir()) == []


def test_writing_names_the_output_but_passes_other_files_errors_unchanged(tmp_path):
    from cnnkit.io_safety import writing

    out = tmp_path / "report.html"
    with (
        pytest.raises(
            OutputError, match=r"report.html: could not be written \(Read-only file system\); make the folder writable"
        ),
        writing(out),
    ):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / ".report.html.x1.tmp"))
    with pytest.raises(FileNotFoundError), writing(out):  # reading another file is not a write error
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(tmp_path / "metrics.csv"))


@pytest.mark.skipif(
    os.geteuid() == 0, reason="root writes into read-only folders anyway (the monkeypatched tests cover this)"
)
def test_real_read_only_folder(tiny_run, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main(["evaluate", str(tiny_run), "--plots", str(out / "plots")]) == 2
    finally:
        out.chmod(0o755)
    assert "could not be written (Permission denied); make the folder writable" in capsys.readouterr().err


# --- the commands: rows 6-9 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "verb",
    [
        "evaluate",
        "evaluate (run folder)",
        "evaluate --out",
        "report",
        "explain",
        "featuremaps",
        "filters",
        "predict --out",
    ],
)
def test_read_only_folder_is_one_clear_error(verb, tiny_run, tmp_path, digit_png, read_only, capsys):  # row 6
    ro = tmp_path / "ro"
    argv = {
        "evaluate": ["evaluate", str(tiny_run), "--plots", str(ro / "plots")],
        "evaluate (run folder)": ["evaluate", str(tiny_run)],  # the default: evaluation/own-test/ inside the run
        "evaluate --out": ["evaluate", str(tiny_run), "--no-plots", "--out", str(ro / "m.json")],
        "report": ["report", str(tiny_run)],
        "explain": ["explain", str(tiny_run), str(digit_png), "--out", str(ro / "x")],
        "featuremaps": ["featuremaps", str(tiny_run), str(digit_png), "--out", str(ro / "x")],
        "filters": ["filters", str(tiny_run), "--out", str(ro / "x")],
        "predict --out": ["predict", str(tiny_run), str(digit_png), "--out", str(ro / "p.txt")],
    }[verb]
    target = tiny_run if verb in ("report", "evaluate (run folder)") else ro
    before = sorted(p.name for p in tiny_run.iterdir())
    read_only(target)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "could not be written (Read-only file system); make the folder writable" in err and "Traceback" not in err
    assert str(target) in err
    assert sorted(p.name for p in tiny_run.iterdir()) == before and not ro.exists()


def test_evaluate_plots_on_a_full_disk(tiny_run, tmp_path, monkeypatch, capsys):  # row 7
    from matplotlib.figure import Figure

    real, calls = Figure.savefig, []

    def savefig(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the first plot is written, the second finds the disk full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Figure, "savefig", savefig)
    plots = tmp_path / "plots"
    assert main(["evaluate", str(tiny_run), "--plots", str(plots)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{plots}: could not be written (No space left on device); free some disk space, or write them elsewhere with --plots DIR"
        in err
    )
    assert "Traceback" not in err and not plots.exists() and _leftovers(tmp_path) == []  # no partial plots folder


def test_evaluate_sigterm_in_process_leaves_no_output(tiny_run, tmp_path, monkeypatch, capsys):  # row 8
    import cnnkit.evaluate.plots as plots_module

    monkeypatch.setattr(plots_module, "plot_reliability_diagram", lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
    plots, out = tmp_path / "plots", tmp_path / "m.json"
    assert main(["evaluate", str(tiny_run), "--plots", str(plots), "--out", str(out)]) == 143
    err = capsys.readouterr().err
    assert f"cnnkit evaluate: stopped by SIGTERM: nothing was written ({plots} left as it was)" in err
    assert not plots.exists() and not out.exists() and _leftovers(tmp_path) == []


@pytest.mark.slow  # a fresh interpreter imports torch: ~6 s, 21 s with the machine loaded (loadavg 8)
def test_evaluate_sigterm_keeps_the_complete_previous_output(tiny_run, tmp_path):  # row 8, a real process
    plots = tmp_path / "plots"
    assert main(["evaluate", str(tiny_run), "--plots", str(plots)]) == 0
    before = {p.name: p.read_bytes() for p in plots.iterdir()}
    assert set(before) == {
        "confusion_matrix.png",
        "confusion_matrix.json",
        "reliability_diagram.png",
        "hardest_examples.png",
        "metrics.json",
    }
    # SIGTERM from inside, at a fixed point: after the confusion matrix is drawn, before the rest
    script = textwrap.dedent(f"""
        import os, signal, sys
        import cnnkit.evaluate.plots as p
        real = p.plot_confusion_matrix
        def drawn_then_killed(*a, **k):
            real(*a, **k)
            os.kill(os.getpid(), signal.SIGTERM)
        p.plot_confusion_matrix = drawn_then_killed
        from cnnkit.cli import main
        sys.exit(main(["evaluate", {str(tiny_run)!r}, "--plots", {str(plots)!r}]))
    """)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert proc.returncode == 143, proc.stderr
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"cnnkit evaluate: stopped by SIGTERM: nothing was written ({plots} left as it was)"
    )
    assert {p.name: p.read_bytes() for p in plots.iterdir()} == before and _leftovers(tmp_path) == []


def test_report_sigterm_leaves_no_stray_temporary_file(tiny_run, monkeypatch, capsys):  # row 9
    from cnnkit import io_safety

    real = io_safety.atomic_write
    page = tiny_run / "report.html"
    before = page.read_bytes() if page.exists() else None

    def killed_while_writing(path, write):  # the signal lands while the temporary file is half written
        real(path, lambda f: (f.write(b"<!DOCTYPE html>"), os.kill(os.getpid(), signal.SIGTERM)))

    monkeypatch.setattr(io_safety, "atomic_write", killed_while_writing)
    assert main(["report", str(tiny_run)]) == 143
    err = capsys.readouterr().err
    # the write was finished (signals wait for it), then the command stopped: the file is complete
    assert f"cnnkit report: stopped by SIGTERM: wrote {page} (complete); nothing else was written" in err
    assert page.read_bytes() == b"<!DOCTYPE html>" and _leftovers(tiny_run) == []
    monkeypatch.undo()
    assert main(["report", str(tiny_run)]) == 0  # a normal rebuild replaces it
    assert page.read_bytes() != b"<!DOCTYPE html>" and (before is None or page.read_bytes()[:15] == before[:15])


def test_report_sigterm_before_writing_keeps_the_previous_report(tiny_run, monkeypatch, capsys):  # row 9
    from cnnkit.report import html_parts

    page = tiny_run / "report.html"
    page.write_text("previous")
    monkeypatch.setattr(html_parts, "kernel_grid", lambda model: os.kill(os.getpid(), signal.SIGINT))
    assert main(["report", str(tiny_run)]) == 130
    assert "cnnkit report: stopped by SIGINT: nothing was written" in capsys.readouterr().err
    assert page.read_text() == "previous" and _leftovers(tiny_run) == []
    monkeypatch.undo()
    assert main(["report", str(tiny_run)]) == 0


def test_explain_interrupted_writes_no_panel(tiny_run, tmp_path, digit_png, monkeypatch, capsys):
    from cnnkit.explain import api

    real = api.save_panel
    monkeypatch.setattr(api, "save_panel", lambda *a, **k: (real(*a, **k), os.kill(os.getpid(), signal.SIGTERM)))
    out = tmp_path / "x"
    assert main(["explain", str(tiny_run), str(digit_png), str(digit_png), "--out", str(out)]) == 143
    assert f"({out} left as it was)" in capsys.readouterr().err and not out.exists() and _leftovers(tmp_path) == []


# --- row 16 ----------------------------------------------------------------------------------


def test_predict_escapes_a_newline_in_a_file_name(tiny_run, tmp_path, digit_png, capsys):
    odd = tmp_path / "two\nlines\x1b[31m.png"
    odd.write_bytes(digit_png.read_bytes())
    assert main(["predict", str(tiny_run), str(odd)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith(str(tmp_path / "two\\nlines\\x1b[31m.png"))
    assert main(["predict", str(tiny_run), str(odd), "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["source", "rank", "label", "probability"] and {r[0] for r in rows[1:]} == {
        str(odd)
    }  # CSV keeps the exact name


def test_predict_on_a_fifo_or_device_is_not_a_regular_file(tiny_run, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # opening it would block until a writer comes: it must not be opened
    assert main(["predict", str(tiny_run), str(fifo), "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert f"could not read {fifo}: not a regular file (a named pipe)" in err
    assert "could not read /dev/null: not a regular file (a character device)" in err and "empty file" not in err


def test_predict_out_is_written_atomically(tiny_run, tmp_path, digit_png, capsys):
    out = tmp_path / "sub" / "p.json"
    assert main(["predict", str(tiny_run), str(digit_png), "--format", "json", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert out.read_text() == printed and _leftovers(tmp_path) == []


def test_library_refuses_top_k_zero(tiny_run, digit_png):  # row 16, for library callers too
    import cnnkit
    from cnnkit.errors import ConfigError

    with pytest.raises(ConfigError, match="top_k must be at least 1, got 0"):
        cnnkit.load(tiny_run).predict_files([digit_png], top_k=0)


def test_config_yaml_is_written_atomically(tmp_path, monkeypatch):
    from cnnkit import rundir
    from cnnkit.config import Config, load_config, save_config

    path = tmp_path / "config.yaml"
    save_config(Config(), path)
    before = path.read_text()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rundir.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        save_config(Config().with_overrides({"optim.lr": 0.05}), path)
    assert path.read_text() == before and load_config(path).optim.lr == 0.2 and _leftovers(tmp_path) == []
