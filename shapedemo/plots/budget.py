"""How many shapes should I compile? For each budget K of compiled shapes, the padding it leaves,
the latency it predicts, and what it costs: compile time and memory, the knee marked.

One panel per quantity, one under the other, sharing the K axis (a phone shows each at full
width). ``rows`` come from the bucket-budget tuner, one per K:
``{"k", "padding_fraction", "predicted_ms", "compile_s", "memory_mb", "shapes", "knee"}`` (and
``within_noise``: K within the noise of the knee, shaded); ``compile_s`` and ``memory_mb`` may be
None when not measured. The objective is the predicted latency: padding is what it leaves, so
padding can rise from one K to the next, and the chart says so.

>>> fig = shape_budget_figure([])
>>> fig.layout.annotations[0].text
'nothing to show yet'
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shapedemo.plots.style import (
    _NOTE_COLOR,
    STRATEGY_COLORS,
    _base_layout,
    _empty_figure,
    _number,
    _title_lines,
    title_text,
)

__all__ = ["shape_budget_figure"]

_PANELS = (
    ("padding_fraction", "padding % (not the objective)", 100.0, "{:.0f}%"),
    ("predicted_ms", "predicted ms per text (the objective)", 1.0, "{:.1f} ms"),
    ("compile_s", "compile time (s)", 1.0, "{:.1f} s"),
    ("memory_mb", "process memory added (MiB)", 1.0, "{:.0f} MiB"),
)
_PANEL_PX = 120
_GAP_PX = 44
_COLOR = STRATEGY_COLORS["buckets"]
_KNEE_COLOR = STRATEGY_COLORS["auto"]


def _shapes_text(shapes: Any) -> str:
    """``[[8, 32], [8, 64]]`` as ``8x32, 8x64``.

    >>> _shapes_text([[8, 32], [1, 128]])
    '8x32, 1x128'
    """
    return ", ".join("x".join(str(d) for d in s) for s in (shapes or []))


def shape_budget_figure(rows: list[dict[str, Any]]) -> go.Figure:
    """For K = 1..8 compiled shapes: padding fraction, predicted latency, compile time and memory,
    one panel each over a shared K axis, the knee (the K after which one more shape saves little)
    marked in every panel and labelled with its numbers. Unmeasured compile time or memory
    leaves a gap with a note, never a zero."""
    title = "How many shapes should I compile?"
    rows = sorted((r for r in rows if _number(r.get("k")) is not None), key=lambda r: r["k"])
    if not rows:
        return _empty_figure(title, height=420)
    ks = [int(r["k"]) for r in rows]
    knee = next((r for r in rows if r.get("knee")), None)
    n = len(_PANELS)
    plot_px = n * _PANEL_PX + (n - 1) * _GAP_PX
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        subplot_titles=[label for _, label, _, _ in _PANELS],
        vertical_spacing=_GAP_PX / plot_px,
    )
    fig.update_annotations(font={"size": 13}, x=0, xanchor="left")
    hover_shapes = [_shapes_text(r.get("shapes")) for r in rows]
    for i, (key, label, scale, fmt) in enumerate(_PANELS, start=1):
        values = [_number(r.get(key)) for r in rows]
        shown = [None if v is None else v * scale for v in values]
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=shown,
                name=label,
                mode="lines+markers",
                line={"color": _COLOR, "width": 2},
                marker={
                    "size": [13 if r.get("knee") else 7 for r in rows],
                    "color": [_KNEE_COLOR if r.get("knee") else _COLOR for r in rows],
                },
                connectgaps=False,
                showlegend=False,
                customdata=[[fmt.format(v) if v is not None else "not measured", s] for v, s in zip(shown, hover_shapes)],
                hovertemplate=f"K=%{{x}}<br>{label}: %{{customdata[0]}}<br>shapes: %{{customdata[1]}}<extra></extra>",
            ),
            row=i,
            col=1,
        )
        present = [v for v in shown if v is not None]
        if not present:
            fig.add_annotation(
                text="not measured", x=0.5, y=0.5, xref=f"x{i} domain" if i > 1 else "x domain",
                yref=f"y{i} domain" if i > 1 else "y domain", showarrow=False, font={"size": 12, "color": _NOTE_COLOR},
            )
        else:
            missing = [k for k, v in zip(ks, shown) if v is None]
            if missing:
                fig.add_annotation(
                    text=f"not measured at K={', '.join(map(str, missing))}", x=1, y=1, xref=f"x{i} domain" if i > 1 else "x domain",
                    yref=f"y{i} domain" if i > 1 else "y domain", xanchor="right", yanchor="bottom", showarrow=False,
                    font={"size": 11, "color": _NOTE_COLOR},
                )
        top = max(present, default=1.0) or 1.0
        fig.update_yaxes(range=[0, top * 1.2], rangemode="tozero", tickfont={"size": 11}, nticks=4, row=i, col=1)
    notes = ["objective: least predicted latency per text (padding may rise with K)"]
    near = [int(r["k"]) for r in rows if r.get("within_noise")]
    if knee is not None and near and (min(near), max(near)) != (int(knee["k"]),) * 2:
        fig.add_vrect(x0=min(near) - 0.3, x1=max(near) + 0.3, fillcolor=_KNEE_COLOR, opacity=0.08, line_width=0)
        notes.append(f"K within noise of the knee: {min(near)}-{max(near)} (shaded)")
    if knee is not None:
        k = int(knee["k"])
        fig.add_vline(x=k, line={"dash": "dot", "color": _KNEE_COLOR, "width": 1.5})
        words = [f"knee at K={k}"]
        pad = _number(knee.get("padding_fraction"))
        ms = _number(knee.get("predicted_ms"))
        if pad is not None:
            words.append(f"padding {100 * pad:.0f}%")
        if ms is not None:
            words.append(f"{ms:.1f} ms predicted")
        notes.append(", ".join(words))
        if knee.get("shapes"):
            notes.append("shapes " + _shapes_text(knee["shapes"]))
        notes.append("knee rule: fewest shapes within 5% (+ the noise) of the least predicted cost")
        fig.add_annotation(
            x=k, y=1, xref="x", yref="y domain", text=f"<b>knee: K={k}</b>", showarrow=False, xanchor="left", xshift=4,
            yanchor="top", font={"size": 12, "color": _KNEE_COLOR}, bgcolor="rgba(255,255,255,0.85)",
        )
    fig.update_xaxes(tickmode="array", tickvals=ks, showticklabels=True, tickfont={"size": 11}, range=[min(ks) - 0.4, max(ks) + 0.4])
    fig.update_xaxes(title_text="K: compiled shapes allowed", row=n, col=1)
    full_title = title_text(title, notes)
    _base_layout(fig, title=full_title, height=70 + 18 * _title_lines(full_title) + plot_px + 40)
    return fig
