"""Length histogram: the distribution of sequence lengths with the bucket edges over it."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from shapedemo.planning.edges import bucket_for
from shapedemo.plots.style import STRATEGY_COLORS, _base_layout, _empty_figure, _title_lines, title_text

__all__ = ["length_histogram_figure"]


def _bucket_counts(lengths: Iterable[int], buckets: Sequence[int]) -> tuple[dict[int, int], int]:
    """How many lengths go to each bucket (the smallest that fits, ``buckets.bucket_for``) and how
    many fit none.

    >>> _bucket_counts([5, 9, 17, 30, 200], [32, 16])
    ({16: 2, 32: 2}, 1)
    """
    edges = tuple(sorted(set(int(b) for b in buckets)))
    counts = {b: 0 for b in edges}
    too_long = 0
    for n in lengths:
        if not edges or n > edges[-1]:
            too_long += 1
        else:
            counts[bucket_for(int(n), edges)] += 1
    return counts, too_long


#: The narrowest plot area a label must fit (a phone, 390 px wide, less the axes), in px, and
#: the width of one character of an edge label.
_NARROW_PX = 300
_CHAR_PX = 7.0


def _label_levels(edges: list[int], labels: list[str], *, span: float) -> list[int]:
    """A height level (0, 1, 2...) per bucket-edge label, so that labels that would overlap on the
    narrowest screen sit one above the other instead.

    >>> _label_levels([16, 32, 64, 128], ["≤16: 5", "≤32: 7", "≤64: 3", "≤128: 1"], span=135)
    [0, 1, 0, 0]
    """
    px = _NARROW_PX / span
    ends: list[float] = []  # right end of the last label on each level
    levels = []
    for edge, label in zip(edges, labels):
        half = _CHAR_PX * len(label) / 2
        centre = (edge + 0.5) * px
        level = next((k for k, end in enumerate(ends) if centre - half > end + 4), len(ends))
        if level == len(ends):
            ends.append(0.0)
        ends[level] = centre + half
        levels.append(level)
    return levels


def length_histogram_figure(lengths: list[int], buckets: list[int] | None = None) -> go.Figure:
    """The distribution of sequence lengths with the bucket edges over it: a bucket set tuned to
    the distribution puts edges just above the peaks, where padding is least. Each edge says how
    many sequences its bucket takes; the count axis has whole numbers only."""
    title = "Sequence lengths"
    if len(lengths) == 0:
        return _empty_figure(title, height=380)
    arr = np.asarray(lengths, dtype=int)
    hi = int(arr.max())
    edges = sorted(set(int(b) for b in buckets)) if buckets else []
    span = max([hi] + edges)
    # A power-of-two bin width: bins then end exactly at power-of-two bucket edges.
    size = 1 << max(0, math.ceil(math.log2(max(1, span / 40))))
    bins = np.arange(0.5, span + size + 0.5 + size, size)
    tallest = int(np.histogram(arr, bins=bins)[0].max())
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
    notes = [f"n={len(arr)}", f"median {int(np.median(arr))}", f"max {hi}"]
    levels = [0]
    if edges:
        counts, too_long = _bucket_counts(arr, edges)
        labels = [f"≤{b}: {counts[b]}" for b in edges]
        levels = _label_levels(edges, labels, span=span * 1.05 + 1)
        for b, label, level in zip(edges, labels, levels):
            fig.add_vline(x=b + 0.5, line={"dash": "dash", "color": STRATEGY_COLORS["buckets"], "width": 1.5})
            fig.add_annotation(
                x=b + 0.5,
                y=1,
                yref="paper",
                yanchor="bottom",
                yshift=2 + 16 * level,
                text=label,
                showarrow=False,
                font={"size": 11, "color": STRATEGY_COLORS["buckets"]},
            )
        notes.append("buckets " + ", ".join(str(b) for b in edges))
        if too_long:
            notes.append(f"{too_long} longer than the largest bucket")
    full_title = title_text(title, notes)
    rise = 16 * (max(levels) + 1)
    _base_layout(fig, title=full_title, height=330 + 18 * _title_lines(full_title) + rise)
    fig.update_layout(margin={"t": fig.layout.margin.t + rise})
    fig.update_xaxes(title_text="sequence length (tokens)", range=[0, span * 1.05 + 1], tickfont={"size": 11})
    # Counts are whole: small counts get a tick per sequence, not 0.5 steps.
    fig.update_yaxes(title_text="sequences", rangemode="tozero", tickformat="d", tickfont={"size": 11}, ticklabelstandoff=8, **({"dtick": 1} if tallest <= 8 else {}))
    return fig
