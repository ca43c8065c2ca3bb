"""`cnnkit train --devices N`: N local training processes (DDP, gloo on the CPU), started and watched.

The launcher owns the workers' lifetime, so a run never leaves processes behind:

- Ctrl-C / SIGTERM to the launcher is passed on to every worker once (the workers sit in their
  own process group, so a terminal's Ctrl-C reaches the launcher alone). The workers agree on
  the step to stop at (training/trainer.py all-reduces the stop flag), rank 0 writes last.ckpt,
  and the launcher raises TrainingInterrupted (exit 130 / 143) with the resume command.
- A second Ctrl-C is passed on too: the workers stop at once (checkpoints are replaced
  atomically, so nothing is corrupted); any still alive a few seconds later are killed.
- If the launcher itself dies, the workers get SIGTERM (PR_SET_PDEATHSIG) and stop as above.
- A worker's CnnkitError (bad config, full disk...) comes back as one CnnkitError with its message;
  when one worker fails, the others are stopped instead of waiting in a collective forever.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.training.interrupt import EXIT_CODES, TrainingInterrupted, install_handlers, restore_handlers

INTERRUPTED = set(EXIT_CODES.values())  # a worker's exit code after a signal: 130 / 143
FAILED = 2  # a worker's exit code after a CnnkitError
STOP_GRACE_S = 60.0  # after one worker stopped on a signal, how long the others may take to follow (rank 0 saves)
FAIL_GRACE_S = 10.0  # after one worker failed, how long the others may take to notice before they are killed
AT_ONCE_GRACE_S = 5.0  # after a second Ctrl-C


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(
    local_rank: int,
    world_size: int,
    port: int,
    cfg,
    run_dir: str,
    resume: str | None,
    quiet: bool,
    outcomes: str,
    hooks=None,
) -> None:  # pragma: no cover - in a child
    os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the launcher alone, which passes it on exactly once
    _stop_with_the_launcher()
    os.environ.update(
        {
            "RANK": str(local_rank),
            "LOCAL_RANK": str(local_rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    code = 0
    try:
        from cnnkit.training.trainer import train

        train(
            cfg,
            run_dir=None if resume else Path(run_dir),
            resume=resume,
            quiet=quiet or local_rank != 0,
            interactive=False,
            hooks=hooks,  # picklable hooks from the caller (adversarial training's)
        )
    except CnnkitError as e:  # TrainingInterrupted included: the launcher shows rank 0's message
        code = e.exit_code if isinstance(e, TrainingInterrupted) else FAILED
        _report(outcomes, local_rank, e, code)
        parent = multiprocessing.parent_process()
        if (
            local_rank == 0 and parent is not None and os.getppid() != parent.pid
        ):  # the launcher is gone: nobody else will say it
            print(f"cnnkit train: {e}", file=sys.stderr)
    except KeyboardInterrupt:  # a second Ctrl-C, or a signal before training started
        code = 130
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(
        code
    )  # skip the interpreter's teardown (seconds with torch loaded): every file is written and closed by now


def _stop_with_the_launcher() -> None:  # pragma: no cover - runs in a worker, which coverage does not follow
    """SIGTERM (a graceful stop) when the launcher dies. torch asks for SIGINT, which the kernel sends
    once per thread of the dead launcher: a second SIGINT would mean "stop at once" and lose the step."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
        parent = multiprocessing.parent_process()
        if parent is not None and os.getppid() != parent.pid:  # the launcher died before this line
            os.kill(os.getpid(), signal.SIGTERM)


def _report(outcomes: str, rank: int, error: CnnkitError, code: int) -> None:
    try:
        blob = pickle.dumps(error)
        pickle.loads(blob)  # an error whose constructor takes other arguments travels as its message
    except Exception:
        blob = pickle.dumps(CnnkitError(str(error)))
    Path(outcomes, f"rank{rank}.pickle").write_bytes(pickle.dumps({"error": blob, "exit_code": code}))


class _Relay:
    """While active (main thread only), SIGINT / SIGTERM to this process are sent on to the workers."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.pids: list[int] = []
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:  # rank 0 says what happens next, as one process would
        self.signals.append(signum)
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def attach(self, pids: list[int]) -> None:
        self.pids = list(pids)
        for signum in self.signals:  # arrived while the workers were being started
            self._forward(signum)

    def __enter__(self) -> _Relay:
        self._previous = install_handlers(self._handle)
        return self

    def __exit__(self, *exc) -> None:
        restore_handlers(self._previous)


def _join(processes, relay: _Relay) -> list[int]:
    """Wait for every worker; kill those that cannot finish (peers gone, second Ctrl-C). Returns the exit codes."""
    deadline = None
    while True:
        alive = [p for p in processes if p.exitcode is None]
        if not alive:
            return [p.exitcode for p in processes]
        codes = [p.exitcode for p in processes if p.exitcode is not None]
        now = time.monotonic()
        if any(c not in (0, *INTERRUPTED) for c in codes):
            grace = FAIL_GRACE_S  # a failed worker: the rest would wait for it in their next collective
        elif relay.signals.count(signal.SIGINT) >= 2:
            grace = AT_ONCE_GRACE_S
        elif any(c in INTERRUPTED for c in codes):
            grace = STOP_GRACE_S  # the others stop at the same step; rank 0 may still be writing last.ckpt
        else:
            grace = None  # all well (rank 0 alone runs the final evaluation after the others are done)
        if grace is not None:
            deadline = min(deadline or now + grace, now + grace)
            if now >= deadline:
                for p in alive:
                    p.kill()
                for p in alive:
                    p.join()
                continue
        multiprocessing.connection.wait(
            [p.sentinel for p in alive], timeout=0.2
        )  # wakes up for a second Ctrl-C's deadline too


def _outcome(run_dir: Path, codes: list[int], outcomes: Path, error_files: list[str], signals: list[int]) -> None:
    """Raise what went wrong in the workers, rank 0's report first; return if every worker succeeded."""
    if all(c == 0 for c in codes):
        return
    reports = {}
    for rank in range(len(codes)):
        f = outcomes / f"rank{rank}.pickle"
        if f.is_file():
            reports[rank] = pickle.loads(f.read_bytes())
    last = run_dir / "last.ckpt"
    resume = (
        f"{last} is intact; resume with: cnnkit train --resume {run_dir}"
        if last.is_file()
        else "no checkpoint had been written yet"
    )
    if 0 in reports and isinstance(error := pickle.loads(reports[0]["error"]), TrainingInterrupted):
        raise error  # every process stopped at the same step and rank 0 saved it
    if signals:  # a second Ctrl-C, or a signal before the training loop had started
        raise TrainingInterrupted(
            f"stopped at once by {signal.Signals(signals[-1]).name}; {resume}", EXIT_CODES.get(signals[0], 130)
        )
    for rank in sorted(reports):
        error = pickle.loads(reports[rank]["error"])
        if isinstance(error, TrainingInterrupted):  # a worker was signalled directly; rank 0 reported nothing
            raise TrainingInterrupted(f"training process {rank} was interrupted; {resume}", error.exit_code)
        raise error
    for rank, code in enumerate(codes):
        if code != 0 and os.path.isfile(error_files[rank]):  # an unexpected exception: its traceback, as torch shows it
            with open(error_files[rank], "rb") as fh:
                raise RuntimeError(f"training process {rank} failed with:\n{pickle.load(fh)}")
    rank, code = next((r, c) for r, c in enumerate(codes) if c != 0)
    how = (
        f"was killed by {signal.Signals(-code).name}" + (" (out of memory?)" if code == -signal.SIGKILL else "")
        if code < 0
        else f"exited with code {code}"
    )
    raise CnnkitError(f"training process {rank} {how}; {resume}")


def launch(cfg, devices: int, *, quiet: bool = False, resume: str | Path | None = None, hooks=None) -> Path:
    """Train with `devices` local processes (gloo on the CPU); returns the run folder rank 0 wrote.

    Raises TrainingInterrupted (exit_code 130 / 143) after Ctrl-C / SIGTERM, and the workers'
    CnnkitError (one message) if training failed; no worker outlives this call.
    """
    import torch.multiprocessing as mp

    from cnnkit.rundir import create_run_dir

    if devices < 2:
        raise ConfigError(f"--devices {devices}: launch needs at least 2 processes")
    if cfg.train.batch_size % devices:
        raise ConfigError(
            f"train.batch_size {cfg.train.batch_size} must be divisible by --devices {devices} (it is the global batch)"
        )
    run_dir = (
        Path(resume)
        if resume is not None
        else create_run_dir(cfg.run.runs_dir, cfg.run.name, dataset=cfg.data.dataset, model=cfg.model.name)
    )
    with tempfile.TemporaryDirectory(prefix="cnnkit-launch-") as outcomes, _Relay() as relay:
        args = (
            devices,
            _free_port(),
            cfg,
            str(run_dir),
            str(resume) if resume is not None else None,
            quiet,
            outcomes,
            hooks,  # each worker's train(hooks=...): they travel pickled (spawn)
        )
        ctx = mp.start_processes(_worker, args=args, nprocs=devices, join=False, start_method="spawn")
        relay.attach(ctx.pids())
        try:
            codes = _join(ctx.processes, relay)
        finally:
            for p in ctx.processes:  # only if this call itself was interrupted (a KeyboardInterrupt from elsewhere)
                if p.exitcode is None:
                    p.kill()
                    p.join()
        try:
            _outcome(run_dir, codes, Path(outcomes), ctx.error_files, relay.signals)
        finally:
            for f in ctx.error_files:
                Path(f).unlink(missing_ok=True)
            if any(c is not None and c < 0 for c in codes):  # a killed worker may leave a checkpoint's temporary file
                for tmp in (*run_dir.glob(".*.tmp"), *run_dir.glob("plots/.*.tmp")):
                    tmp.unlink(missing_ok=True)
    return run_dir
