"""Packing (beyond the guide): several short sequences share one row.

Sequences are bin-packed into rows of ``pack_seq`` tokens by first-fit decreasing, each row's
segments at consecutive offsets; the rows are then split into compiled batch sizes like
``partition``. The model needs a block-diagonal (segment) attention mask and positions that
restart per segment; the engine derives both from the segments' offsets.
"""

from __future__ import annotations

from typing import Sequence

from shapedemo.plan import Plan, Row, Segment
from shapedemo.strategies.base import PlanArgs, shape_list
from shapedemo.strategies.partition import objective_params, partition_rows


def first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[Row]:
    """Rows of at most ``capacity`` tokens: longest sequence first, each into the first row with
    room (ties by request order). Uses at most 11/9 of the optimal number of rows, plus one.

    >>> rows = first_fit_decreasing([5, 3, 4, 2, 1], 8)
    >>> [[(s.seq, s.offset, s.length) for s in row] for row in rows]
    [[(0, 0, 5), (1, 5, 3)], [(2, 0, 4), (3, 4, 2), (4, 6, 1)]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[Segment]] = []
    used: list[int] = []
    for i in order:
        n = lengths[i]
        for r, filled in enumerate(used):
            if filled + n <= capacity:
                rows[r].append(Segment(i, filled, n))
                used[r] += n
                break
        else:
            rows.append([Segment(i, 0, n)])
            used.append(n)
    return [tuple(row) for row in rows]


def plan_packing(args: PlanArgs) -> Plan:
    """Rows of ``pack_seq`` packed by first-fit decreasing, partitioned with ``decompose``.

    >>> from shapedemo.strategies.base import resolve_args
    >>> p = plan_packing(resolve_args([12, 40, 8, 30, 5], max_seq=64))
    >>> [c.shape for c in p.calls], p.padding_fraction
    ([(2, 64)], 0.2578125)
    """
    rows = first_fit_decreasing(args.lengths, args.pack_seq)
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
