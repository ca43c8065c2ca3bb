import pytest


@pytest.fixture(autouse=True)
def _private_decode_cache(tmp_path, monkeypatch):
    """Each data test gets its own decode cache folder (never the user's ~/.cache)."""
    monkeypatch.setenv("CNNKIT_CACHE", str(tmp_path / "decode-cache"))
