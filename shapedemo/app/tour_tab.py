"""The page's "Guided tour" tab: thin widgets over ``shapedemo.measure.lessons``.

One texts box and one batch-sizes box shared by every step, then one accordion per step (the
guide's words, a Run button, the lesson, the figure, the OpenVINO code): accordions stack on a
phone and keep every step's result on the page for scrolling back. ``build_tour_tab`` is called
inside a ``with gr.Tab(...)`` of ``ui.build_demo``; each step is also a named endpoint
(``/tour_padding``, ``/tour_mask``, ...) for ``gradio_client``.
"""

from __future__ import annotations

from typing import Any, Callable

import gradio as gr

from shapedemo.measure import lessons as tour
from shapedemo.settings import split_texts
from shapedemo.app.common import check_model, errors_to_ui, model_choices
from shapedemo.model import default_spec

_ROUNDS = (
    f"the median of {tour.REPEATS} interleaved rounds" if tour.REPEATS
    else f"interleaved rounds until the ratios' intervals are tight, at most {tour.TOUR_SECONDS:.0f} s of timing a step"
)

INTRO = (
    "## A guided tour\n"
    f"The ways OpenVINO's guide [{tour.GUIDE}]({tour.GUIDE_URL}) gets by without dynamic shapes, "
    "in its order, then steps beyond it (packing, auto, native dynamic taken apart, the weights an NPU "
    "runs). Each step runs **native dynamic next to one strategy** "
    f"on the texts below ({tour.PRECISION}; {_ROUNDS}, after a warm-up), draws one "
    "picture and says in one sentence what it measured. Open a step and press its button; shapes "
    "compiled once are reused by the steps after."
)


def tour_step(
    key: str, text: str, batch_sizes: str, spec: str | None, device: str = "CPU", static_only: bool = False,
    *, progress: Any = None,
) -> tuple[str, Any, str]:
    """Run step ``key`` on the page's values (its device and static-only mode too): the lesson
    (Markdown), the figure, the code."""

    def step(fraction: float, what: str) -> None:
        if progress is not None:
            progress(fraction, desc=what)

    with errors_to_ui(f"tour step {key}"):
        settings = tour.step_settings(
            key, texts=split_texts(text), batch_sizes=batch_sizes or tour.BATCH_SIZES, model=check_model(spec),
            device=(device or "CPU").strip(), static_only=bool(static_only),
        )
        result = tour.run_step(key, settings, progress=step)
    data = result.data
    measured = (
        f"Measured just now: `{data['model']}` on {data['device']} ({data['precision']}), "
        f"{len(data['lengths'])} texts, {sum(data['lengths'])} real tokens, median of {data['repeats']} interleaved rounds "
        f"(timings spread ±{(data.get('noise') or {}).get('spread', 0.0):.0%} on this machine)."
    )
    why = f"\n\nWhy this plan: {result.why}" if result.why else ""
    return f"**Lesson.** {result.lesson}{why}\n\n<small>{measured}</small>", result.figure, result.code


def _event(key: str) -> Callable[..., tuple[Any, Any, str]]:
    def run(
        text: str, batch_sizes: str, spec: str, device: str = "CPU", static_only: bool = False, progress: Any = gr.Progress(),
    ) -> tuple[Any, Any, str]:
        lesson, figure, code = tour_step(key, text, batch_sizes, spec, device, static_only, progress=progress)
        return lesson, gr.update(value=figure, visible=True), code

    run.__name__ = f"tour_{key}"
    run.__doc__ = f"Run the tour's step {key!r}: lesson, figure, OpenVINO code."
    return run


def build_tour_tab(*, spec: str | None = None, device: Any = None, static_only: Any = None) -> None:
    """The tour's widgets and events, in the current Blocks context (a ``gr.Tab``); ``device``
    and ``static_only``: the page's widgets, shared (every step runs there)."""
    default_model = spec or default_spec()
    choices = model_choices()
    if default_model not in choices:
        choices = [default_model] + choices
    gr.Markdown(INTRO, elem_id="tour-intro")
    with gr.Group():
        text = gr.Textbox(
            "\n".join(tour.TOUR_TEXTS), lines=5, max_lines=12, label="texts, one per line (every step runs on these)",
            elem_id="tour-texts",
        )
        with gr.Row():
            batch_sizes = gr.Textbox(
                tour.BATCH_SIZES, label="compiled batch sizes", min_width=160, elem_id="tour-batch-sizes",
                info="partitioning splits the batch into these",
            )
            model = gr.Dropdown(choices, value=default_model, label="model", min_width=160, elem_id="tour-model")
    previous: Any = None  # the previous step's run: when it succeeds, this step opens (read on)
    for s in tour.STEPS:
        with gr.Accordion(tour.heading(s), open=s is tour.STEPS[0], elem_id=f"tour-{s.key}") as accordion:
            gr.Markdown(f"*{s.guide}.* {s.intro}")
            with gr.Row():
                run = gr.Button("Run this step", variant="primary", scale=0, min_width=220, elem_id=f"tour-run-{s.key}")
            lesson = gr.Markdown(elem_id=f"tour-lesson-{s.key}")
            plot = gr.Plot(show_label=False, visible=False, elem_id=f"tour-plot-{s.key}")
            with gr.Accordion("the OpenVINO code of this step, to copy", open=False):
                code = gr.Code(language="python", show_line_numbers=False, elem_id=f"tour-code-{s.key}")
        if previous is not None:
            previous.success(lambda: gr.Accordion(open=True), None, accordion, api_name=False)
        previous = run.click(
            _event(s.key), [text, batch_sizes, model, *[w for w in (device, static_only) if w is not None]],
            [lesson, plot, code], api_name=f"tour_{s.key}",
            concurrency_limit=1, concurrency_id="engine", show_progress_on=[lesson],
        )
