"""auto priced by this device's measured cost table: timed once, kept beside the blob cache,
reused by a second start; the plan says which pricing decided; packed rows chosen by cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shapedemo.planning.strategies import CostModel, fit_cost_model, make_plan


def issue_table() -> dict[tuple[int, int], float]:
    """A 2-core AMX Xeon at bf16, shaped as issue 20 measured it: a slot of a 32 x 64 call
    costs 0.6 of one in an 8 x 256 call (rates in slots/ms), 1.5 ms per call."""
    rate = {32: 30.0, 64: 35.7, 128: 26.3, 256: 19.9}
    return {
        (b, s): 1.5 + b * s / (rate[s] * (0.6 if b < 4 else 1.0))
        for s in (32, 64, 128, 256)
        for b in (1, 2, 4, 8, 16, 32)
    }


def test_measured_prices_choose_short_packed_rows_where_slots_choose_long_ones():
    lengths = [40, 30, 55, 20, 61, 35, 48, 22, 50, 33, 28, 44, 57, 19, 38, 41] * 2  # 32 texts, 1,282 tokens
    options = dict(seq_buckets=[32, 64, 128, 256], batch_sizes=[1, 2, 4, 8, 16, 32], max_seq=256)
    by_slots = make_plan("auto", lengths, **options)
    assert by_slots.params["pricing"].startswith("token slots")
    assert max(c.seq for c in by_slots.calls) == 256  # fewest slots: rows of 256
    model = fit_cost_model(issue_table(), packed_table=issue_table())
    measured = make_plan("auto", lengths, **options, cost_model=model)
    assert {c.seq for c in measured.calls} == {64} and measured.packed  # packed rows of 64
    assert sum(c.batch for c in measured.calls) <= 32
    assert "priced by a given cost table" in measured.params["why"]
    assert model.price_plan(measured) < model.price_plan(by_slots)


def test_cost_table_is_timed_once_kept_beside_the_blobs_and_reused(tiny, tmp_path):
    # a cache of its own: the session's shared one may hold a larger table for this model from
    # another test, which `latest_cost_model` would rightly prefer
    cache_dir = tmp_path
    from shapedemo.runtime.costs import latest_cost_model, measured_cost_model
    from shapedemo.runtime.engine import Engine

    engine = Engine(tiny, precision="f32", cache_dir=cache_dir)
    model, document = measured_cost_model(engine, [16, 32], [1, 2], rounds=2, repeats=1)
    assert not document["reused"]
    path = Path(document["path"])
    assert path.parent == Path(cache_dir) / "costs" and path.is_file()
    saved = json.loads(path.read_text())
    assert saved["key"]["shapes"] == [[1, 16], [1, 32], [2, 16], [2, 32]]
    assert saved["key"]["packed_shapes"] == saved["key"]["shapes"]
    assert saved["key"]["inference_precision"] == "f32" and saved["key"]["model"] == tiny.spec
    assert all(len(s["ms"]) == 2 for s in saved["samples"])  # every shape in every round
    assert model.unit == "ms" and "timed now" in model.pricing

    again, second = measured_cost_model(Engine(tiny, precision="f32", cache_dir=cache_dir), [32, 16], [2, 1])
    assert second["reused"] and again == model and "reused" in again.pricing
    # another shape set is another table; tune takes the largest one kept for the device
    _, third = measured_cost_model(engine, [16], [1], rounds=1, repeats=1)
    assert not third["reused"] and third["path"] != document["path"]
    found = latest_cost_model(engine)
    assert found is not None and found[1]["path"] == document["path"]
    # a table timed for comparison only (benchmarks/table_noise.py) leaves the kept one as it was
    kept = path.read_bytes()
    _, compared = measured_cost_model(engine, [16, 32], [1, 2], rounds=1, repeats=1, reuse=False, keep=False)
    assert compared["path"] is None and not compared["reused"] and path.read_bytes() == kept

    plan = make_plan("auto", [5, 9, 14], seq_buckets=[16, 32], batch_sizes=[1, 2], max_seq=32, cost_model=again)
    assert plan.params["pricing"].startswith("the cost table measured on CPU")
    assert plan.params["why"].endswith(f"(priced by {again.pricing})")
    assert CostModel.from_dict(json.loads(json.dumps(again.to_dict()))).pricing == again.pricing


def test_a_torn_cost_file_is_measured_again(tiny, tmp_path):
    from shapedemo.runtime.costs import measured_cost_model
    from shapedemo.runtime.engine import Engine

    engine = Engine(tiny, precision="f32", cache_dir=tmp_path)
    _, document = measured_cost_model(engine, [16], [1], rounds=1, repeats=1)
    Path(document["path"]).write_text("{not json")
    _, again = measured_cost_model(engine, [16], [1], rounds=1, repeats=1)
    assert not again["reused"] and json.loads(Path(again["path"]).read_text())["key"] == document["key"]


def test_a_run_times_the_table_and_the_next_preview_prices_by_it(tmp_path, monkeypatch, fresh_session):
    # a fresh session: an engine kept by an earlier test would read that test's cache (and its
    # cost table) instead of this test's empty one
    from shapedemo import runner
    from shapedemo.settings import RunSettings
    from shapedemo.shapes import ShapeSet

    monkeypatch.setenv("SHAPEDEMO_CACHE", str(tmp_path))
    settings = RunSettings(
        texts=("a short text", "another text, a little longer than the first one"), model="synthetic:tiny",
        precision="f32", strategies=("auto",),
        shapes=ShapeSet.parse(seq_buckets=[16, 32], batch_sizes=[1, 2]), repeats=1,
    ).validate()
    plans, _ = runner.preview(settings)
    assert plans["auto"].params["pricing"].startswith("token slots")
    comparison, _ = runner.run(settings)
    timed = next(r for r in comparison.to_dict()["results"] if r["strategy"] == "auto")["params"]["pricing"]
    assert timed.startswith("the cost table measured on CPU") and "timed now" in timed
    assert list((runner.engine_for(settings).cache_dir / "costs").glob("*.json"))
    plans, _ = runner.preview(settings)
    assert plans["auto"].params["pricing"].endswith("reused)")


def test_dynamic_calls_are_timed_where_the_device_compiles_them_and_auto_runs_them(tiny, tmp_path):
    from shapedemo.runtime.costs import dynamic_shapes, measured_cost_model
    from shapedemo.runtime.engine import Engine

    engine = Engine(tiny, precision="f32", cache_dir=tmp_path)
    model, document = measured_cost_model(engine, [16, 32], [1, 2], rounds=1, repeats=1)
    assert document["key"]["dynamic_shapes"] == [list(s) for s in dynamic_shapes([16, 32], [1, 2])]
    assert {(r["batch"], r["seq"]) for r in document["dynamic_table"]} == set(dynamic_shapes([16, 32], [1, 2]))
    assert model.dynamic and "16 shapes" in model.pricing  # 4 plain, 4 packed, 8 dynamic
    # static-only mode: the strictest device compiles no dynamic model, so none is timed or priced
    strict = Engine(tiny, precision="f32", cache_dir=tmp_path, static_only=True)
    static, other = measured_cost_model(strict, [16, 32], [1, 2], rounds=1, repeats=1)
    assert not static.dynamic and "dynamic_shapes" not in other["key"] and other["path"] != document["path"]
    assert make_plan("auto", [7], seq_buckets=[16, 32], batch_sizes=[1, 2], max_seq=32, cost_model=static).dynamic is False

    # a plan auto runs dynamic gives what the dynamic strategy gives
    texts = ["a lone text of a few words"]
    encoded = tiny.tokenizer.encode(texts)
    cheap = CostModel(model.table, model.packed_table, dynamic_table={(1, 8): 0.01, (1, 32): 0.02})
    plan = make_plan("auto", encoded.lengths, seq_buckets=[16, 32], batch_sizes=[1, 2], max_seq=32, cost_model=cheap)
    assert plan.dynamic and plan.call_shapes == [(1, encoded.lengths[0])]
    ran = engine.run(plan, encoded, warmup=0, repeats=1, hidden=False).embeddings
    reference = engine.run(make_plan("dynamic", encoded.lengths, max_seq=32), encoded, warmup=0, repeats=1, hidden=False).embeddings
    assert abs(ran - reference).max() < 1e-5


class _ModalEngine:
    """A device whose speed switches between a fast and a slow mode (x1 or x1.8) every 12 calls,
    as a quiet 2-core VM does: each call's cost is its shape's true cost times the mode."""

    def __init__(self, true_ms):
        self.true_ms = true_ms
        self.calls = 0

    def measure_shape(self, shape, *, packed=False, repeats=1, warmup=1, cpu_time=False):
        figures = []
        for _ in range(warmup + max(1, repeats)):
            slow = (self.calls // 12) % 5 in (1, 3)  # stretches of 12 calls, 2 of every 5 slow
            figures.append(self.true_ms[packed, shape] * (1.8 if slow else 1.0))
            self.calls += 1
        kept = sorted(figures[warmup:])
        return kept[len(kept) // 2]


def test_each_shape_is_timed_relative_to_a_reference_beside_it():
    import statistics

    from shapedemo.runtime.costs import reference_job, time_shapes

    jobs = [(p, (b, s)) for p in (False, True) for b in (1, 4, 16) for s in (32, 128)]
    true_ms = {(p, (b, s)): 1.0 + b * s / (40.0 if s == 32 else 25.0) for p, (b, s) in jobs}
    assert reference_job(jobs) == (False, (16, 32))  # 512 slots, an octave from the mean 256 (ties: the larger batch)
    samples = time_shapes(_ModalEngine(true_ms), jobs, rounds=3, repeats=1)
    # every figure is the shape's cost relative to the reference call beside it, times one scale
    # for all (the reference's median, fast or slow): the ratios hold whichever mode a call met
    scale = statistics.median(samples[reference_job(jobs)]) / true_ms[reference_job(jobs)]
    for job, ms in samples.items():
        assert statistics.median(ms) / scale == pytest.approx(true_ms[job], rel=0.02), job
