"""`cnnkit serve`: its flags, the refusal of a non-loopback bind without a key, and a real uvicorn
process that drains the request in flight on SIGTERM and exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.serve.conftest import png_bytes

from cnnkit.cli import main

SRC = Path(__file__).resolve().parents[2] / "src"


def test_serve_help(capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for flag in (
        "--host",
        "--port",
        "--workers",
        "--backend",
        "--max-batch",
        "--max-wait-ms",
        "--max-queue",
        "--max-upload-mb",
        "--timeout-s",
        "--api-key",
    ):
        assert flag in out
    assert "RUN|CKPT|ONNX" in out


def test_refuses_a_public_bind_without_a_key(tiny_run, capsys, monkeypatch):
    monkeypatch.delenv("CNNKIT_API_KEY", raising=False)
    assert main(["serve", str(tiny_run), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert (
        "cnnkit serve: error: --host 0.0.0.0 is reachable from other machines: give --api-key KEY (or set $CNNKIT_API_KEY)"
        in err
    )


@pytest.mark.parametrize("flag, value", [("--max-batch", "0"), ("--timeout-s", "0"), ("--backend", "tensorrt")])
def test_bad_flags(tiny_run, flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        main(["serve", str(tiny_run), flag, value])
    assert e.value.code == 2 and flag in capsys.readouterr().err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, *flags: str, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """`cnnkit serve` as a child process on a free loopback port, once /readyz says ready."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("CNNKIT_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnkit", "serve", str(model), "--port", str(port), *flags],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"cnnkit serve exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"cnnkit serve not ready within {timeout} s:\n{proc.communicate()[0]}")


@pytest.mark.slow  # a child process importing torch: ~10 s
def test_sigterm_drains_the_request_in_flight_then_exits_0(tiny_run):
    proc, url = start_server(tiny_run)
    try:
        request = httpx.Request("POST", url + "/v1/predict", files=[("files", ("slow.png", png_bytes(5), "image/png"))])
        body = request.read()
        half_sent = threading.Event()

        def slow_body():  # the request is in flight (its body half sent) when SIGTERM arrives
            yield body[: len(body) // 2]
            half_sent.set()
            time.sleep(1.5)
            yield body[len(body) // 2 :]

        result = {}

        def send():
            try:
                result["r"] = httpx.post(
                    url + "/v1/predict",
                    content=slow_body(),
                    headers={"content-type": request.headers["content-type"]},
                    timeout=30,
                )
            except httpx.HTTPError as e:  # pragma: no cover - reported below
                result["error"] = e

        t = threading.Thread(target=send)
        t.start()
        assert half_sent.wait(10)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        t.join(30)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "error" not in result, result.get("error")
    assert result["r"].status_code == 200 and result["r"].json()["predictions"][0]["source"] == "slow.png"
    assert proc.returncode == 0, out
    assert "Shutting down" in out and "Finished server process" in out
