"""Buckets: several compiled sequence lengths at one batch size.

Each sequence goes to the smallest bucket that fits it; each bucket's group, request order kept,
is looped in chunks of ``max(batch_sizes)`` like ``padding``. Less padding than one ``max_seq``
shape, paid for with one compiled model per bucket.
"""

from __future__ import annotations

from typing import Callable, Sequence

from shapedemo.planning.edges import bucket_for
from shapedemo.planning.plan import Call, Plan, Row
from shapedemo.planning.strategies.base import PlanArgs, chunk_rows, one_per_row
from shapedemo.shapes import Shape


def group_by_bucket(
    lengths: Sequence[int], buckets: Sequence[int]
) -> dict[int, list[tuple[int, int]]]:
    """``(sequence index, length)`` per smallest fitting bucket; buckets ascending, request order
    kept inside each group. Empty buckets are left out.

    >>> group_by_bucket([12, 40, 8, 30], (16, 32, 64))
    {16: [(0, 12), (2, 8)], 32: [(3, 30)], 64: [(1, 40)]}
    """
    groups: dict[int, list[tuple[int, int]]] = {b: [] for b in buckets}
    for i, n in enumerate(lengths):
        groups[bucket_for(n, buckets)].append((i, n))
    return {b: members for b, members in groups.items() if members}


def bucket_calls(args: PlanArgs, lay_out: Callable[[list[Row], int], list[Call]]) -> list[Call]:
    """Each bucket's group, one sequence per row in request order, laid out in calls at that
    bucket by ``lay_out(rows, bucket)``; buckets ascending."""
    calls = []
    for bucket, members in group_by_bucket(args.lengths, args.seq_buckets).items():
        calls += lay_out(one_per_row(members), bucket)
    return calls


def plan_buckets(args: PlanArgs) -> Plan:
    """Shapes ``seq_buckets x max(batch_sizes)``; each bucket's group chunked like padding.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> p = plan_buckets(resolve_args([12, 40, 8, 30], seq_buckets=[16, 32, 64], batch_sizes=[2]))
    >>> [c.shape for c in p.calls]
    [(2, 16), (2, 32), (2, 64)]
    """
    batch = args.max_batch
    calls = bucket_calls(args, lambda rows, bucket: chunk_rows(rows, batch, bucket))
    return Plan(
        "buckets",
        args.lengths,
        tuple(calls),
        params={
            "seq_buckets": list(args.seq_buckets),
            "batch_size": batch,
            "max_seq": args.max_seq,
            "shape_set": [[batch, b] for b in args.seq_buckets],
        },
    )


def declare_buckets(args: PlanArgs) -> frozenset[Shape]:
    """Every bucket at the largest batch size."""
    return frozenset(Shape(args.max_batch, b) for b in args.seq_buckets)
