"""Bucket sets: which static sequence lengths to compile.

A bucket is a compiled sequence length. A sequence runs in the smallest bucket that fits it and is
padded up to that edge, so more buckets mean less padding but more compiled shapes (compile time
and memory for each). The generators here make the usual sets; ``tuned`` finds the best ``k``
edges for a sample of lengths exactly, by dynamic programming.

>>> padding_fraction_for([24, 24, 96], powers_of_two(128))   # 144 real tokens in 32 + 32 + 128
0.25
>>> padding_fraction_for([24, 24, 96], tuned([24, 24, 96], 2))
0.0
"""

from __future__ import annotations

import math
import operator
import re
from bisect import bisect_left
from collections import Counter
from typing import Callable, Iterable, Sequence

from shapedemo.planning.plan import PlanError

_INTEGER = re.compile(r"[+-]?[0-9]+")
_EMPTY_ITEM = re.compile(r",[ \t]*,")

__all__ = [
    "PlanError",
    "bucket_for",
    "check_cost",
    "check_lengths",
    "check_positive",
    "linear",
    "padding_fraction_for",
    "parse_buckets",
    "parse_int_list",
    "positive_sizes",
    "powers_of_two",
    "resolve_buckets",
    "tuned",
]

def parse_int_list(
    text: str, *, what: str = "list", allow_empty_items: bool = False
) -> tuple[int, ...]:
    """Whole numbers separated by commas and/or whitespace, kept in order (lengths are ordered).

    An empty item between two commas (``1,,2``) is refused rather than skipped: it is usually a
    number the user forgot (``allow_empty_items=True`` skips it). A comma at the end of a line or
    of the text is fine (files written as ``12,`` per line).

    ``what`` names the input in the error, so the user knows which option to fix.

    >>> parse_int_list("12, 40,7")
    (12, 40, 7)
    >>> parse_int_list("12 7.5", what="--lengths")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: --lengths: '7.5' is not a whole number
    >>> parse_int_list("1,,2", what="--batch-sizes")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: --batch-sizes: empty item between commas in '1,,2'
    """
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise PlanError(f"{what} is empty")
    if not allow_empty_items and _EMPTY_ITEM.search(text):
        raise PlanError(f"{what}: empty item between commas in {text.strip()!r}")
    return tuple(_integer(token, what=what) for token in tokens)


def _integer(token: str, *, what: str) -> int:
    """``token`` as an int when it is plain ASCII digits with an optional sign (``int`` alone
    would also take ``1_000`` and other scripts' digits)."""
    if not _INTEGER.fullmatch(token):
        raise PlanError(f"{what}: {token!r} is not a whole number")
    return int(token)


def _whole(value: object) -> int | None:
    """``value`` as an int when it is a whole number (int, numpy integer; not bool), else None."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        return None
    return operator.index(value)  # type: ignore[arg-type]


def check_positive(value: object, *, what: str) -> int:
    """``value`` as an int, or a ``PlanError`` naming ``what`` unless it is a whole number >= 1.

    >>> check_positive(0, what="max_seq")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: max_seq must be a whole number >= 1, not 0
    """
    n = _whole(value)
    if n is None or n < 1:
        raise PlanError(f"{what} must be a whole number >= 1, not {value!r}")
    return n


def check_lengths(lengths: Iterable[object]) -> tuple[int, ...]:
    """The sequence lengths as ints, in request order; at least one, each >= 1.

    >>> check_lengths([3, 0])
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: length 0 (sequence 1) is not a whole number >= 1
    """
    checked = tuple(lengths)
    if not all(type(n) is int and n >= 1 for n in checked):  # the common case, checked fast
        checked = tuple(_length(value, i) for i, value in enumerate(checked))
    if not checked:
        raise PlanError("no lengths given")
    return checked


def _length(value: object, i: int) -> int:
    n = _whole(value)
    if n is None or n < 1:
        raise PlanError(f"length {value!r} (sequence {i}) is not a whole number >= 1")
    return n


def check_cost(value: object, *, what: str) -> float:
    """``value`` as a float, or a ``PlanError`` unless it is a finite number >= 0 (a latency).

    >>> check_cost(float("nan"), what="cost of batch 4")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: cost of batch 4 is nan, not a finite number >= 0
    """
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PlanError(f"{what} is {value!r}, not a number") from None
    if not math.isfinite(number) or number < 0:
        raise PlanError(f"{what} is {number}, not a finite number >= 0")
    return number


def positive_sizes(values: Iterable[object], *, what: str) -> tuple[int, ...]:
    """``values`` sorted and deduplicated, each a whole number >= 1, at least one.

    >>> positive_sizes([8, 1, 4, 4], what="batch sizes")
    (1, 4, 8)
    """
    checked = set()
    for value in values:
        n = _whole(value)
        if n is None:
            raise PlanError(f"{what}: {value!r} is not a whole number")
        if n < 1:
            raise PlanError(f"{what}: {n} is below 1")
        checked.add(n)
    if not checked:
        raise PlanError(f"{what}: the list is empty")
    return tuple(sorted(checked))


def parse_buckets(
    text: str, *, what: str = "buckets", allow_empty_items: bool = True
) -> tuple[int, ...]:
    """A bucket list typed by a user (``"32,64,128"``), sorted and deduplicated; ``what`` names
    the input in errors. Empty items (``32,,64``) are skipped here unless
    ``allow_empty_items=False`` (``resolve_buckets``, behind the UI and the CLI, refuses them).

    >>> parse_buckets("128, 32,64,32")
    (32, 64, 128)
    >>> parse_buckets("32,0")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: buckets: 0 is below 1
    """
    numbers = parse_int_list(text, what=what, allow_empty_items=allow_empty_items)
    return positive_sizes(numbers, what=what)


def powers_of_two(max_seq: int, *, min_bucket: int = 16) -> tuple[int, ...]:
    """Powers of two from ``min_bucket`` (rounded up to one) below ``max_seq``, then ``max_seq``.

    The usual default: padding is at most half of any bucket, and ``max_seq`` is always the top
    bucket so every allowed length fits.

    >>> powers_of_two(512)
    (16, 32, 64, 128, 256, 512)
    >>> powers_of_two(384)
    (16, 32, 64, 128, 256, 384)
    >>> powers_of_two(10)
    (10,)
    """
    check_positive(max_seq, what="max_seq")
    check_positive(min_bucket, what="min_bucket")
    edges = []
    p = 1 << (min_bucket - 1).bit_length()
    while p < max_seq:
        edges.append(p)
        p *= 2
    return (*edges, max_seq)


def linear(max_seq: int, *, step: int) -> tuple[int, ...]:
    """Every ``step`` tokens up to ``max_seq``, which is always the top bucket.

    Padding is at most ``step - 1`` tokens per sequence, at the cost of ``max_seq / step`` shapes.

    >>> linear(128, step=32)
    (32, 64, 96, 128)
    >>> linear(100, step=32)
    (32, 64, 96, 100)
    """
    check_positive(max_seq, what="max_seq")
    check_positive(step, what="step")
    return (*range(step, max_seq, step), max_seq)


def bucket_for(length: int, buckets: Sequence[int]) -> int:
    """The smallest bucket of the sorted ``buckets`` that fits ``length``.

    >>> bucket_for(33, (16, 32, 64))
    64
    """
    i = bisect_left(buckets, length)
    if i == len(buckets):
        raise PlanError(f"length {length} is longer than the largest bucket {buckets[-1]}")
    return buckets[i]


def padding_fraction_for(lengths: Iterable[int], buckets: Iterable[int]) -> float:
    """The share of computed tokens that are padding when each length is padded to its bucket.

    >>> padding_fraction_for([10, 20, 30], (16, 32))   # 60 real tokens in 16 + 32 + 32
    0.25
    """
    edges = positive_sizes(buckets, what="buckets")
    counts = Counter(check_lengths(lengths))
    real = sum(n * c for n, c in counts.items())
    computed = sum(bucket_for(n, edges) * c for n, c in counts.items())
    return (computed - real) / computed


def tuned(
    lengths: Iterable[int],
    k: int,
    *,
    max_seq: int | None = None,
    cost: Callable[[int], float] | None = None,
) -> tuple[int, ...]:
    """The at most ``k`` bucket edges that pad ``lengths`` least: an exact optimum, not a heuristic.

    Each sequence is padded to the smallest edge >= its length. The top edge is the longest
    length, or ``max_seq`` when given (so every allowed length fits later too); the other edges
    are sample lengths, which is where an optimal edge always sits (moving an edge down to the
    longest length it serves only removes padding). Dynamic programming over the sorted distinct
    lengths: O(k m^2) for m distinct lengths.

    With ``cost`` (edge -> cost of one sequence padded to that edge, e.g. measured latency) it
    minimises the summed cost instead of padded tokens; edges are still taken from the sample,
    which is optimal whenever the cost does not fall as the edge grows. Ties go to fewer edges.

    >>> tuned([5, 6, 7, 30, 31, 100], 3)
    (7, 31, 100)
    >>> tuned([5, 6, 7, 30, 31, 100], 2, max_seq=128)   # 5 x 31 + 1 x 128 tokens
    (31, 128)
    >>> step = lambda e: 1.0 if e <= 64 else e / 64   # flat up to 64 tokens, then linear
    >>> tuned([8, 9, 60, 100], 2), tuned([8, 9, 60, 100], 2, cost=step)
    ((9, 100), (60, 100))
    """
    check_positive(k, what="k")
    counts = Counter(check_lengths(lengths))
    values = sorted(counts)
    top = values[-1]
    if max_seq is not None:
        check_positive(max_seq, what="max_seq")
        if max_seq < top:
            raise PlanError(f"length {top} is longer than max_seq {max_seq}")
        top = max_seq
    below = [v for v in values if v < top]  # candidate lower edges
    weight = _edge_weight(cost)
    top_weight = weight(top)
    m = len(below)
    prefix = [0]
    for v in below:
        prefix.append(prefix[-1] + counts[v])
    total = sum(counts.values())
    weights = [weight(v) for v in below]

    # best[t][j]: least cost of lengths below[:j] with t lower edges, the last at below[j-1];
    # back[t][j]: where the previous edge sits (index into prefix). Lengths from below[j:] up go
    # to the top edge.
    inf = math.inf
    best = [[0.0] + [inf] * m]
    back: list[list[int]] = [[0] * (m + 1)]
    for t in range(1, min(k - 1, m) + 1):
        prev = best[-1]
        row, links = [inf] * (m + 1), [0] * (m + 1)
        for j in range(t, m + 1):
            w = weights[j - 1]
            for i in range(t - 1, j):
                c = prev[i] + (prefix[j] - prefix[i]) * w
                if c < row[j]:
                    row[j], links[j] = c, i
        best.append(row)
        back.append(links)

    chosen, chosen_cost = (0, 0), inf
    for t, row in enumerate(best):
        for j in range(m + 1):
            c = row[j] + (total - prefix[j]) * top_weight
            if c < chosen_cost:
                chosen, chosen_cost = (t, j), c
    t, j = chosen
    edges = [top]
    while t > 0:
        edges.append(below[j - 1])
        t, j = t - 1, back[t][j]
    return tuple(sorted(edges))


def _edge_weight(cost: Callable[[int], float] | None) -> Callable[[int], float]:
    """Cost of one sequence padded to an edge: its padded tokens, or the caller's ``cost``."""
    if cost is None:
        return float

    return lambda edge: check_cost(cost(edge), what=f"cost of bucket {edge}")


def resolve_buckets(
    spec: str, lengths: Iterable[int], *, max_seq: int, what: str = "buckets"
) -> tuple[int, ...]:
    """Bucket edges from a preset name or a typed list, as the UI and the CLI accept them.

    ``pow2`` (powers of two up to ``max_seq``), ``linear`` or ``linear:STEP`` (every STEP
    tokens; by default eight even steps), ``tuned:K`` (the K edges that pad ``lengths`` least,
    top edge ``max_seq``), or a list like ``32,64,128``. ``what`` names the input in errors.

    >>> resolve_buckets("pow2", [10], max_seq=128)
    (16, 32, 64, 128)
    >>> resolve_buckets("linear", [10], max_seq=512)
    (64, 128, 192, 256, 320, 384, 448, 512)
    >>> resolve_buckets("tuned:2", [5, 6, 7, 30, 31, 100], max_seq=128)
    (31, 128)
    >>> resolve_buckets("64, 32", [10], max_seq=128)
    (32, 64)
    >>> resolve_buckets("linear:", [10], max_seq=128)
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: buckets: nothing after ':' in 'linear:'
    """
    name, colon, arg = spec.strip().lower().partition(":")
    if colon and not arg.strip():
        raise PlanError(f"{what}: nothing after ':' in {spec.strip()!r}")
    if name in ("pow2", "powers-of-two"):
        if arg:
            raise PlanError(f"{what}: pow2 takes no argument, not {arg!r}")
        return powers_of_two(max_seq)
    if name == "linear":
        step = _preset_number(arg, what=f"{what}: linear step") if arg else -(-max_seq // 8)
        return linear(max_seq, step=step)
    if name == "tuned":
        if not arg:
            raise PlanError(f"{what}: say how many buckets, e.g. tuned:4")
        return tuned(lengths, _preset_number(arg, what=f"{what}: tuned k"), max_seq=max_seq)
    return parse_buckets(spec, what=what, allow_empty_items=False)


def _preset_number(text: str, *, what: str) -> int:
    return check_positive(_integer(text.strip(), what=what), what=what)
