"""Reading a request's images: multipart uploads, JSON with base64, or one image as the raw body
(`Content-Type: image/*`, the cheapest to parse), all in memory."""

from __future__ import annotations

import base64
import binascii
import json
import sys

from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from cnnkit._text import printable
from cnnkit.serve.decode import UploadError


class _InMemoryParser(MultiPartParser):
    """Starlette's parser spools a file part over 1 MB to a temporary file; the body limit already
    bounds the memory, so parts stay in memory: nothing from a request is written to disk."""

    spool_max_size = sys.maxsize


def parse_top_k(value, field: str = "top_k") -> int:
    try:
        k = int(value)
        if isinstance(value, bool) or str(k) != str(value).strip():
            raise ValueError
    except (TypeError, ValueError):
        raise UploadError(422, f"{field} must be a whole number, got {value!r}", field) from None
    if k < 1:
        raise UploadError(422, f"{field} must be at least 1, got {k}", field)
    return k


async def read_images(request: Request, max_images: int) -> tuple[list[tuple[str, str, bytes]], dict[str, str]]:
    """[(field, source name, bytes)] and the other (text) fields, from a multipart, a JSON or a raw image body.
    415 for another content type; 422 for a malformed body or no image; 413 for too many images."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype.startswith("image/"):
        return await _read_raw(request)
    if ctype == "multipart/form-data":
        return await _read_multipart(request, max_images)
    if ctype == "application/json":
        return await _read_json(request, max_images)
    raise UploadError(
        415,
        f"Content-Type {ctype or '(none)'} is not accepted; send multipart/form-data (image files), application/json (base64 images) or image/* (one image as the body)",
        "Content-Type",
    )


async def _read_multipart(request: Request, max_images: int):
    parser = _InMemoryParser(
        request.headers, request.stream(), max_files=max_images, max_fields=32, max_part_size=64 * 1024
    )
    try:
        form = await parser.parse()
    except MultiPartException as e:
        msg = str(e)
        status = 413 if "Too many files" in msg else 422
        raise UploadError(
            status,
            f"multipart body: {msg}" + (f" (at most {max_images} images per request)" if status == 413 else ""),
            "body",
        ) from None
    images: list[tuple[str, str, bytes]] = []
    fields: dict[str, str] = {}
    try:
        for i, (name, value) in enumerate(form.multi_items()):
            if isinstance(value, str):
                fields[name] = value
                continue
            value.file.seek(0)
            data = value.file.read()
            source = printable(value.filename or f"{name}[{i}]")
            images.append((f"{name}[{len(images)}] ({source})", source, data))
    finally:
        await form.close()
    if not images:
        raise UploadError(422, "no image in the request: send one or more files (multipart field 'files')", "files")
    return images, fields


async def _read_raw(request: Request):
    """One image as the whole body; its name from the `X-Filename` header (default "body")."""
    source = printable(request.headers.get("x-filename") or "body")
    return [(f"body ({source})", source, await request.body())], {}


def _b64(text, field: str) -> bytes:
    if not isinstance(text, str):
        raise UploadError(422, f"{field} must be a base64 string", field)
    if text.startswith("data:") and "," in text:  # a data URL
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(422, f"{field} is not valid base64", field) from None


async def _read_json(request: Request, max_images: int):
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as e:
        raise UploadError(422, f"body is not valid JSON ({e})", "body") from None
    if not isinstance(body, dict):
        raise UploadError(
            422, 'body must be a JSON object: {"images": [{"name": ..., "data": BASE64}], "top_k": 5}', "body"
        )
    raw = body.get("images", [body["image"]] if "image" in body else None)
    if not isinstance(raw, list) or not raw:
        raise UploadError(
            422,
            'no image in the request: give "images" (a list of base64 strings or {"name", "data"} objects) or "image"',
            "images",
        )
    if len(raw) > max_images:
        raise UploadError(413, f"{len(raw)} images in one request; at most {max_images}", "images")
    images = []
    for i, item in enumerate(raw):
        field = f"images[{i}]"
        name = f"image{i}"
        if isinstance(item, dict):
            name = printable(str(item.get("name") or name))
            item = item.get("data")
            field += ".data"
        images.append((field, name, _b64(item, field)))
    fields = {k: v for k, v in body.items() if k not in ("images", "image")}
    return images, fields
