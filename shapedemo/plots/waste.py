"""Padding waste: the token slots each strategy computes, real tokens coloured, padding grey."""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shapedemo.planning.plan import Call, Plan, Row
from shapedemo.plots.style import (
    _NOTE_COLOR,
    _SEGMENT_SHADES,
    PAD_COLOR,
    _axis_ref,
    _base_layout,
    _blocks,
    _empty_figure,
    _shade,
    _title_lines,
    strategy_color,
    title_text,
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


#: Vertical room between two strategies' pictures, in px: a title of up to two lines.
_TITLE_GAP_PX = 50


def _row_px(extent: float) -> int:
    """Height of one strategy's picture for ``extent`` rows (calls and gaps included), in px."""
    return int(min(260, max(70, 24 + 5 * extent)))


def _padding_rows_note(plan: Plan) -> str:
    """Why a plan computes whole rows of padding, or "" when it does not.

    >>> from shapedemo.planning.plan import single_row_call
    >>> _padding_rows_note(Plan("buckets", (3,), (single_row_call(4, 8, [(0, 3)]),), params={"seq_buckets": [8], "batch_size": 4}))
    '3 padding rows: every call has 4 rows'
    """
    rows = sum(c.padding_rows for c in plan.calls)
    if not rows:
        return ""
    plural = "s" if rows != 1 else ""
    batch = plan.params.get("batch_size")
    if plan.params.get("seq_buckets") and batch:
        return f"{rows} padding row{plural}: every call has {batch} rows"
    return f"{rows} padding row{plural}: a call is filled up to its compiled batch"


def padding_waste_figure(plans: list[Plan]) -> go.Figure:
    """The token slots each strategy computes, real tokens coloured and padding grey.

    One picture per strategy, one under the other (a phone shows them at full width); every
    call's rows are horizontal bars of width ``call.seq``, calls stacked top to bottom with a gap
    and labelled ``call k: b x s``. Packed rows show their segments in alternating shades. Each
    picture's title gives the padding fraction, the number the picture is about, and, where
    whole rows are padding, why (``buckets`` pads each bucket's group to the batch size, so it
    can compute more padding than ``padding``). Bars go into two traces per picture (real
    tokens, padding), with base offsets, so a plan of hundreds of rows stays fast.
    """
    title = "Token slots computed per call"
    if not plans:
        return _empty_figure(title)
    heights: list[int] = []
    for plan in plans:
        total_rows = sum(c.batch for c in plan.calls)
        heights.append(_row_px(total_rows + _call_gap(total_rows) * max(0, len(plan.calls) - 1)))
    titles = [f"{p.strategy} — padding {100 * p.padding_fraction:.0f}%" for p in plans]
    n = len(plans)
    plot_px = sum(heights) + _TITLE_GAP_PX * (n - 1)
    fig = make_subplots(
        rows=n,
        cols=1,
        subplot_titles=titles,
        row_heights=heights,
        vertical_spacing=_TITLE_GAP_PX / plot_px if n > 1 else 0.0,
        shared_xaxes=True,
    )
    fig.update_annotations(font={"size": 13}, x=0, xanchor="left", align="left")
    for i, plan in enumerate(plans):
        note = _padding_rows_note(plan)
        if note:
            # under the strategy's title, which moves up a line for it
            fig.layout.annotations[i].yshift = 15
            fig.add_annotation(
                text=note, x=0, y=1, xref=f"{_axis_ref('x', i + 1)} domain", yref=f"{_axis_ref('y', i + 1)} domain",
                xanchor="left", yanchor="bottom", showarrow=False, font={"size": 11, "color": _NOTE_COLOR},
            )
    max_seq = max((c.seq for p in plans for c in p.calls), default=1)
    for i, plan in enumerate(plans):
        _draw_padding_plan(fig, plan, row=i + 1, col=1, index=i + 1, sub_h=heights[i])
    fig.update_xaxes(range=[0, max_seq * 1.02], showticklabels=True, tickfont={"size": 10})
    fig.update_xaxes(title_text="token slots (sequence axis)", row=n)
    full_title = title_text(title, ["colour: real tokens", "grey: padding, computed for nothing"])
    top = 30 + 18 * _title_lines(full_title) + 24
    _base_layout(fig, title=full_title, height=top + plot_px + 110, legend=True, bottom=20)
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
                why = "" if segs else (
                    f"<br>padding row: compiled batch {call.batch}, {call.batch - call.padding_rows} rows hold sequences"
                )
                pad["hover"].append(f"{plan.strategy}<br>{label}, row {ri}<br>padding: {length} slots computed for nothing{why}")
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
    # Thin out call labels so they never overlap: about one label per 14 px of picture height.
    max_labels = max(1, (sub_h - 10) // 14)
    stride = max(1, math.ceil(len(tickvals) / max_labels))
    shown = ticktext[::stride]
    if stride > 1:  # a label for every other call (or fewer): each says which of how many it is
        n = len(plan.calls)
        shown = [f"call {i + 1} of {n}: " + text.split(": ", 1)[1] for i, text in zip(range(0, n, stride), shown)]
    fig.update_yaxes(
        tickmode="array",
        tickvals=tickvals[::stride],
        ticktext=shown,
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
