import pytest

from cnnkit.errors import ConfigError
from cnnkit.serve.config import ServeConfig, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_key(host):
    assert is_loopback(host)
    assert ServeConfig(host=host).api_key is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org"])
def test_other_addresses_need_a_key(host):
    with pytest.raises(ConfigError, match=r"--host .* --api-key KEY \(or set \$CNNKIT_API_KEY\)"):
        ServeConfig(host=host)
    assert ServeConfig(host=host, api_key="s3cret").host == host


@pytest.mark.parametrize(
    "key, value, flag",
    [
        ("max_batch", 0, "--max-batch"),
        ("max_queue", 0, "--max-queue"),
        ("timeout_s", 0, "--timeout-s"),
        ("max_upload_mb", -1, "--max-upload-mb"),
        ("port", 70000, "--port"),
        ("gil_switch_ms", 0, "--gil-switch-ms"),
    ],
)
def test_bad_values_name_the_flag(key, value, flag):
    with pytest.raises(ConfigError, match=f"{flag} must be"):
        ServeConfig(**{key: value})


def test_unknown_backend_and_empty_key():
    with pytest.raises(
        ConfigError, match="--backend 'tensorrt' is not available; choose one of: eager, channels-last, bf16"
    ):
        ServeConfig(backend="tensorrt")
    with pytest.raises(ConfigError, match="--api-key .* is empty"):
        ServeConfig(api_key="  ")


def test_upload_bytes():
    assert ServeConfig(max_upload_mb=0.5).max_upload_bytes == 512 * 1024


def test_cpu_backends_only_on_the_cpu():
    assert ServeConfig(backend="channels-last").backend == "channels-last"
    with pytest.raises(ConfigError, match="--backend bf16 is a CPU backend; use --device cpu or --backend eager"):
        ServeConfig(backend="bf16", device="cuda")
