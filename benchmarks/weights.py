"""The weights an NPU runs: f32, f16, int8-weights and int8 x strategies, on real texts.

    python benchmarks/weights.py [--model minilm] [--batch 32] [--num-texts 128] [--rounds 3]
                                 [--modes f32,f16,int8-weights,int8] [--strategies dynamic,buckets-partition,packing,auto]
                                 [--corpus assets/paragraphs.txt] [--calibration-file assets/texts.txt]
                                 [--max-seq 256] [--seq-buckets 32,64,128,256] [--batch-sizes 1,2,4,8,16,32]

Two tables, one process:

1. **Fidelity** (at f32 inference precision, so the weights are the only change): every weights
   mode x strategy against f32 weights' ``dynamic-single`` (each text alone) on the whole corpus
   (``assets/paragraphs.txt``: 400 real paragraphs): max |diff| of hidden states, min cosine of
   the sentence embeddings, and recall@10 of each paragraph's 10 nearest neighbours (cosine)
   against the f32 neighbours. ``int8`` appears twice: calibrated on exact lengths and on the
   plan's padded static shapes (the same calibration texts, ``--calibration-file``, by default
   ``assets/texts.txt``: disjoint from the corpus, so the quantizer never saw the test texts).
2. **Speed** at the CPU's default inference precision (``auto``: bf16 on AMX / AVX512-BF16
   Xeons, f32 elsewhere; printed): texts/s end to end (tokenize + plan + infer + pool) for
   requests of ``--batch`` texts, median over rounds, interleaved request by request with the
   order rotated, so load from others lands on all runners alike; the ratio to f32 weights of
   the same strategy within each round (median and range); compile seconds and memory added
   by each mode's compiled shapes (one warm-up pass compiles them). ``auto`` is priced by token
slots here (timing each mode's cost table first would take longer than the benchmark).

sentence-transformers and optimum-intel (their OpenVINO qint8 export) are shown side by side
only where installed; they need torch and are never a dependency. Nothing is asserted: read the
ratios (the machine may be shared).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from shapedemo.measure.compare import fidelity, neighbour_recall
from shapedemo.model.compress import calibration_for, compress, weight_bytes
from shapedemo.planning.strategies import make_plan
from shapedemo.runtime.costs import cpu_name

ROOT = Path(__file__).resolve().parent.parent
STRATEGIES = "dynamic,buckets-partition,packing,auto"


def read_lines(path: str) -> list[str]:
    return [t.strip() for t in Path(path).read_text(encoding="utf-8").splitlines() if t.strip()]


def peers_installed() -> list[str]:
    """Which of the torch-based peers are importable here."""
    return [name for name in ("sentence_transformers", "optimum.intel") if _found(name)]


def _found(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--batch", type=int, default=32, help="texts per request in the speed table (default 32)")
    ap.add_argument("--num-texts", type=int, default=128, help="corpus texts per timed pass (default 128)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    ap.add_argument("--modes", default="f32,f16,int8-weights,int8")
    ap.add_argument("--strategies", default=STRATEGIES)
    ap.add_argument("--corpus", default=str(ROOT / "assets" / "paragraphs.txt"))
    ap.add_argument("--calibration-file", default=str(ROOT / "assets" / "texts.txt"))
    ap.add_argument("--max-seq", type=int, default=256)
    ap.add_argument("--seq-buckets", default="32,64,128,256")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32")
    ap.add_argument("--speed-precision", default="auto", choices=["auto", "f32", "bf16"])
    ap.add_argument("--only", choices=["fidelity", "speed"], help="one of the two tables (two processes at once on a busy machine)")
    args = ap.parse_args(argv)
    from shapedemo.model import load_model

    modes = args.modes.split(",")
    strategies = args.strategies.split(",")
    options = {"max_seq": args.max_seq, "seq_buckets": [int(x) for x in args.seq_buckets.split(",")],
               "batch_sizes": [int(x) for x in args.batch_sizes.split(",")]}
    base = load_model(args.model)
    corpus = read_lines(args.corpus)
    encoded = base.tokenizer.encode(corpus)
    cal_texts = base.tokenizer.encode(read_lines(args.calibration_file), truncate=True, max_length=args.max_seq)

    models = {}
    for mode in modes:
        layouts = ["exact", "padded"] if mode == "int8" else [None]
        for layout in layouts:
            name = f"int8 ({layout})" if layout else mode
            cal = calibration_for(cal_texts, shapes=layout, source="file texts", **options) if layout else None
            t0 = time.perf_counter()
            models[name] = compress(base, mode, calibration=cal)
            info = models[name].weights_info or {}
            print(f"built {name}: {time.perf_counter() - t0:.1f} s{' (cached)' if info.get('from_cache') else ''}, "
                  f"weights {weight_bytes(models[name].model) / 2**20:.1f} MiB", file=sys.stderr, flush=True)

    lengths = encoded.lengths
    print(f"weights: {base.spec}; corpus {Path(args.corpus).name}: {len(corpus)} texts, {min(lengths)}..{max(lengths)} "
          f"tokens (mean {statistics.fmean(lengths):.1f}); int8 calibrated on {len(cal_texts.lengths)} texts of "
          f"{Path(args.calibration_file).name} (disjoint from the corpus)")
    flags = next((line.split(":", 1)[1].split() for line in _cpuinfo() if line.startswith("flags")), [])
    isa = [f for f in ("avx512_vnni", "avx_vnni", "amx_int8", "amx_bf16", "avx512_bf16") if f in flags]
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores; int8/bf16 units: {', '.join(isa) or 'none'})")
    peers = peers_installed()
    print("sentence-transformers / optimum-intel: " + (", ".join(peers) + " installed (not run here yet)" if peers
          else "not installed here (they need torch; never a dependency), so no qint8 export side by side"))

    fid_rows: dict[tuple[str, str], dict] = {}
    if args.only != "speed":
        fid_rows = fidelity_table(models, base, encoded, strategies, options)
    if args.only != "fidelity":
        speed_table(models, corpus, strategies, options, args, fid_rows)
    return 0


def fidelity_table(models: dict, base, encoded, strategies: list[str], options: dict) -> dict:
    """Every mode x strategy against f32 weights' dynamic-single at f32 (printed as it goes)."""
    from shapedemo.runtime.engine import Engine

    lengths = encoded.lengths
    corpus_n = len(lengths)
    print(f"\nFidelity at f32 inference precision, {corpus_n} texts, against f32 weights' dynamic-single:")
    reference = Engine(base, precision="f32").run(make_plan("dynamic-single", lengths, **options), encoded, warmup=0, repeats=1)
    header = f"{'weights':<14} {'strategy':<18} {'max|diff|':>9} {'min cos':>8} {'recall@10':>9}"
    print(header + "\n" + "-" * len(header))
    fid_rows: dict[tuple[str, str], dict] = {}
    for name, loaded in models.items():
        engine = Engine(loaded, precision="f32")
        for strategy in strategies:
            out = engine.run(make_plan(strategy, lengths, **options), encoded, warmup=0, repeats=1)
            row = {**fidelity(out, reference), "recall": neighbour_recall(out.embeddings, reference.embeddings)}
            fid_rows[(name, strategy)] = row
            print(f"{name:<14} {strategy:<18} {row['max_abs_diff']:9.2e} {row['min_cosine']:8.5f} {row['recall']:9.4f}", flush=True)
        engine.release_all()
    if "int8 (exact)" in models:
        for strategy in strategies:
            e, p = fid_rows[("int8 (exact)", strategy)], fid_rows[("int8 (padded)", strategy)]
            print(f"calibration, {strategy}: padded - exact = min cos {p['min_cosine'] - e['min_cosine']:+.5f}, "
                  f"recall@10 {p['recall'] - e['recall']:+.4f}")
    return fid_rows


def speed_table(models: dict, corpus: list[str], strategies: list[str], options: dict, args, fid_rows: dict) -> None:
    """texts/s at the default precision, requests of ``args.batch`` real texts, interleaved."""
    from shapedemo.runtime.engine import Engine

    texts = list(itertools.islice(itertools.cycle(corpus), args.num_texts))
    groups = [texts[i : i + args.batch] for i in range(0, len(texts), args.batch)]
    speed_models = {k: v for k, v in models.items() if k != "int8 (padded)"}  # same graph, same speed as exact
    engines = {name: Engine(loaded, precision=args.speed_precision) for name, loaded in speed_models.items()}
    precision = next(iter(engines.values())).inference_precision
    runners = {}
    for name, engine in engines.items():
        for strategy in strategies:
            runners[(name, strategy)] = _runner(engine, strategy, options)
    costs = {}
    for name, engine in engines.items():  # warm-up: compiles every shape; its cost per mode
        for strategy in strategies:
            for g in groups:
                runners[(name, strategy)](g)
        entries = engine.compiled_entries()
        costs[name] = (sum(e.compile_s for e in entries), sum(e.memory_mb or 0.0 for e in entries), len(entries))
    keys = list(runners)
    seconds: dict = {k: [] for k in keys}
    for r in range(args.rounds):
        spent = {k: 0.0 for k in keys}
        for i, g in enumerate(groups):
            k0 = (r * len(groups) + i) % len(keys)
            for key in keys[k0:] + keys[:k0]:
                t0 = time.perf_counter()
                runners[key](g)
                spent[key] += time.perf_counter() - t0
        for key in keys:
            seconds[key].append(spent[key])
    print(f"\nSpeed at {precision} (the CPU's default: --speed-precision {args.speed_precision}), requests of "
          f"{args.batch} texts, {len(texts)} texts per pass, {args.rounds} rounds interleaved:")
    header = f"{'weights':<14} {'strategy':<18} {'texts/s':>8} {'x f32':>6} {'(range)':>13} {'min cos':>8} {'recall@10':>9}"
    print(header + "\n" + "-" * len(header))
    for key in keys:
        name, strategy = key
        tps = len(texts) / statistics.median(seconds[key])
        ratios = [f / s for f, s in zip(seconds[("f32", strategy)], seconds[key])] if ("f32", strategy) in seconds else []
        fid = fid_rows.get(key, {"min_cosine": float("nan"), "recall": float("nan")})
        ratio = f"{statistics.median(ratios):6.2f} {f'({min(ratios):.2f}-{max(ratios):.2f})':>13}" if ratios else f"{'-':>6} {'':>13}"
        print(f"{name:<14} {strategy:<18} {tps:8.1f} {ratio} {fid['min_cosine']:8.5f} {fid['recall']:9.4f}")
    print("\nCompiled shapes per weights mode (warm-up pass, every strategy):")
    for name, (comp, mem, n) in costs.items():
        print(f"{name:<14} {n:3d} compiled models, compile {comp:6.2f} s, process memory added {mem:6.1f} MiB, "
              f"weights {weight_bytes(speed_models[name].model) / 2**20:.1f} MiB")


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _runner(engine, strategy: str, options: dict):
    tokenizer = engine.loaded.tokenizer

    def run(group: list[str]) -> np.ndarray:
        enc = tokenizer.encode(group)
        return engine.run(make_plan(strategy, enc.lengths, **options), enc, warmup=0, repeats=1).embeddings

    return run


if __name__ == "__main__":
    sys.exit(main())
