"""CLI verb `cnnkit serve` (imports stay light here: FastAPI, uvicorn and torch load when it runs)."""

from __future__ import annotations

import argparse
import os

from cnnkit.ranges import Range, flag_type
from cnnkit.serve.config import BACKENDS


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a model over HTTP: a web page, /v1/predict, dynamic batching, metrics",
        description="An HTTP prediction service (FastAPI + uvicorn) for a run folder, a checkpoint or whatever "
        "`cnnkit.load` reads. Open http://HOST:PORT/ for the page, /docs for the API. Binding an address other "
        "than loopback needs --api-key (or $CNNKIT_API_KEY).",
    )
    p.add_argument(
        "model", metavar="RUN|CKPT|ONNX", help="a run folder (its best.ckpt), a checkpoint, or an exported model"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument(
        "--port", type=flag_type(Range(0, 65535)), default=8000, help="TCP port (default 8000; 0: any free port)"
    )
    p.add_argument(
        "--workers",
        type=flag_type(Range(1)),
        default=1,
        help="uvicorn worker processes, each with its own copy of the model (default 1)",
    )
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="eager",
        help="how the model runs on the CPU (default eager PyTorch; channels-last: NHWC, faster convolutions on "
        "oneDNN; bf16: channels-last under bf16 autocast, only on CPUs with native bf16)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    p.add_argument(
        "--threads",
        type=flag_type(Range(1)),
        default=None,
        help="PyTorch threads for the model (default on the CPU: the cores other processes leave free, re-measured every few seconds, as in training)",
    )
    p.add_argument(
        "--max-batch",
        type=flag_type(Range(1)),
        default=32,
        help="most images in one forward pass (default 32; 1: no batching)",
    )
    p.add_argument(
        "--max-wait-ms",
        type=flag_type(Range(0.0), float),
        default=5.0,
        help="how long a request waits for others to share its batch (default 5)",
    )
    p.add_argument(
        "--max-queue",
        type=flag_type(Range(1)),
        default=256,
        help="images waiting for the model before new requests get 503 (default 256)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=flag_type(Range(0.0, lo_open=True), float),
        default=16.0,
        help="largest request body in MB (default 16); larger gets 413",
    )
    p.add_argument("--max-images", type=flag_type(Range(1)), default=64, help="most images in one request (default 64)")
    p.add_argument(
        "--timeout-s",
        type=flag_type(Range(0.0, lo_open=True), float),
        default=30.0,
        help="a request not answered in this time gets 504 (default 30)",
    )
    p.add_argument(
        "--gil-switch-ms",
        type=flag_type(Range(0.01, 100.0), float),
        default=0.2,
        help="longest a thread holds Python's GIL while another waits (default 0.2; Python's own: 5). Shorter lets "
        "the model's thread resume between operations while the event loop is busy",
    )
    p.add_argument(
        "--api-key",
        default=None,
        help="clients must send `Authorization: Bearer KEY` (default $CNNKIT_API_KEY; required off loopback)",
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    from cnnkit.serve.config import API_KEY_ENV, ServeConfig
    from cnnkit.serve.server import serve

    config = ServeConfig(
        host=args.host,
        port=args.port,
        workers=args.workers,
        backend=args.backend,
        device=args.device,
        threads=args.threads,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_queue=args.max_queue,
        max_upload_mb=args.max_upload_mb,
        max_images=args.max_images,
        timeout_s=args.timeout_s,
        gil_switch_ms=args.gil_switch_ms,
        api_key=args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None,
    )
    return serve(args.model, config)
