"""Strategies: each turns sequence lengths into a ``Plan``, without OpenVINO.

``make_plan(name, lengths, ...)`` is the one entry point; ``STRATEGY_NAMES`` (ordered) and
``DESCRIPTIONS`` are what the UI and the CLI list. Names are a contract: never rename one.
``declare(name, shapes)`` is the exact set of compiled models a strategy may call for any
request on ``shapes`` (a ``ShapeSet``): what ``serve`` and the live-traffic view compile up front.

>>> plan = make_plan("partition", [12, 40, 7, 30, 9], max_seq=64)
>>> [c.shape for c in plan.calls], plan.params["chunks"]
([(4, 64), (1, 64)], [4, 1])
>>> make_plan("bucket", [12])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
shapedemo.planning.plan.PlanError: unknown strategy 'bucket'; known: dynamic, dynamic-single, padding, ...
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterable

from shapedemo.planning.plan import MAX_POSITIONS, Plan, PlanError
from shapedemo.planning.strategies.base import (
    CostTable,
    PlanArgs,
    predicted_latency,
    resolve_args,
)
from shapedemo.planning.strategies.auto import declare_auto, plan_auto
from shapedemo.planning.strategies.buckets import declare_buckets, plan_buckets
from shapedemo.planning.strategies.cost import CostModel, fit_cost_model
from shapedemo.planning.strategies.memo import PlanMemo
from shapedemo.planning.strategies.dynamic import (
    declare_dynamic,
    declare_dynamic_bounded,
    plan_dynamic,
    plan_dynamic_bounded,
    plan_dynamic_single,
)
from shapedemo.planning.strategies.packing import declare_packing, plan_packing
from shapedemo.planning.strategies.padding import declare_padding, plan_padding, plan_padding_nomask
from shapedemo.planning.strategies.partition import (
    decompose,
    declare_buckets_partition,
    declare_partition,
    plan_buckets_partition,
    plan_partition,
)
from shapedemo.shapes import DEFAULT_BATCH_SIZES, Shape, ShapeSet

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "DESCRIPTIONS",
    "MAX_POSITIONS",
    "STRATEGY_NAMES",
    "CostModel",
    "CostTable",
    "PlanError",
    "declare",
    "decompose",
    "fit_cost_model",
    "make_plan",
    "predicted_latency",
]

Builder = Callable[[PlanArgs], Plan]
Declare = Callable[[PlanArgs], frozenset[Shape]]

_DECLARED: dict[str, Declare] = {
    "dynamic": declare_dynamic,
    "dynamic-single": declare_dynamic,
    "padding": declare_padding,
    "padding-nomask": declare_padding,
    "buckets": declare_buckets,
    "partition": declare_partition,
    "buckets-partition": declare_buckets_partition,
    "packing": declare_packing,
    "dynamic-bounded": declare_dynamic_bounded,
    "auto": declare_auto,
}
"""Each strategy's compiled set (a strategy without one here is refused at import)."""

_REGISTRY: dict[str, tuple[Builder, str]] = {
    "dynamic": (
        plan_dynamic,
        "One model with dynamic shapes runs the whole batch in one call, padded only to its "
        "longest sequence. Costs fewer graph optimizations and shape inference on every call.",
    ),
    "dynamic-single": (
        plan_dynamic_single,
        "The dynamic model runs each sequence alone at its own length, so nothing is padded. "
        "Costs one call per sequence: no batching.",
    ),
    "padding": (
        plan_padding,
        "One static shape (largest batch size x max_seq); every sequence is padded to it and "
        "the attention mask hides the pad. Costs compute on pad tokens, worst for short texts.",
    ),
    "padding-nomask": (
        plan_padding_nomask,
        "The same padded calls with the attention mask left out. Saves nothing: the pad tokens "
        "leak into the outputs, which shows what the mask is for.",
    ),
    "buckets": (
        plan_buckets,
        "Several compiled sequence lengths (buckets) at one batch size; each sequence goes to "
        "the smallest bucket that fits. Costs compile time and memory for every bucket.",
    ),
    "partition": (
        plan_partition,
        "One max_seq length at several batch sizes; the batch is split into compiled batch "
        "sizes (5 = 4 + 1). Costs more calls, each still padded to max_seq.",
    ),
    "buckets-partition": (
        plan_buckets_partition,
        "Buckets for length, then each bucket's group split into compiled batch sizes. Least "
        "padding of the static plans; costs a compiled shape per bucket and batch size.",
    ),
    "packing": (
        plan_packing,
        "Short sequences share a row back to back, with a block-diagonal mask and positions "
        "restarting per sequence; rows are split into batch sizes. Costs a graph with position "
        "ids and a segment mask, and bin-packing on the host.",
    ),
    "dynamic-bounded": (
        plan_dynamic_bounded,
        "One model with bounded dynamic dims (1..largest batch size, 1..max_seq), which some "
        "static-only devices accept; chunks of up to that batch, each padded to its longest.",
    ),
    "auto": (
        plan_auto,
        "Per request, the layout of least predicted cost: buckets and batch sizes, packing into "
        "rows of any bucket, mixed, or (where the device has a dynamic model) one dynamic call. "
        "Needs a cost model (measured, fitted or token slots).",
    ),
}

STRATEGY_NAMES: tuple[str, ...] = tuple(_REGISTRY)
DESCRIPTIONS: dict[str, str] = {name: text for name, (_, text) in _REGISTRY.items()}
assert set(_DECLARED) == set(_REGISTRY), "every strategy declares its compiled set"


def _strategy(name: str) -> Builder:
    entry = _REGISTRY.get(name)
    if entry is None:
        raise PlanError(f"unknown strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}")
    return entry[0]


def declare(name: str, shapes: ShapeSet, *, allow_packing: bool = True) -> ShapeSet:
    """``shapes`` (resolved) with ``compiled`` set to every model strategy ``name`` may call for
    any request that fits them: the plan of any request runs only on these. No request is planned.

    >>> s = declare("auto", ShapeSet((32, 64), (1, 2), 64))
    >>> s.plain, s.packed
    ([(1, 32), (1, 64), (2, 32), (2, 64)], [(1, 32), (1, 64), (2, 32), (2, 64)])
    >>> [x.label for x in declare("dynamic-bounded", ShapeSet((64,), (1, 8), 64)).shapes()]
    ['bounded 1..8 x 1..64']
    """
    _strategy(name)
    options = shapes.plan_options()
    args = resolve_args([1], **options, allow_packing=allow_packing)
    return replace(shapes, compiled=_DECLARED[name](args))


def make_plan(
    name: str,
    lengths: Iterable[int],
    *,
    seq_buckets: Iterable[int] | None = None,
    batch_sizes: Iterable[int] | None = None,
    max_seq: int | None = None,
    cost_table: CostTable | None = None,
    pack_seq: int | None = None,
    allow_packing: bool = True,
    cost_model: CostModel | None = None,
    memo: PlanMemo | None = None,
) -> Plan:
    """The plan of strategy ``name`` for ``lengths`` (request order), checked by ``validate``.

    Defaults (``shapedemo.shapes``, the same as every front end's): ``batch_sizes`` (1, 2, 4, 8),
    ``max_seq`` the smallest of 128/256/384/512 that fits the longest length, raised to the
    largest of ``seq_buckets``, ``seq_buckets`` powers of two from 16 up to ``max_seq``,
    ``pack_seq`` ``max_seq``. Size lists are sorted and
    deduplicated. ``cost_table`` (ms per compiled shape) makes the partitioning strategies
    minimise predicted latency. Bad arguments raise ``PlanError`` with one line for the user.

    ``auto`` only: ``allow_packing=False`` for a model without a packed graph; ``cost_model`` (a
    ``CostModel``, e.g. from ``fit_cost_model``) prices the shapes ``cost_table`` lacks (without
    either, auto minimises computed token slots). ``auto`` ignores ``pack_seq``: its packing
    rows are the sequence buckets. ``memo`` (a ``PlanMemo``, the session's) keeps fitted prices
    and chunk tables for the next plans; the plan is the same without it.
    """
    builder = _strategy(name)
    args = resolve_args(
        lengths,
        seq_buckets=seq_buckets,
        batch_sizes=batch_sizes,
        max_seq=max_seq,
        cost_table=cost_table,
        pack_seq=pack_seq,
        allow_packing=allow_packing,
        cost_model=cost_model,
        memo=memo,
    )
    plan = builder(args)
    plan.validate()
    return plan
