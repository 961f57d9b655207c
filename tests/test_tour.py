"""The guided tour: its steps in the guide's order, and every lesson's numbers checked against the
core (``make_plan`` on the same lengths, the comparison's medians), on a real model.

The model tests run every step once on ``synthetic:tiny`` (the packaged tokenizer, so the same
lengths as MiniLM) with the fewest rounds that give an interval (``stats.FLOOR_ROUNDS``): the
lessons are worded from whatever was measured, and the test re-derives each number from the core
and looks for it in the sentence.
"""

from __future__ import annotations

import pytest

from shapedemo.measure import report, stats

from shapedemo.measure import lessons as tour
from shapedemo.planning.plan import PlanError
from shapedemo.settings import RunSettings
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan

GUIDE_ORDER = ["padding", "mask", "buckets", "partition", "combined", "packing"]


# ------------------------------------------------------------------------------ pure
def test_steps_follow_the_guide_then_go_beyond_it():
    keys = [s.key for s in tour.STEPS]
    assert keys[:6] == GUIDE_ORDER
    assert ("auto" in keys) == ("auto" in STRATEGY_NAMES)
    assert [tour.heading(s) for s in tour.STEPS][:2] == ["1. Padding", "2. Padding without the mask"]
    for s in tour.STEPS:
        assert s.runs[0] == "dynamic" and s.focus in s.runs
        assert set(s.drawn) <= set(STRATEGY_NAMES) and s.key in tour.LESSONS
        assert s.plot in ("waste", "chunks", "fidelity", "latency")
        assert s.plot not in ("waste", "chunks") or s.drawn


def test_step_settings_are_validated_page_settings():
    s = tour.step_settings("buckets", texts=["a b c", "  ", "d"], batch_sizes="4, 2")
    assert isinstance(s, RunSettings)
    assert s.texts == ("a b c", "d") and s.shapes.batch_sizes == (2, 4) and s.strategies == ("dynamic", "buckets")
    assert (s.precision, s.repeats, s.shapes.seq_buckets) == (tour.PRECISION, tour.REPEATS, "pow2")
    with pytest.raises(PlanError, match="no text given"):
        tour.step_settings("padding", texts=["", " "])
    with pytest.raises(PlanError, match="batch sizes"):
        tour.step_settings("partition", texts=["a"], batch_sizes="0,x")
    with pytest.raises(PlanError, match="unknown tour step 'nope'; known: padding, mask"):
        tour.step("nope")


@pytest.mark.model
def test_tour_texts_make_the_examples_the_steps_promise(minilm):
    lengths = minilm.tokenizer.encode(list(tour.TOUR_TEXTS)).lengths
    assert len(lengths) == 5 and max(lengths) <= 64
    assert make_plan("partition", lengths, max_seq=128).params["chunks"] == [4, 1]
    used = {c.seq for c in make_plan("buckets", lengths, max_seq=128).calls}
    assert used == {16, 32, 64}


# ------------------------------------------------------------------------------ on a model
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")
MODEL = "synthetic:tiny"


@pytest.fixture(scope="module")
def tour_env(cache_dir):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SHAPEDEMO_CACHE", str(cache_dir))
        yield


@pytest.fixture(scope="module")
def ran(tour_env):
    """Every step, once, on the tour's texts (the fewest rounds with an interval: the numbers
    only need to agree)."""
    out = {}
    for s in tour.STEPS:
        settings = tour.step_settings(s, texts=tour.TOUR_TEXTS, model=MODEL, repeats=stats.FLOOR_ROUNDS)
        out[s.key] = tour.run_step(s, settings)
    return out


def core_plans(result: tour.StepResult, *names: str, **changes):
    """The plans ``make_plan`` gives for the step's lengths at the tour's options."""
    lengths = result.data["lengths"]
    settings = tour.step_settings(result.step, texts=tour.TOUR_TEXTS, model=MODEL)
    options = {**settings.plan_options(lengths, limit=512), **changes}
    return [make_plan(n, lengths, **options) for n in names]


def medians_ratio(result: tour.StepResult, strategy: str) -> tuple[str, float, float]:
    mine = result.result(strategy)["latency_ms"]["median"]
    base = result.result("dynamic")["latency_ms"]["median"]
    return report.speed_words(mine / base, result.result(strategy)["ratio_interval"]), mine, base


def check_vs_dynamic(result: tour.StepResult, strategy: str) -> None:
    words, mine, base = medians_ratio(result, strategy)
    lo, hi = result.result(strategy)["ratio_interval"]
    ratio = mine / base
    assert lo <= ratio <= hi  # the interval printed is the ratio's own, so it holds it
    assert f"**{words}** native dynamic ({mine:.1f} vs {base:.1f} ms, ratio {ratio:.2f}, interval [{lo:.2f}-{hi:.2f}])" in result.lesson


@pytest.mark.model
def test_every_step_gives_a_figure_the_code_and_one_sentence(ran):
    for key, r in ran.items():
        assert "\n" not in r.lesson and r.lesson.endswith("."), (key, r.lesson)
        assert r.figure.data, key
        assert "import openvino as ov" in r.code
        compile(r.code, f"{key}.py", "exec")
        assert r.data["model"] == MODEL and r.data["precision"] == "f32"
        # a step over several weights modes: the first mode's rows, then each other mode's named "strategy · mode"
        modes = r.step.weights or (None,)
        assert [x["strategy"] for x in r.data["results"]] == list(r.step.runs) + [
            f"{name} · {mode}" for mode in modes[1:] for name in r.step.runs
        ], key
        assert list(r.data.get("by_weights", {None: None})) == list(modes), key


@pytest.mark.model
def test_padding_lesson(ran):
    r = ran["padding"]
    pad, dyn = core_plans(r, "padding", "dynamic")
    assert pad.compiled_shapes == [(8, 128)]
    assert f"Padding to 8 x 128 computed **{pad.computed_tokens / pad.real_tokens:.1f}x the real tokens**" in r.lesson
    assert f"({pad.computed_tokens} slots for {pad.real_tokens};" in r.lesson
    assert f"{dyn.computed_tokens / dyn.real_tokens:.1f}x)" in r.lesson
    check_vs_dynamic(r, "padding")


@pytest.mark.model
def test_mask_lesson_says_what_the_mask_is_for(ran):
    r = ran["mask"]
    bad, good = r.result("padding-nomask")["fidelity"], r.result("padding")["fidelity"]
    assert bad["max_abs_diff"] > 0.1 > 1e-3 > good["max_abs_diff"]  # the leak, and f32 round-off
    assert f"up to **{bad['max_abs_diff']:.2f}** (min cosine {bad['min_cosine']:.3f})" in r.lesson
    assert f"within **{good['max_abs_diff']:.1e}** (f32 round-off)" in r.lesson
    assert "attention_mask\": mask" in r.code and "np.ones_like(ids)  # no mask" in r.code


@pytest.mark.model
def test_buckets_lesson(ran):
    r = ran["buckets"]
    b, pad = core_plans(r, "buckets", "padding")
    assert r.plans["buckets"] == b
    rows = sum(c.padding_rows for c in b.calls)
    assert f"Buckets 16, 32, 64 ({len(b.compiled_shapes)} compiled models, " in r.lesson
    assert f"**{b.computed_tokens / b.real_tokens:.1f}x the real tokens** against padding's " \
        f"{pad.computed_tokens / pad.real_tokens:.1f}x" in r.lesson
    assert f"{r.result('buckets')['compile_s']:.1f} s to compile" in r.lesson
    assert f"{rows} padding rows remain, as each bucket's group is padded to 8 rows" in r.lesson
    check_vs_dynamic(r, "buckets")


@pytest.mark.model
def test_partition_lesson(ran):
    r = ran["partition"]
    part, pad = core_plans(r, "partition", "padding")
    assert part.params["chunks"] == [4, 1]
    assert "With batch sizes 1, 2, 4, 8 the 5 texts ran as **4 + 1**: 2 calls, no padding row" in r.lesson
    assert f"(padding: 1 call of 8 rows, {sum(c.padding_rows for c in pad.calls)} of them pad)" in r.lesson
    check_vs_dynamic(r, "partition")


@pytest.mark.model
def test_partition_lesson_follows_the_batch_sizes(tour_env):
    settings = tour.step_settings("partition", texts=tour.TOUR_TEXTS, model=MODEL, batch_sizes="2,4", repeats=1)
    r = tour.run_step("partition", settings)
    (part,) = core_plans(r, "partition", batch_sizes=(2, 4))
    assert part.params["chunks"] == [4, 2]
    assert "With batch sizes 2, 4 the 5 texts ran as **4 + 2**: 2 calls, 1 padding row" in r.lesson
    assert "(padding: 2 calls of 4 rows, 3 of them pad)" in r.lesson


@pytest.mark.model
def test_combined_and_packing_lessons(ran):
    r = ran["combined"]
    both, b, part = core_plans(r, "buckets-partition", "buckets", "partition")
    x = lambda p: f"{p.computed_tokens / p.real_tokens:.1f}x"  # noqa: E731
    assert f"computed **{x(both)} the real tokens** (buckets alone {x(b)}, partitioning alone {x(part)})" in r.lesson
    assert report.calls_and_shapes(both) in r.lesson
    check_vs_dynamic(r, "buckets-partition")
    r = ran["packing"]
    pack, both = core_plans(r, "packing", "buckets-partition")
    rows = sum(c.batch - c.padding_rows for c in pack.calls)
    assert f"Packing put 5 texts into {report.count(rows, 'row')} of 128 tokens" in r.lesson
    assert f"**{x(pack)} the real tokens** against {x(both)} for buckets and partitioning" in r.lesson
    check_vs_dynamic(r, "packing")


@pytest.mark.model
def test_auto_lesson(ran):
    if "auto" not in ran:
        pytest.skip("no strategy named auto in shapedemo.planning.strategies yet")
    from shapedemo import runner
    from shapedemo.runtime.costs import kept_cost_model

    r = ran["auto"]
    # auto is priced by this device's measured cost table of its declared set (timed by the run,
    # kept beside the blob cache): the core, given that table, plans what the lesson describes
    settings = tour.step_settings(r.step, texts=tour.TOUR_TEXTS, model=MODEL)
    lengths = r.data["lengths"]
    model = kept_cost_model(runner.engine_for(settings), *runner.declared_set(lengths, settings.plan_options(lengths, limit=512)))
    assert model is not None and model.unit == "ms"
    (plan,) = core_plans(r, "auto", cost_model=model)
    assert plan == r.plans["auto"] and plan.params["pricing"] == model.pricing
    assert f"`auto` chose {report.calls_and_shapes(plan)}:" in r.lesson
    check_vs_dynamic(r, "auto")
    # against the faster fixed static plan: the paired interval of the same rounds decides the words
    from shapedemo.measure import stats
    from shapedemo.measure.wording import speed_words

    rival = min(("buckets-partition", "packing"), key=lambda n: r.result(n)["latency_ms"]["median"])
    mine, theirs = (r.result(n)["latency_ms"] for n in ("auto", rival))
    interval = stats.ratio_interval(mine["samples"], theirs["samples"])
    words = speed_words(mine["median"] / theirs["median"], interval)
    assert f"**{words}** `{rival}` (the faster of the two fixed static plans timed here: {mine['median']:.1f} vs" in r.lesson


# ------------------------------------------------------------------------------ the tab's handler
@pytest.mark.app
def test_tab_handler_words_the_lesson_and_refuses_bad_input_in_one_line(tour_env):
    gr = pytest.importorskip("gradio")
    from shapedemo.app import tour_tab as ui_tour

    text = "\n".join(tour.TOUR_TEXTS)
    lesson, figure, code = ui_tour.tour_step("partition", text, "1,2,4,8", MODEL)
    assert lesson.startswith("**Lesson.** With batch sizes 1, 2, 4, 8 the 5 texts ran as **4 + 1**")
    assert f"`{MODEL}` on CPU (f32), 5 texts" in lesson
    assert figure.data and "(4, 128)" in code and "(1, 128)" in code
    for bad, message in (("", "no text given"), ("word " * 600, "the model takes at most 512")):
        with pytest.raises(gr.Error) as caught:
            ui_tour.tour_step("padding", bad, "1,2,4,8", MODEL)
        assert message in caught.value.message and "\n" not in caught.value.message
    with pytest.raises(gr.Error, match="batch sizes"):
        ui_tour.tour_step("partition", text, "4,,x", MODEL)


@pytest.mark.model
def test_dynamic_step_takes_native_dynamic_apart(ran):
    r = ran["dynamic"]
    d = r.data["decomposition"]
    # measured in the step's own rounds: dynamic at buckets-partition's call shapes, static at dynamic's shape
    assert d["static_plan"] == "buckets-partition" and d["padding_share"] is not None
    assert f"it pads **{d['dynamic_padding_fraction']:.0%}** of its slots" in r.lesson
    assert "being dynamic" in r.lesson and f"{d['dynamic_device_ms']['median']:.1f} ms" in r.lesson
    first = ran["padding"]
    assert "a static model compiled at its own" in first.lesson  # the first lesson says what being dynamic cost
