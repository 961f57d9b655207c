"""Length histogram: the distribution of sequence lengths with the bucket edges over it."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import plotly.graph_objects as go

from shapedemo.buckets import bucket_for
from shapedemo.plots.style import STRATEGY_COLORS, _base_layout, _empty_figure

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
