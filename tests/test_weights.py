"""Compressed weights (f16, int8-weights, int8) on MiniLM: outputs within stated bounds of f32.

Bounds, from measurement (MiniLM, the 62 texts of assets/texts.txt, f32 inference so that the
weights are the only change; OpenVINO 2026.4, NNCF 3.4):

- ``f16``: max |diff| of hidden states 4.8e-3, min cosine 0.9999992 -> bounds 2e-2 and 1 - 1e-5
  (FP16 keeps ~3 decimal digits of each weight: ~1e-3 of hidden states whose values reach ~10);
- ``int8-weights``: min cosine 0.9974 -> bound 0.99;
- ``int8`` (calibrated on the same texts, exact lengths): min cosine 0.989, recall@10 0.96 ->
  bounds 0.98 and 0.9 (sentence-transformers quotes ~0.4% accuracy loss for its qint8 models;
  the cosine of the worst of 62 texts sits below the mean loss).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shapedemo.planning.plan import PlanError
from shapedemo.settings import RunSettings, with_config

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [t.strip() for t in (ROOT / "assets" / "texts.txt").read_text().splitlines() if t.strip()]
BOUNDS = {  # mode: (max |diff| of hidden states or None, min cosine)
    "f16": (2e-2, 1 - 1e-5),
    "int8-weights": (None, 0.99),
    "int8": (None, 0.98),
}


def test_weights_setting_is_checked_in_one_line():
    assert RunSettings(lengths=(5,), weights="int8", calibration="padded").validate().weights == "int8"
    with pytest.raises(PlanError, match="--weights 'int4': choose one of f32, f16, int8-weights, int8"):
        RunSettings(lengths=(5,), weights="int4").validate()
    with pytest.raises(PlanError, match="--calibration 'both'"):
        RunSettings(lengths=(5,), calibration="both").validate()


def test_config_file_carries_the_weights():
    doc = {"seq_buckets": [16, 64], "batch_sizes": [1, 4], "weights": "int8-weights"}
    assert with_config(RunSettings(lengths=(9,)), doc).weights == "int8-weights"
    assert with_config(RunSettings(lengths=(9,), weights="f16"), {**doc, "weights": "f16"}).weights == "f16"
    with pytest.raises(PlanError, match="weights 'int3'"):
        with_config(RunSettings(lengths=(9,)), {**doc, "weights": "int3"})


def test_calibration_layouts_place_every_text():
    from shapedemo.model.compress import Calibration, packed_items, plain_items

    ids = tuple(np.arange(1, n + 1) for n in (5, 9, 30))
    exact = Calibration(ids=ids, shapes="exact", max_seq=32)
    padded = Calibration(ids=ids, shapes="padded", seq_buckets=(16, 32), batch_sizes=(1, 2), max_seq=32)
    assert [f["input_ids"].shape for f in plain_items(exact)] == [(1, 5), (1, 9), (1, 30)]
    shapes = [f["input_ids"].shape for f in plain_items(padded)]
    assert all(s[1] in (16, 32) for s in shapes)
    assert sum(int(f["attention_mask"].sum()) for f in plain_items(padded)) == 44  # real tokens only
    assert exact.key() != padded.key()
    assert sum(int((f["segment_ids"] > 0).sum()) for f in packed_items(exact)) == 44


@pytest.fixture(scope="module")
def encoded(minilm):
    return minilm.tokenizer.encode(TEXTS)


@pytest.fixture(scope="module")
def reference(minilm, cache_dir, encoded):
    from shapedemo.planning.strategies import make_plan
    from shapedemo.runtime.engine import Engine

    plan = make_plan("dynamic-single", encoded.lengths, max_seq=128)
    return Engine(minilm, precision="f32", cache_dir=cache_dir).run(plan, encoded, warmup=0, repeats=1)


@pytest.mark.model
@pytest.mark.parametrize("mode", ["f16", "int8-weights", "int8"])
def test_each_mode_builds_on_minilm_within_its_bounds(mode, minilm, cache_dir, encoded, reference):
    from shapedemo.measure.compare import fidelity, neighbour_recall
    from shapedemo.model.compress import calibration_for, compress, weight_bytes
    from shapedemo.planning.strategies import make_plan
    from shapedemo.runtime.engine import Engine

    cal = calibration_for(encoded, shapes="exact", max_seq=128) if mode == "int8" else None
    loaded = compress(minilm, mode, calibration=cal, cache_dir=cache_dir)
    assert loaded.weights == mode and minilm.weights == "f32"
    assert weight_bytes(loaded.model) < 0.6 * weight_bytes(minilm.model)  # f16 halves, int8 quarters
    engine = Engine(loaded, precision="f32", cache_dir=cache_dir)
    for strategy in ("dynamic", "packing"):
        out = engine.run(make_plan(strategy, encoded.lengths, max_seq=128), encoded, warmup=0, repeats=1)
        fid = fidelity(out, reference)
        max_diff, min_cos = BOUNDS[mode]
        assert fid["min_cosine"] >= min_cos, (strategy, fid)
        if max_diff is not None:
            assert 0 < fid["max_abs_diff"] <= max_diff, (strategy, fid)
        if mode == "int8":
            assert neighbour_recall(out.embeddings, reference.embeddings) >= 0.9
    again = compress(minilm, mode, calibration=cal, cache_dir=cache_dir)  # read back beside the f32 IR
    assert again.weights_info["from_cache"] and again.weights_info["cache_key"].startswith(minilm.ir_key)


def _cli(*args: str, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "SHAPEDEMO_CACHE": str(cache), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "shapedemo", *args], capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)


@pytest.mark.model
def test_compare_int8_reports_cosine_and_recall_against_f32_for_every_masked_strategy(cache_dir):
    strategies = "dynamic,padding,buckets,partition,buckets-partition,packing,auto,padding-nomask"
    proc = _cli("compare", "--texts-file", "assets/texts.txt", "--weights", "int8", "--precision", "f32",
                "--strategies", strategies, "--repeats", "1", "--warmup", "0", "--json", cache=cache_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)  # NNCF's progress bars stay off stdout
    assert doc["weights"]["mode"] == "int8" and doc["weights"]["calibration"]["shapes"] == "exact"
    assert doc["settings"]["reference_weights"] == "f32"
    for row in doc["results"]:
        fid = row["fidelity"]
        assert set(fid) >= {"max_abs_diff", "min_cosine", "recall_at_10"}
        if row["strategy"] != "padding-nomask":
            assert fid["min_cosine"] >= BOUNDS["int8"][1] and fid["recall_at_10"] >= 0.9, row["strategy"]


def test_serve_int8_without_calibration_texts_is_one_line():
    from shapedemo.serving.config import ServeSettings

    with pytest.raises(PlanError, match="--weights int8 needs --calibration-file"):
        ServeSettings.build(weights="int8")
    assert ServeSettings.build(weights="f16").weights == "f16"


@pytest.mark.model
def test_tour_step_runs_each_weights_mode_and_words_the_lesson(cache_dir, monkeypatch):
    from shapedemo.measure import lessons as tour

    monkeypatch.setenv("SHAPEDEMO_CACHE", str(cache_dir))
    settings = tour.step_settings("weights", texts=tour.TOUR_TEXTS, model="synthetic:tiny", repeats=1)
    r = tour.run_step("weights", settings)
    names = [row["strategy"] for row in r.data["results"]]
    assert names == ["dynamic", "buckets-partition", "dynamic · f16", "buckets-partition · f16",
                     "dynamic · int8", "buckets-partition · int8"]
    assert set(r.data["by_weights"]) == {"f32", "f16", "int8"}
    assert "**f16**" in r.lesson and "**int8**" in r.lesson and "min cosine" in r.lesson
    assert r.figure.data and "compile_model" in r.code


def test_deploy_tab_budget_takes_the_weights_and_the_knee_config_carries_them():
    import json

    from shapedemo.app import deploy_tab

    _, _, config_json = deploy_tab.find_shapes("sst2-like", 64, "synthetic:tiny", False, "f16", progress=lambda *a, **k: None)
    assert json.loads(config_json)["weights"] == "f16"
    assert with_config(RunSettings(lengths=(9,)), json.loads(config_json)).weights == "f16"


def test_page_settings_take_weights_and_calibration_at_the_end_of_compare():
    from shapedemo.app import page

    assert page.COMPARE_PARAMS[-2:] == ("weights", "calibration")
    assert page.COMPARE_PARAMS[: len(page.PLAN_PARAMS)] == page.PLAN_PARAMS
    s = page.page_settings({"mode": "texts", "text": "a\nb", "weights": "int8", "calibration": "padded"})
    assert (s.weights, s.calibration) == ("int8", "padded")
    assert page.page_settings({"mode": "texts", "text": "a"}).weights == "f32"


@pytest.mark.model
def test_page_compare_with_f16_weights_shows_them_next_to_speed(cache_dir, monkeypatch):
    from shapedemo.app import page

    monkeypatch.setenv("SHAPEDEMO_CACHE", str(cache_dir))
    values = {"mode": "texts", "text": "\n".join(TEXTS[:8]), "workload": "sst2-like", "batch": 8, "seed": 0,
              "spec": "synthetic:tiny", "strategies": ["dynamic", "packing"], "preset": "powers of two",
              "buckets_text": "", "k": 4, "batch_sizes_text": "1,2,4,8", "max_len": "auto", "precision": "f32",
              "repeats": 1, "calls": "sync", "objective": "fewest padding rows", "device": "CPU",
              "static_only": False, "weights": "f16", "calibration": "exact"}
    view = page.run_comparison(*[values[k] for k in page.COMPARE_PARAMS])
    assert "f16 weights" in view.summary and "**f16** weights" in view.summary
    from shapedemo.measure.report import TABLE_HEADERS

    assert TABLE_HEADERS[-1] == "recall@10" and all(len(row) == len(TABLE_HEADERS) for row in view.table)
    assert view.table[0][-1] is not None  # 8 texts: each one's 7 neighbours against f32 weights'
