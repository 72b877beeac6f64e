"""End to end: the Models page comparing three models (built-in, a VisionGPT2 file, a tiny HF folder) in Chromium.

Opens a link that names the three models (the URL state), at 1440 px and at a phone's 390 px, and saves a
screenshot of each into <tmp>/walk-compare/. Uses test_browser.py's server and browser (no browser download).
"""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path

import pytest

from tests.e2e.test_browser import browser, expect, new_page, no_errors, streamlit_server, wait_idle  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]
WALK = Path(tempfile.gettempdir()) / "walk-compare"


@pytest.fixture(scope="module")
def three_models(tmp_path_factory) -> list[str]:
    from captioner.loading import BUILTIN_DIR
    from tests.tiny_models import make_tiny_hf_dir, make_tiny_visiongpt2_dir

    if not (BUILTIN_DIR / "config.json").exists():
        pytest.skip("the built-in model is not shipped in this checkout")
    file = make_tiny_visiongpt2_dir(tmp_path_factory.mktemp("e2e-vgpt2")) / "captioner.pt"
    folder = make_tiny_hf_dir(tmp_path_factory.mktemp("e2e-hf"))
    return ["builtin", str(file), str(folder)]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    with streamlit_server("builtin", tmp_path_factory.mktemp("e2e-models-log")) as url:
        yield url


@pytest.mark.parametrize("width", [1440, 390])
def test_three_models_side_by_side(browser, three_models, server_url, width):  # noqa: F811
    link = "/models?" + urllib.parse.urlencode({"models": three_models}, doseq=True)
    page = new_page(browser, width=width, height=1000)
    page.goto(server_url + link)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="Compare models")).to_be_visible()
    expect(main.get_by_role("heading", name="Side by side")).to_be_visible()
    wait_idle(page)
    expect(main.locator(".js-plotly-plot")).to_have_count(3)  # one chart per model
    table = main.get_by_test_id("stTable").first
    for spec in three_models:
        expect(table).to_contain_text(spec)
    expect(table).to_contain_text("checkpoint file")
    expect(table).to_contain_text("model folder")
    expect(main.get_by_test_id("stTextArea").locator("textarea")).to_have_value("\n".join(three_models))
    no_errors(page)
    widths = main.evaluate("e => [e.scrollWidth, e.clientWidth]")
    assert widths[0] <= widths[1] + 1, f"the page scrolls sideways at {width} px: {widths}"
    WALK.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(800)  # let the charts finish drawing
    for part, target in (("top", None), ("charts", main.locator(".js-plotly-plot").first), ("table", table)):
        if target is not None:
            target.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
        page.screenshot(path=str(WALK / f"models-{width}-{part}.png"))
