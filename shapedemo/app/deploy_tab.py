"""The "Deploy" tab: how many shapes to compile for your traffic, then that traffic live.

Two experiments past the comparison, each one named endpoint: ``/shapes`` tunes K compiled
shapes (sequence buckets x batch sizes) for a traffic sample and draws what every extra shape
buys (``runner.tune`` + ``plots.shape_budget_figure``); ``/traffic`` plays a Poisson stream of
requests through the server's own batcher (``traffic.run_traffic``) and draws latency over time,
queue delay against compute, and which compiled shape ran when. Thin: the logic lives below.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import gradio as gr

from shapedemo import plots, runner

from shapedemo.app.common import cancellable
from shapedemo.measure import report
from shapedemo.settings import PAGE_LIMITS, SERVE_STRATEGY, WEIGHTS, PAGE_TRAFFIC_SHAPES, RunSettings, page_traffic_shapes
from shapedemo.planning.strategies import STRATEGY_NAMES
from shapedemo.planning.workloads import WORKLOADS

MAX_SAMPLE = 1000
TRAFFIC_STRATEGIES = [n for n in STRATEGY_NAMES if n not in ("dynamic-single", "padding-nomask")]
DEFAULT_TRAFFIC_STRATEGY = SERVE_STRATEGY

SHAPES_INTRO = (
    "### How many shapes should I compile?\n"
    "Every compiled shape costs compile time and memory (on an NPU, seconds to minutes each) and "
    "saves padding. For a traffic sample, `tune` picks the best K shapes (sequence buckets x batch "
    "sizes) for K = 1..8 and predicts what serving it costs; the knee is where one more shape stops "
    "paying. Timing a few shapes on this device first makes the prediction milliseconds instead "
    "of token slots."
)
TRAFFIC_INTRO = (
    "### Live traffic\n"
    "Requests arrive one at a time (Poisson, at the rate you pick); the batcher groups what arrived "
    "while the last batch ran (a request that finds the engine free runs at once), plans it with the "
    "strategy and runs it on shapes compiled up front: what `python -m shapedemo serve` does behind "
    "HTTP. Here on fewer shapes than `serve`'s "
    f"default (sequence buckets {', '.join(map(str, PAGE_TRAFFIC_SHAPES.seq_buckets))} x batch sizes "
    f"{', '.join(map(str, PAGE_TRAFFIC_SHAPES.batch_sizes))}, plain and packed), so they fit the "
    "page's memory budget for compiled models."
)


def find_shapes(
    workload: str, sample: float, spec: str, measure: bool, weights: str = "f32", device: str = "CPU",
    static_only: bool = False, progress: Any = gr.Progress(),
) -> tuple[Any, str, str]:
    """The budget curve for a workload sample: figure, the knee's configuration in words, and
    the knee's configuration as JSON (``compare --config`` / ``serve --config`` take it).
    ``weights``: the weights the shapes are timed, compiled and measured with (int8 calibrated
    on the sample's token ids). ``device`` and ``static_only``: the page's, where shapes are timed."""
    from shapedemo.app.common import check_model, errors_to_ui

    with errors_to_ui("tuning"):
        n = int(sample or 0)
        if not 1 <= n <= MAX_SAMPLE:
            raise ValueError(f"sample {n}: choose 1 to {MAX_SAMPLE} lengths")
        settings = RunSettings(
            workload=workload, batch=n, model=check_model(spec), limits=replace(PAGE_LIMITS, batch=MAX_SAMPLE),
            weights=weights or "f32", device=(device or "CPU").strip(), static_only=bool(static_only),
        ).validate()
        config = runner.tune(
            settings, budget=8, measure=bool(measure), curve=True,
            progress=lambda frac, what: progress(frac, desc=what),
        )
    rows = config["curve"]
    knee = next(row for row in rows if row["knee"])
    cost = "" if knee.get("predicted_ms") is None else f", predicted {knee['predicted_ms']:.2f} ms per text"
    lo, hi = config.get("knee_range") or (knee["k"], knee["k"])
    near = f" K={lo}..{hi} are within the noise of the measured prices (±{config.get('price_noise', 0.0):.0%})." if hi > lo else ""
    text = (
        f"**The knee: {report.count(knee['k'], 'compiled shape')}** "
        f"({', '.join(f'{b}x{s}' for b, s in knee['shapes'])}): padding {knee['padding_fraction']:.0%}{cost}. "
        f"With 8: {report.format_config(config).splitlines()[1]}.{near} Decided by the rule: "
        f"{config.get('knee_rule', 'the fewest shapes within 5% of the least predicted cost')}. The objective is the "
        f"predicted latency per text (token slots where nothing was timed), so padding may rise from one K to the next."
        + (f" Timed, compiled and measured with **{config['weights']}** weights." if measure and config.get("weights", "f32") != "f32" else "")
    )
    return plots.shape_budget_figure(rows), text, json.dumps(knee_config(knee, config), indent=1)


def knee_config(knee: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """The knee's row as a deployable configuration (``tune --json``'s keys): its shapes are
    sequence buckets x batch sizes, so both lists are read off them."""
    return {
        "seq_buckets": sorted({s for _, s in knee["shapes"]}),
        "batch_sizes": sorted({b for b, _ in knee["shapes"]}),
        "shapes": knee["shapes"],
        "predicted": {
            "padding_fraction": knee["padding_fraction"],
            "ms_per_text": knee.get("predicted_ms"),
            "cost_model": config["predicted"]["cost_model"],
        },
        "weights": config.get("weights", "f32"),
    }


def live_traffic(
    strategy: str, rate: float, duration: float, workload: str, spec: str, device: str = "CPU",
    static_only: bool = False, progress: Any = gr.Progress(),
) -> tuple[str, Any, Any, Any]:
    """A Poisson stream through the batcher on the page's device (static-only: as an NPU would
    refuse dynamic shapes), on the page's shapes (``PAGE_TRAFFIC_SHAPES``: they fit
    ``PAGE_COMPILED_MB``): a summary and the three traffic figures."""
    from shapedemo.serving.stream import TrafficSettings, run_traffic
    from shapedemo.app.common import check_model, errors_to_ui

    with errors_to_ui("the traffic run"):
        engine = runner.engine_for(RunSettings(
            workload=workload, model=check_model(spec), device=(device or "CPU").strip(), static_only=bool(static_only),
        ).validate())
        run = run_traffic(
            engine,
            TrafficSettings(strategy=strategy, rate=float(rate), duration_s=float(duration), workload=workload,
                            shapes=page_traffic_shapes(engine.loaded.max_length)),
            progress=lambda frac, what: progress(frac, desc=what),
        )
    data = run.to_dict()
    s = data["summary"]
    lat = s["latency_ms"]
    text = (
        f"**{s['answered']} of {s['requests']} requests answered** ({s['refused']} refused by a full queue) at "
        f"{s['offered_rps']:.0f} req/s offered, {s['throughput_rps']:.1f} served; latency p50 "
        f"{_ms(lat['p50'])}, p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}; mean queue delay "
        f"{_ms(s['mean_queue_ms'])} against {_ms(s['mean_compute_ms'])} of compute; "
        f"{s['batches']} batches of {s['mean_batch_texts'] or 0:.1f} texts on average, padding "
        f"{s['padding_fraction']:.0%}, {report.count(s['compiled_shapes'], 'compiled shape')} "
        f"(compiled before the first request, in {s['startup_s']:.1f} s)."
    )
    return (text, *plots.traffic_figures(data))


def _shown(handler: Any, *, figures: int, first: bool = False) -> Any:
    """``handler`` for a page event: its figures (the last ``figures`` outputs, or the first
    with ``first``) made visible with their data, so no empty chart frame stands before a run."""
    import functools

    @functools.wraps(handler)
    def event(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        out = list(handler(*args, **kwargs))
        where = range(figures) if first else range(len(out) - figures, len(out))
        for i in where:
            out[i] = gr.update(value=out[i], visible=True)
        return tuple(out)

    return event


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def build_deploy_tab(*, model: Any, device: Any, static_only: Any) -> None:
    """The tab's widgets and events, inside the caller's ``gr.Tab`` (``model``, ``device`` and
    ``static_only``: the page's widgets, shared)."""
    gr.Markdown(SHAPES_INTRO)
    with gr.Row(equal_height=False):
        workload = gr.Dropdown(list(WORKLOADS), value="sst2-like", label="traffic: workload", min_width=160)
        sample = gr.Slider(16, MAX_SAMPLE, value=256, step=16, label="sample (lengths)", min_width=160)
    # under the row, not in it: a checkbox in a row keeps its place on a phone and its label
    # is squeezed to a word per line
    measure = gr.Checkbox(True, label="time shapes on this device")
    weights = gr.Radio(list(WEIGHTS), value="f32", label="weights (what each shape costs to compile and hold)")
    tune_button = gr.Button("Find the shapes", variant="primary", elem_id="tune-button")
    tune_text = gr.Markdown(elem_id="tune-summary")
    budget_plot = gr.Plot(show_label=False, elem_id="plot-budget", visible=False)  # no empty frame before a run
    gr.Markdown(
        "For each number K of compiled shapes: the padding left, the predicted latency per text, the compile "
        "time and memory (the last three where timed on this device); the dashed line marks the knee.",
        elem_classes=["caption"],
    )
    with gr.Accordion("the knee's configuration (python -m shapedemo compare/serve --config FILE)", open=False):
        config = gr.Code(language="json", show_line_numbers=False, elem_id="tune-config")
    tune_button.click(
        cancellable(_shown(find_shapes, figures=1, first=True)), [workload, sample, model, measure, weights, device, static_only], [budget_plot, tune_text, config],
        api_name="shapes", concurrency_id="engine", concurrency_limit=1,
    )

    gr.Markdown(TRAFFIC_INTRO)
    with gr.Row(equal_height=False):
        strategy = gr.Dropdown(TRAFFIC_STRATEGIES, value=DEFAULT_TRAFFIC_STRATEGY, label="strategy", min_width=160)
        rate = gr.Slider(1, 200, value=20, step=1, label="rate (requests/s)", min_width=160)
        duration = gr.Slider(1, 20, value=5, step=1, label="duration (s)", min_width=160)
    traffic_button = gr.Button("Run the stream", variant="primary", elem_id="traffic-button")
    traffic_text = gr.Markdown(elem_id="traffic-summary")
    # hidden until the stream has run: three empty frames said nothing
    latency_plot = gr.Plot(show_label=False, elem_id="plot-traffic-latency", visible=False)
    queue_plot = gr.Plot(show_label=False, elem_id="plot-traffic-queue", visible=False)
    calls_plot = gr.Plot(show_label=False, elem_id="plot-traffic-calls", visible=False)
    traffic_button.click(
        cancellable(_shown(live_traffic, figures=3)), [strategy, rate, duration, workload, model, device, static_only],
        [traffic_text, latency_plot, queue_plot, calls_plot],
        api_name="traffic", concurrency_id="engine", concurrency_limit=1,
    )
