"""Figures of a traffic stream (``TrafficRun.to_dict()``): latency over time, queue delay vs
compute, and what ran when on which compiled shape. Pure plotly, no OpenVINO, no gradio; empty
input gives a figure that says "nothing to show yet".

>>> latency_over_time_figure({}).layout.annotations[0].text
'nothing to show yet'
>>> run = {"strategy": "buckets", "requests": [{"id": 0, "arrival": 0.1, "start": 0.105, "end": 0.12,
...        "queue_ms": 5.0, "compute_ms": 15.0, "latency_ms": 20.0, "texts": 1, "tokens": 9, "batch": 0}],
...        "batches": [{"id": 0, "start": 0.105, "end": 0.12, "texts": 1, "real_tokens": 9,
...        "computed_tokens": 16, "padding_fraction": 0.4375, "requests": [0],
...        "calls": [{"batch": 1, "seq": 16, "packed": False, "dynamic": False, "start": 0.105, "ms": 15.0, "real_tokens": 9}]}]}
>>> [len(f.data) > 0 for f in (latency_over_time_figure(run), queue_vs_compute_figure(run), calls_timeline_figure(run))]
[True, True, True]
>>> list(calls_timeline_figure(run).data[0].y)
['1x16']
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import plotly.graph_objects as go

__all__ = ["calls_timeline_figure", "latency_over_time_figure", "queue_vs_compute_figure", "traffic_figures"]

_TEMPLATE = "plotly_white"
_QUEUE_COLOR = "#c8c8c8"  # waiting is grey, like padding: time spent on nothing
_COMPUTE_COLOR = "#1f5fa8"
_P95_COLOR = "#d62728"


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"}, height=height, template=_TEMPLATE,
        margin={"l": 70, "r": 30, "t": 110 if "<br>" in title else 70, "b": 70}, hoverlabel={"align": "left"},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0.0},
    )
    return fig


def _nothing(title: str, height: int = 320) -> go.Figure:
    fig = _layout(go.Figure(), title, height)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.add_annotation(text="nothing to show yet", x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font={"size": 18, "color": "#666666"})
    return fig


def _title(run: Mapping[str, Any], what: str) -> str:
    """The chart's name, and the run's strategy and rate on a line of their own (a phone's chart
    is too narrow for both on one).

    >>> _title({"strategy": "auto", "rate": 20.0}, "Latency")
    'Latency<br><span style="font-size:13px">auto at 20 req/s</span>'
    """
    rate = run.get("rate")
    return f'{what}<br><span style="font-size:13px">{run.get("strategy", "")}' + (f" at {rate:g} req/s" if rate else "") + "</span>"


def latency_over_time_figure(run: Mapping[str, Any]) -> go.Figure:
    """Each request's latency (ms) at its arrival time (s), its queue delay under it, and the
    p95 as a line: rising dots mean the offered rate is more than the strategy sustains."""
    requests = run.get("requests") or []
    if not requests:
        return _nothing("Latency of each request over time")
    x = [r["arrival"] for r in requests]
    hover = [
        f"request {r['id']} ({r['texts']} text, {r['tokens']} tokens)<br>latency {r['latency_ms']:.1f} ms = "
        f"queue {r['queue_ms']:.1f} + compute {r['compute_ms']:.1f}<br>batch {r['batch']}"
        for r in requests
    ]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=[r["latency_ms"] for r in requests], mode="markers", name="latency",
                             marker={"color": _COMPUTE_COLOR, "size": 6}, hovertext=hover, hoverinfo="text"))
    fig.add_trace(go.Scatter(x=x, y=[r["queue_ms"] for r in requests], mode="markers", name="of which queue delay",
                             marker={"color": _QUEUE_COLOR, "size": 5, "symbol": "diamond"}, hoverinfo="skip"))
    p95 = float(np.percentile([r["latency_ms"] for r in requests], 95))
    fig.add_hline(y=p95, line={"color": _P95_COLOR, "dash": "dash", "width": 1},
                  annotation_text=f"p95 {p95:.1f} ms", annotation_position="top left")
    fig.update_xaxes(title_text="arrival (s from the start of the stream)")
    fig.update_yaxes(title_text="ms", rangemode="tozero")
    return _layout(fig, _title(run, "Latency of each request over time"), 420)


def queue_vs_compute_figure(run: Mapping[str, Any]) -> go.Figure:
    """Each request's latency split into the time it waited for its batch (grey) and the time its
    batch ran (blue), in arrival order: the price of batching next to the work itself."""
    requests = run.get("requests") or []
    if not requests:
        return _nothing("Queue delay vs compute per request")
    order = list(range(len(requests)))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=order, y=[r["queue_ms"] for r in requests], name="queue delay", marker_color=_QUEUE_COLOR,
                         hovertemplate="request %{x}: queue %{y:.1f} ms<extra></extra>"))
    fig.add_trace(go.Bar(x=order, y=[r["compute_ms"] for r in requests], name="compute (its batch)", marker_color=_COMPUTE_COLOR,
                         hovertemplate="request %{x}: compute %{y:.1f} ms<extra></extra>"))
    queue = float(np.mean([r["queue_ms"] for r in requests]))
    compute = float(np.mean([r["compute_ms"] for r in requests]))
    fig.update_layout(barmode="stack", bargap=0.05)
    fig.update_xaxes(title_text=f"request, in arrival order<br>(mean: queue {queue:.1f} ms, compute {compute:.1f} ms)")
    fig.update_yaxes(title_text="ms")
    return _layout(fig, _title(run, "Queue delay vs compute per request"), 410)


def calls_timeline_figure(run: Mapping[str, Any]) -> go.Figure:
    """Every inference call as a bar on its compiled shape's lane, from when it was put in flight
    for as long as it took (a call that waited for a free infer request includes the wait), and
    a tick on it that stays visible however short the call: which shapes do the work, and how
    busy the engine is."""
    calls = [(b, c) for b in run.get("batches") or [] for c in b["calls"]]
    if not calls:
        return _nothing("Calls per compiled shape over time")

    def lane(c: Mapping[str, Any]) -> str:
        if c.get("dynamic"):
            return "dynamic"
        return f"{c['batch']}x{c['seq']}" + (" packed" if c.get("packed") else "")

    on_lane = [lane(c) for _, c in calls]
    lanes = sorted(set(on_lane), key=lambda s: (s == "dynamic", [int(v) if v.isdigit() else 0 for v in s.split()[0].split("x")]))
    padding = {"color": [b["padding_fraction"] for b, _ in calls], "colorscale": [[0, _COMPUTE_COLOR], [1, _QUEUE_COLOR]], "cmin": 0, "cmax": 1}
    fig = go.Figure(go.Bar(
        y=on_lane,
        x=[c["ms"] / 1e3 for _, c in calls],
        base=[c["start"] for _, c in calls],
        orientation="h",
        marker={**padding, "colorbar": {"title": {"text": "batch<br>padding"}, "thickness": 12}},
        hoverinfo="skip",
        name="calls",
        showlegend=False,
    ))
    # a call of a few ms is a hairline on a stream of seconds: a tick of fixed size marks each
    # one (its colour the same), the bar under it shows its length when zoomed in
    fig.add_trace(go.Scatter(
        y=on_lane,
        x=[c["start"] + c["ms"] / 2e3 for _, c in calls],
        mode="markers",
        marker={"symbol": "line-ns", "size": 18, "line": {"width": 2, **padding}},
        hovertext=[
            f"batch {b['id']}: call {name}" + (f" (ran as {c['batch']}x{c['seq']})" if c.get("dynamic") else "")
            + f"<br>{c['ms']:.1f} ms, {c['real_tokens']} real tokens<br>batch padding {b['padding_fraction']:.0%}"
            for (b, c), name in zip(calls, on_lane)
        ],
        hoverinfo="text",
        showlegend=False,
    ))
    fig.update_yaxes(categoryorder="array", categoryarray=lanes, title_text="compiled shape")
    fig.update_xaxes(title_text="time (s from the start of the stream)")
    return _layout(fig, _title(run, "Calls per compiled shape over time"), max(340, 160 + 28 * len(lanes)))


def traffic_figures(run: Mapping[str, Any]) -> tuple[go.Figure, go.Figure, go.Figure]:
    """The three figures of the Live traffic tab, in page order."""
    return latency_over_time_figure(run), queue_vs_compute_figure(run), calls_timeline_figure(run)
