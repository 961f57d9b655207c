"""Costs paid before the first request: compile time and memory per strategy.

Two panels one under the other, one row per strategy (names on the left, horizontal). Compile
time is split, where the result lists its ``compiled_models``, into cold compiles (solid) and
models imported from the blob cache (light, hatched: a warm cache makes compiling look cheap, and
the chart says so). Memory is the process memory the compiled models added (RSS), not device
memory, and is labelled that way.

>>> _compile_split({"compile_s": 1.0, "compiled_models": [{"compile_s": 0.75, "from_cache": False}, {"compile_s": 0.25, "from_cache": True}]})
(0.75, 0.25, 1)
>>> _compile_split({"compile_s": 2.0})
(2.0, None, 0)
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from shapedemo.plots.style import (
    ROW_PX,
    _base_layout,
    _empty_figure,
    _number,
    _row_note,
    grey_legend,
    light_marker,
    not_run_reason,
    short_reason,
    strategy_axis,
    strategy_color,
    strategy_name,
    title_text,
    two_panels,
)

__all__ = ["costs_figure"]

MEMORY_AXIS = "process memory added, MiB<br>(not device memory)"


def _compile_split(result: dict[str, Any]) -> tuple[float | None, float | None, int]:
    """``(cold compile s, imported-from-cache s, models from cache)``; without ``compiled_models``
    the whole ``compile_s`` counts as cold and the cache part is None (unknown)."""
    models = result.get("compiled_models")
    if not models:
        return _number(result.get("compile_s")), None, 0
    cold = sum(_number(m.get("compile_s")) or 0.0 for m in models if not m.get("from_cache"))
    cached = [m for m in models if m.get("from_cache")]
    warm = sum(_number(m.get("compile_s")) or 0.0 for m in cached)
    return cold, warm, len(cached)


def _shapes_text(result: dict[str, Any]) -> str:
    shapes = result.get("compiled_shapes")
    if shapes is None:
        return ""
    if not shapes:
        # A plan compiles no static shape only when it runs on the one dynamic-shape model.
        return "1 dynamic<br>model"
    return f"{len(shapes)} shape{'s' if len(shapes) != 1 else ''}"


def costs_figure(results: list[dict[str, Any]]) -> go.Figure:
    """What each strategy costs before the first request: compile time (with the number of compiled
    shapes on the bar, since buckets pay per shape; time imported from the blob cache apart from
    cold compiles) and the process memory the models added. Missing values get a note instead of
    a zero bar, which would read as "free"; a strategy that did not run says why."""
    title = "Costs before the first request"
    if not results:
        return _empty_figure(title, height=420)
    names = [strategy_name(r) for r in results]
    n = len(names)
    panel_px = ROW_PX * n
    gap_px = 70
    fig = two_panels(names, ["compile time (s)", "memory (MiB)"], gap_px=gap_px)
    splits = [_compile_split(r) for r in results]
    reasons = [not_run_reason(r) for r in results]
    cold = [None if why else c for why, (c, _, _) in zip(reasons, splits)]
    warm = [None if why else w for why, (_, w, _) in zip(reasons, splits)]
    has_cache = any(w for w in warm)
    memory = [None if why else _number(r.get("memory_mb")) for why, r in zip(reasons, results)]
    totals = [None if c is None and w is None else (c or 0.0) + (w or 0.0) for c, w in zip(cold, warm)]
    labels = [
        "" if t is None else _shapes_text(r)
        for t, r in zip(totals, results)
    ]
    colors = [strategy_color(name) for name in names]
    padding = [_number(r.get("padding_fraction")) for r in results]
    hover = [
        f"{name}<br>compile {'n/a' if t is None else f'{t:.3g} s'}"
        + (f"<br>{k} of them imported from the blob cache: {w:.3g} s" if w else "")
        + (f"<br>padding {100 * p:.0f}%" if p is not None else "")
        for name, t, w, p, (_, _, k) in zip(names, totals, warm, padding, splits)
    ]
    bar = {"orientation": "h", "y": names, "showlegend": False, "cliponaxis": False, "width": 0.62}
    labelled = {"textposition": "outside", "constraintext": "none", "textfont": {"size": 12}, "hovertext": hover,
                "hovertemplate": "%{hovertext}<extra></extra>"}
    fig.add_trace(
        go.Bar(
            x=cold,
            name="compile time" if not has_cache else "cold compile",
            marker={"color": colors, "line": {"width": 0}},
            text=labels if not has_cache else None,
            **labelled,
            **bar,
        ),
        row=1,
        col=1,
    )
    if has_cache:
        fig.add_trace(
            go.Bar(
                x=[None if c is None and w is None else (w or 0.0) for c, w in zip(cold, warm)],
                name="imported from the blob cache",
                base=[c or 0.0 for c in cold],
                marker=light_marker(colors),
                text=labels,
                **labelled,
                **bar,
            ),
            row=1,
            col=1,
        )
        grey_legend(fig, [("cold compile", False), ("imported from the blob cache", True)], row=1, col=1)
    fig.add_trace(
        go.Bar(
            x=memory,
            name="memory",
            marker={"color": colors, "line": {"width": 0}},
            text=[f"{v:.0f} MiB" if v is not None else "" for v in memory],
            textposition="outside",
            textfont={"size": 12},
            hovertemplate="%{y}<br>%{x:.1f} MiB of process memory added<extra></extra>",
            **bar,
        ),
        row=2,
        col=1,
    )
    for name, why, t, m in zip(names, reasons, totals, memory):
        if why is not None:
            for k in (1, 2):
                _row_note(fig, y=name, text=short_reason(why), hover=why, xref=f"x{k if k > 1 else ''}", yref=f"y{k if k > 1 else ''}")
            continue
        if t is None:
            _row_note(fig, y=name, text="not measured")
        if m is None:
            _row_note(fig, y=name, text="not measured", xref="x2", yref="y2")
    # Room on the right for the bar labels (about 110 px of a phone's plot width).
    for row, values in ((1, totals), (2, memory)):
        top = max((v for v in values if v is not None), default=1.0) or 1.0
        fig.update_xaxes(range=[0, top * 1.8], row=row, col=1, tickfont={"size": 11})
        strategy_axis(fig, names, row=row, col=1)
    fig.update_xaxes(title_text="seconds", row=1, col=1)
    fig.update_xaxes(title_text=MEMORY_AXIS, row=2, col=1)
    height = 110 + 2 * panel_px + gap_px + 50 + (40 if has_cache else 0)
    _base_layout(fig, title=title_text(title), height=height, legend=has_cache)
    fig.update_layout(barmode="overlay")
    return fig

