"""Shared style of every figure: one colour per strategy, the template, layout helpers.

A strategy has the same colour in every figure (``STRATEGY_COLORS``; ``strategy_color`` for names
not in it), so a reader can follow ``buckets`` from the padding picture to the latency boxes.

>>> strategy_color("padding-nomask") == STRATEGY_COLORS["padding-nomask"]
True
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any, Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

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
    "dynamic-bounded": "#0b3c73",
    "auto": "#d45087",
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


#: Figures are drawn for a phone (390 px) as much as for a desktop (1400 px): Gradio renders a
#: figure at its container's width and the figure's own height, so every figure is one column,
#: labels run horizontally, and titles are short lines (``wrap``).
TITLE_CHARS = 40
NOTE_CHARS = 52
_TITLE_SIZE = 15
_NOTE_SIZE = 12
#: Height of one line of text in the title block or under the plot, in px.
_LINE_PX = 18


def wrap(parts: Iterable[str], *, width: int = NOTE_CHARS, sep: str = " · ") -> list[str]:
    """Phrases joined into lines of at most ``width`` characters (a phrase longer than a line is
    cut at spaces); a phrase is never split between lines when it fits on one.

    >>> wrap(["n=16", "median 17", "max 39", "buckets 16, 32, 64, 128"], width=30)
    ['n=16 · median 17 · max 39', 'buckets 16, 32, 64, 128']
    >>> wrap(["a very long phrase that does not fit"], width=16)
    ['a very long', 'phrase that does', 'not fit']
    """
    lines: list[str] = []
    current = ""
    for part in parts:
        for piece in _cut(part, width):
            candidate = piece if not current else current + sep + piece
            if len(_plain(candidate)) <= width or not current:
                current = candidate
            else:
                lines.append(current)
                current = piece
    if current:
        lines.append(current)
    return lines


def _plain(text: str) -> str:
    """``text`` without HTML tags, for measuring."""
    return re.sub(r"<[^>]+>", "", text)


def _cut(phrase: str, width: int) -> list[str]:
    """``phrase`` cut at spaces into pieces of at most ``width`` characters."""
    if len(_plain(phrase)) <= width:
        return [phrase]
    pieces: list[str] = []
    current = ""
    for word in phrase.split(" "):
        if current and len(_plain(current)) + 1 + len(_plain(word)) > width:
            pieces.append(current)
            current = word
        else:
            current = word if not current else current + " " + word
    if current:
        pieces.append(current)
    return pieces


def shorten(text: str, width: int = 30) -> str:
    """One line of at most ``width`` characters, ending in an ellipsis when cut.

    >>> shorten("a  short\\ntext"), shorten("x" * 40)
    ('a short text', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxx…')
    """
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def title_text(title: str, notes: Iterable[str] = ()) -> str:
    """A figure title: ``title`` in lines of at most ``TITLE_CHARS``, then ``notes`` (phrases) in
    smaller grey lines of at most ``NOTE_CHARS``; lines joined with ``<br>``.

    >>> title_text("Latency per batch", ["ratio of medians vs dynamic"])
    'Latency per batch<br><span style="font-size:12px;color:#666666">ratio of medians vs dynamic</span>'
    """
    lines = wrap(title.split(" — "), width=TITLE_CHARS, sep=" — ")
    for note in wrap([n for n in notes if n]):
        lines.append(f'<span style="font-size:{_NOTE_SIZE}px;color:{_NOTE_COLOR}">{note}</span>')
    return "<br>".join(lines)


def _title_lines(text: str) -> int:
    return text.count("<br>") + 1


def _base_layout(fig: go.Figure, *, title: str, height: int, legend: bool = False, bottom: int = 0) -> go.Figure:
    """Title (already wrapped, see ``title_text``), height, template; margins that let the axes'
    labels push them (``automargin``) rather than fixed room for the longest name; the legend,
    when there is one, horizontal under the plot, where it wraps on a phone instead of covering
    the bars. ``bottom``: extra px under the plot (notes, a legend of several rows)."""
    # plotly puts a title of several lines with its first baseline at ``y`` (one line has its
    # top there): one font size lower, or the first line is cut off at the figure's top edge
    drop = _TITLE_SIZE if _title_lines(title) > 1 else 0
    top = 16 + _LINE_PX * _title_lines(title) + 14 + drop
    fig.update_layout(
        title={
            "text": title,
            "x": 0,
            "xref": "container",
            "xanchor": "left",
            "y": 1 - (10 + drop) / height,
            "yanchor": "top",
            "yref": "container",
            "pad": {"l": 8},
            "font": {"size": _TITLE_SIZE},
        },
        height=height,
        template=TEMPLATE,
        margin={"l": 8, "r": 14, "t": top, "b": 12 + bottom + (40 if legend else 0)},
        hoverlabel={"align": "left"},
        showlegend=legend,
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "xref": "container",
            "y": 0,
            "yanchor": "bottom",
            "yref": "container",
            "font": {"size": 12},
            "itemsizing": "constant",
            "traceorder": "normal",
        },
    )
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _empty_figure(title: str, height: int = 320) -> go.Figure:
    """A figure with no data and a centred "nothing to show yet": what a UI shows before a run."""
    fig = go.Figure()
    _base_layout(fig, title=title_text(title), height=height)
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


# ----------------------------------------------------------------------------------------------
# results: one row per strategy, supported or not

#: Rows of a strategy chart (latency, costs, fidelity), in px: names stay horizontal on the left.
ROW_PX = 34


def strategy_name(result: dict[str, Any]) -> str:
    return str(result.get("strategy", "?"))


def not_run_reason(result: dict[str, Any]) -> str | None:
    """The reason a strategy did not run (``"supported": false``), or None when it ran."""
    if result.get("supported", True) is False:
        return str(result.get("reason") or "not supported on this device")
    return None


def short_reason(reason: str, width: int = 44) -> str:
    """A device's error made short enough for a label: source locations and exception prefixes
    dropped, one line, cut with an ellipsis.

    >>> short_reason("Exception from src/plugins/intel_npu/src/plugin.cpp:612: get_shape was called on a descriptor::Tensor with dynamic shape")
    'not run: get_shape was called on a descript…'
    >>> short_reason("static-only mode")
    'not run: static-only mode'
    """
    text = " ".join(reason.split())
    text = re.sub(r"^(\w+ )?(exception|error)( from)? [^\s:]+(:\d+)?:\s*", "", text, flags=re.IGNORECASE)
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    return shorten("not run: " + text, width)


def _row_note(fig: go.Figure, *, y: str, text: str, hover: str | None = None, xref: str = "x", yref: str = "y") -> None:
    """A small grey note at the start of a strategy's row where its bar would be: a missing
    measurement or a strategy that did not run is shown, not hidden."""
    fig.add_annotation(
        x=0,
        y=y,
        xref=f"{xref} domain",
        yref=yref,
        text=text,
        hovertext=hover,
        showarrow=False,
        xanchor="left",
        font={"size": 12, "color": _NOTE_COLOR},
        bgcolor="rgba(255,255,255,0.85)",
    )


def strategy_axis(fig: go.Figure, names: list[str], **where: Any) -> None:
    """The strategy names down the y axis, first on top, horizontal (readable at 390 px)."""
    fig.update_yaxes(
        type="category",
        categoryorder="array",
        categoryarray=names,
        autorange="reversed",
        tickfont={"size": 12},
        showgrid=False,
        ticks="",
        ticklabelstandoff=4,
        **where,
    )


def light_marker(color: str | list[str]) -> dict[str, Any]:
    """Marker of the light, hatched part of a split bar, in ``color`` (one or one per bar)."""
    colors = [color] if isinstance(color, str) else color
    light = [_shade(c, 0.65) for c in colors]
    return {
        "color": light[0] if isinstance(color, str) else light,
        "line": {"width": 0},
        "pattern": {"shape": "/", "fgcolor": color, "size": 6, "solidity": 0.35},
    }


def grey_legend(fig: go.Figure, entries: list[tuple[str, bool]], **where: Any) -> None:
    """Legend entries in grey for the parts of split bars, ``(name, light)``: the bars carry each
    strategy's colour, the legend says which part is which."""
    for name, light in entries:
        marker = light_marker("#777777") if light else {"color": "#777777", "line": {"width": 0}}
        fig.add_trace(
            go.Bar(x=[None], y=[None], orientation="h", name=name, marker=marker, showlegend=True, hoverinfo="skip"),
            **where,
        )


def two_panels(names: list[str], titles: list[str], *, gap_px: int) -> go.Figure:
    """Two panels one under the other, each with one row per strategy (``ROW_PX`` each) and a
    left-aligned title: the phone layout of the costs and fidelity charts."""
    panel_px = ROW_PX * len(names)
    fig = make_subplots(rows=2, cols=1, subplot_titles=titles, vertical_spacing=gap_px / (2 * panel_px + gap_px))
    fig.update_annotations(font={"size": 13}, x=0, xanchor="left")
    return fig
