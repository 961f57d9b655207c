"""The Gradio page: thin handlers that turn widget values into ``RunSettings`` and call the runner.

Every setting is named once in ``PLAN_PARAMS`` / ``COMPARE_PARAMS`` (the named endpoints'
parameters, a contract for ``gradio_client`` callers: add at the end, never rename);
``page_settings`` maps those values onto the settings object the command line builds too, and
the handlers return small dataclasses that the page maps onto its components by field name.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import gradio as gr

from shapedemo import plots, runner

from shapedemo.measure import report
from shapedemo.planning.codegen import plan_code
from shapedemo.model import default_spec
from shapedemo.planning.plan import Plan, PlanError
from shapedemo.measure.report import HONEST_NOTE, TABLE_HEADERS
from shapedemo.app.common import USER_ERRORS, cancellable, check_model, custom_models_allowed, errors_to_ui, model_choices  # noqa: F401
from shapedemo.settings import CALIBRATIONS, DEFAULT_STRATEGIES, PAGE_COMPILED_MB, PAGE_LIMITS, WEIGHTS, RunSettings, split_texts, with_config
from shapedemo.shapes import DEFAULT_BATCH_SIZES, MAX_SEQ_STEPS, ShapeSet
from shapedemo.planning.strategies import STRATEGY_NAMES
from shapedemo.planning.workloads import WORKLOADS

log = logging.getLogger(__name__)
EXAMPLE_TEXTS: list[str] = [
    "A man is eating food.\nA man is eating a piece of bread.\nThe girl is carrying a baby.\nA man is riding a horse.\nA woman is playing violin.",
    "Hi!\nOpenVINO compiles a model for one static shape, and an NPU accepts static shapes only, so "
    "every input of another length has to be padded, bucketed, partitioned or packed before it runs.\n"
    "Short one.\nPadding a twenty-token sentence to two hundred and fifty-six tokens spends most of "
    "the compute on pad tokens that the attention mask then hides.\nOK",
    "What is the capital of France?\nParis is the capital and most populous city of France, with an "
    "estimated population of two million residents; it is the centre of the Île-de-France region, "
    "on the river Seine, and one of the world's major centres of finance, diplomacy, commerce, "
    "culture, fashion and gastronomy.\nWho wrote Hamlet?",
]
PLOTS = [
    ("waste", "padding waste: computed token slots per call"),
    ("chunks", "chunk decomposition: calls and compiled shapes"),
    ("latency", "latency over repeats, next to native dynamic"),
    ("costs", "compile time and memory"),
    ("fidelity", "fidelity against one call per sequence"),
    ("lengths", "sequence lengths and buckets"),
    ("similarity", "cosine similarity of the texts (dynamic-single embeddings)"),
]
#: The page ticks the core's defaults, padding-nomask (the fidelity plot then shows what leaving
#: the mask out breaks, not only round-off) and dynamic-single: it always runs as the fidelity
#: reference, so ticked it also stands in the table (its diff is 0 by definition).
PAGE_STRATEGIES = [n for n in STRATEGY_NAMES if n in DEFAULT_STRATEGIES or n in ("padding-nomask", "dynamic-single")]
OBJECTIVES = ["fewest padding rows", "measured latency"]
MAX_BATCH = PAGE_LIMITS.batch
MAX_LEN_CHOICES = ["auto", "64", *map(str, MAX_SEQ_STEPS)]
BATCH_SIZES_TEXT = ",".join(map(str, DEFAULT_BATCH_SIZES))
BUCKET_PRESETS = ["powers of two", "linear", "tuned to this workload", "custom"]
PLAN_PARAMS = (
    "mode", "text", "workload", "batch", "seed", "spec", "strategies",
    "preset", "buckets_text", "k", "batch_sizes_text", "max_len",
)
"""The ``/plan`` endpoint's parameters, in order (a contract: add at the end, never rename)."""
COMPARE_PARAMS = PLAN_PARAMS + ("precision", "repeats", "calls", "objective", "device", "static_only", "weights", "calibration")
"""The ``/compare`` endpoint's parameters, in order (a contract: add at the end, never rename)."""
DEFAULTS = {"objective": OBJECTIVES[0], "device": "CPU", "static_only": False, "weights": "f32", "calibration": "exact"}
TABLE_WIDTHS = ["11%", "5%", "7%", "7%", "7%", "7%", "6%", "7%", "8%", "7%", "6%", "8%", "7%", "7%"]
"""Of the table's width, at least 1300 px (``PAGE_CSS``): no header over two lines, none cut
(recall@10, one word, needs 7% of it)."""


# ------------------------------------------------------------------------------ settings
def _whole(value: Any, default: int = 0) -> int:
    """A widget's number as an int (sliders send floats); junk stays junk for validate to name."""
    if value is None or value == "":
        return default
    return int(value) if isinstance(value, float) and value.is_integer() else value


def page_settings(values: Mapping[str, Any]) -> RunSettings:
    """The page's widget values (named as in ``COMPARE_PARAMS``) as validated ``RunSettings``."""
    source: dict[str, Any]
    if values.get("mode", "texts") == "texts":
        source = {"texts": tuple(split_texts(values.get("text") or ""))}
    else:
        source = {
            "workload": values.get("workload"),
            "batch": _whole(values.get("batch")),
            "seed": _whole(values.get("seed")),
        }
    preset = values.get("preset")
    k = _whole(values.get("k"), 4)
    buckets = {"powers of two": "pow2", "linear": "linear", "tuned to this workload": f"tuned:{k}"}.get(
        preset, values.get("buckets_text") or ""
    )
    max_len = str(values.get("max_len") or "auto").strip()
    if max_len != "auto" and not max_len.isdigit():
        raise PlanError(f"max length {max_len!r}: choose auto or a number of tokens")
    config = None
    if buckets.strip().startswith("{"):  # a configuration from `tune --json` pasted in the box
        try:
            config = json.loads(buckets)
        except ValueError as exc:
            raise PlanError(f"sequence buckets: not a list, a preset nor a `tune --json` configuration ({exc})") from None
        buckets = ""
    settings = RunSettings(
        **source,
        model=check_model(values.get("spec")),
        device=(values.get("device") or "CPU").strip(),
        static_only=bool(values.get("static_only")),
        precision=values.get("precision") or "auto",
        # left out (an API call): the defaults; every box unticked on the page: "choose at least one"
        strategies=tuple(DEFAULT_STRATEGIES if values.get("strategies") is None else values["strategies"]),
        shapes=ShapeSet.parse(
            seq_buckets=buckets, batch_sizes=values.get("batch_sizes_text") or BATCH_SIZES_TEXT,
            max_seq=None if max_len == "auto" else int(max_len), names=PAGE_LIMITS.shape_names,
        ),
        repeats=_whole(values.get("repeats"), 0) or None,  # 0: rounds until the intervals are tight
        calls=values.get("calls") or "sync",
        cost_table="measure" if values.get("objective") == OBJECTIVES[1] else None,
        weights=values.get("weights") or "f32", calibration=values.get("calibration") or "exact",
        limits=PAGE_LIMITS,
    )
    if config is not None:
        settings = with_config(settings, config, what="sequence buckets (a tune configuration)")
    return settings.validate()


def endpoint(params: tuple[str, ...]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a handler ``impl(values: dict, progress)`` the named parameters ``params`` (what
    Gradio shows ``gradio_client`` callers, and what tests pass positionally), plus Gradio's
    progress tracker last."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    signature = inspect.Signature(
        [inspect.Parameter(n, kind, default=DEFAULTS.get(n, inspect.Parameter.empty)) for n in params]
        + [inspect.Parameter("progress", kind, default=gr.Progress())]
    )

    def wrap(impl: Callable[..., Any]) -> Callable[..., Any]:
        def handler(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            return impl(values, values.pop("progress"))

        handler.__signature__ = signature  # type: ignore[attr-defined]
        handler.__name__, handler.__doc__ = impl.__name__, impl.__doc__
        return handler

    return wrap


# ------------------------------------------------------------------------------ handlers
@dataclass
class PlanView:
    """What ``/plan`` fills: three plan figures and the summary."""

    waste: Any
    chunks: Any
    lengths_plot: Any
    summary: str


@dataclass
class ComparisonView:
    """What ``/compare`` fills, by component name (``build_demo`` maps names to components)."""

    summary: str
    waste: Any
    chunks: Any
    latency: Any
    costs: Any
    fidelity: Any
    lengths_plot: Any
    similarity: Any
    table: list[list[Any]]
    downloads: list[str]
    plans_state: dict[str, Plan]
    code_for: Any
    explanation: str
    code: str


@endpoint(PLAN_PARAMS)
def preview_plans(values: dict[str, Any], progress: Any = None) -> PlanView:
    """Plans only, nothing run: padding waste, chunk decomposition, lengths vs buckets."""
    with errors_to_ui("planning"):
        plans, inputs = runner.preview(page_settings(values))
    listed = list(plans.values())
    return PlanView(
        plots.padding_waste_figure(listed),
        plots.chunk_decomposition_figure(listed),
        plots.length_histogram_figure(inputs.lengths, list(inputs.options["seq_buckets"])),
        report.plans_summary(listed, lengths=inputs.lengths, options=_shown_options(inputs.options)),
    )


def _shown_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The plan options with the strategies' defaults filled in, as the summary names them."""
    return {**options, "batch_sizes": options["batch_sizes"] or DEFAULT_BATCH_SIZES}


def write_downloads(data: Mapping[str, Any]) -> list[str]:
    """The results table as CSV and the whole document as JSON, in this server's folder."""
    folder = Path(tempfile.gettempdir()) / f"shapedemo-results-{os.getpid()}"  # one folder, overwritten
    folder.mkdir(exist_ok=True)
    csv_path, json_path = folder / "shapedemo-results.csv", folder / "shapedemo-results.json"
    csv_path.write_text(report.csv_text(data), newline="")
    json_path.write_text(json.dumps(data, indent=1))
    return [str(csv_path), str(json_path)]


def explain(strategy: str, plans: dict[str, Plan] | None) -> tuple[str, str]:
    """The chosen strategy in words, and the OpenVINO code that reproduces its plan."""
    if not plans or strategy not in plans:
        return "Run a comparison to see the code of a strategy's plan.", ""
    plan = plans[strategy]
    return report.explain_plan(plan), plan_code(plan)


@endpoint(COMPARE_PARAMS)
def run_comparison(values: dict[str, Any], progress: Any = None) -> ComparisonView:
    """Plan, compile, warm up and time every chosen strategy on the same inputs."""

    def step(fraction: float, what: str) -> None:
        if progress is not None:
            progress(fraction, desc=what)

    with errors_to_ui("the comparison"):
        settings = page_settings(values)
        comparison, inputs = runner.run(settings, progress=step)
    data = report.document(comparison)
    plans = list(comparison.plans.values())
    if inputs.texts is not None:
        similarity = plots.similarity_figure(inputs.texts, comparison.outcomes["dynamic-single"].embeddings)
    else:
        similarity = plots.similarity_figure([], None)
    first = settings.strategies[0]
    explanation, code = explain(first, comparison.plans)
    return ComparisonView(
        summary=report.summarize(data),
        waste=plots.padding_waste_figure(plans),
        chunks=plots.chunk_decomposition_figure(plans),
        latency=plots.latency_figure(comparison.results, baseline=_elsewhere(data)),
        costs=plots.costs_figure(comparison.results),
        fidelity=plots.fidelity_figure(comparison.results, precision=data["precision"]),
        lengths_plot=plots.length_histogram_figure(comparison.lengths, list(inputs.options["seq_buckets"] or [])),
        similarity=similarity,
        table=report.table_rows(data),
        downloads=write_downloads(data),
        plans_state=comparison.plans,
        code_for=gr.update(choices=list(settings.strategies), value=first),
        explanation=explanation,
        code=code,
    )


def _elsewhere(data: Mapping[str, Any]) -> dict[str, Any] | None:
    """The native dynamic baseline where it ran on another device than the target (a
    static-only device): the latency chart draws it as a reference line."""
    return data.get("baseline") if report.baseline_median(data)[1] is not None else None


BUCKET_PARAMS = ("preset", "mode", "text", "workload", "batch", "seed", "spec", "k", "max_len", "buckets_text")


def suggest_buckets(values: dict[str, Any]) -> Any:
    """Show in the bucket box the buckets a preset gives for these inputs (tuned: the exact
    optimum for these lengths); the box takes typing only under 'custom'."""
    current = values.get("buckets_text") or ""
    if values.get("preset") == "custom":
        return gr.update(value=current, interactive=True)
    try:
        _, inputs = runner.preview(page_settings({**values, "strategies": ["dynamic"], "batch_sizes_text": "1"}))
    except USER_ERRORS:
        return gr.update(value=current, interactive=False)
    return gr.update(value=",".join(str(b) for b in inputs.options["seq_buckets"]), interactive=False)


def _by_name(view: Any, components: Mapping[str, Any]) -> dict[Any, Any]:
    """A handler's dataclass result as Gradio's ``{component: value}``."""
    return {components[f.name]: getattr(view, f.name) for f in fields(view)}


def _wired(handler: Callable[..., Any], components: Mapping[str, Any]) -> Callable[..., Any]:
    """``handler`` as an event function: same named parameters, ``{component: value}`` out."""

    def by_name(*args: Any, **kwargs: Any) -> dict[Any, Any]:
        return _by_name(handler(*args, **kwargs), components)

    by_name.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    by_name.__name__ = handler.__name__
    return cancellable(by_name)  # a cancelled event stops the run at its next step


# ------------------------------------------------------------------------------ the page
INTRO = (
    "# shapedemo: serving changing shapes on OpenVINO\n"
    "A real BERT on OpenVINO, measured on this machine: native dynamic shapes next to the ways to get by "
    "with static shapes only, as on an NPU (padding, pre-compiled buckets, batch partitioning, sequence packing).\n\n"
    "**1.** Type texts, one per line, or click an example (or switch the input to a workload of sequence lengths). "
    "**2.** **Preview plans** draws how each strategy lays out the batch, at once, without running anything; "
    "**Compare** compiles, warms up and times them all on the same inputs (a minute or two the first time "
    "on a small CPU, while it compiles and times the shapes; seconds once they are cached) and fills every plot. "
    "The model, the device, the strategies and the settings are under the buttons; the **Guided tour** takes "
    "the strategies one at a time."
)
START_SUMMARY = "Nothing has run yet: press **Preview plans** or **Compare**.\n\n" + HONEST_NOTE


CAPTIONS = {
    "waste": "Each bar is one row of a call: colour = real tokens, grey = pad the device computes anyway.",
    "lengths": "How long the inputs are; dashed lines are bucket edges: a sequence is padded up to the next edge.",
    "chunks": "How each strategy splits the batch into calls: block width = the call's batch size, hatched = padding "
    "rows. More blocks = more calls; more distinct shapes = more compiled models.",
    "latency": "Time per whole batch over the repeats; the ratio to native dynamic's median is written above each box.",
    "costs": "Paid before the first request: compile time, and the process memory the compiled models added "
    "(read from RSS, so approximate).",
    "fidelity": "Distance from one call per sequence (no padding at all): masked strategies stay at round-off, "
    "the unmasked pad leaks into every output.",
    "similarity": "Cosine similarity of the sentence embeddings (texts only): similar sentences score high.",
}


def _plot(key: str) -> gr.Plot:
    """A plot without Gradio's label box (every figure carries its own title), with one line on
    how to read it."""
    plot = gr.Plot(label=dict(PLOTS)[key], show_label=False, elem_id=f"plot-{key}")
    gr.Markdown(CAPTIONS[key], elem_classes=["caption"])
    return plot


class QuietBlocks(gr.Blocks):
    """``gr.Blocks`` whose own input checks (a number out of a slider's range, a value not among
    a dropdown's choices) count as user errors: a message on the page, no traceback in the log."""

    async def preprocess_data(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().preprocess_data(*args, **kwargs)
        except gr.Error as exc:
            exc.print_exception = False
            raise


def build_demo(*, spec: str | None = None) -> gr.Blocks:
    """The app's page; a factory so tests and Spaces build it the same way. The process's
    compiled models get the page's budget (``SHAPEDEMO_COMPILED_MB``, else ``PAGE_COMPILED_MB``)."""
    from shapedemo import session
    from shapedemo.runtime.budget import compiled_budget_mb

    session.use_budget(compiled_budget_mb(PAGE_COMPILED_MB))
    default_model = spec or default_spec()
    choices = model_choices()
    if default_model not in choices:
        choices = [default_model] + choices
    with QuietBlocks(title="shapedemo: static vs dynamic shapes on OpenVINO", fill_width=True) as demo:
        gr.Markdown(INTRO)
        with gr.Tab("Compare everything", elem_id="tab-compare"):
            plans_state = gr.State(None)
            with gr.Row(equal_height=False):
                with gr.Column(scale=2, min_width=360):
                    mode = gr.Radio(["texts", "workload"], value="texts", label="input", info="your texts, or a batch of synthetic lengths drawn from a workload")
                    with gr.Group() as texts_group:
                        text = gr.Textbox(EXAMPLE_TEXTS[1], lines=6, max_lines=20, label="texts, one per line", elem_id="texts")
                        gr.Examples([[t] for t in EXAMPLE_TEXTS], inputs=[text], label="examples (click one)", example_labels=["similar short sentences", "a few very long, a few very short", "question + context"])
                    with gr.Row(visible=False) as workload_row:
                        workload = gr.Dropdown(list(WORKLOADS), value="sst2-like", label="workload", info="seeded length distribution")
                        batch = gr.Slider(1, MAX_BATCH, value=16, step=1, label="batch")
                        seed = gr.Number(0, precision=0, label="seed", minimum=0)
                    # the buttons right under the inputs: on a laptop's first screen, and on a phone
                    # before the settings, not after them
                    with gr.Row(elem_id="actions"):
                        preview = gr.Button("Preview plans", min_width=120)
                        run = gr.Button("Compare", variant="primary", min_width=120)
                    model = gr.Dropdown(choices, value=default_model, label="model", allow_custom_value=custom_models_allowed(),
                                        info="minilm = all-MiniLM-L6-v2 (offline); synthetic = BERT sizes with random weights" + ("; or a Hugging Face id / local path" if custom_models_allowed() else ""))
                    with gr.Row():
                        device = gr.Dropdown(  # wide enough for "CPU: Intel(R) Xeon(R) Processor"; a phone wraps the row
                            runner.device_choices(), value="CPU", label="device", allow_custom_value=True, min_width=320,
                            elem_id="device",
                            info="where the strategies run; the fidelity reference runs on the CPU",
                        )
                        static_only = gr.Checkbox(
                            False, label="static shapes only (as on an NPU)",
                            info="dynamic strategies refused (shown as gaps); native dynamic is then measured on the CPU",
                        )
                    strategies = gr.CheckboxGroup(list(STRATEGY_NAMES), value=PAGE_STRATEGIES, label="strategies",
                                                  info="padding-nomask leaves the attention mask out, to show what that breaks; dynamic-single (one call per sequence, on the CPU) is the fidelity reference: it always runs, unticked it is left out of the table")
                    with gr.Accordion("settings: buckets, batch sizes, precision, weights, repeats", open=False):
                        with gr.Row():
                            preset = gr.Radio(BUCKET_PRESETS, value="powers of two", label="sequence buckets")
                            k = gr.Slider(1, 8, value=4, step=1, label="k (tuned buckets)")
                        buckets_text = gr.Textbox("16,32,64,128", label="sequence buckets in use (to type your own, choose 'custom')", interactive=False)
                        batch_sizes = gr.Textbox(BATCH_SIZES_TEXT, label="batch sizes (partitioning)")
                        max_len = gr.Dropdown(MAX_LEN_CHOICES, value="auto", label="max length (padding shape)", info="auto: the smallest of 128/256/384/512 that fits the longest input (and a typed list's largest bucket)")
                        with gr.Row():
                            precision = gr.Radio(["auto", "f32", "bf16"], value="auto", label="precision", info="auto = the device default; f32 for fidelity")
                            calls = gr.Radio(["sync", "concurrent"], value="sync", label="calls", info="concurrent: AsyncInferQueue")
                        with gr.Row():
                            weights = gr.Radio(list(WEIGHTS), value="f32", label="weights", info="f16 / int8 as an NPU runs them (NNCF; built once, cached); fidelity against f32 weights in the table")
                            calibration = gr.Radio(list(CALIBRATIONS), value="exact", label="int8 calibration", info="on the input at exact lengths, or padded to the plan's static shapes")
                        repeats = gr.Slider(
                            0, PAGE_LIMITS.repeats, value=0, step=1, label="repeats (after one warm-up)",
                            info=f"0: rounds until every ratio's interval is tight, at most {PAGE_LIMITS.seconds:.0f} s",
                        )
                        objective = gr.Radio(
                            OBJECTIVES, value=OBJECTIVES[0], label="how partitions are chosen",
                            info="measured latency: first times every batch size x bucket, then partition, "
                            "buckets-partition and packing pick the split of least predicted latency",
                        )
                    downloads = gr.File(label="download results (CSV, JSON)", file_count="multiple", interactive=False, visible=False)
                    # under the inputs it describes, where the tall token-slots chart beside it left room
                    lengths_plot = _plot("lengths")
                with gr.Column(scale=3, min_width=480):
                    summary = gr.Markdown(START_SUMMARY, elem_id="summary")
                    waste = _plot("waste")
            table = gr.Dataframe(
                headers=TABLE_HEADERS, label="results (one row per strategy; ms per batch)", interactive=False, wrap=True,
                column_widths=TABLE_WIDTHS, elem_id="results",
            )
            # full width where a figure has a label per strategy: at half width, seven strategies'
            # labels run into each other
            chunks, latency, costs = _plot("chunks"), _plot("latency"), _plot("costs")
            with gr.Row(equal_height=False):
                with gr.Column(scale=3, min_width=480):
                    fidelity = _plot("fidelity")
                with gr.Column(scale=2, min_width=360):
                    similarity = _plot("similarity")
            with gr.Accordion("the OpenVINO code for a strategy's plan, to copy", open=True):
                code_for = gr.Dropdown(list(DEFAULT_STRATEGIES), value="dynamic", label="strategy")
                explanation = gr.Markdown()
                code = gr.Code(language="python", label="OpenVINO code generated from the plan", show_line_numbers=False, elem_id="code")

        with gr.Tab("Guided tour", elem_id="tab-tour"):
            from shapedemo.app.tour_tab import build_tour_tab

            build_tour_tab(spec=default_model, device=device, static_only=static_only)
        with gr.Tab("Deploy", elem_id="tab-deploy"):  # short: three tab labels fit a phone
            from shapedemo.app.deploy_tab import build_deploy_tab

            build_deploy_tab(model=model, device=device, static_only=static_only)

        # every setting by its endpoint name (PLAN_PARAMS / COMPARE_PARAMS), every output by the
        # handlers' field names: the events below are built from these two tables
        settings = {
            "mode": mode, "text": text, "workload": workload, "batch": batch, "seed": seed, "spec": model,
            "strategies": strategies, "preset": preset, "buckets_text": buckets_text, "k": k,
            "batch_sizes_text": batch_sizes, "max_len": max_len, "precision": precision,
            "repeats": repeats, "calls": calls, "objective": objective, "device": device,
            "static_only": static_only, "weights": weights, "calibration": calibration,
        }
        shown = {
            "summary": summary, "waste": waste, "chunks": chunks, "latency": latency, "costs": costs,
            "fidelity": fidelity, "lengths_plot": lengths_plot, "similarity": similarity, "table": table,
            "downloads": downloads, "plans_state": plans_state, "code_for": code_for,
            "explanation": explanation, "code": code,
        }
        planned = preview.click(
            _wired(preview_plans, shown), [settings[n] for n in PLAN_PARAMS],
            [shown[f.name] for f in fields(PlanView)], api_name="plan",
        )
        compared = run.click(
            _wired(run_comparison, shown), [settings[n] for n in COMPARE_PARAMS],
            [shown[f.name] for f in fields(ComparisonView)],
            api_name="compare", concurrency_limit=1, concurrency_id="engine",
            # one progress bar where the eyes are, not an animated overlay on 14 outputs that
            # keeps the browser busy while the strategies are being timed
            show_progress_on=[summary],
            # the summary (where the progress shows, then the findings) brought into view as the
            # run starts: on a phone it sits ~1,200 px under the Compare button (a js-only
            # listener of its own on the same click never ran), the inputs passed on unchanged
            js=SCROLL_THEN_INPUTS,
        )
        compared.success(None, None, None, js=SCROLL_TO_SUMMARY, api_name=False)
        code_for.change(explain, [code_for, plans_state], [explanation, code], api_name=False)
        # the bucket box shows the buckets in use: at load, on a new preset, after every run
        names = {settings[n]: n for n in BUCKET_PARAMS}
        for event in (demo.load, preset.change, planned.success, compared.success):
            event(
                lambda data: suggest_buckets({names[c]: v for c, v in data.items()}),
                set(names), buckets_text, api_name=False,
            )
        compared.success(lambda: gr.update(visible=True), None, downloads, api_name=False)
        mode.change(lambda m: (gr.update(visible=m == "texts"), gr.update(visible=m == "workload")), mode, [texts_group, workload_row], api_name=False)
        text.change(lambda: "texts", None, mode, api_name=False)
        for w in (workload, batch):
            w.change(lambda: "workload", None, mode, api_name=False)
    return demo


_SCROLL = "const el = document.getElementById('summary'); if (el) el.scrollIntoView({block: 'start', behavior: 'instant'});"
SCROLL_TO_SUMMARY = f"() => {{ {_SCROLL} }}"
"""Browser-side: bring the summary into view (when Compare is done)."""
SCROLL_THEN_INPUTS = f"(...inputs) => {{ {_SCROLL} return inputs; }}"
"""The same as Compare is pressed, run before the event: its inputs go on to the server as they are."""

PAGE_CSS = """
/* Gradio scopes these rules to the page's content (rules inside @media only there): the
   margins around it are set here without a media query, 2% of the width up to Gradio's 32 px,
   so a phone (390 px) gives its width to the charts */
.gradio-container .main.fillable.app { padding-left: min(var(--size-8), 2vw); padding-right: min(var(--size-8), 2vw); }
/* the three tab labels fit one row on a phone (Gradio hides those that do not behind a menu) */
@media (max-width: 640px) {
  .tabs .tab-container button { padding: 0 10px; }
  h1 { font-size: 1.6rem !important; }
}
#actions button { white-space: nowrap; padding-left: 8px; padding-right: 8px; }
/* the device dropdown takes a whole row on a phone, wide enough for its value ("CPU: Intel(R) Xeon(R) Processor") */
#device input { text-overflow: ellipsis; }
@media (max-width: 640px) { #device { min-width: 100% !important; } }
/* the results table: its columns keep a readable width (headers break between words, at most
   two lines) and the table scrolls sideways inside its box where the page is narrower */
#results .table-wrap { min-width: 1300px; }
#results th .header { overflow-wrap: normal; word-break: normal; }
/* a failed event's "Error" label sat on the summary's first line; the toast says what failed */
#summary .wrap span.error { display: none; }
/* every chart stays inside its box */
.js-plotly-plot, .js-plotly-plot .plot-container { max-width: 100%; }
"""
"""The page's own CSS (Gradio 6 takes it in ``launch``: see ``launch_kwargs``)."""


def launch_kwargs() -> dict[str, Any]:
    """What ``launch`` needs from the page: its CSS, and an interface to bind to (all of them
    only where the environment asks, ``GRADIO_SERVER_NAME``).

    >>> sorted(launch_kwargs())
    ['css', 'server_name']
    """
    return {"server_name": os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1", "css": PAGE_CSS}
