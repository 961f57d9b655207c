"""The peer, side by side: OpenVINO GenAI's TextEmbeddingPipeline next to shapedemo's strategies.

    python benchmarks/peers.py [--model minilm] [--batches 1,8,32] [--num-texts 96] [--rounds 3]
                               [--precision f32] [--max-seq 256] [--texts assets/texts.txt]
                               [--seq-buckets 32,64,128,256] [--batch-sizes 1,2,4,8,16,32] [--auto-slots]

End to end, as a user sees it: texts in, sentence embeddings out, tokenization included. The
texts (assets/texts.txt, real English sentences and short paragraphs) are cycled to
``--num-texts`` and sent in groups of ``batch``. Runners:

- ``genai dynamic``: ``TextEmbeddingPipeline`` on our exported model (``shapedemo export``),
  mean pooling + L2 norm, dynamic shapes;
- ``genai static BxS``: the same with its static NPU-style configuration (``batch_size`` B,
  ``max_length`` S, ``pad_to_max_length``): every call must hold exactly B texts, so a short
  last group is filled with dummy texts, as a user would, and their embeddings dropped;
- shapedemo's strategies through its engine: tokenize + ``make_plan`` + ``engine.run``, timed
  around the whole thing, with compiled batch sizes 1, 2, 4 ... B (or ``--batch-sizes``),
  ``--seq-buckets`` (default powers of two) and ``max_seq`` S; ``auto`` priced by the measured
  cost table of that declared set, as it is by default (``--auto-slots`` adds it priced by
  token slots, as it was before the table).

Prints texts/s (median over rounds), the ratio to ``genai dynamic`` measured within each round
(median, and the range over rounds), and the max |diff| of the embeddings against ``genai
dynamic``. Runners interleave request by request: each round sends every group to every runner
in turn, the order shuffled from group to group and round to round, so drift from other load
lands on all of them alike and no runner always follows the same one; one untimed warm-up pass each first (it compiles the shapes).
Nothing is asserted: on a shared machine the numbers are noisy, so read the ratios.
Needs the extra: pip install -e ".[peers]".
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from shapedemo.model.export import ExportError, export_genai, genai_pipeline, pooling_of, require_peers
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan
from shapedemo.planning.strategies.memo import PlanMemo
from shapedemo.runtime.costs import cpu_name  # noqa: F401  (benchmarks/auto.py takes it from here)
from floor import shuffled  # the benchmarks' shared order (this folder is the script's path)

TEXTS = Path(__file__).resolve().parent.parent / "assets" / "texts.txt"
STRATEGIES = ("dynamic", "padding", "buckets-partition", "packing") + (("auto",) if "auto" in STRATEGY_NAMES else ())
DUMMY = "."  # what fills a static pipeline's short last group

Runner = Callable[[list[str]], np.ndarray]
"""Embeds one group of texts (one request), returning one embedding per text."""


def genai_runner(pipeline: object, *, batch: int | None) -> Runner:
    """Embed a group with ``pipeline``; with ``batch`` (a static pipeline) a short group is
    filled with dummy texts to exactly ``batch`` and the dummies' embeddings dropped."""

    def run(group: list[str]) -> list[list[float]]:
        full = group + [DUMMY] * (batch - len(group)) if batch else group
        return pipeline.embed_documents(full)[: len(group)]  # type: ignore[attr-defined]

    return run  # type: ignore[return-value]


def shapedemo_runner(
    engine: object, strategy: str, *, batch: int, max_seq: int,
    seq_buckets: list[int] | None = None, batch_sizes: list[int] | None = None, cost_model: object = None,
) -> Runner:
    """Tokenize, plan and run each group through shapedemo's engine (one request per group).
    Without ``batch_sizes``: 1, 2, 4 ... ``batch``; ``cost_model`` prices ``auto``'s calls
    (without it, token slots)."""
    sizes = shapedemo_sizes(batch, batch_sizes)
    tokenizer = engine.loaded.tokenizer  # type: ignore[attr-defined]
    options = {"batch_sizes": sizes, "max_seq": max_seq, "seq_buckets": seq_buckets, "memo": PlanMemo()}  # kept across requests, as serve does
    if cost_model is not None:
        options["cost_model"] = cost_model

    def run(group: list[str]) -> np.ndarray:
        encoded = tokenizer.encode(group)
        plan = make_plan(strategy, encoded.lengths, **options)
        return engine.run(plan, encoded, warmup=0, repeats=1, hidden=False).embeddings  # type: ignore[attr-defined]

    return run


def shapedemo_sizes(batch: int, declared: list[int] | None) -> list[int]:
    """The batch sizes shapedemo compiles for requests of ``batch`` texts.

    >>> shapedemo_sizes(8, None), shapedemo_sizes(1, [1, 2, 32])
    ([1, 2, 4, 8], [1, 2, 32])
    """
    if declared is not None:
        return list(declared)
    sizes = [1 << k for k in range(batch.bit_length()) if 1 << k <= batch]
    return sizes + ([batch] if sizes[-1] != batch else [])


def timed(run: Runner, group: list[str]) -> tuple[float, object]:
    """Seconds one request takes end to end, and what it returned."""
    start = time.perf_counter()
    embeddings = run(group)
    return time.perf_counter() - start, embeddings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--batches", default="1,8,32", help="texts per request (default 1,8,32)")
    ap.add_argument("--num-texts", type=int, default=96, help="texts per timed pass, cycled from --texts (default 96)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds (default 3)")
    ap.add_argument("--precision", default="f32", choices=["auto", "f32", "bf16"])
    ap.add_argument("--max-seq", type=int, default=256, help="static length: GenAI's max_length, our max_seq (default 256)")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    ap.add_argument("--texts", default=str(TEXTS), help="one text per line (default assets/texts.txt)")
    ap.add_argument("--seq-buckets", default=None, help="shapedemo's sequence buckets, e.g. 32,64,128,256 (default powers of two up to --max-seq)")
    ap.add_argument("--batch-sizes", default=None, help="shapedemo's batch sizes, e.g. 1,2,4,8,16,32 (default 1,2,4..batch)")
    ap.add_argument("--auto-slots", action="store_true", help="also run auto priced by token slots (how it was priced before the measured cost table)")
    args = ap.parse_args(argv)
    try:
        require_peers()
    except ExportError as exc:
        print(f"peers.py: error: {exc}", file=sys.stderr)
        return 2
    from shapedemo.runtime.engine import Engine
    from shapedemo.model import load_model

    batches = [int(b) for b in args.batches.split(",")]
    lines = [t.strip() for t in Path(args.texts).read_text(encoding="utf-8").splitlines() if t.strip()]
    texts = list(itertools.islice(itertools.cycle(lines), args.num_texts))
    loaded = load_model(args.model)
    engine = Engine(loaded, precision=args.precision)
    lengths = loaded.tokenizer.encode(texts).lengths
    buckets = None if args.seq_buckets is None else sorted(int(x) for x in args.seq_buckets.split(","))
    declared = None if args.batch_sizes is None else sorted(int(x) for x in args.batch_sizes.split(","))

    def shapes(b: int) -> dict:
        return dict(batch=b, max_seq=args.max_seq, seq_buckets=buckets, batch_sizes=declared)

    def priced(b: int) -> object:
        """auto's default pricing: the measured cost table of its declared set (cached)."""
        from shapedemo.planning.strategies.base import resolve_args
        from shapedemo.runtime.costs import measured_cost_model

        a = resolve_args([1], seq_buckets=buckets, batch_sizes=shapedemo_sizes(b, declared), max_seq=args.max_seq)
        return measured_cost_model(engine, a.seq_buckets, a.batch_sizes)[0]
    with tempfile.TemporaryDirectory(prefix="shapedemo-peers-") as tmp:
        folder = export_genai(Path(tmp) / "genai", spec=args.model).folder
        pooling, normalize = pooling_of(loaded)
        config = dict(precision=args.precision, pooling=pooling, normalize=normalize)
        dynamic_pipe = genai_pipeline(folder, **config)
        runners: dict[int, dict[str, Runner]] = {}
        for b in batches:
            static_pipe = genai_pipeline(folder, batch_size=b, max_length=args.max_seq, **config)
            runners[b] = {"genai dynamic": genai_runner(dynamic_pipe, batch=None),
                          f"genai static {b}x{args.max_seq}": genai_runner(static_pipe, batch=b)}
            for name in args.strategies.split(","):
                extra = {"cost_model": priced(b)} if name == "auto" else {}
                runners[b][f"shapedemo {name}"] = shapedemo_runner(engine, name, **shapes(b), **extra)
            if args.auto_slots:
                runners[b]["shapedemo auto (token slots)"] = shapedemo_runner(engine, "auto", **shapes(b))

        print(
            f"peers: {loaded.spec}, {len(texts)} texts per pass ({len(lines)} from {Path(args.texts).name}, cycled; "
            f"{min(lengths)}..{max(lengths)} tokens, mean {statistics.fmean(lengths):.1f}), end to end "
            f"(tokenize + plan + infer + {pooling} pooling{' + L2' if normalize else ''})"
        )
        print(
            f"CPU: {cpu_name()} ({os.cpu_count()} logical cores), precision {engine.inference_precision} for shapedemo "
            f"and INFERENCE_PRECISION_HINT={args.precision} for GenAI, latency hint, one request at a time; "
            f"{args.rounds} rounds interleaved"
        )
        print(
            f"static shapes: GenAI B x {args.max_seq} padded; shapedemo batch sizes {args.batch_sizes or '1,2,4..B'}, "
            f"buckets {args.seq_buckets or 'powers of two'}, max_seq {args.max_seq}; auto priced by its measured cost table"
            + (" (and by token slots: --auto-slots)" if args.auto_slots else "")
        )
        header = f"{'batch':>5}  {'runner':<34} {'texts/s':>8}  {'x genai dynamic':>15}  {'(range)':>11}  {'max|diff|':>9}"
        print(header)
        print("-" * len(header))
        for b in batches:
            groups = [texts[i : i + b] for i in range(0, len(texts), b)]
            names = list(runners[b])
            reference: np.ndarray | None = None
            diffs: dict[str, str] = {}
            for name in names:  # warm-up: compiles every shape; its output gives the fidelity
                try:
                    emb = np.concatenate([np.asarray(runners[b][name](g), dtype=np.float32) for g in groups])
                except Exception as exc:  # a strategy this build lacks, a device refusal: a labelled gap
                    diffs[name] = f"n/a: {' '.join(str(exc).split())[:60]}"
                    continue
                reference = emb if reference is None else reference
                diffs[name] = f"{float(np.max(np.abs(emb - reference))):.1e}"
            rates: dict[str, list[float]] = {n: [] for n in names if not diffs[n].startswith("n/a")}
            ratios: dict[str, list[float]] = {n: [] for n in rates}
            live = [n for n in names if n in rates]
            for r in range(args.rounds):  # request by request, runners in a shuffled order
                seconds = dict.fromkeys(live, 0.0)
                for g, group in enumerate(groups):
                    for n in shuffled(live, r, g):
                        seconds[n] += timed(runners[b][n], group)[0]
                for n, s in seconds.items():
                    rates[n].append(len(texts) / s)
                    ratios[n].append(seconds["genai dynamic"] / s)
            for name in names:
                if name not in rates:
                    print(f"{b:>5}  {name:<34} {'-':>8}  {'-':>15}  {'':>11}  {diffs[name]}")
                    continue
                span = f"{min(ratios[name]):.2f}-{max(ratios[name]):.2f}"
                print(
                    f"{b:>5}  {name:<34} {statistics.median(rates[name]):>8.1f}  "
                    f"{statistics.median(ratios[name]):>15.2f}  {span:>11}  {diffs[name]:>9}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
