"""Reading a request's images: the raw `image/*` body (one image, the cheapest to parse)."""

from __future__ import annotations

from tests.serve.conftest import client_of, png_bytes, run


def test_raw_image_body_answers_as_multipart(make_app):
    async def go():
        async with client_of(make_app()) as c:
            raw = await c.post(
                "/v1/predict?top_k=2",
                content=png_bytes(3),
                headers={"Content-Type": "image/png", "X-Filename": "a.png"},
            )
            unnamed = await c.post("/v1/predict", content=png_bytes(3), headers={"Content-Type": "image/png"})
            multi = await c.post("/v1/predict?top_k=2", files=[("files", ("a.png", png_bytes(3), "image/png"))])
            return raw, unnamed, multi

    raw, unnamed, multi = run(go())
    assert raw.status_code == 200 and unnamed.status_code == 200
    assert raw.json()["predictions"] == multi.json()["predictions"]
    assert raw.json()["predictions"][0]["source"] == "a.png" and len(raw.json()["predictions"][0]["top_k"]) == 2
    assert unnamed.json()["predictions"][0]["source"] == "body"


def test_raw_body_bad_image_names_the_field(make_app):
    async def go():
        async with client_of(make_app()) as c:
            text = await c.post(
                "/v1/predict", content=b"not an image", headers={"Content-Type": "image/jpeg", "X-Filename": "x.jpg"}
            )
            empty = await c.post("/v1/predict", content=b"", headers={"Content-Type": "image/png"})
            other = await c.post("/v1/predict", content=b"abc", headers={"Content-Type": "text/plain"})
            return text, empty, other

    text, empty, other = run(go())
    assert text.status_code == 415 and text.json()["field"] == "body (x.jpg)"
    assert "not a readable image" in text.json()["detail"]
    assert empty.status_code == 422 and empty.json()["detail"] == "body (body): empty file (0 bytes)"
    assert other.status_code == 415 and "image/* (one image as the body)" in other.json()["detail"]


def test_raw_body_over_the_limit_is_413(make_app):
    async def go():
        async with client_of(make_app(max_upload_mb=0.001)) as c:
            return await c.post("/v1/predict", content=b"\0" * 5000, headers={"Content-Type": "image/png"})

    r = run(go())
    assert r.status_code == 413 and r.json()["field"] == "body" and "--max-upload-mb" in r.json()["detail"]
