"""End to end: `streamlit run` on localhost, driven by Debian's chromium through Python Playwright.

Uploads an image and sees its caption, the comparison table and the heatmap grid; runs two browser
sessions at once; saves a screenshot of each page (into a temporary folder; UPDATE_SCREENSHOTS=1: docs/screenshots/). No browser is downloaded:
the test uses /usr/bin/chromium (`apt-get install chromium`) and skips without it, unless
E2E_REQUIRED=1 (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Screenshots go to a temporary folder; UPDATE_SCREENSHOTS=1 writes the README's, docs/screenshots/
# (only with the built-in model, whose captions mean something).
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
TIMEOUT_MS = 90_000


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("E2E_REQUIRED") == "1":
        pytest.fail(reason + " (E2E_REQUIRED=1)")
    pytest.skip(reason)


_require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: install it with `apt-get install chromium`")
try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # pragma: no cover
    _require(False, "Python Playwright is not installed (pip install playwright)")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]
expect.set_options(timeout=TIMEOUT_MS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scene_png(index: int, size: int = 256) -> bytes:
    """An example scene, so the built-in model has something it knows to caption."""
    from captioner.world import EVAL_SEED_OFFSET, make_example

    image, _, _ = make_example(EVAL_SEED_OFFSET + index, size)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    from captioner.loading import BUILTIN_DIR
    from tests.tiny_models import make_tiny_visiongpt2_dir

    if (BUILTIN_DIR / "config.json").exists():
        model = "builtin"
    else:
        model = str(make_tiny_visiongpt2_dir(tmp_path_factory.mktemp("e2e-model")))
    port = _free_port()
    env = {**os.environ, "CAPTIONER_MODEL": model, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    log = open(tmp_path_factory.mktemp("e2e-log") / "streamlit.log", "w+")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.seek(0)
        output = log.read()
        log.close()
        assert "Traceback" not in output, output[-3000:]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def open_app(browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1100}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    expect(page.get_by_role("heading", name="Caption", exact=True)).to_be_visible()
    return page


def wait_idle(page: Page) -> None:
    """Wait until the script run finished (the running indicator is gone)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def upload_image(page: Page, name: str, data: bytes) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_text("Upload", exact=True).click()
    page.locator("input[type=file]").set_input_files({"name": name, "mimeType": "image/png", "buffer": data})
    expect_sidebar_image(page, name)
    expect(page.get_by_test_id("stMain").get_by_test_id("stImageCaption").first).to_have_text(name)
    wait_idle(page)


def expect_sidebar_image(page: Page, name: str) -> None:
    """The sidebar's current image (the last image captioned there) is `name`."""
    caption = page.get_by_test_id("stSidebar").get_by_test_id("stImageCaption").last
    expect(caption).to_contain_text(f"{name} · ")


def go_to(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    wait_idle(page)


def no_errors(page: Page) -> None:
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlertContentError")).to_have_count(0)


def screenshot(page: Page, name: str) -> None:
    from captioner.loading import BUILTIN_DIR

    if UPDATE_SCREENSHOTS and (BUILTIN_DIR / "config.json").exists():
        folder = SCREENSHOTS
    else:
        folder = Path(tempfile.gettempdir()) / "captioner-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    wait_idle(page)
    page.wait_for_timeout(500)  # let charts finish drawing
    page.screenshot(path=str(folder / f"{name}.png"))


def test_pages_in_a_real_browser(browser, app_url):
    page = open_app(browser, app_url)
    upload_image(page, "scene.png", _scene_png(2))
    main = page.get_by_test_id("stMain")
    expect(main.get_by_test_id("stMetric").first).to_be_visible()
    caption = main.locator("h3").nth(1).inner_text()
    assert caption.strip(), "the Caption page shows a caption"
    expect(main.locator("span[title^='p = ']").first).to_be_visible()
    no_errors(page)
    screenshot(page, "caption")

    go_to(page, "Compare")
    expect(main.get_by_role("heading", name="Side by side")).to_be_visible()
    expect(main.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(main.locator(".js-plotly-plot").first).to_be_visible()
    expect_sidebar_image(page, "scene.png")  # the image stayed selected
    no_errors(page)
    screenshot(page, "compare")

    go_to(page, "Explain")
    grid = main.locator(".st-key-heatmap-grid")
    expect(grid.locator("img").first).to_be_visible()
    assert grid.locator("img").count() >= 1
    no_errors(page)
    grid.scroll_into_view_if_needed()
    screenshot(page, "explain")

    go_to(page, "Batch")
    main.get_by_text("Add the example images").click()
    wait_idle(page)
    main.get_by_role("button", name="Caption the images").click()
    expect(main.get_by_test_id("stMetric").first).to_be_visible()
    expect(main.get_by_test_id("stDataFrame").first).to_be_visible()
    no_errors(page)
    screenshot(page, "batch")


def test_two_sessions_at_once(browser, app_url):
    first, second = open_app(browser, app_url), open_app(browser, app_url)
    images = {first: ("one.png", _scene_png(3)), second: ("two.png", _scene_png(4))}
    for page, (name, data) in images.items():
        page.get_by_test_id("stSidebar").get_by_text("Upload", exact=True).click()
        page.locator("input[type=file]").set_input_files({"name": name, "mimeType": "image/png", "buffer": data})
    for page in images:  # both sessions work on the model at the same time: each sees its own image
        go_to(page, "Compare")
    for page, (name, _) in images.items():
        main = page.get_by_test_id("stMain")
        expect_sidebar_image(page, name)
        expect(main.get_by_test_id("stDataFrame").first).to_be_visible()
        no_errors(page)
    for page, name in {first: "two.png", second: "one.png"}.items():
        expect(page.get_by_test_id("stSidebar").get_by_text(f"{name} · ")).to_have_count(0)
