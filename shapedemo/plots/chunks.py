"""Chunk decomposition: how each strategy splits the batch into calls (``5 = 4 + 1``).

>>> from shapedemo.planning.plan import single_row_call
>>> decomposition(Plan("padding", (3, 5), (single_row_call(2, 8, [(0, 3), (1, 5)]),)))
'2 = 2'
"""

from __future__ import annotations

from typing import Any, Sequence

import plotly.graph_objects as go

from shapedemo.planning.plan import Call, Plan
from shapedemo.plots.style import (
    _PAD_LINE,
    PAD_COLOR,
    STRATEGY_COLORS,
    _base_layout,
    _blocks,
    _empty_figure,
    _title_lines,
    strategy_color,
    title_text,
)

__all__ = ["decomposition", "chunk_decomposition_figure"]


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

    >>> from shapedemo.planning.plan import single_row_call
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


#: One strategy's line, in px, and the share of it a block fills (the rest: its decomposition).
_ROW_PX = 64
_BLOCK = 0.5


def _shape_label(call: Call) -> str:
    return f"{call.batch}x{call.seq}"


def chunk_decomposition_figure(plans: list[Plan]) -> go.Figure:
    """How each strategy splits the batch into calls (``5 = 4 + 1``), one line per strategy.

    Each call is a block as wide as its batch, labelled with its shape (``4x128``); padding rows
    are grey and hatched; under a packed call, each row's number of sequences (``(2+3)`` is one
    call whose two rows hold 2 and 3 sequences, said under the title). The decomposition is
    written above each line, where a phone has room for it, and in every hover.
    """
    title = "How each strategy splits the batch"
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
            # one-row calls (dynamic-single) are too narrow for a shape: their number, n of N
            calls["text"].append(str(ci + 1) if _numbered(plan) else _shape_label(call))
            calls["hover"].append(_call_hover(plan, dec, ci, call))
            if plan.packed:
                for ri, row in enumerate(call.rows):
                    counts["x"].append(x + ri + 0.5)
                    counts["y"].append(k + 0.36)
                    counts["text"].append(str(len(row)))
            x += call.batch
        widest = max(widest, x)
    fig = go.Figure()
    bar = {"width": _BLOCK}
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
                showlegend=False,
            )
        )
    for k, (plan, dec) in enumerate(zip(plans, decomps)):
        # Above the line, from its start: the full width of a phone is there for it.
        fig.add_annotation(
            x=0, y=k, text=dec, xanchor="left", yanchor="bottom", yshift=_ROW_PX * _BLOCK / 2 + 1, showarrow=False, font={"size": 12}
        )
    notes = ["one block per call, as wide as its rows" if len(plans) > 1 else ""]
    if counts["x"]:
        notes.append("(2+3): one call whose rows hold 2 and 3 sequences")
    full_title = title_text(title, notes)
    has_pad = bool(pad["x"])
    numbered = [p for p in plans if _numbered(p)]
    # the axis title's second line (a phone's chart is too narrow for it on one)
    height = 90 + 18 * _title_lines(full_title) + _ROW_PX * len(plans) + (40 if has_pad else 0) + (18 if numbered else 0)
    _base_layout(fig, title=full_title, height=height, legend=has_pad)
    fig.update_layout(barmode="overlay", uniformtext={"minsize": 9, "mode": "hide"})
    axis = "rows (batch axis), call after call"
    if numbered:
        axis += f"<br>{numbered[0].strategy}: call n of {numbered[0].num_calls}, one row each"
    fig.update_xaxes(title_text=axis, range=[0, widest * 1.01], tickfont={"size": 11})
    fig.update_yaxes(
        tickmode="array",
        tickvals=list(range(len(plans))),
        ticktext=[p.strategy for p in plans],
        range=[len(plans) - 0.45, -0.75],
        showgrid=False,
        zeroline=False,
        tickfont={"size": 12},
    )
    return fig


def _numbered(plan: Plan) -> bool:
    """Whether the plan's calls are labelled by number: several calls of one row each.

    >>> from shapedemo.planning.strategies import make_plan
    >>> _numbered(make_plan("dynamic-single", [3, 5])), _numbered(make_plan("dynamic", [3, 5]))
    (True, False)
    """
    return plan.num_calls > 1 and all(c.batch == 1 for c in plan.calls)


def _call_hover(plan: Plan, dec: str, ci: int, call: Call) -> str:
    """Everything about one call, for the chunk figure's hover."""
    used = call.batch - call.padding_rows
    lines = [f"<b>{plan.strategy}</b>: {dec}", f"call {ci + 1} of {plan.num_calls}: shape {call.batch} x {call.seq}"]
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
