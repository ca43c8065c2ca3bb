"""The study's report: summary.json / summary.md (best trial, Pareto front, importances, the
command that re-trains the best by hand), best_config.yaml, and two plots: the optimisation
history and accuracy against MACs (or the measured latency, objectives [accuracy, latency]) with
the Pareto front."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TextIO

from cnnkit.config import load_config, save_config
from cnnkit.rundir import atomic_write_text


def pareto_front(points: list[tuple[float, float, Any]]) -> list[Any]:
    """Items whose (accuracy, macs) no other item beats: accuracy >= and macs <=, one strictly.
    Returned by increasing MACs."""
    front = [
        item
        for acc, macs, item in points
        if not any(a >= acc and m <= macs and (a > acc or m < macs) for a, m, _ in points)
    ]
    order = {id(item): macs for _acc, macs, item in points}
    return sorted(front, key=lambda item: order[id(item)])


def _row(t: Any) -> dict:
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "val_accuracy": t.values[0] if t.values else None,
        "test_accuracy": t.user_attrs.get("test_accuracy"),
        "macs": t.user_attrs.get("macs"),
        "params": t.user_attrs.get("params"),
        "latency_ms": t.user_attrs.get("latency_ms"),
        "overrides": t.user_attrs.get("overrides"),
        "run_dir": t.user_attrs.get("run_dir"),
        "note": t.user_attrs.get("skipped")
        or (f"pruned after epoch {t.user_attrs['pruned_at_epoch']}" if "pruned_at_epoch" in t.user_attrs else None),
        "seconds": t.duration.total_seconds() if t.duration is not None else None,
    }


def importances(study: Any) -> dict[str, float]:
    """fANOVA importances of the parameters for accuracy; empty when too few trials or parameters."""
    import optuna

    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    varied = {k for t in complete for k in t.params}
    if len(complete) < 4 or len(varied) < 2:
        return {}
    try:
        imp = optuna.importance.get_param_importances(
            study, target=lambda t: t.values[0], evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )  # seeded: fANOVA's forest is random, and the report should not change when re-written
    except (ValueError, RuntimeError):  # e.g. every trial with the same value
        return {}
    return {k: round(float(v), 4) for k, v in imp.items()}


def write_report(study: Any, space: Any, out: Path, storage: str, max_macs: float | None, stream: TextIO):
    from cnnkit.search.study import StudyResult

    trials = list(study.trials)
    cost = "latency_ms" if "latency" in space.objectives else "macs"  # the front's second axis
    complete = [t for t in trials if t.state.name == "COMPLETE" and cost in t.user_attrs]
    front = pareto_front([(t.values[0], float(t.user_attrs[cost]), t) for t in complete])
    best = max(complete, key=lambda t: (t.values[0], -t.user_attrs[cost]), default=None)
    files = [out / "summary.json", out / "summary.md"]
    counts = {s: sum(t.state.name.lower() == s for t in trials) for s in ("complete", "pruned", "fail", "running")}
    imp = importances(study)
    summary = {
        "study": study.study_name,
        "storage": storage,
        "objectives": list(space.objectives),
        "max_macs": max_macs,
        "trials": counts,
        "best": _row(best) if best else None,
        "pareto_front": [_row(t) for t in front],
        "importances": imp,
        "all": [_row(t) for t in trials],
    }
    retrain = None
    if best is not None:
        cfg = load_config(Path(best.user_attrs["run_dir"]) / "config.yaml").with_overrides({"run.name": None})
        save_config(cfg, out / "best_config.yaml")
        files.append(out / "best_config.yaml")
        retrain = f"cnnkit train --config {out / 'best_config.yaml'}"
        summary["retrain"] = retrain
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2, default=str))
    atomic_write_text(out / "summary.md", _markdown(summary, retrain))
    if complete:
        files += [
            _plot_history(trials, out / "history.png"),
            _plot_pareto(complete, front, max_macs if cost == "macs" else None, out / "pareto.png", cost),
        ]
    print(
        f"cnnkit tune: {counts['complete']} complete, {counts['pruned']} pruned, {counts['fail']} failed trials",
        file=stream,
    )
    if best is not None:
        print(
            f"best: trial {best.number}, val accuracy {best.values[0]:.2%}, {best.user_attrs['macs']:,} MACs; "
            f"re-train with: {retrain}",
            file=stream,
        )
        if len(front) > 1:
            print(
                "Pareto front: " + ", ".join(f"#{t.number} {t.values[0]:.1%} @ {_cost_text(t, cost)}" for t in front),
                file=stream,
            )
    print(f"report: {out / 'summary.md'}", file=stream, flush=True)
    return StudyResult(out, storage, study.study_name, trials, best, front, files)


def _cost_text(t: Any, cost: str) -> str:
    return f"{t.user_attrs['macs']:,} MACs" if cost == "macs" else f"{t.user_attrs['latency_ms']:.3g} ms"


def _markdown(s: dict, retrain: str | None) -> str:
    lines = [f"# Study {s['study']}", "", f"Storage: `{s['storage']}`  ", f"Objectives: {', '.join(s['objectives'])}"]
    if s["max_macs"]:
        lines.append(f"  \nMAC limit: {s['max_macs']:,.0f} per image")
    lines += ["", "Trials: " + ", ".join(f"{n} {k}" for k, n in s["trials"].items()), ""]
    b = s["best"]
    if b:
        lines += [
            "## Best trial",
            "",
            f"Trial {b['number']}: validation accuracy {b['val_accuracy']:.2%}"
            + (f" (test {b['test_accuracy']:.2%})" if b["test_accuracy"] is not None else "")
            + f", {b['macs']:,} MACs, {b['params']:,} parameters"
            + (f", {b['latency_ms']:.3g} ms batch-1 CPU latency" if b.get("latency_ms") is not None else "")
            + f", run folder `{b['run_dir']}`",
            "",
            "```yaml",
            *(f"{k}: {v}" for k, v in (b["overrides"] or {}).items()),
            "```",
            "",
            f"Re-train it by hand: `{retrain}`",
            "",
        ]
    lines += ["## Pareto front (accuracy vs MACs)", "", "| trial | val accuracy | MACs | params |", "|---|---|---|---|"]
    lines += [
        f"| {r['number']} | {r['val_accuracy']:.2%} | {r['macs']:,} | {r['params']:,} |" for r in s["pareto_front"]
    ]
    if s["importances"]:
        lines += ["", "## Parameter importances (fANOVA, for accuracy)", ""]
        lines += [f"- {k}: {v:.3f}" for k, v in s["importances"].items()]
    lines += ["", "## All trials", "", "| trial | state | val accuracy | MACs | note |", "|---|---|---|---|---|"]
    for r in s["all"]:
        acc = f"{r['val_accuracy']:.2%}" if r["val_accuracy"] is not None else "-"
        macs = f"{r['macs']:,}" if r["macs"] is not None else "-"
        lines.append(f"| {r['number']} | {r['state']} | {acc} | {macs} | {r['note'] or ''} |")
    return "\n".join(lines) + "\n"


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(6, 4))


def _plot_history(trials: list[Any], path: Path) -> Path:
    from cnnkit.io_safety import save_figure

    fig, ax = _figure()
    done = [(t.number, t.values[0]) for t in trials if t.state.name == "COMPLETE"]
    ax.plot([n for n, _ in done], [v for _, v in done], "o", label="complete")
    best, run = [], -math.inf
    for _, v in done:
        run = max(run, v)
        best.append(run)
    ax.step([n for n, _ in done], best, where="post", label="best so far")
    pruned = [
        (t.number, max(t.intermediate_values.values()))
        for t in trials
        if t.state.name == "PRUNED" and t.intermediate_values
    ]
    if pruned:
        ax.plot([n for n, _ in pruned], [v for _, v in pruned], "x", label="pruned (last reported)")
    ax.set_xlabel("trial")
    ax.set_ylabel("validation accuracy")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def _plot_pareto(complete: list[Any], front: list[Any], max_macs: float | None, path: Path, cost: str = "macs") -> Path:
    from cnnkit.io_safety import save_figure

    fig, ax = _figure()
    ax.plot([t.user_attrs[cost] for t in complete], [t.values[0] for t in complete], "o", color="0.6", label="trials")
    ax.plot(
        [t.user_attrs[cost] for t in front], [t.values[0] for t in front], "o-", color="tab:red", label="Pareto front"
    )
    if max_macs:
        ax.axvline(max_macs, linestyle="--", color="k", label="max_macs")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per image" if cost == "macs" else "batch-1 CPU latency (ms)")
    ax.set_ylabel("validation accuracy")
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)
