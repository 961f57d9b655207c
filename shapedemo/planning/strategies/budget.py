"""A bucket budget: which K shapes to compile for a traffic sample, and what each extra one buys.

``tune_shapes`` chooses sequence edges and batch sizes (``|edges| x |batch sizes| <= K``) that
minimise the predicted cost of serving the sample with ``auto``; ``budget_curve`` does it for
K = 1..8 and marks the knee. This is ``tune --json``'s document. The search, a documented
heuristic in two stages:

1. For every set of batch sizes (nonempty subsets of the powers of two up to the largest request
   size, with room left for at least one edge), the sequence edges come from ``tuned``'s exact
   dynamic program with a separable surrogate cost: a text padded to edge ``e`` costs
   ``sum over request sizes r of Chunks(e).cost(r) / r`` (its share of the calls that hold r
   texts at ``e``). Lengths are rounded up to multiples of 8 first (edges on multiples of 8 suit
   the hardware and keep the program small); the top edge is ``max_seq`` (or the longest length).
2. The ``FINALISTS`` configurations of least surrogate cost are priced exactly: the sample is
   served as requests of each size (consecutive texts), each request planned by ``auto``
   (packing included unless ``allow_packing=False``), and the least total wins (ties: fewer
   shapes).

Pricing uses at most ``SAMPLE_LIMIT`` texts of the sample per request size.
"""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any, Callable, Iterable, Sequence

from shapedemo.planning.edges import check_lengths, check_positive, positive_sizes, tuned
from shapedemo.planning.plan import PlanError
from shapedemo.planning.strategies.auto import AutoPlanner
from shapedemo.planning.strategies.cost import CostModel
from shapedemo.planning.strategies.partition import Chunks

__all__ = ["FINALISTS", "KNEE_RULE", "KNEE_TOLERANCE", "SAMPLE_LIMIT", "budget_curve", "knee_range", "tune_shapes"]

FINALISTS = 6
SAMPLE_LIMIT = 512
KNEE_TOLERANCE = 0.05
"""The knee is the fewest shapes whose predicted cost is within 5% (+ the noise of the
measured prices) of the least on the curve."""
KNEE_RULE = (
    "the fewest shapes whose predicted cost is within 5% of the least on the curve, plus the noise "
    "of the measured prices (ties within the noise go to fewer shapes)"
)
"""The knee's rule in words, as the chart, the page and ``tune --json`` name it."""

ShapeCost = Callable[[int, int], tuple[float, float]]
"""``(batch, seq) -> (compile seconds, memory MB)`` of one compiled shape."""


def _round8(n: int, top: int) -> int:
    return min(top, -(-n // 8) * 8)


class _Traffic:
    """The sample served at each request size, priced for one configuration at a time."""

    def __init__(self, lengths: tuple[int, ...], request_sizes: tuple[int, ...]):
        self.lengths = lengths
        self.request_sizes = request_sizes
        self.requests = {
            r: [lengths[i : i + r] for i in range(0, min(len(lengths), SAMPLE_LIMIT), r)]
            for r in request_sizes
        }

    def price(self, planner: AutoPlanner) -> dict[str, Any]:
        """Mean predicted cost per request of each size, and the padding over all of them."""
        per_size, slots, real = {}, 0, 0
        for r, requests in self.requests.items():
            total = 0.0
            cache: dict[tuple[int, ...], tuple[float, int]] = {}
            for request in requests:
                key = tuple(sorted(request))
                if key not in cache:
                    best, _ = planner.choose(request)
                    cache[key] = (best.cost, best.slots)
                cost, used = cache[key]
                total += cost
                slots += used
                real += sum(request)
            per_size[r] = total / len(requests)
        texts = sum(len(q) for rs in self.requests.values() for q in rs)
        cost_total = sum(per_size[r] * len(self.requests[r]) for r in per_size)
        return {
            "per_request": per_size,
            "per_text": cost_total / texts,
            "padding_fraction": 0.0 if slots == 0 else (slots - real) / slots,
        }


def _surrogate_edges(
    counts: Counter[int], k: int, top: int, sizes: tuple[int, ...], model: CostModel,
    request_sizes: tuple[int, ...],
) -> tuple[tuple[int, ...], float]:
    """The at most ``k`` edges of least surrogate cost (stage 1) and that cost."""
    chunks: dict[int, Chunks] = {}

    def weight(edge: int) -> float:
        if edge not in chunks:
            chunks[edge] = Chunks(sizes, cost=lambda b: model.price(b, edge))
        return sum(chunks[edge].cost(r) / r for r in request_sizes)

    sample = [n for n, c in counts.items() for _ in range(c)]
    edges = tuned(sample, k, max_seq=top, cost=weight)
    return edges, sum(c * weight(min(e for e in edges if e >= n)) for n, c in counts.items())


def _configurations(
    lengths: tuple[int, ...], budget: int, top: int, model: CostModel,
    request_sizes: tuple[int, ...], batch_candidates: tuple[int, ...],
    fixed: tuple[int, ...] | None = None,
) -> list[tuple[float, tuple[int, ...], tuple[int, ...]]]:
    """Stage 1: ``(surrogate cost, edges, batch sizes)`` for every batch-size set, cheapest first
    (``fixed`` edges: only the batch sizes are chosen, at most ``budget // len(fixed)`` of them)."""
    counts = Counter(_round8(n, top) for n in lengths)
    found = []
    most = budget if fixed is None else max(1, budget // len(fixed))
    for size in range(1, min(most, len(batch_candidates)) + 1):
        for sizes in combinations(batch_candidates, size):
            edges, cost = _surrogate_edges(counts, budget // size, top, sizes, model, request_sizes)
            if fixed is not None:
                edges, cost = fixed, 0.0  # priced exactly in stage 2
            found.append((cost, edges, sizes))
    return sorted(found, key=lambda f: (f[0], len(f[1]) * len(f[2])))


def tune_shapes(
    lengths: Iterable[int],
    *,
    budget: int,
    request_sizes: Sequence[int] = (1, 8, 32),
    cost_model: CostModel | None = None,
    max_seq: int | None = None,
    allow_packing: bool = True,
    shape_cost: ShapeCost | None = None,
    seq_buckets: Sequence[int] | None = None,
    noise: float = 0.0,
) -> dict[str, Any]:
    """The deployable configuration of at most ``budget`` shapes for the traffic ``lengths``
    (with ``seq_buckets``: those buckets, and the batch sizes chosen for them).

    The finalist of least predicted cost wins; with ``noise`` (the relative uncertainty of
    measured prices) every finalist within it of the least ties, and the tie goes to fewer
    shapes, then less padding (a choice the noise cannot flip).

    Returns ``{"seq_buckets", "batch_sizes", "shapes", "predicted"}`` (``tune --json``):
    ``shapes`` is ``[[batch, seq], ...]`` (each compiled for the plain and, with packing, the
    packed graph); ``predicted`` holds ``padding_fraction``, ``latency_ms_per_batch_size``
    (``{request size: mean ms per request}``, None without a cost in ms), ``ms_per_text``,
    ``cost_unit``, ``cost_model`` (its JSON form), ``compile_s`` and ``memory_mb`` (from
    ``shape_cost``, else None). Without ``cost_model`` the objective is computed token slots.

    >>> model = CostModel(coefficients=(4.0, 0.02, 1e-4))
    >>> config = tune_shapes([12, 9, 30, 14, 60, 11, 8, 25] * 8, budget=4, cost_model=model, request_sizes=(1, 8))
    >>> config["seq_buckets"], config["batch_sizes"], config["shapes"]
    ([16, 64], [1, 4], [[1, 16], [4, 16], [1, 64], [4, 64]])
    >>> sorted(config["predicted"]["latency_ms_per_batch_size"].items())
    [(1, 4.85), (8, 10.758)]
    """
    check_positive(budget, what="budget")
    sample = check_lengths(lengths)
    sizes_asked = positive_sizes(request_sizes, what="request sizes")
    model = cost_model or CostModel()
    top = max(sample) if max_seq is None else check_positive(max_seq, what="max_seq")
    if max(sample) > top:
        raise PlanError(f"length {max(sample)} is longer than max_seq {top}")
    if max_seq is None:
        top = _round8(top, 1 << 30)
    powers = []
    p = 1
    while p < sizes_asked[-1]:
        powers.append(p)
        p *= 2
    candidates = tuple(sorted({*powers, sizes_asked[-1]}))
    traffic = _Traffic(sample, sizes_asked)
    fixed = None
    if seq_buckets is not None:
        fixed = positive_sizes(seq_buckets, what="seq_buckets")
        if fixed[-1] < max(sample):
            raise PlanError(f"the largest bucket {fixed[-1]} is shorter than the longest length {max(sample)}")
    found = _configurations(sample, budget, top, model, sizes_asked, candidates, fixed)
    finalists = []
    for _, edges, sizes in found[: FINALISTS if fixed is None else len(found)]:
        priced = traffic.price(AutoPlanner(edges, sizes, model, allow_packing=allow_packing))
        finalists.append((edges, sizes, priced))
    least = min(f[2]["per_text"] for f in finalists)
    tied = [f for f in finalists if f[2]["per_text"] <= least * (1 + max(0.0, noise)) + 1e-12]
    edges, sizes, priced = min(
        tied, key=lambda f: (len(f[0]) * len(f[1]), round(f[2]["padding_fraction"], 6), round(f[2]["per_text"], 9))
    )
    shapes = [[b, s] for s in edges for b in sizes]
    in_ms = model.unit == "ms"
    compile_s, memory_mb = _shape_costs(shapes, shape_cost)
    return {
        "seq_buckets": list(edges),
        "batch_sizes": list(sizes),
        "shapes": shapes,
        "predicted": {
            "padding_fraction": priced["padding_fraction"],
            "latency_ms_per_batch_size": {
                r: (round(v, 3) if in_ms else None) for r, v in priced["per_request"].items()
            },
            "ms_per_text": priced["per_text"] if in_ms else None,
            "cost_per_text": priced["per_text"],
            "cost_unit": model.unit,
            "pricing": model.pricing,
            "cost_model": model.to_dict(),
            "allow_packing": allow_packing,
            "request_sizes": list(sizes_asked),
            "compile_s": compile_s,
            "memory_mb": memory_mb,
        },
    }


def _shape_costs(
    shapes: list[list[int]], shape_cost: ShapeCost | None
) -> tuple[float | None, float | None]:
    if shape_cost is None:
        return None, None
    costs = [shape_cost(b, s) for b, s in shapes]
    return sum(c[0] for c in costs), sum(c[1] for c in costs)


def budget_curve(
    lengths: Iterable[int],
    *,
    ks: Iterable[int] = range(1, 9),
    request_sizes: Sequence[int] = (1, 8, 32),
    cost_model: CostModel | None = None,
    max_seq: int | None = None,
    allow_packing: bool = True,
    shape_cost: ShapeCost | None = None,
    seq_buckets: Sequence[int] | None = None,
    noise: float = 0.0,
) -> list[dict[str, Any]]:
    """"How many shapes should I compile?": ``tune_shapes`` for each K, as rows
    ``{"k", "padding_fraction", "predicted_ms", "compile_s", "memory_mb", "shapes", "knee"}``.

    ``predicted_ms`` is the predicted mean ms per text over the request sizes (None when the
    cost model is token slots: then ``predicted_token_slots`` holds the cost). Exactly one row
    has ``knee`` True: the smallest K whose predicted cost is within ``KNEE_TOLERANCE`` (5%) of
    the least on the curve, i.e. past it each extra shape buys less than 5% in total; with
    ``noise`` (the relative uncertainty of measured prices) the tolerance widens by it, and the
    rows whose K is within noise of the knee have ``within_noise`` True (``knee_range``). The
    curve never rises: where the search for K finds nothing better than K - 1's shapes, K keeps
    them.

    >>> rows = budget_curve([12, 9, 30, 14, 60, 11, 8, 25] * 8, ks=[1, 2, 3], request_sizes=(1,))
    >>> [(r["k"], r["shapes"], round(r["padding_fraction"], 3), r["knee"]) for r in rows]
    [(1, [[1, 64]], 0.67, False), (2, [[1, 16], [1, 64]], 0.379, False), (3, [[1, 16], [1, 32], [1, 64]], 0.188, True)]
    """
    rows: list[dict[str, Any]] = []
    previous: dict[str, Any] | None = None
    for k in sorted(set(ks)):
        config = tune_shapes(
            lengths,
            budget=k,
            request_sizes=request_sizes,
            cost_model=cost_model,
            max_seq=max_seq,
            allow_packing=allow_packing,
            shape_cost=shape_cost,
            seq_buckets=seq_buckets,
            noise=noise,
        )
        cost = config["predicted"]["cost_per_text"]
        if previous is not None and previous["predicted"]["cost_per_text"] < cost:
            config = previous  # the search is a heuristic: a larger budget may keep the smaller set
        previous = config
        predicted = config["predicted"]
        row = {
            "k": k,
            "padding_fraction": predicted["padding_fraction"],
            "predicted_ms": predicted["ms_per_text"],
            "compile_s": predicted["compile_s"],
            "memory_mb": predicted["memory_mb"],
            "shapes": config["shapes"],
            "knee": False,
            "_cost": predicted["cost_per_text"],
        }
        if predicted["cost_unit"] != "ms":
            row["predicted_token_slots"] = predicted["cost_per_text"]
        rows.append(row)
    if not rows:
        raise PlanError("budget curve: no K given")
    lo, hi = _knee_bounds([r["_cost"] for r in rows], noise)
    for i, r in enumerate(rows):
        r["knee"] = i == lo
        r["within_noise"] = lo <= i <= hi
        del r["_cost"]
    return rows


def _knee_bounds(costs: Sequence[float], noise: float) -> tuple[int, int]:
    """Indices of the knee and of the last K within noise of it, on a curve that never rises:
    the first cost within ``KNEE_TOLERANCE + noise`` of the least (the knee: ties within the
    noise go to fewer shapes), and the first within ``KNEE_TOLERANCE - noise`` (where a quieter
    measurement could have put it).

    >>> _knee_bounds([10.0, 6.0, 5.4, 5.2, 5.0], 0.0), _knee_bounds([10.0, 6.0, 5.4, 5.2, 5.0], 0.1)
    ((3, 3), (2, 4))
    """
    least = min(costs)
    noise = max(0.0, float(noise))
    lo = next(i for i, c in enumerate(costs) if c <= least * (1 + KNEE_TOLERANCE + noise))
    hi = next(i for i, c in enumerate(costs) if c <= least * (1 + max(0.0, KNEE_TOLERANCE - noise)))
    return lo, max(lo, hi)


def knee_range(rows: Sequence[dict[str, Any]]) -> list[int]:
    """``[k_lo, k_hi]``: the values of K within noise of the knee (``budget_curve``'s rows).

    >>> knee_range([{"k": 1, "within_noise": False}, {"k": 2, "within_noise": True}, {"k": 3, "within_noise": True}])
    [2, 3]
    """
    ks = [int(r["k"]) for r in rows if r.get("within_noise")]
    return [min(ks), max(ks)] if ks else []
