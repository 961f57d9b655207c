"""The one shape vocabulary (``shapedemo.shapes``): every spelling parsed once, accepted alike by
``plan``, ``compare``, ``tune``, ``serve`` and the page; the config file read and written by one
pair of functions; the defaults ``--help`` prints are the defaults used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapedemo.planning.plan import PlanError
from shapedemo.planning.strategies.budget import tune_shapes
from shapedemo.shapes import DEFAULT_BATCH_SIZES, ShapeSet, default_max_seq, parse_buckets_spec

ROOT = Path(__file__).resolve().parents[1]
SPELLINGS = ["pow2:32", "tuned:4", "32,64,128"]
LENGTHS = "12,40,7,90,33,20,61"


def shapedemo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), **(env or {}))
    return subprocess.run([sys.executable, "-m", "shapedemo", *args], cwd=ROOT, env=full, capture_output=True, text=True, timeout=600)


# ---- the parser and the defaults (pure) ---------------------------------------------------------


@pytest.mark.parametrize("spec, parsed", [
    ("pow2", "pow2"), (" POW2:32 ", "pow2:32"), ("powers-of-two", "pow2"), ("linear", "linear"),
    ("linear:64", "linear:64"), ("tuned:4", "tuned:4"), ("128, 32 64", (32, 64, 128)), ([64, 16, 16], (16, 64)),
])
def test_every_spelling_parses_to_one_normal_form(spec: object, parsed: object) -> None:
    assert parse_buckets_spec(spec) == parsed


@pytest.mark.parametrize("spec, words", [
    ("pow2:", "nothing after"), ("tuned", "tuned:4"), ("tuned:0", ">= 1"), ("linear:x", "not a whole number"),
    ("32,,64", "empty item"), ("32,0", "below 1"), ("pow2:4,8", "one whole number"),
])
def test_a_bad_spelling_is_one_line_naming_the_flag(spec: str, words: str) -> None:
    with pytest.raises(PlanError, match="--seq-buckets") as caught:
        ShapeSet.parse(seq_buckets=spec)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_the_defaults_are_written_once() -> None:
    fit = ShapeSet().resolve([12, 40])  # plan, compare, the page
    assert fit.max_seq == 128 == default_max_seq([12, 40]) and fit.seq_buckets == (16, 32, 64, 128)
    assert fit.batch_sizes == DEFAULT_BATCH_SIZES == (1, 2, 4, 8)
    assert ShapeSet.parse(seq_buckets="32,384").resolve([12]).max_seq == 384  # raised to a typed bucket
    served = ShapeSet().resolve(serve=True, limit=512)  # serve: pow2:32 up to the model's limit
    assert served.seq_buckets == (32, 64, 128, 256, 512) and served.max_seq == 512
    assert ShapeSet.parse(seq_buckets="16,64").resolve(serve=True).max_seq == 64  # up to its largest bucket


@settings(max_examples=100, deadline=None)
@given(
    buckets=st.lists(st.integers(1, 512), min_size=1, max_size=6),
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=4),
    top=st.one_of(st.none(), st.integers(1, 512)),
)
def test_the_config_file_round_trips(buckets: list[int], sizes: list[int], top: int | None) -> None:
    shapes = ShapeSet.parse(seq_buckets=buckets, batch_sizes=sizes, max_seq=top)
    assert ShapeSet.from_dict(json.loads(json.dumps(shapes.to_dict()))) == shapes


def test_tune_output_is_read_by_the_one_reader() -> None:
    config = tune_shapes([12, 9, 30, 14, 60, 11, 8, 25] * 8, budget=4)
    shapes = ShapeSet.from_dict(config)
    assert list(shapes.seq_buckets) == config["seq_buckets"] and list(shapes.batch_sizes) == config["batch_sizes"]
    with pytest.raises(PlanError, match="not a configuration"):
        ShapeSet.from_dict({"buckets": [16]}, what="--config x.json")


# ---- every front end accepts every spelling -----------------------------------------------------


@pytest.mark.parametrize("spec", SPELLINGS)
def test_plan_and_tune_take_every_spelling(spec: str) -> None:
    plan = shapedemo("plan", "--strategy", "buckets-partition", "--lengths", LENGTHS, "--seq-buckets", spec, "--json")
    assert plan.returncode == 0, plan.stderr
    used = json.loads(plan.stdout)["params"]["seq_buckets"]
    assert used == list(ShapeSet.parse(seq_buckets=spec).resolve([int(n) for n in LENGTHS.split(",")]).seq_buckets)
    tune = shapedemo("tune", "--lengths", LENGTHS, "--budget", "8", "--seq-buckets", spec, "--json")
    assert tune.returncode == 0, tune.stderr
    assert json.loads(tune.stdout)["seq_buckets"] == used


@pytest.mark.parametrize("spec", SPELLINGS)
def test_serve_settings_and_the_page_take_every_spelling(spec: str) -> None:
    gr = pytest.importorskip("gradio")
    from shapedemo.app.page import page_settings
    from shapedemo.serving.server import ServeSettings

    served = ServeSettings.build(seq_buckets=spec, sample=[12, 40, 7, 90, 33, 20, 61]).resolve_shapes(model_limit=512)
    assert served.seq_buckets[-1] == served.max_seq and served.batch_sizes == (1, 2, 4, 8)
    page = page_settings({"mode": "texts", "text": "a\nb c", "preset": "custom", "buckets_text": spec,
                          "batch_sizes_text": "1,2,4,8", "max_len": "auto", "strategies": ["buckets"]})
    assert page.shapes == ShapeSet.parse(seq_buckets=spec)
    assert gr is not None


def test_a_tune_config_is_taken_by_serve_and_the_page(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from shapedemo.app.page import page_settings
    from shapedemo.serving.server import ServeSettings

    config = tune_shapes([12, 9, 30, 14, 60, 11, 8, 25] * 8, budget=4)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    served = ServeSettings.build(config_file=str(path)).resolve_shapes(model_limit=512)
    assert list(served.seq_buckets) == config["seq_buckets"] and list(served.batch_sizes) == config["batch_sizes"]
    page = page_settings({"mode": "texts", "text": "a\nb c", "preset": "custom", "buckets_text": json.dumps(config),
                          "batch_sizes_text": "1,2,4,8", "max_len": "auto", "strategies": ["auto"]})
    assert page.shapes.seq_buckets == tuple(config["seq_buckets"]) and page.cost_model == config["predicted"]["cost_model"]


def test_serve_tuned_needs_a_sample_and_names_the_flags() -> None:
    from shapedemo.serving.server import ServeSettings

    with pytest.raises(PlanError, match="--lengths-file, --texts-file or --workload"):
        ServeSettings.build(seq_buckets="tuned:4")
    result = shapedemo("serve", "--seq-buckets", "tuned:4", "--port", "0")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--lengths-file" in result.stderr


@pytest.mark.model
@pytest.mark.parametrize("spec", SPELLINGS)
def test_compare_takes_every_spelling(spec: str, cache_dir: Path, tiny) -> None:
    result = shapedemo(
        "compare", "--model", "synthetic:tiny", "--lengths", LENGTHS, "--strategies", "buckets-partition",
        "--seq-buckets", spec, "--repeats", "1", "--warmup", "0", "--json", env={"SHAPEDEMO_CACHE": str(cache_dir)},
    )
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)["results"][0]
    assert row["params"]["seq_buckets"][-1] >= 90


# ---- --help says the defaults used ------------------------------------------------------------


def test_help_prints_the_defaults_that_are_used() -> None:
    plan_help = " ".join(shapedemo("plan", "--help").stdout.split())
    assert "smallest of 128/256/384/512 that fits the longest input" in plan_help
    assert "default 1,2,4,8" in plan_help and "default 512" not in plan_help
    planned = json.loads(shapedemo("plan", "--strategy", "padding", "--lengths", "12,40", "--json").stdout)
    assert planned["params"]["max_seq"] == 128 and planned["compiled_shapes"] == [[8, 128]]
    serve_help = " ".join(shapedemo("serve", "--help").stdout.split())
    assert "default pow2:32" in serve_help and "default 1,2,4,8" in serve_help


def test_every_strategy_unticked_on_the_page_is_an_error_and_left_out_is_the_defaults():
    pytest.importorskip("gradio")
    from shapedemo.app import page

    with pytest.raises(PlanError, match="choose at least one strategy"):
        page.page_settings({"mode": "texts", "text": "a\nb", "strategies": []})
    assert page.page_settings({"mode": "texts", "text": "a\nb"}).strategies == tuple(page.DEFAULT_STRATEGIES)
