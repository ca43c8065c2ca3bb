"""How far this CIFAR-10 copy lets a speed-record recipe go: airbench94 (Jordan 2024,
"94% on CIFAR-10 in 3.29 seconds on a single GPU") re-implemented in plain PyTorch, run
for its full 9.9 epochs on the JPEG folder, timed on this machine.

airbench94 reaches 94.01 % on the original CIFAR-10 (lossless binaries). The copy in
../shared/datasets is JPEG at quality 75 with 4:2:0 chroma (the colour planes at 16x16),
for training and test images alike. This benchmark measures what the same recipe reaches
on that copy, so bench_cifar.py's numbers can be read against it. It shares only the
JPEG loader with cnnkit (the decode-once cache); network, loop, augmentation and TTA are
written out here, so a cnnkit bug cannot hide in both:

- network: a frozen 2x2 whitening convolution (the training patches' principal
  components, +/-; its bias trains for the first 3 epochs) and GELU, then three groups of
  conv -> 2x2 max pool -> BN -> GELU -> conv -> BN -> GELU (widths 64, 256, 256; every
  conv starts as a partial identity; BN momentum 0.4, eps 1e-12, scale frozen), global max
  pooling, a bias-free linear layer, logits / 9;
- training: batch 1024, Nesterov SGD (momentum 0.85) on the summed loss with lr 11.5 and
  weight decay 0.0153 in airbench's kilostep units, BN biases at 64x the rate, label
  smoothing 0.2, a triangular schedule (0.2 -> 1 by 23 % of the steps -> 0.07), lookahead
  every 5 steps from epoch 4 on with decay 0.95^5 (step / total)^3;
- data: random 2 px shifts with reflect padding, alternating flips (a random half of the
  images mirrored once, then all flipped every other epoch);
- TTA: the logits of the image and its mirror, half weight, plus those of the 1 px
  up-left and down-right shifts (reflect padding) and their mirrors, a quarter each.

    .venv/bin/python benchmarks/bench_cifar_ceiling.py --data /tmp/cifar            # ~17 min on 2 cores
    .venv/bin/python benchmarks/bench_cifar_ceiling.py --data /tmp/cifar --widths 32,128,128 --sizes 24,24,28,32 --epochs 4
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_train import write_results

RESULTS = Path(__file__).resolve().parent / "results"
PUBLISHED = {"accuracy": 0.9401, "epochs": 9.9, "source": "Jordan 2024, airbench94.py, original CIFAR-10"}


def build(widths: tuple[int, int, int], eps: float = 1e-12):
    import torch
    from torch import nn

    class Conv(nn.Conv2d):
        def __init__(self, c_in, c_out, k=3, padding="same", bias=False):
            super().__init__(c_in, c_out, k, padding=padding, bias=bias)
            nn.init.dirac_(self.weight.data[: self.weight.size(1)])
            if self.bias is not None:
                self.bias.data.zero_()

    def bn(c):
        norm = nn.BatchNorm2d(c, eps=eps, momentum=0.4)
        norm.weight.requires_grad_(False)
        return norm

    class Group(nn.Module):
        def __init__(self, c_in, c_out):
            super().__init__()
            self.conv1, self.pool, self.norm1 = Conv(c_in, c_out), nn.MaxPool2d(2), bn(c_out)
            self.conv2, self.norm2, self.act = Conv(c_out, c_out), bn(c_out), nn.GELU()

        def forward(self, x):
            x = self.act(self.norm1(self.pool(self.conv1(x))))
            return self.act(self.norm2(self.conv2(x)))

    class Scale(nn.Module):
        def forward(self, x):
            return x / 9

    w1, w2, w3 = widths
    net = nn.Sequential(
        Conv(3, 24, 2, padding=0, bias=True),
        nn.GELU(),
        Group(24, w1),
        Group(w1, w2),
        Group(w2, w3),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(w3, 10, bias=False),
        Scale(),
    )
    net[0].weight.requires_grad_(False)
    return net.to(memory_format=torch.channels_last)


def whiten_(conv, images, eps: float = 5e-4) -> None:
    """Set the 2x2 stem to the patches' eigenvectors / sqrt(eigenvalue), and their negatives."""
    import torch

    with torch.no_grad():
        patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).float()
        values, vectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (vectors.T / torch.sqrt(values + eps)[:, None]).flip(0).reshape(12, 3, 2, 2)
        conv.weight.copy_(torch.cat([filters, -filters]))


def run(data: Path, widths, epochs: float, batch_size: int, sizes: list[int], seed: int) -> dict:
    import torch
    import torch.nn.functional as F

    from cnnkit.config import DataConfig
    from cnnkit.data import build_dataset

    torch.manual_seed(seed)
    ds = build_dataset(DataConfig(dataset="folder", path=str(data), image_size=32, val_fraction=0.02), seed=seed)
    mean = torch.tensor((0.4914, 0.4822, 0.4465)).view(1, 3, 1, 1)
    std = torch.tensor((0.2470, 0.2435, 0.2616)).view(1, 3, 1, 1)
    images = (
        (torch.cat([ds.train.images, ds.val.images]).float() / 255) - mean
    ) / std  # all 50,000, as airbench trains
    labels = torch.cat([ds.train.labels, ds.val.labels])
    test, test_labels = ((ds.test.images.float() / 255) - mean) / std, ds.test.labels
    net = build(widths)
    whiten_(net[0], images[:5000])

    n, momentum = len(images), 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr, wd = 11.5 / kilostep, 0.0153 * batch_size / kilostep
    norm_params = [p for k, p in net.named_parameters() if "norm" in k and p.requires_grad]
    other = [p for k, p in net.named_parameters() if "norm" not in k and p.requires_grad]
    opt = torch.optim.SGD(
        [
            {"params": norm_params, "lr": 64 * lr, "weight_decay": wd / (64 * lr)},
            {"params": other, "lr": lr, "weight_decay": wd / lr},
        ],
        momentum=momentum,
        nesterov=True,
    )
    steps_per_epoch = n // batch_size
    total = math.ceil(steps_per_epoch * epochs)
    peak = int(0.23 * total)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.2 + 0.8 * i / max(peak, 1) if i <= peak else 1 + (0.07 - 1) * (i - peak) / (total - peak)
    )
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")
    g = torch.Generator().manual_seed(seed)
    mirrored = torch.where((torch.rand(n, generator=g) < 0.5).view(-1, 1, 1, 1), images.flip(-1), images)
    padded = F.pad(mirrored, (2,) * 4, mode="reflect")

    def shifted(size: int) -> torch.Tensor:
        shifts = torch.randint(0, 5, (n, 2), generator=g)
        out = torch.empty(n, 3, 32, 32)
        for dy in range(5):
            for dx in range(5):
                m = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                out[m] = padded[m, :, dy : dy + 32, dx : dx + 32]
        if size != 32:
            out = F.interpolate(out, size=size, mode="bilinear", antialias=True, align_corners=False)
        return out

    @torch.no_grad()
    def accuracy(tta: bool) -> float:
        net.eval()
        logits = []
        with torch.autocast("cpu", torch.bfloat16):
            for x in test.split(1000):
                x = x.contiguous(memory_format=torch.channels_last)
                both = lambda v: 0.5 * net(v).float() + 0.5 * net(v.flip(-1)).float()  # noqa: E731
                if not tta:
                    logits.append(net(x).float())
                    continue
                p = F.pad(x, (1,) * 4, mode="reflect")
                logits.append(0.5 * both(x) + 0.25 * both(p[:, :, :32, :32]) + 0.25 * both(p[:, :, 2:, 2:]))
        net.train()
        return (torch.cat(logits).argmax(1) == test_labels).float().mean().item()

    ema, step, train_s, per_epoch = None, 0, 0.0, []
    for epoch in range(math.ceil(epochs)):
        size = sizes[min(epoch, len(sizes) - 1)] if sizes else 32
        net[0].bias.requires_grad_(epoch < 3)
        t0 = time.perf_counter()
        x_epoch = shifted(size)
        if epoch % 2 == 1:
            x_epoch = x_epoch.flip(-1)
        x_epoch = x_epoch.contiguous(memory_format=torch.channels_last)
        order = torch.randperm(n, generator=g)
        for i in range(steps_per_epoch):
            idx = order[i * batch_size : (i + 1) * batch_size]
            with torch.autocast("cpu", torch.bfloat16):
                loss = loss_fn(net(x_epoch[idx]).float(), labels[idx]).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if epoch >= 3 and step % 5 == 0:  # lookahead
                if ema is None:
                    ema = [v.clone() for v in net.state_dict().values()]
                else:
                    decay = 0.95**5 * (step / total) ** 3
                    for e, v in zip(ema, net.state_dict().values()):
                        if v.dtype.is_floating_point:
                            e.lerp_(v, 1 - decay)
                            v.copy_(e)
            if step >= total:
                break
        if ema is not None and step >= total:
            for e, v in zip(ema, net.state_dict().values()):
                if v.dtype.is_floating_point:
                    v.copy_(e)
        train_s += time.perf_counter() - t0
        per_epoch.append(
            {
                "epoch": epoch + 1,
                "size": size,
                "seconds": round(time.perf_counter() - t0, 1),
                "test_accuracy": round(accuracy(False), 4),
            }
        )
        print(per_epoch[-1], flush=True)
    return {
        "test_accuracy_tta": accuracy(True),
        "test_accuracy": per_epoch[-1]["test_accuracy"],
        "train_seconds": round(train_s, 1),
        "epochs": epochs,
        "steps": step,
        "per_epoch": per_epoch,
    }


def markdown(r: dict) -> str:
    x = r["result"]
    rows = "\n".join(
        f"| {e['epoch']} | {e['size']} | {e['seconds']} | {100 * e['test_accuracy']:.2f} % |" for e in x["per_epoch"]
    )
    return f"""# airbench94's recipe on the CIFAR-10 JPEG copy (the ceiling bench_cifar.py is read against)

{r["date"]}, {r["machine"]}, torch {r["torch"]}, {r["threads"]} threads; load average before/after: {r["load_before"]} / {r["load_after"]}.

| | test accuracy (TTA) | test accuracy | epochs | training s |
|---|---:|---:|---:|---:|
| this run: widths {r["widths"]}, batch {r["batch_size"]}, sizes {r["sizes"] or [32]} | **{100 * x["test_accuracy_tta"]:.2f} %** | {100 * x["test_accuracy"]:.2f} % | {x["epochs"]} | {x["train_seconds"]} |
| published: {PUBLISHED["source"]} | {100 * PUBLISHED["accuracy"]:.2f} % | | {PUBLISHED["epochs"]} | 3.83 on an A100 |

Per epoch (test accuracy without TTA, not counted in the training time):

| epoch | side px | s | test accuracy |
|---:|---:|---:|---:|
{rows}

Command: `{r["command"]}`
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="an extracted CIFAR-10 JPEG folder (train/, test/)")
    p.add_argument("--widths", default="64,256,256")
    p.add_argument("--epochs", type=float, default=9.9)
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument(
        "--sizes", default="", help="image side per epoch, e.g. 24,24,28,32 (the last repeats); default 32 throughout"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(RESULTS / "bench_cifar_ceiling"))
    args = p.parse_args(argv)
    import torch

    widths = tuple(int(w) for w in args.widths.split(","))
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else []
    r = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "widths": list(widths),
        "batch_size": args.batch_size,
        "sizes": sizes,
        "command": " ".join(
            [".venv/bin/python", "benchmarks/bench_cifar_ceiling.py", *(argv if argv is not None else sys.argv[1:])]
        ),
        "load_before": [round(v, 2) for v in os.getloadavg()],
        "published": PUBLISHED,
    }
    r["result"] = run(Path(args.data), widths, args.epochs, args.batch_size, sizes, args.seed)
    r["load_after"] = [round(v, 2) for v in os.getloadavg()]
    write_results(r, args.out, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
