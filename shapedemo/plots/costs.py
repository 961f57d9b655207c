"""Costs paid before the first request: compile time and memory per strategy."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from shapedemo.plots.style import _base_layout, _empty_figure, _number, _strategy_bars

__all__ = ["costs_figure"]


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
