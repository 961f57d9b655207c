"""Does ``auto`` pay? Real text at batch 1, 8, 32: texts/s of native dynamic, every fixed
strategy and ``auto``, with the same few compiled shapes, ratios measured in one run (issue 11).

    python benchmarks/auto.py [--model minilm] [--batches 1,8,32] [--num-texts 128]
                              [--repeats 9] [--precision f32] [--budget 8]
                              [--shapes tune | 32,64,128,256x1,8] [--max-seq N]
                              [--texts assets/texts.txt] [--no-plan-speed] [--json FILE]

The texts (``assets/texts.txt``: real English sentences and short paragraphs) are cycled to
``--num-texts`` and sent as requests of ``batch`` consecutive texts. The static strategies share
one configuration of at most ``--budget`` shapes (sequence buckets x batch sizes): by default
the one ``tune --budget K --measure`` picks for the sample (``tune_shapes`` on a cost model
fitted to ``runner.FIT_SHAPES`` timed here), or the ``--shapes`` given; it is printed. Shapes are
timed by ``engine.measure_shape`` in ``--cost-rounds`` interleaved rounds (the least of them), so
a burst of load from elsewhere skews a round rather than one shape. ``auto`` prices calls by a model
fitted to those timings and every configured shape timed on both graphs (exact lookups); that
table (a ``compare.CostTable``) also lets ``partition``, ``buckets-partition`` and ``packing``
minimise predicted latency; ``padding`` and ``buckets`` use the largest batch size.

Every request goes through ``compare.compare`` (so latency is what ``compare`` reports: host
time — tokenize, plan, scatter, gather — plus device time): each strategy compiled and warmed
up, then ``--repeats`` rounds, the strategies in an order rotated every round (and shuffled
from request to request, so no strategy always runs right after the same other one). Round r's total
for a strategy is the sum of its r-th latency over all requests; texts/s and the ratio to
``dynamic`` are computed per round and reported as the median and the range over rounds.
The goals of issue 11 are checked on those medians. Under each batch: the layouts ``auto``
chose, its predicted device time (the cost model, from the quietest timing rounds, so a run
under load measures more) next to the measured one, and the fixed strategies that made the
same calls as ``auto`` on how many requests (where they did, a difference is host time —
``auto`` prices its candidates — or noise). Last, plan-making time for 10,000 sequences
(``benchmarks/plan_speed.py``, run in this checkout). Nothing is asserted: the machine may be
shared, so the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the other benchmarks, reused below

import plan_speed  # noqa: E402  (its timer: plan-making time)
from peers import TEXTS, cpu_name  # noqa: E402  (the text sample; the CPU as lscpu names it)

FIXED = ("padding", "buckets", "partition", "buckets-partition", "packing")
STRATEGIES = ("dynamic", *FIXED, "auto")
GOAL_BATCH1 = 0.9
GOAL_BATCH32 = 2.0
NOISE = 0.05
"""auto 'matches' the best fixed strategy when its median ratio to it is at least 1 - NOISE."""


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def parse_shapes(text: str) -> tuple[list[int], list[int]]:
    """``"32,64,128,256x1,8"`` -> sequence buckets and batch sizes.

    >>> parse_shapes("32,64,128,256x1,8")
    ([32, 64, 128, 256], [1, 8])
    """
    seqs, _, sizes = text.partition("x")
    if not sizes:
        raise SystemExit(f"auto.py: error: --shapes {text!r}: write BUCKETSxBATCH_SIZES, e.g. 32,64,128,256x1,8")
    return sorted(int(s) for s in seqs.split(",")), sorted(int(b) for b in sizes.split(","))


def per_round(samples: list[list[float]]) -> list[float]:
    """Per-request latency samples (request x round) summed per round.

    >>> per_round([[1.0, 2.0], [3.0, 5.0]])
    [4.0, 7.0]
    """
    return [sum(col) for col in zip(*samples)]


def span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def timed_shapes(
    engine: Any, shapes: list[tuple[int, int]], *, rounds: int, packed: bool
) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
    """``{shape: ms}`` on the plain graph (and on the packed one with ``packed``): each shape
    timed by ``engine.measure_shape`` (a median of 5 calls) once per round, shapes interleaved,
    the least over rounds: load from elsewhere only ever adds time, and one loaded round would
    otherwise make a shape look dearer than a larger one."""
    jobs = [(False, s) for s in shapes] + ([(True, s) for s in shapes] if packed else [])
    samples: dict[tuple[bool, tuple[int, int]], list[float]] = defaultdict(list)
    for r in range(max(1, rounds)):
        for graph, shape in jobs[r % len(jobs):] + jobs[: r % len(jobs)]:
            samples[graph, shape].append(engine.measure_shape(shape, packed=graph))
    out: tuple[dict, dict] = ({}, {})
    for (graph, shape), ms in samples.items():
        out[graph][shape] = min(ms)
    return out


def plan_speed_lines(size: int, repeats: int) -> list[str]:
    """Plan-making time of ``size`` sequences for every strategy, by ``benchmarks/plan_speed.py``
    (its timer, in a subprocess in this checkout), as lines to print."""
    workloads = ["sst2-like", "wiki-like"]
    times = plan_speed.run_in(ROOT, [size], workloads, repeats)
    labels = list(dict.fromkeys(k.split("|")[2] for k in times))
    lines = [f"plan-making time for {size:,} sequences, median of {repeats} (ms; benchmarks/plan_speed.py; goal < 100 ms)"]
    lines.append(f"{'strategy':<20}" + "".join(f"{w:>12}" for w in workloads))
    for label in labels:
        lines.append(f"{label:<20}" + "".join(f"{times[f'{w}|{size}|{label}']:>12.1f}" for w in workloads))
    worst = max(times, key=times.get)
    lines.append(f"slowest: {worst.replace('|', ' ')} at {times[worst]:.1f} ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--batches", default="1,8,32", help="texts per request (default 1,8,32)")
    ap.add_argument("--num-texts", type=int, default=128, help="texts per pass, cycled from --texts (default 128)")
    ap.add_argument("--repeats", type=int, default=9, help="interleaved timed rounds (default 9)")
    ap.add_argument("--precision", default="f32", choices=["auto", "f32", "bf16"])
    ap.add_argument("--budget", type=int, default=8, help="compiled shapes at most (default 8)")
    ap.add_argument("--shapes", default="tune", help="'tune' (default: tune --budget K --measure on the sample) or BUCKETSxBATCH_SIZES")
    ap.add_argument("--max-seq", type=int, default=None, help="top bucket (default: tune's, the longest text rounded up to 8)")
    ap.add_argument("--cost-rounds", type=int, default=5, help="interleaved rounds timing each shape for the cost model (default 5)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--texts", default=str(TEXTS), help="one text per line (default assets/texts.txt)")
    ap.add_argument("--no-plan-speed", action="store_true", help="skip the plan-making timings")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args(argv)

    from shapedemo.measure.compare import CostTable, compare
    from shapedemo.runtime.engine import Engine
    from shapedemo.model import load_model
    from shapedemo.runner import FIT_SHAPES
    from shapedemo.planning.strategies import fit_cost_model
    from shapedemo.planning.strategies.budget import tune_shapes

    batches = [int(b) for b in args.batches.split(",")]
    strategies = list(dict.fromkeys(["dynamic", *args.strategies.split(",")]))
    lines = [t.strip() for t in Path(args.texts).read_text(encoding="utf-8").splitlines() if t.strip()]
    texts = list(itertools.islice(itertools.cycle(lines), args.num_texts))
    load_before = load_average()
    started = time.perf_counter()
    loaded = load_model(args.model)
    engine = Engine(loaded, precision=args.precision)
    tokenizer = loaded.tokenizer
    sample = tokenizer.encode(lines).lengths
    lengths = tokenizer.encode(texts).lengths
    allow_packing = loaded.packed is not None

    # the cost model: runner.measure_cost_model's shapes (what tune --measure times), timed in
    # interleaved rounds here (a burst of load then skews one round, not one shape), and fitted
    top = args.max_seq or min(loaded.max_length, -(-max(sample) // 8) * 8)
    fit_shapes = sorted({s for s in FIT_SHAPES if s[1] <= top} | {(1, top)})
    fit_table, _ = timed_shapes(engine, fit_shapes, rounds=args.cost_rounds, packed=False)
    model = fit_cost_model(fit_table)
    if args.shapes == "tune":
        config = tune_shapes(sample, budget=args.budget, request_sizes=batches, cost_model=model,
                             max_seq=args.max_seq, allow_packing=allow_packing)
        buckets, sizes = config["seq_buckets"], config["batch_sizes"]
        source = f"tune --budget {args.budget} --measure on the {len(lines)} texts"
    else:
        buckets, sizes = parse_shapes(args.shapes)
        source = "--shapes"
    if len(buckets) * len(sizes) > args.budget:
        print(f"auto.py: error: {len(buckets)} buckets x {len(sizes)} batch sizes is over the budget of {args.budget}", file=sys.stderr)
        return 2
    max_seq = buckets[-1]
    options = dict(seq_buckets=buckets, batch_sizes=sizes, max_seq=max_seq)
    # every configured shape on both graphs, timed the same way: exact prices for auto, and the
    # table that lets partition, buckets-partition and packing minimise predicted latency
    plain, packed = timed_shapes(engine, [(b, s) for s in buckets for b in sizes], rounds=args.cost_rounds,
                                 packed=allow_packing)
    table = CostTable(plain, packed)
    model = fit_cost_model({**fit_table, **plain}, packed_table=packed)

    coef = model.coefficients or (0.0, 0.0, 0.0)
    print(
        f"auto vs fixed strategies vs native dynamic: {loaded.spec}, {len(texts)} texts per pass ({len(lines)} from "
        f"{Path(args.texts).name}, cycled; {min(lengths)}..{max(lengths)} tokens, median {statistics.median(lengths):g}), "
        "end to end (tokenize + plan + scatter + infer + gather, as compare measures latency = host + device)"
    )
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores); precision {engine.inference_precision} "
          f"(asked {args.precision}); load average before: {load_before}")
    print(f"shapes ({source}): seq buckets {buckets} x batch sizes {sizes} = {len(buckets) * len(sizes)} shapes, "
          f"max_seq = pack_seq = {max_seq}; auto and packing compile them on the packed graph too")
    print(f"cost model: {coef[0]:.3f} ms per call + {coef[1] * 1000:.2f} us per token slot + "
          f"{coef[2] * 1e6:.3f} ns per slot x seq, packed graph x{model.packed_factor:.2f}; fitted to "
          f"{len(model.table)} shapes timed here ({args.cost_rounds} interleaved rounds), the "
          f"{len(plain) + len(packed)} configured ones (both graphs) priced exactly")
    print(f"{args.repeats} rounds per request, strategies in rotated order each round; ranges are over rounds")

    results: dict[str, Any] = {"cpu": cpu_name(), "precision": engine.inference_precision, "seq_buckets": buckets,
                               "batch_sizes": sizes, "cost_model": model.to_dict(), "batches": {}}
    header = (f"{'batch':>5}  {'strategy':<18} {'texts/s':>8} {'x dynamic':>9} {'(range)':>11} "
              f"{'host ms':>8} {'device ms':>9} {'calls':>6} {'shapes':>6} {'max|diff|':>9}")
    print(header)
    print("-" * len(header))
    goals: list[str] = []
    for b in batches:
        groups = [texts[i : i + b] for i in range(0, len(texts), b)]
        lat: dict[str, list[list[float]]] = defaultdict(list)
        host: dict[str, list[float]] = defaultdict(list)
        device: dict[str, list[float]] = defaultdict(list)
        calls: Counter[str] = Counter()
        shapes: dict[str, set] = defaultdict(set)
        diff: dict[str, float] = defaultdict(float)
        layouts: Counter[str] = Counter()
        same: Counter[str] = Counter()  # requests where a fixed strategy made auto's calls
        predicted = measured = 0.0
        for g, group in enumerate(groups):
            encoded = tokenizer.encode(group)
            # compare rotates the order each round but keeps neighbours: who runs right after
            # whom (another compiled model, the packed graph) changes from request to request
            order = random.Random(f"{b}/{g}").sample(strategies, len(strategies))
            result = compare(engine, encoded, order, **options, cost_table=table, cost_model=model,
                             repeats=args.repeats, warmup=1, texts=group)
            for name in strategies:
                row = result.result(name)
                plan = result.plans[name]
                lat[name].append(row["latency_ms"]["samples"])
                host[name].append(row["host_ms"]["median"])
                device[name].append(row["device_ms"]["median"])
                calls[name] += plan.num_calls
                shapes[name] |= {("dynamic" if plan.dynamic else (plan.packed, s)) for s in (plan.compiled_shapes or [None])}
                diff[name] = max(diff[name], row["fidelity"]["max_abs_diff"])
            if "auto" in strategies:
                params = result.plans["auto"].params
                layouts[params["layout"]] += 1
                mine = result.plans["auto"]
                for name in strategies:
                    other = result.plans[name]
                    if name != "auto" and not other.dynamic and other.packed == mine.packed and sorted(
                        c.shape for c in other.calls) == sorted(c.shape for c in mine.calls):
                        same[name] += 1
                predicted += params["predicted_cost"]
                measured += result.result("auto")["device_ms"]["median"]
        totals = {n: per_round(lat[n]) for n in strategies}
        rates = {n: [len(texts) / (t / 1e3) for t in totals[n]] for n in strategies}
        ratios = {n: [d / t for d, t in zip(totals["dynamic"], totals[n])] for n in strategies}
        rows = {}
        for name in strategies:
            n_shapes = "dyn" if shapes[name] == {"dynamic"} else str(len(shapes[name]))
            rows[name] = {
                "texts_per_s": statistics.median(rates[name]),
                "x_dynamic": statistics.median(ratios[name]),
                "x_dynamic_range": [min(ratios[name]), max(ratios[name])],
                "host_ms_per_request": statistics.fmean(host[name]),
                "device_ms_per_request": statistics.fmean(device[name]),
                "calls_per_request": calls[name] / len(groups),
                "compiled_models": n_shapes,
                "max_abs_diff": diff[name],
            }
            r = rows[name]
            print(f"{b:>5}  {name:<18} {r['texts_per_s']:>8.1f} {r['x_dynamic']:>9.2f} {span(ratios[name]):>11} "
                  f"{r['host_ms_per_request']:>8.2f} {r['device_ms_per_request']:>9.2f} {r['calls_per_request']:>6.2f} "
                  f"{n_shapes:>6} {diff[name]:>9.1e}")
        entry: dict[str, Any] = {"requests": len(groups), "strategies": rows}
        if "auto" in strategies:
            fixed = [n for n in strategies if n in FIXED]
            note = (f"       auto: layouts {dict(layouts)}; predicted device time {predicted / len(groups):.2f} ms "
                    f"per request, measured {measured / len(groups):.2f} ms ({predicted / measured:.2f}x)")
            print(note)
            if same:
                print("       same calls as auto: " + ", ".join(f"{n} on {k}/{len(groups)} requests" for n, k in same.items()))
            entry["auto"] = {"layouts": dict(layouts), "same_calls": dict(same), "predicted_ms": predicted / len(groups),
                             "measured_device_ms": measured / len(groups)}
            a = rows["auto"]["x_dynamic"]
            if b == 1:
                goals.append(f"batch 1: auto {a:.2f}x dynamic (goal >= {GOAL_BATCH1}): {'met' if a >= GOAL_BATCH1 else 'MISSED'}")
            if b == 32:
                goals.append(f"batch 32: auto {a:.2f}x dynamic (goal >= {GOAL_BATCH32}): {'met' if a >= GOAL_BATCH32 else 'MISSED'}")
            if fixed:
                best = max(fixed, key=lambda n: rows[n]["texts_per_s"])
                vs = [t / u for t, u in zip(totals[best], totals["auto"])]
                med = statistics.median(vs)
                verdict = "met" if med >= 1 - NOISE else "MISSED"
                goals.append(f"batch {b}: auto {med:.2f}x the best fixed strategy ({best}; range {span(vs)}, "
                             f"goal >= 1 within {NOISE:.0%}): {verdict}")
                entry["auto"]["x_best_fixed"] = {"best": best, "median": med, "range": [min(vs), max(vs)]}
        results["batches"][b] = entry
    print(f"load average after: {load_average()}; wall {time.perf_counter() - started:.0f} s")
    print("goals (issue 11):")
    for line in goals:
        print(f"  {line}")
    results["goals"] = goals
    if not args.no_plan_speed:
        speed = plan_speed_lines(10_000, 5)
        print("\n".join(speed))
        results["plan_speed"] = speed
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
