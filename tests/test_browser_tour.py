"""The guided tour in a real browser, on a phone's viewport and a desktop's: open the tab, run a
step, check its lesson and its figure appear, the page does not scroll sideways and the figure
fits the screen. Same fixtures and skips as ``test_browser.py``.
"""

from __future__ import annotations

import pytest

from shapedemo.measure import lessons as tour
from test_app import app_env, app_url  # noqa: F401  (fixtures: tmp cache, the launched app)
from test_browser import browser  # noqa: F401  (fixture: headless chromium, or a skip)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
]

STEP_TIMEOUT_MS = 180_000  # a cold step compiles its shapes on 2 busy cores


OUTSIDE = """(id) => {
  const fig = document.querySelector(`#${id} .js-plotly-plot svg.main-svg`).getBoundingClientRect();
  const out = [];
  for (const t of document.querySelectorAll(`#${id} .js-plotly-plot text`)) {
    const r = t.getBoundingClientRect();
    if (!t.textContent.trim() || r.width === 0) continue;
    if (r.left < fig.left - 1 || r.right > fig.right + 1 || r.top < fig.top - 1 || r.bottom > fig.bottom + 1)
      out.push(`${t.textContent} [${Math.round(r.left)}-${Math.round(r.right)} of ${Math.round(fig.left)}-${Math.round(fig.right)}]`);
  }
  return out;
}"""
"""Every text of a figure whose box leaves the figure's own box (cut at its edge)."""


@pytest.mark.parametrize(
    ("width", "height", "key"), [(390, 844, "partition"), (390, 844, "mask"), (1400, 900, "padding")]
)
def test_a_tour_step_shows_its_lesson_and_figure(browser, app_url, width, height, key, tmp_path):  # noqa: F811
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": width, "height": height})
    try:
        page.goto(app_url)
        page.get_by_role("tab", name="Guided tour").click()
        expect(page.locator("#tour-texts textarea")).to_have_value("\n".join(tour.TOUR_TEXTS), timeout=60_000)
        step = page.locator(f"#tour-{key}")
        if key != tour.STEPS[0].key:  # only the first step starts open
            step.get_by_text(tour.heading(tour.step(key)), exact=True).click()
        page.locator(f"#tour-run-{key}").click()
        lesson = page.locator(f"#tour-lesson-{key}")
        expect(lesson).to_contain_text("Lesson.", timeout=STEP_TIMEOUT_MS)
        expected = {
            "partition": "the 5 texts ran as 4 + 1", "padding": "Padding to 8 x 128 computed", "mask": "Without the mask",
        }[key]
        expect(lesson).to_contain_text(expected)
        if key != "mask":
            expect(lesson).to_contain_text("native dynamic")
        svg = page.locator(f"#tour-plot-{key} .js-plotly-plot svg.main-svg").first
        expect(svg).to_be_visible(timeout=30_000)
        expect(page.locator(".toast-body.error")).to_have_count(0)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
        box = svg.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
        page.wait_for_timeout(500)  # let plotly finish laying out before the picture
        assert page.evaluate(OUTSIDE, f"tour-plot-{key}") == [], "labels outside their figure"
        shot = tmp_path / f"tour-{width}.png"
        step.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
    finally:
        page.close()
