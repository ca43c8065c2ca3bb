"""Prometheus metrics of one service process (its own registry, so several apps can live in one process)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self, endpoints: set[str]):
        self.endpoints = endpoints  # label values: known paths; anything else counts as "other"
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "cnnkit_requests",
            "HTTP requests answered, by endpoint and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "cnnkit_request_latency_seconds",
            "time from request to answer, by endpoint and status (e.g. how fast 503s are)",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "cnnkit_batch_size", "images per forward pass", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.queue_depth = Gauge("cnnkit_queue_depth", "images waiting for the model", registry=self.registry)
        self.in_flight = Gauge("cnnkit_requests_in_flight", "requests being handled", registry=self.registry)

    def endpoint(self, path: str) -> str:
        return path if path in self.endpoints else "other"

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI: counts every answer by status and times it (including the ones middleware refuses)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def send_status(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.in_flight.dec()
            ep = self.metrics.endpoint(scope["path"])
            self.metrics.requests.labels(ep, scope["method"], str(status["code"])).inc()
            self.metrics.latency.labels(ep, str(status["code"])).observe(time.perf_counter() - start)
