"""search/stale.py: a trial whose process died (no FAIL written) is failed at the next start and run again."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from cnnkit.cli import main
from cnnkit.config import Config
from cnnkit.search import stale
from cnnkit.search.space import space_from_dict
from cnnkit.search.stale import heartbeat_kwargs
from cnnkit.search.study import open_study, run_study
from cnnkit.training.recipes import apply_recipe

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used with Study.optimize")


@pytest.fixture
def base(image_folder):
    return Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(image_folder),
            "data.image_size": 12,
            "train.epochs": 1,
            "train.batch_size": 4,
            "runtime.num_threads": 1,
            "run.html_report": False,
        }
    )


def test_a_silent_running_trial_is_failed_and_its_params_run_again(base, tmp_path, capsys):
    space = space_from_dict({"params": {"optim.lr": "loguniform(0.01, 0.3)"}, "architecture": {"width": [2, 3]}})
    (tmp_path / "s").mkdir()
    study = open_study(space, apply_recipe(base), tmp_path / "s", None, "tune", resume=False, heartbeat=(1, 2))
    trial = study.ask()  # a trial whose process then "died": RUNNING with one old heartbeat
    space.suggest(trial)
    study._storage.record_heartbeat(trial._trial_id)
    # Optuna stamps the beat and "now" with SQLite's CURRENT_TIMESTAMP, in whole seconds: the beat is stale
    # (more than 2 s old) for certain only 3 s later; after 2.5 s it was still fresh about half the time
    time.sleep(3.1)
    result = run_study(space, base, tmp_path / "s", trials=1, resume=True, heartbeat=(1, 2))
    dead, retry = result.trials
    assert dead.state.name == "FAIL" and retry.state.name == "COMPLETE"
    assert retry.params == dead.params and retry.system_attrs["failed_trial"] == 0
    assert "trial 0: its process stopped without a word (killed?); marked failed, its parameters are queued" in (
        capsys.readouterr().out
    )


def test_a_recent_heartbeat_is_not_stale(base, tmp_path):
    space = space_from_dict({"architecture": {"width": [2]}})
    (tmp_path / "s").mkdir()
    study = open_study(space, base, tmp_path / "s", None, "tune", resume=False, heartbeat=(1, 60))
    trial = study.ask()
    study._storage.record_heartbeat(trial._trial_id)
    assert stale.fail_stale(study) == []
    assert study.trials[0].state.name == "RUNNING"  # another process may be training it


def test_heartbeat_needs_interval_below_grace():
    with pytest.raises(ValueError, match="0 < interval < grace, got 5, 5"):
        heartbeat_kwargs(5, 5, None)


@pytest.mark.slow
def test_a_trial_killed_by_sigkill_is_failed_and_retried_on_resume(image_folder, tmp_path, monkeypatch, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("architecture:\n  width: [2, 3]\ntrials: 1\n")
    out = tmp_path / "o"
    flags = ["--set", f"data.path={image_folder}", "--set", "data.dataset=folder", "--set", "data.image_size=12"]
    flags += ["--set", "train.epochs=8", "--set", "train.batch_size=4", "--set", "run.html_report=false"]
    flags += ["--set", "runtime.num_threads=1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cnnkit", "tune", str(space), *flags], env=env)
    metrics = out / "trials" / "0000" / "metrics.csv"
    deadline = time.monotonic() + 300
    while not metrics.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # mid-trial: after epoch 1 of 8
    assert proc.wait() == -signal.SIGKILL
    storage = f"sqlite:///{out / 'study.db'}"
    assert [t.state.name for t in optuna.load_study(study_name="tune", storage=storage).trials] == ["RUNNING"]
    monkeypatch.setattr(stale, "HEARTBEAT_S", 1)
    monkeypatch.setattr(stale, "GRACE_S", 2)
    time.sleep(2.5)
    assert main(["tune", str(space), *flags, "--resume"]) == 0
    trials = optuna.load_study(study_name="tune", storage=storage).trials
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"] and trials[1].params == trials[0].params
    assert "trial 0: its process stopped without a word" in capsys.readouterr().out
