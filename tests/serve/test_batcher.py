"""Dynamic batching: concurrent requests share forward passes, and each gets its own rows."""

from __future__ import annotations

import asyncio
import io
import threading

import numpy as np
import pytest
from PIL import Image
from tests.serve.conftest import client_of, png_bytes, run

from cnnkit.serve.batcher import Batcher, QueueFull


def test_many_concurrent_distinct_images_each_get_their_own_answer(make_app, served):
    n = 48
    images = [png_bytes(100 + i) for i in range(n)]
    alone = served.clf.predict_proba([Image.open(io.BytesIO(b)) for b in images]).numpy()
    app = make_app(max_batch=16, max_wait_ms=20)
    sizes: list[int] = []
    app.state.batcher.on_batch = sizes.append

    async def go():
        async with client_of(app) as c:
            return await asyncio.gather(
                *[
                    c.post("/v1/predict?top_k=10", files=[("files", (f"{i}.png", b, "image/png"))])
                    for i, b in enumerate(images)
                ]
            )

    answers = run(go())
    assert all(a.status_code == 200 for a in answers)
    for i, a in enumerate(answers):
        p = a.json()["predictions"][0]
        assert p["source"] == f"{i}.png"
        got = {t["label"]: t["probability"] for t in p["top_k"]}
        want = dict(zip(served.class_names, alone[i].tolist()))
        assert got.keys() == want.keys()
        np.testing.assert_allclose(
            [got[k] for k in served.class_names], [want[k] for k in served.class_names], atol=1e-5
        )
    assert sum(sizes) == n and max(sizes) > 1 and max(sizes) <= 16  # really batched, never over --max-batch
    assert len(sizes) < n


def _identity_forward(calls):
    def forward(x):
        calls.append((len(x), threading.current_thread().name))
        return x.reshape(len(x), -1)[:, :2].astype(np.float32)  # each row encodes its own image

    return forward


def test_batcher_gathers_until_max_batch_and_runs_off_the_event_loop():
    calls: list = []

    async def go():
        b = Batcher(_identity_forward(calls), max_batch=4, max_wait_s=0.2, max_queue=100)
        b.start()
        try:
            reqs = [np.full((k, 1, 1, 2), i, np.uint8) for i, k in enumerate([1, 2, 1, 3])]
            return await asyncio.gather(*[b.submit(r) for r in reqs])
        finally:
            await b.stop()

    out = run(go())
    assert [o.shape for o in out] == [(1, 2), (2, 2), (1, 2), (3, 2)]
    assert [int(o[0, 0]) for o in out] == [0, 1, 2, 3]
    assert all((o == o[0, 0]).all() for o in out)  # nobody got another request's rows
    assert [c[0] for c in calls] == [4, 3]  # 1+2+1 filled a batch of 4; the 3 waited for the next
    assert all(c[1].startswith("cnnkit-model") for c in calls)


def test_batcher_waits_at_most_max_wait():
    calls: list = []

    async def go():
        b = Batcher(_identity_forward(calls), max_batch=64, max_wait_s=0.05, max_queue=100)
        b.start()
        try:
            loop = asyncio.get_running_loop()
            t = loop.time()
            await b.submit(np.zeros((1, 1, 1, 2), np.uint8))
            return loop.time() - t
        finally:
            await b.stop()

    waited = run(go())
    assert 0.04 <= waited < 1.0 and calls[0][0] == 1


def test_a_lone_request_after_a_lone_one_does_not_wait_and_company_restores_the_wait():
    calls: list = []

    async def go():
        b = Batcher(_identity_forward(calls), max_batch=64, max_wait_s=0.3, max_queue=100)
        b.start()
        try:
            loop = asyncio.get_running_loop()
            waited = []
            for _ in range(3):  # concurrency 1: the first waits (nothing known yet), the next ones go at once
                t = loop.time()
                await b.submit(np.zeros((1, 1, 1, 2), np.uint8))
                waited.append(loop.time() - t)
            await asyncio.gather(*[b.submit(np.zeros((1, 1, 1, 2), np.uint8)) for _ in range(3)])
            after_company = b.last_batch
            t = loop.time()
            await b.submit(np.zeros((1, 1, 1, 2), np.uint8))  # the last batch had company: this one waits again
            waited.append(loop.time() - t)
            return waited, after_company
        finally:
            await b.stop()

    waited, after_company = run(go())
    assert waited[0] >= 0.25 and waited[1] < 0.2 and waited[2] < 0.2
    assert after_company == 3 and waited[3] >= 0.25
    assert [c[0] for c in calls] == [1, 1, 1, 3, 1]  # the three sent together were all waiting: one batch


def test_full_queue_refuses_at_once_and_a_large_request_is_split():
    calls: list = []
    gate = threading.Event()

    def slow(x):
        gate.wait(5)
        return _identity_forward(calls)(x)

    async def go():
        b = Batcher(slow, max_batch=2, max_wait_s=0.0, max_queue=5)
        b.start()
        try:
            first = asyncio.create_task(b.submit(np.zeros((2, 1, 1, 2), np.uint8)))  # taken by the model, which blocks
            await asyncio.sleep(0.05)
            queued = asyncio.create_task(b.submit(np.ones((5, 1, 1, 2), np.uint8)))  # fills the queue
            await asyncio.sleep(0.01)
            with pytest.raises(QueueFull, match=r"5 images are waiting \(limit 5\)"):
                await b.submit(np.zeros((1, 1, 1, 2), np.uint8))
            gate.set()
            return await first, await queued
        finally:
            await b.stop()

    first, queued = run(go())
    assert first.shape == (2, 2) and queued.shape == (5, 2) and (queued == 1).all()
    assert [c[0] for c in calls] == [2, 2, 2, 1]  # the 5 went in chunks of max_batch
