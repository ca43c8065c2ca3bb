"""`cnnkit predict RUN IMAGE...` for a segmentation checkpoint: for each image, its mask as a palette
PNG of class indices (`<stem>_mask.png`, opens as colours, reads back as indices) and a colour
overlay (`<stem>_overlay.png`), into --save-images DIR (default: the current folder); prints each
image's share of pixels per class. Images are segmented at their own size (the network is fully
convolutional), or at the training size when the run resized its images (data.image_size), the mask
then resized back by nearest neighbour. With --tile SIZE, or automatically for a run that kept its
images' size when an image is more than twice the training side, images are segmented at their own
resolution in overlapping tiles blended with a window (tiling.py; --overlap PX, default a quarter of the tile); --tta flip averages each image with its
mirror image."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from cnnkit.checkpoint import load_checkpoint, model_from_checkpoint
from cnnkit.data.images import ImageError, load_image
from cnnkit.inference import expand_paths
from cnnkit.tasks.segment.outputs import overlay, save_png
from cnnkit.tasks.segment.tiling import probabilities, tiled_mask


def is_segment_checkpoint(path: str | Path) -> bool:
    """Whether `path` (a checkpoint or a run folder) holds a segmentation model; False for anything unreadable."""
    p = Path(path)
    if p.suffix == ".onnx":
        return False
    try:
        return load_checkpoint(p).get("task") == "segment"
    except Exception:  # the classification path reports what is wrong with the file
        return False


@dataclass
class MaskPrediction:
    source: str
    mask_file: str
    overlay_file: str
    fractions: dict[str, float]  # share of the image's pixels per class


class Segmenter:
    """A segmentation checkpoint ready to run: `segment(image uint8 (C, H, W)) -> (H, W) class indices`."""

    def __init__(
        self,
        checkpoint: str | Path,
        device: str = "cpu",
        *,
        tile: int | None = None,
        overlap: int | None = None,
        tta: str = "none",
    ):
        self.ckpt = load_checkpoint(checkpoint)
        self.device = torch.device(device)
        self.model = model_from_checkpoint(self.ckpt).to(self.device).eval()
        inp = self.ckpt["input"]
        self.channels = int(inp["channels"])
        self.mean = torch.tensor(inp["mean"], device=self.device).view(-1, 1, 1)
        self.std = torch.tensor(inp["std"], device=self.device).view(-1, 1, 1)
        resized = (self.ckpt.get("config") or {}).get("data", {}).get("image_size")
        self.size = tuple(inp["size"]) if resized else None
        self.class_names: list[str] = list(self.ckpt["class_names"])
        self.tta = tta
        self.trained_side = max(int(v) for v in inp["size"])
        self.tile, self.overlap = tile, overlap

    def tiling(self, h: int, w: int) -> tuple[int, int] | None:
        """(tile, overlap) for an image of h x w: --tile (at the image's own resolution, whatever the run's resize),
        or automatically beyond twice the training side for runs that kept their images' size."""
        tile = self.tile
        if tile is None and self.size is None and max(h, w) > 2 * self.trained_side:
            tile = self.trained_side
        if tile is None:
            return None
        return tile, self.overlap if self.overlap is not None else tile // 4

    def probs(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 (1, C, h, w) -> class probabilities (1, K, h, w), with the checkpoint's normalisation and --tta."""
        x = (x.to(self.device).float().div_(255) - self.mean) / self.std
        return probabilities(self.model, x, self.tta)

    @torch.no_grad()
    def segment(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[-2:]
        tiles = self.tiling(h, w)
        if tiles is not None:
            return tiled_mask(self.probs, torch.from_numpy(image), *tiles)
        x = torch.from_numpy(image).to(self.device).float().div_(255)
        x = ((x - self.mean) / self.std).unsqueeze(0)
        if self.size is not None:
            x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        pred = probabilities(self.model, x, self.tta).argmax(1, keepdim=True).float()
        if pred.shape[-2:] != (h, w):
            pred = torch.nn.functional.interpolate(pred, size=(h, w), mode="nearest")
        out: np.ndarray = pred[0, 0].to(torch.uint8).cpu().numpy()
        return out

    def predict_files(
        self, paths: Iterable[str | Path], out_dir: Path
    ) -> tuple[list[MaskPrediction], list[tuple[str, str]]]:
        """Masks and overlays of every image under `paths` written into `out_dir`; (results, (file, error)s)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        done, errors = [], []
        for path in expand_paths(paths):
            try:
                image = load_image(path, self.channels)
            except ImageError as e:
                errors.append((str(path), str(e)))
                continue
            mask = self.segment(image)
            mask_file, overlay_file = out_dir / f"{path.stem}_mask.png", out_dir / f"{path.stem}_overlay.png"
            save_png(mask, mask_file, palette_mask=True)
            save_png(overlay(image, mask), overlay_file)
            counts = np.bincount(mask.ravel(), minlength=len(self.class_names))
            fractions = {n: round(float(c) / mask.size, 6) for n, c in zip(self.class_names, counts)}
            done.append(MaskPrediction(str(path), str(mask_file), str(overlay_file), fractions))
        return done, errors


def predict_command(args: argparse.Namespace) -> int:
    """The `predict` verb's body for a segmentation checkpoint (cli.cmd_predict hands over to it)."""
    import sys

    seg = Segmenter(
        args.checkpoint,
        device=args.device,
        tile=getattr(args, "tile", None),
        overlap=getattr(args, "overlap", None),
        tta=getattr(args, "tta", "none"),
    )
    out_dir = Path(args.save_images) if args.save_images else Path.cwd()
    done, errors = seg.predict_files(args.paths, out_dir)
    if args.format == "json":
        text = json.dumps([vars(d) for d in done], indent=2)
    else:
        lines = [f"{'image':<40} mask / overlay   class share of pixels"]
        lines += [
            f"{d.source:<40} {Path(d.mask_file).name}, {Path(d.overlay_file).name}   "
            + ", ".join(f"{n} {v:.1%}" for n, v in d.fractions.items())
            for d in done
        ]
        text = "\n".join(lines)
    if done:
        print(text)
        if args.out:
            from cnnkit.rundir import atomic_write_text

            atomic_write_text(args.out, text + "\n")
    for source, error in errors:
        print(f"cnnkit predict: could not read {source}: {error}", file=sys.stderr)
    if not done and not errors:
        print("cnnkit predict: no image files found in the given paths", file=sys.stderr)
    return 0 if done else 1
