"""Padding waste: the token slots each strategy computes, real tokens coloured, padding grey."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shapedemo.plan import Call, Plan, Row
from shapedemo.plots.style import (
    _NOTE_COLOR,
    _SEGMENT_SHADES,
    PAD_COLOR,
    _axis_ref,
    _base_layout,
    _blocks,
    _empty_figure,
    _grid,
    _shade,
    strategy_color,
)

__all__ = ["padding_waste_figure"]


def _padding_gaps(call: Call, row: Row) -> list[tuple[int, int]]:
    """The ``(offset, length)`` runs of a row that no segment covers: the computed padding."""
    gaps: list[tuple[int, int]] = []
    end = 0
    for seg in sorted(row, key=lambda s: s.offset):
        if seg.offset > end:
            gaps.append((end, seg.offset - end))
        end = max(end, seg.offset + seg.length)
    if end < call.seq:
        gaps.append((end, call.seq - end))
    return gaps


def _call_gap(total_rows: int) -> float:
    """Vertical gap between calls, in row units: visible both for 1-row and 64-row calls."""
    return max(0.6, 0.04 * total_rows)


def padding_waste_figure(plans: list[Plan]) -> go.Figure:
    """The token slots each strategy computes, real tokens coloured and padding grey.

    One subplot per strategy; every call's rows are horizontal bars of width ``call.seq``, calls
    stacked top to bottom with a gap and labelled ``call k: b x s``. Packed rows show their
    segments in alternating shades. The subplot title gives the padding fraction, the number the
    picture is about. Bars go into two traces per subplot (real tokens, padding), with base
    offsets, so a plan of hundreds of rows stays fast.
    """
    title = "Computed token slots per call: real tokens (colour) vs padding (grey)"
    if not plans:
        return _empty_figure(title)
    nrows, ncols = _grid(len(plans))
    extents: list[float] = []
    for plan in plans:
        total_rows = sum(c.batch for c in plan.calls)
        extents.append(total_rows + _call_gap(total_rows) * max(0, len(plan.calls) - 1))
    sub_h = int(min(420, max(190, 40 + 7 * max(extents))))
    titles = [f"{p.strategy} — padding {100 * p.padding_fraction:.0f}%" for p in plans]
    fig = make_subplots(
        rows=nrows,
        cols=ncols,
        subplot_titles=titles,
        vertical_spacing=min(0.25, 90 / (sub_h * nrows + 100)),
        horizontal_spacing=0.14,
    )
    max_seq = max((c.seq for p in plans for c in p.calls), default=1)
    for i, plan in enumerate(plans):
        r, c = divmod(i, ncols)
        _draw_padding_plan(fig, plan, row=r + 1, col=c + 1, index=i + 1, sub_h=sub_h)
        fig.update_xaxes(range=[0, max_seq * 1.02], row=r + 1, col=c + 1)
    fig.update_xaxes(title_text="token slots (sequence axis)", row=nrows)
    _base_layout(fig, title=title, height=130 + nrows * sub_h, top=110)
    fig.update_layout(barmode="overlay", bargap=0)
    return fig


def _draw_padding_plan(fig: go.Figure, plan: Plan, *, row: int, col: int, index: int, sub_h: int) -> None:
    """Add one plan's bars (two traces) and call labels to subplot ``(row, col)``, the ``index``-th."""
    first = index == 1
    color = strategy_color(plan.strategy)
    real: dict[str, list[Any]] = {"x": [], "base": [], "y": [], "color": [], "hover": []}
    pad: dict[str, list[Any]] = {"x": [], "base": [], "y": [], "hover": []}
    tickvals: list[float] = []
    ticktext: list[str] = []
    total_rows = sum(c.batch for c in plan.calls)
    gap = _call_gap(total_rows)
    y = 0.0
    for ci, call in enumerate(plan.calls):
        label = f"call {ci}: {call.batch} x {call.seq}"
        tickvals.append(y + (call.batch - 1) / 2)
        ticktext.append(label)
        for ri, segs in enumerate(call.rows):
            for k, seg in enumerate(sorted(segs, key=lambda s: s.offset)):
                real["x"].append(seg.length)
                real["base"].append(seg.offset)
                real["y"].append(y + ri)
                real["color"].append(_shade(color, _SEGMENT_SHADES[k % len(_SEGMENT_SHADES)]))
                real["hover"].append(
                    f"{plan.strategy}<br>{label}, row {ri}<br>sequence {seg.seq}: {seg.length} tokens"
                    f" at slots {seg.offset}–{seg.offset + seg.length - 1}"
                )
            for off, length in _padding_gaps(call, segs):
                pad["x"].append(length)
                pad["base"].append(off)
                pad["y"].append(y + ri)
                what = "padding row" if not segs else "padding"
                pad["hover"].append(f"{plan.strategy}<br>{label}, row {ri}<br>{what}: {length} slots computed for nothing")
        y += call.batch + gap
    common = {"width": 0.86, "hovertemplate": "%{hovertext}<extra></extra>"}
    fig.add_trace(
        go.Bar(
            name="real tokens",
            **_blocks(real),
            hovertext=real["hover"],
            marker={"color": real["color"], "line": {"width": 0}},
            legendgroup="real",
            showlegend=first,
            **common,
        ),
        row=row,
        col=col,
    )
    fig.add_trace(
        go.Bar(
            name="padding (computed, wasted)",
            **_blocks(pad),
            hovertext=pad["hover"],
            marker={"color": PAD_COLOR, "line": {"width": 0}},
            legendgroup="pad",
            showlegend=first,
            **common,
        ),
        row=row,
        col=col,
    )
    # Thin out call labels so they never overlap: about one label per 14 px of subplot height.
    max_labels = max(1, (sub_h - 40) // 14)
    stride = max(1, math.ceil(len(tickvals) / max_labels))
    fig.update_yaxes(
        tickmode="array",
        tickvals=tickvals[::stride],
        ticktext=ticktext[::stride],
        autorange="reversed",
        showgrid=False,
        zeroline=False,
        tickfont={"size": 10},
        row=row,
        col=col,
    )
    if not plan.calls:
        fig.add_annotation(
            text="no calls",
            x=0.5,
            y=0.5,
            xref=f"{_axis_ref('x', index)} domain",
            yref=f"{_axis_ref('y', index)} domain",
            showarrow=False,
            font={"color": _NOTE_COLOR},
        )
