"""Padding: one compiled shape, the largest batch size at ``max_seq``, for every input.

The simplest static plan and the most wasteful: every sequence is padded to ``max_seq`` and the
batch is looped in chunks of one batch size, the short last chunk filled with padding rows. The
``padding-nomask`` variant drops the attention mask to show what the mask is for.
"""

from __future__ import annotations

from shapedemo.planning.plan import Plan
from shapedemo.planning.strategies.base import PlanArgs, chunk_rows, one_per_row
from shapedemo.shapes import Shape


def plan_padding(args: PlanArgs, *, masked: bool = True) -> Plan:
    """Chunks of ``max(batch_sizes)`` sequences in request order, each call at ``max_seq``.

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> p = plan_padding(resolve_args([12, 40, 8, 30, 5], batch_sizes=[4], max_seq=64))
    >>> [c.shape for c in p.calls], [c.padding_rows for c in p.calls]
    ([(4, 64), (4, 64)], [0, 3])
    """
    batch = args.max_batch
    calls = chunk_rows(one_per_row(enumerate(args.lengths)), batch, args.max_seq)
    return Plan(
        "padding" if masked else "padding-nomask",
        args.lengths,
        tuple(calls),
        masked=masked,
        params={
            "batch_size": batch,
            "max_seq": args.max_seq,
            "shape_set": [[batch, args.max_seq]],
        },
    )


def plan_padding_nomask(args: PlanArgs) -> Plan:
    """The ``padding`` plan with ``masked=False``: the model sees the pad tokens as text."""
    return plan_padding(args, masked=False)


def declare_padding(args: PlanArgs) -> frozenset[Shape]:
    """One shape: the largest batch size at ``max_seq``."""
    return frozenset({Shape(args.max_batch, args.max_seq)})
