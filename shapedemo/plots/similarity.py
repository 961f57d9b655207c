"""Similarity: cosine similarity between the sentence embeddings of the user's texts."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from shapedemo.plots.style import _base_layout, _empty_figure

__all__ = ["cosine_matrix", "similarity_figure"]


def _truncate(text: str, width: int = 30) -> str:
    """One line of at most ``width`` characters, ending in an ellipsis when cut.

    >>> _truncate("a  short\\ntext"), _truncate("x" * 40)
    ('a short text', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxx…')
    """
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def cosine_matrix(embeddings: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows of ``embeddings`` (a zero row gives 0, not NaN).

    >>> cosine_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])).round(3).tolist()
    [[1.0, 0.707, 0.0], [0.707, 1.0, 0.0], [0.0, 0.0, 0.0]]
    """
    e = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    unit = np.divide(e, norms, out=np.zeros_like(e), where=norms > 0)
    return unit @ unit.T


def similarity_figure(texts: list[str], embeddings: np.ndarray | None) -> go.Figure:
    """Cosine similarity between the embeddings of ``texts``: the result a user recognises
    ("these two sentences mean the same"), written in every cell. The colour scale stops at 0, so
    negatives look like 0, but the cell text shows the true value."""
    title = "Cosine similarity of the sentence embeddings"
    emb = np.asarray(embeddings) if embeddings is not None else np.zeros((0, 0))
    if len(texts) == 0 or emb.size == 0:
        return _empty_figure(title, height=420)
    if emb.ndim != 2 or emb.shape[0] != len(texts):
        raise ValueError(f"{len(texts)} texts but embeddings of shape {tuple(emb.shape)}; want ({len(texts)}, hidden)")
    sim = cosine_matrix(emb)
    labels = [f"{i + 1}. {_truncate(t)}" for i, t in enumerate(texts)]
    full = [_truncate(t, 120) for t in texts]
    hover = [[f"{full[i]}<br>vs<br>{full[j]}<br>cosine {sim[i, j]:.4f}" for j in range(len(texts))] for i in range(len(texts))]
    n = len(texts)
    fig = go.Figure(
        go.Heatmap(
            z=sim,
            x=labels,
            y=labels,
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            text=hover,
            texttemplate="%{z:.2f}" if n <= 20 else "",
            textfont={"size": 11 if n <= 10 else 9},
            hovertemplate="%{text}<extra></extra>",
            colorbar={"title": {"text": "cosine"}},
        )
    )
    side = min(1000, max(480, 300 + 50 * n))
    _base_layout(fig, title=title, height=side)
    fig.update_layout(margin={"l": 230, "b": 190})
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11}, scaleanchor="x", constrain="domain")
    fig.update_xaxes(tickangle=-40, tickfont={"size": 11})
    return fig
