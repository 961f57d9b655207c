"""Latency: samples per strategy, each topped by its median's ratio to native dynamic."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from shapedemo.plots.style import _base_layout, _empty_figure, strategy_color

__all__ = ["latency_figure"]


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
