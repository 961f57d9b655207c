"""Strategies turn lengths into plans: property tests over random inputs, exactness of
``decompose`` against brute force, the issue's worked examples, and one-line errors."""

from __future__ import annotations

import json
import math
from itertools import product
from typing import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapedemo.planning.edges import bucket_for
from shapedemo.planning.plan import Plan, Segment
from shapedemo.planning.strategies import (
    DESCRIPTIONS,
    MAX_POSITIONS,
    STRATEGY_NAMES,
    PlanError,
    declare,
    decompose,
    make_plan,
    predicted_latency,
)
from shapedemo.shapes import ShapeSet, shapes_of

FAST = settings(max_examples=200, deadline=None)
# Every registered strategy: a new one is picked up here without editing this file.
FIXED_NAMES = STRATEGY_NAMES
DYNAMIC = {"dynamic", "dynamic-single", "dynamic-bounded"}
PARTITIONED = ("partition", "buckets-partition", "packing")


# ---- inputs ------------------------------------------------------------------------------


@st.composite
def plan_inputs(draw: st.DrawFn) -> dict:
    """Random lengths and parameters that make_plan must accept (None = the default)."""
    max_seq = draw(st.one_of(st.none(), st.integers(1, MAX_POSITIONS)))
    top = MAX_POSITIONS if max_seq is None else max_seq
    lengths = draw(st.lists(st.integers(1, top), min_size=1, max_size=40))
    longest = max(lengths)
    batch_sizes = draw(st.one_of(st.none(), st.lists(st.integers(1, 12), min_size=1, max_size=5)))
    seq_buckets = draw(
        st.one_of(
            st.none(),
            st.builds(
                lambda low, high: low + [high],
                st.lists(st.integers(1, top), max_size=5),
                st.integers(longest, top),
            ),
        )
    )
    pack_seq = draw(st.one_of(st.none(), st.integers(longest, top)))
    return {
        "lengths": lengths,
        "max_seq": max_seq,
        "batch_sizes": batch_sizes,
        "seq_buckets": seq_buckets,
        "pack_seq": pack_seq,
    }


def plan_for(name: str, inputs: dict, **extra: object) -> Plan:
    args = dict(inputs)
    return make_plan(name, args.pop("lengths"), **args, **extra)  # type: ignore[arg-type]


def resolved(inputs: dict) -> tuple[int, tuple[int, ...], tuple[int, ...], int]:
    """The defaults make_plan documents, worked out independently: max_seq, sizes, buckets, pack."""
    longest = max(inputs["lengths"])
    max_seq = inputs["max_seq"] or max(
        next(s for s in (128, 256, 384, 512) if s >= longest), max(inputs["seq_buckets"] or [0]),
        inputs["pack_seq"] or 0,
    )
    sizes = tuple(sorted(set(inputs["batch_sizes"] or (1, 2, 4, 8))))
    if inputs["seq_buckets"] is None:
        buckets = tuple(p for p in (16, 32, 64, 128, 256) if p < max_seq) + (max_seq,)
    else:
        buckets = tuple(sorted(set(inputs["seq_buckets"])))
    return max_seq, sizes, buckets, inputs["pack_seq"] or max_seq


def declared_shapes(name: str, inputs: dict) -> set[tuple[int, int]]:
    """The compiled shapes each strategy is allowed to use, from the issue's definitions."""
    max_seq, sizes, buckets, pack = resolved(inputs)
    return {
        "padding": {(sizes[-1], max_seq)},
        "padding-nomask": {(sizes[-1], max_seq)},
        "buckets": {(sizes[-1], b) for b in buckets},
        "partition": {(b, max_seq) for b in sizes},
        "buckets-partition": set(product(sizes, buckets)),
        "packing": {(b, pack) for b in sizes},
    }[name]


def seq_order(calls: Iterator | tuple) -> list[int]:
    """Sequence indices in the order the calls and rows hold them."""
    return [s.seq for c in calls for row in c.rows for s in row]


def padding_rows(chunks: list[int], n: int) -> int:
    return sum(chunks) - n


# ---- every strategy ----------------------------------------------------------------------


def test_names_are_the_contract() -> None:
    assert STRATEGY_NAMES == (
        "dynamic",
        "dynamic-single",
        "padding",
        "padding-nomask",
        "buckets",
        "partition",
        "buckets-partition",
        "packing",
        "dynamic-bounded",
        "auto",
    )
    assert list(DESCRIPTIONS) == list(STRATEGY_NAMES)
    for text in DESCRIPTIONS.values():
        assert 20 < len(text) < 260 and "\n" not in text
        assert 1 <= text.count(". ") + text.endswith(".") <= 3


@FAST
@given(inputs=plan_inputs(), name=st.sampled_from(FIXED_NAMES))
def test_every_plan_places_every_token_once_within_its_shapes(inputs: dict, name: str) -> None:
    plan = plan_for(name, inputs)
    plan.validate()
    assert plan.strategy == name and plan.lengths == tuple(inputs["lengths"])
    placed = sorted(s.seq for _, _, s in plan.segments())
    assert placed == list(range(len(inputs["lengths"])))
    for call in plan.calls:
        assert len(call.rows) == call.batch
        assert call.real_tokens <= call.computed_tokens
        assert any(call.rows), "a call of padding rows only is waste"
        for row in call.rows:
            assert sum(s.length for s in row) <= call.seq
            assert all(s.offset + s.length <= call.seq for s in row)
    if name in DYNAMIC:
        assert plan.dynamic and plan.compiled_shapes == []
    else:
        assert not plan.dynamic
    if name in ("padding", "padding-nomask", "buckets", "partition", "buckets-partition", "packing"):
        declared = declared_shapes(name, inputs)
        assert set(plan.compiled_shapes) <= declared
        assert {tuple(s) for s in plan.params["shape_set"]} == declared
    assert plan.masked == (name != "padding-nomask")
    if name != "auto":  # auto runs a request on the plain or the packed graph, whichever is cheaper
        assert plan.packed == (name == "packing")


@FAST
@given(inputs=plan_inputs(), allow_packing=st.booleans())
def test_every_call_of_every_strategy_is_in_its_declared_set(inputs: dict, allow_packing: bool) -> None:
    """What serve compiles up front (``declare``) holds every model any request's plan calls."""
    max_seq, sizes, buckets, pack = resolved(inputs)
    shapes = ShapeSet(buckets, sizes, max_seq, inputs["pack_seq"])
    for name in STRATEGY_NAMES:
        declared = declare(name, shapes, allow_packing=allow_packing)
        plan = plan_for(name, inputs, allow_packing=allow_packing)
        assert shapes_of(plan) <= declared.compiled, (name, plan.call_shapes, declared.shapes())
    assert json.loads(json.dumps(plan.to_dict()))["num_calls"] == plan.num_calls


@FAST
@given(inputs=plan_inputs())
def test_one_sequence_per_row_at_offset_zero_except_packing(inputs: dict) -> None:
    for name in FIXED_NAMES:
        plan = plan_for(name, inputs)
        if plan.packed:
            continue
        for _, _, seg in plan.segments():
            assert seg.offset == 0
        for call in plan_for(name, inputs).calls:
            assert all(len(row) <= 1 for row in call.rows)


@FAST
@given(inputs=plan_inputs())
def test_dynamic_plans(inputs: dict) -> None:
    lengths = inputs["lengths"]
    (call,) = plan_for("dynamic", inputs).calls
    assert call.shape == (len(lengths), max(lengths))
    assert seq_order([call]) == list(range(len(lengths)))
    single = plan_for("dynamic-single", inputs)
    assert [c.shape for c in single.calls] == [(1, n) for n in lengths]
    assert single.padding_fraction == 0.0


@FAST
@given(inputs=plan_inputs())
def test_padding_loops_one_shape_in_request_order(inputs: dict) -> None:
    max_seq, sizes, _, _ = resolved(inputs)
    n = len(inputs["lengths"])
    for name in ("padding", "padding-nomask"):
        plan = plan_for(name, inputs)
        assert plan.call_shapes == [(sizes[-1], max_seq)]
        assert plan.num_calls == math.ceil(n / sizes[-1])
        assert seq_order(plan.calls) == list(range(n))
        assert all(c.padding_rows == 0 for c in plan.calls[:-1])
    assert plan_for("padding", inputs).calls == plan_for("padding-nomask", inputs).calls


@FAST
@given(inputs=plan_inputs())
def test_buckets_send_each_sequence_to_the_smallest_fitting_bucket(inputs: dict) -> None:
    _, sizes, buckets, _ = resolved(inputs)
    for name in ("buckets", "buckets-partition"):
        plan = plan_for(name, inputs)
        by_bucket: dict[int, list[int]] = {}
        for ci, _, seg in plan.segments():
            seq = plan.calls[ci].seq
            assert seq == bucket_for(seg.length, buckets)
            by_bucket.setdefault(seq, []).append(seg.seq)
        for members in by_bucket.values():
            assert members == sorted(members), "request order kept inside a bucket"
        if name == "buckets":
            assert {c.batch for c in plan.calls} == {sizes[-1]}
        else:
            for seq, members in by_bucket.items():
                chunks = [c.batch for c in plan.calls if c.seq == seq]
                assert chunks == decompose(len(members), sizes)


@FAST
@given(inputs=plan_inputs())
def test_partition_splits_the_batch_exactly(inputs: dict) -> None:
    max_seq, sizes, _, _ = resolved(inputs)
    n = len(inputs["lengths"])
    plan = plan_for("partition", inputs)
    chunks = [c.batch for c in plan.calls]
    assert chunks == decompose(n, sizes) == sorted(chunks, reverse=True)
    assert plan.params["chunks"] == chunks
    assert {c.seq for c in plan.calls} == {max_seq}
    assert seq_order(plan.calls) == list(range(n))
    assert sum(c.padding_rows for c in plan.calls) == padding_rows(chunks, n) < min(chunks)


@FAST
@given(inputs=plan_inputs())
def test_packing_rows_are_consecutive_segments_within_pack_seq(inputs: dict) -> None:
    _, sizes, _, pack = resolved(inputs)
    plan = plan_for("packing", inputs)
    rows = [row for c in plan.calls for row in c.rows if row]
    assert plan.params["rows"] == len(rows)
    assert len(rows) >= math.ceil(sum(inputs["lengths"]) / pack)
    for row in rows:
        offsets = [0]
        for seg in row[:-1]:
            offsets.append(offsets[-1] + seg.length)
        assert [s.offset for s in row] == offsets
    assert {c.seq for c in plan.calls} == {pack}
    assert [c.batch for c in plan.calls] == decompose(len(rows), sizes)
    # First fit: a row was opened only when no earlier row had room for its first segment.
    fill = [sum(s.length for s in row) for row in rows]
    for r, row in enumerate(rows):
        assert all(fill[q] + row[0].length > pack for q in range(r))


@FAST
@given(inputs=plan_inputs(), data=st.data())
def test_cost_table_never_predicts_slower_than_the_padding_objective(
    inputs: dict, data: st.DataObject
) -> None:
    for name in PARTITIONED:
        shapes = sorted(declared_shapes(name, inputs))
        ms = data.draw(st.lists(st.integers(0, 100), min_size=len(shapes), max_size=len(shapes)))
        table = {shape: float(v) for shape, v in zip(shapes, ms, strict=True)}
        by_cost = plan_for(name, inputs, cost_table=table)
        by_padding = plan_for(name, inputs)
        assert predicted_latency(by_cost, table) <= predicted_latency(by_padding, table)
        assert by_cost.params["objective"] == "latency"
        assert by_cost.params["predicted_latency_ms"] == predicted_latency(by_cost, table)
        assert by_padding.params["objective"] == "padding"


# ---- decompose: exact against brute force ------------------------------------------------


def multisets(sizes: list[int], limit: int) -> Iterator[list[int]]:
    """Every multiset of ``sizes`` (as a descending list) whose sum is at most ``limit``."""
    desc = sorted(set(sizes), reverse=True)

    def grow(i: int, left: int) -> Iterator[list[int]]:
        yield []
        for j in range(i, len(desc)):
            if desc[j] <= left:
                for rest in grow(j, left - desc[j]):
                    yield [desc[j], *rest]

    return grow(0, limit)


small_sizes = st.lists(st.integers(1, 6), min_size=1, max_size=4)


@FAST
@given(n=st.integers(0, 10), sizes=small_sizes)
def test_decompose_is_least_padding_then_fewest_calls(n: int, sizes: list[int]) -> None:
    chunks = decompose(n, sizes)
    assert chunks == sorted(chunks, reverse=True) and set(chunks) <= set(sizes)
    assert sum(chunks) >= n
    candidates = [c for c in multisets(sizes, n + 2 * max(sizes)) if sum(c) >= n]
    best = min((sum(c) - n, len(c)) for c in candidates)
    assert (sum(chunks) - n, len(chunks)) == best


@FAST
@given(n=st.integers(1, 10), sizes=small_sizes, data=st.data())
def test_decompose_with_cost_is_least_latency_then_fewest_calls(
    n: int, sizes: list[int], data: st.DataObject
) -> None:
    ms = {s: float(data.draw(st.integers(0, 50))) for s in sorted(set(sizes))}
    chunks = decompose(n, sizes, cost=ms.__getitem__)
    assert sum(chunks) >= n and sum(chunks) - n <= max(sizes) - 1
    candidates = [c for c in multisets(sizes, n + 2 * max(sizes)) if sum(c) >= n]
    best = min((sum(ms[s] for s in c), len(c)) for c in candidates)
    assert (sum(ms[s] for s in chunks), len(chunks)) == best


@pytest.mark.parametrize(
    ("n", "sizes", "chunks"),
    [
        (5, (1, 2, 4, 8), [4, 1]),
        (7, (2, 4), [4, 4]),
        (7, (1, 2, 4, 8), [4, 2, 1]),
        (8, (1, 2, 4, 8), [8]),
        (33, (1, 2, 4, 8, 16, 32), [32, 1]),
        (6, (3, 4), [3, 3]),  # greedy would take 4 and pad to 4 + 4
        (1, (4,), [4]),
        (0, (1, 2), []),
        (5, [8, 4, 1, 4], [4, 1]),
    ],
)
def test_decompose_worked_examples(n: int, sizes: tuple[int, ...], chunks: list[int]) -> None:
    assert decompose(n, sizes) == chunks


@pytest.mark.parametrize(
    ("table", "chunks"),
    [
        ({1: 10.0, 2: 12.0, 4: 15.0, 8: 20.0}, [8]),  # 20 < 15 + 12 + 10
        ({1: 1.0, 2: 2.0, 4: 4.0, 8: 30.0}, [4, 2, 1]),  # 7 < 30
    ],
)
def test_decompose_with_cost_worked_examples(table: dict[int, float], chunks: list[int]) -> None:
    assert decompose(7, (1, 2, 4, 8), cost=table.__getitem__) == chunks


@pytest.mark.parametrize(
    ("n", "sizes", "cost"),
    [(-1, (1,), None), (3, (), None), (3, (0, 2), None), (3, (1,), lambda b: -1.0)],
)
def test_decompose_rejects_bad_arguments(
    n: int, sizes: tuple[int, ...], cost: Callable[[int], float] | None
) -> None:
    with pytest.raises(PlanError):
        decompose(n, sizes, cost=cost)


# ---- worked examples ---------------------------------------------------------------------


def rows_of(plan: Plan) -> list[list[list[int]]]:
    return [[[s.seq for s in row] for row in c.rows] for c in plan.calls]


def test_padding_example_pads_the_short_last_chunk() -> None:
    plan = make_plan("padding", [12, 40, 7, 30, 9], batch_sizes=[1, 4], max_seq=128)
    assert [c.shape for c in plan.calls] == [(4, 128), (4, 128)]
    assert rows_of(plan) == [[[0], [1], [2], [3]], [[4], [], [], []]]
    assert plan.padding_fraction == pytest.approx(1 - 98 / 1024)
    assert plan.params["shape_set"] == [[4, 128]]


def test_buckets_example() -> None:
    plan = make_plan("buckets", [12, 40, 7, 30, 9], seq_buckets=[64, 16, 32, 16], batch_sizes=[2])
    assert [c.shape for c in plan.calls] == [(2, 16), (2, 16), (2, 32), (2, 64)]
    assert rows_of(plan) == [[[0], [2]], [[4], []], [[3], []], [[1], []]]
    assert plan.params["seq_buckets"] == [16, 32, 64]


def test_partition_examples() -> None:
    five = make_plan("partition", [10] * 5, max_seq=64)
    assert [c.shape for c in five.calls] == [(4, 64), (1, 64)]
    seven = make_plan("partition", [10] * 7, batch_sizes=[2, 4], max_seq=64)
    assert [c.batch for c in seven.calls] == [4, 4] and seven.calls[-1].padding_rows == 1
    assert [c.batch for c in make_plan("partition", [10] * 7).calls] == [4, 2, 1]


def test_buckets_partition_example() -> None:
    plan = make_plan("buckets-partition", [12, 40, 7, 30, 9], seq_buckets=[16, 64])
    assert [c.shape for c in plan.calls] == [(2, 16), (1, 16), (2, 64)]
    assert rows_of(plan) == [[[0], [2]], [[4]], [[1], [3]]]


def test_packing_example_first_fit_decreasing() -> None:
    plan = make_plan("packing", [12, 40, 8, 30, 5], max_seq=64)
    assert [c.shape for c in plan.calls] == [(2, 64)]
    assert plan.calls[0].rows == (
        (Segment(1, 0, 40), Segment(0, 40, 12), Segment(2, 52, 8)),
        (Segment(3, 0, 30), Segment(4, 30, 5)),
    )
    assert plan.packed and plan.padding_fraction == pytest.approx(1 - 95 / 128)
    smaller = make_plan("packing", [12, 40, 8, 30, 5], max_seq=64, pack_seq=40)
    assert {c.seq for c in smaller.calls} == {40} and smaller.params["pack_seq"] == 40


def test_dynamic_example() -> None:
    plan = make_plan("dynamic", [12, 40, 7])
    assert plan.call_shapes == [(3, 40)] and plan.compiled_shapes == [] and plan.dynamic
    assert make_plan("dynamic-single", [12, 40, 7]).call_shapes == [(1, 7), (1, 12), (1, 40)]


def test_defaults_are_recorded_in_params() -> None:
    """make_plan's defaults are every front end's (ShapeSet.resolve): the smallest of
    128/256/384/512 that fits, raised to the largest typed bucket."""
    plan = make_plan("buckets-partition", [10, 300])
    assert plan.params["seq_buckets"] == [16, 32, 64, 128, 256, 384]
    assert plan.params["batch_sizes"] == [1, 2, 4, 8]
    assert plan.params["max_seq"] == 384
    assert make_plan("buckets", [10], max_seq=384).params["seq_buckets"][-2:] == [256, 384]
    assert make_plan("partition", [1], batch_sizes=[8, 2, 2, 4]).params["batch_sizes"] == [2, 4, 8]
    assert make_plan("packing", [10]).params["pack_seq"] == 128
    assert make_plan("buckets", [10], seq_buckets=[16, 512]).params["max_seq"] == 512
    lengths = [10, 300]
    assert make_plan("auto", lengths).params["max_seq"] == ShapeSet().resolve(lengths).max_seq


def test_cost_table_picks_the_faster_decomposition() -> None:
    fast8 = {(1, 128): 10.0, (2, 128): 12.0, (4, 128): 15.0, (8, 128): 20.0}
    plan = make_plan("partition", [20] * 7, max_seq=128, cost_table=fast8)
    assert [c.batch for c in plan.calls] == [8] and plan.calls[0].padding_rows == 1
    assert predicted_latency(plan, fast8) == 20.0 == plan.params["predicted_latency_ms"]
    linear = {(1, 128): 1.0, (2, 128): 2.0, (4, 128): 4.0, (8, 128): 30.0}
    plan = make_plan("partition", [20] * 7, max_seq=128, cost_table=linear)
    assert [c.batch for c in plan.calls] == [4, 2, 1]  # 7 ms beats 4 + 4 (8 ms) and 8 (30 ms)
    assert predicted_latency(plan, linear) == 7.0


def test_cost_table_missing_a_needed_shape_names_it() -> None:
    table = {(1, 128): 1.0, (4, 128): 3.0, (8, 128): 5.0}
    with pytest.raises(PlanError, match="2 x 128"):
        make_plan("partition", [20] * 7, max_seq=128, cost_table=table)
    with pytest.raises(PlanError, match="1 x 16"):
        make_plan("buckets-partition", [10, 100], max_seq=128, cost_table=table)
    with pytest.raises(PlanError, match="8 x 128"):
        predicted_latency(make_plan("padding", [10] * 3), {(4, 128): 1.0})


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lengths", "kwargs", "words"),
    [
        ([], {}, "no lengths"),
        ([3, 0], {}, "sequence 1"),
        ([3, -2], {}, "-2"),
        ([3, 1.5], {}, "1.5"),
        ([True], {}, "True"),
        ([600], {}, "over max_seq 512"),
        ([100], {"max_seq": 64}, "over max_seq 64"),
        ([10], {"max_seq": 0}, "max_seq"),
        ([10], {"batch_sizes": []}, "empty"),
        ([10], {"batch_sizes": [0, 2]}, "below 1"),
        ([10], {"batch_sizes": [-4]}, "below 1"),
        ([10], {"seq_buckets": []}, "empty"),
        ([10], {"seq_buckets": [0, 16]}, "below 1"),
        ([100], {"seq_buckets": [32, 64]}, "largest bucket 64 is shorter than the longest length"),
        ([10], {"seq_buckets": [32, 1024]}, "over max_seq"),
        ([100], {"pack_seq": 64}, "pack_seq 64"),
        ([10], {"pack_seq": 1024}, "over max_seq"),
        ([10], {"cost_table": {(1, 512): -1.0}}, "finite"),
        ([10], {"cost_table": {(1, 512): float("nan")}}, "finite"),
        ([10], {"cost_table": {"1x512": 1.0}}, "pair"),
    ],
)
def test_bad_arguments_raise_one_line_plan_errors(lengths: list, kwargs: dict, words: str) -> None:
    for name in STRATEGY_NAMES:
        with pytest.raises(PlanError) as caught:
            make_plan(name, lengths, **kwargs)
        message = str(caught.value)
        assert words in message and "\n" not in message


def test_unknown_strategy_lists_the_known_names() -> None:
    with pytest.raises(PlanError) as caught:
        make_plan("bucketing", [10])
    assert all(name in str(caught.value) for name in STRATEGY_NAMES)
    assert isinstance(caught.value, ValueError)


def test_lengths_may_be_numpy_integers() -> None:
    np = pytest.importorskip("numpy")
    plan = make_plan("buckets-partition", np.array([12, 40, 7]), batch_sizes=np.array([1, 2]))
    assert plan.lengths == (12, 40, 7) and all(type(n) is int for n in plan.lengths)


# ---- dynamic-bounded ---------------------------------------------------------------------


@FAST
@given(inputs=plan_inputs())
def test_dynamic_bounded_chunks_of_the_largest_batch_each_padded_to_its_longest(
    inputs: dict,
) -> None:
    max_seq, sizes, _, _ = resolved(inputs)
    lengths = inputs["lengths"]
    plan = plan_for("dynamic-bounded", inputs)
    plan.validate()
    assert plan.dynamic and plan.compiled_shapes == [] and plan.masked and not plan.packed
    assert plan.params["bounds"] == [sizes[-1], max_seq]
    assert seq_order(plan.calls) == list(range(len(lengths)))
    bound = sizes[-1]
    expected = [lengths[i : i + bound] for i in range(0, len(lengths), bound)]
    assert [c.shape for c in plan.calls] == [(len(chunk), max(chunk)) for chunk in expected]
    assert all(c.padding_rows == 0 for c in plan.calls)
    if len(lengths) <= bound:
        assert plan.calls == plan_for("dynamic", inputs).calls


def test_dynamic_bounded_example() -> None:
    plan = make_plan("dynamic-bounded", [12, 40, 7, 30, 9], batch_sizes=[1, 2, 4], max_seq=128)
    assert [c.shape for c in plan.calls] == [(4, 40), (1, 9)]
    assert plan.params == {"bounds": [4, 128], "max_seq": 128, "chunks": [4, 1]}
    assert plan.to_dict()["compiled_shapes"] == [] and plan.to_dict()["dynamic"] is True
