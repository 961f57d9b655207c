"""Bounded memory and disk (issue 12): compiled models beyond the budget are released least
recently used first, never one a running plan holds; a released model's requests are never handed
out again; the blob budget holds after every compile; a recompiled shape reports its new compile."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from shapedemo.measure.compare import compare, encode_inputs
from shapedemo.runtime.budget import compiled_budget_mb
from shapedemo.runtime.engine import Engine
from shapedemo.runtime.errors import EngineError
from shapedemo.planning.strategies import make_plan

pytestmark = pytest.mark.model
OPTIONS = dict(seq_buckets=[8, 16, 32, 64], batch_sizes=[1, 2, 4], max_seq=64)


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setenv("SHAPEDEMO_COMPILED_MB", "300")
    assert compiled_budget_mb() == 300
    monkeypatch.setenv("SHAPEDEMO_COMPILED_MB", "lots")
    assert compiled_budget_mb() == 4096
    monkeypatch.delenv("SHAPEDEMO_COMPILED_MB")
    assert (compiled_budget_mb(), compiled_budget_mb(1024)) == (4096, 1024)


def test_eviction_under_a_tiny_budget_keeps_results_correct(tiny, tiny_engine):
    engine = Engine(tiny, precision="f32", cache_dir=None, compiled_budget=0.001)
    encoded = encode_inputs(tiny, lengths=[9, 40, 3, 17, 60, 2, 33])
    for name in ("buckets-partition", "partition", "buckets-partition"):
        plan = make_plan(name, encoded.lengths, **OPTIONS)
        want = tiny_engine.run(plan, encoded, warmup=0).embeddings
        got = engine.run(plan, encoded, warmup=1, repeats=2, concurrent=(name == "partition"))
        assert np.abs(got.embeddings - want).max() <= 1e-6
        assert engine.compiled_entries() == []  # released once the run let go of them


def test_a_pinned_model_is_not_evicted(tiny):
    engine = Engine(tiny, precision="f32", cache_dir=None, compiled_budget=0.001)
    encoded = encode_inputs(tiny, lengths=[9, 40, 3])
    plan = make_plan("buckets", encoded.lengths, **OPTIONS)
    with engine.runner(plan, encoded) as runner:
        held = list(runner.models)
        engine.compile((1, 8))  # another shape, over budget
        engine.measure_shape((2, 8), repeats=1)
        assert all(e in engine.compiled_entries() and not e.evicted for e in held)
        assert (1, 8) not in {e.shape for e in engine.compiled_entries()}
        runner.run_once(record=True)
    assert all(e.evicted for e in held) and engine.compiled_entries() == []


def test_no_request_of_an_evicted_model_is_reused(tiny):
    engine = Engine(tiny, precision="f32", cache_dir=None, compiled_budget=10_000)
    old = engine.compile((1, 16))
    taken: list = []

    def hold():  # another thread holds a request of the old model across the eviction
        taken.append(old.pool.acquire())

    t = threading.Thread(target=hold)
    t.start()
    t.join()
    engine.release_all()
    assert old.evicted and old.compiled is None and old.pool.closed
    old.pool.release(taken[0])  # given back after the eviction: dropped, not kept
    with pytest.raises(EngineError, match="released"):
        old.pool.acquire()
    new = engine.compile((1, 16))
    assert new is not old and new.pool is not old.pool and new.pool.created == 1
    request = new.pool.acquire()
    assert request is not taken[0]


def test_blob_budget_holds_after_every_compile(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("SHAPEDEMO_BLOB_CACHE_MB", "100")
    engine = Engine(tiny, precision="f32", cache_dir=tmp_path)
    engine.compile((1, 16))
    blob = max(p.stat().st_size for p in (tmp_path / "blobs").rglob("*.blob")) / 2**20
    engine.blob_budget_mb = int(1.5 * blob)  # room for one blob (the environment is read once, at start)
    for shape in [(1, 8), (2, 8), (4, 8)]:
        engine.compile(shape)
        total = sum(p.stat().st_size for p in (tmp_path / "blobs").rglob("*.blob")) / 2**20
        assert total <= 1.5 * blob


def test_a_recompiled_shape_reports_its_new_compile(tiny, tmp_path):
    engine = Engine(tiny, precision="f32", cache_dir=tmp_path, compiled_budget=0.001)
    encoded = encode_inputs(tiny, lengths=[5, 30])
    first = compare(engine, encoded, ["padding"], repeats=1, warmup=0, **OPTIONS).result("padding")["compiled_models"][0]
    second = compare(engine, encoded, ["padding"], repeats=1, warmup=0, **OPTIONS).result("padding")["compiled_models"][0]
    assert first["from_cache"] is False and second["from_cache"] is True  # evicted, then imported again
    assert first["reused"] is False and second["reused"] is False



def _budget_in_a_new_process(code: str, **env: str) -> int:
    """The session budget a new Python process reports after ``code`` (run from the repository
    root, as a Space or `python app.py` starts), with no SHAPEDEMO_COMPILED_MB unless given."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    child = {k: v for k, v in os.environ.items() if k != "SHAPEDEMO_COMPILED_MB"} | env
    out = subprocess.run(
        [sys.executable, "-c", code + "\nfrom shapedemo import session; print(session.current().budget.mb)"],
        cwd=Path(__file__).resolve().parents[1], env=child, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return int(float(out.stdout.strip().splitlines()[-1]))


def test_the_page_runs_on_its_own_default_budget_the_command_line_on_its_own():
    """Issue 18: the page (app.py, the Space) holds PAGE_COMPILED_MB of compiled models where
    nothing is set, SHAPEDEMO_COMPILED_MB still overrides it, and the command line, `serve` and the
    library keep DEFAULT_COMPILED_MB (serve's default set would not fit the page's)."""
    from shapedemo.runtime.budget import DEFAULT_COMPILED_MB
    from shapedemo.settings import PAGE_COMPILED_MB

    assert PAGE_COMPILED_MB < DEFAULT_COMPILED_MB
    assert _budget_in_a_new_process("import app") == PAGE_COMPILED_MB
    assert _budget_in_a_new_process("import app", SHAPEDEMO_COMPILED_MB="777") == 777
    assert _budget_in_a_new_process("import shapedemo.cli") == DEFAULT_COMPILED_MB
