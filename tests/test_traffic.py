"""The in-process traffic stream (the app's Live traffic tab) through the server's batcher."""

from __future__ import annotations

import pytest

from shapedemo.planning.plan import PlanError
from shapedemo.serving.stream import TrafficSettings, run_traffic
from shapedemo.shapes import ShapeSet
from shapedemo.plots.live import traffic_figures

pytestmark = pytest.mark.model


def test_a_stream_is_answered_and_recorded(tiny_engine):
    settings = TrafficSettings(strategy="buckets-partition", rate=40, duration_s=1.0, shapes=ShapeSet.parse(seq_buckets="16,64", batch_sizes=(1, 4)), texts_per_request=2)
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


def test_each_call_of_a_batch_carries_its_own_start(tiny_engine):
    """Five one-row calls with two requests in flight: the third call cannot start before one
    of the first two has ended, so calls stamped with the batch's start would be wrong."""
    import threading

    from shapedemo.serving.batcher import Batcher

    batches, done = [], threading.Event()
    batcher = Batcher(tiny_engine, "partition", ShapeSet((16,), (1,), 16),
                      log=lambda line: None, on_batch=[batches.append]).start()
    try:
        assert batcher.wait_ready(120)
        ids = tiny_engine.loaded.tokenizer.synthetic_ids([6, 7, 8, 9, 10], seed=1)
        batcher.submit(ids.input_ids, ids.token_type_ids, lambda result: done.set())
        assert done.wait(60)
    finally:
        batcher.stop()
    (batch,) = batches
    calls = batch.calls
    assert len(calls) == 5
    assert all(batch.start <= c.start <= c.start + c.ms / 1e3 <= batch.end + 1e-3 for c in calls)
    assert [c.start for c in calls] == sorted(c.start for c in calls)
    first_end = min(c.start + c.ms / 1e3 for c in calls[:2])
    assert calls[2].start >= first_end - 1e-4  # it waited for a free request: its own start


def test_a_blob_budget_that_cannot_hold_the_set_is_said_at_start_up(tiny_engine, monkeypatch):
    """serve's declared set is pinned in memory; a blob budget too small to keep it on disk for
    the next start is one line at start-up, not a silent recompile next time."""
    from shapedemo.serving.batcher import Batcher

    monkeypatch.setattr(tiny_engine, "blob_budget_mb", 1)  # SHAPEDEMO_BLOB_CACHE_MB=1, read by the engine once
    lines: list[str] = []
    batcher = Batcher(tiny_engine, "buckets-partition", ShapeSet((16, 32, 48), (1, 2, 3), 48), log=lines.append).start()
    try:
        assert batcher.wait_ready(300)
    finally:
        batcher.stop()
    assert tiny_engine.blob_dir is not None
    assert any(line.startswith("serve: note: the blob cache (SHAPEDEMO_BLOB_CACHE_MB=1)") for line in lines), lines


def test_by_default_a_batch_is_what_queued_while_the_last_one_ran(tiny_engine, monkeypatch):
    """The default ``max_wait_ms`` is 0: a request that finds the engine free runs alone at once,
    and the requests that arrive while it runs go together into the next batch (no clock: the
    first batch is held on an event until the others are queued)."""
    import threading

    from shapedemo.serving.batcher import BatchPolicy, Batcher

    from shapedemo.serving.config import ServeSettings

    # the batcher's, serve's and the page's stream's defaults
    assert BatchPolicy().max_wait_ms == ServeSettings.build(strategy="dynamic").policy().max_wait_ms == TrafficSettings().max_wait_ms == 0
    running, release = threading.Event(), threading.Event()
    real_run, held = tiny_engine.run, []

    def run(plan, encoded, **kwargs):
        if kwargs.get("concurrent") and not held:  # the first batch after warm-up
            held.append(plan)
            running.set()
            assert release.wait(60)
        return real_run(plan, encoded, **kwargs)

    batches: list = []
    batcher = Batcher(tiny_engine, "buckets-partition", ShapeSet((16,), (1, 2, 4), 16),
                      log=lambda line: None, on_batch=[batches.append])
    batcher.start()
    try:
        assert batcher.wait_ready(300)
        monkeypatch.setattr(tiny_engine, "run", run)
        ids = tiny_engine.loaded.tokenizer.synthetic_ids([6, 7, 8], seed=1)
        answered = [threading.Event() for _ in range(3)]
        records = [batcher.submit(ids.input_ids[:1], ids.token_type_ids[:1], lambda r: answered[0].set())]
        assert running.wait(60)  # the lone request is running, not waiting for company
        for i in (1, 2):
            records.append(batcher.submit(ids.input_ids[i : i + 1], ids.token_type_ids[i : i + 1], lambda r, i=i: answered[i].set()))
        release.set()
        assert all(e.wait(60) for e in answered)
    finally:
        batcher.stop()
    assert [b.requests for b in batches] == [[records[0].id], [records[1].id, records[2].id]]
