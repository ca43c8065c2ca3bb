"""The API contract: status codes, JSON shapes, the OpenAPI schema, the docs offline, the page."""

from __future__ import annotations

import base64
import gc
import io
import json
import sys

import numpy as np
import pytest
from PIL import Image
from tests.serve.conftest import client_of, png_bytes, run

from cnnkit.inference.commands import format_predictions


def test_predict_answers_the_json_of_cnnkit_predict(make_app, served, tiny_run, tmp_path):
    files = []
    for i in range(3):
        (tmp_path / f"img{i}.png").write_bytes(png_bytes(i))
        files.append(("files", (f"img{i}.png", png_bytes(i), "image/png")))
    expected = json.loads(format_predictions(served.clf.predict_files(sorted(tmp_path.glob("*.png")), top_k=3), "json"))
    for p in expected["predictions"]:
        p["source"] = p["source"].rsplit("/", 1)[-1]

    async def go():
        async with client_of(make_app()) as c:
            return await c.post("/v1/predict?top_k=3", files=files)

    r = run(go())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"predictions", "errors", "latency_ms"} and body["errors"] == [] and body["latency_ms"] > 0
    got = body["predictions"]
    assert [p["source"] for p in got] == ["img0.png", "img1.png", "img2.png"]
    assert [p["label"] for p in got] == [p["label"] for p in expected["predictions"]]
    for g, e in zip(got, expected["predictions"]):
        assert set(g) == set(e) == {"source", "label", "probability", "top_k"}
        assert len(g["top_k"]) == 3
        np.testing.assert_allclose(
            [t["probability"] for t in g["top_k"]], [t["probability"] for t in e["top_k"]], atol=1e-5
        )


def test_predict_json_base64(make_app):
    data = png_bytes(7)

    async def go():
        async with client_of(make_app()) as c:
            a = await c.post(
                "/v1/predict",
                json={
                    "images": [
                        base64.b64encode(data).decode(),
                        {"name": "seven.png", "data": "data:image/png;base64," + base64.b64encode(data).decode()},
                    ],
                    "top_k": 2,
                },
            )
            b = await c.post("/v1/predict", files=[("files", ("x.png", data, "image/png"))], data={"top_k": "2"})
            return a, b

    a, b = run(go())
    assert a.status_code == 200, a.text
    preds = a.json()["predictions"]
    assert [p["source"] for p in preds] == ["image0", "seven.png"]
    assert preds[0]["top_k"] == preds[1]["top_k"] == b.json()["predictions"][0]["top_k"]
    assert len(preds[0]["top_k"]) == 2


def test_bad_requests_name_the_field(make_app):
    async def go():
        async with client_of(make_app()) as c:
            return [
                await c.post("/v1/predict", content=b"raw", headers={"content-type": "text/plain"}),
                await c.post("/v1/predict", json={"images": ["not base64!"]}),
                await c.post("/v1/predict", json={"pictures": []}),
                await c.post("/v1/predict", content=b"{oops", headers={"content-type": "application/json"}),
                await c.post("/v1/predict?top_k=0", files=[("files", ("a.png", png_bytes(0), "image/png"))]),
                await c.post(
                    "/v1/predict", files=[("files", ("a.png", png_bytes(0), "image/png"))], data={"top_k": "five"}
                ),
                await c.post("/v1/predict", data={"top_k": "3"}, files=[("other", ("", b"", "text/plain"))]),
            ]

    r = run(go())
    assert [x.status_code for x in r] == [415, 422, 422, 422, 422, 422, 422]
    assert r[0].json()["field"] == "Content-Type" and "multipart/form-data" in r[0].json()["detail"]
    assert r[1].json() == {"detail": "images[0] is not valid base64", "field": "images[0]"}
    assert r[2].json()["field"] == "images"
    assert r[3].json()["field"] == "body" and "not valid JSON" in r[3].json()["detail"]
    assert r[4].json()["detail"][0]["loc"] == ["query", "top_k"]  # FastAPI's own validation
    assert r[5].json() == {"detail": "top_k must be a whole number, got 'five'", "field": "top_k"}
    assert r[6].json() == {
        "detail": "no image in the request: send one or more files (multipart field 'files')",
        "field": "files",
    }


def test_model_card_health_and_ready(make_app, served, tiny_run):
    app = make_app(max_batch=4, gil_switch_ms=0.25)
    switch = sys.getswitchinterval()

    async def go():
        async with client_of(app) as c:
            frozen = gc.get_freeze_count()  # warm-up ended by moving the long-lived objects out of the collector's way
            running = sys.getswitchinterval()
            return await c.get("/v1/model"), await c.get("/healthz"), await c.get("/readyz"), frozen, running

    card, health, ready, frozen, running = run(go())
    assert frozen > 10_000 and gc.get_freeze_count() == 0  # and shutting down gave them back
    assert running == pytest.approx(0.00025) and sys.getswitchinterval() == switch  # the GIL's switch, then restored
    m = card.json()
    assert card.status_code == 200
    assert m["name"] == tiny_run.name and m["architecture"] == "simple_cnn"
    assert m["classes"] == served.class_names and len(m["classes"]) == 10
    assert m["input"] == {"channels": 1, "size": [28, 28]}
    assert len(m["normalization"]["mean"]) == len(m["normalization"]["std"]) == 1
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert m["metrics"]["best_val_accuracy"] == summary["best_val_accuracy"]
    assert m["backend"] == "eager" and m["explain"] is True and m["cnnkit_version"]
    assert m["limits"]["max_batch"] == 4
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_is_503_before_warm_up(make_app):
    from fastapi.testclient import TestClient

    client = TestClient(make_app())  # no `with`: the lifespan (warm-up) has not run
    r = client.get("/readyz")
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert client.get("/healthz").status_code == 200


def test_explain_returns_a_png(make_app, served):
    async def go():
        async with client_of(make_app()) as c:
            ok = await c.post("/v1/explain", files=[("file", ("a.png", png_bytes(3), "image/png"))])
            other = await c.post(
                f"/v1/explain?class_name={served.class_names[1]}",
                json={"image": base64.b64encode(png_bytes(3)).decode()},
            )
            bad = await c.post("/v1/explain?method=lime", files=[("file", ("a.png", png_bytes(3), "image/png"))])
            two = await c.post(
                "/v1/explain",
                files=[("file", ("a.png", png_bytes(3), "image/png")), ("file", ("b.png", png_bytes(4), "image/png"))],
            )
            return ok, other, bad, two

    ok, other, bad, two = run(go())
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(ok.content)) as im:
        assert im.size == (224, 224) and im.mode == "RGB"
    pred = served.clf.predict(Image.open(io.BytesIO(png_bytes(3))))[0]
    assert ok.headers["x-cnnkit-label"] == pred.label
    assert abs(float(ok.headers["x-cnnkit-probability"]) - pred.probability) < 1e-4
    assert other.status_code == 200 and other.content != ok.content  # another class, another map
    assert bad.status_code == 422 and bad.json()["field"] == "method"
    assert two.status_code == 422 and two.json()["detail"] == "explain takes one image, got 2"


def test_metrics_count_requests_batches_and_queue(make_app):
    async def go():
        async with client_of(make_app()) as c:
            await c.post(
                "/v1/predict",
                files=[
                    ("files", ("a.png", png_bytes(0), "image/png")),
                    ("files", ("b.png", png_bytes(1), "image/png")),
                ],
            )
            await c.post("/v1/predict", content=b"x", headers={"content-type": "text/plain"})
            return await c.get("/metrics")

    r = run(go())
    text = r.text
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'cnnkit_requests_total{endpoint="/v1/predict",method="POST",status="200"} 1.0' in text
    assert 'cnnkit_requests_total{endpoint="/v1/predict",method="POST",status="415"} 1.0' in text
    assert 'cnnkit_request_latency_seconds_count{endpoint="/v1/predict",status="415"} 1.0' in text
    assert "cnnkit_batch_size_count 1.0" in text and "cnnkit_batch_size_sum 2.0" in text
    assert "cnnkit_queue_depth 0.0" in text


def test_openapi_schema_and_offline_docs(make_app):
    from fastapi.testclient import TestClient

    with TestClient(make_app()) as c:
        schema = c.get("/openapi.json").json()
        docs = c.get("/docs").text
        js = c.get("/static-offline-docs/swagger-ui-bundle.js")
        page = c.get("/")
    paths = schema["paths"]
    assert {"/v1/predict", "/v1/explain", "/v1/model", "/healthz", "/readyz", "/metrics"} <= set(paths)
    body = paths["/v1/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"multipart/form-data", "application/json"}
    responses = paths["/v1/predict"]["post"]["responses"]
    assert {"200", "401", "413", "415", "422", "503", "504"} <= set(responses)
    assert "PredictResponse" in schema["components"]["schemas"]
    assert "/static-offline-docs/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower() and "https://" not in docs
    assert js.status_code == 200 and len(js.content) > 100_000
    # the page is self-contained: no external script, style or font
    assert page.status_code == 200 and "<script>" in page.text
    assert "http://" not in page.text and "https://" not in page.text and 'src="/' not in page.text


def test_small_images_decode_on_the_loop_large_ones_in_a_thread(make_app, monkeypatch):
    import cnnkit.serve.app as app_module

    hops = []
    real = app_module.run_in_threadpool

    async def counted(fn, *a):
        hops.append(fn)
        return await real(fn, *a)

    monkeypatch.setattr(app_module, "run_in_threadpool", counted)
    large = png_bytes(5, size=int(app_module.INLINE_DECODE_PIXELS**0.5) + 1)  # just over the limit

    async def go():
        async with client_of(make_app()) as c:
            small = await c.post("/v1/predict", files=[("files", ("s.png", png_bytes(5), "image/png"))])
            n_small = len(hops)
            big = await c.post("/v1/predict", files=[("files", ("b.png", large, "image/png"))])
            return small, n_small, big

    small, n_small, big = run(go())
    assert small.status_code == 200 and big.status_code == 200
    assert n_small == 0 and len(hops) == 1
    assert big.json()["predictions"][0]["source"] == "b.png"
