"""Every strategy on every built-in workload, measured in one process: ratios to native dynamic.

    python benchmarks/strategies.py [--model minilm] [--batch 16] [--repeats 5] [--precision auto]

Prints, per workload, each strategy's median latency, its ratio to `dynamic`, its padding and
its number of calls and compiled shapes. Numbers are from this run on this machine; nothing is
asserted about them.
"""

from __future__ import annotations

import argparse

from shapedemo.measure.compare import compare, encode_inputs
from shapedemo.measure.report import format_table
from shapedemo.settings import DEFAULT_STRATEGIES
from shapedemo.shapes import default_max_seq
from shapedemo.planning.workloads import sample_lengths
from shapedemo.runtime.engine import Engine
from shapedemo.model import load_model
from shapedemo.planning.workloads import WORKLOADS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--precision", default="auto", choices=["auto", "f32", "bf16"])
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()

    engine = Engine(load_model(args.model), precision=args.precision)
    strategies = list(DEFAULT_STRATEGIES) + ["padding-nomask"]
    for name in args.workloads.split(","):
        lengths = sample_lengths(name, args.batch, seed=args.seed, max_len=engine.loaded.max_length)
        encoded = encode_inputs(engine.loaded, lengths=lengths, seed=args.seed)
        result = compare(engine, encoded, strategies, max_seq=default_max_seq(lengths), repeats=args.repeats)
        print(f"\n== workload {name}, batch {args.batch}, seed {args.seed}")
        print(format_table(result.to_dict()))


if __name__ == "__main__":
    main()
