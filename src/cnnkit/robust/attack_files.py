"""`attack_files(checkpoint, paths, spec)`: adversarial versions of image files, as PNGs a user can re-predict.

Per image: `<name>.png` (original | amplified perturbation | adversarial, each titled with the
predicted class and probability) and `adversarial/<name>.png`, the adversarial image itself,
lossless at the model's input size, so `cnnkit predict` on it gives the same answer as shown.
The perturbation is rounded to whole 0-255 levels inside the eps-ball (what a PNG can hold),
and the "after" prediction is the one of that rounded image. Several images also give
`contact_sheet.png`; every run writes `attack.csv` (file, true class if the folder names it,
prediction before / after, L∞ and L2 size of the change in 0-1 pixel units).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cnnkit.errors import ConfigError, DataError
from cnnkit.robust.attacks import AttackSpec, pixel_forward, run_attack


@dataclass
class Attacked:
    source: str
    true: str | None
    before: str
    p_before: float
    after: str
    p_after: float
    linf: float
    l2: float
    panel: Path
    image: Path

    @property
    def fooled(self) -> bool:
        return self.after != self.before


@dataclass
class AttackFilesResult:
    items: list[Attacked] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    out_dir: Path | None = None
    contact_sheet: Path | None = None
    csv: Path | None = None


def quantize(x_u8: torch.Tensor, adv01: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    """The adversarial image as uint8, its change rounded to whole levels and kept inside the eps-ball."""
    delta = adv01 * 255.0 - x_u8.float()
    if norm == "linf":
        limit = float(np.floor(eps * 255 + 1e-6))
        d = delta.round().clamp(-limit, limit)
    else:
        d = delta.trunc()  # toward zero: the L2 size can only shrink
    return (x_u8.float() + d).clamp(0, 255).to(torch.uint8)


def _names(files: list[Path]) -> list[str]:
    from cnnkit.explain.api import _unique_names

    return _unique_names(files)


def attack_files(
    checkpoint: str | os.PathLike,
    paths: Iterable[str | os.PathLike],
    spec: AttackSpec,
    *,
    target: str | None = None,
    out: str | os.PathLike | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    sheet_limit: int = 60,
) -> AttackFilesResult:
    """Attack every image (folders expanded); see the module docstring for what is written.
    Untargeted attacks push each image away from the model's own prediction; targeted ones
    (`spec.targeted`, `target` a class name) toward `target`."""
    from cnnkit.checkpoint import resolve_checkpoint
    from cnnkit.data.images import read_batches
    from cnnkit.inference import expand_paths, load
    from cnnkit.io_safety import staged_folder
    from cnnkit.robust.render import save_attack_panel, save_attack_sheet

    paths = list(paths)
    if spec.targeted and target is None:
        raise ConfigError("--targeted needs --target CLASS (the class the images should be taken for)")
    if target is not None and not spec.targeted:
        raise ConfigError("--target is for targeted attacks: add --targeted")
    clf = load(checkpoint, device=device)
    if clf.multi_label:
        raise ConfigError(f"{checkpoint}: attacks are for single-label models (this one is multi-label)")
    names = clf.class_names
    if target is not None and target not in names:
        raise ConfigError(f"--target {target!r} is not one of the model's classes: {', '.join(names)}")
    files = expand_paths(paths)
    if not files:
        raise DataError(f"no image files found in {', '.join(map(str, paths))}")
    if spec.norm == "linf" and spec.eps < 1 / 255:
        raise ConfigError(
            f"--eps {spec.eps:.4g}: below one 0-255 level (1/255), so nothing would change in a PNG; use at least 1/255"
        )
    out_dir = (
        Path(out)
        if out is not None
        else resolve_checkpoint(checkpoint).parent / "attack" / f"{spec.method}-{spec.norm}"
    )
    result = AttackFilesResult(out_dir=out_dir)
    forward = pixel_forward(clf.model, clf.normalize)
    stems = dict(zip(files, _names(files)))
    sheet: list[tuple[np.ndarray, np.ndarray, str]] = []
    rows = []
    how = f"{spec.method.upper()}{'-' + str(spec.steps) if spec.method == 'pgd' else ''} {spec.norm.upper()} eps {spec.eps:.4g} ({spec.eps * 255:.1f}/255)"
    if spec.targeted:
        how += f", targeted at {target}"
    with staged_folder(out_dir, hint="or write elsewhere with --out DIR") as stage:
        (stage / "adversarial").mkdir()
        for bi, (ok, x_u8) in enumerate(
            read_batches(files, clf.channels, clf.size, batch_size, result.errors, clf.interpolation)
        ):
            x_u8 = x_u8.to(clf.device)
            x01 = x_u8.float() / 255.0
            with torch.no_grad():
                p0 = torch.softmax(forward(x01), 1)
            y = torch.full((len(ok),), names.index(target), device=clf.device) if target is not None else p0.argmax(1)
            r = run_attack(forward, x01, y, dataclasses.replace(spec, seed=spec.seed + bi * batch_size))
            adv_u8 = quantize(x_u8, r.x_adv, spec.eps, spec.norm)
            adv01 = adv_u8.float() / 255.0
            with torch.no_grad():
                p1 = torch.softmax(forward(adv01), 1)
            for i, f in enumerate(ok):
                a, b = int(p0[i].argmax()), int(p1[i].argmax())
                stem = stems[f]
                true = f.parent.name if f.parent.name in names else None
                delta = (adv01[i] - x01[i]).flatten()
                item = Attacked(
                    str(f),
                    true,
                    names[a],
                    float(p0[i, a]),
                    names[b],
                    float(p1[i, b]),
                    float(delta.abs().max()),
                    float(delta.norm()),
                    out_dir / f"{stem}.png",
                    out_dir / "adversarial" / f"{stem}.png",
                )
                _save_png(adv_u8[i].cpu().numpy(), stage / "adversarial" / f"{stem}.png")
                x_np, adv_np = x01[i].cpu().numpy(), adv01[i].cpu().numpy()
                save_attack_panel(
                    x_np, adv_np, stage / f"{stem}.png",
                    titles=(f"original: {item.before} ({item.p_before:.1%})", f"adversarial: {item.after} ({item.p_after:.1%})"),
                    suptitle=f"{f.name}: {how}" + (f"; true class {true}" if true else ""),
                )  # fmt: skip
                result.items.append(item)
                rows.append(item)
                if len(sheet) < sheet_limit:
                    sheet.append((x_np, adv_np, f"{stem[:18]}\n{item.before}→{item.after}"))
        if len(result.items) > 1:
            shown = f" (first {sheet_limit} of {len(result.items)})" if len(result.items) > sheet_limit else ""
            fooled = sum(it.fooled for it in result.items)
            save_attack_sheet(
                sheet,
                stage / "contact_sheet.png",
                title=f"{how}: {fooled}/{len(result.items)} predictions changed{shown}",
            )
            result.contact_sheet = out_dir / "contact_sheet.png"
        if rows:
            (stage / "attack.csv").write_text(_csv(rows))
            result.csv = out_dir / "attack.csv"
    return result


def _save_png(chw_u8: np.ndarray, path: Path) -> None:
    from PIL import Image

    img = Image.fromarray(chw_u8[0]) if chw_u8.shape[0] == 1 else Image.fromarray(chw_u8.transpose(1, 2, 0))
    img.save(path, format="PNG")


def _csv(rows: list[Attacked]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["file", "true", "pred_before", "p_before", "pred_after", "p_after", "fooled", "linf", "linf_255", "l2"])
    for r in rows:
        w.writerow(
            [
                r.source,
                r.true or "",
                r.before,
                f"{r.p_before:.4f}",
                r.after,
                f"{r.p_after:.4f}",
                int(r.fooled),
                f"{r.linf:.6f}",
                f"{r.linf * 255:.2f}",
                f"{r.l2:.6f}",
            ]
        )
    return buf.getvalue()
