"""Similarity: cosine similarity between the sentence embeddings of the user's texts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from shapedemo.plots.style import _base_layout, _empty_figure, _title_lines, shorten, title_text

__all__ = ["cosine_matrix", "similarity_figure"]


def cosine_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``embeddings`` (a zero row gives 0, not NaN).

    >>> cosine_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).round(3).tolist()
    [[1.0, 0.707, 0.0], [0.707, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    unit = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
    return unit @ unit.T


#: The matrix's side on a desktop, in px (a phone shows it as wide as it is).
_MATRIX_PX = 320
#: At most this many texts are listed under the matrix; the rest are in the hover.
_LISTED = 20


def similarity_figure(texts: list[str], embeddings: np.ndarray | None) -> go.Figure:
    """Cosine similarity between the embeddings of ``texts``: the result a user recognises
    ("these two sentences mean the same"), written in every cell of a small matrix. The axes are
    numbered and the texts listed under the matrix, so it stays square and readable on a phone.
    The colour scale runs 0..1, or -1..1 (diverging, white at 0) when a value is negative."""
    title = "Cosine similarity of the embeddings"
    emb = np.asarray(embeddings) if embeddings is not None else np.zeros((0, 0))
    if len(texts) == 0 or emb.size == 0:
        return _empty_figure(title, height=420)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"{len(texts)} texts but embeddings of shape {tuple(emb.shape)}; want ({len(texts)}, hidden)")
    sim = cosine_matrix(emb)
    n = len(texts)
    labels = [f"{i + 1}. {shorten(t)}" for i, t in enumerate(texts)]
    full = [shorten(t, 120) for t in texts]
    hover = [[f"{i + 1}. {full[i]}<br>vs<br>{j + 1}. {full[j]}<br>cosine {sim[i, j]:.4f}" for j in range(n)] for i in range(n)]
    negative = bool((sim < 0).any())
    scale = {"zmin": -1.0, "zmax": 1.0, "zmid": 0.0, "colorscale": "RdBu"} if negative else {"zmin": 0.0, "zmax": 1.0, "colorscale": "Blues"}
    fig = go.Figure(
        go.Heatmap(
            z=sim,
            x=labels,
            y=labels,
            **scale,
            text=hover,
            texttemplate="%{z:.2f}" if n <= 12 else "",
            textfont={"size": 12 if n <= 6 else 10},
            hovertemplate="%{text}<extra></extra>",
            xgap=1,
            ygap=1,
            colorbar={
                "title": {"text": "cosine", "side": "right"},
                "thickness": 12,
                "tickfont": {"size": 11},
                "lenmode": "pixels",
                "len": _MATRIX_PX - 60,
                "y": 1,
                "yanchor": "top",
            },
        )
    )
    listed = [f"{i + 1}. {shorten(t, 44)}" for i, t in enumerate(texts[:_LISTED])]
    if n > _LISTED:
        listed.append(f"… and {n - _LISTED} more (hover a cell)")
    fig.add_annotation(
        text="<br>".join(listed),
        x=0,
        xref="paper",
        y=0,
        yref="paper",
        yshift=-34,
        xanchor="left",
        yanchor="top",
        align="left",
        showarrow=False,
        font={"size": 12},
    )
    list_px = 18 * len(listed)
    full_title = title_text(title, ["negative values in red" if negative else ""])
    _base_layout(fig, title=full_title, height=60 + 18 * _title_lines(full_title) + _MATRIX_PX + list_px, bottom=30 + list_px)
    numbers = [str(i + 1) for i in range(n)]
    fig.update_yaxes(
        autorange="reversed", tickmode="array", tickvals=labels, ticktext=numbers, tickfont={"size": 11},
        scaleanchor="x", constrain="domain", constraintoward="top", showgrid=False,
    )
    fig.update_xaxes(
        tickmode="array", tickvals=labels, ticktext=numbers, tickangle=0, tickfont={"size": 11},
        constrain="domain", constraintoward="left", showgrid=False,
    )
    return fig
