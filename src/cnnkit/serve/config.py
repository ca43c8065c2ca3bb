"""The service's settings, checked once: a wrong value is a ConfigError naming the flag."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from cnnkit.errors import ConfigError

API_KEY_ENV = "CNNKIT_API_KEY"
BACKENDS = ("eager", "channels-last", "bf16")  # cnnkit.deploy.backends' PyTorch ones that need no export


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    backend: str = "eager"
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads of the model (None: torch's default)
    max_batch: int = 32  # images in one forward pass
    max_wait_ms: float = 5.0  # how long the first request of a batch waits for others
    max_queue: int = 256  # images waiting for the model; beyond that 503 + Retry-After
    max_upload_mb: float = 16.0  # request body, whole
    max_images: int = 64  # images in one request
    timeout_s: float = 30.0  # from arrival to answer; beyond that 504
    # How long a thread may hold the GIL while another waits (Python's default: 5 ms). Each PyTorch op the model
    # thread finishes must take the GIL back from the event loop; beside a busy Python thread a batch-32 fastnet_s
    # forward took 168 ms at 5 ms instead of 7 alone, 18 ms at 0.2 (bench_serve_gil.md). Served at c=32, 0.2 ms gave
    # the most requests/s of 5, 0.5 and 0.2 (bench_serve_c32_gil*.md). Set for the process while the service runs.
    gil_switch_ms: float = 0.2
    api_key: str | None = None

    def __post_init__(self) -> None:
        checks = [
            ("--port", self.port, 0 <= self.port <= 65535, "an integer from 0 to 65535"),
            ("--workers", self.workers, self.workers >= 1, "at least 1"),
            ("--threads", self.threads, self.threads is None or self.threads >= 1, "at least 1"),
            ("--max-batch", self.max_batch, self.max_batch >= 1, "at least 1"),
            ("--max-wait-ms", self.max_wait_ms, self.max_wait_ms >= 0, "0 or more"),
            ("--max-queue", self.max_queue, self.max_queue >= 1, "at least 1"),
            ("--max-upload-mb", self.max_upload_mb, self.max_upload_mb > 0, "more than 0"),
            ("--max-images", self.max_images, self.max_images >= 1, "at least 1"),
            ("--timeout-s", self.timeout_s, self.timeout_s > 0, "more than 0"),
            ("--gil-switch-ms", self.gil_switch_ms, 0.01 <= self.gil_switch_ms <= 100, "from 0.01 to 100"),
        ]
        for flag, value, ok, what in checks:
            if not ok:
                raise ConfigError(f"{flag} must be {what}, got {value}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend {self.backend!r} is not available; choose one of: {', '.join(BACKENDS)}")
        if self.backend != "eager" and self.device != "cpu":
            raise ConfigError(f"--backend {self.backend} is a CPU backend; use --device cpu or --backend eager")
        if self.api_key is not None and not self.api_key.strip():
            raise ConfigError(f"--api-key (or ${API_KEY_ENV}) is empty; give a secret string or leave it unset")
        if not is_loopback(self.host) and not self.api_key:
            raise ConfigError(
                f"--host {self.host} is reachable from other machines: give --api-key KEY (or set ${API_KEY_ENV}) "
                "so the model is not exposed by accident, or bind 127.0.0.1"
            )

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 and "localhost"; anything else (0.0.0.0, a LAN address, a name) is not."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
