"""``benchmarks/floor.py``'s ``plan_bound``: the least device time any plan of static calls can
take for one request on a cost table's prices. It must never exceed a real plan's price (it is a
bound), and it must count what a real plan pays: the calls' sizes and the rows long texts need.
And its ``allocated_plan``: a real plan (every text in one row that holds it) found by choosing
the rows first, priced under a given price and never under the bound."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shapedemo.planning.strategies import make_plan
from shapedemo.planning.strategies.cost import CostModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from floor import allocated_plan, plan_bound  # noqa: E402  (the benchmark's folder is not a package)

BUCKETS, SIZES = (32, 64, 128, 256), (1, 2, 4, 8, 16, 32)
SHAPES = [(b, s) for s in BUCKETS for b in SIZES]


def _amx_like() -> CostModel:
    """Prices shaped like a 2-core AMX Xeon's at bf16: about 1.2 ms a call whatever its size, a
    slot of a long row dearer than one of a short row (attention grows with the row)."""
    table = {(b, s): 1.2 + b * s * (0.018 + 0.00004 * s) for b, s in SHAPES}
    return CostModel(table, packed_table={k: v * 1.01 for k, v in table.items()})


def test_a_constant_rate_prices_the_fewest_slots_that_hold_the_tokens():
    model = CostModel({(b, s): b * s / 1000 for b, s in SHAPES})
    # 32 texts of 10 tokens: 320 tokens fill 10 rows of 32 (8 + 2 rows: 320 slots)
    assert plan_bound(model, SHAPES, [10] * 32) == pytest.approx(0.32)


def test_a_call_costs_its_price_not_its_share_of_a_larger_one():
    # 3 rows of 128 are needed; one 4-row call (6 ms) beats 2 + 1 rows (5 + 4 ms)
    model = CostModel({(1, 128): 4.0, (2, 128): 5.0, (4, 128): 6.0})
    assert plan_bound(model, [(1, 128), (2, 128), (4, 128)], [100, 100, 100]) == 6.0


def test_texts_longer_than_half_the_largest_row_take_a_row_each():
    # 387 tokens would fit 2 rows of 256, but no row holds two texts of 129
    model = CostModel({(1, 256): 3.0, (2, 256): 5.0, (4, 256): 6.0, (1, 128): 0.5, (4, 128): 1.0})
    shapes = [(1, 256), (2, 256), (4, 256), (1, 128), (4, 128)]
    assert plan_bound(model, shapes, [129, 129, 129]) == 6.0
    # a text of 129 needs a row of 256 even when rows of 128 are cheaper
    assert plan_bound(model, shapes, [129]) == 3.0
    assert plan_bound(model, shapes, [100]) == 0.5
    # with a bucket of 200 between, texts of 150 fit rows of 200: nothing forces one per row of 256
    between = CostModel({(1, 256): 3.0, (2, 256): 5.0, (4, 256): 6.0, (1, 200): 2.0, (4, 200): 2.5})
    assert plan_bound(between, [(1, 256), (2, 256), (4, 256), (1, 200), (4, 200)], [150, 150, 150]) == 2.5


def test_a_text_longer_than_every_row_is_an_error():
    with pytest.raises(ValueError, match="longer than the largest bucket 256"):
        plan_bound(_amx_like(), SHAPES, [300])


@pytest.mark.parametrize("batch", [1, 8, 32])
def test_no_strategy_plans_below_the_bound_and_auto_comes_close(batch):
    model, rng = _amx_like(), random.Random(batch)
    options = dict(seq_buckets=list(BUCKETS), batch_sizes=list(SIZES), max_seq=256, pack_seq=256)
    for _ in range(10):
        lengths = [min(256, int(rng.lognormvariate(3.6, 0.8)) + 5) for _ in range(batch)]
        bound = plan_bound(model, SHAPES, lengths)
        prices = {name: model.price_plan(make_plan(name, lengths, **options, **({"cost_model": model} if name == "auto" else {})))
                  for name in ("auto", "packing", "buckets-partition")}
        assert all(price >= bound * (1 - 1e-9) for price in prices.values()), (lengths, prices, bound)
        assert prices["auto"] <= min(prices.values()) * (1 + 1e-9)
        assert prices["auto"] <= bound * 1.25, (lengths, prices["auto"], bound)


def _held(rows, lengths, buckets):
    """Every text in exactly one row, and each row within the largest bucket."""
    placed = sorted(i for row in rows for i in row)
    assert placed == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= max(buckets) for row in rows)


def test_allocating_first_lays_the_texts_into_the_cheapest_rows_that_hold_them():
    # rows of 128 cost 2 ms and rows of 64 cost 1.2 ms, however many: texts of 100, 30, 30 and 20
    # fit one row of 128 and one of 64 (3.2 ms; two rows of 128 would take 4 ms), the two texts
    # of 30 in the row of 64 and the 20 beside the 100
    shapes = [(b, s) for s in (64, 128) for b in (1, 2)]
    model = CostModel({(b, s): b * (2.0 if s == 128 else 1.2) for b, s in shapes})
    lengths = [100, 30, 30, 20]
    price, rows = allocated_plan(model, (64, 128), (1, 2), lengths, below=4.0)
    assert price == pytest.approx(3.2)
    _held(rows, lengths, (64, 128))
    assert sorted(sorted(lengths[i] for i in row) for row in rows) == [[20, 100], [30, 30]]
    assert plan_bound(model, shapes, lengths) <= price
    # nothing is cheaper than 3.2 ms: asked to beat it, it finds nothing
    assert allocated_plan(model, (64, 128), (1, 2), lengths, below=3.2) is None


def test_allocated_plans_hold_every_text_and_stay_between_the_bound_and_auto():
    model, options, found_any = _amx_like(), dict(seq_buckets=list(BUCKETS), batch_sizes=list(SIZES), max_seq=256), 0
    for batch in (8, 32):
        rng = random.Random(batch)
        for _ in range(20):
            lengths = [min(256, int(rng.lognormvariate(3.6, 0.8)) + 5) for _ in range(batch)]
            own = model.price_plan(make_plan("auto", lengths, **options, cost_model=model))
            found = allocated_plan(model, BUCKETS, SIZES, lengths, below=own)
            if found is None:
                continue
            found_any += 1
            price, rows = found
            _held(rows, lengths, BUCKETS)
            assert plan_bound(model, SHAPES, lengths) * (1 - 1e-9) <= price < own
    assert found_any  # on these prices some requests have a cheaper plan than auto's (4 of 40)


@pytest.mark.model
def test_the_script_prints_auto_the_allocated_plans_and_the_bounds_then_every_runner(tmp_path):
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "floor.py"), "--model", "synthetic:tiny", "--texts", str(root / "assets" / "texts.txt"),
         "--batches", "4", "--buckets", "16,32", "--batch-sizes", "1,2", "--precisions", "f32", "--num-texts", "8",
         "--rounds", "1", "--min-requests", "1", "--table-rounds", "1", "--table-repeats", "1"],
        capture_output=True, text=True, env={**os.environ, "SHAPEDEMO_CACHE": str(tmp_path)}, timeout=600,
    )
    assert out.returncode == 0, out.stderr
    prices = re.search(r"= ([\d.]+) of the table's best [\d,]+; with rows allocated first where cheaper ([\d.]+); "
                       r"best static plans of these requests ([\d.]+); length-aware bound ([\d.]+)", out.stdout)
    assert prices, out.stdout
    auto, allocated, _, length_aware = map(float, prices.groups())
    assert 0 < auto <= allocated <= length_aware <= 1.0  # the allocated plans only ever replace a dearer plan
    for runner in ("auto", "packing", "buckets-partition", "dynamic"):
        assert re.search(rf"^\s+4\s+{runner}\s+[\d,]+\s+[\d.]+", out.stdout, re.M), runner
