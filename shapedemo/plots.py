"""Plotly figures from plans and comparison results, for the Gradio app (``gr.Plot``) and the README.

Every function takes plain data (``Plan`` objects, the result dicts ``compare`` produces, lists and
arrays) and returns a ``plotly.graph_objects.Figure`` with an explicit height (Gradio's ``gr.Plot``
needs one) and the ``plotly_white`` template. Empty input gives a figure that says "nothing to show
yet" instead of raising, so a UI handler can return a figure before anything has run.

A strategy has the same colour in every figure (``STRATEGY_COLORS``; ``strategy_color`` for names
not in it), so a reader can follow ``buckets`` from the padding picture to the latency boxes.

No OpenVINO and no gradio here: plans are drawn before any model exists.

>>> fig = padding_waste_figure([])
>>> fig.layout.annotations[0].text
'nothing to show yet'
>>> strategy_color("padding-nomask") == STRATEGY_COLORS["padding-nomask"]
True
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Iterable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shapedemo.plan import Call, Plan, Row

__all__ = [
    "STRATEGY_COLORS",
    "FALLBACK_COLORS",
    "PAD_COLOR",
    "TEMPLATE",
    "ROUNDOFF",
    "cosine_matrix",
    "strategy_color",
    "decomposition",
    "padding_waste_figure",
    "chunk_decomposition_figure",
    "latency_figure",
    "costs_figure",
    "fidelity_figure",
    "similarity_figure",
    "length_histogram_figure",
]

TEMPLATE = "plotly_white"

#: One colour per strategy, used by every figure. ``padding-nomask`` is the only red: it is the
#: strategy whose outputs are wrong, and the fidelity figure relies on it standing out.
STRATEGY_COLORS: dict[str, str] = {
    "dynamic": "#1f5fa8",
    "dynamic-single": "#7fa7d9",
    "padding": "#f08c1c",
    "padding-nomask": "#d62728",
    "buckets": "#2a9d4b",
    "partition": "#8a5cc2",
    "buckets-partition": "#8c564b",
    "packing": "#17a3a3",
}

#: Colours for strategies not in ``STRATEGY_COLORS``, picked by a stable hash of the name (never
#: grey, which means padding, and never red, which means "no mask").
FALLBACK_COLORS: tuple[str, ...] = ("#bcbd22", "#e377c2", "#393b79", "#637939", "#ad494a", "#3182bd")

#: Padding (slots computed for nothing) is grey everywhere.
PAD_COLOR = "#c8c8c8"
_PAD_LINE = "#9a9a9a"
_NOTE_COLOR = "#666666"
_EMPTY_TEXT = "nothing to show yet"


def strategy_color(name: str) -> str:
    """The colour of strategy ``name``: fixed for known strategies, stable across runs for others.

    >>> strategy_color("buckets")
    '#2a9d4b'
    >>> strategy_color("my-own") == strategy_color("my-own") and strategy_color("my-own") in FALLBACK_COLORS
    True
    """
    known = STRATEGY_COLORS.get(name)
    if known is not None:
        return known
    return FALLBACK_COLORS[zlib.crc32(name.encode()) % len(FALLBACK_COLORS)]


# ----------------------------------------------------------------------------------------------
# helpers


def _shade(color: str, amount: float) -> str:
    """``color`` mixed towards white (``amount`` > 0) or black (< 0): distinct shades of one hue
    tell packed segments apart without leaving the strategy's colour."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    target = 255 if amount > 0 else 0
    a = abs(amount)
    r, g, b = (round(c + (target - c) * a) for c in (r, g, b))
    return f"#{r:02x}{g:02x}{b:02x}"


# Shades cycled over the segments of one row: adjacent packed segments never share a shade.
_SEGMENT_SHADES = (0.0, 0.4, -0.3)


def _base_layout(fig: go.Figure, *, title: str, height: int, top: int = 80) -> go.Figure:
    """Title, height, template, margins; a horizontal legend under the title, clear of the
    modebar that Gradio shows on the top right."""
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left", "y": 1 - 22 / height, "yanchor": "middle", "yref": "container"},
        height=height,
        template=TEMPLATE,
        margin={"l": 70, "r": 30, "t": top, "b": 60},
        hoverlabel={"align": "left"},
        legend={
            "orientation": "h",
            "yref": "container",
            "y": 1 - 42 / height,
            "yanchor": "top",
            "xref": "container",
            "x": 0.01,
            "xanchor": "left",
        },
    )
    return fig


def _empty_figure(title: str, height: int = 320) -> go.Figure:
    """A figure with no data and a centred "nothing to show yet": what a UI shows before a run."""
    fig = go.Figure()
    _base_layout(fig, title=title, height=height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(
        text=_EMPTY_TEXT,
        x=0.5,
        y=0.5,
        xref="paper",
        yref="paper",
        showarrow=False,
        font={"size": 18, "color": _NOTE_COLOR},
    )
    return fig


def _grid(n: int, max_cols: int = 2) -> tuple[int, int]:
    """Rows and columns for ``n`` subplots: one column for one plot, else ``max_cols``."""
    cols = 1 if n <= 1 else max_cols
    return math.ceil(n / cols), cols


def _axis_ref(kind: str, index: int) -> str:
    """Plotly's name for the ``index``-th (1-based) subplot's axis: ``x``, ``x2``, ..."""
    return kind if index == 1 else f"{kind}{index}"


def _compress_terms(terms: Sequence[str]) -> list[str]:
    """Runs of three or more equal terms as ``count × term``, so 64 calls of 1 stay one line."""
    out: list[str] = []
    i = 0
    while i < len(terms):
        j = i
        while j < len(terms) and terms[j] == terms[i]:
            j += 1
        run = j - i
        out.extend([f"{run} × {terms[i]}"] if run >= 3 else terms[i:j])
        i = j
    return out


def decomposition(plan: Plan) -> str:
    """How ``plan`` splits its batch into calls, as arithmetic over sequences.

    Unpacked plans add up the sequences per call; padding rows (compiled batch larger than the
    sequences in it) are named after it. Packed plans show each call in parentheses, each number
    the sequences sharing one row.

    >>> from shapedemo.plan import single_row_call
    >>> decomposition(Plan("partition", (3, 4, 5, 6, 7), (single_row_call(4, 8, [(0, 3), (1, 4), (2, 5), (3, 6)]), single_row_call(1, 8, [(4, 7)]))))
    '5 = 4 + 1'
    >>> decomposition(Plan("partition", (3, 4, 5), (single_row_call(2, 8, [(0, 3), (1, 4)]), single_row_call(2, 8, [(2, 5)]))))
    '3 = 2 + 1 (+1 padding row)'
    """
    n = len(plan.lengths)
    if not plan.calls:
        return f"{n} = (no calls)"
    if plan.packed:
        terms = ["(" + "+".join(str(len(row)) for row in call.rows) + ")" for call in plan.calls]
    else:
        terms = [str(call.batch - call.padding_rows) for call in plan.calls]
    text = f"{n} = " + " + ".join(_compress_terms(terms))
    pad_rows = sum(call.padding_rows for call in plan.calls)
    if pad_rows:
        text += f" (+{pad_rows} padding row{'s' if pad_rows != 1 else ''})"
    return text


def _blocks(columns: dict[str, list[Any]]) -> dict[str, Any]:
    """Horizontal bar arguments for blocks collected as ``x`` (width), ``base`` (start) and ``y``:
    one trace draws any number of blocks, which keeps large plans fast."""
    return {"orientation": "h", "x": columns["x"], "base": columns["base"], "y": columns["y"]}


def _shape_label(call: Call) -> str:
    return f"{call.batch}x{call.seq}"


# ----------------------------------------------------------------------------------------------
# 1. padding waste


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



# ----------------------------------------------------------------------------------------------
# 2. chunk decomposition


def chunk_decomposition_figure(plans: list[Plan]) -> go.Figure:
    """How each strategy splits the batch into calls (``5 = 4 + 1``), one line per strategy.

    Each call is a block as wide as its batch, labelled with its shape (``4x128``); padding rows
    are grey and hatched; under a packed call, each row's number of sequences. The decomposition
    string is written at the end of each line and in every hover.
    """
    title = "How each strategy splits the batch into calls"
    if not plans:
        return _empty_figure(title, height=260)
    decomps = [decomposition(p) for p in plans]
    if len(plans) == 1:
        title = f"{plans[0].strategy}: {decomps[0]}"
    real: dict[str, list[Any]] = {"x": [], "base": [], "y": [], "color": []}
    pad: dict[str, list[Any]] = {"x": [], "base": [], "y": []}
    calls: dict[str, list[Any]] = {"x": [], "base": [], "y": [], "text": [], "hover": []}
    counts: dict[str, list[Any]] = {"x": [], "y": [], "text": []}
    widest = 1
    for k, (plan, dec) in enumerate(zip(plans, decomps)):
        x = 0
        for ci, call in enumerate(plan.calls):
            used = call.batch - call.padding_rows
            if used:
                real["x"].append(used)
                real["base"].append(x)
                real["y"].append(k)
                real["color"].append(strategy_color(plan.strategy))
            if call.padding_rows:
                pad["x"].append(call.padding_rows)
                pad["base"].append(x + used)
                pad["y"].append(k)
            calls["x"].append(call.batch)
            calls["base"].append(x)
            calls["y"].append(k)
            calls["text"].append(_shape_label(call))
            calls["hover"].append(_call_hover(plan, dec, ci, call))
            if plan.packed:
                for ri, row in enumerate(call.rows):
                    counts["x"].append(x + ri + 0.5)
                    counts["y"].append(k + 0.42)
                    counts["text"].append(str(len(row)))
            x += call.batch
        widest = max(widest, x)
    fig = go.Figure()
    bar = {"width": 0.62}
    fig.add_trace(
        go.Bar(
            name="rows holding sequences",
            **_blocks(real),
            marker={"color": real["color"], "line": {"width": 0}},
            hoverinfo="skip",
            showlegend=False,
            **bar,
        )
    )
    fig.add_trace(
        go.Bar(
            name="padding rows",
            **_blocks(pad),
            marker={
                "color": PAD_COLOR,
                "line": {"width": 0},
                "pattern": {"shape": "/", "fgcolor": _PAD_LINE, "size": 8, "solidity": 0.25},
            },
            hoverinfo="skip",
            **bar,
        )
    )
    # A transparent block per call on top: its white outline separates calls, its text names the
    # shape, and it carries the hover for the whole call.
    fig.add_trace(
        go.Bar(
            name="calls",
            **_blocks(calls),
            text=calls["text"],
            textposition="inside",
            insidetextanchor="middle",
            textangle=0,
            textfont={"color": "#ffffff", "shadow": "auto"},
            hovertext=calls["hover"],
            hovertemplate="%{hovertext}<extra></extra>",
            marker={"color": "rgba(0,0,0,0)", "line": {"width": 2.5, "color": "#ffffff"}},
            showlegend=False,
            **bar,
        )
    )
    if counts["x"]:
        fig.add_trace(
            go.Scatter(
                name="sequences per packed row",
                x=counts["x"],
                y=counts["y"],
                text=counts["text"],
                mode="text",
                textposition="middle center",
                textfont={"size": 10, "color": STRATEGY_COLORS["packing"]},
                hoverinfo="skip",
            )
        )
    for k, (plan, dec) in enumerate(zip(plans, decomps)):
        fig.add_annotation(
            x=sum(c.batch for c in plan.calls), y=k, text=dec, xanchor="left", xshift=8, showarrow=False, font={"size": 12}
        )
    _base_layout(fig, title=title, height=max(260, 150 + 56 * len(plans)))
    fig.update_layout(barmode="overlay", uniformtext={"minsize": 9, "mode": "hide"})
    # Room on the right for the decomposition text: about 7 px per character at size 12, in a
    # plot area about 850 px wide.
    text_frac = min(0.5, 7 * max(len(d) for d in decomps) / 850 + 0.02)
    fig.update_xaxes(title_text="rows (batch axis), call after call", range=[0, widest / (1 - text_frac)])
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(plans))),
        ticktext=[p.strategy for p in plans],
        range=[len(plans) - 0.4, -0.6],
        showgrid=False,
        zeroline=False,
        tickfont={"size": 12},
    )
    return fig


def _call_hover(plan: Plan, dec: str, ci: int, call: Call) -> str:
    """Everything about one call, for the chunk figure's hover."""
    used = call.batch - call.padding_rows
    lines = [f"<b>{plan.strategy}</b>: {dec}", f"call {ci}: shape {call.batch} x {call.seq}"]
    if plan.dynamic:
        lines.append("runs on the dynamic-shape model")
    if plan.packed:
        nseg = sum(len(r) for r in call.rows)
        per_row = ", ".join(str(len(r)) for r in call.rows)
        lines.append(f"{nseg} sequences packed into {call.batch} rows ({per_row} per row)")
    else:
        lines.append(f"{used} sequence{'s' if used != 1 else ''}")
    if call.padding_rows:
        lines.append(f"{call.padding_rows} padding row{'s' if call.padding_rows != 1 else ''}")
    lines.append(f"{call.real_tokens} real of {call.computed_tokens} computed tokens")
    return "<br>".join(lines)


# ----------------------------------------------------------------------------------------------
# 3. latency


def _latency(result: dict[str, Any]) -> tuple[list[float], float | None]:
    """Samples and median of one result; samples fall back to the median alone, median to the
    samples' median, so partial results still draw."""
    lat = result.get("latency_ms") or {}
    samples = [float(s) for s in (lat.get("samples") or []) if s is not None]
    median = lat.get("median")
    if median is None and samples:
        median = float(np.median(samples))
    if not samples and median is not None:
        samples = [float(median)]
    return samples, (None if median is None else float(median))


def _ratio_text(ratio: float, *, is_reference: bool) -> str:
    """``2.00x slower``, ``0.80x = 1.25x faster``, ``1.00x``: the latency ratio first, with two
    decimals; a speed-up is also said as a speed-up (0.55x reads as "1.82x faster")."""
    text = f"{ratio:.2f}x"
    if is_reference:
        return text + " (reference)"
    if ratio > 1.005:
        return text + " slower"
    if ratio < 0.995:
        return f"{text} = {1 / ratio:.2f}x faster"
    return text


def latency_figure(results: list[dict[str, Any]]) -> go.Figure:
    """Latency samples per strategy (box with all points), each box topped by its median's ratio
    to ``dynamic``'s (to the fastest strategy's when ``dynamic`` did not run): the number a reader
    wants is "how much slower than native dynamic", not milliseconds."""
    title = "Latency per batch"
    measured = [(str(r.get("strategy", "?")), *_latency(r)) for r in results]
    rows = [(name, samples, median) for name, samples, median in measured if median is not None]
    missing = [name for name, _, median in measured if median is None]
    if not rows:
        return _empty_figure(title, height=420)
    ref_name = "dynamic" if any(name == "dynamic" for name, _, _ in rows) else min(rows, key=lambda r: r[2])[0]
    ref_median = next(median for name, _, median in rows if name == ref_name)
    fig = go.Figure()
    top = max(max(s) for _, s, _ in rows)
    for name, samples, median in rows:
        color = strategy_color(name)
        fig.add_trace(
            go.Box(
                y=samples,
                x=[name] * len(samples),
                name=name,
                marker={"color": color, "size": 5, "opacity": 0.7},
                line={"color": color},
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                showlegend=False,
                hovertemplate=f"{name}<br>%{{y:.2f}} ms<extra></extra>",
            )
        )
        if ref_median > 0:
            text = _ratio_text(median / ref_median, is_reference=(name == ref_name))
        else:
            text = "n/a"
        fig.add_annotation(
            x=name,
            y=max(samples),
            text=f"<b>{text}</b><br>median {median:.2f} ms",
            showarrow=False,
            yanchor="bottom",
            yshift=6,
            font={"size": 12, "color": color},
        )
    fig.add_hline(
        y=ref_median,
        line={"dash": "dot", "color": strategy_color(ref_name), "width": 1},
        layer="below",
    )
    title = f"{title} — median ratio vs {ref_name}"
    if missing:
        title += f" (no latency for {', '.join(missing)})"
    _base_layout(fig, title=title, height=460)
    fig.update_yaxes(title_text="latency per batch (ms)", range=[0, top * 1.22], rangemode="tozero")
    fig.update_xaxes(title_text="strategy", categoryorder="array", categoryarray=[name for name, _, _ in rows])
    return fig


# ----------------------------------------------------------------------------------------------
# 4. costs


def _number(value: Any) -> float | None:
    """``value`` as a float, or None when missing or not a finite number."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _absent_note(fig: go.Figure, *, x: str, col: int, text: str) -> None:
    """A small grey note where a bar would be: a missing measurement is shown, not hidden."""
    fig.add_annotation(
        x=x,
        y=0,
        xref=_axis_ref("x", col),
        yref=_axis_ref("y", col),
        text=text,
        showarrow=False,
        yanchor="bottom",
        textangle=-90,
        font={"size": 11, "color": _NOTE_COLOR},
    )


def _strategy_bars(
    fig: go.Figure, names: list[str], values: list[float | None], *, col: int, missing: str, **bar: Any
) -> None:
    """One bar per strategy, in its colour, in subplot ``(1, col)``; a missing value gets the
    note ``missing`` where its bar would stand."""
    fig.add_trace(
        go.Bar(
            x=names,
            y=values,
            marker={"color": [strategy_color(n) for n in names]},
            cliponaxis=False,
            showlegend=False,
            **bar,
        ),
        row=1,
        col=col,
    )
    for name, v in zip(names, values):
        if v is None:
            _absent_note(fig, x=name, col=col, text=missing)


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
    shapes on the bar, since buckets pay per shape) and memory. Missing values get a note instead
    of a zero bar, which would read as "free"."""
    title = "Costs: compile time and memory"
    if not results:
        return _empty_figure(title, height=420)
    names = [str(r.get("strategy", "?")) for r in results]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["compile time (s)", "memory (MiB)"], horizontal_spacing=0.12)
    compile_s = [_number(r.get("compile_s")) for r in results]
    memory = [_number(r.get("memory_mb")) for r in results]
    _strategy_bars(
        fig,
        names,
        compile_s,
        col=1,
        missing="not measured",
        name="compile time",
        text=[_shapes_text(r) if v is not None else "" for r, v in zip(results, compile_s)],
        textposition="outside",
        constraintext="none",
        customdata=[f"{v:.3g} s" if v is not None else "not measured" for v in compile_s],
        hovertemplate="%{x}<br>compile %{customdata}, %{text}<extra></extra>",
    )
    _strategy_bars(
        fig,
        names,
        memory,
        col=2,
        missing="not measured",
        name="memory",
        text=[f"{v:.0f} MiB" if v is not None else "" for v in memory],
        textposition="outside",
        hovertemplate="%{x}<br>%{y:.1f} MiB<extra></extra>",
    )
    for col, values in ((1, compile_s), (2, memory)):
        top = max((v for v in values if v is not None), default=1.0) or 1.0
        fig.update_yaxes(range=[0, top * 1.2], row=1, col=col)
    fig.update_yaxes(title_text="seconds", row=1, col=1)
    fig.update_yaxes(title_text="MiB", row=1, col=2)
    fig.update_xaxes(tickangle=-30)
    _base_layout(fig, title=title, height=440)
    return fig


# ----------------------------------------------------------------------------------------------
# 5. fidelity

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


# ----------------------------------------------------------------------------------------------
# 6. similarity


def _truncate(text: str, width: int = 30) -> str:
    """One line of at most ``width`` characters, ending in an ellipsis when cut.

    >>> _truncate("a  short\\ntext"), _truncate("x" * 40)
    ('a short text', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxx…')
    """
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def cosine_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``embeddings`` (a zero row gives 0, not NaN).

    >>> cosine_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).round(3).tolist()
    [[1.0, 0.707, 0.0], [0.707, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    unit = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
    return unit @ unit.T


def similarity_figure(texts: list[str], embeddings: np.ndarray | None) -> go.Figure:
    """Cosine similarity between the embeddings of ``texts``: the result a user recognises
    ("these two sentences mean the same"), written in every cell. The colour scale stops at 0, so
    negatives look like 0, but the cell text shows the true value."""
    title = "Cosine similarity of the sentence embeddings"
    emb = np.asarray(embeddings) if embeddings is not None else np.zeros((0, 0))
    if len(texts) == 0 or emb.size == 0:
        return _empty_figure(title, height=420)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"{len(texts)} texts but embeddings of shape {tuple(emb.shape)}; want ({len(texts)}, hidden)")
    sim = cosine_matrix(emb)
    labels = [f"{i + 1}. {_truncate(t)}" for i, t in enumerate(texts)]
    full = [_truncate(t, 120) for t in texts]
    hover = [[f"{full[i]}<br>vs<br>{full[j]}<br>cosine {sim[i, j]:.4f}" for j in range(len(texts))] for i in range(len(texts))]
    n = len(texts)
    fig = go.Figure(
        go.Heatmap(
            z=sim,
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            text=hover,
            texttemplate="%{z:.2f}" if n <= 20 else "",
            textfont={"size": 11 if n <= 10 else 9},
            hovertemplate="%{text}<extra></extra>",
            colorbar={"title": {"text": "cosine"}},
        )
    )
    side = min(1000, max(480, 300 + 50 * n))
    _base_layout(fig, title=title, height=side)
    fig.update_layout(margin={"l": 230, "b": 190})
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11}, scaleanchor="x", constrain="domain")
    fig.update_xaxes(tickangle=-40, tickfont={"size": 11})
    return fig


# ----------------------------------------------------------------------------------------------
# 7. length histogram


def _bucket_counts(lengths: Iterable[int], buckets: Sequence[int]) -> tuple[dict[int, int], int]:
    """How many lengths go to each bucket (the smallest that fits) and how many fit none."""
    edges = sorted(set(int(b) for b in buckets))
    counts = {b: 0 for b in edges}
    too_long = 0
    arr = np.asarray(list(lengths))
    idx = np.searchsorted(edges, arr, side="left")
    for i in idx:
        if i >= len(edges):
            too_long += 1
        else:
            counts[edges[i]] += 1
    return counts, too_long


def length_histogram_figure(lengths: list[int], buckets: list[int] | None = None) -> go.Figure:
    """The distribution of sequence lengths with the bucket edges over it: a bucket set tuned to
    the distribution puts edges just above the peaks, where padding is least."""
    title = "Sequence lengths"
    if len(lengths) == 0:
        return _empty_figure(title, height=380)
    arr = np.asarray(lengths, dtype=int)
    hi = int(arr.max())
    edges = sorted(set(int(b) for b in buckets)) if buckets else []
    span = max([hi] + edges)
    # A power-of-two bin width: bins then end exactly at power-of-two bucket edges.
    size = 1 << max(0, math.ceil(math.log2(max(1, span / 40))))
    fig = go.Figure(
        go.Histogram(
            x=arr,
            xbins={"start": 0.5, "end": span + size + 0.5, "size": size},
            marker={"color": "#4c78a8", "line": {"width": 0.5, "color": "#ffffff"}},
            hovertemplate="lengths %{x}<br>%{y} sequences<extra></extra>",
            name="sequences",
            showlegend=False,
        )
    )
    title = f"{title} (n={len(arr)}, median {int(np.median(arr))}, max {hi})"
    if edges:
        counts, too_long = _bucket_counts(arr, edges)
        for b in edges:
            fig.add_vline(
                x=b + 0.5,
                line={"dash": "dash", "color": STRATEGY_COLORS["buckets"], "width": 1.5},
                annotation_text=f"≤{b}: {counts[b]}",
                annotation_position="top",
                annotation_font={"size": 11, "color": STRATEGY_COLORS["buckets"]},
            )
        title += " — buckets " + ", ".join(str(b) for b in edges)
        if too_long:
            title += f" ({too_long} longer than the largest bucket)"
    _base_layout(fig, title=title, height=380)
    fig.update_xaxes(title_text="sequence length (tokens)", range=[0, span * 1.05 + 1])
    fig.update_yaxes(title_text="sequences")
    return fig
