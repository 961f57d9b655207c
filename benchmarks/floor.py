"""How close to this device's floor? Real texts as real tokens/s, next to the best full-shape rate.

    python benchmarks/floor.py [--model minilm] [--texts assets/paragraphs.txt] [--batches 1,8,32]
                               [--buckets 32,64,128,256] [--batch-sizes 1,2,4,8,16,32]
                               [--precisions bf16,f32] [--num-texts 96] [--rounds 3] [--min-requests 24]
                               [--settings-check]

The floor: every shape of ``auto``'s declared set (``--buckets`` x ``--batch-sizes``, plain and
packed graph) has been timed with full rows for the measured cost table ``auto`` prices by
(``runtime/costs.py``, reused from the cache when it exists); the table's six best shapes are
timed again in this run, taking a turn beside every request of the strategies (a few shapes a
turn, at least ``FLOOR_CALLS`` calls per shape and round): the machine's speed switches between
a fast and a slow mode in stretches of a few calls, and floor and strategies meet both alike.
A round's floor is the most token slots per second among those shapes (each the median of its
calls in that round): this device's best full-shape rate. No strategy can beat it on real
texts: every padded slot or extra call only takes away from it.

Then ``auto`` (priced by that table), ``packing`` (its fixed ``--pack-seq`` rows, default the
largest bucket), ``buckets-partition`` and native ``dynamic`` run the texts end to end (tokenize,
plan, scatter, infer, gather: embeddings out) in requests of ``batch`` consecutive texts,
interleaved request by request in an order shuffled per request and round (``shuffled``).
Printed first, per batch and on the cost table's own prices: the rate ``auto``'s plans reach,
the best any plan of static calls of the same requests can reach (``plan_bound``: the calls'
sizes count, since a small call runs its slots slower than a large one and a request of 32
paragraphs holds about 1,600 tokens), and the length-aware bound (each text at the best rate of
any shape long enough for it, whatever the call's size), each as a fraction of the table's best
rate; and between the first two, the same with plans found by allocating first
(``allocated_plan``: rows per bucket chosen by price, the texts then laid into them by best
fit) where those are cheaper than ``auto``'s: feasible plans, so what a planner that allocated
first could take back. Then: real tokens/s and texts/s (each side's least-disturbed round), the fraction of the
floor (a strategy's rate over the floor of the same round, the median over rounds, and their
range: a ratio within one round, which the machine's speed cancels from), and for ``auto`` where its time went (tokenize, plan, scatter, device, gather, other: host
share of the end-to-end time; and the fraction of that round's floor its device time alone
reaches, which is what host work takes away from). ``--settings-check`` then times ``auto`` at the largest batch
under each thread/stream setting of ``SETTINGS`` (latency vs throughput hint, calls one after
another vs two in flight, oneTBB's partitioner, pinned threads). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
PARAGRAPHS = ROOT / "assets" / "paragraphs.txt"
STRATEGIES = ("auto", "packing", "buckets-partition", "dynamic")
FLOOR_CALLS = 6
"""Calls per floor shape and round, at least (spread over the round's requests)."""


def ints(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def shuffled(names: list[Any], round_: int, request: int) -> list[Any]:
    """``names`` in an order drawn from the round's and the request's number: each runner
    follows each other one about as often. A rotation keeps the cyclic order, so each runner
    would always follow the same one, and a call right after another runner's large calls finds
    its weights pushed out of the caches (on a 2-core AMX Xeon at bf16 such a call costs 1.3-2.1 ms
    more): the runner after the floor's calls would pay it every time.

    >>> sorted(shuffled(["a", "b", "c"], 1, 4)), shuffled(["a", "b", "c"], 1, 4) == shuffled(["a", "b", "c"], 1, 4)
    (['a', 'b', 'c'], True)
    """
    order = list(names)
    random.Random(round_ * 1009 + request).shuffle(order)
    return order


def end_to_end(engine: Any, strategy: str, options: dict[str, Any], steps: dict[str, float],
               layouts: dict[str, int] | None = None) -> Callable[[list[str]], int]:
    """Embed one request of texts with ``strategy``; adds each step's ms to ``steps`` (and counts
    the plan's layout in ``layouts``: dynamic, packed or plain); returns the request's real tokens."""
    from shapedemo.planning.strategies import make_plan

    tokenizer = engine.loaded.tokenizer

    def run(group: list[str]) -> int:
        t0 = time.perf_counter()
        encoded = tokenizer.encode(group)
        t1 = time.perf_counter()
        plan = make_plan(strategy, encoded.lengths, **options)
        t2 = time.perf_counter()
        outcome = engine.run(plan, encoded, warmup=0, repeats=1, hidden=False)
        t3 = time.perf_counter()
        assert outcome.embeddings.shape[0] == len(group)
        steps["tokenize"] += (t1 - t0) * 1e3
        steps["plan"] += (t2 - t1) * 1e3
        steps["scatter"] += outcome.scatter_ms[-1]
        steps["device"] += outcome.total_ms[-1]
        steps["gather"] += outcome.gather_ms[-1]
        steps["total"] += (t3 - t0) * 1e3
        if layouts is not None:
            kind = "dynamic" if plan.dynamic else "packed" if plan.packed else "plain"
            layouts[kind] = layouts.get(kind, 0) + 1
        return sum(encoded.lengths)

    return run


SETTINGS: tuple[tuple[str, str, bool, dict[str, Any]], ...] = (
    ("LATENCY hint, calls one after another", "LATENCY", False, {}),
    ("LATENCY hint, 2 requests in flight", "LATENCY", True, {}),
    ("THROUGHPUT hint, calls one after another", "THROUGHPUT", False, {}),
    ("THROUGHPUT hint, 2 requests in flight", "THROUGHPUT", True, {}),
    ("LATENCY hint, TBB_PARTITIONER AUTO", "LATENCY", False, {"TBB_PARTITIONER": "AUTO"}),
    ("LATENCY hint, ENABLE_CPU_PINNING", "LATENCY", False, {"ENABLE_CPU_PINNING": True}),
)
"""The thread and stream settings checked by ``--settings-check``: the performance hint (LATENCY:
one stream using every core; THROUGHPUT: as many streams as the plugin picks), whether a plan's
calls run one after another or two at a time (``compare --concurrent --jobs 2``), and CPU
properties passed as ``--ov-config`` would (how oneTBB splits a layer's work among the threads:
``STATIC``, OpenVINO's default, or ``AUTO``; threads pinned to cores). A setting whose property
this OpenVINO does not have is left out."""


def settings_check(loaded: Any, precision: str, texts: list[str], lengths: list[int], *, batch: int,
                   options: dict[str, Any], model: Any, rounds: int) -> None:
    """``auto`` at ``batch`` under each of ``SETTINGS`` (one engine per hint and properties, the
    same cost model), interleaved per request; prints real tokens/s and the ratio to the first."""
    import openvino as ov

    from shapedemo.planning.strategies import make_plan
    from shapedemo.runtime.engine import Engine

    supported = set(ov.Core().get_property("CPU", "SUPPORTED_PROPERTIES"))
    settings = [s for s in SETTINGS if set(s[3]) <= supported]

    def key(hint: str, props: dict[str, Any]) -> tuple[str, str]:
        return hint, repr(sorted(props.items()))

    engines: dict[tuple[str, str], Any] = {}
    for _, hint, _, props in settings:
        if key(hint, props) not in engines:
            engines[key(hint, props)] = Engine(loaded, precision=precision, performance_hint=hint, ov_config=props)
    streams = {h: engines[key(h, {})].compile((batch, options["seq_buckets"][0])).compiled.get_property("NUM_STREAMS")
               for h in ("LATENCY", "THROUGHPUT")}
    groups = [texts[i : i + batch] for i in range(0, len(texts), batch)]
    tokenizer = loaded.tokenizer

    def run(setting: tuple[str, str, bool, dict[str, Any]], group: list[str]) -> float:
        _, hint, concurrent, props = setting
        t0 = time.perf_counter()
        encoded = tokenizer.encode(group)
        plan = make_plan("auto", encoded.lengths, **options, cost_model=model)
        engines[key(hint, props)].run(plan, encoded, warmup=0, repeats=1, concurrent=concurrent, jobs=2, hidden=False)
        return time.perf_counter() - t0

    for setting in settings:  # warm-up
        for g in groups:
            run(setting, g)
    best = dict.fromkeys([s[0] for s in settings], float("inf"))
    for r in range(rounds):
        seconds = dict.fromkeys(best, 0.0)
        for g, group in enumerate(groups):
            for setting in shuffled(settings, r, g):
                seconds[setting[0]] += run(setting, group)
        for label in best:
            best[label] = min(best[label], seconds[label])
    first = best[settings[0][0]]
    print(f"settings check: auto at batch {batch}, {precision}; NUM_STREAMS: LATENCY {streams['LATENCY']}, THROUGHPUT {streams['THROUGHPUT']}")
    for label in best:
        print(f"  {label:<44} {sum(lengths) / best[label]:>10,.0f} real tok/s  {first / best[label]:>5.2f}x")
    for e in engines.values():
        e.release_all()


def texts_that_fit(tokenizer: Any, path: str | Path, num_texts: int, longest: int) -> tuple[list[str], list[int]]:
    """``num_texts`` texts taken in turn from the lines of ``path`` that hold at most ``longest``
    tokens (what a declared set of that largest bucket can take; the others are left out), and
    their lengths. None fits: one line on stderr, exit code 2."""
    lines = [t.strip() for t in Path(path).read_text(encoding="utf-8").splitlines() if t.strip()]
    lengths = tokenizer.encode(lines, truncate=True, max_length=longest + 1).lengths  # longer ones counted as longest + 1
    kept = [(t, n) for t, n in zip(lines, lengths) if n <= longest]
    if not kept:
        print(f"{Path(sys.argv[0]).name}: no text of {Path(path).name} fits {longest} tokens", file=sys.stderr)
        raise SystemExit(2)
    chosen = list(itertools.islice(itertools.cycle(kept), num_texts))
    return [t for t, _ in chosen], [n for _, n in chosen]


def groups_lengths(lengths: list[int], batch: int) -> list[list[int]]:
    return [lengths[i : i + batch] for i in range(0, len(lengths), batch)]


def table_rates(document: dict[str, Any]) -> dict[tuple[bool, int, int], float]:
    """``{(packed, batch, seq): token slots/s}`` of every shape a cost table document timed."""
    return {
        (kind == "packed_table", row["batch"], row["seq"]): row["batch"] * row["seq"] / row["ms"] * 1e3
        for kind in ("table", "packed_table")
        for row in document.get(kind, [])
    }


def predicted(model: Any, rates: dict[tuple[bool, int, int], float], groups: list[list[int]], options: dict[str, Any]) -> tuple[float, float, float, list[Any]]:
    """On the cost table's own prices (timed in CPU time per thread, so other processes' load
    does not move it): ``auto``'s predicted real tokens/s of device time for the requests
    ``groups`` (lengths), that as a fraction of the table's best full-shape rate, and the
    length-aware bound as one (each text at the best rate of any declared shape long enough
    for it: no plan of these texts can beat it); and ``auto``'s plans."""
    from shapedemo.planning.strategies import make_plan

    best = max(rates.values())
    tokens = sum(sum(g) for g in groups)
    plans = [make_plan("auto", g, **options, cost_model=model) for g in groups]
    device_ms = sum(model.price_plan(p) for p in plans)
    bound_ms = sum(n / max(v for (_, _, s), v in rates.items() if s >= n) * 1e3 for g in groups for n in g)
    rate = tokens / device_ms * 1e3
    return rate, rate / best, tokens / bound_ms * 1e3 / best, plans


def cheapest_rows(prices: dict[int, float], most: int) -> list[float]:
    """The least price of calls (``prices``: batch size -> ms, one row length) holding at least
    r rows, for r = 0..``most`` (a call's spare rows allowed)."""
    exact = [0.0] + [math.inf] * (most + max(prices))
    for r in range(1, len(exact)):
        exact[r] = min((exact[r - b] + v for b, v in prices.items() if b <= r), default=math.inf)
    return [min(exact[r:]) for r in range(most + 1)]


def row_needs(seqs: list[int], lengths: list[int]) -> list[int]:
    """``need[j]``: the tokens of the texts that only rows of ``seqs[j]`` (sorted) or longer
    hold; a text longer than every row is an error."""
    if max(lengths) > seqs[-1]:
        raise ValueError(f"a text of {max(lengths)} tokens is longer than the largest bucket {seqs[-1]}")
    return [sum(n for n in lengths if n > (seqs[j - 1] if j else 0)) for j in range(len(seqs))]


def plan_bound(model: Any, shapes: Iterable[tuple[int, int]], lengths: list[int]) -> float:
    """The least device time (ms, on ``model``'s prices, as ``auto`` plans by them) of any plan of
    calls of the static ``shapes`` (batch, seq) for one request of texts of ``lengths``: a lower
    bound, as the rows are filled without gaps (a text may spill into the next row) and a plain
    shape is priced as its packed twin where that is cheaper.
    What it keeps of a real plan: every call is a declared shape at its price (a small call
    runs its slots slower than a large one), and a text of length n sits in rows of the smallest
    bucket >= n or longer (the tokens of the texts longer than each bucket need as many slots of
    longer rows), and a row of the largest bucket holds one text at most where the texts only it
    holds are longer than half of it."""
    prices = {(b, s): min(model.price(b, s), model.price(b, s, packed=True)) for b, s in set(shapes)}
    seqs = sorted({s for _, s in prices})
    need = row_needs(seqs, lengths)
    # texts only the largest rows hold, two of which never share one
    rows_top = sum(1 for n in lengths if n > (seqs[-2] if len(seqs) > 1 else 0) and 2 * n > seqs[-1])

    tables = [cheapest_rows({b: v for (b, q), v in prices.items() if q == s}, max(math.ceil(need[0] / s), rows_top)) for s in seqs]

    def best(j: int, covered: int) -> float:  # rows of seqs[j] and shorter, `covered` slots in longer rows
        s = seqs[j]
        least = max(0, math.ceil((need[j] - covered) / s), rows_top if j == len(seqs) - 1 else 0)
        most = max(least, math.ceil(max(0, need[0] - covered) / s))
        if j == 0:
            return tables[0][least]
        return min(tables[j][r] + best(j - 1, covered + r * s) for r in range(least, most + 1))

    return best(len(seqs) - 1, 0)


ALLOCATION_TRIES = 64
"""``allocated_plan`` lays the texts into at most this many allocations, cheapest first."""


def allocated_plan(model: Any, buckets: Iterable[int], sizes: Iterable[int], lengths: list[int], below: float, *,
                   tries: int = ALLOCATION_TRIES) -> tuple[float, list[list[int]]] | None:
    """A static packed plan of a request found the other way round from ``auto``'s: allocate
    first, then pack. Every allocation of rows to the ``buckets`` (r rows of a bucket priced as the
    cheapest packed calls of ``sizes`` holding them, as :func:`plan_bound` prices rows) whose
    rows have room for the texts and are priced under ``below`` (``auto``'s own price), cheapest
    first; for each, the texts longest first into the opened rows, each into the one with the
    least room that holds it (best fit decreasing over rows of several lengths: a row of 128
    takes the longest text that fits it before a row of 256 has to). The first allocation
    whose rows hold every text, priced by the rows it used, and those rows (text indices, each
    row's bucket the allocation's); None when none of the ``tries`` cheapest does. Feasible,
    unlike the bound: what a planner that allocated first could take back from ``auto``."""
    seqs = sorted(set(buckets))
    sizes = sorted(set(sizes))
    total = sum(lengths)
    need = row_needs(seqs, lengths)
    most = {s: math.ceil(total / s) for s in seqs}

    price = {s: cheapest_rows({b: model.price(b, s, packed=True) for b in sizes}, most[s]) for s in seqs}
    per_slot = [min(price[s][r] / (r * s) for s in seqs[: j + 1] for r in range(1, most[s] + 1)) for j in range(len(seqs))]
    found: list[tuple[float, tuple[int, ...]]] = []

    def allocate(j: int, covered: int, cost: float, rows: tuple[int, ...]) -> None:  # buckets from the largest down
        s = seqs[j]
        least = max(0, math.ceil((need[j] - covered) / s))
        for r in range(least, max(least, math.ceil((total - covered) / s)) + 1):
            spent = cost + price[s][r]
            left = max(0, total - covered - r * s)
            if spent + (left * per_slot[j - 1] if j else 0.0) >= below * (1 - 1e-9):  # cheaper, not a sum's round-off
                continue
            if j == 0:
                if not left:
                    found.append((spent, (r,) + rows))
                continue
            allocate(j - 1, covered + r * s, spent, (r,) + rows)

    allocate(len(seqs) - 1, 0, 0.0, ())
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for _, rows in sorted(found)[:tries]:
        room = [s for s, r in zip(seqs, rows) for _ in range(r)]
        held: list[list[int]] = [[] for _ in room]
        for i in order:
            fits = [k for k in range(len(room)) if room[k] >= lengths[i]]
            if not fits:
                break
            k = min(fits, key=lambda k: (room[k], k))
            room[k] -= lengths[i]
            held[k].append(i)
        else:
            start, used = 0, {}
            for s, r in zip(seqs, rows):
                used[s] = sum(1 for row in held[start : start + r] if row)
                start += r
            return sum(price[s][n] for s, n in used.items() if n), [row for row in held if row]
    return None


def best_plans(model: Any, rates: dict[tuple[bool, int, int], float], groups: list[list[int]]) -> float:
    """:func:`plan_bound` over the requests ``groups`` (lengths) on the shapes of ``rates``, as a
    real-token rate over the table's best full-shape rate: what no static plan of them can beat."""
    tokens = sum(sum(g) for g in groups)
    shapes = [(b, s) for _, b, s in rates]
    return tokens / sum(plan_bound(model, shapes, g) for g in groups) * 1e3 / max(rates.values())


def allocated_plans(model: Any, rates: dict[tuple[bool, int, int], float], groups: list[list[int]], options: dict[str, Any],
                    plans: list[Any]) -> float:
    """Per request the cheaper of ``auto``'s plan (``plans``) and :func:`allocated_plan` under it,
    as a real-token rate over the table's best full-shape rate."""
    tokens = sum(sum(g) for g in groups)
    ms = 0.0
    for g, plan in zip(groups, plans):
        own = model.price_plan(plan)
        other = allocated_plan(model, options["seq_buckets"], options["batch_sizes"], g, own)
        ms += own if other is None else min(own, other[0])
    return tokens / ms * 1e3 / max(rates.values())


def predicted_line(model: Any, rates: dict[tuple[bool, int, int], float], groups: list[list[int]], options: dict[str, Any]) -> None:
    """:func:`predicted`, printed, with :func:`allocated_plans` and :func:`best_plans` beside it."""
    rate, fraction, bound, auto_plans = predicted(model, rates, groups, options)
    allocated = allocated_plans(model, rates, groups, options, auto_plans)
    plans = best_plans(model, rates, groups)
    print(
        f"       on the table's prices: auto {rate:,.0f} real tok/s of device time = "
        f"{fraction:.2f} of the table's best {max(rates.values()):,.0f}; with rows allocated first where cheaper "
        f"{allocated:.2f}; best static plans of these requests {plans:.2f}; length-aware bound {bound:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--texts", default=str(PARAGRAPHS), help="one text per line (default assets/paragraphs.txt)")
    ap.add_argument("--batches", default="1,8,32")
    ap.add_argument("--buckets", default="32,64,128,256", help="auto's declared sequence buckets")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32", help="auto's declared batch sizes")
    ap.add_argument("--precisions", default=None, help="default: bf16,f32 where the CPU has bf16, else f32")
    ap.add_argument("--pack-seq", type=int, default=None, help="packing's row length (default: the largest bucket)")
    ap.add_argument("--num-texts", type=int, default=96, help="texts per timed pass (default 96)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds at each batch, at least (default 3)")
    ap.add_argument("--min-requests", type=int, default=24,
                    help="more rounds where a round has few requests, until each strategy ran this many (default 24: "
                         "8 rounds at batch 32 of 96 texts, whose median over 3 rounds moved by 0.07 between runs)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--table-rounds", type=int, default=3, help="rounds timing the cost table when none is cached (default 3)")
    ap.add_argument("--table-repeats", type=int, default=3, help="calls per shape and round for the cost table (default 3)")
    ap.add_argument("--settings-check", action="store_true", help="also time auto at the largest batch under each thread/stream setting (SETTINGS)")
    args = ap.parse_args(argv)

    from shapedemo.model import load_model
    from shapedemo.planning.strategies.memo import PlanMemo
    from shapedemo.runtime.costs import cpu_name, describe_pricing, measured_cost_model
    from shapedemo.runtime.engine import Engine

    buckets, sizes, batches = ints(args.buckets), ints(args.batch_sizes), ints(args.batches)
    loaded = load_model(args.model)
    texts, lengths = texts_that_fit(loaded.tokenizer, args.texts, args.num_texts, buckets[-1])
    import openvino as ov

    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    precisions = args.precisions.split(",") if args.precisions else (["bf16", "f32"] if "BF16" in caps else ["f32"])
    print(
        f"floor: {loaded.spec}, {len(texts)} texts from {Path(args.texts).name} "
        f"({min(lengths)}..{max(lengths)} tokens, mean {statistics.fmean(lengths):.1f}), end to end"
    )
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores); declared set: buckets {buckets} x batch sizes {sizes}")
    try:
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    for precision in precisions:
        engine = Engine(loaded, precision=precision)
        model, document = measured_cost_model(engine, buckets, sizes, rounds=args.table_rounds, repeats=args.table_repeats)
        print(f"\n== {precision} (inference precision {engine.inference_precision}); auto priced by {describe_pricing(document)}")
        rates = table_rates(document)
        top = sorted(rates.items(), key=lambda kv: -kv[1])[:6]
        print("best full-shape rates in the cost table (token slots/s): " + ", ".join(
            f"{b}x{s}{' packed' if p else ''} {r:,.0f}" for (p, b, s), r in top))
        # the floor is timed in this run, on the table's best six shapes (fewer candidates, less
        # luck: the best of many noisy minimums would overstate the floor)
        candidates = sorted(k for k, _ in top)
        # one PlanMemo across requests, as serve keeps one (chunk tables, fitted prices)
        options = dict(seq_buckets=buckets, batch_sizes=sizes, max_seq=buckets[-1], pack_seq=args.pack_seq or buckets[-1], memo=PlanMemo())
        header = f"{'batch':>5}  {'runner':<22} {'real tok/s':>10}  {'x floor':>7}  {'texts/s':>8}  {'host %':>6}  x floor per round"
        print(header)
        print("-" * len(header))
        for batch in batches:
            groups = [texts[i : i + batch] for i in range(0, len(texts), batch)]
            runners: dict[str, Any] = {}
            steps: dict[str, dict[str, float]] = {}
            layouts: dict[str, int] = {}
            for name in args.strategies.split(","):
                extra = {"cost_model": model} if name == "auto" else {}
                steps[name] = dict.fromkeys(("tokenize", "plan", "scatter", "device", "gather", "total"), 0.0)
                runners[name] = end_to_end(engine, name, {**options, **extra}, steps[name], layouts if name == "auto" else None)
            for name, run in runners.items():  # warm-up: compiles what each needs
                for g in groups:
                    run(g)
            names = list(runners)
            best_round: dict[str, tuple[float, dict[str, float], float]] = {}  # seconds, steps, that round's floor
            ratios: dict[str, list[float]] = {name: [] for name in names}
            floors: list[tuple[float, tuple[bool, int, int]]] = []
            for k in candidates:  # compiled and warm before the rounds
                engine.measure_shape(k[1:], packed=k[0], repeats=1, warmup=1)
            # the floor takes a turn beside every request, a few of its shapes at a time, so it
            # meets the machine's fast and slow stretches as often as the strategies do; each
            # round pairs them: a strategy's fraction is its rate over the floor of that round
            # (a turn may go round the shapes more than once: with few requests per round, as at
            # batch 32, each shape still gets FLOOR_CALLS calls, and its median is no luckier)
            per_turn = max(1, math.ceil(len(candidates) * FLOOR_CALLS / len(groups)))
            for r in range(max(args.rounds, math.ceil(args.min_requests / len(groups)))):
                seconds = dict.fromkeys(names, 0.0)
                calls: dict[tuple[bool, int, int], list[float]] = {k: [] for k in candidates}
                for name in names:
                    for k in steps[name]:
                        steps[name][k] = 0.0  # in place: each runner holds its dict
                for g, group in enumerate(groups):
                    for name in shuffled(names + ["floor"], r, g):
                        if name == "floor":
                            for i in range(per_turn):
                                p, b, s = candidates[((r + g) * per_turn + i) % len(candidates)]
                                calls[p, b, s].append(engine.measure_shape((b, s), packed=p, repeats=1, warmup=0))
                            continue
                        t0 = time.perf_counter()
                        runners[name](group)
                        seconds[name] += time.perf_counter() - t0
                floor_r = max((k[1] * k[2] / statistics.median(ms) * 1e3, k) for k, ms in calls.items() if ms)
                floors.append(floor_r)
                for name in names:
                    ratios[name].append(sum(lengths) / seconds[name] / floor_r[0])
                    if name not in best_round or seconds[name] < best_round[name][0]:
                        best_round[name] = (seconds[name], dict(steps[name]), floor_r[0])
            floor_rate, (packed_best, b_best, s_best) = max(floors)
            real = sum(lengths)
            predicted_line(model, rates, groups_lengths(lengths, batch), options)
            print(f"{batch:>5}  {f'full {b_best}x{s_best}' + (' packed' if packed_best else ''):<22} {floor_rate:>10,.0f}  {1.0:>7.2f}  {'':>8}  {'':>6}  "
                  f"rounds' floors {min(f for f, _ in floors):,.0f}..{max(f for f, _ in floors):,.0f}")
            for name in names:
                s, st, _ = best_round[name]
                rate = real / s
                host = 100 * (st["total"] - st["device"]) / st["total"]
                mine = ratios[name]
                print(f"{batch:>5}  {name:<22} {rate:>10,.0f}  {statistics.median(mine):>7.2f}  {len(texts) / s:>8.1f}  {host:>6.1f}  "
                      f"{min(mine):.2f}..{max(mine):.2f}")
            if "auto" in best_round:
                _, st, floor_b = best_round["auto"]
                # "other": the rest of end to end, the runner's bookkeeping (its compiled models
                # looked up and pinned, their requests taken and given back) and the calls between
                other = st["total"] - sum(v for k, v in st.items() if k != "total")
                shown = {**{k: v for k, v in st.items() if k != "total"}, "other": other, "total": st["total"]}
                print("       auto's time (ms, its best round): " + ", ".join(f"{k} {v:.1f}" for k, v in shown.items()))
                print(f"       auto's device time alone (that round): {real / st['device'] * 1e3 / floor_b:.2f} of the floor; "
                      f"with its host work {real / st['total'] * 1e3 / floor_b:.2f}")
                print("       auto's plans (every request run): " + ", ".join(f"{k} {v}" for k, v in sorted(layouts.items())))
        if args.settings_check:
            settings_check(loaded, precision, texts, lengths, batch=batches[-1], options=options, model=model, rounds=args.rounds)
        engine.release_all()
    try:
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
