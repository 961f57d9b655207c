"""The Gradio page: thin handlers that call the core and the plot functions."""

from __future__ import annotations

import threading
import time
from typing import Any

import gradio as gr

from . import plots
from .compare import embed
from .engine import Engine
from .model import LoadedModel, ModelError, TextError, default_spec, load_model

EXAMPLE_TEXTS = [
    "A man is eating food.\nA man is eating a piece of bread.\nThe girl is carrying a baby.\nA man is riding a horse.",
    "OpenVINO compiles a model for one static shape.\nAn NPU accepts static shapes only.\nPadding wastes compute on pad tokens.",
]

_models: dict[str, LoadedModel] = {}
_engines: dict[tuple[str, str], Engine] = {}
_lock = threading.Lock()


def get_engine(spec: str, precision: str = "auto") -> Engine:
    """One loaded model and one engine per (model, precision), kept for the server's life so
    shapes compiled once are never compiled again."""
    with _lock:
        if spec not in _models:
            _models[spec] = load_model(spec)
        key = (spec, precision)
        if key not in _engines:
            _engines[key] = Engine(_models[spec], precision=precision)
        return _engines[key]


def embed_texts(text: str, spec: str) -> tuple[Any, str]:
    """Embed one text per line with native dynamic shapes; similarity heatmap + latency."""
    texts = [line.strip() for line in (text or "").splitlines() if line.strip()]
    try:
        engine = get_engine(spec or default_spec())
        start = time.perf_counter()
        encoded, embeddings = embed(engine, texts)
        ms = (time.perf_counter() - start) * 1e3
    except (ModelError, TextError, ValueError) as exc:
        raise gr.Error(str(exc)) from None
    summary = (
        f"{len(texts)} texts, {sum(encoded.lengths)} tokens (longest {max(encoded.lengths)}), "
        f"one dynamic-shape call: {ms:.1f} ms on {engine.device} ({engine.inference_precision})"
    )
    return plots.similarity_figure(texts, embeddings), summary


def build_demo(*, spec: str | None = None) -> gr.Blocks:
    """The app's page; a function so tests can build and launch it."""
    with gr.Blocks(title="shapedemo") as demo:
        gr.Markdown("# shapedemo\nBERT on OpenVINO, native dynamic shapes: type texts, one per line.")
        model = gr.Textbox(value=spec or default_spec(), label="model")
        text = gr.Textbox(lines=6, label="texts, one per line", value=EXAMPLE_TEXTS[0])
        gr.Examples(EXAMPLE_TEXTS, inputs=[text])
        run = gr.Button("Embed", variant="primary")
        summary = gr.Markdown()
        heat = gr.Plot(label="cosine similarity")
        run.click(embed_texts, [text, model], [heat, summary], api_name="embed")
    return demo
