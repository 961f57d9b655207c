"""Partitioning: split a batch along the batch axis into compiled batch sizes (5 = 4 + 1).

``decompose`` is exact for any set of sizes (an unbounded-knapsack dynamic program, not greedy:
greedy pads 6 with {3, 4} to 4 + 4, the optimum is 3 + 3). ``partition`` runs every chunk at
``max_seq``; ``buckets-partition`` first groups sequences by length bucket, then partitions each
group. With a measured cost table both minimise predicted latency instead of padding rows.
"""

from __future__ import annotations

import math
import threading
from itertools import product
from typing import Callable, Iterable, Sequence

import numpy as np

from shapedemo.planning.edges import check_cost, positive_sizes
from shapedemo.planning.plan import Call, Plan, PlanError, Row
from shapedemo.planning.strategies.base import PlanArgs, calls_latency, fill_calls, one_per_row, shape_list
from shapedemo.planning.strategies.buckets import bucket_calls
from shapedemo.shapes import Shape


def decompose(
    n: int, batch_sizes: Iterable[int], *, cost: Callable[[int], float] | None = None
) -> list[int]:
    """Chunk sizes, largest first, drawn from ``batch_sizes`` (each any number of times), whose
    sum holds ``n`` rows.

    Without ``cost`` the objective is lexicographic: least padding rows (sum - n), then fewest
    calls. With ``cost`` (batch size -> predicted latency of one call) it is least total
    predicted latency, then fewest calls, then least padding; padding rows are allowed up to
    ``max(batch_sizes) - 1`` (more never pays: a whole chunk of padding could be dropped).

    >>> decompose(5, (1, 2, 4, 8))
    [4, 1]
    >>> decompose(7, (2, 4))           # one padding row
    [4, 4]
    >>> decompose(7, (1, 2, 4, 8))
    [4, 2, 1]
    >>> decompose(33, (1, 2, 4, 8, 16, 32))   # as OpenVINO's GPU plugin splits a dynamic batch
    [32, 1]
    >>> decompose(6, (3, 4))           # greedy would pad to 4 + 4
    [3, 3]
    >>> latency = {1: 10.0, 2: 12.0, 4: 15.0, 8: 20.0}
    >>> decompose(7, (1, 2, 4, 8), cost=latency.__getitem__)   # 20 ms beats 15 + 12 + 10
    [8]
    """
    if isinstance(n, bool) or not hasattr(n, "__index__") or n < 0:
        raise PlanError(f"number of rows must be a whole number >= 0, not {n!r}")
    return Chunks(batch_sizes, cost=cost).chunks(n)


class Chunks:
    """``decompose`` for one set of batch sizes and one cost, answering many ``n`` cheaply.

    An unbounded-knapsack dynamic program over totals, computed once up to ``T = b* x max``
    (``b*``: the size of least cost per row, ties to the larger). Beyond ``T`` an optimal
    decomposition always holds more ``b*`` chunks than it needs to cover ``n - T`` (fewer than
    ``b*`` chunks of other sizes can be in it: any ``b*`` of them hold a subset summing to a
    multiple of ``b*`` that ``b*`` chunks would replace at no more cost and no more calls), so
    ``chunks(n)`` is those ``b*`` chunks plus the table's answer: O(1) per ``n`` after the table,
    which grows only as far as the ``n`` asked for need.

    >>> c = Chunks((1, 2, 4, 8), cost=lambda b: 5.0 + b)
    >>> c.chunks(7), c.cost(7), c.chunks(10_001)[-3:], c.cost(10_001)
    ([8], 13.0, [8, 8, 1], 16256.0)
    """

    def __init__(self, batch_sizes: Iterable[int], *, cost: Callable[[int], float] | None = None):
        self.sizes = positive_sizes(batch_sizes, what="batch_sizes")
        self.costed = cost is not None
        self.weight = {
            s: 0.0 if cost is None else check_cost(cost(s), what=f"cost of batch {s}")
            for s in self.sizes
        }
        top = self.sizes[-1]
        self.step = min(self.sizes, key=lambda s: (self.weight[s] / s, -s))
        self.reach = self.step * top
        # best[t]: (cost, calls) of the cheapest chunks summing to exactly t; pick[t]: one chunk.
        # Grown on demand, never past reach + top.
        self._best: list[tuple[float, float]] = [(0.0, 0)]
        self._pick = [0]
        self._cover: dict[int, int] = {}
        self._costs: np.ndarray = np.zeros(1)  # cost_array's, grown on demand
        self._growing = threading.Lock()  # a table kept in a PlanMemo may be asked from two threads

    def _grow(self, limit: int) -> None:
        with self._growing:
            self._grow_to(limit)

    def _grow_to(self, limit: int) -> None:
        best, pick = self._best, self._pick
        for t in range(len(best), limit + 1):
            here, chunk = (math.inf, math.inf), 0
            for s in reversed(self.sizes):  # larger chunks first, so ties keep them
                if s <= t and best[t - s][1] != math.inf:
                    candidate = (best[t - s][0] + self.weight[s], best[t - s][1] + 1)
                    if candidate < here:
                        here, chunk = candidate, s
            best.append(here)
            pick.append(chunk)

    def _total(self, m: int) -> int:
        """The exact total (``m`` .. ``m + max - 1``) the best chunks for ``m`` rows sum to."""
        total = self._cover.get(m)
        if total is None:
            self._grow(m + self.sizes[-1] - 1)
            best = self._best

            def objective(t: int) -> tuple[float, ...]:
                cost_ms, calls = best[t]
                return (cost_ms, calls, t - m) if self.costed else (t - m, calls)

            reachable = (t for t in range(m, m + self.sizes[-1]) if best[t][1] != math.inf)
            total = self._cover[m] = min(reachable, key=objective)
        return total

    def _split(self, n: int) -> tuple[int, int]:
        """``(k, m)``: ``k`` chunks of ``step`` taken off, ``m = n - k * step`` left for the table."""
        if n <= self.reach:
            return 0, n
        k = -(-(n - self.reach) // self.step)
        return k, n - k * self.step

    def chunks(self, n: int) -> list[int]:
        """The chunk sizes for ``n`` rows, largest first (as ``decompose``)."""
        k, m = self._split(n)
        chunks, total = [self.step] * k, self._total(m) if m else 0
        while total:
            chunks.append(self._pick[total])
            total -= self._pick[total]
        return sorted(chunks, reverse=True)

    def rows(self, n: int) -> int:
        """The rows ``chunks(n)`` hold, padding rows included."""
        k, m = self._split(n)
        return k * self.step + (self._total(m) if m else 0)

    def cost_array(self, n: int) -> "np.ndarray":
        """``[cost(0), cost(1), ..., cost(n)]`` as an array (kept and grown, shared like the
        table; read-only)."""
        with self._growing:
            have = self._costs
        if len(have) <= n:
            grown = np.array([self.cost(k) for k in range(max(n + 1, 2 * len(have)))])
            grown.flags.writeable = False
            with self._growing:
                if len(self._costs) < len(grown):
                    self._costs = grown
                have = self._costs
        return have

    def cost(self, n: int) -> float:
        """The summed cost of ``chunks(n)`` (0 without a cost)."""
        k, m = self._split(n)
        return k * self.weight[self.step] + (self._best[self._total(m)][0] if m else 0.0)


def objective_params(args: PlanArgs, calls: list[Call]) -> dict[str, object]:
    """How the chunks were chosen, and with a cost table what the plan is predicted to take."""
    if args.cost_table is None:
        return {"objective": "padding"}
    return {"objective": "latency", "predicted_latency_ms": calls_latency(calls, args.cost_table)}


def partition_rows(args: PlanArgs, rows: Sequence[Row], seq: int) -> list[Call]:
    """``rows`` split into compiled batch sizes by ``decompose`` (least predicted latency when
    there is a cost table), every call at ``seq``; padding rows land in the last chunk."""
    chunks = decompose(len(rows), args.batch_sizes, cost=args.batch_cost(seq))
    return fill_calls(rows, chunks, seq)


def plan_partition(args: PlanArgs) -> Plan:
    """Every call at ``max_seq``; the batch split into compiled batch sizes by ``decompose``,
    filled in request order (any padding rows land in the last, smallest chunk).

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> [c.shape for c in plan_partition(resolve_args([12, 40, 8, 30, 5], max_seq=64)).calls]
    [(4, 64), (1, 64)]
    """
    calls = partition_rows(args, one_per_row(enumerate(args.lengths)), args.max_seq)
    return Plan(
        "partition",
        args.lengths,
        tuple(calls),
        params={
            "batch_sizes": list(args.batch_sizes),
            "max_seq": args.max_seq,
            "chunks": [c.batch for c in calls],
            **objective_params(args, calls),
            "shape_set": shape_list((b, args.max_seq) for b in args.batch_sizes),
        },
    )


def plan_buckets_partition(args: PlanArgs) -> Plan:
    """Buckets for length, then each bucket's group partitioned into compiled batch sizes.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> p = plan_buckets_partition(resolve_args([12, 40, 8, 30, 5], seq_buckets=[16, 64]))
    >>> [c.shape for c in p.calls]
    [(2, 16), (1, 16), (2, 64)]
    """
    calls = bucket_calls(args, lambda rows, bucket: partition_rows(args, rows, bucket))
    return Plan(
        "buckets-partition",
        args.lengths,
        tuple(calls),
        params={
            "seq_buckets": list(args.seq_buckets),
            "batch_sizes": list(args.batch_sizes),
            "max_seq": args.max_seq,
            **objective_params(args, calls),
            "shape_set": shape_list(product(args.batch_sizes, args.seq_buckets)),
        },
    )


def declare_partition(args: PlanArgs) -> frozenset[Shape]:
    """Every batch size at ``max_seq``."""
    return frozenset(Shape(b, args.max_seq) for b in args.batch_sizes)


def declare_buckets_partition(args: PlanArgs) -> frozenset[Shape]:
    """Every batch size at every bucket."""
    return frozenset(Shape(b, s) for b, s in product(args.batch_sizes, args.seq_buckets))
