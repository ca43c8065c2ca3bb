"""Uploaded bytes to a PIL image, in memory (nothing touches the disk), with cnnkit's loader rules:
the pixel limit checked on the header before decoding (decompression bombs), the first frame,
EXIF orientation. Failures are `UploadError`s with an HTTP status and the field they concern."""

from __future__ import annotations

import io

from PIL import Image, ImageOps, UnidentifiedImageError


class UploadError(Exception):
    """A request the service refuses: HTTP `status`, a message, and the field it concerns."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def pixels(data: bytes) -> int:
    """Width x height from the image's header alone (nothing decoded); 0 when the header is unreadable
    (decode_image then says why)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.width * im.height
    except Exception:  # noqa: BLE001 - any failure is reported by decode_image
        return 0


def decode_image(data: bytes, field: str) -> Image.Image:
    """Decode one uploaded image. 415: not an image; 422: empty, corrupt, truncated or too many pixels."""
    if not data:
        raise UploadError(422, f"{field}: empty file (0 bytes)", field)
    try:
        with Image.open(io.BytesIO(data)) as im:
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and im.width * im.height > limit:
                raise UploadError(
                    422,
                    f"{field}: refused, image too large ({im.width}x{im.height} = {im.width * im.height} pixels exceeds the limit of {limit})",
                    field,
                )
            im.seek(0)
            im.load()
            img = ImageOps.exif_transpose(im) or im
            return im.copy() if img is im else img
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise UploadError(422, f"{field}: refused, image too large ({e})", field) from e
    except UnidentifiedImageError as e:
        raise UploadError(
            415,
            f"{field}: not a readable image (unknown or unsupported format); send PNG, JPEG, WebP, BMP, GIF or TIFF",
            field,
        ) from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise UploadError(422, f"{field}: corrupt or truncated image ({e})", field) from e
