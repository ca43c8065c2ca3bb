"""`cnnkit train --devices 2` (gloo, CPU): signals stop every process at one step, resume continues
the run exactly, failures come back as one message, and no worker process outlives the launcher."""

import multiprocessing
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnkit.checkpoint import CheckpointWriteError, load_checkpoint
from cnnkit.cli import main
from cnnkit.config import Config
from cnnkit.errors import CnnkitError
from cnnkit.rundir import RunDirError
from cnnkit.training import launcher
from cnnkit.training.interrupt import TrainingInterrupted

ROOT = Path(__file__).resolve().parents[2]
# LeNet-5 (no BatchNorm, no dropout) on 100 images: 5 steps per epoch, 6 epochs of ~0.1 s each
ARGS = [
    "train",
    "--devices",
    "2",
    "--model",
    "lenet5",
    "--subset",
    "10",
    "--epochs",
    "6",
    "--batch-size",
    "20",
    "--threads",
    "1",
    "--plain",
]


def _workers(launcher_pid: int) -> list[int]:
    """The launcher's training processes (its other child is multiprocessing's resource tracker)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            stat = (d / "stat").read_text()
            cmdline = (d / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == launcher_pid and b"spawn_main" in cmdline:
            pids.append(int(d.name))
    return pids


def _running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start(runs: Path, name: str) -> tuple[subprocess.Popen, list[int]]:
    """`cnnkit train --devices 2` in its own session (as a terminal runs it), once epoch 1 is done."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", *ARGS, "--runs-dir", str(runs), "--name", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        start_new_session=True,
    )
    for line in proc.stdout:
        if line.startswith("epoch 1/6:"):
            break
    workers = _workers(proc.pid)
    assert len(workers) == 2
    return proc, workers


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = tmp_path_factory.mktemp("ref")
    assert main([*ARGS, "--runs-dir", str(runs), "--name", "ref", "--quiet"]) == 0
    return runs / "ref"


def test_ctrl_c_stops_both_processes_at_one_step_and_resume_ends_with_the_same_weights(uninterrupted, tmp_path, capsys):
    proc, workers = _start(tmp_path, "r")
    os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C goes to its foreground process group
    out, err = proc.communicate(timeout=60)
    run = tmp_path / "r"
    assert proc.returncode == 130, err
    assert not any(_running(pid) for pid in workers)  # no orphan left training
    stop = re.search(
        r"cnnkit train: interrupted at epoch (\d), step (\d); resume with: cnnkit train --resume (\S+)$", err.strip()
    )
    assert stop and Path(stop[3]) == run, err
    assert (
        "resume with" not in out.lower() and err.count("resume with") == 1
    )  # said once, by the launcher's CLI (the trainer no longer prints it too)
    state = load_checkpoint(run / "last.ckpt")["train_state"]
    assert (state["epoch"], state["epoch_state"]["step"]) == (
        int(stop[1]) - 1,
        int(stop[2]),
    )  # the step both processes stopped at
    assert not state["finished"] and not (run / "summary.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"] and not list(run.glob(".*.tmp"))

    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # config.yaml says devices: 2
    assert capsys.readouterr().out.strip() == f"Run folder: {run}"
    # Bit-identical: both runs take the same steps on the same data, with gloo's fixed reduction order,
    # and resume restores the optimiser, schedule, RNG and data position that rank 0 saved.
    for name in ("last.ckpt", "best.ckpt"):
        a, b = _weights(uninterrupted / name), _weights(run / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    strip = lambda p: [line.rsplit(",", 1)[0] for line in p.read_text().splitlines()]  # noqa: E731  (all but the seconds)
    assert strip(run / "metrics.csv") == strip(uninterrupted / "metrics.csv")
    assert load_checkpoint(run / "last.ckpt")["train_state"]["finished"]


@pytest.mark.slow
def test_sigterm_to_the_launcher_exits_143_and_leaves_no_process(tmp_path):
    proc, workers = _start(tmp_path, "r")
    proc.send_signal(signal.SIGTERM)  # a scheduler stopping the job signals its main process only
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "resume with: cnnkit train --resume" in err and "SIGTERM received: finishing this step" in out
    assert not any(_running(pid) for pid in workers)
    assert load_checkpoint(tmp_path / "r" / "last.ckpt")["train_state"]["epoch_state"] is not None


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once_and_corrupts_nothing(tmp_path):
    proc, workers = _start(tmp_path, "r")
    run = tmp_path / "r"
    deadline = time.monotonic() + 10  # epoch 1's line is shown before its files are written: wait for its checkpoint
    while not (run / "last.ckpt").exists() and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGINT)
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert time.monotonic() - t0 < 15
    assert not any(_running(pid) for pid in workers)
    assert "Traceback" not in err and err.strip().startswith("cnnkit train:")
    assert load_checkpoint(run / "last.ckpt")["train_state"]["epoch"] >= 1  # whichever was written last, it is whole
    assert not list(run.glob(".*.tmp"))


@pytest.mark.slow
def test_workers_of_a_killed_launcher_stop_gracefully(tmp_path):
    proc, workers = _start(tmp_path, "r")
    proc.kill()  # no chance to pass anything on: the workers get SIGTERM from the kernel (PR_SET_PDEATHSIG)
    out = proc.stdout.read() + proc.stderr.read()  # until the workers, which share the pipes, have exited
    assert "SIGTERM received: finishing this step" in out and "resume with: cnnkit train --resume" in out
    deadline = time.monotonic() + 30
    while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_running(pid) for pid in workers)
    assert load_checkpoint(tmp_path / "r" / "last.ckpt")["train_state"]["epoch_state"] is not None


@pytest.mark.slow
def test_a_worker_error_is_one_line_from_the_cli(tmp_path, capsys):
    # lenet5 flattens a fixed grid, so progressive resizing is refused inside the workers, after they start
    assert (
        main([*ARGS, "--runs-dir", str(tmp_path), "--name", "r", "--quiet", "--set", "train.progressive_resize=0.75"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("cnnkit train: error: train.progressive_resize: lenet5 does not run on 21x21 images (")
    assert err.count("\n") == 1 and "Traceback" not in err and "training process" not in err, err


def test_unwritable_runs_dir_fails_before_any_process_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(
        multiprocessing.get_context("spawn"), "Process", lambda *a, **k: pytest.fail("started a process")
    )
    (tmp_path / "a-file").write_text("")
    cfg = Config().with_overrides({"train.batch_size": 20, "run.runs_dir": str(tmp_path / "a-file" / "runs")})
    with pytest.raises(RunDirError, match="a-file/runs: cannot create the run folder there"):
        launcher.launch(cfg, 2)


def test_training_interrupted_travels_between_processes_with_its_exit_code():
    e = pickle.loads(pickle.dumps(TrainingInterrupted("stopped", 143)))
    assert isinstance(e, TrainingInterrupted) and str(e) == "stopped" and e.exit_code == 143


# --- the launcher's bookkeeping, with stand-ins for processes --------------------------------------------


class FakeProcess:
    """exitcode None until it exits; `hang=True` never exits by itself (stuck in a collective)."""

    def __init__(self, exitcode=None, exits_after: float | None = None):
        self._code, self._at = exitcode, (time.monotonic() + exits_after) if exits_after is not None else None
        self.killed = False
        r, self._w = os.pipe()
        self.sentinel = r

    @property
    def exitcode(self):
        if self.killed:
            return -signal.SIGKILL
        if self._at is None or time.monotonic() >= self._at:
            return self._code
        return None

    def kill(self):
        self.killed = True

    def join(self, timeout=None):
        pass


def _join(procs, signals=()):
    relay = launcher._Relay()
    relay.signals = list(signals)
    return launcher._join(procs, relay)


def test_join_waits_for_rank_0_to_finish_alone():
    procs = [FakeProcess(0, exits_after=0.3), FakeProcess(0)]  # rank 1 is done; rank 0 runs the final evaluation
    assert _join(procs) == [0, 0] and not any(p.killed for p in procs)


def test_join_kills_the_others_when_one_fails(monkeypatch):
    monkeypatch.setattr(launcher, "FAIL_GRACE_S", 0.2)
    procs = [FakeProcess(None), FakeProcess(1)]  # rank 1 crashed; rank 0 waits for it in a collective forever
    t0 = time.monotonic()
    assert _join(procs) == [-signal.SIGKILL, 1]
    assert procs[0].killed and time.monotonic() - t0 < 5


def test_join_gives_rank_0_time_to_save_after_a_signal_then_less_after_a_second(monkeypatch):
    procs = [FakeProcess(130, exits_after=0.5), FakeProcess(130)]
    assert _join(procs, [signal.SIGINT]) == [130, 130] and not procs[0].killed  # the checkpoint is being written
    monkeypatch.setattr(launcher, "AT_ONCE_GRACE_S", 0.2)
    procs = [FakeProcess(None), FakeProcess(130)]
    assert _join(procs, [signal.SIGINT, signal.SIGINT]) == [-signal.SIGKILL, 130]
    procs = [FakeProcess(143, exits_after=0.5), FakeProcess(143)]
    assert (
        _join(procs, [signal.SIGTERM, signal.SIGTERM]) == [143, 143] and not procs[0].killed
    )  # only a second Ctrl-C hurries


def _outcome(tmp_path, codes, reports=None, signals=(), tracebacks=None):
    outcomes = tmp_path / "outcomes"
    outcomes.mkdir(exist_ok=True)
    for rank, (error, code) in (reports or {}).items():
        launcher._report(str(outcomes), rank, error, code)
    error_files = [str(tmp_path / f"err{r}") for r in range(len(codes))]
    for rank, text in (tracebacks or {}).items():
        Path(error_files[rank]).write_bytes(pickle.dumps(text))
    launcher._outcome(tmp_path, codes, outcomes, error_files, list(signals))


def test_outcome_rank_0_interruption_is_raised_as_it_was(tmp_path):
    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 2, step 3") as info:
        _outcome(
            tmp_path,
            [143, 143],
            {
                0: (TrainingInterrupted("interrupted at epoch 2, step 3", 143), 143),
                1: (TrainingInterrupted("x", 143), 143),
            },
            [signal.SIGTERM],
        )
    assert info.value.exit_code == 143
    _outcome(
        tmp_path, [0, 0], signals=[signal.SIGINT]
    )  # the signal came during the final evaluation: the run is complete


def test_outcome_stopped_at_once_names_the_checkpoint(tmp_path):
    with pytest.raises(
        TrainingInterrupted, match="stopped at once by SIGINT; no checkpoint had been written yet"
    ) as info:
        _outcome(tmp_path, [130, 1], signals=[signal.SIGINT, signal.SIGINT])
    assert info.value.exit_code == 130
    (tmp_path / "last.ckpt").write_bytes(b"")
    with pytest.raises(
        TrainingInterrupted, match=f"{tmp_path / 'last.ckpt'} is intact; resume with: cnnkit train --resume {tmp_path}$"
    ):
        _outcome(tmp_path, [-signal.SIGTERM, -signal.SIGTERM], signals=[signal.SIGTERM])


def test_outcome_prefers_rank_0_error_and_keeps_its_type(tmp_path):
    full = CheckpointWriteError("summary.json: could not be written (No space left on device)")
    with pytest.raises(CheckpointWriteError, match="No space left"):
        _outcome(tmp_path, [2, 1], {0: (full, 2)}, tracebacks={1: "RuntimeError: Connection closed by peer"})


def test_outcome_error_that_cannot_be_rebuilt_travels_as_its_message(tmp_path):
    from cnnkit.training.loop import NonFiniteLossError

    nan = NonFiniteLossError("training stopped: the loss became nan", step=3, value=float("nan"), last_finite=1.0)
    with pytest.raises(CnnkitError, match="^training stopped: the loss became nan$"):
        _outcome(tmp_path, [0, 2], {1: (nan, 2)})


def test_outcome_unexpected_exception_shows_its_traceback(tmp_path):
    with pytest.raises(RuntimeError, match="(?s)training process 1 failed with:\nTraceback .*ZeroDivisionError"):
        _outcome(
            tmp_path,
            [-signal.SIGKILL, 1],
            tracebacks={1: "Traceback (most recent call last):\nZeroDivisionError: division by zero"},
        )


def test_outcome_killed_worker_is_named(tmp_path):
    with pytest.raises(
        CnnkitError,
        match=r"^training process 0 was killed by SIGKILL \(out of memory\?\); no checkpoint had been written yet$",
    ):
        _outcome(tmp_path, [-signal.SIGKILL, 0])
    with pytest.raises(CnnkitError, match="^training process 1 exited with code 3;"):
        _outcome(tmp_path, [0, 3])


def test_relay_passes_signals_on_once_each(monkeypatch):
    sent = []

    def kill(pid, sig):
        if pid == 13:
            raise ProcessLookupError  # a worker that has already exited
        sent.append((pid, sig))

    with launcher._Relay() as relay:
        assert signal.getsignal(signal.SIGINT) == relay._handle
        monkeypatch.setattr(os, "kill", kill)
        relay._handle(signal.SIGINT, None)  # before the workers exist: remembered
        assert sent == []
        relay.attach([11, 12, 13])
        assert sent == [(11, signal.SIGINT), (12, signal.SIGINT)]
        relay._handle(signal.SIGTERM, None)
        assert sent[2:] == [(11, signal.SIGTERM), (12, signal.SIGTERM)] and relay.signals == [
            signal.SIGINT,
            signal.SIGTERM,
        ]
        monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# --- refusals before any process starts, and the clean-up after one that did not end well --------------------


@pytest.fixture
def no_process(monkeypatch):
    monkeypatch.setattr(
        multiprocessing.get_context("spawn"), "Process", lambda *a, **k: pytest.fail("started a process")
    )


@pytest.mark.parametrize(
    "devices, message",
    [
        (1, r"^--devices 1: launch needs at least 2 processes$"),
        (3, r"^train.batch_size 20 must be divisible by --devices 3 \(it is the global batch\)$"),
    ],
)
def test_launch_refuses_before_starting_anything(tmp_path, no_process, devices, message):
    from cnnkit.errors import ConfigError

    cfg = Config().with_overrides({"train.batch_size": 20, "run.runs_dir": str(tmp_path / "runs")})
    with pytest.raises(ConfigError, match=message):
        launcher.launch(cfg, devices)
    assert not (tmp_path / "runs").exists()  # no run folder either


class FakeContext:
    """What torch.multiprocessing.start_processes returns, for workers that are FakeProcesses."""

    def __init__(self, processes, tmp_path):
        self.processes = processes
        self.error_files = [str(tmp_path / f"error{i}") for i in range(len(processes))]

    def pids(self):
        return []


def _fake_start(monkeypatch, tmp_path, processes, before=None):
    import torch.multiprocessing as mp

    def start(fn, args, nprocs, join, start_method):
        assert (nprocs, join, start_method) == (len(processes), False, "spawn")
        if before is not None:
            before(Path(args[3]))  # the run folder
        return FakeContext(processes, tmp_path)

    monkeypatch.setattr(mp, "start_processes", start)


def test_a_killed_worker_leaves_no_temporary_file_behind(tmp_path, monkeypatch):
    def half_written(run_dir):  # what a worker killed in the middle of an atomic write leaves
        (run_dir / ".last.ckpt.k3j4h5g6.tmp").write_bytes(b"partial")
        (run_dir / "plots").mkdir(exist_ok=True)
        (run_dir / "plots" / ".curves.png.a1b2c3d4.tmp").write_bytes(b"partial")

    _fake_start(monkeypatch, tmp_path, [FakeProcess(-signal.SIGKILL), FakeProcess(0)], before=half_written)
    cfg = Config().with_overrides({"train.batch_size": 20, "run.runs_dir": str(tmp_path / "runs"), "run.name": "r"})
    with pytest.raises(CnnkitError, match=r"^training process 0 was killed by SIGKILL \(out of memory\?\);"):
        launcher.launch(cfg, 2)
    run = tmp_path / "runs" / "r"
    assert not list(run.glob(".*.tmp")) and not list(run.glob("plots/.*.tmp"))


def test_no_worker_outlives_an_interrupted_launcher(tmp_path, monkeypatch):
    procs = [FakeProcess(None), FakeProcess(None)]  # still training
    _fake_start(monkeypatch, tmp_path, procs)

    def interrupted(processes, relay):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher, "_join", interrupted)
    cfg = Config().with_overrides({"train.batch_size": 20, "run.runs_dir": str(tmp_path / "runs")})
    with pytest.raises(KeyboardInterrupt):
        launcher.launch(cfg, 2)
    assert all(p.killed for p in procs)


def test_outcome_a_worker_signalled_directly_is_named_with_its_exit_code(tmp_path):
    # `kill -TERM` to rank 1 alone: it stopped (and said so), rank 0 then lost its peer
    with pytest.raises(
        TrainingInterrupted, match=r"^training process 1 was interrupted; no checkpoint had been written yet$"
    ) as info:
        _outcome(tmp_path, [-signal.SIGKILL, 143], {1: (TrainingInterrupted("interrupted at epoch 1", 143), 143)})
    assert info.value.exit_code == 143


@pytest.mark.slow
def test_a_refusal_inside_the_workers_is_shown_with_its_message(tmp_path, capsys):
    """Two real gloo workers both refuse the run folder's cut last.ckpt: the CLI prints that message, once,
    and exits 2 (before: the empty file's IndexError came back as "training process 0 failed with" a traceback)."""
    from cnnkit.config import save_config

    run = tmp_path / "r"
    run.mkdir()
    cfg = Config().with_overrides({"model.name": "lenet5", "data.subset_per_class": 2, "train.batch_size": 20})
    save_config(cfg.with_overrides({"runtime.devices": 2}), run / "config.yaml")
    (run / "last.ckpt").write_bytes(b"")  # what a full disk can leave without atomic writes
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"cnnkit train: error: {run / 'last.ckpt'}: not a readable cnnkit checkpoint (EOFError); "
        "it may be truncated or corrupt\n"
    )
