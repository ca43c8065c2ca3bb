"""Request limits applied before any endpoint runs: the body size (413 before it is read whole)."""

from __future__ import annotations

import json


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes the limit (a body sent without Content-Length)."""


async def send_json(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = json.dumps(body).encode()
    hdrs = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"connection", b"close"),
    ] + (headers or [])
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Pure ASGI middleware. A Content-Length over the limit is answered 413 without reading the body;
    a streamed body is counted as it arrives and refused (BodyTooLarge -> 413) once it passes the limit."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def message(self, size: str) -> dict:
        mb = self.max_bytes / 1024 / 1024
        return {
            "detail": f"request body {size} exceeds the limit of {mb:g} MB (--max-upload-mb); send smaller or fewer images",
            "field": "body",
        }

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    return await send_json(
                        send, 400, {"detail": "invalid Content-Length header", "field": "Content-Length"}
                    )
                if length > self.max_bytes:
                    return await send_json(send, 413, self.message(f"of {length} bytes"))
        received = 0

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.message(f"of more than {self.max_bytes} bytes")["detail"])
            return message

        await self.app(scope, counted, send)
