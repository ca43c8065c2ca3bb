from __future__ import annotations

import pytest
import torch

from cnnkit.training import threads
from cnnkit.training.threads import CpuSample, ThreadGovernor, busy_cores_of_others, read_sample, threads_for


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize(
    "cores, others, want",
    [
        (2, 0.0, 2),
        (2, 0.3, 2),
        (2, 0.45, 1),
        (2, 1.0, 1),
        (2, 1.9, 1),
        (2, 3.5, 1),
        (8, 0.0, 8),
        (8, 2.0, 6),
        (8, 2.5, 5),
        (1, 0.0, 1),
    ],
)
def test_threads_for_leaves_the_cores_others_use(cores, others, want):
    assert threads_for(cores, others) == want


def test_busy_cores_of_others_subtracts_this_process(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    # 1 s on 2 cores at 100 ticks/s: 200 ticks; 150 busy, of which this process used 0.5 s (50 ticks)
    a = CpuSample(total=1000, busy=400, own=10.0, at=0.0)
    b = CpuSample(total=1200, busy=550, own=10.5, at=1.0)
    assert busy_cores_of_others(a, b, cores=2, ticks_per_second=100) == pytest.approx(1.0)
    # no time passed, or the process alone: nobody else
    assert busy_cores_of_others(a, a, cores=2, ticks_per_second=100) == 0.0
    c = CpuSample(total=1200, busy=500, own=11.0, at=1.0)
    assert busy_cores_of_others(a, c, cores=2, ticks_per_second=100) == 0.0


def test_read_sample_parses_proc_stat(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 5 50 800 20 3 2 0 0 0\ncpu0 50 2 25 400 10 1 1 0 0 0\n")
    s = read_sample(str(stat))
    assert s.total == 980 and s.busy == 160
    assert read_sample(str(tmp_path / "missing")) is None


def _feed(samples):
    it = iter(samples)
    return lambda: next(it)


def _s(total, busy, at, own=0.0):
    return CpuSample(total=total, busy=busy, own=own, at=at)


def test_governor_uses_the_free_cores_and_follows_a_change(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    clock = iter([0.0, 100.0, 100.0, 200.0, 200.0, 300.0])
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    seen = []
    samples = [
        _s(0, 0, 0.0),
        _s(200, 100, 0.25),  # probe: others keep one core busy -> 1 thread
        _s(400, 110, 3.5),  # idle window: a change is pending, not made
        _s(600, 120, 7.0),  # idle again: back to 2 threads
    ]
    gov = ThreadGovernor(
        cores=2, ticks_per_second=100, sample=_feed(samples), on_change=lambda o, n, b: seen.append((o, n))
    )
    torch.set_num_threads(2)
    assert gov.start() == 1 and torch.get_num_threads() == 1
    gov.tick()
    assert torch.get_num_threads() == 1  # one idle window is not enough
    gov.tick()
    assert torch.get_num_threads() == 2
    assert seen == [(2, 1), (1, 2)]
    assert [n for _, n in gov.changes] == [1, 2]


def test_governor_stays_off_without_proc_stat():
    torch.set_num_threads(2)
    gov = ThreadGovernor(cores=2, sample=lambda: None)
    assert gov.start() == 2 and not gov.active
    gov.tick()
    assert torch.get_num_threads() == 2


def test_fixed_threads_turn_the_governor_off(monkeypatch, tmp_path):
    """--threads N: the count is never touched by the governor (train() skips follow_load)."""
    from cnnkit.config import Config
    from cnnkit.training import trainer

    calls = []
    monkeypatch.setattr(trainer, "follow_load", lambda *a: calls.append(a) or a[0])
    cfg = Config().with_overrides(
        {
            "data.subset_per_class": 3,
            "model.name": "simple_cnn",
            "model.kwargs": {"width": 4, "stages": 1, "depth": 1},
            "train.epochs": 1,
            "train.batch_size": 10,
            "runtime.num_threads": 1,
            "train.recipe": "none",
            "run.runs_dir": str(tmp_path),
            "run.html_report": False,
        }
    )
    trainer.train(cfg, quiet=True)
    assert calls == []
    trainer.train(cfg.with_overrides({"runtime.num_threads": None}), quiet=True)
    assert len(calls) == 1 and calls[0][1] == "auto"


def test_follow_load_ticks_before_the_runs_on_step_and_reports_a_change(monkeypatch):
    import io

    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    samples = iter([_s(0, 0, 0.0), _s(200, 100, 0.25)])  # the probe: others keep one of 2 cores busy
    monkeypatch.setattr(threads, "read_sample", lambda *a: next(samples))
    monkeypatch.setattr(threads.ThreadGovernor, "__init__", _two_core_init(threads.ThreadGovernor.__init__))
    torch.set_num_threads(2)
    steps, out = [], io.StringIO()
    hook = threads.follow_load(lambda *a: steps.append(a), "cpu", out)
    assert torch.get_num_threads() == 1 and out.getvalue() == (
        "cnnkit: other programs keep about 1.0 of 2 cores busy; training on 1 thread instead of 2 (--threads N fixes the count)\n"
    )
    ticks = []
    monkeypatch.setattr(threads.ThreadGovernor, "tick", lambda self: ticks.append(len(steps)))
    hook(1, 3, 0.5)
    assert steps == [(1, 3, 0.5)] and ticks == [0]  # the tick came first
    assert threads.follow_load(None, "meta", out) is None  # off the CPU: the hook as given


def _two_core_init(real):
    def init(self, **kw):
        real(self, **{"cores": 2, "ticks_per_second": 100, "sample": lambda: threads.read_sample(), **kw})

    return init


# --- edge cases: unreadable counters, no affinity call, an unchanged count, the step hook ----------------


def test_read_sample_refuses_a_file_that_is_not_proc_stat(tmp_path):
    for text in ("", "intr 1 2 3\n", "cpu0 1 2 3 4 5 6 7 8\n"):
        (tmp_path / "stat").write_text(text)
        assert read_sample(str(tmp_path / "stat")) is None, text


def test_available_cores_without_affinity_is_the_cpu_count(monkeypatch):
    def no_affinity(pid):
        raise OSError("not supported")

    monkeypatch.setattr(threads.os, "sched_getaffinity", no_affinity, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 6)
    assert threads.available_cores() == 6
    monkeypatch.setattr(threads.os, "cpu_count", lambda: None)
    assert threads.available_cores() == 1


def test_governor_keeps_the_count_when_a_window_agrees_or_cannot_be_read(monkeypatch):
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    clock = iter([0.0, 100.0, 100.0, 200.0, 200.0, 300.0, 300.0])
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    samples = [
        _s(0, 0, 0.0),
        _s(200, 0, 0.25),  # probe: idle -> 2 threads
        _s(400, 100, 3.5),  # one busy window: 1 thread pending
        None,  # /proc/stat unreadable for a moment: nothing changes
        _s(600, 100, 7.0),  # idle again: the pending change is dropped
        _s(800, 200, 10.5),  # busy again: a new first window, so still no change
    ]
    seen = []
    gov = ThreadGovernor(
        cores=2, ticks_per_second=100, sample=_feed(samples), on_change=lambda o, n, b: seen.append((o, n))
    )
    torch.set_num_threads(1)
    assert gov.start() == 2
    for _ in range(4):
        gov.tick()
        assert torch.get_num_threads() == 2
    assert seen == [(1, 2)]


def test_follow_load_wraps_the_step_hook_and_reports_a_change(monkeypatch):
    import functools
    import io

    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    samples = [_s(0, 0, 0.0), _s(200, 100, 1e12)]  # others keep one of two cores busy; measured "just now"
    monkeypatch.setattr(
        threads,
        "ThreadGovernor",
        functools.partial(ThreadGovernor, cores=2, ticks_per_second=100, sample=_feed(samples)),
    )
    torch.set_num_threads(2)
    calls, out = [], io.StringIO()
    step = threads.follow_load(lambda *a: calls.append(a), "cpu", stream=out)
    assert torch.get_num_threads() == 1
    assert out.getvalue() == (
        "cnnkit: other programs keep about 1.0 of 2 cores busy; training on 1 thread instead of 2 "
        "(--threads N fixes the count)\n"
    )
    step(1, 2, 0.5)  # the governor ticks (too soon to re-measure), then the run's own hook
    assert calls == [(1, 2, 0.5)]
    hook = lambda *a: None  # noqa: E731
    assert threads.follow_load(hook, "meta") is hook  # not a CPU run: nothing to follow
