"""Fixtures of the serve tests: the tiny run's model, apps built on it, images as bytes."""

from __future__ import annotations

import asyncio
import contextlib
import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")  # the `serve` extra (installed with `dev`)

import httpx

from cnnkit.serve.app import create_app
from cnnkit.serve.config import ServeConfig
from cnnkit.serve.model import ServedModel


def png_bytes(seed: int, size: int = 28, mode: str = "L", fmt: str = "PNG") -> bytes:
    """A distinct random image per seed."""
    rng = np.random.default_rng(seed)
    shape = (size, size) if mode == "L" else (size, size, 3)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).convert(mode).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture(scope="session")
def served(tiny_run) -> ServedModel:
    return ServedModel.load(tiny_run)


@pytest.fixture
def make_app(served):
    def make(model=None, **config):
        return create_app(model or served, ServeConfig(**config))

    return make


@contextlib.asynccontextmanager
async def client_of(app):
    """An httpx client talking to the app in-process, with the app's lifespan (batcher, warm-up) running."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


def run(coro):
    return asyncio.run(coro)
