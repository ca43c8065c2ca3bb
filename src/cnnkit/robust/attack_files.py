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
    from cnnkit.inference import expand_paths
    from cnnkit.io_safety import staged_folder

    paths = list(paths)
    clf = _attackable_model(checkpoint, spec, target, device)
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
    how = _describe(spec, target)
    y_target = clf.class_names.index(target) if target is not None else None
    with staged_folder(out_dir, hint="or write elsewhere with --out DIR") as stage:
        (stage / "adversarial").mkdir()
        for bi, (ok, x_u8) in enumerate(
            read_batches(files, clf.channels, clf.size, batch_size, result.errors, clf.interpolation)
        ):
            batch = _attack_batch(forward, x_u8.to(clf.device), spec, y_target, seed=spec.seed + bi * batch_size)
            for i, f in enumerate(ok):
                item = _attacked(f, i, batch, clf.class_names, out_dir, stems[f])
                pictures = _save_item(stage, item, i, batch, f, stems[f], how)
                result.items.append(item)
                if len(sheet) < sheet_limit:
                    sheet.append((*pictures, f"{stems[f][:18]}\n{item.before}→{item.after}"))
        _save_summary(stage, result, sheet, how, sheet_limit)
    return result


def _attackable_model(checkpoint: str | os.PathLike, spec: AttackSpec, target: str | None, device: str):
    """The checkpoint as a Classifier, after checking --targeted / --target and that it is single-label."""
    from cnnkit.inference import load

    if spec.targeted and target is None:
        raise ConfigError("--targeted needs --target CLASS (the class the images should be taken for)")
    if target is not None and not spec.targeted:
        raise ConfigError("--target is for targeted attacks: add --targeted")
    clf = load(checkpoint, device=device)
    if clf.multi_label:
        raise ConfigError(f"{checkpoint}: attacks are for single-label models (this one is multi-label)")
    if target is not None and target not in clf.class_names:
        raise ConfigError(f"--target {target!r} is not one of the model's classes: {', '.join(clf.class_names)}")
    return clf


def _describe(spec: AttackSpec, target: str | None) -> str:
    """The attack in one line, for the panels' and the sheet's titles: "PGD-10 LINF eps 0.03137 (8.0/255)"."""
    how = f"{spec.method.upper()}{'-' + str(spec.steps) if spec.method == 'pgd' else ''} {spec.norm.upper()} eps {spec.eps:.4g} ({spec.eps * 255:.1f}/255)"
    if spec.targeted:
        how += f", targeted at {target}"
    return how


@dataclass
class _Batch:
    """One batch attacked: the images (0-1), the adversarial ones (uint8 as saved, and 0-1) and the
    softmax before and after."""

    x01: torch.Tensor
    adv_u8: torch.Tensor
    adv01: torch.Tensor
    p0: torch.Tensor
    p1: torch.Tensor


def _attack_batch(forward, x_u8: torch.Tensor, spec: AttackSpec, y_target: int | None, seed: int) -> _Batch:
    """Attack a uint8 batch away from its predictions (toward class `y_target` when given); the
    result rounded to whole 0-255 levels, as a PNG holds it."""
    x01 = x_u8.float() / 255.0
    with torch.no_grad():
        p0 = torch.softmax(forward(x01), 1)
    y = torch.full((len(x_u8),), y_target, device=x_u8.device) if y_target is not None else p0.argmax(1)
    r = run_attack(forward, x01, y, dataclasses.replace(spec, seed=seed))
    adv_u8 = quantize(x_u8, r.x_adv, spec.eps, spec.norm)
    adv01 = adv_u8.float() / 255.0
    with torch.no_grad():
        p1 = torch.softmax(forward(adv01), 1)
    return _Batch(x01, adv_u8, adv01, p0, p1)


def _attacked(f: Path, i: int, b: _Batch, names: list[str], out_dir: Path, stem: str) -> Attacked:
    """Image `i` of the batch: its predictions before and after and the size of the change."""
    before, after = int(b.p0[i].argmax()), int(b.p1[i].argmax())
    delta = (b.adv01[i] - b.x01[i]).flatten()
    return Attacked(
        str(f),
        f.parent.name if f.parent.name in names else None,
        names[before],
        float(b.p0[i, before]),
        names[after],
        float(b.p1[i, after]),
        float(delta.abs().max()),
        float(delta.norm()),
        out_dir / f"{stem}.png",
        out_dir / "adversarial" / f"{stem}.png",
    )


def _save_item(
    stage: Path, item: Attacked, i: int, b: _Batch, f: Path, stem: str, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """adversarial/<stem>.png and the panel <stem>.png; returns the image and its adversarial version (0-1)."""
    from cnnkit.robust.render import save_attack_panel

    _save_png(b.adv_u8[i].cpu().numpy(), stage / "adversarial" / f"{stem}.png")
    x_np, adv_np = b.x01[i].cpu().numpy(), b.adv01[i].cpu().numpy()
    save_attack_panel(
        x_np, adv_np, stage / f"{stem}.png",
        titles=(f"original: {item.before} ({item.p_before:.1%})", f"adversarial: {item.after} ({item.p_after:.1%})"),
        suptitle=f"{f.name}: {how}" + (f"; true class {item.true}" if item.true else ""),
    )  # fmt: skip
    return x_np, adv_np


def _save_summary(
    stage: Path, result: AttackFilesResult, sheet: list[tuple[np.ndarray, np.ndarray, str]], how: str, limit: int
) -> None:
    """The contact sheet (several images) and attack.csv (any)."""
    from cnnkit.robust.render import save_attack_sheet

    assert result.out_dir is not None
    n = len(result.items)
    if n > 1:
        shown = f" (first {limit} of {n})" if n > limit else ""
        fooled = sum(it.fooled for it in result.items)
        save_attack_sheet(sheet, stage / "contact_sheet.png", title=f"{how}: {fooled}/{n} predictions changed{shown}")
        result.contact_sheet = result.out_dir / "contact_sheet.png"
    if result.items:
        (stage / "attack.csv").write_text(_csv(result.items))
        result.csv = result.out_dir / "attack.csv"


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
