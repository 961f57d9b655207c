"""Native dynamic shapes: the baseline every static strategy is compared with.

No static shape is compiled; the calls run on one model whose batch and sequence axes are
dynamic, so the plans are ``dynamic=True`` and their ``compiled_shapes`` are empty.
``dynamic-bounded`` is the middle ground: the model's dims are bounded (``[1..B, 1..max_seq]``,
OpenVINO's ``Dimension(1, n)``), which some static-only devices accept where ``-1`` fails; the
engine compiles such a model when a dynamic plan carries ``params["bounds"]``.
"""

from __future__ import annotations

from shapedemo.planning.plan import Call, Plan, Row
from shapedemo.shapes import Shape
from shapedemo.planning.strategies.base import PlanArgs, one_per_row


def plan_dynamic(args: PlanArgs) -> Plan:
    """The whole batch in one call of shape ``(n, longest)``: a ragged batch is still padded to
    its longest sequence, but never further.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> p = plan_dynamic(resolve_args([12, 40, 8]))
    >>> p.call_shapes, p.compiled_shapes, p.padding_fraction
    ([(3, 40)], [], 0.5)
    """
    call = _longest_call(one_per_row(enumerate(args.lengths)))
    return Plan("dynamic", args.lengths, (call,), dynamic=True, params={"max_seq": args.max_seq})


def plan_dynamic_single(args: PlanArgs) -> Plan:
    """One call per sequence at its own length ``(1, len)``: no padding at all, no batching.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> plan_dynamic_single(resolve_args([12, 40, 8])).call_shapes
    [(1, 8), (1, 12), (1, 40)]
    """
    calls = tuple(Call(1, row[0].length, (row,)) for row in one_per_row(enumerate(args.lengths)))
    return Plan(
        "dynamic-single", args.lengths, calls, dynamic=True, params={"max_seq": args.max_seq}
    )


def plan_dynamic_bounded(args: PlanArgs) -> Plan:
    """Like ``dynamic`` on a model bounded to ``[1..B, 1..max_seq]``, ``B = max(batch_sizes)``: up
    to ``B`` sequences are one call padded to their longest; a larger request is split in request
    order into chunks of ``B``, each padded to its own longest.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> p = plan_dynamic_bounded(resolve_args([12, 40, 8, 30, 5], batch_sizes=[1, 2], max_seq=64))
    >>> p.call_shapes, p.params["bounds"], p.dynamic
    ([(1, 5), (2, 30), (2, 40)], [2, 64], True)
    """
    bound = args.max_batch
    rows = one_per_row(enumerate(args.lengths))
    calls = tuple(_longest_call(rows[i : i + bound]) for i in range(0, len(rows), bound))
    return Plan(
        "dynamic-bounded",
        args.lengths,
        calls,
        dynamic=True,
        params={
            "bounds": [bound, args.max_seq],
            "max_seq": args.max_seq,
            "chunks": [c.batch for c in calls],
        },
    )


def _longest_call(rows: list[Row]) -> Call:
    """One dynamic call holding ``rows`` (one sequence each), padded to the longest."""
    return Call(len(rows), max(row[0].length for row in rows), tuple(rows))


def declare_dynamic(args: PlanArgs) -> frozenset[Shape]:
    """``dynamic`` and ``dynamic-single`` call the one dynamic model."""
    return frozenset({Shape.dynamic_model()})


def declare_dynamic_bounded(args: PlanArgs) -> frozenset[Shape]:
    """The dynamic model bounded to ``[1..max batch size, 1..max_seq]``."""
    return frozenset({Shape.dynamic_model((args.max_batch, args.max_seq))})
