"""Running the app with uvicorn: one process (the model loaded here), or N worker processes
(each loads the model through `worker_app`). SIGINT / SIGTERM stop accepting connections,
let the requests in flight finish (up to --timeout-s), and the command exits 0."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from typing import Any

from cnnkit.serve.config import ServeConfig

_ENV = "CNNKIT_SERVE_WORKER"  # the model path and config, for worker processes


def build(model_path: str | os.PathLike, config: ServeConfig):
    import torch

    from cnnkit.serve.app import create_app
    from cnnkit.serve.model import ServedModel

    if config.threads is not None:
        torch.set_num_threads(config.threads)

    return create_app(ServedModel.load(model_path, device=config.device, backend=config.backend), config)


def worker_app():
    """uvicorn factory for --workers N: each worker process builds its own app and model."""
    spec = json.loads(os.environ[_ENV])
    return build(spec.pop("model"), ServeConfig(**spec))


def _uvicorn_config(app, config: ServeConfig, **kw):
    import uvicorn

    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=int(config.timeout_s) + 5,  # in-flight requests end by --timeout-s anyway
        limit_concurrency=None,
        server_header=False,
        **kw,
    )


def serve(model_path: str | os.PathLike, config: ServeConfig) -> int:
    import uvicorn

    if config.workers > 1:
        os.environ[_ENV] = json.dumps({"model": str(model_path), **config.__dict__})
        uvicorn.run(
            "cnnkit.serve.server:worker_app",
            factory=True,
            workers=config.workers,
            host=config.host,
            port=config.port,
            access_log=False,
            timeout_graceful_shutdown=int(config.timeout_s) + 5,
            server_header=False,
        )
        return 0
    app = build(model_path, config)
    server = _draining_server(_uvicorn_config(app, config))
    url = f"http://{config.host if ':' not in config.host else f'[{config.host}]'}:{config.port}/"
    print(f"cnnkit serve: {model_path} on {url} (docs: {url}docs); Ctrl-C to stop", file=sys.stderr, flush=True)
    server.run()
    return 0 if server.started else 1


def _draining_server(config: Any) -> Any:
    """A uvicorn.Server whose signal handling drains and returns (uvicorn re-raises the signal after a
    graceful shutdown, which would make the exit status 130/143 instead of 0)."""
    import uvicorn  # here: uvicorn is imported only when serving

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for s, h in previous.items():
                    signal.signal(s, h)

    return Server(config)
