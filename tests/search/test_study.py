"""Studies end to end on a tiny image folder (12 px, 2 classes, 12 images): seconds per trial."""

import csv
import json

import optuna
import pytest
import yaml

from cnnkit.cli import main
from cnnkit.config import Config, load_config
from cnnkit.errors import ConfigError
from cnnkit.search import study as study_mod
from cnnkit.search.space import space_from_dict
from cnnkit.search.study import PruneOnEpoch, run_study
from cnnkit.training.interrupt import TrainingInterrupted

ARCH = {"stages": [1, 2], "width": [2, 4], "attention": ["none", "cbam"]}


@pytest.fixture
def base(image_folder):
    return Config().with_overrides(
        {
            "data.dataset": "folder",
            "data.path": str(image_folder),
            "data.image_size": 12,
            "train.epochs": 2,
            "train.batch_size": 4,
            "runtime.num_threads": 1,
            "run.html_report": False,
        }
    )


def test_two_trial_study_writes_run_folders_and_a_report(base, tmp_path, capsys):
    space = space_from_dict({"params": {"optim.lr": "loguniform(1e-2, 0.3)"}, "architecture": ARCH, "trials": 2})
    result = run_study(space, base, tmp_path / "study")
    assert [t.state.name for t in result.trials] == ["COMPLETE", "COMPLETE"]
    for t in result.trials:
        run = tmp_path / "study" / "trials" / f"{t.number:04d}"
        summary = json.loads((run / "summary.json").read_text())
        assert t.values[0] == pytest.approx(summary["best_val_accuracy"])
        cfg = load_config(run / "config.yaml")
        assert (
            cfg.optim.lr == pytest.approx(t.params["optim.lr"])
            and cfg.model.name == t.user_attrs["overrides"]["model.name"]
        )
        with (run / "metrics.csv").open() as f:  # every epoch's val_accuracy went to the pruner
            rows = list(csv.DictReader(f))
        assert t.intermediate_values == {int(r["epoch"]): pytest.approx(float(r["val_accuracy"])) for r in rows}
    out = tmp_path / "study"
    for name in ("study.db", "summary.md", "summary.json", "best_config.yaml", "history.png", "pareto.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trials"]["complete"] == 2 and summary["best"]["number"] == result.best.number
    best_cfg = yaml.safe_load((out / "best_config.yaml").read_text())
    assert (
        best_cfg["model"]["name"] == result.best.user_attrs["overrides"]["model.name"]
        and best_cfg["run"]["name"] is None
    )
    text = capsys.readouterr().out
    assert f"re-train with: cnnkit train --config {out / 'best_config.yaml'}" in text
    assert "trial 1: val accuracy" in text


def test_mac_limit_is_respected_by_every_trained_trial(base, tmp_path):
    space = space_from_dict(
        {"architecture": {"stages": [1, 2], "width": [2, 16]}, "sampler": "random", "seed": 3, "max_macs": 20000}
    )
    result = run_study(space, base, tmp_path / "s", trials=4)
    states = [t.state.name for t in result.trials]
    assert "PRUNED" in states and "COMPLETE" in states  # seed 3 samples both sides of the limit
    for t in result.trials:
        trained = (tmp_path / "s" / "trials" / f"{t.number:04d}").exists()
        assert trained == (t.user_attrs["macs"] <= 20000), t.user_attrs
        if not trained:
            assert t.state.name == "PRUNED" and "> max_macs 20,000" in t.user_attrs["skipped"]


def test_an_interrupted_study_resumes_with_the_trials_owed(base, tmp_path, monkeypatch):
    space = space_from_dict({"params": {"optim.lr": [0.05, 0.1]}, "architecture": {"width": [2]}})
    real_train, calls = study_mod.train, []

    def flaky(cfg, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise TrainingInterrupted("interrupted at epoch 1, step 1", 130)
        return real_train(cfg, **kw)

    monkeypatch.setattr(study_mod, "train", flaky)
    with pytest.raises(
        TrainingInterrupted, match=r"1 trials finished are kept in sqlite:///.*study.db; continue with: X --resume"
    ):
        run_study(space, base, tmp_path / "s", trials=3, resume_hint="X")
    with pytest.raises(ConfigError, match="a study 'tune' with 2 trials is already there; --resume continues it"):
        run_study(space, base, tmp_path / "s", trials=3)
    with pytest.raises(ConfigError, match="another search space or base config"):
        run_study(space, base.with_overrides({"train.epochs": 1}), tmp_path / "s", trials=3, resume=True)
    result = run_study(space, base, tmp_path / "s", trials=3, resume=True)
    assert [t.state.name for t in result.trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert len(calls) == 4  # trial 0 was not trained again
    again = run_study(space, base, tmp_path / "s", trials=3, resume=True)  # the budget is spent: nothing runs
    assert len(again.trials) == 4 and len(calls) == 4
    with pytest.raises(ConfigError, match="--resume: no study 'tune'"):
        run_study(space, base, tmp_path / "new", trials=1, resume=True)


class FakeTrial:
    def __init__(self, prune_after):
        self.reports, self.prune_after, self.user_attrs = [], prune_after, {}

    def report(self, value, step):
        self.reports.append((step, value))

    def should_prune(self):
        return len(self.reports) >= self.prune_after

    def set_user_attr(self, k, v):
        self.user_attrs[k] = v


def test_prune_hook_reports_each_epoch_and_prunes_before_the_last():
    trial = FakeTrial(prune_after=1)
    hook = PruneOnEpoch(trial, epochs=3)
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        hook(1, {"epoch": 1, "val_accuracy": 0.25})
    assert trial.reports == [(1, 0.25)] and trial.user_attrs["pruned_at_epoch"] == 1
    hook(3, {"epoch": 3, "val_accuracy": 0.5})  # the last epoch: reported, never pruned
    assert trial.reports == [(1, 0.25), (3, 0.5)]


def test_cli_tune_runs_and_refuses_a_missing_budget(image_folder, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("architecture:\n  width: [2, 3]\n")
    flags = ["--set", f"data.path={image_folder}", "--set", "data.dataset=folder", "--set", "data.image_size=12"]
    flags += ["--set", "train.epochs=1", "--set", "train.batch_size=4", "--set", "run.html_report=false"]
    assert main(["tune", str(space), "--out", str(tmp_path / "o"), *flags]) == 2
    assert "give a budget: --trials N and/or --timeout" in capsys.readouterr().err
    assert main(["tune", str(space), "--out", str(tmp_path / "o"), "--trials", "1", "--max-macs", "1e9", *flags]) == 0
    out = capsys.readouterr().out
    assert (
        "cnnkit tune: 1 complete, 0 pruned, 0 failed trials" in out
        and (tmp_path / "o" / "trials" / "0000" / "best.ckpt").is_file()
    )


def test_a_pruned_trial_stops_inside_training(base, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(study_mod, "make_pruner", lambda space, epochs: optuna.pruners.ThresholdPruner(lower=1.1))
    space = space_from_dict({"architecture": {"width": [2]}, "trials": 1})
    result = run_study(space, base.with_overrides({"train.epochs": 3}), tmp_path / "s")
    (t,) = result.trials
    assert t.state.name == "PRUNED" and t.user_attrs["pruned_at_epoch"] == 1 and list(t.intermediate_values) == [1]
    run = tmp_path / "s" / "trials" / "0000"
    with (run / "metrics.csv").open() as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1"]  # stopped right after epoch 1
    assert (run / "last.ckpt").is_file() and (run / "best.ckpt").is_file() and not (run / "summary.json").exists()
    mark = json.loads((run / "pruned.json").read_text())
    assert mark["state"] == "pruned" and mark["epoch"] == 1 and "below the pruner's bar" in mark["reason"]
    assert "trial 0: pruned after epoch 1" in capsys.readouterr().out
    assert result.best is None and not (tmp_path / "s" / "best_config.yaml").exists()


@pytest.mark.slow
def test_two_processes_share_one_study(image_folder, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    space = tmp_path / "space.yaml"
    space.write_text("params:\n  optim.lr: loguniform(0.01, 0.3)\narchitecture:\n  width: [2, 3, 4]\n")
    db = f"sqlite:///{tmp_path / 'shared.db'}"
    flags = ["--set", f"data.path={image_folder}", "--set", "data.dataset=folder", "--set", "data.image_size=12"]
    flags += ["--set", "train.epochs=1", "--set", "train.batch_size=4", "--set", "run.html_report=false"]
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "cnnkit", "tune", str(space), "--storage", db, "--trials", "4"]
    procs = [
        subprocess.Popen(
            [*command, "--out", str(tmp_path / name), *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("a", "b")
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    study = optuna.load_study(study_name="tune", storage=db)
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert 4 <= len(finished) <= 5  # each process stops once 4 have finished; one may be running then
    dirs = {t.user_attrs["run_dir"] for t in finished}
    assert any("/a/" in d for d in dirs) and any("/b/" in d for d in dirs)  # both did some of the work
    assert len({t.number for t in study.trials}) == len(study.trials)


def test_a_tiny_latency_limit_refuses_every_trial_with_its_measured_latency(base, tmp_path):
    space = space_from_dict({"architecture": {"width": [2, 4]}, "sampler": "random"})
    result = run_study(space, base, tmp_path / "s", trials=2, max_latency_ms=1e-6)
    assert [t.state.name for t in result.trials] == ["PRUNED", "PRUNED"]
    for t in result.trials:
        ms = t.user_attrs["latency_ms"]
        assert ms > 0 and t.user_attrs["skipped"] == f"{ms:.3g} ms > max_latency_ms 1e-06"
        assert not (tmp_path / "s" / "trials" / f"{t.number:04d}").exists()  # refused before training
    assert result.best is None


def test_a_large_latency_limit_passes_and_latency_can_be_the_second_objective(base, tmp_path):
    space = space_from_dict(
        {"architecture": {"width": [2, 4]}, "objectives": ["accuracy", "latency"], "max_latency_ms": 1e4}
    )
    result = run_study(space, base.with_overrides({"train.epochs": 1}), tmp_path / "s", trials=2)
    assert [t.state.name for t in result.trials] == ["COMPLETE", "COMPLETE"]
    for t in result.trials:
        assert 0 < t.user_attrs["latency_ms"] < 1e4 and t.values[1] == pytest.approx(t.user_attrs["latency_ms"])
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert summary["objectives"] == ["accuracy", "latency"] and summary["best"]["latency_ms"] > 0
    assert (tmp_path / "s" / "pareto.png").is_file()


def test_cli_latency_limit_and_default_out_under_the_runs_dir(image_folder, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("architecture:\n  width: [2, 3]\n")
    flags = ["--set", f"data.path={image_folder}", "--set", "data.dataset=folder", "--set", "data.image_size=12"]
    flags += ["--set", f"run.runs_dir={tmp_path / 'runs'}", "--set", "run.html_report=false"]
    assert main(["tune", str(space), "--trials", "1", "--max-latency-ms", "0", *flags]) == 2
    assert "--max-latency-ms must be > 0, got 0.0" in capsys.readouterr().err
    assert main(["tune", str(space), "--trials", "1", "--max-latency-ms", "1e-6", *flags]) == 0
    out = capsys.readouterr().out
    assert "trial 0: not trained: " in out and "ms per image is over max_latency_ms 1e-06" in out
    summary = json.loads((tmp_path / "runs" / "tune-space" / "summary.json").read_text())
    assert summary["trials"]["pruned"] == 1 and summary["all"][0]["latency_ms"] > 0


def test_hyperband_spans_the_base_configs_epochs():
    space = space_from_dict({"params": {"optim.lr": [0.1]}, "pruner": "hyperband"})
    pruner = study_mod.make_pruner(space, Config().with_overrides({"train.epochs": 3}).train.epochs)
    assert isinstance(pruner, optuna.pruners.HyperbandPruner) and pruner._max_resource == 3
