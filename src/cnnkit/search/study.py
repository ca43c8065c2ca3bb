"""`run_study(space, base, out)`: an Optuna study whose trials are ordinary cnnkit runs.

    out/study.db                 the study (SQLite; `storage=` for a shared database)
    out/trials/0000, 0001, ...   one run folder per trial (config.yaml, metrics.csv, best.ckpt...)
    out/summary.md, summary.json, best_config.yaml, pareto.png, history.png   (search/report.py)

Each trial: the space's values over the base config (its recipe applied first, so a searched
key always wins over the recipe), the model's MACs per image counted on the meta device
(models/summary.py; a trial over `max_macs` is not trained and is recorded as pruned), its
batch-1 CPU latency measured when `max_latency_ms` or a latency objective asks for it
(search/latency.py; the user attr `latency_ms`; over the limit: not trained, pruned), then
`train(cfg, run_dir=...)`. Its value is the best validation accuracy (the test split stays
unseen by the search); with objectives [accuracy, macs] or [accuracy, latency] the study keeps a
Pareto front.

Pruning (single objective): the engine's `on_epoch_end` hook gets each epoch's metrics row,
reports its val_accuracy to Optuna and raises TrialPruned when the median or Hyperband pruner
says so; the run stops there with its folder complete up to that epoch (metrics.csv,
best.ckpt, last.ckpt) and a pruned.json saying why. Optuna cannot prune multi-objective studies.

The study lives in its database: Ctrl-C stops the running trial (its run folder keeps its
last.ckpt; the trial is marked failed) and `--resume` continues with the trials still owed.
A trial whose process was killed outright (SIGKILL) is found by Optuna's heartbeat once it
has been silent for a minute, marked failed and its parameters run again (search/stale.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch

from cnnkit.config import Config
from cnnkit.data import build_dataset
from cnnkit.errors import ConfigError
from cnnkit.io_safety import Interrupted
from cnnkit.models import create_model
from cnnkit.models.spec import SpecError
from cnnkit.models.summary import count_macs
from cnnkit.rundir import atomic_write_text
from cnnkit.search import stale
from cnnkit.search.latency import measure_latency_ms
from cnnkit.search.space import SearchSpace
from cnnkit.search.stale import fail_stale, heartbeat_kwargs
from cnnkit.training.interrupt import TrainingInterrupted
from cnnkit.training.recipes import apply_recipe
from cnnkit.training.resolve import model_kwargs, resolve_auto_model
from cnnkit.training.trainer import train

FINISHED = ("COMPLETE", "PRUNED")


@dataclass
class StudyResult:
    out: Path
    storage: str
    study_name: str
    trials: list[Any]  # optuna FrozenTrials
    best: Any | None  # the best complete trial (highest accuracy; on the front for two objectives)
    front: list[Any]  # the Pareto front (accuracy up, MACs down) of complete trials
    files: list[Path]


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


class PruneOnEpoch:
    """An on_epoch_end hook (training/hooks.py): each epoch's val_accuracy to the trial, and
    TrialPruned when the pruner says so (never after the last epoch: that trial is finished)."""

    def __init__(self, trial: Any, epochs: int):
        self.trial, self.epochs = trial, epochs

    def __call__(self, epoch: int, row: dict) -> None:
        import optuna

        if row.get("val_accuracy") is None:
            return
        self.trial.report(float(row["val_accuracy"]), epoch)
        if epoch < self.epochs and self.trial.should_prune():
            self.trial.set_user_attr("pruned_at_epoch", epoch)
            raise optuna.TrialPruned(f"val_accuracy after epoch {epoch} below the pruner's bar")


def make_sampler(space: SearchSpace):
    import optuna

    if space.sampler == "random":
        return optuna.samplers.RandomSampler(seed=space.seed)
    with warnings.catch_warnings():  # multivariate TPE is marked experimental; it models joint choices (depth x width)
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # 5 random trials before the model (Optuna: 10): a short study on 2 cores runs ~20 trials
        return optuna.samplers.TPESampler(seed=space.seed, multivariate=True, n_startup_trials=5)


def make_pruner(space: SearchSpace, epochs: int):
    import optuna

    if space.multi_objective or space.pruner == "none":
        return optuna.pruners.NopPruner()
    if space.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


class _Macs:
    """MACs per image of a trial's model, from the dataset's shape (loaded once), and its measured latency."""

    def __init__(self, base: Config):
        self.data = build_dataset(base.data)
        self.shape = (self.data.channels, *self.data.image_size)

    def build(self, cfg: Config, device: str) -> torch.nn.Module:
        cfg = resolve_auto_model(cfg, self.data)
        kwargs = model_kwargs(cfg, self.data)
        with torch.device(device):
            return create_model(cfg.model.name, num_classes=self.data.num_classes, in_chans=self.shape[0], **kwargs)

    def __call__(self, cfg: Config) -> tuple[int, int]:
        model = self.build(cfg, "meta")
        return count_macs(model, self.shape), sum(p.numel() for p in model.parameters())

    def latency_ms(self, cfg: Config) -> float:
        """Batch-1 CPU forward latency (search/latency.py) at the run's input size and thread count."""
        return measure_latency_ms(self.build(cfg, "cpu"), self.shape, threads=cfg.runtime.num_threads)


def open_study(
    space: SearchSpace,
    base: Config,
    out: Path,
    storage: str | None,
    name: str,
    resume: bool,
    heartbeat: tuple[int, int] | None = None,
    stream: TextIO | None = None,
):
    """Create the study, or load it (resume, or a shared --storage); the space and base config must match.
    `heartbeat`: (interval, grace) seconds of Optuna's heartbeat, which fails trials whose process died
    (default search/stale.py's HEARTBEAT_S, GRACE_S)."""
    import optuna

    shared = storage is not None
    url = storage or default_storage(out)
    had_db = _db_exists(url)
    if resume and not had_db:
        raise ConfigError(f"--resume: no study {name!r} in {url}; drop --resume to start one")
    url = _connect(url, heartbeat_kwargs(*(heartbeat or (stale.HEARTBEAT_S, stale.GRACE_S)), stream))
    existing = optuna.get_all_study_names(url) if had_db or shared else []
    fingerprint = {"space": _describe(space), "base": base.to_dict()}
    if name in existing:
        study = optuna.load_study(study_name=name, storage=url, sampler=make_sampler(space))
        if not (resume or shared):
            raise ConfigError(
                f"{out}: a study {name!r} with {len(study.trials)} trials is already there; "
                "--resume continues it, or give another --out"
            )
        saved = study.user_attrs.get("fingerprint")
        if saved is not None and saved != fingerprint:
            raise ConfigError(
                f"{out}: the study {name!r} was started with another search space or base config; "
                "run it with the same ones, or give another --out / --study-name"
            )
        return study
    if resume:
        raise ConfigError(f"--resume: no study {name!r} in {url}; drop --resume to start one")
    study = optuna.create_study(
        study_name=name,
        storage=url,
        sampler=make_sampler(space),
        directions=["maximize", "minimize"] if space.multi_objective else ["maximize"],
        load_if_exists=shared,  # a second process of a shared study may have just created it
    )
    study.set_user_attr("fingerprint", fingerprint)
    return study


def _connect(url: str, heartbeat: dict[str, Any], tries: int = 10) -> Any:
    """An Optuna RDB storage with a heartbeat (search/stale.py). SQLite waits up to a minute for another
    process's lock, and two processes creating a fresh database's tables at once (one fails) are retried."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}
    for attempt in range(tries):
        try:
            with warnings.catch_warnings():  # the heartbeat is marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, **heartbeat)
        except SQLAlchemyError:
            if attempt == tries - 1:
                raise
            time.sleep(0.5 + attempt * 0.5)
    raise AssertionError("unreachable")  # pragma: no cover


def _db_exists(url: str) -> bool:
    if url.startswith("sqlite:///"):
        return Path(url[len("sqlite:///") :]).is_file()
    return True


def _describe(space: SearchSpace) -> dict:
    params = {p.name: dataclasses.asdict(p) for p in space.params}
    arch = {k: dataclasses.asdict(p) for k, p in space.arch.params.items()} if space.arch else None
    described = {"params": params, "arch": arch, "objectives": list(space.objectives), "max_macs": space.max_macs}
    if space.max_latency_ms is not None:  # only when set: studies started before the key existed still resume
        described["max_latency_ms"] = space.max_latency_ms
    return _plain(described)


def _plain(x: Any) -> Any:
    """JSON-friendly (tuples as lists), as Optuna stores user attributes."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


def run_study(
    space: SearchSpace,
    base: Config,
    out: str | Path,
    *,
    storage: str | None = None,
    study_name: str = "tune",
    trials: int | None = None,
    timeout: float | None = None,
    max_macs: float | None = None,
    max_latency_ms: float | None = None,
    resume: bool = False,
    resume_hint: str = "",
    stream: TextIO | None = None,
    heartbeat: tuple[int, int] | None = None,
) -> StudyResult:
    """Run (or continue) the study until `trials` trials have finished (complete or pruned, all
    processes together) or `timeout` seconds have passed in this process; then write the report."""
    import optuna

    from cnnkit.search.report import write_report

    out = Path(out)
    stream = stream or sys.stdout
    trials = trials if trials is not None else space.trials
    timeout = timeout if timeout is not None else space.timeout
    max_macs = max_macs if max_macs is not None else space.max_macs
    if trials is None and timeout is None:
        raise ConfigError("tune: give a budget: --trials N and/or --timeout 15m (or trials: / timeout: in the space)")
    space.check(base)
    base = apply_recipe(base)  # the recipe under everything, so the searched values win over it
    (out / "trials").mkdir(parents=True, exist_ok=True)
    prev_level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        study = open_study(space, base, out, storage, study_name, resume, heartbeat, stream)
        fail_stale(study)  # trials whose process was killed: failed, their parameters queued again
        study.pruner = make_pruner(space, base.train.epochs)
        macs_of = _Macs(base)
        done = sum(t.state.name in FINISHED for t in study.trials)
        owed = None if trials is None else max(trials - done, 0)
        if space.multi_objective and space.pruner != "none":
            print("cnnkit tune: two objectives: Optuna cannot prune them, every trial runs to the end", file=stream)
        print(
            f"cnnkit tune: study {study_name!r} in {storage or default_storage(out)}: {done} trials finished"
            + (f", {owed} to go" if owed is not None else "")
            + (f", at most {timeout:.0f} s" if timeout else ""),
            file=stream,
            flush=True,
        )
        objective = _Objective(space, base, out, macs_of, max_macs, stream)
        if max_latency_ms is not None:
            objective.max_latency_ms = max_latency_ms
        if owed != 0:
            callbacks = [optuna.study.MaxTrialsCallback(trials, states=_states(FINISHED))] if trials else []
            try:
                study.optimize(objective, n_trials=owed, timeout=timeout, callbacks=callbacks, gc_after_trial=True)
            except (TrainingInterrupted, Interrupted, KeyboardInterrupt) as e:
                code = getattr(e, "exit_code", 130)
                finished = sum(t.state.name in FINISHED for t in study.trials)
                raise TrainingInterrupted(
                    f"interrupted; {finished} trials finished are kept in {storage or default_storage(out)}; "
                    f"continue with: {resume_hint or 'the same command'} --resume",
                    code,
                ) from e
        return write_report(study, space, out, storage or default_storage(out), max_macs, stream)
    finally:
        optuna.logging.set_verbosity(prev_level)


def _states(names: tuple[str, ...]) -> tuple:
    import optuna

    return tuple(optuna.trial.TrialState[n] for n in names)


class _Objective:
    def __init__(self, space: SearchSpace, base: Config, out: Path, macs_of: _Macs, max_macs, stream: TextIO):
        self.space, self.base, self.out, self.macs_of, self.max_macs, self.stream = (
            space,
            base,
            out,
            macs_of,
            max_macs,
            stream,
        )
        self.max_latency_ms: float | None = space.max_latency_ms

    def __call__(self, trial: Any) -> Any:
        import optuna

        overrides = self.space.suggest(trial)
        trial.set_user_attr("overrides", _plain(overrides))
        cfg = self.base.with_overrides(overrides, source=f"{self.space.source}: trial {trial.number}")
        run_dir = self.out / "trials" / f"{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        try:
            macs, params = self.macs_of(cfg)
        except SpecError as e:  # the grammar's network does not fit this input size
            trial.set_user_attr("skipped", str(e).splitlines()[0])
            self.say(trial, f"not trainable: {str(e).splitlines()[0]}")
            raise optuna.TrialPruned(str(e)) from None
        trial.set_user_attr("macs", macs)
        trial.set_user_attr("params", params)
        if self.max_macs is not None and macs > self.max_macs:
            trial.set_user_attr("skipped", f"{macs:,} MACs > max_macs {self.max_macs:,.0f}")
            self.say(trial, f"not trained: {macs:,} MACs per image is over max_macs {self.max_macs:,.0f}")
            raise optuna.TrialPruned("over the MAC limit")
        latency = self.check_latency(trial, cfg)
        run_dir.mkdir(parents=True, exist_ok=False)
        hook = PruneOnEpoch(trial, cfg.train.epochs) if not self.space.multi_objective else None
        t0 = time.perf_counter()
        try:
            run = train(cfg, run_dir=run_dir, quiet=True, on_epoch_end=hook)
        except optuna.TrialPruned as e:
            epoch = trial.user_attrs.get("pruned_at_epoch")
            mark = {"state": "pruned", "trial": trial.number, "epoch": epoch, "reason": str(e)}
            atomic_write_text(run_dir / "pruned.json", json.dumps(mark, indent=2))  # the folder says why it stops
            self.say(trial, f"pruned after epoch {epoch} ({time.perf_counter() - t0:.1f} s)")
            raise
        acc = float(run.summary["best_val_accuracy"])
        test = run.summary.get("test") or {}
        trial.set_user_attr("test_accuracy", test.get("accuracy"))
        trial.set_user_attr("train_seconds", run.summary.get("train_seconds"))
        self.say(trial, f"val accuracy {acc:.2%}, {macs:,} MACs ({time.perf_counter() - t0:.1f} s)")
        if not self.space.multi_objective:
            return acc
        if self.space.objectives[1] == "latency":
            assert latency is not None  # measured for a latency objective (check_latency)
            return (acc, latency)
        return (acc, float(macs))

    def check_latency(self, trial: Any, cfg: Config) -> float | None:
        """The measured latency (a user attr), when limited or an objective; TrialPruned over the limit."""
        import optuna

        if self.max_latency_ms is None and "latency" not in self.space.objectives:
            return None
        ms = self.macs_of.latency_ms(cfg)
        trial.set_user_attr("latency_ms", ms)
        if self.max_latency_ms is not None and ms > self.max_latency_ms:
            trial.set_user_attr("skipped", f"{ms:.3g} ms > max_latency_ms {self.max_latency_ms:g}")
            self.say(trial, f"not trained: {ms:.3g} ms per image is over max_latency_ms {self.max_latency_ms:g}")
            raise optuna.TrialPruned("over the latency limit")
        return ms

    def say(self, trial: Any, text: str) -> None:
        spec = trial.user_attrs.get("overrides", {}).get("model.name") if self.space.arch else None
        what = ", ".join(f"{k}={v}" for k, v in trial.params.items() if not k.startswith("arch."))
        what = "; ".join(x for x in (what, spec) if x)
        print(f"trial {trial.number}: {text}  [{what}]", file=self.stream, flush=True)
