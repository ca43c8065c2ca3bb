"""DCGAN on the full MNIST (issue 18): classifier-FID and mode coverage after 1, 3 and 10 minutes of
training, against the real-vs-real floor and an untrained generator's ceiling.

- The judge: a cnnkit classifier trained on the same data first, inside the bench (`cnnkit train --dataset
  mnist`, its mnist-fast recipe: fastnet_t, one epoch, >= 99 % test accuracy). "Classifier-FID" is the
  Frechet distance between the features that classifier's head reads (not Inception's: those weights cannot
  be had here) of N generated images and of the 10,000 real test digits (tasks/gan/fid.py); the floor is
  N real training digits against the same test digits, the ceiling the untrained generator (the same init).
  Mode coverage: the share of each digit among the N generated images as the classifier labels them.
- The GAN: `cnnkit train --task gan` on the 54,000 MNIST training digits at 28 px (the DCGAN of
  tasks/gan/model.py: 7x7 start, two doublings), trained in stages: it is stopped (as Ctrl-C would, last.ckpt
  written mid-epoch) when its training time reaches each mark (--minutes, default 1, 3, 10), scored, and
  resumed (resume parity: the same as one uninterrupted run). The scoring is outside the training time.
- Aim (issue 18): every digit 5-15 % of the samples and classifier-FID within 3x the floor in <= 10 minutes.

Timings on a shared, busy machine are contaminated by the other processes: the load average is recorded
before and after; a stage's minutes are minutes of this process's training, whatever else ran.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_gan.py --data-root ../shared/datasets
    smoke: ... --minutes 0.05,0.1 --subset 100 --n 200 --out /tmp/bench_gan_smoke
    variants sharing one judge: ... --minutes 3 --ema 0.999 --judge /tmp/judge --out /tmp/gan_ema
    (with --ema the table also gives the FID of G's own weights, so one run measures both)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_results
from machine import machine_info

RESULTS = Path(__file__).resolve().parent / "results"


class _Until:
    """A stop flag (tasks/gan/run.StopFlag) that asks to stop `seconds` after its first question (the loop asks
    after each step, so setup and data loading are not counted; the first step is)."""

    def __init__(self, seconds: float):
        self.seconds, self.end = seconds, None

    @property
    def requested(self) -> bool:
        now = time.perf_counter()
        if self.end is None:
            self.end = now + self.seconds
        return now >= self.end


def train_classifier(root: str, subset: int, runs: Path) -> tuple[Path, dict]:
    """The judge: cnnkit's mnist recipe (mnist-fast), its run folder and test accuracy."""
    from cnnkit import train
    from cnnkit.config import Config

    overrides = {"data.dataset": "mnist", "data.root": root, "run.runs_dir": str(runs), "run.name": "judge"}
    overrides |= {"data.subset_per_class": subset} if subset else {}
    overrides |= {"run.html_report": False}
    run = train(Config().with_overrides(overrides, source="bench_gan"), quiet=True)
    return run.dir, {
        "test_accuracy": (run.summary.get("test") or {}).get("accuracy"),
        "model": run.summary.get("model"),
        "train_seconds": run.summary.get("train_seconds"),
    }


def judge_run(args: argparse.Namespace, tmp: Path) -> tuple[Path, dict]:
    """The judge: trained in `tmp`, or kept in (and reused from) --judge, so variants share one judge."""
    if not args.judge:
        return train_classifier(args.data_root, args.subset, tmp / "clf")
    keep = Path(args.judge)
    info_file = keep / "judge.json"
    if info_file.exists():
        info = json.loads(info_file.read_text())
        return Path(info.pop("dir")), info
    run_dir, info = train_classifier(args.data_root, args.subset, keep)
    info_file.write_text(json.dumps({**info, "dir": str(run_dir)}))
    return run_dir, info


def gan_config(args: argparse.Namespace, runs: Path):
    from cnnkit.config import Config

    overrides = {
        "data.dataset": "mnist",
        "data.root": args.data_root,
        "data.task": "gan",
        "train.epochs": 1000,  # the stages stop it
        "train.batch_size": args.batch_size,
        "train.seed": args.seed,
        "gan.width": args.width,
        "gan.latent": args.latent,
        "gan.lr": args.lr,
        "gan.loss": args.loss,
        "gan.spectral_norm": args.spectral_norm,
        "gan.ema": args.ema,
        "gan.conditional": args.conditional,
        "runtime.precision": args.precision,
        "run.runs_dir": str(runs),
        "run.name": "dcgan",
        "run.html_report": False,
    }
    overrides |= {"data.subset_per_class": args.subset} if args.subset else {}
    return Config().with_overrides(overrides, source="bench_gan"), overrides


def run_stages(args: argparse.Namespace, cfg, judge: Path, out_png: Path) -> list[dict]:
    """Train to each mark, score there, keep a sample grid; returns one row per mark."""
    from cnnkit.tasks.gan.generate import generate, load_generator
    from cnnkit.tasks.gan.grid import save_grid
    from cnnkit.tasks.gan.run import load_gan_checkpoint, train_gan
    from cnnkit.tasks.gan.score import score_run
    from cnnkit.training.resume_check import check

    rows, run_dir = [], None
    out_png.parent.mkdir(parents=True, exist_ok=True)
    for minutes in sorted(args.minutes):
        done = load_gan_checkpoint(run_dir / "last.ckpt")["train_state"]["train_seconds"] if run_dir else 0.0
        out = train_gan(cfg, stop=_Until(max(0.0, 60 * minutes - done)), resume=run_dir, quiet=True, check=check)
        run_dir = out.dir
        ts = load_gan_checkpoint(run_dir / "last.ckpt")["train_state"]
        t0 = time.perf_counter()
        q = score_run(run_dir, judge, n=args.n, seed=args.seed)
        raw = score_run(run_dir, judge, n=args.n, seed=args.seed, ema=False) if args.ema else None
        shares = list(q["class_shares"].values())
        save_grid(
            generate(load_generator(run_dir), 64, seed=args.seed),
            out_png.with_name(f"{out_png.stem}_{minutes:g}min.png"),
        )
        rows.append(
            {
                "minutes": minutes,
                "train_seconds": round(ts["train_seconds"], 1),
                "epochs": round(ts["epoch"] + ts["step"] / max(1, len_steps(cfg, ts)), 2),
                "fid": round(q["fid"], 3),
                "fid_real_floor": round(q["fid_real_floor"], 3),
                "fid_untrained_ceiling": round(q["fid_untrained_ceiling"], 3),
                "fid_over_floor": round(q["fid"] / max(q["fid_real_floor"], 1e-9), 2),
                "class_shares": {k: round(v, 4) for k, v in q["class_shares"].items()},
                "min_share": round(min(shares), 4),
                "max_share": round(max(shares), 4),
                **({"fid_without_ema": round(raw["fid"], 3)} if raw else {}),
                "aim_met": bool(min(shares) >= 0.05 and max(shares) <= 0.15 and q["fid"] <= 3 * q["fid_real_floor"]),
                "score_seconds": round(time.perf_counter() - t0, 1),
                "load_average": [round(v, 2) for v in os.getloadavg()],
            }
        )
        print(f"{minutes:g} min: {json.dumps({k: v for k, v in rows[-1].items() if k != 'class_shares'})}", flush=True)
    return rows


def len_steps(cfg, ts: dict) -> int:
    """Steps in one epoch (from the saved order when mid-epoch; else 1, the fraction is then 0)."""
    order = ts.get("order")
    return max(1, len(order) // cfg.train.batch_size) if order is not None else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-root", default=os.environ.get("CNNKIT_DATA", "../shared/datasets"))
    ap.add_argument("--minutes", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 3.0, 10.0])
    ap.add_argument("--subset", type=int, default=0, help="images per class (0: all; a smoke test: 100)")
    ap.add_argument("--n", type=int, default=2000, help="generated (and real training) images per score")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--latent", type=int, default=100)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--loss", choices=("bce", "hinge"), default="bce")
    ap.add_argument("--spectral-norm", action="store_true")
    ap.add_argument("--ema", type=float, default=0.0)
    ap.add_argument("--conditional", action="store_true")
    ap.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--judge", default=None, help="a folder to keep the judge classifier in (reused when it holds one)")
    ap.add_argument("--out", default=str(RESULTS / "bench_gan"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_gan_"))
    try:
        judge, judge_info = judge_run(args, tmp)
        cfg, overrides = gan_config(args, tmp / "gan")
        rows = run_stages(args, cfg, judge, Path(args.out))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = {
        "benchmark": "bench_gan",
        "command": "PYTHONPATH=src python benchmarks/bench_gan.py " + " ".join(sys.argv[1:]),
        "config": overrides,
        "judge": judge_info,
        "stages": rows,
        "n_generated": args.n,
        "load_before": [round(v, 2) for v in load_before],
        "load_after": [round(v, 2) for v in os.getloadavg()],
        "machine": {k: v for k, v in machine_info().items() if k != "flags"},
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    write_results(results, args.out, markdown)


def markdown(r: dict) -> str:
    c, j = r["config"], r["judge"]
    subset = f", {c['data.subset_per_class']} per class (smoke test)" if c.get("data.subset_per_class") else ""
    options = [k.split(".")[1] for k in ("gan.spectral_norm", "gan.conditional") if c[k]]
    options += [f"loss {c['gan.loss']}"] + ([f"EMA {c['gan.ema']}"] if c["gan.ema"] else [])
    ema = all("fid_without_ema" in s for s in r["stages"])
    lines = [
        "# bench_gan: DCGAN on MNIST, classifier-FID and mode coverage over training time (CPU)",
        "",
        f"`{r['command']}`",
        "",
        f"MNIST training digits{subset} at 28 px; DCGAN width {c['gan.width']}, latent {c['gan.latent']}, batch "
        f"{c['train.batch_size']}, Adam lr {c['gan.lr']} (beta1 0.5), {', '.join(options)}, {c['runtime.precision']}. "
        f"Judge: a cnnkit {j['model']} trained in the bench (mnist-fast recipe), test accuracy "
        f"{100 * (j['test_accuracy'] or 0):.2f} %. Classifier-FID: the Frechet distance on that classifier's head "
        f"features (not Inception's) of {r['n_generated']} images against the 10,000 real test digits; floor: "
        f"{r['n_generated']} real training digits; ceiling: the untrained generator.",
        "",
        "| minutes | epochs | classifier-FID | floor | FID / floor | untrained | min share | max share | aim met |"
        + (" FID of G without its EMA |" if ema else ""),
        "|---:|---:|---:|---:|---:|---:|---:|---:|:---:|" + ("---:|" if ema else ""),
    ]
    lines += [
        f"| {s['minutes']:g} | {s['epochs']} | {s['fid']:.2f} | {s['fid_real_floor']:.2f} | {s['fid_over_floor']:.1f}x "
        f"| {s['fid_untrained_ceiling']:.1f} | {100 * s['min_share']:.1f} % | {100 * s['max_share']:.1f} % "
        f"| {'yes' if s['aim_met'] else 'no'} |" + (f" {s['fid_without_ema']:.2f} |" if ema else "")
        for s in r["stages"]
    ]
    last = r["stages"][-1]
    lines += [
        "",
        "Aim (issue 18): every digit 5-15 % of the samples and classifier-FID within 3x the floor in <= 10 minutes.",
        "",
        f"Digit shares after {last['minutes']:g} min: "
        + ", ".join(f"{k}: {100 * v:.1f} %" for k, v in last["class_shares"].items())
        + ".",
        "",
        f"Minutes are this process's training seconds on {r['machine']['model']} ({r['machine']['cores']} cores, "
        f"{r['threads']} threads); load average {r['load_before']} before, {r['load_after']} after, and per stage in "
        "the JSON. On a shared machine the epochs reached in a stage shrink with the load; the FID at a given epoch "
        "does not depend on it. Sample grids (64 images, seed 0): bench_gan_<minutes>min.png.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
