"""The region proposal network made visible (issue 17's `cnnkit anchors`), as PNGs over one image:
- anchors_location.png: the anchors of the feature-map location nearest the image centre (every size
  x aspect ratio), the boxes the RPN scores and refines at that one place;
- anchors_density.png: how many of all the anchors cover each pixel (the grid's stride shows);
- proposals.png: the RPN's top proposals after its NMS, labelled with their objectness;
- detections.png: the final detections after the RoI heads and their per-class NMS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from cnnkit.tasks.detect.predict import Detection, Detector, draw


@torch.no_grad()
def rpn_outputs(model: Any, image: np.ndarray, top: int = 10) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """(all anchors (A, 4), top proposals (k, 4), their objectness (k,), anchors per location), in the
    image's pixels (the detector's transform resizes; boxes are scaled back)."""
    model.eval()
    x = torch.from_numpy(image).float().div_(255)
    images, _ = model.transform([x])
    features = model.backbone(images.tensors)
    features = features if isinstance(features, dict) else {"0": features}
    maps = list(features.values())
    rpn = model.rpn
    objectness, deltas = rpn.head(maps)
    anchors = rpn.anchor_generator(images, maps)
    per_level = [o[0].numel() for o in objectness]
    from torchvision.models.detection.rpn import concat_box_prediction_layers

    obj, reg = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(reg.detach(), anchors).view(1, -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, obj, images.image_sizes, per_level)
    scale = torch.tensor([image.shape[2] / images.image_sizes[0][1], image.shape[1] / images.image_sizes[0][0]] * 2)
    return (
        anchors[0] * scale,
        boxes[0][:top] * scale,
        scores[0][:top],
        rpn.anchor_generator.num_anchors_per_location()[0],
    )


def density(anchors: torch.Tensor, height: int, width: int) -> np.ndarray:
    """(H, W) int: how many anchors (clipped to the image) cover each pixel."""
    out = np.zeros((height + 1, width + 1), dtype=np.int64)
    for x1, y1, x2, y2 in anchors.round().long().tolist():  # 2-D difference array, then cumulative sums
        x1, y1, x2, y2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if x2 > x1 and y2 > y1:
            out[y1, x1] += 1
            out[y1, x2] -= 1
            out[y2, x1] -= 1
            out[y2, x2] += 1
    return out.cumsum(0).cumsum(1)[:height, :width]


def anchor_pictures(checkpoint: str | Path, image_path: str | Path, out_dir: str | Path, top: int = 10) -> list[Path]:
    """Write the four PNGs for `image_path` into `out_dir`; returns their paths."""
    from cnnkit.data.detection import png_bytes
    from cnnkit.data.images import load_image
    from cnnkit.io_safety import write_file

    det = Detector(checkpoint, threshold=0.5)
    if not hasattr(det.model, "rpn"):  # fcos_tiny: one point per location, no region proposals
        from cnnkit.errors import ConfigError

        raise ConfigError(
            f"{checkpoint}: a {det.ckpt['model']['name']} model has no region proposal network; "
            "cnnkit anchors shows a Faster R-CNN run's anchors and proposals"
        )
    image = load_image(image_path, det.channels)
    h, w = image.shape[1:]
    anchors, proposals, scores, per_location = rpn_outputs(det.model, image, top)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    # anchors come location by location, per_location each: the location nearest the centre
    loc = int(((centres[::per_location] - torch.tensor([w / 2, h / 2])) ** 2).sum(1).argmin())
    mine = anchors[loc * per_location : (loc + 1) * per_location]
    pictures = {
        "anchors_location.png": draw(
            image, [Detection(f"{b[2] - b[0]:.0f}x{b[3] - b[1]:.0f}", 1.0, b.tolist()) for b in mine], scores=False
        ),
        "proposals.png": draw(
            image, [Detection("obj", float(s), b.tolist()) for b, s in zip(proposals, scores, strict=True)]
        ),
        "detections.png": draw(image, det.detect(image)),
    }
    dens = density(anchors, h, w).astype(np.float64)
    gray = (255 * dens / max(dens.max(), 1)).astype(np.uint8)[None]
    pictures["anchors_density.png"] = draw(gray, [])
    out = Path(out_dir)
    written = []
    for name, rgb in pictures.items():
        written.append(write_file(out / name, png_bytes(rgb)))
    return written
