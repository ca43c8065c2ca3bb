"""The one image loader used by training, evaluation, predict and (later) explain and serve.

Every file goes through `load_image`: EXIF orientation is applied; palette, grayscale,
LA/RGBA (alpha composited on a white background), CMYK, 16-bit and float images are
converted to the requested channels; animated images give their first frame; an image
over Pillow's pixel limit is refused before it is decoded. Failures raise `ImageError`
naming the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from cnnkit.errors import ConfigError, DataError

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
)
ALPHA_BACKGROUND = (255, 255, 255)  # transparent pixels become white


INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}
DEFAULT_INTERPOLATION = "bilinear"  # data.interpolation unset and no pretrained weights naming theirs


def resampling(interpolation: str | None) -> Image.Resampling:
    """PIL's filter for an interpolation name (data.interpolation; torchvision's / timm's names); None: bilinear."""
    name = interpolation or DEFAULT_INTERPOLATION
    if name not in INTERPOLATIONS:
        raise ConfigError(
            f"data.interpolation: {name!r} is not an interpolation; choose one of {', '.join(INTERPOLATIONS)}"
        )
    return INTERPOLATIONS[name]


class ImageError(DataError):
    """An image file that cannot be read; the message names the file."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit integer and float images scaled to 8-bit grayscale by their value range."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16") or img.mode == "I":
        hi = 65535.0 if arr.max(initial=0) > 255 else 255.0
        arr = arr / hi * 255.0
    else:  # "F": floats, assume [0, 1] when they fit, else min-max
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        if lo >= 0.0 and hi <= 1.0:
            arr = arr * 255.0
        elif hi > lo:
            arr = (arr - lo) / (hi - lo) * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), mode="L")


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL image to "L" (channels=1) or "RGB" (channels=3)."""
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        img = _to_8bit(img)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*ALPHA_BACKGROUND, 255))
        img = Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "1":
        img = img.convert("L")
    target = "L" if channels == 1 else "RGB"
    return img if img.mode == target else img.convert(target)


def resize_center_crop(img: Image.Image, size: tuple[int, int], interpolation: str | None = None) -> Image.Image:
    """Scale the shorter side to fit `size` (H, W) with `interpolation` (default bilinear), then crop the centre."""
    h, w = size
    if img.size == (w, h):
        return img
    scale = max(w / img.width, h / img.height)
    new = (max(w, round(img.width * scale)), max(h, round(img.height * scale)))
    img = img.resize(new, resampling(interpolation), reducing_gap=3.0)
    left, top = (new[0] - w) // 2, (new[1] - h) // 2
    return img.crop((left, top, left + w, top + h))


def open_image(path: str | os.PathLike[str]) -> Image.Image:
    """Open and fully decode an image (first frame), refusing decompression bombs."""
    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block open(); a folder or device is no image either
            raise ImageError(
                f"{path}: not a regular file ({_file_kind(st.st_mode)}); give image files or folders of them"
            )
        if st.st_size == 0:
            raise ImageError(f"{path}: empty file (0 bytes)")
        # The pixel limit is checked here, on the header, rather than by turning Pillow's
        # DecompressionBombWarning into an error with warnings.catch_warnings: that changes
        # process-wide state and is not safe with the decoding thread pool (cache.py).
        with Image.open(path) as im:
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and im.width * im.height > limit:
                raise Image.DecompressionBombError(
                    f"{im.width}x{im.height} = {im.width * im.height} pixels exceeds the limit of {limit}"
                )
            im.seek(0)
            im.load()
            img = ImageOps.exif_transpose(im) or im
            if img is im:
                img = im.copy()
        return img
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: refused, image too large ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageError(f"{path}: not a readable image (unknown or unsupported format)") from e
    except FileNotFoundError as e:
        raise ImageError(f"{path}: file not found") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ImageError(f"{path}: corrupt or truncated image ({e})") from e


def _file_kind(mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def load_image(
    path: str | os.PathLike[str], channels: int, size: tuple[int, int] | None = None, interpolation: str | None = None
) -> np.ndarray:
    """Read a file into a uint8 array (C, H, W), converted to `channels` and resized to `size`
    (with `interpolation`: see `resampling`)."""
    return pil_to_array(open_image(path), channels, size, interpolation)


def pil_to_array(
    img: Image.Image, channels: int, size: tuple[int, int] | None = None, interpolation: str | None = None
) -> np.ndarray:
    img = to_mode(img, channels)
    if size is not None:
        img = resize_center_crop(img, size, interpolation)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None].copy() if arr.ndim == 2 else arr.transpose(2, 0, 1).copy()  # writable, own memory


PathT = TypeVar("PathT", bound=str | os.PathLike[str])


def read_batches(
    files: Sequence[PathT],
    channels: int,
    size: tuple[int, int],
    batch_size: int,
    errors: list[tuple[str, str]],
    interpolation: str | None = None,
) -> Iterator[tuple[list[PathT], torch.Tensor]]:
    """The readable files in batches of up to `batch_size`, each as (files, uint8 tensor B x C x H x W).

    An unreadable file goes to `errors` as (path, why) and is left out; a batch with no readable
    file is skipped. Used by predict, explain and attack alike."""
    for start in range(0, len(files), batch_size):
        ok: list[PathT] = []
        arrays = []
        for f in files[start : start + batch_size]:
            try:
                arrays.append(load_image(f, channels, size, interpolation))
                ok.append(f)
            except DataError as e:  # ImageError included
                errors.append((str(f), str(e).removeprefix(f"{f}: ")))
        if arrays:
            yield ok, torch.from_numpy(np.stack(arrays))
