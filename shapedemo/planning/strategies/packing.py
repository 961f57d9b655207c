"""Packing (beyond the guide): several short sequences share one row.

Sequences are bin-packed into rows of ``pack_seq`` tokens by best-fit decreasing (an exact search
replaces it for small batches where it would leave a row more than needed), each row's segments
at consecutive offsets; the rows are then split into compiled batch sizes like ``partition``.
The model needs a block-diagonal (segment) attention mask and positions that restart per
segment; the engine derives both from the segments' offsets.

Best fit runs in O(n log n): rows are kept by their free room (at most ``capacity + 1``
distinct values, a sorted list of them), so each sequence finds the fullest row it fits in by
bisection. ``fill_templates`` runs the same algorithm on a histogram of lengths, which is what
``auto`` prices for every row length without laying out 10,000 segments each time.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import Counter
from typing import Iterable, Sequence

from shapedemo.planning.edges import bucket_for
from shapedemo.planning.plan import Plan, Row, Segment
from shapedemo.planning.strategies.base import PlanArgs, shape_list
from shapedemo.planning.strategies.partition import objective_params, partition_rows
from shapedemo.shapes import Shape

EXACT_LIMIT = 12
"""Batches of at most this many sequences get an exact search for the fewest rows."""

Template = tuple[tuple[int, int], ...]
"""A row's content as ``((length, how many), ...)`` in placement order."""


def row_capacity(length: int, capacity: int, buckets: Sequence[int] | None) -> int:
    """The room of a row opened by a sequence of ``length``: ``capacity``, or the smallest
    bucket that fits a longer sequence (``auto`` packs rows shorter than its longest text)."""
    if length <= capacity or buckets is None:
        return capacity
    return bucket_for(length, buckets)


def best_fit_decreasing(
    lengths: Sequence[int], capacity: int, *, buckets: Sequence[int] | None = None
) -> list[Row]:
    """Rows of at most ``capacity`` tokens: longest sequence first (ties by request order), each
    into the row with the least room that still fits it, a new row when none does. Rows come in
    the order they were opened, segments in the order they were placed. Uses at most 11/9 of the
    optimal number of rows, plus one (like first fit decreasing, which it replaces: that one
    scanned every row for every sequence, quadratic).

    With ``buckets``, a sequence longer than ``capacity`` opens a row of its smallest bucket,
    which shorter sequences may then share.

    >>> rows = best_fit_decreasing([5, 3, 4, 2, 1], 8)
    >>> [[(s.seq, s.offset, s.length) for s in row] for row in rows]
    [[(0, 0, 5), (1, 5, 3)], [(2, 0, 4), (3, 4, 2), (4, 6, 1)]]
    >>> [[s.length for s in row] for row in best_fit_decreasing([30, 9, 6, 5], 16, buckets=[16, 32])]
    [[30], [9, 6], [5]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[Segment]] = []
    fill: list[int] = []
    by_room: dict[int, list[int]] = {}  # free room -> rows with exactly that room
    rooms: list[int] = []  # the keys of by_room, sorted
    for i in order:
        n = lengths[i]
        k = bisect_left(rooms, n)
        if k == len(rooms):
            r, room = len(rows), row_capacity(n, capacity, buckets)
            rows.append([])
            fill.append(0)
        else:
            room = rooms[k]
            stack = by_room[room]
            r = stack.pop()
            if not stack:
                del by_room[room], rooms[k]
        rows[r].append(Segment(i, fill[r], n))
        fill[r] += n
        left = room - n
        if left not in by_room:
            by_room[left] = []
            insort(rooms, left)
        by_room[left].append(r)
    return [tuple(row) for row in rows]


def fewest_rows(lengths: Sequence[int], capacity: int) -> list[list[int]] | None:
    """The sequence indices of each row in a packing with the fewest rows of ``capacity``, by
    exhaustive search with pruning (small inputs only), or None when best fit decreasing is
    already optimal: its row count equals ``ceil(sum / capacity)``, or the search finds no
    better one.

    >>> fewest_rows([6, 6, 5, 5, 4, 4], 15)   # best fit needs 3 rows: 6+6, 5+5+4, 4
    [[0, 2, 4], [1, 3, 5]]
    """
    n_rows = len(best_fit_decreasing(lengths, capacity))
    bound = -(-sum(lengths) // capacity)
    if n_rows == bound:
        return None
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    best: list[list[int]] | None = None
    limit = n_rows  # rows to beat
    rows: list[list[int]] = []
    fill: list[int] = []

    def place(k: int, left: int) -> bool:
        nonlocal best, limit
        if k == len(order):
            best, limit = [list(row) for row in rows], len(rows)
            return limit == bound
        free = sum(capacity - f for f in fill)
        if len(rows) + max(0, -(-(left - free) // capacity)) >= limit:
            return False
        i = order[k]
        n = lengths[i]
        tried = set()
        for r in range(len(rows)):
            if fill[r] + n <= capacity and fill[r] not in tried:
                tried.add(fill[r])
                rows[r].append(i)
                fill[r] += n
                done = place(k + 1, left - n)
                rows[r].pop()
                fill[r] -= n
                if done:
                    return True
        if len(rows) + 1 < limit:
            rows.append([i])
            fill.append(n)
            done = place(k + 1, left - n)
            rows.pop()
            fill.pop()
            return done
        return False

    place(0, sum(lengths))
    return best


def first_fit_order(rows: list[list[int]], lengths: Sequence[int], capacity: int) -> list[Row]:
    """``rows`` (sequence indices) moved towards first fit until no sequence fits an earlier row,
    longest first inside each row, as segments: the same invariant best fit decreasing keeps, so
    the rows read the same whichever packer made them. Never adds a row.

    >>> [[s.seq for s in row] for row in first_fit_order([[2], [0, 1]], [3, 4, 5], 9)]
    [[2, 1], [0]]
    """
    rows = [sorted(row, key=lambda i: (-lengths[i], i)) for row in rows]
    fill = [sum(lengths[i] for i in row) for row in rows]
    moved = True
    while moved:
        moved = False
        for r in range(1, len(rows)):
            for i in list(rows[r]):
                q = next((q for q in range(r) if fill[q] + lengths[i] <= capacity), None)
                if q is not None:
                    rows[r].remove(i)
                    rows[q].append(i)
                    fill[r] -= lengths[i]
                    fill[q] += lengths[i]
                    moved = True
    return [_segments(sorted(row, key=lambda i: (-lengths[i], i)), lengths) for row in rows if row]


def _segments(members: Iterable[int], lengths: Sequence[int]) -> Row:
    """Sequences at consecutive offsets from 0."""
    row, offset = [], 0
    for i in members:
        row.append(Segment(i, offset, lengths[i]))
        offset += lengths[i]
    return tuple(row)


def pack_rows(
    lengths: Sequence[int], capacity: int, *, buckets: Sequence[int] | None = None
) -> list[Row]:
    """Best fit decreasing; for at most ``EXACT_LIMIT`` sequences that all fit ``capacity``, the
    fewest rows by exact search where best fit leaves a row more than needed.

    >>> [[s.length for s in row] for row in pack_rows([6, 6, 5, 5, 4, 4], 15)]
    [[6, 5, 4], [6, 5, 4]]
    """
    rows = best_fit_decreasing(lengths, capacity, buckets=buckets)
    if (
        len(lengths) <= EXACT_LIMIT
        and max(lengths) <= capacity
        and len(rows) > -(-sum(lengths) // capacity)  # best fit is not already optimal
    ):
        exact = fewest_rows(lengths, capacity)
        if exact is not None:
            return first_fit_order(exact, lengths, capacity)
    return rows


def fill_templates(
    counts: Counter[int] | dict[int, int], capacity: int, *, buckets: Sequence[int] | None = None
) -> list[tuple[int, Template, int, int]]:
    """``best_fit_decreasing`` on a histogram ``{length: how many}``: rows as
    ``(room, template, how many such rows, content)``, ``room`` the row's capacity and
    ``content`` the tokens in such a row (what ``auto`` prices a row by). The same rows (as a
    multiset of contents) as the sequence-by-sequence packer, in O(distinct lengths x distinct
    row kinds) instead of O(n log n) with a segment per sequence.

    >>> fill_templates({5: 1, 3: 1, 4: 1, 2: 1, 1: 1}, 8)
    [(8, ((5, 1), (3, 1)), 1, 8), (8, ((4, 1), (2, 1), (1, 1)), 1, 7)]
    >>> fill_templates({10: 7}, 32)    # three per row: two full rows, one of one
    [(32, ((10, 3),), 2, 30), (32, ((10, 1),), 1, 10)]
    """
    # groups at one free room: [capacity, template, how many, content]; the last one is used first
    by_room: dict[int, list[list]] = {}
    rooms: list[int] = []

    def add(room: int, cap: int, template: Template, count: int) -> None:
        group = by_room.get(room)
        if group is None:
            by_room[room] = group = []
            insort(rooms, room)
        group.append([cap, template, count, cap - room])

    for n in sorted(counts, reverse=True):
        c = counts[n]
        while c > 0:
            k = bisect_left(rooms, n)
            if k == len(rooms):  # open rows: each takes as many as fit before the next opens
                cap = row_capacity(n, capacity, buckets)
                per_row = cap // n
                full, rest = divmod(c, per_row)
                if full:
                    add(cap - per_row * n, cap, ((n, per_row),), full)
                if rest:
                    add(cap - rest * n, cap, ((n, rest),), 1)
                break
            room = rooms[k]
            stack = by_room[room]
            group = stack[-1]
            cap, template, count, _ = group
            per_row = room // n  # best fit keeps filling one row while it stays the fullest
            full = min(count, c // per_row)
            used = full
            if full:
                add(room - per_row * n, cap, template + ((n, per_row),), full)
                c -= full * per_row
            if c and used < count:  # one more row takes what is left (fewer than per_row)
                add(room - c * n, cap, template + ((n, c),), 1)
                used += 1
                c = 0
            if used == count:
                stack.remove(group) if stack[-1] is not group else stack.pop()
                if not stack:
                    del by_room[room], rooms[bisect_left(rooms, room)]
            else:
                group[2] = count - used
    done = [(cap, template, count, content) for room in rooms for cap, template, count, content in by_room[room]]
    done.sort(key=lambda g: (g[3], g[1]), reverse=True)
    return done


def plan_packing(args: PlanArgs) -> Plan:
    """Rows of ``pack_seq`` packed by ``pack_rows``, partitioned with ``decompose``.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> p = plan_packing(resolve_args([12, 40, 8, 30, 5], max_seq=64))
    >>> [c.shape for c in p.calls], p.padding_fraction, p.packing_efficiency
    ([(2, 64)], 0.2578125, 1.0)
    """
    rows = pack_rows(args.lengths, args.pack_seq)
    calls = partition_rows(args, rows, args.pack_seq)
    return Plan(
        "packing",
        args.lengths,
        tuple(calls),
        packed=True,
        params={
            "pack_seq": args.pack_seq,
            "batch_sizes": list(args.batch_sizes),
            "max_seq": args.max_seq,
            "rows": len(rows),
            "chunks": [c.batch for c in calls],
            **objective_params(args, calls),
            "shape_set": shape_list((b, args.pack_seq) for b in args.batch_sizes),
        },
    )


def declare_packing(args: PlanArgs) -> frozenset[Shape]:
    """Every batch size at ``pack_seq``, on the packed graph."""
    return frozenset(Shape(b, args.pack_seq, packed=True) for b in args.batch_sizes)
