"""Robustness on the full MNIST: an ordinarily trained model against an adversarially trained one
(same architecture), clean accuracy and PGD-40 accuracy (1 and 5 random restarts) at eps 0.1,
0.2, 0.3 (L∞, pixel units of the 0-1 image), and training seconds.

Both models are trained by the same small loop written here (SGD Nesterov, one-cycle lr,
batch 128, no augmentation, fp32); the adversarial one calls `cnnkit.robust.training.perturb_batch`
on every batch, the hook the training engine will call once it is wired in (until then, this
loop stands in for `cnnkit train --adv-train`). PGD-40: step 2.5 * eps / 40, a uniform random
start; "5 restarts" attacks again (new random start) each image the previous restarts did not
fool, so its first restart is exactly the 1-restart attack. The attacked subset of the test
split is fixed and seeded (--eval-n); clean accuracy is on the full test split.

Also measured (--l2-compare): Captum's L2 PGD step (sign step, then renormalised) against a
step along the L2-normalised gradient, on the ordinary model: the reason cnnkit.robust.attacks
writes the L2 step itself.

The CPU is shared: the load average is recorded with every timing.

    .venv/bin/python benchmarks/bench_robust.py --data-root ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


def train_model(
    data, model_name: str, epochs: int, lr: float, seed: int, adv=None, batch: int = 128
) -> tuple[torch.nn.Module, float]:
    from cnnkit.data.preprocess import Normalize
    from cnnkit.models import create_model
    from cnnkit.robust.training import perturb_batch

    torch.manual_seed(seed)
    model = create_model(model_name, num_classes=10, in_chans=1)
    normalize = Normalize(data.mean, data.std)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    n = len(data.train.labels)
    steps = n // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.25)
    gen = torch.Generator().manual_seed(seed)
    images, labels = data.train.images, data.train.labels
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        for b in range(steps):
            idx = order[b * batch : (b + 1) * batch]
            x01, y = images[idx].float() / 255.0, labels[idx]
            if adv is not None:
                x01 = perturb_batch(model, normalize, x01, y, gen, epoch + b / steps, adv)
            loss = F.cross_entropy(model(normalize(x01 * 255.0)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if b % 100 == 0:
                print(f"    step {b}/{steps}: {time.perf_counter() - t0:.0f} s", flush=True)
        print(
            f"  epoch {epoch + 1}/{epochs}: {time.perf_counter() - t0:.0f} s, last loss {loss.item():.3f}", flush=True
        )
    return model.eval(), time.perf_counter() - t0


def clean_accuracy(forward, x01: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        pred = torch.cat([forward(x01[i : i + 1000]).argmax(1) for i in range(0, len(x01), 1000)])
    return float((pred == y).float().mean())


def pgd_accuracy(forward, x01: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 40, restarts: int = 5) -> dict:
    """Accuracy after 1 and after `restarts` random restarts (each new restart only on the images still correct)."""
    from cnnkit.robust.attacks import AttackSpec, run_attack

    alive = torch.ones(len(y), dtype=torch.bool)
    with torch.no_grad():
        alive &= torch.cat([forward(x01[i : i + 500]).argmax(1) for i in range(0, len(x01), 500)]) == y
    after = []
    for r in range(restarts):
        idx = alive.nonzero().squeeze(1)
        for i in range(0, len(idx), 500):
            j = idx[i : i + 500]
            res = run_attack(forward, x01[j], y[j], AttackSpec(method="pgd", eps=eps, steps=steps, seed=1000 * r + i))
            alive[j[res.success]] = False
        after.append(float(alive.float().mean()))
    return {"pgd_1_restart": after[0], f"pgd_{restarts}_restarts": after[-1], "per_restart": after}


def l2_compare(forward, x01, y, eps_list=(1.0, 1.5, 2.0), steps: int = 20) -> list[dict]:
    from captum.robust import PGD

    from cnnkit.robust.attacks import pgd

    out = []
    for eps in eps_list:
        alpha = 2.5 * eps / steps
        ours = pgd(forward, x01, y, eps, steps=steps, step_size=alpha, norm="l2", start=False)
        # captum: the same step size is the L∞ size of its sign step (its L2 length is alpha * sqrt(784))
        cap_same = PGD(forward, lambda o, t: F.cross_entropy(o, t, reduction="none"), 0, 1).perturb(
            x01, eps, alpha, steps, y, norm="L2"
        )
        alpha_px = alpha / (x01[0].numel() ** 0.5)  # a sign step of the same L2 length
        cap_len = PGD(forward, lambda o, t: F.cross_entropy(o, t, reduction="none"), 0, 1).perturb(
            x01, eps, alpha_px, steps, y, norm="L2"
        )
        with torch.no_grad():
            acc = {
                k: float((forward(v).argmax(1) == y).float().mean())
                for k, v in (
                    ("normalised_gradient_step", ours),
                    ("captum_sign_step_same_alpha", cap_same),
                    ("captum_sign_step_same_l2_length", cap_len),
                )
            }
        out.append({"eps_l2": eps, "steps": steps, **acc})
        print(f"  L2 eps {eps}: {acc}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--model", default="fastnet_t")
    ap.add_argument("--std-epochs", type=int, default=1)
    ap.add_argument("--adv-epochs", type=int, default=1)
    ap.add_argument("--adv-method", default="fgsm-rs")
    ap.add_argument("--adv-eps", type=float, default=0.15)
    ap.add_argument("--adv-steps", type=int, default=7)
    ap.add_argument("--adv-warmup", type=float, default=1.0)
    ap.add_argument("--adv-mode", default="train")
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--eval-n", type=int, default=1000)
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--eps", default="0.1,0.2,0.3")
    ap.add_argument("--l2-compare", action="store_true")
    ap.add_argument("--skip-std", action="store_true")
    ap.add_argument("--tag", default="")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="1: on a busy 2-core machine two threads ran ~8x slower (spinning workers)",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset
    from cnnkit.data.preprocess import Normalize
    from cnnkit.robust.attacks import pixel_forward
    from cnnkit.robust.training import AdvTrainConfig

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = machine_info()["load_average"]
    data = build_dataset(DataConfig(dataset="mnist", root=args.data_root, download=False), seed=0)
    test_x, test_y = data.test.images.float() / 255.0, data.test.labels
    sub = torch.randperm(len(test_y), generator=torch.Generator().manual_seed(0))[: args.eval_n].sort().values
    eps_list = [float(e) for e in args.eps.split(",")]
    adv_cfg = AdvTrainConfig(
        method=args.adv_method,
        eps=args.adv_eps,
        steps=args.adv_steps,
        warmup_epochs=args.adv_warmup,
        mode=args.adv_mode,
    )
    models = {}
    if not args.skip_std:
        models["ordinary"] = (args.std_epochs, None)
    models["adversarial"] = (args.adv_epochs, adv_cfg)
    rows, l2 = [], None
    for name, (epochs, adv) in models.items():
        print(f"{name}: training {epochs} epochs", flush=True)
        load0 = machine_info()["load_average"]
        model, seconds = train_model(data, args.model, epochs, args.lr, 0, adv)
        forward = pixel_forward(model, Normalize(data.mean, data.std))
        row = {"model": name, "architecture": args.model, "epochs": epochs, "train_seconds": round(seconds, 1), "load_during_training": [load0, machine_info()["load_average"]],
               "adv_train": None if adv is None else adv.__dict__, "clean_accuracy": clean_accuracy(forward, test_x, test_y), "pgd40": {}}  # fmt: skip
        from cnnkit.robust.evaluate import gradient_health

        row["gradient_health"] = gradient_health(forward, test_x[sub][:500], test_y[sub][:500])
        print(f"  clean {row['clean_accuracy']:.2%} after {seconds:.0f} s; {row['gradient_health']}", flush=True)
        t0 = time.perf_counter()
        for eps in eps_list:
            row["pgd40"][str(eps)] = pgd_accuracy(forward, test_x[sub], test_y[sub], eps, restarts=args.restarts)
            print(f"  PGD-40 eps {eps}: {row['pgd40'][str(eps)]}", flush=True)
        row["attack_seconds"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        if name == "ordinary" and args.l2_compare:
            l2 = l2_compare(forward, test_x[sub][:500], test_y[sub][:500])
    result = {
        "benchmark": "bench_robust", "started": started, "command": " ".join(["benchmarks/bench_robust.py", *sys.argv[1:]]), "python": platform.python_version(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "load_average_before": load_before, "eval_n": args.eval_n, "restarts": args.restarts, "rows": rows, "l2_step_comparison": l2,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    stem = "bench_robust" + (f"_{args.tag}" if args.tag else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))


def markdown(r: dict) -> str:
    eps = list(r["rows"][0]["pgd40"])
    head = (
        "| model | epochs | train s | clean (10k) | "
        + " | ".join(f"PGD-40 eps {e} (1 / {r['restarts']} restarts)" for e in eps)
        + " |"
    )
    lines = [
        "# Robustness on MNIST: ordinary vs adversarial training", "",
        f"{r['started']}, {r['machine']['model']} ({r['machine']['simd']}), {r['threads']} threads, torch {r['torch']}; "
        f"load average before: {r['load_average_before']}, at the end: {r['machine']['load_average']} (shared machine: timings are inflated).", "",
        f"Command: `{r['command']}`", "",
        f"PGD-40 on a fixed seeded subset of {r['eval_n']} test images; clean accuracy on all 10,000.", "",
        head, "|---|---:|---:|---:|" + "---:|" * len(eps),
    ]  # fmt: skip
    for row in r["rows"]:
        many = f"pgd_{r['restarts']}_restarts"
        cells = " | ".join(
            f"{100 * row['pgd40'][e]['pgd_1_restart']:.1f} % / {100 * row['pgd40'][e][many]:.1f} %" for e in eps
        )
        lines.append(
            f"| {row['model']} | {row['epochs']} | {row['train_seconds']:.0f} | {100 * row['clean_accuracy']:.2f} % | {cells} |"
        )
    for row in r["rows"]:
        if row["adv_train"]:
            lines += [
                "",
                f"Adversarial training: {json.dumps(row['adv_train'])} (perturb_batch in this benchmark's own loop; load during training {row['load_during_training']}).",
            ]
    if r.get("l2_step_comparison"):
        lines += ["", f"L2 PGD (ordinary model, {min(500, r['eval_n'])} images of the subset, no random start): accuracy after the attack (lower = stronger)", "",
                  "| eps (L2) | steps | normalised-gradient step | Captum sign step, same alpha | Captum sign step, same L2 length |", "|---:|---:|---:|---:|---:|"]  # fmt: skip
        for c in r["l2_step_comparison"]:
            lines.append(
                f"| {c['eps_l2']} | {c['steps']} | {100 * c['normalised_gradient_step']:.1f} % | {100 * c['captum_sign_step_same_alpha']:.1f} % | {100 * c['captum_sign_step_same_l2_length']:.1f} % |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
