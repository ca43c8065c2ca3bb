"""The ASGI app: `create_app(model, config)` -> FastAPI. Endpoints:

POST /v1/predict   images (multipart files or JSON base64) -> `cnnkit predict --format json`'s JSON
POST /v1/explain   one image -> Grad-CAM overlay PNG
GET  /v1/model     the model card;  GET /healthz, /readyz;  GET /metrics (Prometheus)
GET  /             the web page;    GET /docs (Swagger UI, assets served locally), /openapi.json
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import time
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

import cnnkit
from cnnkit.serve.batcher import Batcher, QueueFull
from cnnkit.serve.config import ServeConfig
from cnnkit.serve.decode import UploadError, decode_image
from cnnkit.serve.limits import BodyLimit, BodyTooLarge
from cnnkit.serve.metrics import Metrics, MetricsMiddleware
from cnnkit.serve.model import ServedModel
from cnnkit.serve.requests import parse_top_k, read_images

RETRY_AFTER_S = 1
EXPLAIN_METHODS = ("gradcam", "gradcam++")


class TopK(BaseModel):
    label: str
    probability: float


class PredictionOut(BaseModel):
    source: str | None
    label: str
    probability: float
    top_k: list[TopK]
    labels: list[TopK] | None = None


class PredictResponse(BaseModel):
    predictions: list[PredictionOut]
    errors: list[dict]
    latency_ms: float


class ErrorResponse(BaseModel):
    detail: str
    field: str | None = None


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                        "top_k": {"type": "integer", "default": 5},
                    },
                    "required": ["files"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "images": {
                            "type": "array",
                            "items": {
                                "oneOf": [
                                    {"type": "string", "description": "base64 (or a data: URL)"},
                                    {
                                        "type": "object",
                                        "properties": {"name": {"type": "string"}, "data": {"type": "string"}},
                                    },
                                ]
                            },
                        },
                        "top_k": {"type": "integer", "default": 5},
                    },
                    "required": ["images"],
                }
            },
        },
    }
}
EXPLAIN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary"}},
                    "required": ["file"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"image": {"type": "string", "description": "base64"}},
                    "required": ["image"],
                }
            },
        },
    }
}
ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorResponse} for s in (401, 413, 415, 422, 503, 504)}


def error(status: int, detail: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=headers)


def create_app(model: ServedModel, config: ServeConfig | None = None) -> FastAPI:
    config = config or ServeConfig()
    metrics = Metrics(
        {"/", "/v1/predict", "/v1/explain", "/v1/model", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"}
    )
    batcher = Batcher(
        model.forward,
        max_batch=config.max_batch,
        max_wait_s=config.max_wait_ms / 1000,
        max_queue=config.max_queue,
        on_batch=metrics.batch_size.observe,
        on_queue=metrics.queue_depth.set,
    )
    max_images = min(config.max_images, config.max_queue)
    state = {"ready": False, "reading": 0}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        c, (h, w) = model.clf.channels, model.clf.size
        for n in sorted({1, config.max_batch}):  # warm-up: first-call allocations happen now, not on a request
            await batcher.run_exclusive(functools.partial(model.forward, np.zeros((n, c, h, w), np.uint8)))
        state["ready"] = True
        try:
            yield
        finally:
            state["ready"] = False
            await batcher.stop()

    app = FastAPIOffline(
        title="cnnkit serve",
        version=cnnkit.__version__,
        description="Predictions of a cnnkit model over HTTP. The key (when the service has one) goes in `Authorization: Bearer KEY` or `X-API-Key: KEY`.",
        lifespan=lifespan,
    )
    app.state.batcher, app.state.metrics, app.state.model, app.state.config = batcher, metrics, model, config

    async def require_key(request: Request) -> None:
        if not config.api_key:
            return
        auth = request.headers.get("authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-api-key", "")
        if not given or not hmac.compare_digest(given.encode(), config.api_key.encode()):
            raise UploadError(
                401, "missing or wrong API key: send `Authorization: Bearer KEY` or `X-API-Key: KEY`", "Authorization"
            )

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

    async def decode_all(request: Request) -> tuple[list[str], np.ndarray, dict]:
        # Admission first: when the queue is full, answer 503 before reading or decoding anything,
        # so that refusing stays cheap under overload. A request being read counts as one image.
        waiting = batcher.queued + state["reading"]
        if waiting >= config.max_queue:
            raise UploadError(
                503,
                f"the service is at capacity ({waiting} images waiting, limit {config.max_queue}); retry after {RETRY_AFTER_S} s",
                None,
            )
        state["reading"] += 1
        try:
            items, fields = await read_images(request, max_images)

            def work():
                return [model.preprocess(decode_image(data, field)) for field, _, data in items]

            arrays = await run_in_threadpool(work)
        finally:
            state["reading"] -= 1
        return [source for _, source, _ in items], np.stack(arrays), fields

    async def infer(images: np.ndarray, started: float) -> np.ndarray:
        left = config.timeout_s - (time.perf_counter() - started)
        try:
            if left <= 0:
                raise TimeoutError
            return await asyncio.wait_for(batcher.submit(images), left)
        except QueueFull as e:
            raise UploadError(503, f"the service is at capacity ({e}); retry after {RETRY_AFTER_S} s", None) from None
        except TimeoutError:
            raise UploadError(
                504,
                f"no answer within {config.timeout_s:g} s (--timeout-s); the service is overloaded or the model is slow",
                None,
            ) from None

    @app.post(
        "/v1/predict",
        response_model=None,
        responses={200: {"model": PredictResponse}, **ERRORS},
        openapi_extra=PREDICT_BODY,
        dependencies=[Depends(require_key)],
    )
    async def predict(
        request: Request, top_k: int | None = Query(None, ge=1, description="classes per image (default 5)")
    ) -> Response:
        """Top-k classes of each image: the JSON of `cnnkit predict --format json`, plus `latency_ms`."""
        started = time.perf_counter()
        sources, images, fields = await decode_all(request)
        k = top_k if top_k is not None else parse_top_k(fields.get("top_k", 5))
        probs = await infer(images, started)
        report = model.predictions(probs, sources, k)
        body = json.loads(format_json(report))
        body["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return JSONResponse(body)

    @app.post(
        "/v1/explain",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}, 501: {"model": ErrorResponse}, **ERRORS},
        openapi_extra=EXPLAIN_BODY,
        dependencies=[Depends(require_key)],
    )
    async def explain(
        request: Request,
        method: str = Query("gradcam", description="gradcam or gradcam++"),
        class_name: str | None = Query(None, description="explain this class instead of the prediction"),
    ) -> Response:
        """Grad-CAM overlay (PNG) of one image; the prediction in the X-Cnnkit-Label and X-Cnnkit-Probability headers."""
        started = time.perf_counter()
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
        _, images, _ = await decode_all(request)
        if len(images) != 1:
            raise UploadError(422, f"explain takes one image, got {len(images)}", "file")
        left = config.timeout_s - (time.perf_counter() - started)
        try:
            png, label, prob = await asyncio.wait_for(
                batcher.run_exclusive(lambda: model.explain_png(images[0], method, class_name)), max(left, 0.001)
            )
        except TimeoutError:
            raise UploadError(504, f"no answer within {config.timeout_s:g} s (--timeout-s)", None) from None
        headers = {
            "X-Cnnkit-Label": label,
            "X-Cnnkit-Probability": f"{prob:.6f}",
            "X-Cnnkit-Latency-Ms": f"{(time.perf_counter() - started) * 1000:.2f}",
            "Cache-Control": "no-store",
        }
        return Response(png, media_type="image/png", headers=headers)

    @app.get("/v1/model", dependencies=[Depends(require_key)])
    async def model_card() -> dict:
        """Name, classes, input size, normalisation, the run's metrics, the cnnkit version and the service limits."""
        card = model.card()
        card["limits"] = {
            "max_batch": config.max_batch,
            "max_wait_ms": config.max_wait_ms,
            "max_queue": config.max_queue,
            "max_upload_mb": config.max_upload_mb,
            "max_images": max_images,
            "timeout_s": config.timeout_s,
        }
        return card

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process answers."""
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"model": ErrorResponse}})
    async def readyz() -> Response:
        """The model is loaded and warmed up (503 while starting or shutting down)."""
        if not state["ready"]:
            return error(503, "warming up or shutting down", None, {"Retry-After": str(RETRY_AFTER_S)})
        return JSONResponse({"status": "ready", "queued_images": batcher.queued})

    @app.get("/metrics", response_class=Response, dependencies=[Depends(require_key)])
    async def prometheus() -> Response:
        """Prometheus text format: requests by status, latency and batch-size histograms, queue depth."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(PAGE(), headers={"Cache-Control": "no-store"})

    # outermost first: metrics see every answer, the body limit runs before any endpoint
    app.add_middleware(_Outer, metrics=metrics, max_bytes=config.max_upload_bytes)
    return app


class _Outer:
    """MetricsMiddleware around BodyLimit, as one middleware entry."""

    def __init__(self, app, metrics: Metrics, max_bytes: int):
        self.app = MetricsMiddleware(BodyLimit(app, max_bytes), metrics)

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


def format_json(report) -> str:
    return json.dumps(report.to_dict(), indent=2)  # as `cnnkit predict --format json`


def PAGE() -> str:
    return resources.files("cnnkit.serve").joinpath("page.html").read_text(encoding="utf-8")
