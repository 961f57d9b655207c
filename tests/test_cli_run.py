"""The CLI commands that run a model: `embed` and `compare`, parsed from their JSON (a contract)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.model


def run(*args: str, cache) -> subprocess.CompletedProcess:
    env = {"SHAPEDEMO_CACHE": str(cache), "PATH": "/usr/bin:/bin", "HOME": str(cache), "PYTHONFAULTHANDLER": "1"}
    return subprocess.run([sys.executable, "-m", "shapedemo", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture()
def texts_file(tmp_path):
    path = tmp_path / "texts.txt"
    path.write_text("A man is eating food.\n\nA man is eating a piece of bread.\nThe stock market fell sharply.\n")
    return path


def test_embed_json(texts_file, cache_dir):
    out = run("embed", "--texts-file", str(texts_file), "--precision", "f32", "--json", cache=cache_dir)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["text"] for r in rows] == ["A man is eating food.", "A man is eating a piece of bread.", "The stock market fell sharply."]
    assert [r["tokens"] for r in rows] == [8, 11, 8]
    e = np.array([r["embedding"] for r in rows])
    assert e.shape == (3, 384) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert e[0] @ e[1] > 0.6 > 0.2 > e[0] @ e[2]


def test_embed_truncates_to_the_models_max_seq_length_and_says_so_on_stderr(tmp_path, cache_dir):
    """all-MiniLM-L6-v2's sentence_bert_config.json says 256: a longer text is cut there, as
    sentence-transformers cuts it, and stderr says which; stdout stays pure JSON."""
    path = tmp_path / "long.txt"
    path.write_text("word " * 300 + "\nshort text\n")
    out = run("embed", "--texts-file", str(path), "--json", cache=cache_dir)
    assert out.returncode == 0, out.stderr
    assert [r["tokens"] for r in json.loads(out.stdout)] == [256, 4]
    assert "text 1 has 302 tokens: truncated to the model's max_seq_length 256" in out.stderr


@pytest.mark.parametrize(
    "args,message",
    [
        (["embed", "--texts-file", "EMPTY"], "holds no text"),
        (["embed", "--texts-file", "TEXTS", "--model", "synthetic:huge"], "unknown synthetic size"),
        (["embed", "--texts-file", "/no/such/file"], "cannot read texts file"),
        (["compare", "--lengths", "12,600", "--model", "synthetic:tiny"], "outside 1..512"),
        (["compare", "--lengths", "", "--model", "synthetic:tiny"], "lengths"),
        (["compare", "--lengths", "5,6", "--strategies", "dynamic,nope", "--model", "synthetic:tiny"], "unknown strategy 'nope'"),
        (["compare", "--lengths", "5,6", "--batch-sizes", "0,2", "--model", "synthetic:tiny"], "below 1"),
        (["compare", "--lengths", "5,60", "--max-seq", "32", "--model", "synthetic:tiny"], "60"),
        (["compare", "--lengths", "5,6", "--max-seq", "1024", "--model", "synthetic:tiny"], "limit of 512"),
        (["compare", "--lengths", "5,6", "--repeats", "0", "--model", "synthetic:tiny"], "--repeats"),
        (["compare", "--lengths", "5,6", "--max-seconds", "0", "--model", "synthetic:tiny"], "--max-seconds"),
        (["compare", "--lengths", "5,6", "--model", "synthetic:tiny", "--ov-config", "[1]"], "--ov-config: not a JSON object"),
        (["embed", "--texts-file", "TEXTS", "--model", "synthetic:tiny", "--ov-config", "{bad"], "--ov-config: not JSON"),
        (["tune", "--lengths", "5,6", "--budget", "2", "--measure", "--ov-config", '{"A": [1]}'], "property A must be"),
        (["serve", "--model", "synthetic:tiny", "--ov-config", "{bad"], "--ov-config: not JSON"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, message, tmp_path, texts_file, cache_dir):
    (tmp_path / "empty.txt").write_text("\n \n")
    args = [str(tmp_path / "empty.txt") if a == "EMPTY" else str(texts_file) if a == "TEXTS" else a for a in args]
    out = run(*args, cache=cache_dir)
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shapedemo: error:") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_compare_json_contract(tmp_path, cache_dir):
    target = tmp_path / "out.json"
    out = run(
        "compare", "--model", "synthetic:tiny", "--lengths", "12,40,7,3,25", "--strategies", "dynamic,padding,padding-nomask,buckets-partition,packing",
        "--seq-buckets", "16,32,64", "--batch-sizes", "1,2,4", "--max-seq", "64", "--precision", "f32", "--repeats", "2", "--json", str(target),
        cache=cache_dir,
    )
    assert out.returncode == 0, out.stderr
    assert "buckets-partition" in out.stdout and "x dynamic" in out.stdout  # the readable table
    data = json.loads(target.read_text())
    assert data["model"] == "synthetic:tiny" and data["device"] == "CPU" and data["precision"] == "f32"
    results = {r["strategy"]: r for r in data["results"]}
    assert list(results) == ["dynamic", "padding", "padding-nomask", "buckets-partition", "packing"]
    for r in results.values():
        for key in ("strategy", "calls" if False else "num_calls", "real_tokens", "computed_tokens", "padding_fraction", "compiled_shapes", "compile_s"):
            assert key in r
        assert set(r["latency_ms"]) >= {"median", "mean", "min", "max", "p90"}
        assert set(r["fidelity"]) >= {"max_abs_diff", "min_cosine"}  # + recall_at_10 (fields are added, never renamed)
        assert r["real_tokens"] == 87
    assert results["padding"]["computed_tokens"] == 2 * 4 * 64
    assert results["buckets-partition"]["compiled_shapes"] == [[1, 16], [1, 32], [1, 64], [2, 16]]
    for name in ("dynamic", "padding", "buckets-partition", "packing"):
        assert results[name]["fidelity"]["max_abs_diff"] <= 1e-4
    assert results["padding-nomask"]["fidelity"]["max_abs_diff"] > 1e-2
    # every ratio with its interval, exactly the rounds asked, the run's noise stated
    assert data["repeats"] == 2 and data["noise"]["rounds"] == 2
    for r in results.values():
        lo, hi = r["ratio_interval"]
        assert lo <= r["ratio_to_dynamic"] <= hi and len(r["latency_ms"]["samples"]) == 2
    assert "interval" in out.stdout and "noise: timings spread" in out.stdout


def test_compare_json_to_stdout_with_a_workload(cache_dir):
    out = run("compare", "--model", "synthetic:tiny", "--workload", "sst2-like", "--batch", "6", "--seed", "3", "--strategies", "dynamic,partition", "--repeats", "1", "--json", cache=cache_dir)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["num_sequences"] == 6 and [r["strategy"] for r in data["results"]] == ["dynamic", "partition"]
    assert data["results"][1]["params"]["max_seq"] == 128  # auto: the smallest of 128/256/384/512 that fits


def test_compare_with_a_cost_table_file(tmp_path, cache_dir):
    """7 sequences with batch sizes 1,2,4,8: by padding rows 4+2+1; by this table one call of 8."""
    table = tmp_path / "costs.json"
    table.write_text(json.dumps({"1x32": 10.0, "2x32": 11.0, "4x32": 12.0, "8x32": 13.0}))
    out = run(
        "compare", "--model", "synthetic:tiny", "--lengths", "3,4,5,6,7,8,9", "--strategies", "partition", "--max-seq", "32",
        "--batch-sizes", "1,2,4,8", "--repeats", "1", "--cost-table", str(table), "--json", cache=cache_dir,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)["results"][0]
    assert result["num_calls"] == 1 and result["compiled_shapes"] == [[8, 32]]
    assert result["params"]["objective"] == "latency" and result["params"]["predicted_latency_ms"] == 13.0
    plain = run("compare", "--model", "synthetic:tiny", "--lengths", "3,4,5,6,7,8,9", "--strategies", "partition", "--max-seq", "32", "--repeats", "1", "--json", cache=cache_dir)
    assert json.loads(plain.stdout)["results"][0]["compiled_shapes"] == [[1, 32], [2, 32], [4, 32]]


def test_measured_cost_table_covers_every_shape(tiny_engine):
    from shapedemo.measure.compare import measure_cost_table

    table = measure_cost_table(tiny_engine, [5, 20], seq_buckets=[16, 32], batch_sizes=[1, 2], max_seq=64, repeats=1)
    assert sorted(table) == [(1, 16), (1, 32), (1, 64), (2, 16), (2, 32), (2, 64)]
    assert all(ms > 0 for ms in table.values())


def test_tune_measure_curve_reports_the_knee_range_and_its_rule(cache_dir):
    out = run(
        "tune", "--model", "synthetic:tiny", "--lengths", "5,9,12,30,7,60,14,11,25,40", "--budget", "3",
        "--measure", "--curve", "--json", cache=cache_dir,
    )
    assert out.returncode == 0, out.stderr
    config = json.loads(out.stdout)
    lo, hi = config["knee_range"]
    knee = next(r["k"] for r in config["curve"] if r["knee"])
    assert lo == knee <= hi and config["price_noise"] >= 0
    assert [r["k"] for r in config["curve"] if r["within_noise"]] == list(range(lo, hi + 1))
    assert "fewest shapes" in config["knee_rule"]


def test_tune_draws_a_traffic_sample_from_a_workload():
    """``tune --workload`` prices requests of up to 32 texts: it draws as many lengths as serve's
    ``tuned:K`` does, not ``compare``'s 8 (with 8, a request of 32 texts was priced as one of 8)."""
    from shapedemo.cli import build_parser, settings_from_args
    from shapedemo.planning.strategies import CostModel
    from shapedemo.planning.strategies.budget import tune_shapes
    from shapedemo.shapes import SAMPLE_SIZE

    parser = build_parser()
    lengths = settings_from_args(parser.parse_args(["tune", "--workload", "sst2-like", "--budget", "4"])).input_lengths()
    assert len(lengths) == SAMPLE_SIZE
    assert len(settings_from_args(parser.parse_args(["compare", "--workload", "sst2-like"])).input_lengths()) == 8
    given = settings_from_args(parser.parse_args(["tune", "--workload", "sst2-like", "--batch", "40", "--budget", "4"]))
    assert len(given.input_lengths()) == 40
    per_request = tune_shapes(lengths, budget=4, cost_model=CostModel(coefficients=(1.0, 0.01, 0.0)))["predicted"]["latency_ms_per_batch_size"]
    assert per_request[32] > per_request[8] > per_request[1]


def test_ov_config_reaches_compile_model(tmp_path, cache_dir):
    """``--ov-config`` is passed through to ``compile_model``: the compiled model says so."""
    out_file = tmp_path / "out.json"
    out = run("compare", "--lengths", "5,9", "--model", "synthetic:tiny", "--strategies", "padding", "--repeats", "1",
              "--precision", "f32", "--ov-config", '{"NUM_STREAMS": 1, "PERFORMANCE_HINT": "THROUGHPUT"}',
              "--json", str(out_file), cache=cache_dir)
    assert out.returncode == 0, out.stderr
    props = json.loads(out_file.read_text())["device_properties"]
    assert props["NUM_STREAMS"] == 1 and props["PERFORMANCE_HINT"] == "THROUGHPUT"


def test_a_tune_config_carries_ov_config_to_compare(tmp_path, cache_dir):
    from shapedemo.settings import RunSettings, with_config

    doc = {"seq_buckets": [16, 64], "batch_sizes": [1, 4], "shapes": [], "predicted": {}, "ov_config": {"NUM_STREAMS": 1}}
    assert with_config(RunSettings(lengths=(9,)), doc).ov_config == {"NUM_STREAMS": 1}
    given = RunSettings(lengths=(9,), ov_config={"NUM_STREAMS": 2})
    assert with_config(given, doc).ov_config == {"NUM_STREAMS": 2}  # the flag wins
    bad = {**doc, "ov_config": "[1]"}
    with pytest.raises(Exception, match="ov_config: not a JSON object"):
        with_config(RunSettings(lengths=(9,)), bad)
