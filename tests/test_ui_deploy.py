"""The Deploy tab's handlers: the budget curve and the live-traffic stream, called as the page
calls them, checked against the core they wire."""

from __future__ import annotations

import json

import pytest

gr = pytest.importorskip("gradio")

from shapedemo.app import deploy_tab as ui_deploy  # noqa: E402
from shapedemo.settings import RunSettings, with_config  # noqa: E402

pytestmark = [pytest.mark.app, pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")]


def no_progress(*args, **kwargs):
    return None


@pytest.fixture(autouse=True)
def _cache(cache_dir, monkeypatch):
    monkeypatch.setenv("SHAPEDEMO_CACHE", str(cache_dir))


def test_find_shapes_draws_the_curve_and_gives_the_knee_as_a_config():
    fig, text, config_json = ui_deploy.find_shapes("sst2-like", 64, "synthetic:tiny", False, progress=no_progress)
    config = json.loads(config_json)
    assert fig.data and "The knee:" in text
    knee_shapes = {(b, s) for b, s in config["shapes"]}
    assert knee_shapes == {(b, s) for s in config["seq_buckets"] for b in config["batch_sizes"]}
    assert f"{len(knee_shapes)} compiled shape" in text
    # the JSON is what compare --config takes
    settings = with_config(RunSettings(lengths=(9, 14)), config)
    assert settings.shapes.seq_buckets == tuple(config["seq_buckets"])


def test_find_shapes_refuses_a_sample_over_the_cap():
    with pytest.raises(gr.Error, match="sample 5000"):
        ui_deploy.find_shapes("sst2-like", 5000, "synthetic:tiny", False, progress=no_progress)


def test_live_traffic_answers_every_request_and_draws_three_figures():
    text, *figures = ui_deploy.live_traffic("buckets-partition", 10, 1, "sst2-like", "synthetic:tiny", progress=no_progress)
    assert len(figures) == 3 and all(f.data for f in figures)
    answered, offered = text.split("**")[1].split(" requests")[0].split(" of ")
    assert answered == offered and int(offered) > 0
    assert "0 refused" in text


def test_live_traffic_refuses_a_stream_over_the_cap():
    with pytest.raises(gr.Error, match="over the cap"):
        ui_deploy.live_traffic("auto", 1000, 20, "sst2-like", "synthetic:tiny", progress=no_progress)


def test_the_deploy_tab_runs_on_the_pages_device_and_static_only_mode(fresh_session):
    """Shape timing and live traffic take the page's device dropdown and static-only checkbox
    (they ran on a plain CPU engine whatever the page said)."""
    from shapedemo import runner

    ui_deploy.live_traffic("buckets-partition", 10, 1, "sst2-like", "synthetic:tiny", "CPU", True, progress=no_progress)
    assert [(e.device, e.static_only) for e in runner.engines()] == [("CPU", True)]
    with pytest.raises(gr.Error, match="static-only"):  # dynamic shapes refused, as an NPU would
        ui_deploy.live_traffic("dynamic", 10, 1, "sst2-like", "synthetic:tiny", "CPU", True, progress=no_progress)
    with pytest.raises(gr.Error, match="not available here"):
        ui_deploy.find_shapes("sst2-like", 64, "synthetic:tiny", True, "f32", "NO_SUCH_DEVICE", False, progress=no_progress)


def test_the_tour_runs_on_the_pages_device_and_static_only_mode(fresh_session):
    from shapedemo import runner
    from shapedemo.app.tour_tab import tour_step

    lesson, figure, code = tour_step("buckets", "a short text\nanother, somewhat longer text than that", "1,2", "synthetic:tiny", "CPU", True)
    assert lesson.startswith("**Lesson.**") and figure is not None
    assert ("CPU", True) in [(e.device, e.static_only) for e in runner.engines()]
    with pytest.raises(gr.Error, match="not available here"):
        tour_step("buckets", "a text", "1,2", "synthetic:tiny", "NO_SUCH_DEVICE", False)


def test_live_traffic_compiles_the_pages_set_and_refuses_one_over_the_budget_in_one_line(fresh_session):
    """Issue 18: the page's stream pins PAGE_TRAFFIC_SHAPES (buckets clipped to the model's
    limit), so it fits the page's budget; a set over the budget stops at the first shape past it
    with one line naming SHAPEDEMO_COMPILED_MB, and leaves nothing pinned."""
    from shapedemo import runner, session
    from shapedemo.settings import PAGE_TRAFFIC_SHAPES, page_traffic_shapes

    text, *_ = ui_deploy.live_traffic("auto", 10, 1, "sst2-like", "synthetic:tiny", progress=no_progress)
    (engine,) = runner.engines()
    shapes = page_traffic_shapes(engine.loaded.max_length)
    assert shapes.batch_sizes == PAGE_TRAFFIC_SHAPES.batch_sizes and max(shapes.seq_buckets) <= engine.loaded.max_length
    plain = len(shapes.seq_buckets) * len(shapes.batch_sizes)
    assert f"{2 * plain + 1} compiled shapes" in text  # auto: plain and packed, and the CPU's dynamic model
    session.use_budget(1)  # every compiled model counts at least 1 MiB: the second is over
    engine.release_all()
    with pytest.raises(gr.Error, match=r"do not fit the compiled-model memory budget \(\d+ MiB held after \d+ of them against 1 MiB; raise SHAPEDEMO_COMPILED_MB"):
        ui_deploy.live_traffic("auto", 10, 1, "sst2-like", "synthetic:tiny", progress=no_progress)
    assert [e for e in engine.compiled_entries() if e.pins] == []
