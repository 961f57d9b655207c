"""Native dynamic shapes: the baseline every static strategy is compared with.

No static shape is compiled; the calls run on one model whose batch and sequence axes are
dynamic, so the plans are ``dynamic=True`` and their ``compiled_shapes`` are empty.
"""

from __future__ import annotations

from shapedemo.plan import Call, Plan
from shapedemo.strategies.base import PlanArgs, one_per_row


def plan_dynamic(args: PlanArgs) -> Plan:
    """The whole batch in one call of shape ``(n, longest)``: a ragged batch is still padded to
    its longest sequence, but never further.

    >>> from shapedemo.strategies.base import resolve_args
    >>> p = plan_dynamic(resolve_args([12, 40, 8]))
    >>> p.call_shapes, p.compiled_shapes, p.padding_fraction
    ([(3, 40)], [], 0.5)
    """
    rows = one_per_row(enumerate(args.lengths))
    call = Call(len(rows), args.longest, tuple(rows))
    return Plan("dynamic", args.lengths, (call,), dynamic=True, params={"max_seq": args.max_seq})


def plan_dynamic_single(args: PlanArgs) -> Plan:
    """One call per sequence at its own length ``(1, len)``: no padding at all, no batching.

    >>> from shapedemo.strategies.base import resolve_args
    >>> plan_dynamic_single(resolve_args([12, 40, 8])).call_shapes
    [(1, 8), (1, 12), (1, 40)]
    """
    calls = tuple(Call(1, row[0].length, (row,)) for row in one_per_row(enumerate(args.lengths)))
    return Plan(
        "dynamic-single", args.lengths, calls, dynamic=True, params={"max_seq": args.max_seq}
    )
