"""The in-process traffic stream (the app's Live traffic tab) through the server's batcher."""

from __future__ import annotations

import pytest

from shapedemo.planning.plan import PlanError
from shapedemo.serving.stream import TrafficSettings, run_traffic
from shapedemo.plots.live import traffic_figures

pytestmark = pytest.mark.model


def test_a_stream_is_answered_and_recorded(tiny_engine):
    settings = TrafficSettings(strategy="buckets-partition", rate=40, duration_s=1.0, seq_buckets="16,64", batch_sizes=(1, 4), texts_per_request=2)
    run = run_traffic(tiny_engine, settings)
    summary = run.summary()
    assert summary["answered"] == summary["requests"] > 0 and summary["refused"] == 0
    for r in run.requests:
        assert r["arrival"] <= r["start"] <= r["end"]
        assert r["latency_ms"] == pytest.approx(r["queue_ms"] + r["compute_ms"])
        assert r["texts"] == 2
    placed = sorted(i for b in run.batches for i in b["requests"])
    assert placed == sorted(r["id"] for r in run.requests)  # every request in exactly one batch
    assert all(b["texts"] <= 4 for b in run.batches)  # no batch beyond the largest batch size
    shapes = {(c["batch"], c["seq"]) for b in run.batches for c in b["calls"]}
    assert shapes <= {(1, 16), (1, 64), (4, 16), (4, 64)}
    assert sum(summary["calls_per_shape"].values()) == sum(len(b["calls"]) for b in run.batches)
    assert all(len(f.data) for f in traffic_figures(run.to_dict()))


def test_texts_are_drawn_from_the_given_list(tiny_engine):
    texts = ["a short one", "another text that is a little longer than the first"]
    run = run_traffic(tiny_engine, TrafficSettings(strategy="dynamic", rate=20, duration_s=0.5), texts=texts)
    lengths = set(tiny_engine.loaded.tokenizer.encode(texts).lengths)
    assert {r["tokens"] for r in run.requests} <= lengths
    assert run.to_dict()["texts"] == "2 texts"


def test_a_stream_too_large_is_refused(tiny_engine):
    with pytest.raises(PlanError, match="cap"):
        run_traffic(tiny_engine, TrafficSettings(rate=1000, duration_s=10))
    with pytest.raises(PlanError, match="unknown strategy"):
        run_traffic(tiny_engine, TrafficSettings(strategy="bucket", rate=1, duration_s=1))
