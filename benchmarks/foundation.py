"""Build, compile and batch-1 latency of a model, next to OpenVINO's own benchmark_app.

    python benchmarks/foundation.py --model minilm --seq 128 [--precision auto] [--benchmark-app]

Prints: build time (and whether the IR came from the cache), compile time of the dynamic model
and of one static shape, our engine's median latency for (1, seq) on the static and the dynamic
model, and, with --benchmark-app, benchmark_app's median for the same IR and shape.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shapedemo.runtime.engine import Engine
from shapedemo.measure.stats import latency_stats
from shapedemo.model import load_model
from shapedemo.planning.plan import Plan, single_row_call


def benchmark_app(xml: Path, shape: str, precision: str, seconds: int) -> float | None:
    """benchmark_app's median latency (ms) for one shape, latency hint, one request."""
    exe = Path(sys.executable).with_name("benchmark_app")
    cmd = [str(exe), "-m", str(xml), "-d", "CPU", "-hint", "latency", "-nireq", "1", "-t", str(seconds), "-shape", shape]
    if precision != "auto":
        cmd += ["-infer_precision", precision]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    match = re.search(r"Median:\s+([\d.]+) ms", out)
    return float(match.group(1)) if match else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--precision", default="auto", choices=["auto", "f32", "bf16"])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--benchmark-app", action="store_true")
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()

    start = time.perf_counter()
    loaded = load_model(args.model, cache_dir=None)
    print(f"{loaded.describe()}")
    print(f"build (no cache):          {time.perf_counter() - start:8.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(loaded, precision=args.precision, cache_dir=None)
        dyn = engine.compile(None)
        static = engine.compile((1, args.seq))
        print(f"compile dynamic:           {dyn.compile_s:8.2f} s  (+{dyn.memory_mb or 0:.0f} MiB)")
        print(f"compile static 1x{args.seq}:     {static.compile_s:8.2f} s  (+{static.memory_mb or 0:.0f} MiB)")
        enc = loaded.tokenizer.synthetic_ids([args.seq])
        rows = []
        for dynamic in (False, True):
            plan = Plan("dynamic" if dynamic else "padding", (args.seq,), (single_row_call(1, args.seq, [(0, args.seq)]),), dynamic=dynamic)
            out = engine.run(plan, enc, warmup=3, repeats=args.repeats)
            med = latency_stats(out.total_ms)["median"]
            rows.append(med)
            print(f"engine {'dynamic' if dynamic else 'static '} 1x{args.seq}:      {med:8.2f} ms (median of {args.repeats})")
        print(f"dynamic / static:          {rows[1] / rows[0]:8.2f}x  precision {engine.inference_precision}")
        if args.benchmark_app:
            import openvino as ov

            xml = Path(tmp) / "model.xml"
            ov.save_model(loaded.model, xml, compress_to_fp16=False)
            shape = f"[1,{args.seq}]"
            ref = benchmark_app(xml, shape, args.precision, args.seconds)
            print(f"benchmark_app dynamic model at {shape}: {ref} ms median  (engine/benchmark_app: {rows[1] / ref:.2f}x)" if ref else "benchmark_app gave no median")
            static_model = loaded.model.clone()
            static_model.reshape({i.get_any_name(): [1, args.seq] for i in static_model.inputs})
            xs = Path(tmp) / "static.xml"
            ov.save_model(static_model, xs, compress_to_fp16=False)
            ref_s = benchmark_app(xs, shape, args.precision, args.seconds)
            print(f"benchmark_app static IR  at {shape}: {ref_s} ms median  (engine/benchmark_app: {rows[0] / ref_s:.2f}x)" if ref_s else "benchmark_app gave no median")


if __name__ == "__main__":
    main()
