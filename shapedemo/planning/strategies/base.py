"""What every strategy shares: checked arguments, filling chunks with rows, the cost table.

``one_per_row`` and ``fill_calls`` live in ``shapedemo.planning.plan`` (``single_row_call`` is built on
them) and are re-exported here for the strategies.

Strategies are functions ``PlanArgs -> Plan``. ``resolve_args`` checks and normalises what a
caller typed once (defaults, sorting, limits), so each strategy only lays out calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Mapping, Sequence

from shapedemo.planning.edges import (
    check_lengths,
    check_positive,
    positive_sizes,
    powers_of_two,
)
from shapedemo.planning.strategies.cost import CostModel, check_cost_table, fit_cost_model
from shapedemo.planning.strategies.memo import PlanMemo
from shapedemo.planning.plan import MAX_POSITIONS, Call, Plan, PlanError, Row, fill_calls, one_per_row
from shapedemo.shapes import DEFAULT_BATCH_SIZES, default_max_seq

CostTable = Mapping[tuple[int, int], float]
"""Measured latency in ms per compiled shape ``(batch, seq)``."""


@dataclass(frozen=True)
class PlanArgs:
    """Checked plan arguments: sizes sorted and deduplicated, every length fits every limit."""

    lengths: tuple[int, ...]
    seq_buckets: tuple[int, ...]
    batch_sizes: tuple[int, ...]
    max_seq: int
    pack_seq: int
    cost_table: dict[tuple[int, int], float] | None = None
    allow_packing: bool = True
    cost_model: CostModel | None = None
    memo: PlanMemo | None = field(default=None, compare=False, repr=False)
    """Tables kept across plans by the caller (``PlanMemo``); None keeps nothing."""

    @property
    def longest(self) -> int:
        return max(self.lengths)

    @property
    def max_batch(self) -> int:
        return self.batch_sizes[-1]

    def pricing(self) -> CostModel:
        """The cost model ``auto`` minimises: the measured table first (exact lookups), the
        fitted ``cost_model`` (or one fitted to the table) for shapes the table lacks, else
        computed token slots. With a ``memo``, the model made from a table is kept for the next
        plans with the same table and model: fitting it costs more than planning a small request."""
        if self.cost_table is None:
            return CostModel() if self.cost_model is None else self.cost_model
        if self.memo is None:
            return self._fit_pricing()
        model_key = None if self.cost_model is None else json.dumps(self.cost_model.to_dict(), sort_keys=True, default=str)
        return self.memo.keep("pricing", (model_key, tuple(sorted(self.cost_table.items()))), self._fit_pricing)

    def _fit_pricing(self) -> CostModel:
        assert self.cost_table is not None
        if self.cost_model is None:
            return fit_cost_model(self.cost_table)
        return replace(self.cost_model, table={**self.cost_model.table, **self.cost_table})

    def batch_cost(self, seq: int) -> Callable[[int], float] | None:
        """The cost table as ``batch -> ms`` at sequence length ``seq`` (None without a table).

        Every batch size must have its shape in the table: a gap would silently steer the plan.
        """
        if self.cost_table is None:
            return None
        costs = {b: latency_of(self.cost_table, (b, seq)) for b in self.batch_sizes}
        return costs.__getitem__


def resolve_args(
    lengths: Iterable[object],
    *,
    seq_buckets: Iterable[object] | None = None,
    batch_sizes: Iterable[object] | None = None,
    max_seq: object | None = None,
    cost_table: CostTable | None = None,
    pack_seq: object | None = None,
    allow_packing: bool = True,
    cost_model: CostModel | None = None,
    memo: PlanMemo | None = None,
) -> PlanArgs:
    """Check the caller's arguments and fill in defaults; raise ``PlanError`` with one line.

    >>> resolve_args([12, 40], max_seq=100).seq_buckets
    (16, 32, 64, 100)
    >>> resolve_args([12, 40], seq_buckets=[32])
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: the largest bucket 32 is shorter than the longest length 40
    """
    checked = check_lengths(lengths)
    # No cap at MAX_POSITIONS: a model with a longer position table may plan longer shapes; the
    # tokenizer and the engine hold each model to its own limit. Without max_seq, the default of
    # every front end (ShapeSet.resolve): the smallest of 128/256/384/512 that fits, raised to
    # the largest bucket of a typed list.
    if max_seq is None:
        top = default_max_seq(checked)
        if seq_buckets is not None:
            seq_buckets = positive_sizes(seq_buckets, what="seq_buckets")
            top = max(top, min(seq_buckets[-1], MAX_POSITIONS))
        if pack_seq is not None:
            top = max(top, min(check_positive(pack_seq, what="pack_seq"), MAX_POSITIONS))
    else:
        top = check_positive(max_seq, what="max_seq")
    longest = max(checked)
    if longest > top:
        where = checked.index(longest)
        raise PlanError(f"length {longest} (sequence {where}) is over max_seq {top}")
    if seq_buckets is None:
        buckets = powers_of_two(top)
    else:
        buckets = positive_sizes(seq_buckets, what="seq_buckets")
        if buckets[-1] > top:
            raise PlanError(f"bucket {buckets[-1]} is over max_seq {top}")
        if buckets[-1] < longest:
            raise PlanError(
                f"the largest bucket {buckets[-1]} is shorter than the longest length {longest}"
            )
    sizes = (
        DEFAULT_BATCH_SIZES
        if batch_sizes is None
        else positive_sizes(batch_sizes, what="batch_sizes")
    )
    pack = top if pack_seq is None else check_positive(pack_seq, what="pack_seq")
    if pack > top:
        raise PlanError(f"pack_seq {pack} is over max_seq {top}")
    if pack < longest:
        raise PlanError(f"pack_seq {pack} is shorter than the longest length {longest}")
    table = None if cost_table is None else check_cost_table(cost_table)
    if cost_model is not None and not isinstance(cost_model, CostModel):
        raise PlanError(f"cost_model must be a CostModel, not {type(cost_model).__name__}")
    return PlanArgs(checked, buckets, sizes, top, pack, table, bool(allow_packing), cost_model, memo)


def latency_of(cost_table: CostTable, shape: tuple[int, int]) -> float:
    """The table's latency for ``shape``, or a ``PlanError`` naming the missing shape."""
    try:
        return cost_table[shape]
    except KeyError:
        raise PlanError(
            f"cost table has no latency for compiled shape {shape[0]} x {shape[1]}"
        ) from None


def calls_latency(calls: Iterable[Call], cost_table: CostTable) -> float:
    """Summed table latency of ``calls`` run one after another (ms)."""
    return sum(latency_of(cost_table, call.shape) for call in calls)


def predicted_latency(plan: Plan, cost_table: CostTable) -> float:
    """The plan's predicted latency in ms: its calls' table latencies summed, as if run one after
    another (concurrent calls can finish sooner). A call shape missing from the table is a
    ``PlanError`` naming it.

    >>> from shapedemo.planning.strategies import make_plan
    >>> predicted_latency(make_plan("partition", [9] * 5, max_seq=16), {(4, 16): 3.0, (1, 16): 1.5})
    4.5
    """
    return calls_latency(plan.calls, cost_table)


def chunk_rows(rows: Sequence[Row], batch: int, seq: int) -> list[Call]:
    """``rows`` looped in chunks of one ``batch`` at ``seq``, the short last chunk padded.

    >>> [c.padding_rows for c in chunk_rows(one_per_row([(0, 5)] * 5), 4, 8)]
    [0, 3]
    """
    return fill_calls(rows, [batch] * -(-len(rows) // batch), seq)


def shape_list(shapes: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Shapes as sorted ``[batch, seq]`` lists, for ``plan.params`` (JSON)."""
    return [list(s) for s in sorted(set(shapes))]
