"""Tests for shapedemo.plots: the figures carry the traces, titles, annotations and heights they
promise. Plans are built by hand from shapedemo.planning.plan classes; result dicts are test inputs written
here in the format ``compare`` produces."""

from __future__ import annotations

import ast
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from shapedemo import plots
from shapedemo.planning.plan import Call, Plan, Segment, single_row_call

KNOWN = ["dynamic", "dynamic-single", "padding", "padding-nomask", "buckets", "partition", "buckets-partition", "packing"]


# ---------------------------------------------------------------------------------------------
# test inputs


def padding_plan() -> Plan:
    """Two sequences of 3 and 5 tokens padded to one 2 x 8 call: 8 real of 16 computed, 50%."""
    return Plan("padding", (3, 5), (single_row_call(2, 8, [(0, 3), (1, 5)]),))


def partition_plan() -> Plan:
    """Five sequences split 4 + 1, the second call padded to batch 2 (one padding row)."""
    lengths = (3, 4, 5, 6, 7)
    return Plan(
        "partition",
        lengths,
        (single_row_call(4, 8, [(i, lengths[i]) for i in range(4)]), single_row_call(2, 8, [(4, 7)])),
    )


def packing_plan() -> Plan:
    """Four sequences packed into two rows of one 2 x 8 call: (3 + 4) and (2 + 6)."""
    rows = ((Segment(0, 0, 3), Segment(1, 3, 4)), (Segment(2, 0, 2), Segment(3, 2, 6)))
    return Plan("packing", (3, 4, 2, 6), (Call(2, 8, rows),), packed=True)


def dynamic_plan() -> Plan:
    return Plan("dynamic", (3, 5), (single_row_call(2, 5, [(0, 3), (1, 5)]),), dynamic=True)


def big_plans(n: int = 64) -> list[Plan]:
    """Eight plans of ``n`` sequences: the size the app shows, to check speed and trace count."""
    lengths = tuple(5 + (i * 37) % 120 for i in range(n))
    singles = tuple(single_row_call(1, n_, [(i, n_)]) for i, n_ in enumerate(lengths))
    chunked = tuple(single_row_call(2, 128, [(i, lengths[i]) for i in range(k, min(k + 2, n))]) for k in range(0, n, 2))
    out = [Plan(name, lengths, chunked) for name in KNOWN[2:]]
    return [Plan("dynamic-single", lengths, singles, dynamic=True), *out]


def result(strategy: str, *, median: float, samples: list[float] | None = None, **extra: Any) -> dict[str, Any]:
    """A result dict in ``compare``'s format, with the fields a test does not care about filled in."""
    r: dict[str, Any] = {
        "strategy": strategy,
        "num_calls": 1,
        "compiled_shapes": [[2, 8]],
        "padding_fraction": 0.5,
        "real_tokens": 8,
        "computed_tokens": 16,
        "compile_s": 1.0,
        "memory_mb": 40.0,
        "latency_ms": {"median": median, "mean": median, "min": median, "max": median, "p90": median,
                       "samples": samples if samples is not None else [median * 0.9, median, median * 1.1]},
        "fidelity": {"max_abs_diff": 3e-6, "min_cosine": 0.99999},
    }
    r.update(extra)
    return r


def annotation_texts(fig: go.Figure) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def assert_common(fig: go.Figure) -> None:
    """What every figure promises: a plotly Figure with explicit height, the white template, a
    title, and JSON that Gradio can send."""
    assert isinstance(fig, go.Figure)
    assert isinstance(fig.layout.height, int) and fig.layout.height >= 200
    assert fig.layout.template == pio.templates["plotly_white"]
    assert fig.layout.title.text
    fig.to_json()


# ---------------------------------------------------------------------------------------------
# colours and helpers


def test_strategy_colors_are_distinct_and_cover_the_known_strategies() -> None:
    assert set(KNOWN) <= set(plots.STRATEGY_COLORS)
    colors = [plots.STRATEGY_COLORS[n] for n in KNOWN]
    assert len(set(colors)) == len(colors)
    assert plots.PAD_COLOR not in colors


def test_unknown_strategy_gets_a_stable_fallback_colour() -> None:
    c = plots.strategy_color("some-new-strategy")
    assert c in plots.FALLBACK_COLORS
    assert c == plots.strategy_color("some-new-strategy")
    assert c not in plots.STRATEGY_COLORS.values()


def test_decomposition_strings() -> None:
    assert plots.decomposition(partition_plan()) == "5 = 4 + 1 (+1 padding row)"
    assert plots.decomposition(packing_plan()) == "4 = (2+2)"
    assert plots.decomposition(big_plans(8)[0]) == "8 = 8 × 1"


@pytest.mark.parametrize(
    "make",
    [
        lambda: plots.padding_waste_figure([]),
        lambda: plots.chunk_decomposition_figure([]),
        lambda: plots.latency_figure([]),
        lambda: plots.costs_figure([]),
        lambda: plots.fidelity_figure([]),
        lambda: plots.similarity_figure([], np.zeros((0, 4))),
        lambda: plots.length_histogram_figure([], None),
    ],
    ids=["waste", "chunks", "latency", "costs", "fidelity", "similarity", "histogram"],
)
def test_empty_input_says_nothing_to_show_yet(make: Any) -> None:
    fig = make()
    assert_common(fig)
    assert "nothing to show yet" in annotation_texts(fig)
    assert len(fig.data) == 0


def imported_top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_plots_imports_neither_openvino_nor_gradio() -> None:
    names = imported_top_level_names(Path(plots.__file__))
    assert not names & {"openvino", "gradio"}, names


def test_no_module_of_the_plots_package_imports_openvino_or_gradio() -> None:
    package = Path(plots.__file__).parent
    modules = sorted(package.glob("*.py"))
    assert len(modules) >= 8  # one per figure family + style + __init__
    for path in modules:
        names = imported_top_level_names(path)
        assert not names & {"openvino", "gradio"}, (path.name, names)


def test_bucket_counts_agree_with_bucket_for() -> None:
    from shapedemo.planning.edges import bucket_for

    lengths = [1, 16, 17, 32, 33, 64, 65, 300]
    counts, too_long = plots._bucket_counts(lengths, [64, 16, 32])
    assert too_long == 2
    expected: dict[int, int] = {16: 0, 32: 0, 64: 0}
    for n in lengths[:-2]:
        expected[bucket_for(n, (16, 32, 64))] += 1
    assert counts == expected


# ---------------------------------------------------------------------------------------------
# 1. padding waste


def test_padding_waste_title_and_token_accounting() -> None:
    plan = padding_plan()
    fig = plots.padding_waste_figure([plan])
    assert_common(fig)
    assert "padding — padding 50%" in annotation_texts(fig)
    real, pad = fig.data
    assert real.name == "real tokens" and pad.name.startswith("padding")
    # Every real token and every padding slot is drawn exactly once.
    assert sum(real.x) == plan.real_tokens == 8
    assert sum(pad.x) == plan.padding_tokens == 8
    assert list(real.base) == [0, 0] and sorted(pad.base) == [3, 5]
    assert pad.marker.color == plots.PAD_COLOR
    assert fig.layout.yaxis.ticktext == ("call 0: 2 x 8",)


def test_padding_waste_packed_rows_have_distinct_shades_and_gaps_are_padding() -> None:
    plan = packing_plan()
    fig = plots.padding_waste_figure([plan])
    real, pad = fig.data
    assert sum(real.x) == plan.real_tokens == 15
    assert sum(pad.x) == plan.padding_tokens == 1
    # The two segments of each row get different shades of the packing colour.
    by_row: dict[float, list[str]] = {}
    for y, color in zip(real.y, real.marker.color):
        by_row.setdefault(y, []).append(color)
    assert all(len(set(cs)) == len(cs) == 2 for cs in by_row.values())
    assert plots.STRATEGY_COLORS["packing"] in real.marker.color


def test_padding_waste_interior_gap_is_padding() -> None:
    plan = Plan("packing", (2, 3), (Call(1, 10, ((Segment(0, 0, 2), Segment(1, 5, 3)),)),), packed=True)
    pad = plots.padding_waste_figure([plan]).data[1]
    assert sorted(zip(pad.base, pad.x)) == [(2, 3), (8, 2)]


def test_padding_waste_grid_of_many_plans_is_fast_and_compact() -> None:
    plans = big_plans(64)
    start = time.perf_counter()
    fig = plots.padding_waste_figure(plans)
    assert time.perf_counter() - start < 2.0
    assert_common(fig)
    # Two traces per strategy, not one per segment.
    assert len(fig.data) == 2 * len(plans)
    titles = annotation_texts(fig)
    assert all(any(t.startswith(f"{p.strategy} — padding ") for t in titles) for p in plans)
    # 64 one-row calls: labels are thinned out so they do not overlap.
    assert 0 < len(fig.layout.yaxis.ticktext) < 64
    assert fig.layout.height > 4 * 190


def test_dynamic_plan_is_drawn_like_the_others() -> None:
    fig = plots.padding_waste_figure([dynamic_plan()])
    assert "dynamic — padding 20%" in annotation_texts(fig)
    assert sum(fig.data[0].x) == 8 and sum(fig.data[1].x) == 2


# ---------------------------------------------------------------------------------------------
# 2. chunk decomposition


def test_chunk_figure_single_plan_title_blocks_and_padding_rows() -> None:
    fig = plots.chunk_decomposition_figure([partition_plan()])
    assert_common(fig)
    assert fig.layout.title.text == "partition: 5 = 4 + 1 (+1 padding row)"
    real, pad, calls = fig.data[:3]
    assert list(calls.x) == [4, 2] and list(calls.base) == [0, 4]
    assert list(calls.text) == ["4x8", "2x8"]
    assert all("5 = 4 + 1" in h for h in calls.hovertext)
    assert list(real.x) == [4, 1]
    assert list(pad.x) == [1] and list(pad.base) == [5]
    assert pad.marker.pattern.shape == "/"
    assert "5 = 4 + 1 (+1 padding row)" in annotation_texts(fig)


def test_chunk_figure_packed_rows_show_segment_counts() -> None:
    fig = plots.chunk_decomposition_figure([padding_plan(), packing_plan()])
    assert "How each strategy" in fig.layout.title.text
    counts = [t for t in fig.data if t.name == "sequences per packed row"]
    assert len(counts) == 1 and list(counts[0].text) == ["2", "2"]
    assert list(fig.layout.yaxis.ticktext) == ["padding", "packing"]
    assert {"2 = 2", "4 = (2+2)"} <= set(annotation_texts(fig))
    assert any("4 sequences packed into 2 rows" in h for h in fig.data[2].hovertext)


# ---------------------------------------------------------------------------------------------
# 3. latency


def test_latency_ratios_against_dynamic() -> None:
    results = [result("dynamic", median=10.0), result("padding", median=20.0), result("buckets", median=8.0)]
    fig = plots.latency_figure(results)
    assert_common(fig)
    assert [t.type for t in fig.data] == ["box"] * 3
    assert list(fig.data[1].x) == results[1]["latency_ms"]["samples"]  # horizontal: one row per strategy
    texts = annotation_texts(fig)
    assert any(t.startswith("<b>1.00x") for t in texts)
    assert any("2.00x slower" in t for t in texts)
    assert any("0.80x = 1.25x faster" in t for t in texts)
    assert fig.layout.xaxis.title.text == "latency per batch (ms)"
    assert fig.data[1].marker.color == plots.STRATEGY_COLORS["padding"]


def test_latency_without_dynamic_compares_to_the_fastest_and_tolerates_missing_samples() -> None:
    results = [result("padding", median=30.0, samples=[]), result("buckets", median=10.0), {"strategy": "broken"}]
    fig = plots.latency_figure(results)
    assert "vs buckets" in fig.layout.title.text and "no latency for broken" in fig.layout.title.text
    texts = annotation_texts(fig)
    assert any("3.00x slower" in t for t in texts)
    assert len(fig.data) == 2 and list(fig.data[0].x) == [30.0]


# ---------------------------------------------------------------------------------------------
# 4. costs


def test_costs_two_subplots_with_shape_counts_and_missing_values() -> None:
    results = [
        result("dynamic", median=1.0, compiled_shapes=[], compile_s=0.5, memory_mb=None),
        result("buckets", median=1.0, compiled_shapes=[[8, 32], [8, 64]], compile_s=1.2, memory_mb=90.0),
    ]
    fig = plots.costs_figure(results)
    assert_common(fig)
    compile_bar, memory_bar = fig.data
    assert compile_bar.xaxis == "x" and memory_bar.xaxis == "x2"
    assert list(compile_bar.x) == [0.5, 1.2]
    assert list(compile_bar.text) == ["1 dynamic<br>model", "2 shapes"]
    assert memory_bar.x[0] is None and memory_bar.x[1] == 90.0
    assert "not measured" in annotation_texts(fig)
    assert {"compile time (s)", "memory (MiB)"} <= set(annotation_texts(fig))


# ---------------------------------------------------------------------------------------------
# 5. fidelity


def fidelity_results() -> list[dict[str, Any]]:
    return [
        result("dynamic-single", median=1.0, fidelity={"max_abs_diff": 0.0, "min_cosine": 1.0}),
        result("padding", median=1.0, fidelity={"max_abs_diff": 2e-6, "min_cosine": 0.999999}),
        result("padding-nomask", median=1.0, fidelity={"max_abs_diff": 0.9, "min_cosine": -0.2}),
        result("packing", median=1.0, fidelity=None),
    ]


def test_fidelity_log_axis_roundoff_line_and_clipping() -> None:
    fig = plots.fidelity_figure(fidelity_results())
    assert_common(fig)
    assert fig.layout.xaxis.type == "log"
    diffs = fig.data[0].x
    assert diffs[0] == 1e-9 and diffs[1] == 2e-6 and diffs[3] is None
    lines = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(lines) == 1 and lines[0].x0 == lines[0].x1 == 1e-4
    label = next(a for a in fig.layout.annotations if a.text == "f32 round-off")
    assert label.x == pytest.approx(math.log10(1e-4))
    assert "no fidelity" in annotation_texts(fig)


def test_fidelity_nomask_stands_out_and_cosine_axis_reaches_negative() -> None:
    fig = plots.fidelity_figure(fidelity_results())
    nomask_notes = [a for a in fig.layout.annotations if "scrambled" in a.text]
    assert len(nomask_notes) == 2
    assert {a.xref for a in nomask_notes} == {"x", "x2"}
    # the round-off line passes behind the labels, which stand on an opaque background
    assert fig.layout.shapes[0].layer == "below" and all(a.bgcolor for a in nomask_notes if a.xref == "x")
    colors = list(fig.data[1].marker.color)
    assert colors[2] == plots.STRATEGY_COLORS["padding-nomask"]
    assert colors.count(colors[2]) == 1
    lo, hi = fig.layout.xaxis2.range
    assert lo <= -0.2 and hi == 1.0


def test_fidelity_cosine_axis_starts_at_zero_when_all_positive() -> None:
    fig = plots.fidelity_figure([result("padding", median=1.0)])
    assert tuple(fig.layout.xaxis2.range) == (0.0, 1.0)
    assert not any("no mask" in t for t in annotation_texts(fig))


# ---------------------------------------------------------------------------------------------
# 6. similarity


def test_similarity_heatmap_is_the_cosine_matrix() -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat and looked very pleased with itself", "stocks fell"]
    emb = np.array([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
    fig = plots.similarity_figure(texts, emb)
    assert_common(fig)
    (heat,) = fig.data
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    np.testing.assert_allclose(np.asarray(heat.z), unit @ unit.T)
    # issue 13: a value goes negative, so the colour bar runs -1..1 (it ran 0..1 before)
    assert heat.zmin == -1.0 and heat.zmax == 1.0 and heat.zmid == 0.0
    assert heat.z[0][2] == pytest.approx(-1.0)  # negative value kept, only the colour clips
    assert heat.texttemplate == "%{z:.2f}"
    labels = list(heat.x)
    assert labels == list(heat.y) and len(set(labels)) == 3
    assert labels[1].endswith("…") and len(labels[1]) <= len("2. ") + 30
    assert "looked very pleased" in heat.text[1][0]


def test_similarity_rejects_mismatched_embeddings() -> None:
    with pytest.raises(ValueError, match="2 texts"):
        plots.similarity_figure(["a", "b"], np.ones((3, 4)))


# ---------------------------------------------------------------------------------------------
# 7. length histogram


def test_length_histogram_with_bucket_edges() -> None:
    lengths = [5, 9, 17, 30, 31, 60, 200]
    fig = plots.length_histogram_figure(lengths, [64, 32])
    assert_common(fig)
    (hist,) = fig.data
    assert hist.type == "histogram" and list(hist.x) == lengths
    edges = sorted(s.x0 for s in fig.layout.shapes if s.line.dash == "dash")
    assert edges == [32.5, 64.5]
    texts = annotation_texts(fig)
    assert "≤32: 5" in texts and "≤64: 1" in texts
    assert "1 longer than the largest bucket" in fig.layout.title.text


def test_length_histogram_without_buckets_has_no_lines() -> None:
    fig = plots.length_histogram_figure([10, 20, 20, 40], None)
    assert not fig.layout.shapes
    assert "n=4" in fig.layout.title.text


# ---------------------------------------------------------------------------------------------
# optional PNG export


def test_png_export_when_kaleido_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("kaleido")
    for name, fig in {
        "waste": plots.padding_waste_figure([padding_plan(), packing_plan()]),
        "latency": plots.latency_figure([result("dynamic", median=10.0), result("padding", median=20.0)]),
    }.items():
        out = tmp_path / f"{name}.png"
        fig.write_image(out)
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------
# phone layout (issue 13): one column, horizontal labels, legends under the plot, short titles

EIGHT = ["dynamic", "padding", "padding-nomask", "buckets", "partition", "buckets-partition", "packing", "dynamic-bounded", "auto"]


def plain_lines(text: str) -> list[str]:
    import re

    return [re.sub(r"<[^>]+>", "", line) for line in text.split("<br>")]


def split_result(strategy: str, *, median: float, host: float, **extra: Any) -> dict[str, Any]:
    """A result with the engine's new fields: host and device stats, compiled models."""
    def stats(m: float) -> dict[str, Any]:
        return {"median": m, "mean": m, "min": m, "max": m, "p90": m, "samples": [m, m, m]}

    return result(strategy, median=median, host_ms=stats(host), device_ms=stats(median - host), **extra)


def not_run(strategy: str) -> dict[str, Any]:
    """A result that did not run on the device: no latency, fidelity or costs keys at all."""
    return {"strategy": strategy, "supported": False, "reason": "Exception from src/plugin.cpp:612: get_shape was called on a dynamic shape",
            "compiled_shapes": [], "padding_fraction": 0.0}


def all_figures() -> dict[str, go.Figure]:
    lengths = (3, 5, 7, 20, 33)
    plans = [Plan(name, lengths, (single_row_call(8, 64, [(i, n) for i, n in enumerate(lengths)]),)) for name in EIGHT]
    results = [split_result(n, median=10.0 + 9 * i, host=1.0) for i, n in enumerate(EIGHT)]
    results[2]["fidelity"] = {"max_abs_diff": 2.16, "min_cosine": 0.256}  # padding-nomask, as measured at bf16
    results[7] = not_run("dynamic-bounded")
    return {
        "waste": plots.padding_waste_figure(plans),
        "chunks": plots.chunk_decomposition_figure(plans),
        "latency": plots.latency_figure(results, baseline={"device": "CPU", "latency_ms": {"median": 9.0}}),
        "costs": plots.costs_figure(results),
        "fidelity": plots.fidelity_figure(results, precision="bf16"),
        "similarity": plots.similarity_figure(["a b", "c d", "e f"], np.eye(3)),
        "lengths": plots.length_histogram_figure([5, 9, 17, 30], [16, 32, 64, 128]),
        "budget": plots.shape_budget_figure(budget_rows()),
    }


def test_every_title_line_fits_a_phone() -> None:
    for name, fig in all_figures().items():
        lines = plain_lines(fig.layout.title.text)
        assert len(lines[0]) <= plots.style.TITLE_CHARS, (name, lines)
        assert all(len(line) <= plots.style.NOTE_CHARS for line in lines[1:]), (name, lines)


def test_legends_are_horizontal_and_under_the_plot() -> None:
    for name, fig in all_figures().items():
        legend = fig.layout.legend
        assert legend.orientation == "h", name
        assert legend.yref == "container" and legend.y == 0 and legend.yanchor == "bottom", name


def test_strategy_charts_have_one_horizontal_row_per_strategy() -> None:
    figs = all_figures()
    for name in ("latency", "costs", "fidelity"):
        fig = figs[name]
        assert fig.layout.yaxis.type == "category", name
        assert list(fig.layout.yaxis.categoryarray) == EIGHT, name
        assert fig.layout.xaxis.tickangle is None, name  # nothing rotated
        # one column: every x axis spans the full width
        for axis in (a for a in fig.layout if a.startswith("xaxis")):
            assert tuple(fig.layout[axis].domain or (0.0, 1.0)) == (0.0, 1.0), (name, axis)


def test_padding_waste_is_one_column_and_explains_padding_rows() -> None:
    buckets = Plan("buckets", (3, 30), (single_row_call(4, 16, [(0, 3)]), single_row_call(4, 32, [(1, 30)])),
                   params={"seq_buckets": [16, 32], "batch_size": 4})
    fig = plots.padding_waste_figure([padding_plan(), buckets])
    assert tuple(fig.layout.xaxis.domain) == tuple(fig.layout.xaxis2.domain) == (0.0, 1.0)
    assert "buckets — padding 83%" in annotation_texts(fig)  # 33 real of 192
    note = next(a for a in fig.layout.annotations if a.text == "6 padding rows: every call has 4 rows")
    assert note.xref == "x2 domain" and note.yanchor == "bottom"
    assert "padding — padding 50%" in annotation_texts(fig)  # no padding rows: no note


def test_chunk_figure_explains_packed_counts_without_a_cryptic_legend_item() -> None:
    fig = plots.chunk_decomposition_figure([padding_plan(), packing_plan()])
    counts = next(t for t in fig.data if t.name == "sequences per packed row")
    assert counts.showlegend is False
    assert "(2+3): one call whose rows hold 2 and 3 sequences" in fig.layout.title.text
    # the decomposition sits above its line, from its start, not off to the right
    note = next(a for a in fig.layout.annotations if a.text == "4 = (2+2)")
    assert note.x == 0 and note.xanchor == "left" and note.yanchor == "bottom"


def test_length_histogram_count_axis_has_whole_ticks_and_labels_do_not_collide() -> None:
    fig = plots.length_histogram_figure([5, 9, 9, 17], [16, 32])
    assert fig.layout.yaxis.dtick == 1 and fig.layout.yaxis.tickformat == "d"
    fig = plots.length_histogram_figure([5, 9, 17, 30, 31], [16, 32, 64, 128])
    labels = {a.text: a for a in fig.layout.annotations if a.text.startswith("≤")}
    # 16 and 32 are 40 px apart on a phone: their labels sit at two heights
    assert labels["≤16: 2"].yshift != labels["≤32: 3"].yshift
    many = plots.length_histogram_figure(list(range(1, 200)) * 3, [256])
    assert many.layout.yaxis.dtick is None  # large counts: plotly's own whole steps


def test_similarity_colour_bar_is_symmetric_only_when_values_go_negative() -> None:
    positive = plots.similarity_figure(["a", "b"], np.array([[1.0, 0.2], [0.8, 1.0]])).data[0]
    assert (positive.zmin, positive.zmax) == (0.0, 1.0)
    negative = plots.similarity_figure(["a", "b"], np.array([[1.0, 0.0], [-1.0, 0.1]])).data[0]
    assert (negative.zmin, negative.zmax, negative.zmid) == (-1.0, 1.0, 0.0)


def test_similarity_numbers_the_axes_and_lists_the_texts_under_the_matrix() -> None:
    texts = ["the cat sat on the mat", "a dog barked", "stocks fell"]
    fig = plots.similarity_figure(texts, np.eye(3))
    assert list(fig.layout.xaxis.ticktext) == list(fig.layout.yaxis.ticktext) == ["1", "2", "3"]
    assert fig.layout.xaxis.tickangle == 0
    listing = next(a for a in fig.layout.annotations if a.text.startswith("1. "))
    assert listing.text.split("<br>") == ["1. the cat sat on the mat", "2. a dog barked", "3. stocks fell"]


# ---------------------------------------------------------------------------------------------
# fidelity: exact 0, round-off at the precision run, labels in the clear


def test_fidelity_says_that_an_exact_zero_is_drawn_at_the_floor() -> None:
    fig = plots.fidelity_figure(fidelity_results())
    assert "exactly 0 is drawn at 1e-09: a log axis has no 0" in fig.layout.title.text
    assert "reference: 0" in diff_labels(fig)
    fig = plots.fidelity_figure([result("padding", median=1.0, fidelity={"max_abs_diff": 0.0, "min_cosine": 1.0})])
    assert diff_labels(fig) == ["exactly 0"]
    fig = plots.fidelity_figure([result("padding", median=1.0)])
    assert "exactly 0" not in fig.layout.title.text


def test_fidelity_roundoff_line_at_the_precision_run_labelled_above_the_bars() -> None:
    fig = plots.fidelity_figure(fidelity_results(), precision="bf16")
    line = next(s for s in fig.layout.shapes if s.line.dash == "dash")
    assert line.x0 == line.x1 == plots.ROUNDOFF_BY_PRECISION["bf16"]
    assert 1e-2 < plots.ROUNDOFF_BY_PRECISION["bf16"] < 1e-1  # MiniLM bf16 masked strategies: 1.3e-2
    label = next(a for a in fig.layout.annotations if a.text == "bf16 round-off")
    assert label.yref == "y domain" and label.y == 1 and label.yanchor == "bottom"  # over the panel, not under a bar
    assert plots.fidelity_figure(fidelity_results()).layout.shapes[0].x0 == plots.ROUNDOFF  # default f32
    unknown = plots.fidelity_figure(fidelity_results(), precision="f16")
    assert not [s for s in unknown.layout.shapes if s.line.dash == "dash"]
    assert "no round-off line: not measured for f16" in unknown.layout.title.text


def diff_labels(fig) -> list[str]:
    """The diff panel's labels after the bars (annotations on white, so the round-off line
    passes behind them)."""
    return [a.text for a in fig.layout.annotations if a.xref == "x" and a.yref == "y" and a.bgcolor == "rgba(255,255,255,1)"]


def test_fidelity_labels_are_horizontal_and_readable() -> None:
    fig = plots.fidelity_figure(fidelity_results())
    _, cosines = fig.data
    labels = [a for a in fig.layout.annotations if a.xref == "x" and a.yref == "y" and a.bgcolor == "rgba(255,255,255,1)"]
    assert labels and all(a.font.size >= 12 and not a.textangle for a in labels)
    assert cosines.textfont.size >= 12 and cosines.textangle == 0


# ---------------------------------------------------------------------------------------------
# new result fields: supported false, host/device, compiled models, baseline


def test_a_strategy_that_did_not_run_is_a_labelled_gap_in_every_results_figure() -> None:
    results = [not_run("dynamic"), result("padding", median=20.0), not_run("dynamic-bounded")]
    for make in (plots.latency_figure, plots.costs_figure, plots.fidelity_figure):
        fig = make(results)
        notes = [a for a in fig.layout.annotations if a.text.startswith("not run: ")]
        assert notes, make.__name__
        assert {a.y for a in notes} == {"dynamic", "dynamic-bounded"}, make.__name__
        assert notes[0].text == "not run: get_shape was called on a dynamic …"  # source location dropped
        assert "plugin.cpp" in notes[0].hovertext  # the device's whole error in the hover
        assert list(fig.layout.yaxis.categoryarray) == ["dynamic", "padding", "dynamic-bounded"]
    latency = plots.latency_figure(results)
    assert [t.y[0] for t in latency.data if t.type == "box"] == ["padding"]
    # no dynamic ran: ratios to the fastest that did
    assert "vs padding" in latency.layout.title.text


def test_none_values_are_treated_like_absent_ones() -> None:
    r = {"strategy": "buckets", "latency_ms": None, "host_ms": None, "device_ms": None, "fidelity": None,
         "compile_s": None, "memory_mb": None, "compiled_models": None}
    for make in (plots.latency_figure, plots.costs_figure, plots.fidelity_figure):
        make([r, result("padding", median=2.0)]).to_json()


def test_latency_marks_host_and_device_parts() -> None:
    results = [split_result("dynamic", median=10.0, host=1.0), split_result("packing", median=8.0, host=2.0)]
    fig = plots.latency_figure(results)
    bars = [t for t in fig.data if t.type == "bar" and t.x[0] is not None]
    assert [(t.y[0], t.x[0]) for t in bars] == [("dynamic", 9.0), ("dynamic", 1.0), ("packing", 6.0), ("packing", 2.0)]
    assert fig.layout.barmode == "stack"
    assert {t.name for t in fig.data if t.showlegend} == {"device: the calls", "host: tokenize, plan, scatter, gather"}
    assert any("0.80x = 1.25x faster" in t for t in annotation_texts(fig))
    # without the split: boxes only, no legend
    plain = plots.latency_figure([result("dynamic", median=10.0)])
    assert [t.type for t in plain.data] == ["box"] and plain.layout.showlegend is False


def test_latency_baseline_on_another_device_is_the_reference_line() -> None:
    baseline = {"device": "CPU", "latency_ms": {"median": 5.0, "samples": [5.0]}}
    fig = plots.latency_figure([not_run("dynamic"), result("padding", median=20.0)], baseline=baseline)
    assert "vs native dynamic on CPU" in fig.layout.title.text
    assert "native dynamic on CPU" in annotation_texts(fig)
    line = next(s for s in fig.layout.shapes if s.line.dash == "dot")
    assert line.x0 == line.x1 == 5.0
    assert any(t.startswith("<b>4.00x slower</b>") for t in annotation_texts(fig))


def test_costs_mark_compile_time_imported_from_the_cache_and_say_what_memory_is() -> None:
    r = result("buckets", median=1.0, compiled_shapes=[[8, 16], [8, 32], [8, 64]], compile_s=1.5, memory_mb=90.0, compiled_models=[
        {"shape": [8, 16], "packed": False, "compile_s": 0.8, "from_cache": False, "memory_mb": 30.0},
        {"shape": [8, 32], "packed": False, "compile_s": 0.3, "from_cache": True, "memory_mb": 30.0},
        {"shape": [8, 64], "packed": False, "compile_s": 0.4, "from_cache": True, "memory_mb": None},
    ])
    fig = plots.costs_figure([r, result("dynamic", median=1.0, compiled_shapes=[])])
    cold, cached = fig.data[0], fig.data[1]
    assert cold.x[0] == pytest.approx(0.8) and cached.x[0] == pytest.approx(0.7) and cached.base[0] == pytest.approx(0.8)
    assert cached.name == "imported from the blob cache" and cached.marker.pattern.shape == "/"
    assert cached.x[1] == 0.0 and cold.x[1] == 1.0  # no compiled_models: all of compile_s is cold
    assert "2 of them imported from the blob cache" in cached.hovertext[0]
    assert "not device memory" in fig.layout.xaxis2.title.text
    assert {t.name for t in fig.data if t.showlegend} == {"cold compile", "imported from the blob cache"}


def test_existing_positional_calls_still_work_and_new_parameters_are_keyword_only() -> None:
    import inspect

    for make, param in ((plots.latency_figure, "baseline"), (plots.fidelity_figure, "precision")):
        assert inspect.signature(make).parameters[param].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(TypeError):
        plots.fidelity_figure([], "bf16")  # type: ignore[misc]


# ---------------------------------------------------------------------------------------------
# how many shapes should I compile? (issue 11)


def budget_rows() -> list[dict[str, Any]]:
    pads = [0.9, 0.57, 0.36, 0.26, 0.2, 0.16, 0.13, 0.1]
    return [
        {"k": k, "padding_fraction": pads[k - 1], "predicted_ms": 10 + 60 * pads[k - 1], "compile_s": 0.3 * k if k <= 6 else None,
         "memory_mb": 30.0 * k if k <= 6 else None, "shapes": [[8, 16 * j] for j in range(1, k + 1)], "knee": k == 3}
        for k in range(1, 9)
    ]


def test_shape_budget_figure_panels_knee_and_gaps() -> None:
    fig = plots.shape_budget_figure(budget_rows())
    assert_common(fig)
    assert fig.layout.title.text.startswith("How many shapes should I compile?")
    padding, latency, compile_s, memory = fig.data
    assert list(padding.x) == list(range(1, 9))
    assert padding.y[0] == pytest.approx(90.0)  # percent
    assert latency.y[2] == pytest.approx(10 + 60 * 0.36)
    assert compile_s.y[6] is None and memory.y[7] is None  # not measured: a gap, never a zero
    assert "not measured at K=7, 8" in annotation_texts(fig)
    knee = next(s for s in fig.layout.shapes if s.line.dash == "dot")
    assert knee.x0 == knee.x1 == 3
    assert "<b>knee: K=3</b>" in annotation_texts(fig)
    assert "knee at K=3, padding 36%" in fig.layout.title.text and "shapes 8x16, 8x32, 8x48" in fig.layout.title.text
    assert list(padding.marker.size).index(max(padding.marker.size)) == 2
    # one column: every panel spans the full width
    assert all(tuple(fig.layout[a].domain) == (0.0, 1.0) for a in fig.layout if a.startswith("xaxis"))


def test_shape_budget_figure_without_knee_or_measurements() -> None:
    rows = [{"k": k, "padding_fraction": 0.5 / k, "predicted_ms": 10.0 / k, "compile_s": None, "memory_mb": None, "shapes": [], "knee": False}
            for k in (2, 1)]
    fig = plots.shape_budget_figure(rows)
    assert list(fig.data[0].x) == [1, 2]
    assert annotation_texts(fig).count("not measured") == 2
    assert not [s for s in fig.layout.shapes if s.line.dash == "dot"]
    assert "nothing to show yet" in annotation_texts(plots.shape_budget_figure([]))
