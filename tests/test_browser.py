"""The page in a real browser: headless chromium (Debian's, not Playwright's download) clicks an
example, presses Compare and checks that every plot rendered, then checks that bad input shows
an error toast and leaves the server answering.

Skipped where chromium or playwright is missing, unless ``SHAPEDEMO_BROWSER_REQUIRED=1`` (CI),
which turns the skip into a failure. ``SHAPEDEMO_UPDATE_SCREENSHOT=1`` copies the full-page
screenshot into ``assets/screenshot.png`` for the README; otherwise it stays in pytest's tmp.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from shapedemo import ui
from test_app import app_env, app_url  # noqa: F401  (fixtures: tmp cache, the launched app)

pytestmark = [
    pytest.mark.browser,
    # gradio's queue calls pandas APIs that pandas 3 deprecates: theirs to fix, not ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
PLOT_IDS = ["waste", "chunks", "latency", "costs", "fidelity", "lengths", "similarity"]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-background-networking", "--disable-gpu", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
COMPARE_TIMEOUT_MS = 180_000  # a cold comparison compiles a dozen shapes on 2 cores


def chromium_path() -> str | None:
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else shutil.which("chromium")


def unavailable(reason: str) -> None:
    """Skip, or fail where CI says the browser tests must run."""
    if os.environ.get("SHAPEDEMO_BROWSER_REQUIRED") == "1":
        pytest.fail(f"{reason}, and SHAPEDEMO_BROWSER_REQUIRED=1", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        unavailable("no chromium at /usr/bin/chromium or on PATH (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(app_url)
    expect(compare_button(page)).to_be_visible(timeout=60_000)
    yield page
    page.close()


def compare_button(page):
    return page.get_by_role("button", name="Compare", exact=True)


def test_example_then_compare_renders_every_plot(page, tmp_path):
    from playwright.sync_api import expect

    textbox = page.locator("#texts textarea")
    textbox.fill("a text the example replaces")
    page.get_by_role("button", name="a few very long, a few very short").click()
    expect(textbox).to_have_value(ui.EXAMPLE_TEXTS[1])
    compare_button(page).click()
    table = page.locator("#results")
    expect(table).to_contain_text("buckets-partition", timeout=COMPARE_TIMEOUT_MS)
    for key in PLOT_IDS:
        expect(page.locator(f"#plot-{key} .js-plotly-plot svg.main-svg").first).to_be_visible(timeout=30_000)
    for name in ("dynamic", "padding", "buckets", "partition", "packing"):
        expect(table).to_contain_text(name)
        expect(page.locator("#plot-latency")).to_contain_text(name)  # one box per strategy
    expect(page.locator("#plot-similarity")).to_contain_text("Short one.")  # the example's texts
    expect(page.locator("#summary")).to_contain_text("5 sequences")
    expect(page.locator("#code")).to_contain_text("import openvino")
    expect(page.locator(".toast-body.error")).to_have_count(0)
    page.wait_for_timeout(500)  # let plotly finish laying out before the picture
    shot = tmp_path / "screenshot.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    if os.environ.get("SHAPEDEMO_UPDATE_SCREENSHOT") == "1":
        ASSETS.mkdir(exist_ok=True)
        shutil.copyfile(shot, ASSETS / "screenshot.png")
        top = {"x": 0, "y": 0, "width": 1400, "height": 900}  # the first screen, whatever the scroll
        page.screenshot(path=str(ASSETS / "screenshot-top.png"), full_page=True, clip=top)


def test_empty_text_shows_an_error_and_the_server_answers_after(page, app_url):
    from playwright.sync_api import expect

    page.locator("#texts textarea").fill("")
    compare_button(page).click()
    toast = page.locator(".toast-body.error")
    expect(toast).to_be_visible(timeout=30_000)
    expect(toast).to_contain_text("no text given")
    expect(toast).not_to_contain_text("Traceback")
    with urllib.request.urlopen(app_url, timeout=30) as response:
        assert response.status == 200
    page.locator("#texts textarea").fill("hello world")
    page.get_by_role("button", name="Preview plans").click()
    expect(page.locator("#summary")).to_contain_text("Plans for 1 sequence,", timeout=60_000)
