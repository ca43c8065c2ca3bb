"""The ASGI app: `create_app(model, config)` -> FastAPI. Endpoints:

POST /v1/predict   images (multipart files or JSON base64) -> `cnnkit predict --format json`'s JSON
POST /v1/explain   one image -> Grad-CAM overlay PNG
GET  /v1/model     the model card;  GET /healthz, /readyz;  GET /metrics (Prometheus)
GET  /             the web page;    GET /docs (Swagger UI, assets served locally), /openapi.json
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hmac
import sys
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

import cnnkit
from cnnkit.serve.batcher import Batcher, QueueFull
from cnnkit.serve.config import ServeConfig
from cnnkit.serve.decode import UploadError, decode_image, pixels
from cnnkit.serve.limits import BodyLimit, BodyTooLarge
from cnnkit.serve.metrics import Metrics, MetricsMiddleware
from cnnkit.serve.model import ServedModel
from cnnkit.serve.requests import parse_top_k, read_images
from cnnkit.serve.schemas import ERRORS, EXPLAIN_BODY, PREDICT_BODY, ErrorResponse, PredictResponse
from cnnkit.serve.threads import LoadFollowingForward, follows_load

RETRY_AFTER_S = 1
# Images this small (total pixels of a request, read from the headers) are decoded on the event loop:
# ~0.1 ms for a 32x32 PNG, less than the hop to a worker thread and back (measured ~0.3-0.5 ms of CPU).
# Larger ones (and possible decompression bombs) decode in a worker thread, so the loop never stalls.
INLINE_DECODE_PIXELS = 64 * 64 * 4
EXPLAIN_METHODS = ("gradcam", "gradcam++")


def error(status: int, detail: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=headers)


class Service:
    """What the endpoints share: the model, the limits, the batcher, the metrics and whether the
    service is ready (warmed up, not shutting down)."""

    def __init__(self, model: ServedModel, config: ServeConfig):
        self.model, self.config = model, config
        self.metrics = Metrics(
            {
                "/",
                "/v1/predict",
                "/v1/explain",
                "/v1/model",
                "/healthz",
                "/readyz",
                "/metrics",
                "/docs",
                "/openapi.json",
            }
        )
        forward: Any = model.forward
        if follows_load(config.threads, config.device, config.backend):  # no --threads: follow the free cores
            forward = LoadFollowingForward(forward)
        self.batcher = Batcher(
            forward,
            max_batch=config.max_batch,
            max_wait_s=config.max_wait_ms / 1000,
            max_queue=config.max_queue,
            on_batch=self.metrics.batch_size.observe,
            on_queue=self.metrics.queue_depth.set,
        )
        self.max_images = min(config.max_images, config.max_queue)
        self.ready = False
        self.reading = 0  # requests being read and decoded (each counts as one waiting image)

    @asynccontextmanager
    async def lifespan(self, app: FastAPI):
        self.batcher.start()
        c, (h, w) = self.model.clf.channels, self.model.clf.size
        for n in sorted({1, self.config.max_batch}):  # warm-up: first-call allocations happen now, not on a request
            await self.batcher.run_exclusive(functools.partial(self.batcher.forward, np.zeros((n, c, h, w), np.uint8)))
        # The ~200k objects of torch, the model and the app never die: moved out of the collector's sight, a full
        # collection under load no longer walks them (measured: 60-90 ms a pass before, under 0.1 ms after).
        gc.collect()
        gc.freeze()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(self.config.gil_switch_ms / 1000)  # see ServeConfig.gil_switch_ms
        self.ready = True
        try:
            yield
        finally:
            self.ready = False
            await self.batcher.stop()
            gc.unfreeze()  # an app run inside a longer process (tests, a notebook) gives its objects back
            sys.setswitchinterval(switch)

    async def require_key(self, request: Request) -> None:
        key = self.config.api_key
        if not key:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        if not given or not hmac.compare_digest(given.encode(), key.encode()):
            raise UploadError(
                401, "missing or wrong API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`", "Authorization"
            )

    async def decode_all(self, request: Request) -> tuple[list[str], np.ndarray, dict]:
        # Admission first: when the queue is full, answer 503 before reading or decoding anything,
        # so that refusing stays cheap under overload. A request being read counts as one image.
        waiting = self.batcher.queued + self.reading
        if waiting >= self.config.max_queue:
            raise UploadError(
                503,
                f"the service is at capacity ({waiting} images waiting, limit {self.config.max_queue}); retry after {RETRY_AFTER_S} s",
                None,
            )
        self.reading += 1
        try:
            items, fields = await read_images(request, self.max_images)

            def work():
                return [self.model.preprocess(decode_image(data, field)) for field, _, data in items]

            small = sum(pixels(data) for _, _, data in items) <= INLINE_DECODE_PIXELS
            arrays = work() if small else await run_in_threadpool(work)
        finally:
            self.reading -= 1
        return [source for _, source, _ in items], np.stack(arrays), fields

    async def infer(self, images: np.ndarray, started: float) -> np.ndarray:
        timeout = self.config.timeout_s
        left = timeout - (time.perf_counter() - started)
        try:
            if left <= 0:
                raise TimeoutError
            return await asyncio.wait_for(self.batcher.submit(images), left)
        except QueueFull as e:
            raise UploadError(503, f"the service is at capacity ({e}); retry after {RETRY_AFTER_S} s", None) from None
        except TimeoutError:
            raise UploadError(
                504,
                f"no answer within {timeout:g} s (--timeout-s); the service is overloaded or the model is slow",
                None,
            ) from None

    def limits(self) -> dict:
        c = self.config
        return {
            "max_batch": c.max_batch,
            "max_wait_ms": c.max_wait_ms,
            "max_queue": c.max_queue,
            "max_upload_mb": c.max_upload_mb,
            "max_images": self.max_images,
            "timeout_s": c.timeout_s,
        }


def create_app(model: ServedModel, config: ServeConfig | None = None) -> FastAPI:
    svc = Service(model, config or ServeConfig())
    app = FastAPIOffline(
        title="cnnkit serve",
        version=cnnkit.__version__,
        description="Predictions of a cnnkit model over HTTP. The key (when the service has one) goes in `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
        lifespan=svc.lifespan,
    )
    app.state.batcher, app.state.metrics, app.state.model, app.state.config = (
        svc.batcher,
        svc.metrics,
        model,
        svc.config,
    )
    _add_error_handlers(app)
    _add_predict(app, svc)
    _add_explain(app, svc)
    _add_status(app, svc)
    # outermost first: metrics see every answer, the body limit runs before any endpoint
    app.add_middleware(_Outer, metrics=svc.metrics, max_bytes=svc.config.max_upload_bytes)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, e: UploadError):
        headers = (
            {"WWW-Authenticate": "Bearer"}
            if e.status == 401
            else {"Retry-After": str(RETRY_AFTER_S)}
            if e.status == 503
            else None
        )
        return error(e.status, e.message, e.field, headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, e: BodyTooLarge):
        return error(413, str(e), "body", {"Connection": "close"})


def _add_predict(app: FastAPI, svc: Service) -> None:
    @app.post(
        "/v1/predict",
        response_model=None,
        responses={200: {"model": PredictResponse}, **ERRORS},
        openapi_extra=PREDICT_BODY,
        dependencies=[Depends(svc.require_key)],
    )
    async def predict(
        request: Request, top_k: int | None = Query(None, ge=1, description="classes per image (default 5)")
    ) -> Response:
        """Top-k classes of each image: the JSON of `cnnkit predict --format json`, plus `latency_ms`."""
        started = time.perf_counter()
        sources, images, fields = await svc.decode_all(request)
        k = top_k if top_k is not None else parse_top_k(fields.get("top_k", 5))
        probs = await svc.infer(images, started)
        body = svc.model.predictions(probs, sources, k).to_dict()  # the dict `cnnkit predict --format json` prints
        body["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return JSONResponse(body)


def _check_explain(model: ServedModel, method: str, class_name: str | None) -> None:
    """422 for an unknown method or class, 501 for a model Grad-CAM cannot explain (not PyTorch)."""
    if method not in EXPLAIN_METHODS:
        raise UploadError(422, f"method {method!r} is not one of: {', '.join(EXPLAIN_METHODS)}", "method")
    if class_name is not None and class_name not in model.class_names:
        raise UploadError(
            422,
            f"class_name {class_name!r} is not one of the model's classes: {', '.join(model.class_names)}",
            "class_name",
        )
    if not model.explainable:
        raise UploadError(
            501, f"this model ({model.backend} backend) cannot be explained: Grad-CAM needs the PyTorch model", None
        )


def _add_explain(app: FastAPI, svc: Service) -> None:
    @app.post(
        "/v1/explain",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 501: {"model": ErrorResponse}, **ERRORS},
        openapi_extra=EXPLAIN_BODY,
        dependencies=[Depends(svc.require_key)],
    )
    async def explain(
        request: Request,
        method: str = Query("gradcam", description="gradcam or gradcam++"),
        class_name: str | None = Query(None, description="explain this class instead of the prediction"),
    ) -> Response:
        """Grad-CAM overlay (PNG) of one image; the prediction in the X-Cnnkit-Label and X-Cnnkit-Probability headers."""
        started = time.perf_counter()
        model, timeout = svc.model, svc.config.timeout_s
        _check_explain(model, method, class_name)
        _, images, _ = await svc.decode_all(request)
        if len(images) != 1:
            raise UploadError(422, f"explain takes one image, got {len(images)}", "file")
        left = timeout - (time.perf_counter() - started)
        try:
            png, label, prob = await asyncio.wait_for(
                svc.batcher.run_exclusive(lambda: model.explain_png(images[0], method, class_name)), max(left, 0.001)
            )
        except TimeoutError:
            raise UploadError(504, f"no answer within {timeout:g} s (--timeout-s)", None) from None
        headers = {
            "X-Cnnkit-Label": label,
            "X-Cnnkit-Probability": f"{prob:.6f}",
            "X-Cnnkit-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.2f}",
            "Cache-Control": "no-store",
        }
        return Response(png, media_type="image/png", headers=headers)


def _add_status(app: FastAPI, svc: Service) -> None:
    """The model card, health, readiness, metrics and the web page."""

    @app.get("/v1/model", dependencies=[Depends(svc.require_key)])
    async def model_card() -> dict:
        """Name, classes, input size, normalisation, the run's metrics, the cnnkit version and the service limits."""
        card = svc.model.card()
        card["limits"] = svc.limits()
        return card

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorResponse}})
    async def readyz() -> Response:
        """The model is loaded and warmed up (503 while starting or shutting down)."""
        if not svc.ready:
            return error(503, "warming up or shutting down", None, {"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"status": "ready", "queued_images": svc.batcher.queued})

    @app.get("/metrics", response_class=Response, dependencies=[Depends(svc.require_key)])
    async def prometheus() -> Response:
        """Prometheus text format: requests by status, latency and batch-size histograms, queue depth."""
        return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE(), headers={"Cache-Control": "no-store"})


class _Outer:
    """MetricsMiddleware around BodyLimit, as one middleware entry."""

    def __init__(self, app, metrics: Metrics, max_bytes: int):
        self.app = MetricsMiddleware(BodyLimit(app, max_bytes), metrics)

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


def PAGE() -> str:
    return resources.files("cnnkit.serve").joinpath("page.html").read_text(encoding="utf-8")
