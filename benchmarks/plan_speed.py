"""Plan-making time of every strategy for 1,000 and 10,000 sequences, no model involved.

    python benchmarks/plan_speed.py [--sizes 1000,10000] [--workloads sst2-like,wiki-like]
                                    [--repeats 5] [--baseline /path/to/other/checkout]

Prints the median of ``--repeats`` runs of ``make_plan`` (validation included) per strategy,
workload and size, in ms. ``auto+model`` is ``auto`` priced by a fitted cost model (ms) rather
than token slots. Each checkout is timed in a subprocess started in its root. ``--baseline``
times the same plans with another checkout (e.g. the main branch) in this run and prints the
ratio. Numbers are from this
run on this machine; nothing is asserted about them.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

TIMER = r'''
import json, statistics, sys, time
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan
from shapedemo.planning.workloads import WORKLOADS

def timings(sizes, workloads, repeats):
    extra = {}
    try:
        from shapedemo.planning.strategies import CostModel
        extra["auto+model"] = ("auto", {"cost_model": CostModel(coefficients=(4.0, 0.02, 1e-4))})
    except ImportError:
        pass
    cases = {name: (name, {}) for name in STRATEGY_NAMES} | extra
    out = {}
    for workload in workloads:
        for n in sizes:
            lengths = WORKLOADS[workload].sample(n, 0)
            for label, (name, kwargs) in cases.items():
                runs = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    make_plan(name, lengths, **kwargs)
                    runs.append(time.perf_counter() - start)
                out[f"{workload}|{n}|{label}"] = 1000 * statistics.median(runs)
    return out
'''


def run_in(checkout: Path, sizes: list[int], workloads: list[str], repeats: int) -> dict[str, float]:
    code = TIMER + f"\nprint(json.dumps(timings({sizes!r}, {workloads!r}, {repeats})))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=checkout, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--workloads", default="sst2-like,wiki-like")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--baseline", type=Path, help="another checkout whose shapedemo to time too")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    workloads = args.workloads.split(",")
    # both checkouts timed the same way: a subprocess in the checkout's root, so its shapedemo
    # is the one imported (not an editable install of another one)
    here = run_in(Path(__file__).resolve().parents[1], sizes, workloads, args.repeats)
    base = run_in(args.baseline, sizes, workloads, args.repeats) if args.baseline else {}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"plan-making time, median of {args.repeats} (ms); CPU: {cpu}; Python {platform.python_version()}")
    columns = [(w, n) for w in workloads for n in sizes]
    labels = sorted({key.split("|")[2] for key in here}, key=lambda s: list(dict.fromkeys(k.split("|")[2] for k in here)).index(s))
    header = f"{'strategy':<20}" + "".join(f"{w[:9] + ' ' + format(n, ','):>20}" for w, n in columns)
    print(header)
    for label in labels:
        cells = []
        for w, n in columns:
            key = f"{w}|{n}|{label}"
            cell = f"{here[key]:.1f}"
            if key in base:
                cell += f" ({here[key] / base[key]:.2f}x)"
            cells.append(f"{cell:>20}")
        print(f"{label:<20}" + "".join(cells))
    if base:
        print(f"(ratio) = this checkout / {args.baseline}, both timed in this run")
    slowest = max(here, key=here.get)
    print(f"slowest: {slowest.replace('|', ' ')} at {here[slowest]:.1f} ms")


if __name__ == "__main__":
    main()
