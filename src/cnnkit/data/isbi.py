"""isbi2012-membrane: the ISBI 2012 EM segmentation challenge's 25 training slices, the data of the
U-Net paper (Ronneberger et al. 2015), read from `<data root>/isbi2012-membrane/{image,label}/N.png`
(never downloaded). 512x512 grayscale; label 255 = cell interior, 0 = membrane (~22 % of pixels),
so the classes are 0 membrane, 1 cell. Slices 0-19 train, 20-24 validation (the issue's split; no
test split, so the final number is the validation one that also chose the epoch).

Data: A. Cardona et al. 2010; challenge: I. Arganda-Carreras et al. 2015 (cite both)."""

from __future__ import annotations

from cnnkit.config import DataConfig
from cnnkit.data._registry import register_dataset
from cnnkit.data.paths import data_root
from cnnkit.data.segment_folder import build_pairs
from cnnkit.data.types import Dataset, SkippedFile
from cnnkit.errors import DataError

NAME = "isbi2012-membrane"
CLASSES = ["membrane", "cell"]
SLICES, TRAIN = 25, 20


def _status(root: str | None) -> tuple[str, str]:
    folder = data_root(root) / NAME
    found = sum((folder / "image" / f"{i}.png").is_file() for i in range(SLICES))
    return str(folder), "present" if found == SLICES else f"missing ({found}/{SLICES} slices)"


@register_dataset(
    NAME,
    description="EM membrane segmentation (ISBI 2012, the U-Net paper's data): image / mask pairs",
    num_classes=2,
    size="20 train / 5 val, 1x512x512, masks",
    location=f"<data root>/{NAME}/image, label (not downloaded)",
    status=_status,
)
def build_isbi(cfg: DataConfig, seed: int) -> Dataset:
    folder = data_root(cfg.root) / NAME
    pairs = [(folder / "image" / f"{i}.png", folder / "label" / f"{i}.png") for i in range(SLICES)]
    missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
    if missing:
        raise DataError(
            f"{NAME}: {len(missing)} file(s) missing, e.g. {missing[0]}; put the 25 image/label pairs under "
            f"{folder} or point --data-root at the folder holding {NAME}/ (it is never downloaded)"
        )
    skipped: list[SkippedFile] = []
    return build_pairs(
        NAME, {"train": pairs[:TRAIN], "val": pairs[TRAIN:]}, cfg, seed, str(folder), skipped, list(CLASSES)
    )
