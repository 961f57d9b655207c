"""Which shapes should ``auto`` declare? Several sets of buckets x batch sizes, end to end, in one run.

    python benchmarks/declared_sets.py [--model minilm] [--texts assets/paragraphs.txt] [--batch 32]
                                       [--sets "32,64,128,256/1,2,4,8,16,32;32,64,96,128,192,256/1,2,4,8,16,32"]
                                       [--precision auto|bf16|f32] [--num-texts 96] [--rounds 10]

The default ``--sets``: issue 20's set (buckets 32..256, batch sizes 1..32 in powers of two),
the same with buckets 96 and 192 added, and with batch sizes 1-8, 12, 16, 24 and 32.

Each set (``buckets/batch sizes``; sets separated by ``;``) gets the measured cost table
``auto`` prices by (``runtime/costs.py``: reused from the cache, else timed now, a few minutes
per set on 2 cores) and its own planner. One engine runs them all: a shape two sets share is
compiled once. ``auto`` then embeds the texts end to end (tokenize, plan, scatter, infer,
gather) in requests of ``--batch`` consecutive texts, every set on every request, in an order
shuffled per request and round. Texts longer than the smallest set's largest bucket are left out,
so that every set runs the same texts.

Printed per set: its static shapes (plain and packed graph), its mean calls per request, the
rate its plans reach on its own table's prices (a fraction of that table's best full-shape
rate), the best any plan of static calls of the set's shapes can reach on those prices
(``floor.best_plans``: what a richer set could at most take back), real tokens/s in its
least-disturbed round, and its speed against the first set: the median over rounds of the
ratio within a round (the machine's speed, which switches between a fast and a slow mode,
cancels from it), with its range, and its host share (end to end minus
device time). A ratio inside the other sets' range of 1.00 is noise, not a finding. Nothing is
asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from floor import PARAGRAPHS, best_plans, end_to_end, groups_lengths, ints, predicted, shuffled, table_rates, texts_that_fit  # this folder is the script's path

DEFAULT_SETS = "32,64,128,256/1,2,4,8,16,32;32,64,96,128,192,256/1,2,4,8,16,32;32,64,128,256/1,2,3,4,5,6,7,8,12,16,24,32"
STEPS = ("tokenize", "plan", "scatter", "device", "gather", "total")


def parse_sets(text: str) -> list[tuple[list[int], list[int]]]:
    """``"32,64/1,2;32,64,128/1,4"`` -> ``[([32, 64], [1, 2]), ([32, 64, 128], [1, 4])]``.

    >>> parse_sets("64,32/2,1 ; 128/4")
    [([32, 64], [1, 2]), ([128], [4])]
    """
    sets = []
    for part in text.split(";"):
        if not part.strip():
            continue
        buckets, slash, sizes = part.partition("/")
        try:
            pair = (ints(buckets), ints(sizes))
        except ValueError:
            pair = ([], [])
        if not slash or not pair[0] or not pair[1] or min(pair[0] + pair[1]) < 1:
            raise ValueError(f"a set is buckets/batch sizes of positive integers, like 32,64,128/1,2,4: got {part.strip()!r}")
        if pair in sets:
            raise ValueError(f"the same set twice: {part.strip()!r}")
        sets.append(pair)
    if len(sets) < 2:
        raise ValueError("give at least two sets to compare, separated by ';'")
    return sets


def label(buckets: list[int], sizes: list[int]) -> str:
    return f"{','.join(map(str, buckets))} / {','.join(map(str, sizes))}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--texts", default=str(PARAGRAPHS), help="one text per line (default assets/paragraphs.txt)")
    ap.add_argument("--batch", type=int, default=32, help="texts per request (default 32)")
    ap.add_argument("--sets", default=DEFAULT_SETS, help="buckets/batch sizes, sets separated by ';' (the first is the reference)")
    ap.add_argument("--precision", default="auto", help="auto (the CPU's default), bf16 or f32")
    ap.add_argument("--num-texts", type=int, default=96, help="texts per round (default 96)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds (default 10)")
    args = ap.parse_args(argv)
    try:
        sets = parse_sets(args.sets)
    except ValueError as e:
        ap.exit(2, f"declared_sets.py: {e}\n")
    if args.batch < 1 or args.num_texts < 1 or args.rounds < 1:
        ap.exit(2, "declared_sets.py: --batch, --num-texts and --rounds must be at least 1\n")

    from shapedemo.model import load_model
    from shapedemo.planning.strategies.memo import PlanMemo
    from shapedemo.runtime.costs import cpu_name, measured_cost_model
    from shapedemo.runtime.engine import Engine

    loaded = load_model(args.model)
    longest = min(b[-1] for b, _ in sets)
    texts, lengths = texts_that_fit(loaded.tokenizer, args.texts, args.num_texts, longest)  # what every set can take
    groups = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
    engine = Engine(loaded, precision=args.precision)
    print(
        f"declared sets: {loaded.spec}, {len(texts)} texts from {Path(args.texts).name} "
        f"({min(lengths)}..{max(lengths)} tokens, mean {statistics.fmean(lengths):.1f}), requests of {args.batch}, end to end"
    )
    print(f"CPU: {cpu_name()}; inference precision {engine.inference_precision}")

    names = [f"#{i + 1} {label(b, s)}" for i, (b, s) in enumerate(sets)]
    runners, steps, info = {}, {}, {}
    for name, (buckets, sizes) in zip(names, sets):
        print(f"cost table for {name} ...", flush=True)
        model, document = measured_cost_model(engine, buckets, sizes)
        rates = table_rates(document)
        options = dict(seq_buckets=buckets, batch_sizes=sizes, max_seq=buckets[-1], memo=PlanMemo())
        lengths_of = groups_lengths(lengths, args.batch)
        _, fraction, _, plans = predicted(model, rates, lengths_of, options)
        info[name] = (len(rates), statistics.fmean(len(p.calls) for p in plans), fraction, best_plans(model, rates, lengths_of))
        steps[name] = dict.fromkeys(STEPS, 0.0)
        runners[name] = end_to_end(engine, "auto", {**options, "cost_model": model}, steps[name])
    for name in names:  # warm-up: compiles what each set's plans need
        for g in groups:
            runners[name](g)
        steps[name].update(dict.fromkeys(STEPS, 0.0))  # in place: the runner holds it

    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(args.rounds):
        spent = dict.fromkeys(names, 0.0)
        for g, group in enumerate(groups):
            for name in shuffled(names, r, g):
                t0 = time.perf_counter()
                runners[name](group)
                spent[name] += time.perf_counter() - t0
        for name in names:
            seconds[name].append(spent[name])
        print(f"  round {r + 1}/{args.rounds}: " + ", ".join(f"{n.split()[0]} {spent[n] * 1e3:.0f} ms" for n in names), flush=True)

    header = f"{'declared set (buckets / batch sizes)':<52} {'static shapes':>13}  {'calls':>5}  {'on its prices':>13}  {'best plans':>10}  {'real tok/s':>10}  {'speed':>5}  per round"
    print(header)
    print("-" * len(header))
    real = sum(lengths)
    for name in names:
        shapes, calls, priced, best = info[name]
        ratios = [a / b for a, b in zip(seconds[names[0]], seconds[name])]
        host = steps[name]["total"] - steps[name]["device"]  # tokenize, plan, scatter, gather and the runner's bookkeeping
        print(
            f"{name:<52} {shapes:>13}  {calls:>5.1f}  {priced:>13.2f}  {best:>10.2f}  {real / min(seconds[name]):>10,.0f}  "
            f"{statistics.median(ratios):>5.3f}  {min(ratios):.3f}..{max(ratios):.3f}  (host {host / steps[name]['total'] * 100:.1f}%)"
        )
    engine.release_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
