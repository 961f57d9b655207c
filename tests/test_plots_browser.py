"""Every figure drawn by plotly.js in headless chromium inside a container 390 px wide (a phone) and
1400 px wide: no text leaves the figure and no two labels (titles, annotations, legend items, tick
labels) overlap. Gradio draws a figure at its container's width and the figure's own height, as
here. Skipped where chromium or playwright is missing (see test_browser)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from test_browser import browser  # noqa: F401  (fixture: headless chromium)
from test_plots import all_figures

pytestmark = pytest.mark.browser

WIDTHS = [390, 1400]

# Boxes of every label plotly drew, in page px; ``kind`` groups them for the overlap check.
COLLECT = """
() => {
  const kinds = {
    ".gtitle": "title", ".annotation-text": "annotation", ".legendtext": "legend",
    ".xtick text": "tick", ".ytick text": "tick", ".g-xtitle text": "axis", ".g-ytitle text": "axis",
    ".bartext": "bar",
  };
  const out = [];
  for (const [sel, kind] of Object.entries(kinds)) {
    for (const el of document.querySelectorAll(sel)) {
      const r = el.getBoundingClientRect();
      const style = window.getComputedStyle(el);
      if (!r.width || !r.height || style.display === "none" || style.opacity === "0") continue;
      out.push({kind, text: el.textContent, l: r.left, r: r.right, t: r.top, b: r.bottom});
    }
  }
  const svg = document.querySelector(".main-svg").getBoundingClientRect();
  return {boxes: out, svg: {l: svg.left, r: svg.right}};
}
"""


def render(page: Any, fig: go.Figure, width: int, path: Path) -> dict[str, Any]:
    """``fig`` in a div ``width`` px wide, plotly.js from the plotly package (offline)."""
    fig.write_html(path, include_plotlyjs=True, default_width=f"{width}px", config={"responsive": True})
    page.goto(path.as_uri())
    page.wait_for_selector(".main-svg >> nth=0")
    return page.evaluate(COLLECT)


def overlap(a: dict[str, float], b: dict[str, float]) -> float:
    w = min(a["r"], b["r"]) - max(a["l"], b["l"])
    h = min(a["b"], b["b"]) - max(a["t"], b["t"])
    return w * h if w > 1 and h > 1 else 0.0


@pytest.mark.parametrize("width", WIDTHS)
def test_every_figure_fits_and_no_labels_collide(browser, width: int, tmp_path: Path) -> None:  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 900})
    problems: list[str] = []
    try:
        for name, fig in all_figures().items():
            drawn = render(page, fig, width, tmp_path / f"{name}.html")
            svg, boxes = drawn["svg"], drawn["boxes"]
            assert svg["r"] - svg["l"] <= width + 0.5, name
            for box in boxes:
                if box["l"] < svg["l"] - 1 or box["r"] > svg["r"] + 1:
                    problems.append(f"{name} at {width}px: {box['kind']} {box['text']!r} leaves the figure")
            labels = [b for b in boxes if b["kind"] in ("title", "annotation", "legend", "tick", "axis")]
            for i, a in enumerate(labels):
                for b in labels[i + 1 :]:
                    if overlap(a, b):
                        problems.append(f"{name} at {width}px: {a['kind']} {a['text']!r} overlaps {b['kind']} {b['text']!r}")
    finally:
        page.close()
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
