"""Fidelity: how far each strategy's outputs are from one call per sequence (the reference)."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shapedemo.plots.style import STRATEGY_COLORS, _NOTE_COLOR, _axis_ref, _base_layout, _empty_figure, _number, _strategy_bars

__all__ = ["ROUNDOFF", "fidelity_figure"]


#: Differences below this are float32 round-off, not a wrong output.
ROUNDOFF = 1e-4
_LOG_FLOOR = 1e-9


def fidelity_figure(results: list[dict[str, Any]]) -> go.Figure:
    """How far each strategy's outputs are from ``dynamic-single`` (one sequence per call, no
    padding: the reference). Left, max abs diff on a log axis against the f32 round-off line;
    right, min cosine similarity. ``padding-nomask`` is red and annotated: it is the one strategy
    whose error is not round-off."""
    title = "Fidelity vs dynamic-single (one sequence per call, no padding)"
    rows: list[tuple[str, float | None, float | None]] = []
    for r in results:
        fid = r.get("fidelity") or {}
        rows.append((str(r.get("strategy", "?")), _number(fid.get("max_abs_diff")), _number(fid.get("min_cosine"))))
    if not rows or all(d is None and c is None for _, d, c in rows):
        return _empty_figure(title, height=440)
    names = [n for n, _, _ in rows]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=["max abs diff (log scale)", "min cosine similarity"],
        horizontal_spacing=0.12,
    )
    diffs = [None if d is None else max(d, _LOG_FLOOR) for _, d, _ in rows]
    cosines = [c for _, _, c in rows]
    _strategy_bars(
        fig,
        names,
        diffs,
        col=1,
        missing="no fidelity",
        name="max abs diff",
        text=[_diff_text(n, d) for n, d, _ in rows],
        textposition="outside",
        customdata=["n/a" if d is None else f"{d:.3g}" for _, d, _ in rows],
        hovertemplate="%{x}<br>max abs diff %{customdata}<extra></extra>",
    )
    _strategy_bars(
        fig,
        names,
        cosines,
        col=2,
        missing="no fidelity",
        name="min cosine",
        text=["" if c is None else (f"{c:.6f}" if c > 0.999 else f"{c:.3f}") for c in cosines],
        textposition="inside",
        insidetextanchor="end",
        textangle=-90,
        hovertemplate="%{x}<br>min cosine %{y:.6f}<extra></extra>",
    )
    present = [d for d in diffs if d is not None]
    lo = min(present + [ROUNDOFF]) / 10
    hi = max(present + [ROUNDOFF]) * 100
    fig.update_yaxes(type="log", range=[math.log10(lo), math.log10(hi)], exponentformat="power", row=1, col=1)
    fig.add_hline(y=ROUNDOFF, line={"dash": "dash", "color": _NOTE_COLOR, "width": 1.5}, row=1, col=1)
    # The label is an annotation of its own: on a log axis an annotation's y is the exponent,
    # which add_hline's annotation_text gets wrong.
    fig.add_annotation(
        x=0,
        y=math.log10(ROUNDOFF),
        xref="x domain",
        yref="y",
        text="f32 round-off",
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        font={"color": _NOTE_COLOR, "size": 11},
    )
    cos_present = [c for c in cosines if c is not None]
    cos_lo = min([0.0] + cos_present)
    fig.update_yaxes(range=[cos_lo if cos_lo == 0.0 else cos_lo - 0.05, 1.0], row=1, col=2)
    for name, d, c in rows:
        if name != "padding-nomask":
            continue
        targets = [(1, math.log10(max(d, _LOG_FLOOR)) if d is not None else None), (2, c)]
        for col, y in targets:
            if y is None:
                continue
            fig.add_annotation(
                x=name,
                y=y,
                xref=_axis_ref("x", col),
                yref=_axis_ref("y", col),
                text="<b>no mask: outputs scrambled</b>",
                showarrow=True,
                arrowhead=2,
                arrowcolor=STRATEGY_COLORS["padding-nomask"],
                ax=70 if col == 1 else 0,
                ay=-18 if col == 1 else -40,
                xanchor="left" if col == 1 else "center",
                font={"color": STRATEGY_COLORS["padding-nomask"], "size": 12},
                bgcolor="rgba(255,255,255,0.85)",
            )
    fig.update_xaxes(tickangle=-30)
    _base_layout(fig, title=title, height=460)
    return fig


def _diff_text(name: str, diff: float | None) -> str:
    if diff is None:
        return ""
    if name == "dynamic-single" and diff == 0:
        return "reference"
    return f"{diff:.1e}"
