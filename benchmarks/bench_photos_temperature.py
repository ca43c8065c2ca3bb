"""Issue 12, calibration: does a temperature fitted on out-of-fold logits of the training split lower
the validation ECE of head-only training on the photo stand-ins? Nothing is fitted on validation.

For each pair (bench_photos.py's stand-ins: 125 + 125 training, 75 + 75 validation images), Lite0's
pooled features at 224 px (bench_photos_methods.features); a linear head trained as the engine's
transfer-head recipe does (AdamW 3e-3, weight decay 0.05, one-cycle, batch 32, dropout 0.2, 20 epochs,
zero init); its validation accuracy and ECE raw, then divided by T, where T minimises the NLL of
out-of-fold logits (5 folds of the training split, a head trained on each 4/5 the same way). Three seeds.

    .venv/bin/python benchmarks/bench_photos_temperature.py > benchmarks/results/bench_photos_temperature.txt
"""

import math
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from bench_photos import PAIRS as P1
from bench_photos import TARBALL, build_standin
from bench_photos_methods import features, scores


def train_head(x, y, seed, epochs=20, lr=3e-3, bs=32):
    torch.manual_seed(seed)
    lin = torch.nn.Linear(x.shape[1], 2)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.AdamW(
        [{"params": [lin.weight], "weight_decay": 0.05}, {"params": [lin.bias], "weight_decay": 0.0}], lr=lr
    )
    n = len(y)
    steps = epochs * math.ceil(n / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(n, generator=g)
        for i in range(0, n, bs):
            idx = order[i : i + bs]
            loss = F.cross_entropy(lin(F.dropout(x[idx], 0.2, training=True)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return lin


def fit_t(logits, y):
    t = torch.zeros(1, requires_grad=True)  # log T
    opt = torch.optim.LBFGS([t], lr=0.1, max_iter=100)

    def closure():
        opt.zero_grad()
        nll = F.cross_entropy(logits / t.exp(), y)
        nll.backward()
        return nll

    opt.step(closure)
    return float(t.detach().exp())


def main() -> None:
    print(f"load average {os.getloadavg()}, {platform.processor()}, torch {torch.__version__}", flush=True)
    for pair in ("cat-dog", "automobile-horse", "ship-truck"):
        with tempfile.TemporaryDirectory() as tmp:
            build_standin(TARBALL, Path(tmp), P1[pair])
            tr = features(Path(tmp), P1[pair], "train", 224)
            va = features(Path(tmp), P1[pair], "val", 224)
        x, y, xv, yv = tr["id"]["pool"], tr["labels"], va["id"]["pool"], va["labels"]
        for seed in (0, 1, 2):
            lin = train_head(x, y, seed)
            with torch.no_grad():
                lv = lin(xv)
            raw = scores(torch.softmax(lv, 1), yv)
            g = torch.Generator().manual_seed(100 + seed)
            perm = torch.randperm(len(y), generator=g)
            oof = torch.zeros(len(y), 2)
            for k in range(5):
                te = perm[k::5]
                trn = torch.tensor(sorted(set(perm.tolist()) - set(te.tolist())))
                head = train_head(x[trn], y[trn], seed)
                with torch.no_grad():
                    oof[te] = head(x[te])
            T = fit_t(oof, y)
            cal = scores(torch.softmax(lv / T, 1), yv)
            print(
                f"{pair} seed {seed}: raw {raw['accuracy']:.1%} ECE {raw['ece']:.1%} | T {T:.2f} | ECE {cal['ece']:.1%}  (oof acc {(oof.argmax(1) == y).float().mean():.1%})",
                flush=True,
            )


if __name__ == "__main__":
    main()
