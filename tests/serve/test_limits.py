"""Every limit and bad input: 413 before the body is read, 415/422 naming the field, decompression
bombs, 503 + Retry-After on a full queue (health still answering), 504, 401, nothing on disk."""

from __future__ import annotations

import asyncio
import io
import tempfile
import threading

import httpx
import pytest
from PIL import Image
from tests.serve.conftest import client_of, png_bytes, run

from cnnkit.serve.limits import BodyLimit
from cnnkit.serve.model import ServedModel


def test_content_length_over_the_limit_is_413_without_reading_the_body():
    reads = []
    sent = []

    async def app(scope, receive, send):  # the endpoint: must never run
        raise AssertionError("reached the app")

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * 1024, "more_body": True}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/predict",
        "headers": [(b"content-length", str(50 * 1024 * 1024).encode())],
    }
    run(BodyLimit(app, 1024 * 1024)(scope, receive, send))
    assert reads == [] and sent[0]["status"] == 413
    assert b"exceeds the limit of 1 MB (--max-upload-mb)" in sent[1]["body"]


def test_upload_over_the_limit_is_413(make_app):
    big = png_bytes(0, size=900, mode="RGB")  # ~2.4 MB of noise
    assert len(big) > 2 * 1024 * 1024

    form = httpx.Request("POST", "http://x/", files=[("files", ("big.png", big, "image/png"))])
    body = form.read()

    async def chunks():  # no Content-Length: counted as it streams, refused once past the limit
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    async def go():
        async with client_of(make_app(max_upload_mb=1)) as c:
            a = await c.post("/v1/predict", files=[("files", ("big.png", big, "image/png"))])
            b = await c.post("/v1/predict", content=chunks(), headers={"content-type": form.headers["content-type"]})
            small = await c.post("/v1/predict", files=[("files", ("s.png", png_bytes(1), "image/png"))])
            return a, b, small

    a, b, small = run(go())
    assert a.status_code == 413 and a.json()["field"] == "body" and "--max-upload-mb" in a.json()["detail"]
    assert b.status_code == 413 and "more than 1048576 bytes" in b.json()["detail"]
    assert small.status_code == 200


def test_non_image_corrupt_and_bomb_name_the_field(make_app, monkeypatch):
    bomb = io.BytesIO()
    Image.new("L", (400, 400)).save(bomb, "PNG")  # 160000 pixels, tiny file

    async def go():
        async with client_of(make_app()) as c:
            text = await c.post(
                "/v1/predict",
                files=[
                    ("files", ("ok.png", png_bytes(0), "image/png")),
                    ("files", ("notes.txt", b"just text", "text/plain")),
                ],
            )
            corrupt = await c.post("/v1/predict", files=[("files", ("cut.png", png_bytes(0)[:80], "image/png"))])
            monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100_000)
            big = await c.post("/v1/predict", files=[("files", ("bomb.png", bomb.getvalue(), "image/png"))])
            return text, corrupt, big

    with pytest.warns(Image.DecompressionBombWarning):
        text, corrupt, big = run(go())
    assert text.status_code == 415
    assert text.json()["field"] == "files[1] (notes.txt)" and "not a readable image" in text.json()["detail"]
    assert corrupt.status_code == 422 and corrupt.json()["detail"].startswith(
        "files[0] (cut.png): corrupt or truncated image"
    )
    assert big.status_code == 422
    assert "refused, image too large (400x400 = 160000 pixels exceeds the limit of 100000)" in big.json()["detail"]


def test_too_many_images_in_one_request(make_app):
    async def go():
        async with client_of(make_app(max_images=2)) as c:
            return await c.post(
                "/v1/predict", files=[("files", (f"{i}.png", png_bytes(i), "image/png")) for i in range(3)]
            )

    r = run(go())
    assert r.status_code == 413 and "at most 2 images per request" in r.json()["detail"]


class _Blocking(ServedModel):
    """The tiny model, whose forward passes wait for a gate (a slow model)."""

    def __init__(self, served: ServedModel, gate: threading.Event, seconds: float = 10):
        super().__init__(served.clf, served.source)
        self.gate, self.seconds, self.warm = gate, seconds, False
        self.entered = threading.Event()

    def forward(self, batch):
        if self.warm:
            self.entered.set()
            self.gate.wait(self.seconds)
        return super().forward(batch)


def test_full_queue_is_503_at_once_and_health_still_answers(make_app, served):
    gate = threading.Event()
    model = _Blocking(served, gate)
    app = make_app(model, max_batch=1, max_wait_ms=0, max_queue=2)

    async def go():
        async with client_of(app) as c:
            model.warm = True
            post = lambda i: c.post("/v1/predict", files=[("files", (f"{i}.png", png_bytes(i), "image/png"))])  # noqa: E731
            running = []
            for i, queued in enumerate((0, 1, 2)):  # one in the model, then two queued, one at a time
                running.append(asyncio.create_task(post(i)))
                for _ in range(500):  # at most ~5 s
                    await asyncio.sleep(0.01)
                    if model.entered.is_set() if i == 0 else app.state.batcher.queued == queued:
                        break
                else:
                    raise AssertionError(f"request {i} did not reach the queue")
            loop = asyncio.get_running_loop()
            t = loop.time()
            refused = await post(9)
            refused_s = loop.time() - t
            health, ready = await c.get("/healthz"), await c.get("/readyz")
            metrics = (await c.get("/metrics")).text
            gate.set()
            return refused, refused_s, health, ready, metrics, await asyncio.gather(*running)

    refused, refused_s, health, ready, metrics, done = run(go())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert "at capacity (2 images waiting, limit 2)" in refused.json()["detail"]
    assert refused_s < 1.0  # at once, not after a wait
    assert health.status_code == 200 and ready.status_code == 200 and ready.json()["queued_images"] == 2
    assert "cnnkit_queue_depth 2.0" in metrics
    assert [d.status_code for d in done] == [200, 200, 200]


def test_slow_request_is_504(make_app, served):
    gate = threading.Event()
    model = _Blocking(served, gate, seconds=2)
    app = make_app(model, timeout_s=0.3)

    async def go():
        async with client_of(app) as c:
            model.warm = True
            r = await c.post("/v1/predict", files=[("files", ("a.png", png_bytes(0), "image/png"))])
            gate.set()
            return r, await c.get("/healthz")

    r, health = run(go())
    assert r.status_code == 504 and "no answer within 0.3 s (--timeout-s)" in r.json()["detail"]
    assert health.status_code == 200


def test_api_key(make_app):
    async def go():
        async with client_of(make_app(api_key="s3cret")) as c:
            f = [("files", ("a.png", png_bytes(0), "image/png"))]
            return (
                await c.post("/v1/predict", files=f),
                await c.post("/v1/predict", files=f, headers={"Authorization": "Bearer wrong"}),
                await c.post("/v1/predict", files=f, headers={"Authorization": "Bearer s3cret"}),
                await c.get("/v1/model", headers={"X-API-Key": "s3cret"}),
                await c.get("/metrics"),
                await c.get("/healthz"),
                await c.get("/"),
            )

    missing, wrong, ok, card, metrics, health, page = run(go())
    assert missing.status_code == wrong.status_code == metrics.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer" and missing.json()["field"] == "Authorization"
    assert ok.status_code == 200 and card.status_code == 200
    assert health.status_code == 200 and page.status_code == 200  # the page asks for the key itself


def test_nothing_from_a_request_is_written_to_disk(make_app, tmp_path, monkeypatch):
    """A multipart file over 1 MB would be spooled to a temporary file by Starlette's default parser."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))

    def no_disk(self, *a, **k):
        raise AssertionError("a request's data went to a temporary file")

    monkeypatch.setattr(tempfile.SpooledTemporaryFile, "rollover", no_disk)
    big = png_bytes(1, size=800, mode="RGB")
    assert len(big) > 1024 * 1024

    async def go():
        async with client_of(make_app(max_upload_mb=8)) as c:
            return await c.post("/v1/predict", files=[("files", ("big.png", big, "image/png"))])

    r = run(go())
    assert r.status_code == 200 and r.json()["predictions"][0]["source"] == "big.png"
    assert list(tmp.iterdir()) == []


def test_a_failing_model_is_a_500_not_a_crash(make_app, served):
    class Broken(ServedModel):
        def __init__(self):
            super().__init__(served.clf, served.source)
            self.calls = 0

        def forward(self, batch):
            self.calls += 1
            if self.calls > 2:  # after the warm-up
                raise RuntimeError("boom")
            return super().forward(batch)

    async def go():
        async with client_of(make_app(Broken(), max_batch=2)) as c:
            f = [("files", ("a.png", png_bytes(0), "image/png"))]
            with pytest.raises(RuntimeError, match="boom"):  # ASGITransport re-raises; uvicorn answers 500
                await c.post("/v1/predict", files=f)
            return await c.get("/healthz")

    assert run(go()).status_code == 200
