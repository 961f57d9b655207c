"""The packers and the chunk table behind ``packing`` and ``auto``: best fit against its histogram
form, the exact search against brute force, ``Chunks`` against the full dynamic program, and the
packing efficiency."""

from __future__ import annotations

import math
from collections import Counter
from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st

from shapedemo.planning.strategies import make_plan
from shapedemo.planning.strategies.packing import (
    best_fit_decreasing,
    fill_templates,
    first_fit_order,
    pack_rows,
)
from shapedemo.planning.strategies.partition import Chunks

FAST = settings(max_examples=200, deadline=None)

lengths_and_room = st.integers(4, 96).flatmap(
    lambda room: st.tuples(st.lists(st.integers(1, room), min_size=1, max_size=60), st.just(room))
)


def contents(rows: list) -> Counter[int]:
    return Counter(sum(s.length for s in row) for row in rows)


def assert_valid_rows(rows: list, lengths: list[int], room: int) -> None:
    placed = sorted(s.seq for row in rows for s in row)
    assert placed == list(range(len(lengths)))
    for row in rows:
        offset = 0
        for seg in row:
            assert seg.offset == offset and seg.length == lengths[seg.seq]
            offset += seg.length
        assert 0 < offset <= room


@FAST
@given(case=lengths_and_room)
def test_best_fit_places_every_sequence_once_within_the_room(case: tuple) -> None:
    lengths, room = case
    rows = best_fit_decreasing(lengths, room)
    assert_valid_rows(rows, lengths, room)
    # a row is opened only when no row had room for the sequence that opened it
    fill = [sum(s.length for s in row) for row in rows]
    for r, row in enumerate(rows):
        assert all(fill[q] + row[0].length > room for q in range(r))


@FAST
@given(case=lengths_and_room, buckets=st.lists(st.integers(1, 200), max_size=4))
def test_histogram_best_fit_makes_the_same_rows(case: tuple, buckets: list[int]) -> None:
    lengths, room = case
    edges = sorted({*buckets, room, max(lengths), 256})
    for kwargs in ({}, {"buckets": edges}):
        small = min(room, min(lengths) + 3)  # a row shorter than some sequences
        for cap in (room, small) if kwargs else (room,):
            if not kwargs and max(lengths) > cap:
                continue
            rows = best_fit_decreasing(lengths, cap, **kwargs)
            groups = fill_templates(Counter(lengths), cap, **kwargs)
            from_groups: Counter[int] = Counter()
            rooms: Counter[int] = Counter()
            for row_room, template, count, content in groups:
                assert content == sum(n * k for n, k in template)
                assert 0 < content <= row_room
                from_groups[content] += count
                rooms[row_room] += count
            assert from_groups == contents(rows)
            placed: Counter[int] = Counter()
            for _, template, count, _ in groups:
                for n, k in template:
                    placed[n] += k * count
            assert placed == Counter(lengths)
            assert sum(n * k * c for _, t, c, _ in groups for n, k in t) == sum(lengths)


def fewest_rows_brute(lengths: list[int], room: int) -> int:
    """The fewest rows over every assignment of sequences to rows (tiny inputs)."""
    n = len(lengths)
    best = n
    for assignment in product(range(n), repeat=n):
        if len(set(assignment)) >= best:
            continue
        fill = Counter()
        for i, r in enumerate(assignment):
            fill[r] += lengths[i]
        if max(fill.values()) <= room:
            best = len(set(assignment))
    return best


@settings(max_examples=60, deadline=None)
@given(
    case=st.integers(6, 20).flatmap(
        lambda room: st.tuples(st.lists(st.integers(1, room), min_size=1, max_size=6), st.just(room))
    )
)
def test_pack_rows_is_exact_for_small_batches(case: tuple) -> None:
    lengths, room = case
    rows = pack_rows(lengths, room)
    assert_valid_rows(rows, lengths, room)
    assert len(rows) == fewest_rows_brute(lengths, room) <= len(best_fit_decreasing(lengths, room))
    fill = [sum(s.length for s in row) for row in rows]
    for r, row in enumerate(rows):
        assert all(fill[q] + row[0].length > room for q in range(r))


def test_exact_search_saves_a_row_best_fit_wastes() -> None:
    assert len(best_fit_decreasing([6, 6, 5, 5, 4, 4], 15)) == 3
    plan = make_plan("packing", [6, 6, 5, 5, 4, 4], max_seq=15, batch_sizes=[1, 2])
    assert plan.params["rows"] == 2 and plan.packing_efficiency == 1.0
    assert plan.to_dict()["packing_efficiency"] == 1.0
    assert "packing_efficiency" not in make_plan("padding", [6, 6]).to_dict()


def test_first_fit_order_moves_sequences_forward() -> None:
    rows = first_fit_order([[0], [1], [2]], [3, 3, 3], 9)
    assert [[s.seq for s in row] for row in rows] == [[0, 1, 2]]


@FAST
@given(case=lengths_and_room)
def test_packing_efficiency_is_the_lower_bound_over_rows(case: tuple) -> None:
    lengths, room = case
    plan = make_plan("packing", lengths, max_seq=room)
    rows = plan.params["rows"]
    assert plan.packing_efficiency == math.ceil(sum(lengths) / room) / rows
    assert 0 < plan.packing_efficiency <= 1


def full_decompose_objective(n: int, sizes: list[int], weight: dict[int, float]) -> tuple:
    """(cost, calls) of the best cover of n, by the full dynamic program up to n + max."""
    limit = n + max(sizes)
    best = [(0.0, 0)] + [(math.inf, math.inf)] * limit
    for t in range(1, limit + 1):
        for s in sizes:
            if s <= t and best[t - s][1] != math.inf:
                best[t] = min(best[t], (best[t - s][0] + weight[s], best[t - s][1] + 1))
    return min(best[t] for t in range(n, n + max(sizes)))


@FAST
@given(
    n=st.integers(0, 400),
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=4, unique=True),
    data=st.data(),
)
def test_chunks_beyond_the_table_are_still_optimal(n: int, sizes: list[int], data) -> None:
    weight = {s: float(data.draw(st.integers(0, 60))) for s in sizes}
    chunks = Chunks(sizes, cost=weight.__getitem__)
    got = chunks.chunks(n)
    assert sum(got) >= n and sum(got) - n < max(sizes) and set(got) <= set(sizes)
    assert (sum(weight[s] for s in got), len(got)) == full_decompose_objective(n, sizes, weight)
    assert chunks.cost(n) == sum(weight[s] for s in got)
    plain = Chunks(sizes).chunks(n)
    least = min(t for t in range(n, n + max(sizes)) if _reachable(t, sizes))
    assert sum(plain) == least


def _reachable(t: int, sizes: list[int]) -> bool:
    ok = [True] + [False] * t
    for x in range(1, t + 1):
        ok[x] = any(s <= x and ok[x - s] for s in sizes)
    return ok[t]
