"""Latency: samples per strategy, each with its median's ratio to native dynamic.

One row per strategy (names on the left, horizontal, so eight long names fit a phone): the ratio
(with its interval over the rounds, where the result has one) and the median written over a box of the timed samples (host + device: the latency people feel),
and, where the result splits it, a thin bar under the box with the device part (the calls) and
the host part (tokenize, plan, scatter, gather). A strategy that did not run keeps its row with
a "not run: <reason>" note.

>>> ratio_text(0.5)
'0.50x = 2.00x faster'
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from shapedemo.measure.report import ratio_text
from shapedemo.plots.style import (
    _NOTE_COLOR,
    ROW_PX,
    _base_layout,
    _empty_figure,
    _number,
    _row_note,
    _shade,
    grey_legend,
    light_marker,
    not_run_reason,
    short_reason,
    strategy_axis,
    strategy_color,
    strategy_name,
    title_text,
)

__all__ = ["latency_figure"]

#: A latency row is taller than a bar row: the ratio line, the box, the host/device bar.
_LATENCY_ROW_PX = ROW_PX + 30


def _stats(result: dict[str, Any] | None, key: str = "latency_ms") -> tuple[list[float], float | None]:
    """Samples and median of one stats dict; samples fall back to the median alone, median to the
    samples' median, so partial results still draw. Absent and None are the same.

    >>> _stats({"latency_ms": {"samples": [3.0, 1.0, 2.0]}})
    ([3.0, 1.0, 2.0], 2.0)
    >>> _stats({"supported": False, "reason": "x"})
    ([], None)
    """
    lat = (result or {}).get(key) or {}
    samples = [float(s) for s in (lat.get("samples") or []) if _number(s) is not None]
    median = _number(lat.get("median"))
    if median is None and samples:
        median = float(np.median(samples))
    if not samples and median is not None:
        samples = [median]
    return samples, median


def _latency(result: dict[str, Any]) -> tuple[list[float], float | None]:
    return _stats(result, "latency_ms")


def _reference(
    rows: list[tuple[str, list[float], float | None]], baseline: dict[str, Any] | None
) -> tuple[str, float | None, str]:
    """What the ratios are to: ``(name on the chart, median, words for the title)``. The
    ``baseline`` (native dynamic measured on another device) when given, else ``dynamic``, else
    the fastest strategy."""
    if baseline:
        _, median = _stats(baseline)
        if median is not None:
            device = str(baseline.get("device") or "the reference device")
            return "", median, f"native dynamic on {device}"
    timed = [(name, median) for name, _, median in rows if median is not None]
    if not timed:
        return "", None, ""
    if any(name == "dynamic" for name, _ in timed):
        name = "dynamic"
    else:
        name = min(timed, key=lambda r: r[1])[0]
    return name, next(m for n, m in timed if n == name), name


def latency_figure(results: list[dict[str, Any]], *, baseline: dict[str, Any] | None = None) -> go.Figure:
    """Latency samples per strategy (a box with every point), each row topped by its median's
    ratio to native dynamic's: the number a reader wants is "how much slower than native
    dynamic", not milliseconds.

    ``baseline``: ``{"device": "CPU", "latency_ms": {...}}`` when native dynamic could not run on
    the target device and was measured on the reference device instead; it is drawn as a
    reference line "native dynamic on CPU" and the ratios are to it. Without it the ratios are
    to ``dynamic``, or to the fastest strategy when ``dynamic`` did not run. Results with
    ``host_ms`` and ``device_ms`` get a bar under their box: device part solid, host part light.
    """
    title = "Latency per batch"
    rows = [(strategy_name(r), *_latency(r)) for r in results]
    base_median = _stats(baseline)[1] if baseline else None
    if not results or (all(median is None for _, _, median in rows) and base_median is None):
        return _empty_figure(title, height=420)
    ref_name, ref_median, ref_words = _reference(rows, baseline)
    names = [name for name, _, _ in rows]
    fig = go.Figure()
    has_split = False
    missing: list[str] = []
    top = max([max(s) for _, s, _ in rows if s] + [base_median or 0.0])
    # long row names ("buckets-partition · int8") narrow the plot: a smaller label still fits a phone
    label_size = 11 if max(map(len, names)) > 18 else 12
    for result, (name, samples, median) in zip(results, rows):
        color = strategy_color(name)
        reason = not_run_reason(result)
        if reason is not None or median is None:
            if reason is None:
                missing.append(name)
            text = short_reason(reason) if reason is not None else "no latency measured"
            _row_note(fig, y=name, text=text, hover=reason)
            continue
        fig.add_trace(
            go.Box(
                x=samples,
                y=[name] * len(samples),
                name=name,
                orientation="h",
                marker={"color": color, "size": 5, "opacity": 0.75},
                line={"color": color},
                boxpoints="all",
                jitter=0.5,
                pointpos=0,
                width=0.34,
                showlegend=False,
                hovertemplate=f"{name}<br>%{{x:.2f}} ms<extra></extra>",
            )
        )
        has_split |= _host_device_bar(fig, result, name=name, color=color)
        if ref_median:
            text = ratio_text(median / ref_median, is_reference=(name == ref_name), interval=result.get("ratio_interval"))
        else:
            text = "n/a"
        fig.add_annotation(
            x=0,
            xref="x domain",
            y=name,
            yshift=ROW_PX * 0.55,
            text=f"<b>{text}</b> · {median:.1f} ms",
            showarrow=False,
            xanchor="left",
            font={"size": label_size, "color": _shade(color, -0.15)},
            bgcolor="rgba(255,255,255,0.85)",
        )
    if ref_median:
        fig.add_vline(x=ref_median, line={"dash": "dot", "color": _NOTE_COLOR, "width": 1.5}, layer="below")
        if not ref_name:
            fig.add_annotation(
                x=ref_median,
                y=1,
                yref="paper",
                text=ref_words,
                showarrow=False,
                xanchor="left",
                yanchor="bottom",
                font={"size": 11, "color": _NOTE_COLOR},
            )
    notes = [f"ratio of medians vs {ref_words}" if ref_words else ""]
    if missing:
        notes.append(f"no latency for {', '.join(missing)}")
    if has_split:
        grey_legend(fig, [("device: the calls", False), ("host: tokenize, plan, scatter, gather", True)])
    height = 100 + _LATENCY_ROW_PX * len(names) + (30 if has_split else 0)
    _base_layout(fig, title=title_text(title, notes), height=height, legend=has_split)
    fig.update_xaxes(title_text="latency per batch (ms)", range=[0, top * 1.08], rangemode="tozero", tickfont={"size": 11})
    strategy_axis(fig, names)
    fig.update_layout(barmode="stack")
    return fig


def _host_device_bar(fig: go.Figure, result: dict[str, Any], *, name: str, color: str) -> bool:
    """Under the box of ``name``, its median device time (solid) and host time (light, hatched)
    stacked; False when the result does not split its latency."""
    _, device = _stats(result, "device_ms")
    _, host = _stats(result, "host_ms")
    if device is None or host is None:
        return False
    total = device + host
    common = {"y": [name], "orientation": "h", "width": 0.16, "offset": 0.22, "showlegend": False}
    fig.add_trace(
        go.Bar(
            x=[device],
            name="device (the calls)",
            marker={"color": color, "line": {"width": 0}},
            hovertemplate=f"{name}<br>device {device:.2f} ms ({100 * device / total:.0f}%)<extra></extra>" if total else None,
            **common,
        )
    )
    fig.add_trace(
        go.Bar(
            x=[host],
            name="host (tokenize, plan, scatter, gather)",
            marker=light_marker(color),
            hovertemplate=f"{name}<br>host {host:.2f} ms ({100 * host / total:.0f}%)<extra></extra>" if total else None,
            **common,
        )
    )
    return True

