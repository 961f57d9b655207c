"""Fidelity: how far each strategy's outputs are from one call per sequence (the reference).

Two panels one under the other, one row per strategy: the max abs diff of the hidden states on a
log axis against the round-off line of the precision actually run, and the min cosine of the
sentence embeddings. A diff of exactly 0 has no place on a log axis: it is drawn at ``_LOG_FLOOR``
and the figure says so.

>>> roundoff_for("bf16"), roundoff_for("f32"), roundoff_for("f16") is None
(0.08, 0.0001, True)
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from shapedemo.measure.report import ROUNDOFF as REPORT_ROUNDOFF
from shapedemo.plots.style import (
    _NOTE_COLOR,
    ROW_PX,
    STRATEGY_COLORS,
    _base_layout,
    _empty_figure,
    _number,
    _row_note,
    not_run_reason,
    short_reason,
    strategy_axis,
    strategy_color,
    strategy_name,
    title_text,
    two_panels,
)

__all__ = ["ROUNDOFF", "ROUNDOFF_BY_PRECISION", "roundoff_for", "fidelity_figure"]

#: Differences below this are float32 round-off, not a wrong output.
ROUNDOFF = REPORT_ROUNDOFF["f32"]["max_abs_diff"]

#: The round-off line per inference precision (``report.ROUNDOFF``, the table the results quote
#: too): differences below it are the precision's own rounding, not a wrong layout.
ROUNDOFF_BY_PRECISION: dict[str, float] = {k: REPORT_ROUNDOFF[k]["max_abs_diff"] for k in ("f32", "bf16")}
"""Only the precisions whose round-off was measured here get a line (f16 runs on GPUs and NPUs)."""
_LOG_FLOOR = 1e-9


def roundoff_for(precision: str | None) -> float | None:
    """The round-off level of ``precision`` ("f32", "bf16", any case), or None when we have not
    measured one for it (then no line is drawn, rather than a wrong one)."""
    return ROUNDOFF_BY_PRECISION.get((precision or "").lower())


def _fidelity(result: dict[str, Any]) -> tuple[float | None, float | None]:
    fid = result.get("fidelity") or {}
    return _number(fid.get("max_abs_diff")), _number(fid.get("min_cosine"))


def fidelity_figure(results: list[dict[str, Any]], *, precision: str = "f32") -> go.Figure:
    """How far each strategy's outputs are from ``dynamic-single`` (one sequence per call, no
    padding: the reference). Top, max abs diff on a log axis against the round-off line of
    ``precision`` (the precision the comparison ran at: ``"f32"`` or ``"bf16"``); bottom, min
    cosine similarity. ``padding-nomask`` is red and annotated: it is the one strategy whose
    error is not round-off. A strategy that did not run keeps its row, with the reason."""
    title = "Fidelity vs dynamic-single"
    rows = [(strategy_name(r), *_fidelity(r)) for r in results]
    if not rows or all(d is None and c is None for _, d, c in rows):
        return _empty_figure(title, height=440)
    names = [n for n, _, _ in rows]
    reasons = [not_run_reason(r) for r in results]
    n = len(names)
    panel_px = ROW_PX * n
    gap_px = 80
    fig = two_panels(names, ["max abs diff (log scale)", "min cosine similarity"], gap_px=gap_px)
    fig.layout.annotations[0].yshift = 18  # room under it for the round-off label
    diffs = [None if d is None else max(d, _LOG_FLOOR) for _, d, _ in rows]
    cosines = [c for _, _, c in rows]
    colors = [strategy_color(name) for name in names]
    bar = {"orientation": "h", "y": names, "showlegend": False, "width": 0.62, "marker": {"color": colors}}
    fig.add_trace(
        go.Bar(
            x=diffs,
            name="max abs diff",
            customdata=["n/a" if d is None else f"{d:.3g}" for _, d, _ in rows],
            hovertemplate="%{y}<br>max abs diff %{customdata}<extra></extra>",
            **bar,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=cosines,
            name="min cosine",
            text=["" if c is None else (f"{c:.6f}" if c > 0.999 else f"{c:.3f}") for c in cosines],
            textposition="inside",
            insidetextanchor="end",
            textangle=0,
            textfont={"size": 12, "color": "#ffffff"},
            constraintext="none",
            hovertemplate="%{y}<br>min cosine %{x:.6f}<extra></extra>",
            **bar,
        ),
        row=2,
        col=1,
    )
    for k in (1, 2):
        strategy_axis(fig, names, row=k, col=1)
    for name, why, d, c in zip(names, reasons, diffs, cosines):
        text = short_reason(why) if why is not None else "no fidelity"
        for k, value in ((1, d), (2, c)):
            if value is None:
                _row_note(fig, y=name, text=text, hover=why, xref=f"x{k if k > 1 else ''}", yref=f"y{k if k > 1 else ''}")
    line = roundoff_for(precision)
    present = [d for d in diffs if d is not None]
    # Bars need length to be compared: four decades under the smallest value.
    lo = min(present + [line or ROUNDOFF]) / 1e4
    hi = max(present + [line or ROUNDOFF]) * 300
    fig.update_xaxes(type="log", range=[math.log10(lo), math.log10(hi)], exponentformat="power", tickfont={"size": 11}, row=1, col=1)
    notes = []
    if line is not None:
        _roundoff_line(fig, line, precision)
    else:
        notes.append(f"no round-off line: not measured for {precision}")
    if any(d == 0 for _, d, _ in rows):
        notes.append(f"exactly 0 is drawn at {_LOG_FLOOR:.0e}: a log axis has no 0")
    cos_present = [c for c in cosines if c is not None]
    cos_lo = min([0.0] + cos_present)
    fig.update_xaxes(range=[cos_lo if cos_lo == 0.0 else cos_lo - 0.05, 1.0], tickfont={"size": 11}, row=2, col=1)
    _nomask_notes(fig, rows, floor=lo, line=line if line is not None else ROUNDOFF)
    for name, d, _ in rows:  # after each bar, on white: the round-off line runs behind, never through
        if d is not None and _diff_text(name, d):
            fig.add_annotation(
                x=math.log10(max(d, _LOG_FLOOR)), y=name, xref="x", yref="y", xanchor="left", xshift=3, showarrow=False,
                text=_diff_text(name, d), font={"size": 12}, bgcolor="rgba(255,255,255,1)",
            )
    height = 130 + 2 * panel_px + gap_px + 60
    _base_layout(fig, title=title_text(title, ["one call per sequence, no padding", *notes]), height=height)
    fig.update_layout(margin={"t": fig.layout.margin.t + 20})
    return fig


def _roundoff_line(fig: go.Figure, line: float, precision: str) -> None:
    """The dashed round-off line over the diff panel, its label above the panel's top (never
    under a bar)."""
    fig.add_vline(x=line, line={"dash": "dash", "color": _NOTE_COLOR, "width": 1.5}, layer="below", row=1, col=1)
    # The label is an annotation of its own: on a log axis an annotation's x is the exponent,
    # which add_vline's annotation_text gets wrong.
    fig.add_annotation(
        x=math.log10(line),
        y=1,
        xref="x",
        yref="y domain",
        text=f"{precision.lower()} round-off",
        showarrow=False,
        xanchor="center",
        yanchor="bottom",
        font={"color": _NOTE_COLOR, "size": 12},
        bgcolor="rgba(255,255,255,0.9)",
    )


def _nomask_notes(fig: go.Figure, rows: list[tuple[str, float | None, float | None]], *, floor: float, line: float) -> None:
    """``padding-nomask``, where its error is above round-off: "no mask: outputs scrambled" on its
    row in both panels, inside its (long) diff bar, and inside or after its cosine bar, where no
    other label is. (Without padding there is nothing for the mask to hide, and no note.)"""
    for name, d, c in rows:
        if name != "padding-nomask" or d is None or d <= line:
            continue
        text = "<b>no mask: outputs scrambled</b>"
        fig.add_annotation(  # on the bar's own colour: the round-off line passes behind it
            x=math.log10(floor), y=name, xref="x", yref="y", xanchor="left", xshift=4, showarrow=False,
            text=text, font={"color": "#ffffff", "size": 11}, bgcolor=STRATEGY_COLORS["padding-nomask"],
        )
        if c is not None:
            inside = c > 0.6  # a long bar holds the note; a short one has room after it
            fig.add_annotation(  # after a short bar, the short word: the long one ran off a phone's edge
                x=0.0 if inside else max(c, 0.0), y=name, xref="x2", yref="y2", xanchor="left", xshift=4 if inside else 6,
                showarrow=False, text=text if inside else "<b>scrambled</b>",
                font={"color": "#ffffff" if inside else STRATEGY_COLORS["padding-nomask"], "size": 11 if inside else 12},
            )


def _diff_text(name: str, diff: float | None) -> str:
    if diff is None:
        return ""
    if diff == 0:
        return "reference: 0" if name == "dynamic-single" else "exactly 0"
    return f"{diff:.1e}"
