"""`cnnkit prune`: structured channel pruning with Torch-Pruning's dependency graph (DepGraph:
residual additions, concatenations and depthwise groups are pruned consistently), then recovery
fine-tuning, into a new run folder whose checkpoint records its parent and its new widths (see
structure.py). Unstructured magnitude pruning (`torch.nn.utils.prune`) is offered for teaching:
it zeroes weights but dense kernels still multiply the zeros, so it saves no time.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from cnnkit.data.preprocess import Normalize
from cnnkit.data.types import Split
from cnnkit.errors import CnnkitError, ConfigError
from cnnkit.rundir import atomic_write_text

log = logging.getLogger("cnnkit")
IMPORTANCE = ("l1", "l2", "taylor")


def _importance(name: str):
    from cnnkit.deploy.metadata import require

    tp = require("torch_pruning")

    if name == "l1":
        return tp.importance.MagnitudeImportance(p=1)
    if name == "l2":
        return tp.importance.MagnitudeImportance(p=2)
    if name == "taylor":
        return tp.importance.TaylorImportance()
    raise ConfigError(f"--importance {name!r}: choose one of {', '.join(IMPORTANCE)}")


def _head(model: nn.Module, num_classes: int) -> list[nn.Module]:
    """The classifier layer(s) whose outputs are the classes: never pruned."""
    layers: list[nn.Module] = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return [m for m in layers if getattr(m, "out_features", getattr(m, "out_channels", None)) == num_classes][
        -1:
    ] or layers[-1:]


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    from cnnkit.models.summary import count_macs as macs

    return macs(model, input_shape)


def structured_prune(
    model: nn.Module,
    input_shape: tuple[int, int, int],
    num_classes: int,
    *,
    target_macs: float | None = None,
    amount: float | None = None,
    importance: str = "l2",
    steps: int = 1,
    grad_batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    round_to: int | None = None,
) -> nn.Module:
    """Prune `model` in place: to `target_macs` (share of MACs kept, 0..1) or by `amount` (share of
    channels removed per layer, in `steps` steps). Taylor importance needs `grad_batch` (normalised x, labels)."""
    from cnnkit.deploy.metadata import require

    tp = require("torch_pruning")

    if (target_macs is None) == (amount is None):
        raise ConfigError("give one of --target-macs (share of MACs kept) or --amount (share of channels removed)")
    if target_macs is not None and not 0 < target_macs < 1:
        raise ConfigError(f"--target-macs must be between 0 and 1 (the share of MACs kept), got {target_macs:g}")
    if amount is not None and not 0 < amount < 1:
        raise ConfigError(f"--amount must be between 0 and 1 (the share of channels removed), got {amount:g}")
    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    if importance == "taylor" and grad_batch is None:
        raise ConfigError(
            "--importance taylor needs training images for its gradients; the run's data is not reachable (use l1 or l2)"
        )
    model.eval()
    example = torch.randn(1, *input_shape)
    # a MAC target: uniform channel pruning by r keeps about (1 - r)^2 of the MACs, so the schedule aims
    # at r = 1 - sqrt(target) by ~70 % of its steps, and steps stop as soon as the target is met
    n_steps = steps if amount is not None else max(steps, 16)
    ratio = amount if amount is not None else min(0.95, (1 - (target_macs or 1) ** 0.5) / 0.7)
    pruner = tp.pruner.MetaPruner(
        model, example, importance=_importance(importance), pruning_ratio=ratio,
        iterative_steps=n_steps, ignored_layers=_head(model, num_classes), round_to=round_to,
    )  # fmt: skip
    base = count_macs(model, input_shape)
    macs = base
    for _ in range(n_steps):
        if target_macs is not None and macs <= target_macs * base:
            break
        if importance == "taylor":
            assert grad_batch is not None
            model.zero_grad()
            F.cross_entropy(model(grad_batch[0]), grad_batch[1]).backward()
        pruner.step()
        if target_macs is not None:
            macs = count_macs(model, input_shape)
    model.zero_grad(set_to_none=True)
    if target_macs is not None and macs > target_macs * base * 1.05:
        log.warning(
            "pruning stopped at %.0f%% of the MACs (target %.0f%%): the remaining layers are ignored or at their minimum width",
            100 * macs / base,
            100 * target_macs,
        )
    return model.eval()


def unstructured_prune(model: nn.Module, amount: float) -> nn.Module:
    """Zero the `amount` share of smallest-magnitude conv / linear weights (global L1), made permanent."""
    import torch.nn.utils.prune as tprune

    if not 0 < amount < 1:
        raise ConfigError(f"--amount must be between 0 and 1 (the share of weights zeroed), got {amount:g}")
    params = [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    tprune.global_unstructured(params, pruning_method=tprune.L1Unstructured, amount=amount)
    for m, name in params:
        tprune.remove(m, name)
    return model


def sparsity(model: nn.Module) -> float:
    ws = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return float(sum(int((w == 0).sum()) for w in ws) / max(sum(w.numel() for w in ws), 1))


@torch.no_grad()
def latency_ms(model: nn.Module, input_shape: tuple[int, int, int], repeats: int = 20, budget_s: float = 5.0) -> float:
    """Median batch-1 eager latency."""
    model.eval()
    x = torch.randn(1, *input_shape)
    model(x)
    model(x)
    times: list[float] = []
    stop = time.perf_counter() + budget_s
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() < stop):
        t = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def accuracy(model: nn.Module, split: Split, normalize: Normalize, batch_size: int = 256) -> float:
    from cnnkit.evaluate.predict import predict_logits

    if not len(split):
        return 0.0
    logits = predict_logits(model, split, normalize=normalize, batch_size=batch_size)
    return int((logits.argmax(1) == split.labels).sum()) / len(split)


def measure(model: nn.Module, input_shape: tuple[int, int, int], test: Split | None, normalize: Normalize) -> dict:
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "macs": count_macs(model, input_shape),
        "latency_ms_b1": latency_ms(model, input_shape),
        "accuracy": accuracy(model, test, normalize) if test is not None else None,
        "sparsity": sparsity(model),
    }


def prune_run(
    path: str | os.PathLike,
    *,
    target_macs: float | None = None,
    amount: float | None = None,
    importance: str = "l2",
    steps: int = 1,
    unstructured: bool = False,
    finetune_epochs: int = 0,
    lr: float | None = None,
    batch_size: int | None = None,
    train_images: int | None = None,
    test_images: int | None = None,
    out: str | os.PathLike | None = None,
    seed: int = 0,
) -> dict:
    """Prune the run / checkpoint at `path` and write a new run folder (default `<run>-pruned`) with
    best.ckpt and prune.json (params, MACs, latency, accuracy: before, after pruning, after recovery).
    Recovery (`finetune_epochs` > 0) trains the pruned model with the training engine in the run
    folder's `recovery/` (deploy/recovery.py): the parent's recipe, `lr` / `batch_size` replacing
    its rate / batch size when given, `train_images` taking that many training images (per class)."""
    from cnnkit.checkpoint import atomic_save, load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from cnnkit.deploy.source import load_split

    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("task") == "multi_label":
        raise CnnkitError(f"{ckpt_path}: pruning's accuracy and recovery are single-label only for now")
    inp = ckpt["input"]
    shape = (inp["channels"], *inp["size"])
    normalize = Normalize(inp["mean"], inp["std"])
    torch.manual_seed(seed)
    model = model_from_checkpoint(ckpt)
    test = load_split(ckpt, "test", limit=test_images)
    if finetune_epochs > 0 and unstructured:
        raise ConfigError(
            "--unstructured with --finetune-epochs: training moves the zeroed weights; prune unstructured without recovery"
        )
    need_train = importance == "taylor" and not unstructured
    train = load_split(ckpt, "train", limit=train_images, seed=seed) if need_train else None
    report: dict = {
        "parent": str(ckpt_path),
        "model": ckpt["model"]["name"],
        "method": "unstructured-l1" if unstructured else f"structured-{importance}",
        "target_macs": target_macs,
        "amount": amount,
        "steps": steps,
    }
    report["before"] = measure(model, shape, test, normalize)
    note = _prune(model, ckpt, train, normalize, report, seed=seed)
    if note:
        report["note"] = note
    report["after_pruning"] = measure(model, shape, test, normalize)
    run_dir = Path(out) if out is not None else ckpt_path.parent.with_name(ckpt_path.parent.name + "-pruned")
    run_dir.mkdir(parents=True, exist_ok=True)
    if finetune_epochs > 0:
        model = _recover(ckpt, model, report, run_dir, finetune_epochs, lr, batch_size, train_images, seed)
        report["after_recovery"] = measure(model.eval(), shape, test, normalize)
    atomic_save(pruned_checkpoint(ckpt, model, report), run_dir / "best.ckpt")
    report["checkpoint"] = str(run_dir / "best.ckpt")
    report["test_images"] = len(test) if test is not None else 0
    text = json.dumps(report, indent=2) + "\n"
    for folder in (run_dir / "export", ckpt_path.parent / "export"):  # the pruned run's report and its parent's
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "prune.json", text)
    report["run_dir"] = str(run_dir)
    return report


def _recover(
    ckpt: dict,
    model: nn.Module,
    report: dict,
    run_dir: Path,
    epochs: int,
    lr: float | None,
    batch_size: int | None,
    train_images: int | None,
    seed: int,
) -> nn.Module:
    """Save the pruned model as run_dir/pruned.ckpt, train it with the engine in run_dir/recovery/,
    and return the recovery run's best model (the report gets its settings and per-epoch rows)."""
    from cnnkit.checkpoint import atomic_save, load_checkpoint, model_from_checkpoint
    from cnnkit.deploy.recovery import recover, recovery_config, unfinished

    pruned = run_dir / "pruned.ckpt"
    if not (unfinished(run_dir / "recovery") and pruned.is_file()):  # an interrupted recovery continues on its own file
        atomic_save(pruned_checkpoint(ckpt, model, report), pruned)
    cfg = recovery_config(
        ckpt, pruned, epochs=epochs, lr=lr, batch_size=batch_size, train_images=train_images, seed=seed
    )
    run = recover(cfg, run_dir / "recovery")
    report["finetune"] = {
        "engine": "cnnkit.training.train",
        "run_dir": str(run.dir),
        "epochs": epochs,
        "lr": run.config.optim.lr,
        "batch_size": run.config.train.batch_size,
        "precision": run.config.runtime.precision,
        "schedule": run.config.schedule.name,
        "train_images": run.summary.get("split_sizes", {}).get("train"),
        "history": [{k: v for k, v in row.items() if isinstance(v, (int, float, str))} for row in run.metrics],
    }
    return model_from_checkpoint(load_checkpoint(run.best_checkpoint))


def _prune(
    model: nn.Module, ckpt: dict, train: Split | None, normalize: Normalize, report: dict, seed: int
) -> str | None:
    """Prune `model` in place as `report` says (method, target_macs, amount, steps); a note for the report, or None."""
    amount = report["amount"]
    if report["method"] == "unstructured-l1":
        if amount is None:
            raise ConfigError("unstructured pruning takes --amount (the share of weights zeroed), not --target-macs")
        unstructured_prune(model, amount)
        return "unstructured pruning zeroes weights; dense kernels still multiply the zeros, so MACs and latency do not drop"
    importance = report["method"].removeprefix("structured-")
    grad = None
    if importance == "taylor" and train is not None:
        idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:64]
        grad = (normalize(train.images[idx]), train.labels[idx])
    inp = ckpt["input"]
    structured_prune(
        model,
        (inp["channels"], *inp["size"]),
        len(ckpt["class_names"]),
        target_macs=report["target_macs"],
        amount=amount,
        importance=importance,
        steps=report["steps"],
        grad_batch=grad,
    )
    return None


def pruned_checkpoint(ckpt: dict, model: nn.Module, report: dict) -> dict:
    """The parent's checkpoint with the pruned weights, the final test accuracy and the structure that
    rebuilds the pruned model from the parent's model (no training state)."""
    from cnnkit.models import create_model
    from cnnkit.models.structure import record_structure

    fresh = create_model(ckpt["model"]["name"], **ckpt["model"]["kwargs"])
    new = copy.copy(ckpt)
    new.pop("train_state", None)
    new.pop("ema_state_dict", None)
    new["state_dict"] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    final = report.get("after_recovery", report["after_pruning"])
    new["metrics"] = {
        **{k: float(v) for k, v in ckpt.get("metrics", {}).items()},
        **({"test_accuracy": float(final["accuracy"])} if final["accuracy"] is not None else {}),
    }
    new["pruning"] = {
        "structure": record_structure(model, fresh),
        "parent": report["parent"],
        "method": report["method"],
        "target_macs": report["target_macs"],
        "amount": report["amount"],
        "macs": int(final["macs"]),
        "parent_macs": int(report["before"]["macs"]),
    }
    return new


def table(report: dict) -> str:
    stages = [("before", "before"), ("after_pruning", "pruned"), ("after_recovery", "recovered")]
    head = f"{'':<10} {'params':>10} {'MACs':>12} {'latency b1':>11} {'accuracy':>9}"
    lines = [head]
    for key, label in stages:
        r = report.get(key)
        if r is None:
            continue
        acc = f"{r['accuracy']:.2%}" if r["accuracy"] is not None else "-"
        lines.append(f"{label:<10} {r['params']:>10,} {r['macs']:>12,} {r['latency_ms_b1']:>9.2f}ms {acc:>9}")
    b, a = report["before"], report.get("after_recovery", report["after_pruning"])
    lines.append(
        f"MACs kept {a['macs'] / b['macs']:.0%}, params kept {a['params'] / b['params']:.0%}, batch-1 speed-up {b['latency_ms_b1'] / a['latency_ms_b1']:.2f}x (eager)"
    )
    if report.get("note"):
        lines.append(f"note: {report['note']} (sparsity {a['sparsity']:.0%})")
    return "\n".join(lines)
