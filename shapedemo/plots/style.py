"""Shared style of every figure: one colour per strategy, the template, layout helpers.

A strategy has the same colour in every figure (``STRATEGY_COLORS``; ``strategy_color`` for names
not in it), so a reader can follow ``buckets`` from the padding picture to the latency boxes.

>>> strategy_color("padding-nomask") == STRATEGY_COLORS["padding-nomask"]
True
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import plotly.graph_objects as go

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


def _blocks(columns: dict[str, list[Any]]) -> dict[str, Any]:
    """Horizontal bar arguments for blocks collected as ``x`` (width), ``base`` (start) and ``y``:
    one trace draws any number of blocks, which keeps large plans fast."""
    return {"orientation": "h", "x": columns["x"], "base": columns["base"], "y": columns["y"]}


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
