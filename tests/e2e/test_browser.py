"""End to end: `streamlit run` on localhost, driven by Debian's chromium through Python Playwright.

Uploads an image and sees its caption, the comparison table and the heatmap grid; runs two browser
sessions at once; opens a shared /compare link on a fresh server; looks at the Caption page 760 px
wide; reads the heatmaps at 390 px in caption order; clicks a gallery thumbnail; uploads a TIFF and a
broken file; stops a running batch. Saves a
screenshot of each page (into a temporary folder; UPDATE_SCREENSHOTS=1: docs/screenshots/). No
browser is downloaded: the test uses /usr/bin/chromium (`apt-get install chromium`) and skips
without it, unless E2E_REQUIRED=1 (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Screenshots go to a temporary folder; UPDATE_SCREENSHOTS=1 writes the README's, docs/screenshots/
# (only with the built-in model, whose captions mean something).
UPDATE_SCREENSHOTS = os.environ.get("UPDATE_SCREENSHOTS") == "1"
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
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

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
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


def _model_spec(tmp_path_factory) -> str:
    from captioner.loading import BUILTIN_DIR
    from tests.tiny_models import make_tiny_visiongpt2_dir

    if (BUILTIN_DIR / "config.json").exists():
        return "builtin"
    return str(make_tiny_visiongpt2_dir(tmp_path_factory.mktemp("e2e-model")))


@contextlib.contextmanager
def streamlit_server(model: str, log_dir: Path) -> Iterator[str]:
    """A fresh `streamlit run` process; yields its URL; no traceback may reach its log."""
    port = _free_port()
    env = {**os.environ, "CAPTIONER_MODEL": model, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    log = open(log_dir / f"streamlit-{port}.log", "w+")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
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
def model_spec(tmp_path_factory) -> str:
    return _model_spec(tmp_path_factory)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, model_spec):
    with streamlit_server(model_spec, tmp_path_factory.mktemp("e2e-log")) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


def new_page(browser, width: int = 1400, height: int = 1100) -> Page:
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return page


def open_app(browser, url: str, width: int = 1400) -> Page:
    page = new_page(browser, width)
    page.goto(url)
    expect(page.get_by_role("heading", name="Caption", exact=True)).to_be_visible()
    wait_idle(page)
    return page


def wait_idle(page: Page) -> None:
    """Wait until the script run finished (the running indicator is gone)."""
    page.wait_for_timeout(300)
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)


def sidebar(page: Page):
    return page.get_by_test_id("stSidebar")


def upload_image(page: Page, name: str, data: bytes, mime: str = "image/png") -> None:
    sidebar(page).get_by_text("Upload", exact=True).click()
    wait_idle(page)
    sidebar(page).locator("input[type=file]").set_input_files({"name": name, "mimeType": mime, "buffer": data})
    wait_idle(page)


def expect_sidebar_image(page: Page, name: str) -> None:
    """The sidebar's current image (the last image captioned there) is `name`."""
    caption = sidebar(page).get_by_test_id("stImageCaption").last
    expect(caption).to_contain_text(f"{name} · ")


def go_to(page: Page, title: str) -> None:
    sidebar(page).locator(".st-key-page-links").get_by_role("link", name=title).click()
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
    page.wait_for_timeout(800)  # let charts finish drawing
    page.screenshot(path=str(folder / f"{name}.png"))


def query(page: Page) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)


def query_when(page: Page, settled, timeout_s: float = 30.0) -> dict[str, list[str]]:
    """The URL's query once `settled(query)` holds, or as it is after `timeout_s`: the app writes the
    URL at the end of its run, which on a loaded machine can come after the page looks idle."""
    deadline = time.monotonic() + timeout_s
    while not settled(q := query(page)) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    return q


def test_pages_in_a_real_browser(browser, app_url):
    page = open_app(browser, app_url)
    main = page.get_by_test_id("stMain")
    screenshot(page, "caption")
    upload_image(page, "scene.png", _scene_png(2))
    expect_sidebar_image(page, "scene.png")
    expect(main.get_by_test_id("stImageCaption").first).to_have_text("scene.png")
    expect(main.get_by_test_id("stMetric").first).to_be_visible()
    assert main.locator("h3").nth(1).inner_text().strip(), "the Caption page shows a caption"
    expect(main.locator("span[title^='p = ']").first).to_be_visible()
    no_errors(page)

    go_to(page, "Compare")
    expect(main.get_by_role("heading", name="Side by side")).to_be_visible()
    expect(main.get_by_test_id("stTable").first).to_be_visible()
    expect(main.locator(".js-plotly-plot").first).to_be_visible()
    expect_sidebar_image(page, "scene.png")  # the image stayed selected
    no_errors(page)

    go_to(page, "Explain")
    grid = main.locator(".st-key-heatmap-grid")
    expect(grid.locator("img").first).to_be_visible()
    expect(main.locator(".js-plotly-plot")).to_have_count(2)
    no_errors(page)

    page2 = open_app(browser, app_url)  # the screenshots show the examples, as a new user sees them
    go_to(page2, "Compare")
    screenshot(page2, "compare")
    go_to(page2, "Explain")
    page2.get_by_test_id("stMain").locator(".st-key-heatmap-grid").scroll_into_view_if_needed()
    screenshot(page2, "explain")
    go_to(page2, "Batch")
    main2 = page2.get_by_test_id("stMain")
    main2.get_by_text("Add the example images").click()
    wait_idle(page2)
    main2.get_by_role("button", name=re.compile(r"^Caption \d+ images$")).click()
    expect(main2.get_by_test_id("stMetric").first).to_be_visible()
    expect(main2.get_by_test_id("stDataFrame").first).to_be_visible()
    no_errors(page2)
    screenshot(page2, "batch")


def test_two_sessions_at_once(browser, app_url):
    first, second = open_app(browser, app_url), open_app(browser, app_url)
    images = {first: ("one.png", _scene_png(3)), second: ("two.png", _scene_png(4))}
    for page, (name, data) in images.items():
        sidebar(page).get_by_text("Upload", exact=True).click()
        sidebar(page).locator("input[type=file]").set_input_files({"name": name, "mimeType": "image/png", "buffer": data})
    for page in images:  # both sessions work on the model at the same time: each sees its own image
        go_to(page, "Compare")
    for page, (name, _) in images.items():
        expect_sidebar_image(page, name)
        expect(page.get_by_test_id("stMain").get_by_test_id("stTable").first).to_be_visible()
        no_errors(page)
    for page, name in {first: "two.png", second: "one.png"}.items():
        expect(sidebar(page).get_by_text(f"{name} · ")).to_have_count(0)


def test_shared_compare_link_on_a_fresh_server(browser, model_spec, tmp_path_factory):
    """A link from one session, opened as the very first request of a new server."""
    from captioner.app.gallery import example_images

    example = example_images()[2].name
    link = f"/compare?image={example}&compare_beams=6&compare_top_k=20"
    with streamlit_server(model_spec, tmp_path_factory.mktemp("e2e-fresh")) as url:
        page = new_page(browser)
        page.goto(url + link)
        main = page.get_by_test_id("stMain")
        expect(main.get_by_role("heading", name="Compare decoding strategies")).to_be_visible()
        nav = sidebar(page).locator(".st-key-page-links")
        expect(nav.get_by_role("link", name="Caption")).to_be_visible()  # the app's navigation, not the folder's
        expect(sidebar(page).get_by_role("link", name="streamlit app")).to_have_count(0)
        expect(sidebar(page).get_by_role("heading", name="Model")).to_be_visible()
        expect_sidebar_image(page, example)
        wait_idle(page)
        expect(main.get_by_role("slider", name="Beams").first).to_have_value("6")
        table = main.get_by_test_id("stTable").first
        expect(table).to_contain_text("beam (6)")
        expect(table).to_contain_text("top-k (20)")
        no_errors(page)
        page.reload()  # a reload keeps the view
        expect(main.get_by_test_id("stTable").first).to_contain_text("beam (6)")
        expect_sidebar_image(page, example)
        assert query_when(page, lambda q: q.get("compare_beams") == ["6"])["compare_beams"] == ["6"]


def test_caption_page_figures_whole_at_760_px(browser, app_url):
    page = open_app(browser, app_url, width=760)
    figures = page.locator(".st-key-caption-figures")
    figures.scroll_into_view_if_needed()
    values = figures.get_by_test_id("stMetricValue")
    expect(values).to_have_count(5)
    for value in values.all():
        scroll_width, client_width, right = value.evaluate("e => [e.scrollWidth, e.clientWidth, e.getBoundingClientRect().right]")
        assert scroll_width <= client_width, value.inner_text()  # not cut ("146 ...")
        assert right <= 760, value.inner_text()
        assert "…" not in value.inner_text()
    no_errors(page)


def test_heatmaps_in_caption_order_on_a_phone(browser, app_url):
    """At 390 px the maps read in the caption's order, left to right and top to bottom (columns filled
    round-robin would stack as the 1st, 7th, 2nd... word)."""
    page = new_page(browser, width=390, height=844)
    page.goto(app_url + "/explain")
    grid = page.locator(".st-key-heatmap-grid")
    expect(grid.get_by_test_id("stImageCaption").first).to_be_visible()
    wait_idle(page)
    boxes = [(c.bounding_box(), c.inner_text()) for c in grid.get_by_test_id("stImageCaption").all()]
    read = [text for box, text in sorted(boxes, key=lambda bt: (round(bt[0]["y"]), bt[0]["x"]))]
    picker = page.get_by_test_id("stRadio").filter(has_text="Show one word large")
    options = picker.get_by_test_id("stMarkdownContainer").all()
    words = [o.inner_text().split(". ", 1)[1] for o in options if ". " in o.inner_text()]
    assert len(read) > 6 and read == words  # more words than the old grid's 6 columns, all in order
    no_errors(page)


@pytest.mark.parametrize("method", ["attention", "relevance", "gradcam", "occlusion"])
def test_each_explanation_method_and_hiding_a_region_on_a_phone(browser, app_url, method):
    page = new_page(browser, width=390, height=844)
    page.goto(app_url + f"/explain?method={method}")
    main = page.get_by_test_id("stMain")
    expect(main.locator(".st-key-heatmap-grid img").first).to_be_visible(timeout=240_000)
    expect(main.get_by_text("How far to trust it")).to_be_visible()
    wait_idle(page)
    for cell in ("1", "2"):
        main.get_by_test_id("stButtonGroup").get_by_role("button", name=cell, exact=True).first.click()
        wait_idle(page)
    expect(main.get_by_text("With the cells hidden")).to_be_visible(timeout=120_000)
    expect(main.get_by_text("2 cells hidden (mean colour)")).to_be_visible()
    assert query(page)["method"] == [method] if method != "attention" else "method" not in query(page)
    no_errors(page)


def test_clicking_a_gallery_thumbnail_selects_it(browser, app_url):
    from captioner.app.gallery import example_images

    page = open_app(browser, app_url)
    thumbnail = sidebar(page).get_by_role("button", name="Example 4")
    thumbnail.click()
    wait_idle(page)
    expect_sidebar_image(page, example_images()[3].name)
    expect(page.get_by_test_id("stMain").get_by_test_id("stImageCaption").first).to_have_text(example_images()[3].name)
    expect(thumbnail).to_have_attribute("data-testid", "stBaseButton-primary")  # highlighted
    thumbnails = sidebar(page).get_by_role("button", name=re.compile(r"^Example \d+$"))
    expect(thumbnails).to_have_count(len(example_images()))
    assert [b.get_attribute("data-testid") for b in thumbnails.all()].count("stBaseButton-primary") == 1
    assert query_when(page, lambda q: "image" in q)["image"] == [example_images()[3].name]


def test_back_restores_the_previous_view(browser, app_url):
    """Each change is a step in the browser's history; Back goes to the view before it."""
    from captioner.app.gallery import example_images

    page = open_app(browser, app_url)
    sidebar(page).get_by_role("button", name="Example 3").click()
    wait_idle(page)
    go_to(page, "Compare")
    assert query_when(page, lambda q: "image" in q)["image"] == [example_images()[2].name]  # the link carried the image
    beams = page.get_by_test_id("stMain").get_by_role("slider", name="Beams").first
    before = beams.input_value()
    beams.focus()
    page.keyboard.press("ArrowRight")
    wait_idle(page)
    assert query_when(page, lambda q: "compare_beams" in q)["compare_beams"] == [str(int(before) + 1)]
    page.go_back()
    wait_idle(page)
    expect(beams).to_have_value(before)
    assert "compare_beams" not in query_when(page, lambda q: "compare_beams" not in q)
    page.go_back()
    wait_idle(page)
    expect(page.get_by_role("heading", name="Caption", exact=True)).to_be_visible()
    expect_sidebar_image(page, example_images()[2].name)
    no_errors(page)


def test_uploads_tiff_and_a_refused_file(browser, app_url):
    from PIL import Image

    page = open_app(browser, app_url)
    buf = io.BytesIO()
    Image.new("RGB", (80, 60), "navy").save(buf, format="TIFF")
    upload_image(page, "scan.tiff", buf.getvalue(), "image/tiff")  # the uploader takes .tiff
    expect_sidebar_image(page, "scan.tiff")
    no_errors(page)
    upload_image(page, "notes.png", b"this is not an image")
    errors = page.get_by_test_id("stAlertContentError")
    expect(errors).to_have_count(1)  # the error is shown once, not twice
    expect(errors).to_contain_text("Could not use notes.png")
    expect(sidebar(page).get_by_test_id("stFileUploaderFile")).to_have_count(0)  # the refused file is not shown
    expect_sidebar_image(page, "scan.tiff")  # the previous image is still the one in use


def test_stop_a_running_batch(browser, app_url):
    """Stop keeps the rows done so far and offers the rest."""
    from captioner.world import EVAL_SEED_OFFSET, make_example

    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as z:
        for i in range(150):
            image, _, _ = make_example(EVAL_SEED_OFFSET + 500 + i, 64)
            png = io.BytesIO()
            image.save(png, format="PNG")
            z.writestr(f"scene_{i:03d}.png", png.getvalue())
    page = open_app(browser, app_url)
    go_to(page, "Batch")
    main = page.get_by_test_id("stMain")
    main.locator("input[type=file]").set_input_files(
        {"name": "scenes.zip", "mimeType": "application/zip", "buffer": zbuf.getvalue()}
    )
    wait_idle(page)
    main.get_by_role("button", name="Caption 150 images").click()
    expect(main.get_by_test_id("stProgress")).to_contain_text(re.compile(r"\b[1-9]\d*/150"))  # some are done
    main.get_by_role("button", name="Stop").click()
    wait_idle(page)
    expect(main.get_by_text(re.compile(r"\d+ of 150 images are captioned"))).to_be_visible()
    expect(main.get_by_role("button", name=re.compile(r"^Caption the other \d+ images$"))).to_be_enabled()
    expect(main.get_by_test_id("stDataFrame")).to_be_visible()
    no_errors(page)


def test_questioning_a_caption_from_shared_links(browser, app_url):
    """A link restores a forced prefix (both captions shown), beam search draws its tree, and an added
    Compare row of a new method (diverse beam search) comes back from its link."""
    import json as _json
    from urllib.parse import quote

    page = new_page(browser)
    page.goto(app_url + "/explain?prefix=2,5")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Force a word")).to_be_visible(timeout=240_000)
    expect(main.get_by_text("Original", exact=True)).to_be_visible()
    expect(main.get_by_text(re.compile("^Forced: "))).to_be_visible()
    assert query(page)["prefix"] == ["2,5"]
    no_errors(page)

    page.goto(app_url + "/?strategy=beam&num_beams=3")
    tree = main.get_by_text("The beam tree: what beam search kept and what it threw away")
    expect(tree).to_be_visible(timeout=240_000)
    tree.click()
    wait_idle(page)
    expect(main.locator(".js-plotly-plot").first).to_be_visible()
    no_errors(page)

    row = _json.dumps(
        {"label": "diverse", "strategy": "group_beam", "num_beams": 4, "num_beam_groups": 2, "diversity_penalty": 1.0},
        separators=(",", ":"),
    )
    page.goto(app_url + "/compare?compare_add=" + quote(row))
    expect(main.get_by_role("cell", name="diverse", exact=True).first).to_be_visible(timeout=240_000)
    no_errors(page)
