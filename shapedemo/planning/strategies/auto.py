"""Auto: for the shapes one can afford to compile, run each request the cheapest way.

Given sequence buckets x batch sizes (each compiled for the plain graph and, where the model has
one, the packed graph) and a ``CostModel``, ``auto`` prices candidate layouts by arithmetic and
builds only the winner:

- **plain**: one sequence per row, each row in a bucket, each bucket's rows split into batch
  sizes. Sequences start in their smallest bucket and may move up (a few texts of 30 tokens
  riding in a 64-token call that has room beats a call of their own); see ``assign``.
- **packed, rows of L** for every bucket L: sequences packed by best fit decreasing into rows of
  L tokens (a longer sequence opens a row of its own bucket, which shorter ones may share); each
  row then runs in the smallest bucket its content fits, and the rows are assigned and split
  like plain rows. A row of one sequence is a valid packed row, so this mixes packing and
  bucketing within one request. The whole plan then runs on the packed graph.
- **dynamic**, where the cost model prices the dynamic model (``CostModel.dynamic``: a device
  that compiles it, outside static-only mode): the request as one call padded to its longest
  text, at that text's own length. It wins where padding to a bucket costs more than the dynamic
  model's own overhead: a lone text, or a few of about one length, at f32.

The plan's ``params`` say why (``why``, a sentence the page can show) and what the alternatives
were predicted to cost (``alternatives``). Plan-making is linear in the request after a sort:
candidates are priced on histograms of lengths, never laid out.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from itertools import product
from typing import Sequence

import numpy as np

from shapedemo.planning.edges import bucket_for
from shapedemo.planning.plan import Call, Plan, Row, Segment, fill_calls, one_per_row
from shapedemo.planning.strategies.base import PlanArgs, shape_list
from shapedemo.planning.strategies.cost import CostModel
from shapedemo.planning.strategies.memo import PlanMemo
from shapedemo.planning.strategies.packing import EXACT_LIMIT, fill_templates, pack_rows
from shapedemo.planning.strategies.partition import Chunks
from shapedemo.shapes import Shape

__all__ = ["AutoPlanner", "Choice", "declare_auto", "plan_auto"]

PROMOTE_LIMIT = 31
"""At most this many rows (and fewer than the largest batch size) move up past one bucket edge."""

VECTOR_ROWS = 12
"""From this many rows on, ``assign`` works on arrays (below it, numpy's per-call overhead costs
more than the few states it would save)."""

ASSIGN_LIMIT = 4096
"""``assign`` keeps this many answers per planner, by rows per bucket (it starts over when full):
a request of 32 paragraphs has a few hundred likely ways to fall into 4 buckets, so most of its
candidate layouts are priced in a lookup instead of a dynamic programme."""

KEPT_PLAN_TEXTS = 2
"""``plan_auto`` keeps the plans of requests of at most this many texts in the memo, by lengths:
a lone text is planned in a lookup (plans are frozen; the same plan either way)."""

PLAIN = "buckets + partition"
DYNAMIC = "one dynamic call"


@dataclass(frozen=True)
class Choice:
    """A priced layout: ``rows[j]`` rows run at ``buckets[j]``, for ``cost`` in the model's unit.

    ``row_length`` is None for the plain layout, else the packing row length L.
    ``slots`` counts computed token slots (padding rows included).
    """

    name: str
    packed: bool
    row_length: int | None
    buckets: tuple[int, ...]
    rows: tuple[int, ...]
    cost: float
    slots: int
    named: int | None = None
    """The row length in ``name`` (it may be longer than ``row_length`` when rows coincide)."""
    dynamic: bool = False
    """One call on the dynamic model (``buckets`` and ``rows`` empty)."""


class AutoPlanner:
    """Prices and builds ``auto`` plans for one set of shapes and one cost model.

    Keep one per configuration when planning many requests (its chunk tables grow once); a
    ``memo`` keeps the chunk tables across planners too.

    >>> planner = AutoPlanner((16, 64), (1, 2, 4), CostModel({(b, s): 5.0 + b * s / 16 for b in (1, 2, 4) for s in (16, 64)}))
    >>> best, others = planner.choose([12, 40, 7, 30, 9])
    >>> best.name, best.rows, best.cost, [(c.name, c.cost) for c in others]
    ('packed rows of 64', (0, 2), 13.0, [('buckets + partition', 22.0)])
    """

    def __init__(
        self,
        buckets: Sequence[int],
        batch_sizes: Sequence[int],
        model: CostModel,
        *,
        allow_packing: bool = True,
        memo: PlanMemo | None = None,
    ):
        self.buckets = tuple(buckets)
        self.memo = memo
        self.batch_sizes = tuple(batch_sizes)
        self.model = model
        self.allow_packing = allow_packing
        self._chunks: dict[tuple[int, bool], Chunks] = {}
        self._assigned: dict[tuple[tuple[int, ...], bool], tuple[float, tuple[int, ...]]] = {}
        self._templates: dict[tuple[int, tuple[tuple[int, int], ...]], list] = {}  # fill_templates by (row length, histogram)
        self.shape_set = [tuple(x) for x in shape_list(product(self.batch_sizes, self.buckets))]

    def chunks(self, seq: int, packed: bool) -> Chunks:
        key = (seq, packed)
        if key not in self._chunks:
            price = self.model.price
            weights = tuple(price(b, seq, packed=packed) for b in self.batch_sizes)
            table = dict(zip(self.batch_sizes, weights))
            make = lambda: Chunks(self.batch_sizes, cost=table.__getitem__)  # noqa: E731
            self._chunks[key] = make() if self.memo is None else self.memo.keep("chunks", (self.batch_sizes, weights), make)
        return self._chunks[key]

    def by_bucket(self, counts: Counter[int] | dict[int, int]) -> list[int]:
        """How many of the items ``{length: count}`` have each bucket as their smallest."""
        per = dict.fromkeys(self.buckets, 0)
        for n, c in counts.items():
            per[bucket_for(n, self.buckets)] += c
        return [per[b] for b in self.buckets]

    def assign(self, counts: list[int], packed: bool) -> tuple[float, tuple[int, ...]]:
        """The least cost of running ``counts[j]`` rows that need bucket ``j`` (or any larger),
        and how many rows each bucket then runs.

        Exact over the layouts where fewer than ``min(max batch, PROMOTE_LIMIT + 1)`` rows
        cross each bucket edge upwards (dynamic programming over buckets, the state being the
        rows carried up), and every layout of all rows in one bucket (which is what
        ``partition`` and ``padding`` do) is tried too. Moving more rows up would be a whole
        call's worth: it can pay only when a longer call costs less than a shorter one.

        A few rows go through the states one by one; more (``VECTOR_ROWS``) as arrays, each
        bucket one (carried x moved) table: the same sums, the same ties (the fewest rows
        carried in, then the fewest moved on), in a fraction of the time. Answers are kept by
        ``counts`` (at most ``ASSIGN_LIMIT``): the same counts are then priced in a lookup.
        """
        key = (tuple(counts), packed)
        known = self._assigned.get(key)
        if known is None:
            known = self._assign(counts, packed)
            if len(self._assigned) >= ASSIGN_LIMIT:
                self._assigned.clear()
            self._assigned[key] = known
        return known

    def _assign(self, counts: list[int], packed: bool) -> tuple[float, tuple[int, ...]]:
        """``assign`` worked out."""
        total_rows = sum(counts)
        if total_rows == 1:  # a lone row: the cheapest bucket it fits, ties to the smallest (as below)
            first = next(j for j, c in enumerate(counts) if c)
            best = min(range(first, len(counts)), key=lambda j: (self.chunks(self.buckets[j], packed).cost(1), j))
            return self.chunks(self.buckets[best], packed).cost(1), tuple(int(j == best) for j in range(len(counts)))
        limit = min(self.batch_sizes[-1] - 1, PROMOTE_LIMIT, total_rows)
        if total_rows >= VECTOR_ROWS:
            best_cost, best_rows = self._carry_arrays(counts, packed, limit)
        else:
            best_cost, best_rows = self._carry_states(counts, packed, limit)
        last = len(counts) - 1
        while last > 0 and counts[last] == 0:
            last -= 1  # buckets above the last one needed only take rows moved up
        for j in range(last, len(counts)):  # everything in one bucket
            cost = self.chunks(self.buckets[j], packed).cost(total_rows)
            if cost < best_cost:
                best_cost = cost
                best_rows = tuple(total_rows if i == j else 0 for i in range(len(counts)))
        return best_cost, best_rows

    def _carry_states(self, counts: list[int], packed: bool, limit: int) -> tuple[float, tuple[int, ...]]:
        """``assign``'s dynamic programme, state by state."""
        states: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
        for j, count in enumerate(counts):
            nxt: dict[int, tuple[float, tuple[int, ...]]] = {}
            chunks = self.chunks(self.buckets[j], packed)  # fetched per bucket as rows land there
            for carried, (cost, rows) in states.items():
                here = count + carried
                up = 0 if j == len(counts) - 1 else min(here, limit)
                for moved in range(up + 1):
                    stay = here - moved
                    total = cost + (chunks.cost(stay) if stay else 0.0)
                    if moved not in nxt or total < nxt[moved][0]:
                        nxt[moved] = (total, rows + (stay,))
            states = nxt
        return states[0]

    def _carry_arrays(self, counts: list[int], packed: bool, limit: int) -> tuple[float, tuple[int, ...]]:
        """``assign``'s dynamic programme, one array per bucket: ``table[c, m]`` the cost with
        ``c`` rows carried in and ``m`` moved on; the least per ``m``, its ``c`` kept to trace
        the rows back."""
        costs = np.zeros(1)  # by rows carried in: none yet
        backs = []
        last = len(counts) - 1
        for j, count in enumerate(counts):
            carried = np.arange(len(costs))
            moved = np.arange(1 if j == last else min(limit, count + len(costs) - 1) + 1)
            stay = (count + carried)[:, None] - moved[None, :]
            price = self.chunks(self.buckets[j], packed).cost_array(count + len(costs) - 1)
            table = np.where(stay >= 0, costs[:, None] + price[np.maximum(stay, 0)], np.inf)
            back = table.argmin(axis=0)  # the first least: the fewest rows carried in
            costs = table[back, moved]
            backs.append(back)
        rows, on = [], 0
        for j in range(last, -1, -1):
            came = int(backs[j][on])
            rows.append(counts[j] + came - on)
            on = came
        return float(costs[0]), tuple(reversed(rows))

    def _choice(
        self, name: str, packed: bool, length: int | None, counts: Counter[int]
    ) -> Choice:
        cost, rows = self.assign(self.by_bucket(counts), packed)
        slots = sum(
            s * self.chunks(s, packed).rows(n) for s, n in zip(self.buckets, rows) if n
        )
        named = length if length is not None and max(counts, default=0) <= length else None
        return Choice(name, packed, length, self.buckets, rows, cost, slots, named)

    def choose(self, lengths: Sequence[int]) -> tuple[Choice, list[Choice]]:
        """The cheapest layout for ``lengths`` and the others priced, cheapest first (ties go
        to the plain graph, then to shorter packing rows, the dynamic call last)."""
        hist = Counter(lengths)
        self._templates = {}  # only ``build`` of this request reads them again (a kept planner must not grow)
        candidates = [self._choice(PLAIN, False, None, hist)]
        if self.allow_packing:
            seen: dict[tuple[tuple[int, int], ...], int] = {}
            for length in self.buckets:
                contents = self.row_contents(lengths, hist, length)
                key = tuple(sorted(contents.items()))
                if key in seen:  # the same rows: named by the first row length they all fit
                    i = seen[key]
                    if max(contents) <= length and max(contents) > (candidates[i].named or 0):
                        candidates[i] = replace(candidates[i], name=f"packed rows of {length}", named=length)
                    continue
                seen[key] = len(candidates)
                candidates.append(self._choice(f"packed rows of {length}", True, length, contents))
        if self.model.dynamic and len(lengths) <= self.batch_sizes[-1]:  # last: ties stay static
            n, longest = len(lengths), max(lengths)
            cost = self.model.price_dynamic(n, longest)
            candidates.append(Choice(DYNAMIC, False, None, (), (), cost, n * longest, dynamic=True))
        order = sorted(range(len(candidates)), key=lambda i: (candidates[i].cost, i))
        return candidates[order[0]], [candidates[i] for i in order[1:]]

    def row_contents(
        self, lengths: Sequence[int], hist: Counter[int], length: int
    ) -> Counter[int]:
        """``{tokens in a row: how many rows}`` when ``lengths`` are packed into rows of
        ``length`` (exactly as ``packed_rows`` will lay them out)."""
        total = sum(lengths)
        if total <= length or len(lengths) == 1:  # one row, whichever packer lays it out
            return Counter({total: 1})
        if len(lengths) <= EXACT_LIMIT:
            rows = pack_rows(lengths, length, buckets=self.buckets)
            return Counter(sum(s.length for s in row) for row in rows)
        contents: Counter[int] = Counter()
        for _, _, count, content in self._fill(hist, length):
            contents[content] += count
        return contents

    def _fill(self, hist: Counter[int], length: int) -> list:
        """``fill_templates`` of ``hist`` into rows of ``length``, kept for this request:
        ``build`` lays out the rows ``choose`` priced without packing them again."""
        key = (length, tuple(sorted(hist.items())))
        if key not in self._templates:
            self._templates[key] = fill_templates(hist, length, buckets=self.buckets)
        return self._templates[key]

    def packed_rows(self, lengths: Sequence[int], length: int) -> list[Row]:
        """The rows of a packing into rows of ``length``, sequences at consecutive offsets."""
        if len(lengths) <= EXACT_LIMIT:
            return pack_rows(lengths, length, buckets=self.buckets)
        queues: dict[int, list[int]] = {}
        for i in range(len(lengths) - 1, -1, -1):  # reversed, so pop() gives request order
            queues.setdefault(lengths[i], []).append(i)
        rows: list[Row] = []
        for _, template, count, _ in self._fill(Counter(lengths), length):
            for _ in range(count):
                row, offset = [], 0
                for n, k in template:
                    queue = queues[n]
                    for _ in range(k):
                        row.append(Segment(queue.pop(), offset, n))
                        offset += n
                rows.append(tuple(row))
        return rows

    def build(self, lengths: Sequence[int], choice: Choice) -> list[Call]:
        """The calls of ``choice``: rows sorted by length go to buckets in order (the counts of
        ``assign`` only ever move rows up, so each row fits), each bucket's rows split by
        ``Chunks`` into batch sizes; buckets ascending. A dynamic choice is one call of all
        texts, padded to the longest."""
        if choice.dynamic:
            rows = one_per_row(enumerate(lengths))
            return [Call(len(rows), max(lengths), tuple(rows))]
        if choice.row_length is None:
            rows = one_per_row(enumerate(lengths))
        else:
            rows = self.packed_rows(lengths, choice.row_length)
        content = [sum(s.length for s in row) for row in rows]
        order = sorted(range(len(rows)), key=lambda r: content[r])
        calls: list[Call] = []
        start = 0
        for seq, n in zip(self.buckets, choice.rows):
            if not n:
                continue
            mine = sorted(order[start : start + n])  # request (or packing) order inside a bucket
            start += n
            chunks = self.chunks(seq, choice.packed).chunks(n)
            calls += fill_calls([rows[r] for r in mine], chunks, seq)
        return calls


def declare_auto(args: PlanArgs) -> frozenset[Shape]:
    """Every batch size at every bucket, on the plain graph and (where the model packs) the
    packed one: a packed row runs in the smallest bucket its content fits; and the dynamic model
    where the cost model prices it."""
    graphs = (False, True) if args.allow_packing else (False,)
    static = frozenset(Shape(b, s, p) for p in graphs for b, s in product(args.batch_sizes, args.seq_buckets))
    return static | {Shape.dynamic_model()} if args.pricing().dynamic else static


def plan_auto(args: PlanArgs) -> Plan:
    """The least predicted cost over plain and packed layouts of its declared shapes
    (``declare_auto``: ``seq_buckets x batch_sizes``, plain and packed).

    >>> from shapedemo.planning.strategies.base import resolve_args
    >>> table = {(b, s): 4.0 + b * s / 8 for b in (1, 2, 4, 8) for s in (16, 32, 64, 128)}
    >>> p = plan_auto(resolve_args([42], seq_buckets=[16, 32, 64, 128], cost_table=table))
    >>> p.calls[0].shape, p.packed, p.params["why"]
    ((1, 64), False, '1 text of 42 tokens: 1x64, predicted 12.0 ms; packing into 1 row of 64 would cost 12.0 ms (priced by a given cost table (table+fitted))')
    """
    model = args.pricing()

    def make() -> AutoPlanner:  # the planner lays calls out on the declared shapes only
        return AutoPlanner(args.seq_buckets, args.batch_sizes, model, allow_packing=args.allow_packing, memo=args.memo)

    # one planner per shapes and prices, kept with the memo: its chunk tables stay grown, and a
    # lone text is planned in a fraction of the time a new planner takes to price its shapes
    key = ("auto", args.seq_buckets, args.batch_sizes, args.allow_packing, model.fingerprint)
    planner = make() if args.memo is None else args.memo.keep("planner", key, make)
    if args.memo is not None and len(args.lengths) <= KEPT_PLAN_TEXTS:
        # a request of a text or two: its plan is kept by its lengths (at most 256 lone ones
        # under a bucket of 256), and the next one of those lengths costs a lookup
        kept = (key, model.pricing, args.max_seq, tuple(args.lengths))
        return args.memo.keep("plans", kept, lambda: _plan(args, model, planner))
    return _plan(args, model, planner)


def _plan(args: PlanArgs, model: CostModel, planner: AutoPlanner) -> Plan:
    """``plan_auto``'s plan, laid out by ``planner``."""
    best, others = planner.choose(args.lengths)
    calls = planner.build(args.lengths, best)
    unit = model.unit
    predicted = {"ms": "predicted_latency_ms"}.get(unit, "predicted_token_slots")
    return Plan(
        "auto",
        args.lengths,
        tuple(calls),
        packed=best.packed,
        dynamic=best.dynamic,
        params={
            "seq_buckets": list(args.seq_buckets),
            "batch_sizes": list(args.batch_sizes),
            "max_seq": args.max_seq,
            "allow_packing": args.allow_packing,
            "layout": best.name,
            "objective": "latency" if unit == "ms" else "padding",
            "cost_unit": unit,
            "cost_source": model.source,
            "pricing": model.pricing,
            "predicted_cost": best.cost,
            predicted: best.cost,
            "alternatives": {c.name: c.cost for c in others},
            "why": explain(args.lengths, calls, best, others, unit) + f" (priced by {model.pricing})",
            "shape_set": [list(s) for s in planner.shape_set],
            "packed_shape_set": [list(s) for s in planner.shape_set] if args.allow_packing else [],
            **({"dynamic_priced": True} if model.dynamic else {}),
        },
    )


def explain(
    lengths: Sequence[int], calls: Sequence[Call], best: Choice, others: list[Choice], unit: str
) -> str:
    """One sentence: the request, the calls chosen, their predicted cost, the runner-up of the
    other graph (or the next cheapest)."""
    n = len(lengths)
    low, high = min(lengths), max(lengths)
    tokens = f"{low} tokens" if low == high else f"{low}-{high} tokens"
    what = f"{n} text{'s' if n != 1 else ''} of {tokens}"
    shapes: Counter[tuple[int, int]] = Counter(c.shape for c in calls)
    layout = " + ".join(
        f"{b}x{s}" if k == 1 else f"{k} calls of {b}x{s}" for (b, s), k in shapes.items()
    )
    if best.packed:
        layout = f"packed into {layout}"
    if best.dynamic:
        layout = f"{layout} on the dynamic model"
    text = f"{what}: {layout}, predicted {_amount(best.cost, unit)}"
    static = [c for c in others if not c.dynamic]
    if best.dynamic:
        rival = static[0] if static else None
    else:
        rival = next((c for c in static if c.packed != best.packed), static[0] if static else None)
    if rival is not None:
        how = "packing into" if rival.packed else "one text per row in"
        text += f"; {how} {_rows_text(rival)} would cost {_amount(rival.cost, unit)}"
    dynamic = next((c for c in others if c.dynamic), None)
    if dynamic is not None:
        text += f"; one dynamic call would cost {_amount(dynamic.cost, unit)}"
    return text


def _rows_text(choice: Choice) -> str:
    """``choice.rows`` in words: ``3 rows of 64 + 1 of 16``."""
    parts = [(n, s) for s, n in zip(choice.buckets, choice.rows) if n]
    return " + ".join(
        f"{n} row{'s' if n != 1 else ''} of {s}" if i == 0 else f"{n} of {s}"
        for i, (n, s) in enumerate(parts)
    )


def _amount(cost: float, unit: str) -> str:
    return f"{cost:.1f} ms" if unit == "ms" else f"{cost:.0f} {unit}"
