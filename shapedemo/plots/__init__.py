"""Plotly figures from plans and comparison results, for the Gradio app (``gr.Plot``) and the README.

Every function takes plain data (``Plan`` objects, the result dicts ``compare`` produces, lists and
arrays) and returns a ``plotly.graph_objects.Figure`` with an explicit height (Gradio's ``gr.Plot``
needs one) and the ``plotly_white`` template. Empty input gives a figure that says "nothing to show
yet" instead of raising, so a UI handler can return a figure before anything has run.

One module per figure family, the shared colours and layout in ``style``. No OpenVINO and no gradio
here: plans are drawn before any model exists.

>>> fig = padding_waste_figure([])
>>> fig.layout.annotations[0].text
'nothing to show yet'
>>> strategy_color("padding-nomask") == STRATEGY_COLORS["padding-nomask"]
True
"""

from __future__ import annotations

from shapedemo.plots import style
from shapedemo.plots.budget import shape_budget_figure
from shapedemo.plots.chunks import chunk_decomposition_figure, decomposition
from shapedemo.plots.costs import costs_figure
from shapedemo.plots.fidelity import ROUNDOFF, ROUNDOFF_BY_PRECISION, fidelity_figure, roundoff_for
from shapedemo.plots.latency import latency_figure
from shapedemo.plots.lengths import _bucket_counts, length_histogram_figure
from shapedemo.plots.similarity import cosine_matrix, similarity_figure
from shapedemo.plots.live import traffic_figures
from shapedemo.plots.style import FALLBACK_COLORS, PAD_COLOR, STRATEGY_COLORS, TEMPLATE, strategy_color
from shapedemo.plots.waste import padding_waste_figure

__all__ = [
    "STRATEGY_COLORS",
    "FALLBACK_COLORS",
    "PAD_COLOR",
    "TEMPLATE",
    "ROUNDOFF",
    "ROUNDOFF_BY_PRECISION",
    "roundoff_for",
    "cosine_matrix",
    "strategy_color",
    "decomposition",
    "padding_waste_figure",
    "chunk_decomposition_figure",
    "latency_figure",
    "costs_figure",
    "fidelity_figure",
    "similarity_figure",
    "length_histogram_figure",
    "shape_budget_figure",
    "traffic_figures",
]
