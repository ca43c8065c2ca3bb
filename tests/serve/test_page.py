"""The page `GET /` in a real browser: headless Chromium driven by Selenium through Debian's
chromedriver, against a uvicorn server on loopback. Skipped only when Chromium is absent."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from tests.serve.test_serve_commands import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless Chromium and chromedriver not installed (Debian packages chromium, chromium-driver)",
)


def mnist_digit(path: Path, index: int = 0) -> Path:
    """A real test digit from the bundled mnist-mini, enlarged to 112x112."""
    from cnnkit.data.idx import read_idx
    from cnnkit.data.mnist import mnist_mini_dir

    images = read_idx(mnist_mini_dir() / "t10k-images-idx3-ubyte.gz")
    Image.fromarray(np.asarray(images[index], np.uint8)).resize((112, 112), Image.Resampling.NEAREST).save(path)
    return path


@pytest.fixture
def server(make_app):
    import uvicorn

    port = free_port()
    config = uvicorn.Config(make_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise AssertionError("test server not ready in 60 s")
    yield url
    srv.should_exit = True
    thread.join(30)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1100,1000",
        "--disable-extensions",
        "--no-first-run",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def test_page_predicts_explains_and_rejects_in_a_browser(server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    digit = mnist_digit(tmp_path / "digit.png")
    text = tmp_path / "notes.txt"
    text.write_text("not an image\n")
    api = httpx.post(server + "/v1/predict", files=[("files", ("digit.png", digit.read_bytes(), "image/png"))]).json()[
        "predictions"
    ][0]

    browser.get(server + "/")
    wait.until(lambda d: "Model:" in d.find_element(By.ID, "model").text)
    assert "architecture" in browser.find_element(By.ID, "model").text

    browser.find_element(By.ID, "files").send_keys(str(digit))
    card = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".card.done[data-file='digit.png']")))
    shown = [li.text.split("\n") for li in card.find_elements(By.CSS_SELECTOR, ".bars li")]
    assert card.get_attribute("data-label") == api["label"] == shown[0][0]
    assert len(shown) == min(5, 10)
    assert shown[0][-1] == f"{api['probability'] * 100:.1f}%"
    assert "answered in" in card.find_element(By.CSS_SELECTOR, ".meta").text
    browser.save_screenshot(str(tmp_path / "page_prediction.png"))

    cam = card.find_element(By.CSS_SELECTOR, "button.cam")
    cam.click()
    wait.until(lambda d: cam.get_attribute("aria-pressed") == "true")
    img = card.find_element(By.CSS_SELECTOR, "img.pic")
    assert img.get_attribute("alt") == "Grad-CAM overlay" and img.get_attribute("src").startswith("blob:")
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 224)
    browser.save_screenshot(str(tmp_path / "page_gradcam.png"))
    cam.click()
    assert cam.get_attribute("aria-pressed") == "false" and img.get_attribute("alt") == "uploaded image"

    browser.find_element(By.ID, "files").send_keys(str(text))
    bad = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".card.error[data-file='notes.txt']")))
    msg = bad.find_element(By.CSS_SELECTOR, "[role=alert]").text
    assert msg.startswith("Rejected: files[0] (notes.txt): not a readable image")

    browser.set_window_size(390, 844)  # a phone: nothing wider than the screen
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
    browser.save_screenshot(str(tmp_path / "page_phone.png"))

    logs = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    unexpected = [
        e for e in logs if not ("/v1/predict" in e["message"] and "415" in e["message"])
    ]  # the rejected upload's own 415
    assert unexpected == [], unexpected
    shots = sorted(p.name for p in tmp_path.glob("page_*.png"))
    assert shots == ["page_gradcam.png", "page_phone.png", "page_prediction.png"]
    out = Path(os.environ.get("CNNKIT_SCREENSHOTS", tmp_path))  # keep them: CNNKIT_SCREENSHOTS=DIR
    if out != tmp_path:
        out.mkdir(parents=True, exist_ok=True)
        for s in shots:
            shutil.copy(tmp_path / s, out / s)
