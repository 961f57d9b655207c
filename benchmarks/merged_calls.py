"""Would one call per request beat ``auto``'s several? Its calls, against the same rows in one call.

    python benchmarks/merged_calls.py [--model minilm] [--texts assets/paragraphs.txt] [--batch 32]
                                      [--buckets 32,64,128,256] [--batch-sizes 1,2,4,8,16,32]
                                      [--precisions bf16,f32] [--num-texts 96] [--rounds 15]

``auto`` lays a request of ``--batch`` texts into several packed calls, often of different row
lengths (a 4 x 256 call, a 1 x 128, a 2 x 64). Small calls run their slots slower than large ones
(on a 2-core EPYC at f32 a 1 x 64 call at 0.7 of an 8 x 64 one), so one call per request looks
like a win: the same rows, with the linear layers over all of the request's tokens at once and
the attention computed per part of one row length (rows of 256 among themselves, rows of 64
among themselves). This benchmark builds that graph (a "multi-part call", from the same weights
and the same graph pieces as ``model/graph.py``, for this request's parts only) and times it:

- per request, ``auto``'s calls one after another and the merged call holding exactly their
  rows (padding rows too), interleaved over ``--rounds`` rounds, each side's median;
- the same check with one part only (one shape of ``auto``'s set: ``8 x 64``, ``4 x 256`` ...),
  which tells what the graph's form costs by itself;
- rows of 256 that each hold a text of 192 tokens and one of 64, as the packed graph runs them
  (attention over all 256 x 256 pairs, the block mask removing the cross pairs) and with each
  row's attention in two windows (192 | 64: the merged graph over the same slots), which skips
  the removed pairs: what a windowed packed graph would take back;
- the merged call's states against the separate calls' (max |diff|, at f32 a check that both
  sides compute the same thing);
- where a packed call's time goes (OpenVINO's per-operation counters, ``PERF_COUNT``) for rows
  of 64, 128 and 256: microseconds per token slot by kind of operation (``FullyConnected``: the
  linear layers; ``Subgraph``: the fused attention and element-wise work).

Both sides are compiled here from the same builder, with the hint the engine uses (LATENCY), and
without the sentence pooling (states only). A compiled set would also need the merged shapes'
part sizes declared (a few batch sizes per row length, all their combinations): the benchmark
does not go there unless merging pays. Nothing is asserted; every figure is a ratio in this run.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

from floor import ints  # the benchmarks' own list parser (this folder is the script's path)

ROOT = Path(__file__).resolve().parents[1]
PARAGRAPHS = ROOT / "assets" / "paragraphs.txt"
ONE_PART = ((1, 64), (8, 64), (1, 256), (4, 256))
"""Shapes timed as the packed graph and as a one-part merged graph."""
WINDOWED = (4, 8)
"""Rows of 256 timed as the packed graph and with each row's attention in two windows (192 | 64)."""
PROFILED = ((16, 64), (8, 128), (4, 256), (1, 256))
"""Shapes whose time is split by operation (the same slots at three row lengths, and one row)."""

Part = tuple[int, int]  # (rows, row length)


def build_merged(weights: dict[str, Any], dims: Any, parts: list[Part]) -> Any:
    """The packed encoder over a flat request of ``sum(rows * length)`` tokens holding ``parts``
    one after another: inputs as the packed graph's, flattened (``[T]``); the linear layers and
    norms run on all ``[T, H]`` states at once, the attention per part (``[rows, heads, length,
    head]``, a token attending to its own segment only). Output ``last_hidden_state [T, H]``."""
    import numpy as np
    import openvino as ov
    import openvino.opset13 as op

    from shapedemo.model import graph

    def i64(value: Any) -> Any:
        return op.constant(np.array(value, dtype=np.int64))

    sizes = i64([b * s for b, s in parts])
    total = sum(b * s for b, s in parts)
    heads, head, hidden = dims.num_attention_heads, dims.head_size, dims.hidden_size
    params = []
    for name in graph.PACKED_INPUTS:
        p = op.parameter(ov.PartialShape([total]), ov.Type.i64, name=name)
        p.output(0).get_tensor().set_names({name})
        params.append(p)
    input_ids, token_type_ids, position_ids, segment_ids = params
    x = graph._embeddings(input_ids, token_type_ids, position_ids, weights, dims)
    segments = op.variadic_split(segment_ids, i64(0), sizes)
    masks = []
    for i, (b, s) in enumerate(parts):
        seg = op.reshape(segments.output(i), i64([b, s]), False)
        masks.append(op.equal(op.unsqueeze(seg, i64([1, 3])), op.unsqueeze(seg, i64([1, 2]))))
    to_heads = i64([0, 2, 1, 3])
    for layer in range(dims.num_hidden_layers):
        p = f"encoder.layer.{layer}"
        q, k, v = (op.variadic_split(graph._linear(x, weights, f"{p}.attention.self.{n}"), i64(0), sizes)
                   for n in ("query", "key", "value"))
        context = []
        for i, (b, s) in enumerate(parts):
            def split_heads(t: Any, i: int = i, b: int = b, s: int = s) -> Any:
                return op.transpose(op.reshape(t.output(i), i64([b, s, heads, head]), False), to_heads)

            c = op.scaled_dot_product_attention(split_heads(q), split_heads(k), split_heads(v), masks[i], causal=False)
            context.append(op.reshape(op.transpose(c, to_heads), i64([b * s, hidden]), False))
        x = graph._after_attention(x, op.concat(context, 0) if len(context) > 1 else context[0], weights, dims, p)
    return ov.Model([op.result(x)], params, "bert-merged")


def row_feeds(rows: list[list[list[int]]], length: int) -> dict[str, Any]:
    """Packed inputs ``[len(rows), length]`` for rows of segments given as token id lists."""
    import numpy as np

    shape = (len(rows), length)
    feed = {n: np.zeros(shape, np.int64) for n in ("input_ids", "token_type_ids", "position_ids", "segment_ids")}
    for r, row in enumerate(rows):
        offset = 0
        for k, ids in enumerate(row, 1):
            n = len(ids)
            feed["input_ids"][r, offset:offset + n] = ids
            feed["position_ids"][r, offset:offset + n] = np.arange(n)
            feed["segment_ids"][r, offset:offset + n] = k
            offset += n
    return feed


def flatten(feeds: list[dict[str, Any]]) -> dict[str, Any]:
    """The merged graph's flat inputs ``[T]``: ``feeds`` (one per part, as :func:`row_feeds`
    makes them) one after another."""
    import numpy as np

    return {k: np.ascontiguousarray(np.concatenate([f[k].ravel() for f in feeds])) for k in feeds[0]}


def text(n: int, token: int = 2000) -> list[int]:
    """A text of ``n`` token ids, ``[CLS]`` and ``[SEP]`` included (the timings do not read them)."""
    return [101] + [token] * (n - 2) + [102]


def profile(core: Any, packed: Any, shape: Part, config: dict[str, Any], calls: int = 10) -> dict[str, float]:
    """Microseconds per token slot of a full ``shape`` call of the packed graph, by operation
    kind (OpenVINO's performance counters, the median call of ``calls``)."""
    import openvino as ov

    m = packed.clone()
    m.reshape({p.get_any_name(): ov.PartialShape(list(shape)) for p in m.inputs})
    request = core.compile_model(m, "CPU", {**config, "PERF_COUNT": True}).create_infer_request()
    b, s = shape
    feed = row_feeds([[text(s)]] * b, s)
    per_call: list[dict[str, float]] = []
    for i in range(calls + 2):
        request.infer(feed)
        if i >= 2:  # warm
            kinds: dict[str, float] = {}
            for info in request.profiling_info:
                kinds[info.node_type] = kinds.get(info.node_type, 0.0) + info.real_time.total_seconds() * 1e6 / (b * s)
            per_call.append(kinds)
    middle = sorted(per_call, key=lambda k: sum(k.values()))[len(per_call) // 2]
    return dict(sorted(middle.items(), key=lambda kv: -kv[1]))


def timed(calls: list[tuple[Any, dict[str, Any]]]) -> float:
    t0 = time.perf_counter()
    for request, feed in calls:
        request.infer(feed, share_inputs=True, share_outputs=True)
    return (time.perf_counter() - t0) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="minilm")
    ap.add_argument("--texts", default=str(PARAGRAPHS), help="one text per line (default assets/paragraphs.txt)")
    ap.add_argument("--batch", type=int, default=32, help="texts per request (default 32)")
    ap.add_argument("--buckets", default="32,64,128,256", help="auto's declared sequence buckets")
    ap.add_argument("--batch-sizes", default="1,2,4,8,16,32", help="auto's declared batch sizes")
    ap.add_argument("--precisions", default=None, help="default: bf16,f32 where the CPU has bf16, else f32")
    ap.add_argument("--num-texts", type=int, default=96, help="texts, in requests of --batch (default 96)")
    ap.add_argument("--rounds", type=int, default=15, help="timed rounds (default 15)")
    args = ap.parse_args(argv)

    import numpy as np
    import openvino as ov

    from shapedemo.model import build_packed_bert, load_model, read_weights
    from shapedemo.planning.strategies import make_plan
    from shapedemo.runtime.costs import cpu_name, measured_cost_model
    from shapedemo.runtime.engine import Engine

    buckets, sizes = ints(args.buckets), ints(args.batch_sizes)
    loaded = load_model(args.model)
    files = sorted(Path(loaded.source_path or "/nonexistent").glob("*.safetensors"))
    if loaded.dims is None or not files:
        print(f"merged_calls: {args.model} has no safetensors weights to build the merged graph from", file=sys.stderr)
        return 2
    weights: dict[str, Any] = {}
    for f in files:
        weights.update(read_weights(f, source=loaded.spec))
    lines = [t.strip() for t in Path(args.texts).read_text(encoding="utf-8").splitlines() if t.strip()]
    texts = list(itertools.islice(itertools.cycle(lines), args.num_texts))
    encoded = loaded.tokenizer.encode(texts, truncate=True, max_length=buckets[-1])
    core = ov.Core()
    caps = core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    precisions = args.precisions.split(",") if args.precisions else (["bf16", "f32"] if "BF16" in caps else ["f32"])
    print(f"merged calls: {loaded.spec}, {len(texts)} texts from {Path(args.texts).name} in requests of {args.batch}")
    print(f"CPU: {cpu_name()} ({os.cpu_count()} logical cores); declared set: buckets {buckets} x batch sizes {sizes}")
    packed = build_packed_bert(weights, loaded.dims, pooling=None)
    hidden = loaded.dims.hidden_size
    for precision in precisions:
        engine = Engine(loaded, precision=precision)
        cost_model, _ = measured_cost_model(engine, buckets, sizes)
        config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        compiled: dict[Part, Any] = {}

        def one_shape(shape: Part, compiled: dict[Part, Any] = compiled, config: dict[str, Any] = config) -> Any:
            if shape not in compiled:
                m = packed.clone()  # reshape changes a model in place
                m.reshape({p.get_any_name(): ov.PartialShape(list(shape)) for p in m.inputs})
                compiled[shape] = core.compile_model(m, "CPU", config)
            return compiled[shape]

        def merged_of(parts: list[Part], config: dict[str, Any] = config) -> Any:
            return core.compile_model(build_merged(weights, loaded.dims, parts), "CPU", config)

        # (label, the separate calls, the merged call, their states in the merged call's token order)
        cases: list[tuple[str, list[tuple[Any, dict[str, Any]]], tuple[Any, dict[str, Any]], Callable[[list[Any]], Any]]] = []

        def in_order(order: list[int]) -> Callable[[list[Any]], Any]:
            return lambda outs: np.concatenate([outs[i].reshape(-1, hidden) for i in order])
        real_tokens = 0  # of the requests that ran static calls
        for start in range(0, len(texts), args.batch):
            ids = encoded.input_ids[start:start + args.batch]
            plan = make_plan("auto", [len(i) for i in ids], seq_buckets=buckets, batch_sizes=sizes,
                             max_seq=buckets[-1], cost_model=cost_model)
            if plan.dynamic:
                continue  # one call already
            real_tokens += plan.real_tokens
            separate, by_length = [], {}
            for call in plan.calls:
                rows = [[ids[s.seq] for s in row] for row in call.rows]
                separate.append((one_shape(call.shape).create_infer_request(), row_feeds(rows, call.seq)))
                by_length.setdefault(call.seq, []).extend(rows)
            parts = [(len(rows), s) for s, rows in sorted(by_length.items(), reverse=True)]
            feeds = [row_feeds(by_length[s], s) for _, s in parts]
            flat = flatten(feeds)
            label = " + ".join(f"{c.batch}x{c.seq}" for c in plan.calls) + " -> " + " | ".join(f"{b}x{s}" for b, s in parts)
            order = sorted(range(len(plan.calls)), key=lambda i: -plan.calls[i].seq)  # stable: plan order per length
            cases.append((label, separate, (merged_of(parts).create_infer_request(), flat), in_order(order)))
        requests = len(cases)  # the cases that make a pass
        for shape in ONE_PART:
            feed = row_feeds([[text(shape[1])]] * shape[0], shape[1])
            cases.append((f"{shape[0]}x{shape[1]} (one part)", [(one_shape(shape).create_infer_request(), feed)],
                          (merged_of([shape]).create_infer_request(), flatten([feed])), in_order([0])))
        for b in WINDOWED:  # rows of 256 holding a 192-token text and a 64-token one: attention in two windows
            long_text, short_text = text(192), text(64, token=3000)
            feed = row_feeds([[long_text, short_text]] * b, 256)
            flat = flatten([row_feeds([[long_text]] * b, 192), row_feeds([[short_text]] * b, 64)])
            cases.append((f"{b}x256 -> {b}x192 | {b}x64 (a row's attention in two windows)", [(one_shape((b, 256)).create_infer_request(), feed)],
                          (merged_of([(b, 192), (b, 64)]).create_infer_request(), flat),
                          lambda outs: np.concatenate([outs[0][:, :192].reshape(-1, hidden), outs[0][:, 192:].reshape(-1, hidden)])))

        diffs = []
        for _, separate, (request, flat), arrange in cases:  # warm-up, and both sides' states compared
            timed(separate + [(request, flat)])
            timed(separate + [(request, flat)])
            states = arrange([r.get_output_tensor(0).data for r, _ in separate])
            real = flat["segment_ids"] > 0
            diffs.append(float(np.abs(states[real] - request.get_output_tensor(0).data[real]).max()))
        times: list[tuple[list[float], list[float]]] = [([], []) for _ in cases]
        for r in range(args.rounds):
            for j, (_, separate, merged, _) in enumerate(cases):
                for side in ((0, 1) if (r + j) % 2 else (1, 0)):
                    times[j][side].append(timed(separate) if side == 0 else timed([merged]))
        print(f"\n== {precision} (inference precision {engine.inference_precision}); {args.rounds} rounds, medians")
        print(f"{'calls ms':>9} {'merged ms':>9} {'merged x':>8} {'max|diff|':>9}  auto's calls -> the merged call's parts")
        totals = [0.0, 0.0]
        for j, ((label, _, _, _), (a, m), diff) in enumerate(zip(cases, times, diffs)):
            a_ms, m_ms = statistics.median(a), statistics.median(m)
            if j < requests:
                totals[0] += a_ms
                totals[1] += m_ms
            print(f"{a_ms:>9.2f} {m_ms:>9.2f} {a_ms / m_ms:>8.3f} {diff:>9.1e}  {label}")
        if not real_tokens:
            print("(every request ran as one dynamic call: nothing to merge at this batch)")
        if totals[1]:
            print(f"{totals[0]:>9.2f} {totals[1]:>9.2f} {totals[0] / totals[1]:>8.3f} {'':>9}  every request (a pass)")
            one_part = {label: statistics.median(a) for (label, _, _, _), (a, _) in zip(cases, times)}
            for b, s in ((4, 256), (8, 64)):  # what the pass would cost at a full call's price per slot
                ideal = real_tokens * one_part[f"{b}x{s} (one part)"] / (b * s)
                print(f"{ideal:>9.2f} {'':>9} {totals[0] / ideal:>8.3f} {'':>9}  every real token of the pass at a full {b}x{s} "
                      f"call's price per slot, no padding (auto's calls x that)")
        print("where a packed call's time goes, microseconds per token slot (the median of 10 calls):")
        for shape in PROFILED:
            kinds = profile(core, packed, shape, config)
            total = sum(kinds.values())
            print(f"   {shape[0]}x{shape[1]:<4} {total:6.1f} us/slot: " + ", ".join(
                f"{kind} {us:.1f}" for kind, us in list(kinds.items())[:4] if us >= 0.05))
        engine.release_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
