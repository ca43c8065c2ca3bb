"""Robust accuracy: accuracy against FGSM and PGD over a list of eps, with guards against fooling ourselves.

`robust_accuracy(forward, x01, y, ...)` works on tensors; `robust_evaluate(run_or_ckpt, ...)`
takes a fixed seeded subset of the run's test split and writes `robust.json`, `robust.csv`,
`accuracy_vs_eps.png` and three example attacks into `RUN/robust/` (what report.html shows).

Guards, recorded in the result's `warnings` (and `gradients_masked`):
- the input gradient is zero or not finite for most images, or PGD does not raise the loss at
  the largest eps: "gradients look masked: ...; robust accuracy is not trustworthy";
- PGD weaker than FGSM at some eps, or accuracy rising with eps: the attack is too weak there.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
import json
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnkit.robust.attacks import AttackSpec, Forward, pixel_forward, run_attack

PHOTO_EPS = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
GRAY_EPS = (0.0, 0.05, 0.1, 0.2, 0.3)  # MNIST-like 1-channel data
DEFAULT_N = 500  # about a minute for the default model on 2 shared cores (PGD-10, 5 eps)
MASKED_MSG = "gradients look masked: {why}; robust accuracy is not trustworthy (attack it with gradient-free or adaptive attacks)"


def default_eps(channels: int) -> list[float]:
    """0..8/255 for photos; 0..0.3 for 1-channel MNIST-like data."""
    return list(GRAY_EPS if channels == 1 else PHOTO_EPS)


def gradient_health(forward: Forward, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Share of images whose input gradient of the loss is zero or not finite."""
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(forward(x), y, reduction="sum"), x)
    norms = g.flatten(1).norm(dim=1)
    bad = ~torch.isfinite(norms) | (norms < 1e-12)
    return {
        "zero_or_nonfinite_gradient_share": float(bad.float().mean()),
        "median_gradient_norm": float(norms[torch.isfinite(norms)].median())
        if torch.isfinite(norms).any()
        else math.nan,
    }


def robust_accuracy(
    forward: Forward,
    x01: torch.Tensor,
    y: torch.Tensor,
    eps_list: list[float],
    *,
    steps: int = 10,
    restarts: int = 1,
    seed: int = 0,
    batch_size: int = 250,
) -> dict:
    """Accuracy under FGSM and PGD-`steps` (L∞, `restarts` random starts) at each eps, plus the
    guards' verdict. `rows`: eps, fgsm, pgd, pgd_loss (mean cross-entropy after PGD)."""
    x01, y = x01.float(), y.long()
    rows = []
    with torch.no_grad():
        clean_logits = torch.cat([forward(x01[i : i + batch_size]) for i in range(0, len(x01), batch_size)])
    clean_loss = float(F.cross_entropy(clean_logits, y))
    clean_acc = float((clean_logits.argmax(1) == y).float().mean())
    adv_examples: dict[float, torch.Tensor] = {}
    for eps in sorted(eps_list):
        if eps == 0:
            rows.append({"eps": 0.0, "fgsm": clean_acc, "pgd": clean_acc, "pgd_loss": clean_loss})
            continue
        correct = {"fgsm": 0, "pgd": 0}
        loss_sum = 0.0
        advs = []
        for i in range(0, len(x01), batch_size):
            xb, yb = x01[i : i + batch_size], y[i : i + batch_size]
            for method in ("fgsm", "pgd"):
                spec = AttackSpec(
                    method=method, eps=eps, steps=steps, restarts=restarts if method == "pgd" else 1, seed=seed + i
                )
                r = run_attack(forward, xb, yb, spec)
                correct[method] += int((r.logits_adv.argmax(1) == yb).sum())
                if method == "pgd":
                    loss_sum += float(F.cross_entropy(r.logits_adv, yb, reduction="sum"))
                    advs.append(r.x_adv)
        adv_examples[eps] = torch.cat(advs)
        rows.append(
            {
                "eps": eps,
                "fgsm": correct["fgsm"] / len(x01),
                "pgd": correct["pgd"] / len(x01),
                "pgd_loss": loss_sum / len(x01),
            }
        )
    result = {
        "n": len(x01),
        "norm": "linf",
        "steps": steps,
        "restarts": restarts,
        "step_size": "2.5 * eps / steps",
        "seed": seed,
        "clean_accuracy": clean_acc,
        "clean_loss": clean_loss,
        "rows": rows,
    }
    result.update(guards(forward, x01[: min(len(x01), 256)], y[: min(len(y), 256)], rows, clean_loss))
    result["_adv"] = adv_examples  # popped before writing: the PGD images, for the examples
    return result


def guards(forward: Forward, x01: torch.Tensor, y: torch.Tensor, rows: list[dict], clean_loss: float) -> dict:
    """Checks that the numbers can be believed; see the module docstring."""
    health = gradient_health(forward, x01, y)
    warnings: list[str] = []
    masked: list[str] = []
    if health["zero_or_nonfinite_gradient_share"] > 0.5:
        masked.append(
            f"the input gradient is zero or not finite for {health['zero_or_nonfinite_gradient_share']:.0%} of the images"
        )
    attacked = [r for r in rows if r["eps"] > 0]
    if attacked and attacked[-1]["pgd_loss"] <= clean_loss + 1e-6:
        masked.append(
            f"PGD did not raise the loss at eps {attacked[-1]['eps']:.4g} ({clean_loss:.4f} -> {attacked[-1]['pgd_loss']:.4f})"
        )
    tol = 1.0 / max(1, len(x01))
    warnings.extend(
        f"PGD weaker than FGSM at eps {r['eps']:.4g} ({r['pgd']:.1%} vs {r['fgsm']:.1%}): the PGD attack is too weak there (more --robust-steps) or gradients are masked"
        for r in attacked
        if r["pgd"] > r["fgsm"] + 1e-9
    )
    for a, b in itertools.pairwise(rows):
        if b["pgd"] > a["pgd"] + tol:
            warnings.append(
                f"PGD accuracy rises from eps {a['eps']:.4g} to {b['eps']:.4g} ({a['pgd']:.1%} -> {b['pgd']:.1%}): the attack is too weak at the larger eps"
            )
    if masked:
        warnings.insert(0, MASKED_MSG.format(why="; ".join(masked)))
    return {"gradient_health": health, "gradients_masked": bool(masked), "warnings": warnings}


def _split_subset(path, n: int, seed: int, split: str, data_root: str | None, device: str):
    """The checkpoint, model, normalisation and a fixed seeded subset (x in [0, 1], y) of its dataset's `split`."""
    from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint, resolve_checkpoint
    from cnnkit.config import Config
    from cnnkit.data._registry import build_dataset
    from cnnkit.data.preprocess import Normalize
    from cnnkit.errors import DataError
    from cnnkit.evaluate.api import _align_classes
    from cnnkit.training.device import resolve_device

    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path)
    if ckpt.get("task") == "multi_label":
        raise DataError(f"{ckpt_path}: robust accuracy is for single-label models (this one is multi-label)")
    cfg = Config.from_dict(ckpt["config"], source=f"{ckpt_path} (stored config)")
    data_cfg = cfg.data
    if data_root is not None:
        data_cfg = dataclasses.replace(data_cfg, root=data_root)
    ds = build_dataset(data_cfg, seed=cfg.train.seed)
    sp = _align_classes(ds.split(split), ds.class_names, ckpt["class_names"])
    idx = torch.randperm(len(sp.labels), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    dev = resolve_device(device)
    model = model_from_checkpoint(ckpt).to(dev).eval()
    normalize = Normalize(ckpt["input"]["mean"], ckpt["input"]["std"], dev)
    x01 = sp.images[idx].to(dev).float() / 255.0
    return ckpt_path, ckpt, ds.name, model, normalize, x01, sp.labels[idx].to(dev), idx


def robust_evaluate(
    path: str | os.PathLike,
    *,
    n: int = DEFAULT_N,
    eps: list[float] | None = None,
    steps: int = 10,
    restarts: int = 1,
    seed: int = 0,
    split: str = "test",
    data_root: str | None = None,
    device: str = "cpu",
    out: str | os.PathLike | None = None,
) -> dict:
    """Robust accuracy of a run (or checkpoint) on `n` images of its `split`; files into `out`
    (default: robust/ beside the checkpoint). Returns the result dict (with `files`)."""
    from cnnkit.io_safety import staged_folder

    ckpt_path, ckpt, ds_name, model, normalize, x01, y, _idx = _split_subset(path, n, seed, split, data_root, device)
    eps_list = eps if eps is not None else default_eps(int(ckpt["input"]["channels"]))
    forward = pixel_forward(model, normalize)
    threads = torch.get_num_threads()
    if x01.device.type == "cpu":  # the cores other processes leave free, as training does (training/threads.py)
        from cnnkit.training.threads import ThreadGovernor

        ThreadGovernor().start()
    try:
        result = robust_accuracy(forward, x01, y, eps_list, steps=steps, restarts=restarts, seed=seed)
    finally:
        torch.set_num_threads(threads)
    adv = result.pop("_adv")
    result.update(
        {
            "checkpoint": str(ckpt_path),
            "dataset": ds_name,
            "split": split,
            "subset_seed": seed,
            "class_names": list(ckpt["class_names"]),
        }
    )
    out_dir = Path(out) if out is not None else ckpt_path.parent / "robust"
    with staged_folder(out_dir, hint="or write elsewhere with --robust-out DIR") as stage:
        names = write_robust_files(result, forward, x01, y, adv, stage)
    result["files"] = [str(out_dir / f) for f in names]
    return result


def write_robust_files(
    result: dict, forward: Forward, x01: torch.Tensor, y: torch.Tensor, adv: dict, out: Path
) -> list[str]:
    """robust.json, robust.csv, accuracy_vs_eps.png and example_<i>.png (three attacks that flip the prediction)."""
    from cnnkit.robust.render import save_accuracy_plot, save_attack_panel

    names = result.get("class_names") or [str(i) for i in range(int(y.max()) + 1)]
    examples = []
    if adv:
        eps = max(adv)
        for e in sorted(adv):  # the smallest eps that fools at least three images, for the clearest examples
            with torch.no_grad():
                if int((forward(adv[e]).argmax(1) != y).sum()) >= 3:
                    eps = e
                    break
        xa = adv[eps]
        with torch.no_grad():
            p0, p1 = torch.softmax(forward(x01), 1), torch.softmax(forward(xa), 1)
        flipped = ((p0.argmax(1) == y) & (p1.argmax(1) != y)).nonzero().squeeze(1).tolist()[:3]
        for k, i in enumerate(flipped):
            a, b = int(p0[i].argmax()), int(p1[i].argmax())
            fname = f"example_{k + 1}.png"
            save_attack_panel(
                x01[i].cpu().numpy(), xa[i].cpu().numpy(), out / fname,
                titles=(f"original: {names[a]} ({float(p0[i, a]):.0%})", f"adversarial: {names[b]} ({float(p1[i, b]):.0%})"),
                suptitle=f"PGD-{result['steps']}, eps {eps:.4g} ({eps * 255:.1f}/255), true class {names[int(y[i])]}",
            )  # fmt: skip
            examples.append(
                {"file": fname, "eps": eps, "true": names[int(y[i])], "before": names[a], "after": names[b]}
            )
    result["examples"] = examples
    save_accuracy_plot(result, out / "accuracy_vs_eps.png")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["eps", "eps_255", "fgsm_accuracy", "pgd_accuracy", "pgd_loss", "n", "steps", "restarts"])
    for r in result["rows"]:
        w.writerow(
            [
                f"{r['eps']:.6g}",
                f"{r['eps'] * 255:.3g}",
                f"{r['fgsm']:.4f}",
                f"{r['pgd']:.4f}",
                f"{r['pgd_loss']:.4f}",
                result["n"],
                result["steps"],
                result["restarts"],
            ]
        )
    (out / "robust.csv").write_text(buf.getvalue())
    (out / "robust.json").write_text(json.dumps(result, indent=2))
    return ["robust.json", "robust.csv", "accuracy_vs_eps.png"] + [e["file"] for e in examples]


def format_robust(result: dict) -> str:
    """A small table: eps, FGSM and PGD accuracy; then the warnings."""
    lines = [
        f"robust accuracy, {result.get('dataset', '')} {result.get('split', '')}: {result['n']} images (seeded subset), L∞, "
        f"PGD-{result['steps']} with {result['restarts']} restart{'s' if result['restarts'] != 1 else ''}, step 2.5*eps/steps",
        f"{'eps':>8} {'eps*255':>8} {'FGSM':>8} {'PGD':>8}",
    ]
    lines.extend(f"{r['eps']:8.4g} {r['eps'] * 255:8.3g} {r['fgsm']:8.2%} {r['pgd']:8.2%}" for r in result["rows"])
    lines += [f"WARNING: {w}" for w in result.get("warnings", [])]
    return "\n".join(lines)
