"""Numbers you can decide with (issue 9): memory that does not depend on compile order, cache state
per compiled model, interleaved timing with host and device apart, fidelity that never defaults,
and cost tables that price packed rows on the packed graph."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np
import pytest

from shapedemo.measure.compare import REFERENCE, compare, encode_inputs, fidelity, measure_cost_table, roundoff
from shapedemo.measure.rounds import DYNAMIC_AT_STATIC, STATIC_AT_DYNAMIC
from shapedemo.runtime.engine import Engine
from shapedemo.runtime.errors import EngineError
from shapedemo.runtime.harness import Outcome
from shapedemo.planning.strategies import make_plan

pytestmark = pytest.mark.model
OPTIONS = dict(seq_buckets=[8, 16, 32, 64], batch_sizes=[1, 2, 4], max_seq=64)

MEMORY_SCRIPT = """
import json, sys
from shapedemo.runtime.engine import Engine
from shapedemo.model import load_model
engine = Engine(load_model("minilm", cache_dir=sys.argv[1]), precision="f32", cache_dir=None)
out = {}
for name in sys.argv[2].split(","):
    shape = None if name == "dynamic" else tuple(int(x) for x in name.split("x"))
    out[name] = engine.compile(shape, probe=(1, 128)).memory_mb
print(json.dumps(out))
"""


def _memory(order: str, cache_dir) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, str(cache_dir), order], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_memory_per_compiled_model_does_not_depend_on_order(minilm, cache_dir):
    """Each process compiles the dynamic model and one static shape, in opposite orders."""
    first = _memory("dynamic,1x128", cache_dir)
    second = _memory("1x128,dynamic", cache_dir)
    print("memory MiB, dynamic first:", first, "static first:", second)
    for name in ("dynamic", "1x128"):
        a, b = first[name], second[name]
        assert a > 0 and b > 0
        assert max(a, b) / min(a, b) <= 1.5, (name, first, second)
    for run in (first, second):
        assert max(run.values()) / min(run.values()) <= 2.0, run


def test_second_engine_on_a_warm_cache_imports_from_it(tiny, tmp_path):
    cold = Engine(tiny, precision="f32", cache_dir=tmp_path)
    encoded = encode_inputs(tiny, lengths=[5, 30, 9])
    first = compare(cold, encoded, ["padding"], repeats=1, warmup=0, **OPTIONS).result("padding")
    warm = Engine(tiny, precision="f32", cache_dir=tmp_path)
    second = compare(warm, encoded, ["padding"], repeats=1, warmup=0, **OPTIONS).result("padding")
    (a,), (b,) = first["compiled_models"], second["compiled_models"]
    assert a["from_cache"] is False and b["from_cache"] is True
    assert a["shape"] == b["shape"] == [4, 64] and a["packed"] is False
    assert second["compile_s_from_cache"] == b["compile_s"] and second["compile_s_cold"] == 0


def test_result_contract_host_device_and_compiled_models(tiny_engine):
    texts = ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply today."]
    encoded = tiny_engine.loaded.tokenizer.encode(texts)
    c = compare(tiny_engine, encoded, ["dynamic", "buckets", "packing"], repeats=3, warmup=1, texts=texts, **OPTIONS)
    data = c.to_dict()
    assert data["reference_device"] == "CPU" and data["static_only"] is False and data["tokenize_ms"] > 0
    assert data["roundoff"] == {"precision": "f32", "max_abs_diff": 1e-4, "min_cosine": 1 - 1e-6}
    assert data["baseline"]["device"] == "CPU" and data["baseline"]["latency_ms"] == c.result("dynamic")["latency_ms"]
    assert data["batching_fidelity"]["max_abs_diff"] <= 1e-4
    assert data["device_properties"]["OPTIMAL_NUMBER_OF_INFER_REQUESTS"] >= 1
    assert "not device memory" in data["memory_measure"]
    json.dumps(data)
    for r in c.results:
        assert r["supported"] is True
        for key in ("latency_ms", "host_ms", "device_ms"):
            assert len(r[key]["samples"]) == 3
        for lat, host, dev in zip(r["latency_ms"]["samples"], r["host_ms"]["samples"], r["device_ms"]["samples"]):
            assert lat == pytest.approx(host + dev) and host >= data["tokenize_ms"]
        models = r["compiled_models"]
        assert len(models) == r["num_compiled_models"] and r["memory_mb"] == pytest.approx(sum(m["memory_mb"] for m in models))
        for m in models:
            assert set(m) >= {"shape", "packed", "compile_s", "from_cache", "memory_mb"}
            assert m["packed"] == r["packed"] and (m["shape"] is None) == r["dynamic"]
    assert c.result("buckets")["compiled_models"][0]["shape"] in c.result("buckets")["compiled_shapes"]


def test_repeats_are_interleaved_round_robin(tiny_engine, monkeypatch):
    from shapedemo.runtime import harness

    seen = []
    original = harness.PlanRunner.run_once

    def spy(self, *, record=False):
        if record:
            seen.append(self.plan.strategy)
        return original(self, record=record)

    monkeypatch.setattr(harness.PlanRunner, "run_once", spy)
    encoded = encode_inputs(tiny_engine.loaded, lengths=[5, 30, 9])
    compare(tiny_engine, encoded, ["dynamic", "padding", "buckets-partition"], repeats=3, warmup=0, **OPTIONS)
    assert seen[:2] == [REFERENCE, "dynamic"]  # once per input: the reference and the batched reference
    # every round times every contender once, in an order drawn per round from its number: the
    # strategies asked for, then what takes native dynamic apart (a static model at dynamic's
    # shape, and dynamic at the least-padded static plan's call shapes)
    contenders = ["dynamic", "padding", "buckets-partition", STATIC_AT_DYNAMIC, DYNAMIC_AT_STATIC.format("buckets-partition")]
    rounds = [seen[2 + 5 * r : 7 + 5 * r] for r in range(3)]
    assert len(seen) == 17 and rounds == [random.Random(r).sample(contenders, 5) for r in range(3)]
    # unlike a rotation, it does not keep who runs right after whom: a call after another
    # model's finds its weights pushed out of the caches, which a fixed neighbour pays every round
    after = {name: {o[o.index(name) - 1] for o in rounds if o.index(name)} for name in contenders}
    assert any(len(before) > 1 for before in after.values())


def test_concurrent_requests_in_flight_are_bounded_by_jobs(tiny_engine):
    encoded = encode_inputs(tiny_engine.loaded, lengths=[9, 40, 3, 17, 60, 2, 33, 5])
    plan = make_plan("buckets-partition", encoded.lengths, **dict(OPTIONS, batch_sizes=[1]))
    sync = tiny_engine.run(plan, encoded, warmup=0)
    for jobs in (1, 3):
        with tiny_engine.runner(plan, encoded, concurrent=True, jobs=jobs) as runner:
            timing = runner.run_once(record=True)
            assert len({id(r) for r in runner.requests}) == plan.num_calls  # outputs stay put until copied
        assert runner.peak_in_flight == min(jobs, plan.num_calls) or 1 <= runner.peak_in_flight <= jobs
        assert len(timing.call_ms) == plan.num_calls and all(ms > 0 for ms in timing.call_ms)
        assert np.abs(runner.outcome().embeddings - sync.embeddings).max() <= 1e-6


def test_fidelity_never_defaults():
    ref = Outcome(None, [np.ones((3, 4)), np.ones((2, 4))], np.eye(2, 4))  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="1 sequences against the reference's 2"):
        fidelity(Outcome(None, [np.ones((3, 4))], np.eye(1, 4)), ref)  # type: ignore[arg-type]
    with pytest.raises(EngineError, match="sequence 1"):
        fidelity(Outcome(None, [np.ones((3, 4)), np.ones((3, 4))], np.eye(2, 4)), ref)  # type: ignore[arg-type]
    assert roundoff("bf16")["max_abs_diff"] > roundoff("f32")["max_abs_diff"]


def test_reference_runs_once_and_is_compared_by_index(tiny_engine):
    encoded = encode_inputs(tiny_engine.loaded, lengths=[40, 3, 17])
    c = compare(tiny_engine, encoded, ["padding", REFERENCE], repeats=2, warmup=0, **OPTIONS)
    assert len(c.outcomes[REFERENCE].total_ms) == 2  # the one asked for, timed like the others
    assert [h.shape[0] for h in c.outcomes["padding"].hidden] == [40, 3, 17]
    assert c.result(REFERENCE)["fidelity"]["max_abs_diff"] <= 1e-5


def test_cost_table_takes_pack_seq_and_prices_packed_rows_on_the_packed_graph(tiny):
    engine = Engine(tiny, precision="f32", cache_dir=None)
    table = measure_cost_table(engine, [5, 20], seq_buckets=[16, 32], batch_sizes=[1, 2], max_seq=64, pack_seq=48, repeats=1)
    assert sorted(table) == [(1, 16), (1, 32), (1, 64), (2, 16), (2, 32), (2, 64)]
    assert sorted(table.packed) == [(1, 48), (2, 48)]
    packed = {e.shape for e in engine.compiled_entries() if e.packed}
    assert packed == {(1, 48), (2, 48)}
    encoded = encode_inputs(tiny, lengths=[5, 20])
    c = compare(engine, encoded, ["packing", "partition"], cost_table=table, repeats=1, warmup=0, seq_buckets=[16, 32], batch_sizes=[1, 2], max_seq=64, pack_seq=48)
    assert c.result("packing")["params"]["predicted_latency_ms"] in table.packed.values()


def test_cli_cost_table_measure_keeps_pack_seq(cache_dir):
    """--pack-seq 48 is no bucket: a table measured without it has no price for the packed rows."""
    env = {"SHAPEDEMO_CACHE": str(cache_dir), "PATH": "/usr/bin:/bin", "HOME": str(cache_dir)}
    out = subprocess.run(
        [sys.executable, "-m", "shapedemo", "compare", "--model", "synthetic:tiny", "--lengths", "5,20,9", "--strategies", "packing",
         "--seq-buckets", "16,32", "--batch-sizes", "1,2", "--max-seq", "64", "--pack-seq", "48", "--cost-table", "measure",
         "--repeats", "1", "--precision", "f32", "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)["results"][0]
    assert result["params"]["pack_seq"] == 48 and result["params"]["objective"] == "latency"
    assert all(m["packed"] and m["shape"][1] == 48 for m in result["compiled_models"])
