"""The engine and compare on synthetic:tiny in f32: every masked strategy gives what one call per
sequence gives; the unmasked one does not; compiled shapes are reused; threads are safe."""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest

from shapedemo.planning.codegen import plan_code
from shapedemo.measure.compare import REFERENCE, compare, encode_inputs
from shapedemo.runtime.errors import EngineError
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan

pytestmark = pytest.mark.model
MASKED = [s for s in STRATEGY_NAMES if s != "padding-nomask"]
OPTIONS = dict(seq_buckets=[8, 16, 32, 64], batch_sizes=[1, 2, 4], max_seq=64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_masked_strategy_matches_dynamic_single(tiny_engine, seed):
    rng = random.Random(seed)
    lengths = [rng.randint(2, 64) for _ in range(rng.randint(1, 11))]
    encoded = encode_inputs(tiny_engine.loaded, lengths=lengths, seed=seed)
    result = compare(tiny_engine, encoded, STRATEGY_NAMES, repeats=1, warmup=0, **OPTIONS)
    for name in MASKED:
        fid = result.result(name)["fidelity"]
        assert fid["max_abs_diff"] <= 1e-4, (name, lengths, fid)
        assert fid["min_cosine"] >= 1 - 1e-6
        for got, want in zip(result.outcomes[name].hidden, result.outcomes[REFERENCE].hidden):
            assert got.shape == want.shape
    nomask = result.result("padding-nomask")["fidelity"]
    # the guide's warning, measured: pad tokens leak into every sequence shorter than max_seq
    if min(lengths) < 64:
        print(f"padding-nomask on {lengths}: max |diff| {nomask['max_abs_diff']:.3f}, min cosine {nomask['min_cosine']:.4f}")
        assert nomask["max_abs_diff"] > 1e-2  # 100x the f32 tolerance above


def test_result_fields_and_ratios(tiny_engine):
    encoded = encode_inputs(tiny_engine.loaded, lengths=[5, 30, 9, 12, 3])
    result = compare(tiny_engine, encoded, ["dynamic", "padding", "partition"], repeats=3, warmup=1, **OPTIONS)
    assert [r["strategy"] for r in result.results] == ["dynamic", "padding", "partition"]
    for r in result.results:
        lat = r["latency_ms"]
        assert len(lat["samples"]) == 3 and lat["min"] <= lat["median"] <= lat["max"]
        assert r["compile_s"] >= 0 and "max_abs_diff" in r["fidelity"]
    assert result.result("dynamic")["ratio_to_dynamic"] == 1.0
    assert result.result("partition")["compiled_shapes"] == [[1, 64], [4, 64]]
    assert result.result("padding")["padding_fraction"] == pytest.approx(1 - 59 / (2 * 4 * 64))


def test_shapes_compile_once(tiny, cache_dir):
    from shapedemo.runtime.engine import Engine

    engine = Engine(tiny, precision="f32", cache_dir=cache_dir)
    encoded = encode_inputs(tiny, lengths=[7, 20, 3])
    plan = make_plan("buckets-partition", encoded.lengths, **OPTIONS)
    first, _ = engine.prepare(plan)
    entries = {id(e.compiled) for e in engine.compiled_entries()}
    again, _ = engine.prepare(plan)
    engine.run(plan, encoded, warmup=1, repeats=2)
    assert again == 0.0 and {id(e.compiled) for e in engine.compiled_entries()} == entries
    assert len(entries) == len(plan.compiled_shapes)
    assert first > 0.0


@pytest.mark.parametrize("strategy,sizes", [("partition", [1, 2, 4]), ("padding", [2]), ("buckets-partition", [1, 2])])
def test_concurrent_calls_give_the_same_outputs(tiny_engine, strategy, sizes):
    """Calls of one shape share an AsyncInferQueue; calls of several shapes run at once too."""
    encoded = encode_inputs(tiny_engine.loaded, lengths=[9, 40, 3, 17, 60, 2, 33])
    plan = make_plan(strategy, encoded.lengths, **dict(OPTIONS, batch_sizes=sizes))
    assert plan.num_calls > 1
    sync = tiny_engine.run(plan, encoded, warmup=0, repeats=1)
    conc = tiny_engine.run(plan, encoded, warmup=0, repeats=2, concurrent=True)
    assert np.abs(sync.embeddings - conc.embeddings).max() <= 1e-6
    assert len(conc.call_ms[0]) == plan.num_calls


@pytest.mark.parametrize("strategy,sizes", [("partition", [1, 2]), ("padding", [2]), ("packing", [1]), ("buckets-partition", [1])])
@pytest.mark.parametrize("concurrent", [False, True])
def test_embeddings_only_equal_the_full_gather(tiny_engine, strategy, sizes, concurrent):
    """``hidden=False`` pools from the requests' own outputs (copying only what a later call on
    the same request overwrites): the same embeddings, twice in a row, and no hidden states."""
    encoded = encode_inputs(tiny_engine.loaded, lengths=[9, 40, 3, 17, 60, 2, 33, 5, 12])
    plan = make_plan(strategy, encoded.lengths, **dict(OPTIONS, batch_sizes=sizes, pack_seq=64))
    assert plan.num_calls > 1 and len({c.shape for c in plan.calls}) < plan.num_calls  # a request serves two calls
    full = tiny_engine.run(plan, encoded, warmup=0, repeats=1, concurrent=concurrent)
    lean = tiny_engine.run(plan, encoded, warmup=0, repeats=2, concurrent=concurrent, hidden=False)
    assert lean.hidden == [] and len(full.hidden) == len(encoded.lengths)
    assert np.array_equal(lean.embeddings, full.embeddings)


def test_a_packed_row_of_more_sequences_than_the_device_sums_matches_dynamic(tiny_engine):
    """The packed graph sums the states of a row's first ``SEGMENT_SUMS`` sequences on the
    device and the host pools the rest of the row: all of them match the dynamic model."""
    from shapedemo.model.graph import SEGMENT_SUMS

    lengths = [3 + i % 3 for i in range(SEGMENT_SUMS + 6)]
    encoded = encode_inputs(tiny_engine.loaded, lengths=lengths, seed=5)
    options = dict(seq_buckets=[256], batch_sizes=[1], max_seq=256, pack_seq=256)
    plan = make_plan("packing", encoded.lengths, **options)
    assert [len(row) for call in plan.calls for row in call.rows] == [len(lengths)]
    result = compare(tiny_engine, encoded, ["packing"], repeats=1, warmup=0, **options)
    fid = result.result("packing")["fidelity"]
    assert fid["max_abs_diff"] <= 1e-4 and fid["min_cosine"] >= 1 - 1e-6, fid
    got, want = result.outcomes["packing"].embeddings, result.outcomes[REFERENCE].embeddings
    assert np.abs(got - want).max() <= 1e-5  # normalised the same way, not only pointing the same way


def test_threads_each_get_their_own_request(tiny_engine):
    """Four threads run different inputs on the same compiled shape at once; each gets its own."""
    inputs = [encode_inputs(tiny_engine.loaded, lengths=[11, 5 + i], seed=i) for i in range(4)]
    plans = [make_plan("padding", e.lengths, **OPTIONS) for e in inputs]
    expected = [tiny_engine.run(p, e, warmup=0).embeddings for p, e in zip(plans, inputs)]
    got: list = [None] * 4
    errors: list = []

    def work(i: int) -> None:
        try:
            for _ in range(5):
                got[i] = tiny_engine.run(plans[i], inputs[i], warmup=0).embeddings
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for g, e in zip(got, expected):
        assert np.abs(g - e).max() <= 1e-6


def test_wrong_lengths_and_no_packing_are_errors(tiny_engine, tmp_path):
    import openvino as ov

    from shapedemo.runtime.engine import Engine
    from shapedemo.model import load_model

    encoded = encode_inputs(tiny_engine.loaded, lengths=[4, 5])
    with pytest.raises(EngineError, match="other sequence lengths"):
        tiny_engine.run(make_plan("dynamic", [4, 6]), encoded)
    ov.save_model(tiny_engine.loaded.model, tmp_path / "m.xml", compress_to_fp16=False)
    (tmp_path / "tokenizer.json").write_bytes((tiny_engine.loaded.tokenizer.folder / "tokenizer.json").read_bytes())
    ir = Engine(load_model(str(tmp_path / "m.xml")), precision="f32", cache_dir=None)
    with pytest.raises(EngineError, match="cannot pack"):
        ir.run(make_plan("packing", [4, 5], max_seq=64), encoded)


@pytest.mark.parametrize("strategy", ["partition", "packing", "padding-nomask", "dynamic"])
def test_generated_code_runs_and_matches_the_engine(tiny_engine, tmp_path, strategy, monkeypatch):
    import openvino as ov

    lengths = [6, 13, 4, 9, 21]
    plan = make_plan(strategy, lengths, **OPTIONS)
    ov.save_model(tiny_engine.loaded.model, tmp_path / "model.xml", compress_to_fp16=False)
    ov.save_model(tiny_engine.loaded.packed, tmp_path / "packed.xml", compress_to_fp16=False)
    monkeypatch.chdir(tmp_path)
    code = plan_code(plan).replace("core = ov.Core()", "core = ov.Core(); core.set_property('CPU', {'INFERENCE_PRECISION_HINT': 'f32'})")
    scope: dict = {}
    exec(compile(code, "generated.py", "exec"), scope)
    # the generated code feeds ids 1..n; run the engine on the same ids
    from shapedemo.model import Encoded

    encoded = Encoded([list(range(1, n + 1)) for n in lengths], [[0] * n for n in lengths])
    outcome = tiny_engine.run(plan, encoded, warmup=0)
    for got, want in zip(scope["hidden"], outcome.hidden):
        assert np.abs(got - want).max() <= 1e-5


def test_blob_cache_is_pruned_oldest_first(tmp_path):
    import os

    from shapedemo.runtime.blobs import prune_blobs

    for i, name in enumerate(["old", "mid", "new"]):
        blob = tmp_path / "f32" / f"{name}.blob"
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(b"x" * 2**20)
        os.utime(blob, (1000 + i, 1000 + i))
    removed = prune_blobs(tmp_path, budget_mb=2.5)
    assert [p.name for p in removed] == ["old.blob"]
    assert sorted(p.name for p in tmp_path.rglob("*.blob")) == ["mid.blob", "new.blob"]


def test_blob_cache_can_be_turned_off(tiny, tmp_path, monkeypatch):
    from shapedemo.runtime.engine import Engine

    monkeypatch.setenv("SHAPEDEMO_BLOB_CACHE_MB", "0")
    engine = Engine(tiny, precision="f32", cache_dir=tmp_path)
    assert "CACHE_DIR" not in engine.config
    monkeypatch.setenv("SHAPEDEMO_BLOB_CACHE_MB", "100")
    engine = Engine(tiny, precision="f32", cache_dir=tmp_path)
    engine.compile((1, 16))
    assert list((tmp_path / "blobs" / "f32").glob("*.blob"))


def test_every_ratio_has_an_interval_and_exact_repeats(tiny_engine):
    encoded = encode_inputs(tiny_engine.loaded, lengths=[5, 30, 9, 12, 3])
    result = compare(tiny_engine, encoded, ["dynamic", "padding", "buckets-partition"], repeats=4, warmup=0, **OPTIONS)
    data = result.to_dict()
    assert data["repeats"] == 4 and data["noise"]["rounds"] == 4 and data["noise"]["stopped"] == "repeats"
    for r in data["results"]:
        lo, hi = r["ratio_interval"]
        assert len(r["latency_ms"]["samples"]) == 4 and lo <= r["ratio_to_dynamic"] <= hi
        assert r["verdict"] in ("faster", "slower", "same")
    assert data["fastest"]["strategy"] in data["fastest"]["tied"]
    d = data["decomposition"]
    # dynamic at buckets-partition's call shapes, and a static model at dynamic's own shape
    assert d["static_plan"] == "buckets-partition" and d["dynamic_call_shape"] == [5, 30]
    assert d["padding_share_interval"][0] <= d["padding_share"] <= d["padding_share_interval"][1]
    assert d["dynamic_overhead_interval"][0] <= d["dynamic_overhead"] <= d["dynamic_overhead_interval"][1]
    assert len(d["static_at_dynamic_shape_device_ms"]["samples"]) == 4


def test_rounds_until_tight_stop_by_the_time_limit(tiny_engine):
    encoded = encode_inputs(tiny_engine.loaded, lengths=[5, 30, 9])
    result = compare(tiny_engine, encoded, ["dynamic", "padding"], repeats=None, max_seconds=0.5, warmup=0, **OPTIONS)
    noise = result.noise
    assert noise["stopped"] in ("tight", "max_seconds") and noise["rounds"] >= 1
    assert result.settings["repeats"] == noise["rounds"] and result.settings["max_seconds"] == 0.5
    assert noise["rounds"] >= 3  # never fewer, however short the time limit
    assert noise["stopped"] == "max_seconds" or noise["rounds"] >= 5


BLOB_RUN = """
import json, sys
from shapedemo.model import load_model
from shapedemo.runtime.engine import Engine
loaded = load_model("synthetic:tiny", cache_dir=sys.argv[1])
engine = Engine(loaded, precision="f32", cache_dir=sys.argv[1])
print(json.dumps([engine.compile((1, 16)).from_cache, engine.compile((2, 16), packed=True).from_cache]))
"""


def test_the_second_process_on_a_fresh_cache_hits_the_blob_cache(tmp_path):
    """The first process builds the model from opsets and saves its IR; the second reads that IR.
    Both must compile the same model (the blob key is a hash of the model), so the blobs the
    first one wrote are imported by the second."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "SHAPEDEMO_BLOB_CACHE_MB": "256"}

    def run() -> list[bool]:
        out = subprocess.run([sys.executable, "-c", BLOB_RUN, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    assert run() == [False, False]  # a fresh cache: compiled cold, blobs written
    assert run() == [True, True]  # the same model read back from the IR: the blobs are hit
