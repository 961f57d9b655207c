"""The bucket budget behind ``tune --json``: the contract, K shapes at most, every length fits,
K = 1 exact against brute force, and one knee on a curve that never rises."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapedemo.planning.strategies import CostModel
from shapedemo.planning.strategies.auto import AutoPlanner
from shapedemo.planning.strategies.budget import budget_curve, tune_shapes
from shapedemo.planning.workloads import WORKLOADS

MODEL = CostModel(coefficients=(4.0, 0.02, 1e-4))
ROW_KEYS = {"within_noise", "k", "padding_fraction", "predicted_ms", "compile_s", "memory_mb", "shapes", "knee"}


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 200), min_size=1, max_size=60),
    budget=st.integers(1, 8),
    requests=st.lists(st.integers(1, 16), min_size=1, max_size=3),
    packing=st.booleans(),
)
def test_tune_returns_a_deployable_configuration(
    lengths: list[int], budget: int, requests: list[int], packing: bool
) -> None:
    config = tune_shapes(lengths, budget=budget, request_sizes=requests, cost_model=MODEL,
                         max_seq=256, allow_packing=packing)
    assert set(config) == {"seq_buckets", "batch_sizes", "shapes", "predicted"}
    assert json.loads(json.dumps(config))["seq_buckets"] == config["seq_buckets"]
    edges, sizes = config["seq_buckets"], config["batch_sizes"]
    assert edges == sorted(set(edges)) and edges[-1] == 256 and sizes == sorted(set(sizes))
    assert config["shapes"] == [[b, s] for s in edges for b in sizes]
    assert len(config["shapes"]) <= budget
    predicted = config["predicted"]
    assert set(predicted["latency_ms_per_batch_size"]) == set(requests)
    assert 0 <= predicted["padding_fraction"] < 1 and predicted["cost_unit"] == "ms"
    assert predicted["compile_s"] is None and predicted["memory_mb"] is None


def test_one_shape_is_the_best_batch_size_at_max_seq() -> None:
    lengths = WORKLOADS["sst2-like"].sample(200, 0)
    config = tune_shapes(lengths, budget=1, cost_model=MODEL, max_seq=128, request_sizes=(1, 8, 32))
    per_text = {}
    for b in (1, 2, 4, 8, 16, 32):
        planner = AutoPlanner((128,), (b,), MODEL)
        total = 0.0
        for r in (1, 8, 32):
            total += sum(planner.choose(lengths[i : i + r])[0].cost for i in range(0, 200, r))
        per_text[b] = total / 600
    best = min(per_text, key=per_text.get)
    assert config["shapes"] == [[best, 128]]
    assert config["predicted"]["ms_per_text"] == pytest.approx(per_text[best])


def test_budget_curve_has_one_knee_and_never_rises() -> None:
    lengths = WORKLOADS["wiki-like"].sample(300, 1)
    rows = budget_curve(lengths, cost_model=MODEL, max_seq=512,
                        shape_cost=lambda b, s: (0.1 * b, b * s / 64))
    assert [r["k"] for r in rows] == list(range(1, 9))
    assert sum(r["knee"] for r in rows) == 1
    for row in rows:
        assert set(row) == ROW_KEYS and len(row["shapes"]) <= row["k"]
        assert row["compile_s"] == pytest.approx(sum(0.1 * b for b, _ in row["shapes"]))
    costs = [r["predicted_ms"] for r in rows]
    assert all(later <= earlier for earlier, later in zip(costs, costs[1:]))
    knee = next(r for r in rows if r["knee"])
    assert knee["predicted_ms"] <= min(costs) * 1.05
    assert all(r["predicted_ms"] > min(costs) * 1.05 for r in rows if r["k"] < knee["k"])


def test_without_a_cost_model_the_curve_counts_token_slots() -> None:
    rows = budget_curve([12, 9, 30, 14, 60, 11, 8, 25] * 4, ks=[1, 2], request_sizes=(1,))
    assert all(r["predicted_ms"] is None and r["predicted_token_slots"] > 0 for r in rows)
    assert rows[1]["padding_fraction"] < rows[0]["padding_fraction"]


def test_knee_range_widens_with_the_noise_of_the_prices():
    from shapedemo.planning.strategies.budget import knee_range

    lengths = [12, 9, 30, 14, 60, 11, 8, 25, 90, 120, 7, 33] * 6
    model = CostModel(coefficients=(4.0, 0.02, 1e-4))
    quiet = budget_curve(lengths, ks=range(1, 7), request_sizes=(1, 8), cost_model=model)
    loud = budget_curve(lengths, ks=range(1, 7), request_sizes=(1, 8), cost_model=model, noise=0.2)
    k_quiet = next(r["k"] for r in quiet if r["knee"])
    k_loud = next(r["k"] for r in loud if r["knee"])
    assert knee_range(quiet) == [k_quiet, k_quiet]  # no noise: the range is the knee
    lo, hi = knee_range(loud)
    assert lo == k_loud <= k_quiet <= hi  # ties within the noise go to fewer shapes
    assert [r["k"] for r in loud if r["within_noise"]] == list(range(lo, hi + 1))
