"""The Gradio page: thin handlers that call the core (compare, strategies) and the plot functions.

Handlers are plain functions that take values and return values, so tests and ``gradio_client``
call them the same way the page does. Everything the CLI would need lives below this module.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import gradio as gr

from . import plots
from .buckets import parse_int_list, positive_sizes, resolve_buckets
from .codegen import plan_code
from .compare import DEFAULT_STRATEGIES, Comparison, auto_max_seq, compare, measure_cost_table, workload_lengths
from .engine import Engine, EngineError
from .model import SYNTHETIC_SIZES, LoadedModel, ModelError, TextError, default_spec, load_model
from .plan import Plan, PlanError
from .strategies import DESCRIPTIONS, STRATEGY_NAMES, make_plan
from .workloads import WORKLOADS

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent.parent / "assets"
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
#: The page ticks the core's defaults and padding-nomask: one more run of the padding shape, and
#: the fidelity plot then shows what leaving the mask out breaks, not only round-off.
PAGE_STRATEGIES = [n for n in STRATEGY_NAMES if n in DEFAULT_STRATEGIES or n == "padding-nomask"]
OBJECTIVES = ["fewest padding rows", "measured latency"]
MAX_TEXTS = 64
MAX_BATCH = 256
MAX_LEN_CHOICES = ["auto", "64", "128", "256", "384", "512"]
BUCKET_PRESETS = ["powers of two", "linear", "tuned to this workload", "custom"]
HONEST_NOTE = (
    "On a modern CPU, native dynamic shapes are about as fast as static ones; the emulations "
    "below matter where a device takes static shapes only (an NPU) or where dynamic support is "
    "partial, and the cost that dominates them is padding. The numbers here are measured on this "
    "machine, in one process, on the same inputs."
)

_models: dict[str, LoadedModel] = {}
_engines: dict[tuple[str, str], Engine] = {}
_lock = threading.Lock()


def model_choices() -> list[str]:
    return ["minilm"] + [f"synthetic:{s}" for s in SYNTHETIC_SIZES]


def custom_models_allowed() -> bool:
    """Any model id or path only where the server allows it: locally yes, on a Space only
    when ``SHAPEDEMO_ALLOW_CUSTOM_MODELS=1`` (downloads and disk belong to the host)."""
    flag = os.environ.get("SHAPEDEMO_ALLOW_CUSTOM_MODELS")
    if flag is not None:
        return flag not in ("", "0", "false", "no")
    return not os.environ.get("SPACE_ID")


def get_engine(spec: str, precision: str = "auto") -> Engine:
    """One loaded model and one engine per (model, precision), kept for the server's life so a
    shape compiled once is never compiled again."""
    spec = (spec or default_spec()).strip()
    if spec not in model_choices() and spec != default_spec() and not custom_models_allowed():
        raise ModelError(f"this server runs only {', '.join(model_choices())}; run the app locally for {spec!r}")
    with _lock:
        if spec not in _models:
            _models[spec] = load_model(spec)
        key = (spec, precision)
        if key not in _engines:
            _engines[key] = Engine(_models[spec], precision=precision)
        return _engines[key]


USER_ERRORS = (ModelError, TextError, PlanError, EngineError, ValueError)


def _line(exc: Exception, *, last: bool = False) -> str:
    """One line of an error message: the first (ours say it all there), or the last (OpenVINO's
    start with source locations and end with the reason)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if last else lines[0]) if lines else type(exc).__name__


@contextmanager
def errors_to_ui(what: str) -> Iterator[None]:
    """Bad input becomes a one-line ``gr.Error`` (a toast, never a traceback); anything else
    (say OpenVINO out of memory) too, with its traceback in the server log."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as exc:
        raise gr.Error(_line(exc)) from None
    except Exception as exc:
        log.exception("%s failed", what)
        raise gr.Error(f"{what} failed: {_line(exc, last=True)}") from None


# ------------------------------------------------------------------------------ inputs
def split_texts(text: str) -> list[str]:
    texts = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if len(texts) > MAX_TEXTS:
        raise TextError(f"{len(texts)} texts: this page runs at most {MAX_TEXTS} at once")
    return texts


def _settings(
    mode: str, text: str, workload: str, batch: float, seed: float, spec: str, precision: str,
    preset: str, buckets_text: str, k: float, batch_sizes_text: str, max_len: str,
) -> dict[str, Any]:
    """Resolve the page's inputs into lengths (and tokens), buckets, batch sizes, max length."""
    engine = get_engine(spec, precision)
    limit = engine.loaded.max_length
    texts: list[str] | None = None
    if mode == "texts":
        texts = split_texts(text)
        encoded = engine.loaded.tokenizer.encode(texts)
    else:
        n = int(batch or 0)
        if not 1 <= n <= MAX_BATCH:
            raise PlanError(f"batch {n}: choose 1 to {MAX_BATCH}")
        lengths = workload_lengths(workload, n, seed=int(seed or 0), max_len=limit)
        encoded = engine.loaded.tokenizer.synthetic_ids(lengths, seed=int(seed or 0))
    lengths = encoded.lengths
    if max_len in (None, "", "auto"):
        max_seq = auto_max_seq(lengths, limit=limit)
    elif not str(max_len).strip().isdigit():
        raise PlanError(f"max length {max_len!r}: choose auto or a number of tokens")
    else:
        max_seq = int(max_len)
    if max(lengths) > max_seq:
        raise PlanError(f"the longest input has {max(lengths)} tokens, over max length {max_seq}: raise it or pick 'auto'")
    preset_key = {"powers of two": "pow2", "linear": "linear", "tuned to this workload": f"tuned:{int(k or 4)}"}.get(preset)
    seq_buckets = resolve_buckets(preset_key or buckets_text, lengths, max_seq=max_seq, what="sequence buckets")
    batch_sizes = positive_sizes(parse_int_list(batch_sizes_text or "1,2,4,8", what="batch sizes"), what="batch sizes")
    if max(batch_sizes) > MAX_BATCH:
        raise PlanError(f"batch sizes: {max(batch_sizes)} is over {MAX_BATCH}, the largest batch this page runs")
    return {
        "engine": engine, "texts": texts, "encoded": encoded, "lengths": lengths,
        "max_seq": max_seq, "seq_buckets": list(seq_buckets), "batch_sizes": list(batch_sizes),
    }


# ------------------------------------------------------------------------------ handlers
def preview_plans(
    mode: str, text: str, workload: str, batch: float, seed: float, spec: str, strategies: Sequence[str],
    preset: str, buckets_text: str, k: float, batch_sizes_text: str, max_len: str,
) -> tuple[Any, Any, Any, str]:
    """Plans only, nothing run: padding waste, chunk decomposition, lengths vs buckets."""
    with errors_to_ui("planning"):
        s = _settings(mode, text, workload, batch, seed, spec, "auto", preset, buckets_text, k, batch_sizes_text, max_len)
        names = list(strategies) or list(DEFAULT_STRATEGIES)
        plans = [make_plan(n, s["lengths"], seq_buckets=s["seq_buckets"], batch_sizes=s["batch_sizes"], max_seq=s["max_seq"]) for n in names]
    lines = [
        f"**Plans for {_count(len(s['lengths']), 'sequence')}, {_count(sum(s['lengths']), 'real token')}** (nothing has run yet): "
        f"sequence buckets {_numbers(s['seq_buckets'])}, batch sizes {_numbers(s['batch_sizes'])}, max length {s['max_seq']}.",
        "",
    ]
    lines += [f"- `{p.strategy}`: {_calls_and_shapes(p)}, **{p.padding_fraction:.0%}** padding" for p in plans]
    lines += ["", "Press **Compare** to compile and time them."]
    return (
        plots.padding_waste_figure(plans),
        plots.chunk_decomposition_figure(plans),
        plots.length_histogram_figure(s["lengths"], s["seq_buckets"]),
        "\n".join(lines),
    )


def _count(n: int, noun: str) -> str:
    """``1 call``, ``2 calls``."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _numbers(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


def _calls_and_shapes(plan: Plan) -> str:
    """``2 calls on 2 compiled shapes (4x128, 1x128)`` or ``1 call on the dynamic model``."""
    calls = _count(plan.num_calls, "call")
    if plan.dynamic:
        return f"{calls} on the dynamic model"
    shapes = plan.compiled_shapes
    listed = ", ".join(f"{b}x{s}" for b, s in shapes[:4]) + (", …" if len(shapes) > 4 else "")
    return f"{calls} on {_count(len(shapes), 'compiled shape')} ({listed})"


def _times(ratio: float) -> str:
    """A latency ratio to native dynamic in words: ``2.4x slower``, ``3.1x faster``, ``as fast``."""
    if ratio > 1.05:
        return f"{ratio:.1f}x slower than"
    if ratio < 1 / 1.05:
        return f"{1 / ratio:.1f}x faster than"
    return "as fast as"


def summarize(comparison: Comparison) -> str:
    """The findings in plain words, from the measured numbers."""
    results = {r["strategy"]: r for r in comparison.results}
    lines = [
        f"**{_count(len(comparison.lengths), 'sequence')}, {_count(sum(comparison.lengths), 'real token')}** on "
        f"`{comparison.model}`, {comparison.device} ({comparison.precision}); {comparison.wall_s:.1f} s in all.",
        "",
    ]
    for r in comparison.results:
        predicted = r.get("params", {}).get("predicted_latency_ms")
        if predicted is not None:
            lines.append(
                f"- `{r['strategy']}` split chosen by measured latency: predicted {predicted:.1f} ms, "
                f"measured {r['latency_ms']['median']:.1f} ms."
            )
    dyn = results.get("dynamic")
    static = [r for r in comparison.results if not r.get("dynamic") and r["strategy"] != "padding-nomask"]
    if dyn and static:
        best = min(static, key=lambda r: r["latency_ms"]["median"])
        ratio = best["latency_ms"]["median"] / dyn["latency_ms"]["median"]
        lines.append(
            f"- Fastest static-shape strategy: **{best['strategy']}**, {best['latency_ms']['median']:.1f} ms median, "
            f"**{_times(ratio)}** native dynamic ({dyn['latency_ms']['median']:.1f} ms)."
        )
    if dyn:
        lines.append(f"- Native `dynamic` pads each row to the longest sequence: **{dyn['padding_fraction']:.0%}** of its tokens are pad.")
    if "padding" in results:
        p = results["padding"]
        lines.append(f"- `padding` spends **{p['padding_fraction']:.0%}** of its computed tokens on pad ({p['computed_tokens']} slots for {p['real_tokens']} real tokens).")
    for r in comparison.results:
        if r["strategy"] == "padding-nomask":
            lines.append(f"- Without the mask, outputs move by up to **{r['fidelity']['max_abs_diff']:.2f}** (min cosine {r['fidelity']['min_cosine']:.3f}): the pad leaks into every sequence.")
    masked = [r for r in comparison.results if r["strategy"] != "padding-nomask"]
    if masked:
        worst = max(masked, key=lambda r: r["fidelity"]["max_abs_diff"])
        diff = worst["fidelity"]["max_abs_diff"]
        how = "exactly (0 difference)" if diff == 0 else f"within **{diff:.1e}**"
        lines.append(f"- Every masked strategy matches one-call-per-sequence {how} ({comparison.precision}).")
    lines += ["", HONEST_NOTE]
    return "\n".join(lines)


def results_rows(comparison: Comparison) -> list[list[Any]]:
    rows = []
    for r in comparison.results:
        lat = r["latency_ms"]
        rows.append([
            r["strategy"], r["num_calls"], len(r["compiled_shapes"]) if not r.get("dynamic") else "dynamic",
            round(r["padding_fraction"], 3), r["computed_tokens"], round(lat["median"], 2), round(lat["p90"], 2),
            round(r["ratio_to_dynamic"], 2) if r.get("ratio_to_dynamic") else None,
            round(r["compile_s"], 3), None if r["memory_mb"] is None else round(r["memory_mb"], 1),
            float(f"{r['fidelity']['max_abs_diff']:.3g}"), round(r["fidelity"]["min_cosine"], 5),
        ])
    return rows


TABLE_HEADERS = [
    "strategy", "calls", "compiled shapes", "padding fraction", "computed tokens", "median ms", "p90 ms",
    "x dynamic", "compile s", "memory MiB", "max abs diff", "min cosine",
]
TABLE_WIDTHS = ["13%", "6%", "8%", "8%", "8%", "8%", "7%", "8%", "8%", "8%", "9%", "9%"]


def write_downloads(comparison: Comparison) -> tuple[str, str]:
    folder = Path(tempfile.gettempdir()) / f"shapedemo-results-{os.getpid()}"  # one folder, overwritten
    folder.mkdir(exist_ok=True)
    csv_path, json_path = folder / "shapedemo-results.csv", folder / "shapedemo-results.json"
    with csv_path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(TABLE_HEADERS)
        writer.writerows(results_rows(comparison))
    data = comparison.to_dict()
    data["plans"] = {n: p.to_dict() for n, p in comparison.plans.items()}
    json_path.write_text(json.dumps(data, indent=1))
    return str(csv_path), str(json_path)


def explain(strategy: str, plans: dict[str, Plan] | None) -> tuple[str, str]:
    """The chosen strategy in words, and the OpenVINO code that reproduces its plan."""
    if not plans or strategy not in plans:
        return "Run a comparison to see the code of a strategy's plan.", ""
    plan = plans[strategy]
    shapes = ", ".join(f"{b}x{s}" for b, s in plan.compiled_shapes) or "one dynamic model"
    text = (
        f"### `{strategy}`\n{DESCRIPTIONS.get(strategy, '')}\n\n"
        f"This plan: **{_count(plan.num_calls, 'call')}**, compiled shapes **{shapes}**, "
        f"**{plan.padding_fraction:.0%}** padding. The code below compiles exactly these shapes and runs these calls."
    )
    return text, plan_code(plan)


def run_comparison(
    mode: str, text: str, workload: str, batch: float, seed: float, spec: str, strategies: Sequence[str],
    preset: str, buckets_text: str, k: float, batch_sizes_text: str, max_len: str,
    precision: str, repeats: float, calls: str, objective: str = OBJECTIVES[0], progress: gr.Progress = gr.Progress(),
) -> tuple[Any, ...]:
    """Plan, compile, warm up and time every chosen strategy on the same inputs."""
    with errors_to_ui("the comparison"):
        progress(0.0, desc="loading the model")
        s = _settings(mode, text, workload, batch, seed, spec, precision, preset, buckets_text, k, batch_sizes_text, max_len)
        names = list(strategies) or list(DEFAULT_STRATEGIES)
        n_repeats = max(1, min(int(repeats or 5), 50))
        shape_options = dict(seq_buckets=s["seq_buckets"], batch_sizes=s["batch_sizes"], max_seq=s["max_seq"])
        cost_table = None
        if objective == OBJECTIVES[1]:
            cost_table = measure_cost_table(
                s["engine"], s["lengths"], **shape_options, progress=lambda frac, what: progress(frac, desc=what)
            )
        comparison = compare(
            s["engine"], s["encoded"], names, **shape_options, cost_table=cost_table,
            repeats=n_repeats, warmup=1, concurrent=(calls == "concurrent"), texts=s["texts"],
            progress=lambda frac, what: progress(frac, desc=what),
        )
    plans = list(comparison.plans.values())
    if s["texts"] is not None:
        reference = comparison.outcomes["dynamic-single"].embeddings
        similarity = plots.similarity_figure(s["texts"], reference)
    else:
        similarity = plots.similarity_figure([], None)
    csv_path, json_path = write_downloads(comparison)
    first = names[0]
    explanation, code = explain(first, comparison.plans)
    return (
        summarize(comparison),
        plots.padding_waste_figure(plans),
        plots.chunk_decomposition_figure(plans),
        plots.latency_figure(comparison.results),
        plots.costs_figure(comparison.results),
        plots.fidelity_figure(comparison.results),
        plots.length_histogram_figure(comparison.lengths, s["seq_buckets"]),
        similarity,
        results_rows(comparison),
        [csv_path, json_path],
        comparison.plans,
        gr.update(choices=names, value=first),
        explanation,
        code,
    )


def suggest_buckets(preset: str, mode: str, text: str, workload: str, batch: float, seed: float, spec: str, k: float, max_len: str, current: str) -> Any:
    """Show in the bucket box the buckets a preset gives for these inputs (tuned: the exact
    optimum for these lengths); the box takes typing only under 'custom'."""
    if preset == "custom":
        return gr.update(value=current, interactive=True)
    try:
        s = _settings(mode, text, workload, batch, seed, spec, "auto", preset, current or "16", k, "1", max_len)
    except USER_ERRORS:
        return gr.update(value=current, interactive=False)
    return gr.update(value=",".join(str(b) for b in s["seq_buckets"]), interactive=False)


# ------------------------------------------------------------------------------ the page
INTRO = (
    "# shapedemo: serving changing shapes on OpenVINO\n"
    "A real BERT on OpenVINO, measured on this machine: native dynamic shapes next to the ways to get by "
    "with static shapes only, as on an NPU (padding, pre-compiled buckets, batch partitioning, sequence packing).\n\n"
    "**1.** Type texts, one per line, or click an example (or switch the input to a workload of sequence lengths). "
    "**2.** Tick the strategies. "
    "**3.** **Preview plans** draws how each strategy lays out the batch, at once, without running anything; "
    "**Compare** compiles, warms up and times them all on the same inputs (a few seconds) and fills every plot below."
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


def build_demo(*, spec: str | None = None) -> gr.Blocks:
    """The app's page; a factory so tests and Spaces build it the same way."""
    default_model = spec or default_spec()
    choices = model_choices()
    if default_model not in choices:
        choices = [default_model] + choices
    with gr.Blocks(title="shapedemo: static vs dynamic shapes on OpenVINO", fill_width=True) as demo:
        gr.Markdown(INTRO)
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
                model = gr.Dropdown(choices, value=default_model, label="model", allow_custom_value=custom_models_allowed(),
                                    info="minilm = all-MiniLM-L6-v2 (offline); synthetic = BERT sizes with random weights" + ("; or a Hugging Face id / local path" if custom_models_allowed() else ""))
                strategies = gr.CheckboxGroup(list(STRATEGY_NAMES), value=PAGE_STRATEGIES, label="strategies",
                                              info="padding-nomask leaves the attention mask out, to show what that breaks; dynamic-single (one call per sequence) is always run as the fidelity reference")
                with gr.Accordion("settings: buckets, batch sizes, precision, repeats", open=False):
                    with gr.Row():
                        preset = gr.Radio(BUCKET_PRESETS, value="powers of two", label="sequence buckets")
                        k = gr.Slider(1, 8, value=4, step=1, label="k (tuned buckets)")
                    buckets_text = gr.Textbox("16,32,64,128", label="sequence buckets in use (to type your own, choose 'custom')", interactive=False)
                    batch_sizes = gr.Textbox("1,2,4,8", label="batch sizes (partitioning)")
                    max_len = gr.Dropdown(MAX_LEN_CHOICES, value="auto", label="max length (padding shape)", info="auto: the smallest of 128/256/384/512 that fits the longest input")
                    with gr.Row():
                        precision = gr.Radio(["auto", "f32", "bf16"], value="auto", label="precision", info="auto = the device default; f32 for fidelity")
                        calls = gr.Radio(["sync", "concurrent"], value="sync", label="calls", info="concurrent: AsyncInferQueue")
                    repeats = gr.Slider(1, 30, value=5, step=1, label="repeats (after one warm-up)")
                    objective = gr.Radio(
                        OBJECTIVES, value=OBJECTIVES[0], label="how partitions are chosen",
                        info="measured latency: first times every batch size x bucket, then partition, "
                        "buckets-partition and packing pick the split of least predicted latency",
                    )
                with gr.Row():
                    preview = gr.Button("Preview plans")
                    run = gr.Button("Compare", variant="primary")
                downloads = gr.File(label="download results (CSV, JSON)", file_count="multiple", interactive=False, visible=False)
            with gr.Column(scale=3, min_width=480):
                summary = gr.Markdown(START_SUMMARY, elem_id="summary")
                waste, lengths_plot = _plot("waste"), _plot("lengths")
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

        inputs = [mode, text, workload, batch, seed, model, strategies, preset, buckets_text, k, batch_sizes, max_len]
        planned = preview.click(preview_plans, inputs, [waste, chunks, lengths_plot, summary], api_name="plan")
        compared = run.click(
            run_comparison, inputs + [precision, repeats, calls, objective],
            [summary, waste, chunks, latency, costs, fidelity, lengths_plot, similarity, table, downloads, plans_state, code_for, explanation, code],
            api_name="compare", concurrency_limit=1, concurrency_id="engine",
            # one progress bar where the eyes are, not an animated overlay on 14 outputs that
            # keeps the browser busy while the strategies are being timed
            show_progress_on=[summary],
        )
        code_for.change(explain, [code_for, plans_state], [explanation, code], api_name=False)
        # the bucket box shows the buckets in use: at load, on a new preset, after every run
        bucket_inputs = [preset, mode, text, workload, batch, seed, model, k, max_len, buckets_text]
        for event in (demo.load, preset.change, planned.success, compared.success):
            event(suggest_buckets, bucket_inputs, buckets_text, api_name=False)
        compared.success(lambda: gr.update(visible=True), None, downloads, api_name=False)
        mode.change(lambda m: (gr.update(visible=m == "texts"), gr.update(visible=m == "workload")), mode, [texts_group, workload_row], api_name=False)
        text.change(lambda: "texts", None, mode, api_name=False)
        for w in (workload, batch):
            w.change(lambda: "workload", None, mode, api_name=False)
    return demo


def launch_kwargs() -> dict[str, Any]:
    """Bind to all interfaces only where the environment asks (``GRADIO_SERVER_NAME``)."""
    return {"server_name": os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"}
