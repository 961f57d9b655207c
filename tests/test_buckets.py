"""Bucket sets: the generators, parsing user lists, and ``tuned`` against brute force."""

from __future__ import annotations

from itertools import combinations
from typing import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shapedemo.planning.edges import (
    bucket_for,
    linear,
    padding_fraction_for,
    parse_buckets,
    parse_int_list,
    powers_of_two,
    resolve_buckets,
    tuned,
)
from shapedemo.planning.plan import PlanError
from shapedemo.planning.strategies import make_plan

FAST = settings(max_examples=200, deadline=None)


def total_cost(
    lengths: Iterable[int], edges: Iterable[int], weight: Callable[[int], float]
) -> float:
    """Each length padded to its smallest fitting edge, costed by ``weight(edge)``."""
    ordered = sorted(edges)
    return sum(weight(bucket_for(n, ordered)) for n in lengths)


def brute_force(
    lengths: list[int],
    k: int,
    *,
    top: int,
    candidates: Iterable[int],
    weight: Callable[[int], float],
) -> float:
    """The least cost over every set of at most ``k - 1`` candidate edges below ``top``."""
    below = sorted({c for c in candidates if c < top})
    return min(
        total_cost(lengths, (*lower, top), weight)
        for r in range(min(k - 1, len(below)) + 1)
        for lower in combinations(below, r)
    )


# ---- generators and parsing --------------------------------------------------------------


def test_powers_of_two() -> None:
    assert powers_of_two(512) == (16, 32, 64, 128, 256, 512)
    assert powers_of_two(384) == (16, 32, 64, 128, 256, 384)
    assert powers_of_two(128, min_bucket=20) == (32, 64, 128)
    assert powers_of_two(16) == (16,)
    assert powers_of_two(10) == (10,)
    assert powers_of_two(5, min_bucket=1) == (1, 2, 4, 5)


def test_linear() -> None:
    assert linear(128, step=32) == (32, 64, 96, 128)
    assert linear(100, step=32) == (32, 64, 96, 100)
    assert linear(20, step=64) == (20,)


@pytest.mark.parametrize("call", [lambda: powers_of_two(0), lambda: linear(64, step=0)])
def test_generators_reject_non_positive(call: Callable[[], object]) -> None:
    with pytest.raises(PlanError):
        call()


def test_parse_buckets_sorts_and_dedupes() -> None:
    assert parse_buckets("128, 32,64,32") == (32, 64, 128)
    assert parse_buckets(" 16\n32\t64 ") == (16, 32, 64)
    assert parse_buckets("32,,64") == (32, 64)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        (" , ", "empty"),
        ("32,abc", "'abc' is not a whole number"),
        ("32,1.5", "'1.5'"),
        ("0,32", "0 is below 1"),
        ("-16,32", "-16 is below 1"),
    ],
)
def test_parse_buckets_errors_are_one_line(text: str, words: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_buckets(text)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_parse_int_list_keeps_order_and_duplicates() -> None:
    assert parse_int_list("40, 12 40\n7") == (40, 12, 40, 7)


def test_bucket_for_and_padding_fraction() -> None:
    assert bucket_for(16, (16, 32)) == 16 and bucket_for(17, (16, 32)) == 32
    with pytest.raises(PlanError, match="largest bucket 32"):
        bucket_for(33, (16, 32))
    assert padding_fraction_for([10, 20, 30], (16, 32)) == 0.25
    assert padding_fraction_for([16, 32], [32, 16]) == 0.0


@FAST
@given(
    lengths=st.lists(st.integers(1, 128), min_size=1, max_size=30),
    lower=st.lists(st.integers(1, 128), max_size=5),
)
def test_padding_fraction_for_matches_the_buckets_plan(
    lengths: list[int], lower: list[int]
) -> None:
    buckets = [*lower, 128]
    plan = make_plan("buckets", lengths, seq_buckets=buckets, batch_sizes=[1], max_seq=128)
    assert padding_fraction_for(lengths, buckets) == pytest.approx(plan.padding_fraction)


# ---- tuned: exact --------------------------------------------------------------------------


samples = st.lists(st.integers(1, 40), min_size=1, max_size=14)


@FAST
@given(lengths=samples, k=st.integers(1, 5), extra=st.one_of(st.none(), st.integers(0, 20)))
def test_tuned_is_optimal_against_brute_force(
    lengths: list[int], k: int, extra: int | None
) -> None:
    max_seq = None if extra is None else max(lengths) + extra
    edges = tuned(lengths, k, max_seq=max_seq)
    top = max(lengths) if max_seq is None else max_seq
    assert list(edges) == sorted(set(edges)) and len(edges) <= k and edges[-1] == top
    assert set(edges[:-1]) <= set(lengths)
    best = brute_force(lengths, k, top=top, candidates=lengths, weight=float)
    assert total_cost(lengths, edges, float) == best


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 16), min_size=1, max_size=10), k=st.integers(1, 3))
def test_tuned_edges_from_the_sample_beat_any_integer_edges(lengths: list[int], k: int) -> None:
    """The claim the dynamic program rests on: optimal edges are always sample lengths."""
    edges = tuned(lengths, k)
    best = brute_force(lengths, k, top=max(lengths), candidates=range(1, 17), weight=float)
    assert total_cost(lengths, edges, float) == best


@FAST
@given(lengths=samples, k=st.integers(1, 5), data=st.data())
def test_tuned_with_cost_is_optimal_against_brute_force(
    lengths: list[int], k: int, data: st.DataObject
) -> None:
    table = {e: float(data.draw(st.integers(0, 100))) for e in sorted(set(lengths))}
    edges = tuned(lengths, k, cost=table.__getitem__)
    best = brute_force(lengths, k, top=max(lengths), candidates=lengths, weight=table.__getitem__)
    assert total_cost(lengths, edges, table.__getitem__) == best
    assert len(edges) <= k and edges[-1] == max(lengths)


def test_tuned_worked_examples() -> None:
    assert tuned([5, 6, 7, 30, 31, 100], 3) == (7, 31, 100)
    assert tuned([5, 6, 7, 30, 31, 100], 2, max_seq=128) == (31, 128)
    assert tuned([5, 6, 7, 30, 31, 100], 1) == (100,)
    assert tuned([5, 6, 7, 30, 31, 100], 10) == (5, 6, 7, 30, 31, 100)  # no more edges help
    assert tuned([7, 7, 7], 3, max_seq=512) == (7, 512)
    step = lambda e: 1.0 if e <= 64 else e / 64  # noqa: E731  flat up to 64 tokens
    assert tuned([8, 9, 60, 100], 2) == (9, 100)
    assert tuned([8, 9, 60, 100], 2, cost=step) == (60, 100)


def test_tuned_beats_powers_of_two_on_a_skewed_sample() -> None:
    lengths = [20] * 50 + [70] * 30 + [300] * 5
    edges = tuned(lengths, 3, max_seq=512)
    assert edges == (20, 70, 512)
    assert padding_fraction_for(lengths, edges) < padding_fraction_for(lengths, powers_of_two(512))


@pytest.mark.parametrize(
    ("lengths", "k", "kwargs", "words"),
    [
        ([], 2, {}, "no lengths"),
        ([5, 0], 2, {}, "sequence 1"),
        ([5], 0, {}, "k must be"),
        ([600], 2, {"max_seq": 512}, "longer than max_seq 512"),
        ([5], 2, {"cost": lambda e: -1.0}, "finite"),
    ],
)
def test_tuned_errors(lengths: list[int], k: int, kwargs: dict, words: str) -> None:
    with pytest.raises(PlanError, match=words):
        tuned(lengths, k, **kwargs)


# ---- presets -----------------------------------------------------------------------------


def test_resolve_buckets_presets_and_lists() -> None:
    sample = [5, 6, 7, 30, 31, 100]
    assert resolve_buckets("pow2", sample, max_seq=384) == powers_of_two(384)
    assert resolve_buckets(" Powers-of-two ", sample, max_seq=64) == (16, 32, 64)
    assert resolve_buckets("linear", sample, max_seq=512) == linear(512, step=64)
    assert resolve_buckets("linear", sample, max_seq=100) == linear(100, step=13)
    assert resolve_buckets("linear:32", sample, max_seq=128) == (32, 64, 96, 128)
    assert resolve_buckets("tuned:3", sample, max_seq=128) == tuned(sample, 3, max_seq=128)
    assert resolve_buckets("128,32, 64", sample, max_seq=128) == (32, 64, 128)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("tuned", "tuned:4"),
        ("tuned:x", "'x'"),
        ("tuned:0", "tuned k"),
        ("tuned:2,3", "'2,3'"),
        ("linear:0", "linear step"),
        ("pow2:3", "no argument"),
        ("", "empty"),
        ("fancy", "'fancy'"),
    ],
)
def test_resolve_buckets_errors_name_the_input(spec: str, words: str) -> None:
    with pytest.raises(PlanError) as caught:
        resolve_buckets(spec, [10, 20], max_seq=64, what="--seq-buckets")
    assert words in str(caught.value) and "--seq-buckets" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("1,,2", "empty item"),
        ("1,\t,2", "empty item"),
        ("1, ,2", "empty item"),
        ("1_000", "'1_000'"),
        ("٣", "'٣'"),
        (" ", "is empty"),
    ],
)
def test_parse_int_list_refuses_empty_items_and_odd_numbers(text: str, words: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_int_list(text, what="--batch-sizes")
    message = str(caught.value)
    assert words in message and message.startswith("--batch-sizes") and "\n" not in message
    assert parse_int_list("1, 2 3,4") == (1, 2, 3, 4)
    assert parse_int_list("12,\n40,\n7,") == (12, 40, 7)  # a file with a comma per line
    assert parse_int_list("1,,2", allow_empty_items=True) == (1, 2)


@pytest.mark.parametrize("spec", ["linear:", "pow2:", "tuned: ", "32,,64"])
def test_resolve_buckets_refuses_empty_parts(spec: str) -> None:
    with pytest.raises(PlanError, match="--seq-buckets"):
        resolve_buckets(spec, [10, 20], max_seq=64, what="--seq-buckets")
