"""The Gradio app: handlers called directly, then the launched app driven by ``gradio_client``.

Every number the page shows is checked against the core (``make_plan``, the JSON download), so
a handler that wires the wrong value into the table or a figure fails here, not in a workshop.
"""

from __future__ import annotations

import csv
import json
import socket
from contextlib import contextmanager
from typing import Any, Iterator

import plotly.graph_objects as go
import pytest

gr = pytest.importorskip("gradio")

from shapedemo.app import page as ui  # noqa: E402
from shapedemo.planning.edges import resolve_buckets  # noqa: E402
from shapedemo import runner  # noqa: E402
from shapedemo.shapes import default_max_seq as auto_max_seq  # noqa: E402
from shapedemo.planning.workloads import sample_lengths as workload_lengths  # noqa: E402
from shapedemo.runtime.engine import Engine  # noqa: E402
from shapedemo.planning.strategies import make_plan  # noqa: E402

pytestmark = [
    pytest.mark.app,
    # gradio's queue calls pandas APIs that pandas 3 deprecates: theirs to fix, not ours
    pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing"),
]

TEXTS = [
    "A man is eating food.",
    "OpenVINO compiles a model for one static shape, and an NPU accepts static shapes only, so every "
    "input of another length has to be padded, bucketed, partitioned or packed before it runs.",
    "Short one.",
    "A woman is playing violin.",
]
STRATEGIES = ["dynamic", "padding", "buckets", "partition", "packing"]
BUCKETS = (16, 32, 64, 128)
BATCH_SIZES = (1, 2, 4)
REPEATS = 2


def page_inputs(**changes: Any) -> dict[str, Any]:
    """The page's inputs for ``run_comparison`` / ``/compare``, in order; fixed buckets and
    batch sizes so the expected plans do not depend on the presets."""
    values = {
        "mode": "texts", "text": "\n".join(TEXTS), "workload": "sst2-like", "batch": 16, "seed": 0,
        "spec": "minilm", "strategies": STRATEGIES, "preset": "custom",
        "buckets_text": ",".join(map(str, BUCKETS)), "k": 4, "batch_sizes_text": ",".join(map(str, BATCH_SIZES)),
        "max_len": "128", "precision": "f32", "repeats": REPEATS, "calls": "sync",
        "objective": "fewest padding rows",
    }
    values.update(changes)
    return values


PLAN_KEYS = list(page_inputs())[:12]  # what preview_plans and /plan take


def plan_inputs(**changes: Any) -> list[Any]:
    values = page_inputs(**changes)
    return [values[k] for k in PLAN_KEYS]


@pytest.fixture(scope="module", autouse=True)
def app_env(cache_dir):
    """Built models and compiled blobs in the session's tmp cache, never in ~/.cache; no
    analytics calls from Gradio."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHAPEDEMO_CACHE", str(cache_dir))
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.delenv("SHAPEDEMO_MODEL", raising=False)
        yield


def expected_plans(lengths: list[int], names: list[str], *, seq_buckets=BUCKETS, batch_sizes=BATCH_SIZES, max_seq=128):
    return {n: make_plan(n, lengths, seq_buckets=seq_buckets, batch_sizes=batch_sizes, max_seq=max_seq) for n in names}


def check_table(rows: list[list[Any]], plans: dict) -> None:
    """The table's plan columns are the core's plan numbers, strategy by strategy."""
    assert [row[0] for row in rows] == list(plans)
    for row in rows:
        plan = plans[row[0]]
        assert row[1] == plan.num_calls, row
        assert row[2] == ("dynamic" if plan.dynamic else len(plan.compiled_shapes)), row
        assert row[3] == pytest.approx(round(plan.padding_fraction, 3)), row
        assert row[4] == plan.computed_tokens, row
        assert float(row[5]) > 0, row  # median ms


def check_figures(figures: list[go.Figure], plans: dict, lengths: list[int]) -> None:
    """Each figure holds what its title promises, for these strategies and lengths."""
    waste, chunks, latency, costs, fidelity, lengths_fig = figures
    names = list(plans)
    titles = [a.text for a in waste.layout.annotations]
    for name, plan in plans.items():
        assert f"{name} — padding {100 * plan.padding_fraction:.0f}%" in titles
    assert list(chunks.layout.yaxis.ticktext) == names
    boxes = [t for t in latency.data if t.type == "box"]
    assert [b.name for b in boxes] == names
    assert all(len(b.x) == REPEATS for b in boxes)  # one row per strategy: samples on x, names on y
    assert list(costs.data[0].y) == names and list(fidelity.data[0].y) == names
    (hist,) = lengths_fig.data
    assert sorted(hist.x) == sorted(lengths)


# ------------------------------------------------------------------------------ handlers
@pytest.fixture(scope="module")
def text_run():
    return ui.run_comparison(*page_inputs().values())


@pytest.fixture(scope="module")
def text_lengths(minilm) -> list[int]:
    return minilm.tokenizer.encode(TEXTS).lengths


def test_run_comparison_on_texts_gives_seven_figures_and_the_core_numbers(text_run, text_lengths):
    assert len(ui.fields(text_run)) == 14
    summary = text_run.summary
    figures = [text_run.waste, text_run.chunks, text_run.latency, text_run.costs, text_run.fidelity,
               text_run.lengths_plot, text_run.similarity]
    assert all(isinstance(f, go.Figure) for f in figures)
    plans = expected_plans(text_lengths, STRATEGIES)
    check_figures(figures[:6], plans, text_lengths)
    (heatmap,) = figures[6].data
    assert heatmap.type == "heatmap" and len(heatmap.z) == len(TEXTS)
    assert [heatmap.z[i][i] for i in range(len(TEXTS))] == pytest.approx([1.0] * len(TEXTS), abs=1e-4)
    check_table(text_run.table, plans)
    assert f"{len(TEXTS)} sequences, {sum(text_lengths)} real tokens" in summary
    assert f"**{plans['padding'].padding_fraction:.0%}** of its computed tokens" in summary


def test_downloads_parse_and_hold_the_table(text_run):
    rows = text_run.table
    csv_path, json_path = text_run.downloads
    with open(csv_path, newline="") as f:
        records = list(csv.DictReader(f))
    assert [r["strategy"] for r in records] == STRATEGIES
    assert [int(r["computed tokens"]) for r in records] == [row[4] for row in rows]
    data = json.loads(open(json_path).read())
    assert [r["strategy"] for r in data["results"]] == STRATEGIES
    assert set(data["plans"]) == set(STRATEGIES)
    for row, result in zip(rows, data["results"]):
        assert row[5] == round(result["latency_ms"]["median"], 2)
        assert len(result["latency_ms"]["samples"]) == REPEATS


def test_code_box_and_strategy_choice_follow_the_run(text_run):
    plans_state, choice, explanation, code = text_run.plans_state, text_run.code_for, text_run.explanation, text_run.code
    assert list(plans_state) == STRATEGIES
    assert choice["choices"] == STRATEGIES and choice["value"] == "dynamic"
    assert "`dynamic`" in explanation and "import openvino" in code
    text, padding_code = ui.explain("padding", plans_state)
    assert "**1 call**" in text and "**4x128**" in text
    assert "import openvino" in padding_code and padding_code != code


def test_run_comparison_on_a_workload(minilm):
    names = ["dynamic", "buckets-partition", "packing"]
    out = ui.run_comparison(*page_inputs(mode="workload", workload="squad-like", batch=12, seed=3, strategies=names,
                                         preset="powers of two", max_len="auto").values())
    lengths = workload_lengths("squad-like", 12, seed=3, max_len=minilm.max_length)
    max_seq = auto_max_seq(lengths, limit=minilm.max_length)
    buckets = resolve_buckets("pow2", lengths, max_seq=max_seq)
    plans = expected_plans(lengths, names, seq_buckets=buckets, max_seq=max_seq)
    check_figures([out.waste, out.chunks, out.latency, out.costs, out.fidelity, out.lengths_plot], plans, lengths)
    check_table(out.table, plans)
    assert out.similarity.layout.annotations[0].text == "nothing to show yet"  # no texts, no similarity


def test_partitions_chosen_by_measured_latency(minilm):
    """The measured objective: every partitioning plan says so and predicts a latency from the
    measured table, and the summary reports predicted next to measured."""
    names = ["partition", "buckets-partition", "packing"]
    out = ui.run_comparison(*page_inputs(strategies=names, objective="measured latency").values())
    plans = out.plans_state
    for name in names:
        assert plans[name].params["objective"] == "latency"
        assert plans[name].params["predicted_latency_ms"] > 0
    assert "chosen by measured latency" in out.summary


def test_preview_plans_runs_nothing(monkeypatch, text_lengths):
    def forbidden(*args, **kwargs):
        raise AssertionError("preview must not compile or run")

    monkeypatch.setattr(Engine, "run", forbidden)
    monkeypatch.setattr(Engine, "compile", forbidden)
    view = ui.preview_plans(*plan_inputs())
    waste, chunks, lengths_fig, summary = view.waste, view.chunks, view.lengths_plot, view.summary
    plans = expected_plans(text_lengths, STRATEGIES)
    assert list(chunks.layout.yaxis.ticktext) == STRATEGIES
    assert sorted(lengths_fig.data[0].x) == sorted(text_lengths)
    for name, plan in plans.items():
        assert f"`{name}`: {plan.num_calls} call" in summary
        assert f"**{plan.padding_fraction:.0%}** padding" in summary
        assert f"{name} — padding {100 * plan.padding_fraction:.0f}%" in [a.text for a in waste.layout.annotations]


BAD_INPUTS = {
    "empty text": ({"text": "  \n \n"}, "no text given"),
    "batch 0": ({"mode": "workload", "batch": 0}, "batch 0"),
    "batch too large": ({"mode": "workload", "batch": 10_000}, "batch 10000"),
    "malformed buckets": ({"buckets_text": "12,abc"}, "'abc' is not a whole number"),
    "batch sizes 0": ({"batch_sizes_text": "0"}, "batch sizes: 0 is below 1"),
    "huge batch size": ({"batch_sizes_text": "1,100000"}, "batch sizes: 100000 is over"),
    "unknown model": ({"spec": "someone/no-such-model"}, "this server runs only"),
    "text over the model's length": ({"text": "word " * 600}, "the model takes at most 512"),
    "text over max length": ({"text": "word " * 100, "max_len": "64"}, "over max length 64"),
    "too many texts": ({"text": "a\n" * 100}, "at most 64"),
}


@pytest.mark.parametrize("handler", ["preview_plans", "run_comparison"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_gr_error(monkeypatch, handler, case):
    monkeypatch.setenv("SHAPEDEMO_ALLOW_CUSTOM_MODELS", "0")
    changes, expected = BAD_INPUTS[case]
    args = plan_inputs(**changes) if handler == "preview_plans" else list(page_inputs(**changes).values())
    with pytest.raises(gr.Error) as excinfo:
        getattr(ui, handler)(*args)
    message = excinfo.value.message
    assert type(excinfo.value) is gr.Error
    assert expected in message
    assert "\n" not in message and "Traceback" not in message
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__


def test_an_engine_failure_is_one_line_too(monkeypatch):
    """What is not bad input (OpenVINO out of memory, say) still reaches the page as one line:
    the reason, not the C++ source location OpenVINO puts first."""

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("Exception from src/inference/src/cpp/core.cpp:117:\nFailed to allocate 999 bytes of memory\n")

    monkeypatch.setattr(Engine, "run", out_of_memory)
    with pytest.raises(gr.Error) as excinfo:
        ui.run_comparison(*page_inputs().values())
    assert excinfo.value.message == "the comparison failed: Failed to allocate 999 bytes of memory"


# ------------------------------------------------------------------------------ the launched app
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app() -> Iterator[str]:
    """The real page, queued as ``app.py`` queues it, on a free local port; closed afterwards."""
    demo = ui.build_demo()
    port = free_port()
    kwargs = {**ui.launch_kwargs(), "server_name": "127.0.0.1", "server_port": port}
    demo.queue(default_concurrency_limit=1, max_size=32).launch(prevent_thread_lock=True, quiet=True, **kwargs)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with serve_app() as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    c = Client(app_url, verbose=False)
    yield c
    c.close()


def plot_json(value: dict) -> dict:
    assert value["type"] == "plotly"
    return json.loads(value["plot"])


def test_api_compare_returns_plots_and_the_core_numbers(client, text_lengths):
    out = client.predict(*page_inputs().values(), api_name="/compare")
    summary, *plots_ = out[:8]
    figures = [plot_json(p) for p in plots_]
    assert len(figures) == 7 and all(f["data"] for f in figures)
    latency = figures[2]
    assert [t["name"] for t in latency["data"] if t["type"] == "box"] == STRATEGIES
    table = out[8]
    assert table["headers"] == ui.TABLE_HEADERS
    check_table(table["data"], expected_plans(text_lengths, STRATEGIES))
    with open(out[9][0], newline="") as f:
        assert [r["strategy"] for r in csv.DictReader(f)] == STRATEGIES
    assert "import openvino" in out[12]


def test_api_plan(client, text_lengths):
    waste, chunks, lengths_fig, summary = client.predict(*plan_inputs(), api_name="/plan")
    assert plot_json(chunks)["layout"]["yaxis"]["ticktext"] == STRATEGIES
    assert len(plot_json(lengths_fig)["data"]) == 1
    plans = expected_plans(text_lengths, STRATEGIES)
    for name, plan in plans.items():
        assert f"`{name}`: {plan.num_calls} call" in summary


def test_api_bad_input_is_an_error_message_and_the_server_lives_on(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no text given"):
        client.predict(*page_inputs(text="").values(), api_name="/compare")
    assert "`dynamic`" in client.predict(*plan_inputs(), api_name="/plan")[3]


def compiled_entries() -> list:
    return [entry for engine in runner.engines() for entry in engine.compiled_entries()]


def test_compiled_shapes_are_reused_across_runs(client):
    # shapes no other test compiles: batch sizes 3 and 5, sequence buckets 24 and 256
    names = ["partition", "buckets-partition"]
    args = page_inputs(strategies=names, batch_sizes_text="3,5", max_len="256", buckets_text="24,256").values()
    first = client.predict(*args, api_name="/compare")
    entries = compiled_entries()
    lengths = runner.load("minilm").tokenizer.encode(TEXTS).lengths
    needed = {s for p in expected_plans(lengths, names, seq_buckets=(24, 256), batch_sizes=(3, 5), max_seq=256).values() for s in p.compiled_shapes}
    (engine,) = [e for e in runner.engines() if (e.loaded.spec, e.device, e.precision, e.static_only) == ("minilm", "CPU", "f32", False)]
    assert needed <= {e.shape for e in engine.compiled_entries()}
    second = client.predict(*args, api_name="/compare")
    again = compiled_entries()
    assert len(again) == len(entries)
    assert all(a is b for a, b in zip(again, entries))  # the very same compiled models
    # compile seconds come from the compiled entries: unchanged when nothing was recompiled
    assert [row[8] for row in second[8]["data"]] == [row[8] for row in first[8]["data"]]
