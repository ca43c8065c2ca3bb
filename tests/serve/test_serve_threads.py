"""cnnkit serve without --threads on the CPU: the model's threads follow the free cores (serve/threads.py)."""

import numpy as np
import pytest
from tests.serve.conftest import client_of, png_bytes, run

from cnnkit.serve.threads import LoadFollowingForward, follows_load


@pytest.mark.parametrize(
    "threads, device, backend, expected",
    [
        (None, "cpu", "eager", True),
        (None, "cpu", "bf16", True),
        (2, "cpu", "eager", False),  # --threads fixes the count
        (None, "cuda", "eager", False),
        (None, "cpu", "onnxruntime", False),  # onnxruntime has its own threads
        (None, "cpu", "onnxruntime-int8", False),
    ],
)
def test_which_services_follow_the_load(threads, device, backend, expected):
    assert follows_load(threads, device, backend) is expected


class FakeGovernor:
    def __init__(self):
        self.calls = []

    def start(self):
        self.calls.append("start")

    def tick(self):
        self.calls.append("tick")


def test_the_governor_starts_on_the_first_forward_and_ticks_before_each_later_one():
    seen = []
    forward = LoadFollowingForward(lambda x: seen.append(x.shape) or x * 2, governor=FakeGovernor)
    x = np.ones((2, 1, 4, 4), np.uint8)
    assert (forward(x) == 2).all() and forward.governor.calls == ["start"]
    forward(x)
    forward(x)
    assert forward.governor.calls == ["start", "tick", "tick"] and seen == [(2, 1, 4, 4)] * 3


def test_the_service_wraps_the_forward_unless_threads_are_given(make_app):
    assert isinstance(make_app().state.batcher.forward, LoadFollowingForward)
    assert not isinstance(make_app(threads=1).state.batcher.forward, LoadFollowingForward)


def test_the_warm_up_starts_the_governor_and_requests_are_answered(make_app):
    app = make_app(max_wait_ms=1)

    async def go():
        async with client_of(app) as client:
            assert app.state.batcher.forward.governor is not None  # started by the warm-up, in the model's thread
            r = await client.post("/v1/predict", files={"file": ("a.png", png_bytes(0), "image/png")})
            return r.status_code, r.json()

    status, body = run(go())
    assert status == 200 and body["predictions"][0]["top_k"]
