"""What does the cost table's noise cost ``auto``? Several tables of one declared set, timed in this run.

    python benchmarks/table_noise.py [--model minilm] [--tables 3] [--precision auto|bf16|f32]
                                     [--texts assets/paragraphs.txt,assets/texts.txt]
                                     [--batches 1,8,32] [--buckets 32,64,128,256]
                                     [--batch-sizes 1,2,4,8,16,32] [--num-texts 192]

The cost table ``auto`` prices by (``runtime/costs.py``) is timed ``--tables`` times, one table
after another, none of them written to the cache (the kept table, if any, stays as it was).
The consensus is each shape's median over the tables. Printed:

- per table, how far its prices stray from the consensus: the median and the largest
  ``|price / consensus - 1|`` over its shapes;
- per corpus and request size, the consensus price of the plans each table chose for the same
  requests, over the consensus price of the plans the consensus itself chooses (1.000: the
  noise changed no decision that costs anything; 1.02: a table's noise made its plans 2%
  dearer, as far as the consensus can tell).

Prices only: nothing runs end to end (``floor.py`` does that), nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from floor import ints  # the benchmarks' own list parser (this folder is the script's path)

ROOT = Path(__file__).resolve().parents[1]
TEXTS = f"{ROOT / 'assets' / 'paragraphs.txt'},{ROOT / 'assets' / 'texts.txt'}"
KINDS = ("table", "packed_table", "dynamic_table")


def consensus(documents: list[dict[str, Any]]) -> dict[str, Any]:
    """The first document with each shape's ms replaced by its median over ``documents``."""
    out = json.loads(json.dumps({k: v for k, v in documents[0].items() if k in KINDS + ("key", "measured_at", "rounds")}))
    for kind in KINDS:
        for j, row in enumerate(out.get(kind, [])):
            row["ms"] = statistics.median(d[kind][j]["ms"] for d in documents)
    return out


def strays(document: dict[str, Any], middle: dict[str, Any]) -> list[float]:
    """``|ms / consensus ms - 1|`` of every shape of ``document``."""
    return [abs(row["ms"] / mid["ms"] - 1) for kind in KINDS for row, mid in zip(document.get(kind, []), middle.get(kind, []))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--tables", type=int, default=3, help="tables to time (at least 2)")
    ap.add_argument("--precision", default="auto", help="auto (the CPU's default), bf16 or f32")
    ap.add_argument("--texts", default=TEXTS, help="comma-separated files, one text per line")
    ap.add_argument("--batches", default="1,8,32", help="texts per request")
    ap.add_argument("--buckets", default="32,64,128,256")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    ap.add_argument("--num-texts", type=int, default=192, help="texts per corpus (its lines, cycled)")
    args = ap.parse_args(argv)
    if args.tables < 2:
        ap.error("--tables: at least 2")

    from shapedemo.model import load_model
    from shapedemo.planning.strategies import make_plan
    from shapedemo.planning.strategies.memo import PlanMemo
    from shapedemo.runtime.costs import cost_model_of, cpu_name, measured_cost_model
    from shapedemo.runtime.engine import Engine

    buckets, sizes = ints(args.buckets), ints(args.batch_sizes)
    loaded = load_model(args.model)
    engine = Engine(loaded, precision=args.precision)
    print(f"table noise: {loaded.spec} on {cpu_name()} ({os.cpu_count()} logical cores), inference precision "
          f"{engine.inference_precision}; declared set: buckets {buckets} x batch sizes {sizes}")
    documents = []
    for t in range(args.tables):
        _, document = measured_cost_model(engine, buckets, sizes, reuse=False, keep=False)
        documents.append(document)
        print(f"  table {t + 1}/{args.tables} timed in {document['seconds']:.0f} s", flush=True)
    middle = consensus(documents)
    models = [cost_model_of(d) for d in documents]
    judge = cost_model_of(middle)
    for t, document in enumerate(documents):
        off = strays(document, middle)
        print(f"  table {t + 1}: prices off the consensus by {100 * statistics.median(off):.1f}% (median), "
              f"{100 * max(off):.1f}% (largest) over {len(off)} shapes")
    header = f"{'texts':<16} {'batch':>5}  " + "  ".join(f"{'table ' + str(t + 1):>8}" for t in range(len(models)))
    print("\nconsensus price of each table's plans / of the consensus plans")
    print(header)
    print("-" * len(header))
    for path in [p for p in args.texts.split(",") if p.strip()]:
        lines = [t.strip() for t in Path(path).read_text(encoding="utf-8").splitlines() if t.strip()]
        texts = list(itertools.islice(itertools.cycle(lines), args.num_texts))
        lengths = loaded.tokenizer.encode(texts, truncate=True, max_length=buckets[-1]).lengths
        for batch in ints(args.batches):
            groups = [lengths[i : i + batch] for i in range(0, len(lengths), batch)]

            def priced(model: Any) -> float:
                options = dict(seq_buckets=buckets, batch_sizes=sizes, max_seq=buckets[-1], memo=PlanMemo(), cost_model=model)
                return sum(judge.price_plan(make_plan("auto", g, **options)) for g in groups)

            best = priced(judge)
            print(f"{Path(path).name:<16} {batch:>5}  " + "  ".join(f"{priced(m) / best:>8.3f}" for m in models))
    engine.release_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
