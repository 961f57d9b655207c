"""The page in a real browser: headless chromium (Debian's, not Playwright's download) clicks an
example, presses Compare and checks that every plot rendered, then checks that bad input shows
an error toast and leaves the server answering.

Then the layout, at a phone's viewport (390x844) and a laptop's (1400x900): after a comparison
the page does not scroll sideways, no results-table header is taller than two lines, every
chart is inside the screen's width and the page's blocks do not overlap; at 1400x900 the Compare
button is on the first screen; the Deploy tab's "Find the shapes" draws its chart.

Skipped where chromium or playwright is missing, unless ``SHAPEDEMO_BROWSER_REQUIRED=1`` (CI),
which turns the skip into a failure. ``SHAPEDEMO_UPDATE_SCREENSHOT=1`` writes the README's
pictures into ``assets/`` (``screenshot.png``: 1400 px, the whole page after a comparison;
``screenshot-top.png``: its first screen; ``screenshot-phone.png``: 390 px, the results);
otherwise they stay in pytest's tmp.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from shapedemo.app import page as ui
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
COMPARE_TIMEOUT_MS = 600_000  # a cold comparison compiles a dozen shapes and times auto's cost table on 2 busy cores


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


# ------------------------------------------------------------------------------ the layout
VIEWPORTS = [(390, 844), (1400, 900)]  # a phone, a laptop
SHAPES_TIMEOUT_MS = 120_000  # the Deploy tab's tuning, not timed on the device: planning only
MAX_SCREENSHOT_BYTES = 600_000

LAYOUT = """() => {
  const width = window.innerWidth;
  const shown = e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const lines = s => {
    const cs = getComputedStyle(s);
    const line = parseFloat(cs.lineHeight) || 1.2 * parseFloat(cs.fontSize);
    return Math.round(s.getBoundingClientRect().height / line);
  };
  const box = e => { const r = e.getBoundingClientRect(); return {left: r.left, right: r.right, top: r.top + scrollY, bottom: r.bottom + scrollY}; };
  const blocks = [...document.querySelectorAll('#summary, #actions, #results, #code, [id^=plot-]')].filter(shown);
  const overlaps = [];
  blocks.forEach((a, i) => blocks.slice(i + 1).forEach(b => {
    const p = box(a), q = box(b);
    const x = Math.min(p.right, q.right) - Math.max(p.left, q.left), y = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
    if (x > 1 && y > 1) overlaps.push(a.id + ' / ' + b.id);
  }));
  return {
    width,
    scrollWidth: document.scrollingElement.scrollWidth,
    headerLines: Object.fromEntries([...document.querySelectorAll('#results th .header')].filter(shown).map(s => [s.textContent.trim(), lines(s)])),
    plotsOutside: [...document.querySelectorAll('.js-plotly-plot svg.main-svg')].filter(shown)
      .map(s => [s.closest('[id]').id, s.getBoundingClientRect()])
      .filter(([, r]) => r.left < -0.5 || r.right > width + 0.5).map(([id, r]) => `${id}: ${r.left}..${r.right}`),
    overlaps,
  };
}"""


def check_layout(page, width: int) -> dict:
    """The page's layout rules at this viewport; returns the measurements for the message."""
    got = page.evaluate(LAYOUT)
    assert got["width"] == width
    assert got["scrollWidth"] <= width, f"the page scrolls sideways: {got}"
    assert got["plotsOutside"] == [], f"charts wider than the screen: {got['plotsOutside']}"
    assert got["overlaps"] == [], f"blocks on top of each other: {got['overlaps']}"
    return got


@pytest.mark.parametrize(("width", "height"), VIEWPORTS, ids=[f"{w}x{h}" for w, h in VIEWPORTS])
def test_the_page_fits_the_screen(browser, app_url, width, height, tmp_path):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(app_url)
        button = compare_button(page)
        expect(button).to_be_visible(timeout=60_000)
        if width >= 1400:  # on a laptop's first screen, no scrolling needed
            assert page.evaluate("window.scrollY") == 0
            expect(button).to_be_in_viewport(ratio=1)
        check_layout(page, width)

        page.get_by_role("tab", name="Deploy").click()  # before a run: no empty chart frame
        for key in ("budget", "traffic-latency", "traffic-queue", "traffic-calls"):
            expect(page.locator(f"#plot-{key}")).to_be_hidden()
        page.get_by_role("tab", name="Compare everything").click()

        page.get_by_role("button", name="a few very long, a few very short").click()
        button.click()
        # where the progress shows, in view as the run starts (on a phone ~1,200 px under the button)
        expect(page.locator("#summary")).to_be_in_viewport(timeout=5_000)
        expect(page.locator("#results")).to_contain_text("buckets-partition", timeout=COMPARE_TIMEOUT_MS)
        # the findings are brought into view (on a phone they sit far under the button)
        expect(page.locator("#summary")).to_contain_text("Fastest static-shape strategy", timeout=30_000)
        expect(page.locator("#summary")).to_be_in_viewport(timeout=10_000)
        for key in PLOT_IDS:
            expect(page.locator(f"#plot-{key} .js-plotly-plot svg.main-svg").first).to_be_visible(timeout=30_000)
        expect(page.locator(".toast-body.error")).to_have_count(0)
        page.wait_for_timeout(500)  # let plotly finish laying out
        got = check_layout(page, width)
        assert len(got["headerLines"]) == len(ui.TABLE_HEADERS)
        assert max(got["headerLines"].values()) <= 2, f"table headers over two lines: {got['headerLines']}"
        save_screenshot(page, width, tmp_path)

        page.get_by_role("tab", name="Deploy").click()
        page.get_by_label("time shapes on this device").uncheck()
        page.locator("#tune-button").click()
        expect(page.locator("#tune-summary")).to_contain_text("The knee", timeout=SHAPES_TIMEOUT_MS)
        expect(page.locator("#plot-budget .js-plotly-plot svg.main-svg").first).to_be_visible(timeout=30_000)
        expect(page.locator(".toast-body.error")).to_have_count(0)
        page.wait_for_timeout(500)
        check_layout(page, width)
    finally:
        page.close()


def save_screenshot(page, width: int, folder: Path) -> None:
    """The README's pictures: at 1400 px the whole page (and its first screen), at 390 px the
    results from the summary down, two screens tall; PNG with a 256-colour palette (a tenth of
    the bytes, the same picture for flat UI colours), into ``assets/`` when asked."""
    from PIL import Image

    if width >= 1400:
        shots = {"screenshot.png": None, "screenshot-top.png": {"x": 0, "y": 0, "width": width, "height": 900}}
    else:
        top = page.locator("#summary").evaluate("e => e.getBoundingClientRect().top + window.scrollY")
        shots = {"screenshot-phone.png": {"x": 0, "y": top - 8, "width": width, "height": 2 * 844}}
    for name, clip in shots.items():
        shot = folder / name
        page.screenshot(path=str(shot), full_page=True, clip=clip)
        Image.open(shot).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(shot, optimize=True)
        assert 20_000 < shot.stat().st_size < MAX_SCREENSHOT_BYTES, (name, shot.stat().st_size)
        if os.environ.get("SHAPEDEMO_UPDATE_SCREENSHOT") == "1":
            ASSETS.mkdir(exist_ok=True)
            shutil.copyfile(shot, ASSETS / name)
