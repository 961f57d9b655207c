"""Tests for shapedemo.plots: the figures carry the traces, titles, annotations and heights they
promise. Plans are built by hand from shapedemo.plan classes; result dicts are test inputs written
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
from shapedemo.plan import Call, Plan, Segment, single_row_call

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
    from shapedemo.buckets import bucket_for

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
    assert list(fig.data[1].y) == results[1]["latency_ms"]["samples"]
    texts = annotation_texts(fig)
    assert any(t.startswith("<b>1.00x") for t in texts)
    assert any("2.00x slower" in t for t in texts)
    assert any("0.80x = 1.25x faster" in t for t in texts)
    assert fig.layout.yaxis.title.text == "latency per batch (ms)"
    assert fig.data[1].marker.color == plots.STRATEGY_COLORS["padding"]


def test_latency_without_dynamic_compares_to_the_fastest_and_tolerates_missing_samples() -> None:
    results = [result("padding", median=30.0, samples=[]), result("buckets", median=10.0), {"strategy": "broken"}]
    fig = plots.latency_figure(results)
    assert "vs buckets" in fig.layout.title.text and "no latency for broken" in fig.layout.title.text
    texts = annotation_texts(fig)
    assert any("3.00x slower" in t for t in texts)
    assert len(fig.data) == 2 and list(fig.data[0].y) == [30.0]


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
    assert list(compile_bar.y) == [0.5, 1.2]
    assert list(compile_bar.text) == ["1 dynamic<br>model", "2 shapes"]
    assert memory_bar.y[0] is None and memory_bar.y[1] == 90.0
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
    assert fig.layout.yaxis.type == "log"
    diffs = fig.data[0].y
    assert diffs[0] == 1e-9 and diffs[1] == 2e-6 and diffs[3] is None
    lines = [s for s in fig.layout.shapes if s.line.dash == "dash"]
    assert len(lines) == 1 and lines[0].y0 == lines[0].y1 == 1e-4
    label = next(a for a in fig.layout.annotations if a.text == "f32 round-off")
    assert label.y == pytest.approx(math.log10(1e-4))
    assert "no fidelity" in annotation_texts(fig)


def test_fidelity_nomask_stands_out_and_cosine_axis_reaches_negative() -> None:
    fig = plots.fidelity_figure(fidelity_results())
    nomask_notes = [a for a in fig.layout.annotations if "no mask: outputs scrambled" in a.text]
    assert len(nomask_notes) == 2
    assert {a.xref for a in nomask_notes} == {"x", "x2"}
    colors = list(fig.data[1].marker.color)
    assert colors[2] == plots.STRATEGY_COLORS["padding-nomask"]
    assert colors.count(colors[2]) == 1
    lo, hi = fig.layout.yaxis2.range
    assert lo <= -0.2 and hi == 1.0


def test_fidelity_cosine_axis_starts_at_zero_when_all_positive() -> None:
    fig = plots.fidelity_figure([result("padding", median=1.0)])
    assert tuple(fig.layout.yaxis2.range) == (0.0, 1.0)
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
    assert heat.zmin == 0.0 and heat.zmax == 1.0
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
