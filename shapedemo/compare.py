"""Run strategies on the same inputs, in one process, with one engine: fidelity, latency, costs.

Every strategy, native dynamic included, is timed by the same code (warm-up first, median of
repeats), and its outputs are compared against ``dynamic-single`` (one call per sequence, no
padding at all: the reference nothing can distort).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .engine import Engine, Outcome, ProgressFn, latency_stats
from .model import Encoded, LoadedModel
from .plan import Plan
from .strategies import make_plan
from .strategies.base import resolve_args
from .workloads import sample_lengths

REFERENCE = "dynamic-single"
DEFAULT_STRATEGIES = ("dynamic", "padding", "buckets", "partition", "buckets-partition", "packing")


@dataclass
class Comparison:
    """The results of one comparison: a dict per strategy (the CLI's JSON), plans and outcomes."""

    model: str
    device: str
    precision: str
    lengths: list[int]
    results: list[dict[str, Any]]
    plans: dict[str, Plan]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    texts: list[str] | None = None
    wall_s: float = 0.0

    def result(self, strategy: str) -> dict[str, Any]:
        for r in self.results:
            if r["strategy"] == strategy:
                return r
        raise KeyError(strategy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "device": self.device,
            "precision": self.precision,
            "lengths": self.lengths,
            "num_sequences": len(self.lengths),
            "wall_s": self.wall_s,
            "results": self.results,
        }


def fidelity(outcome: Outcome, reference: Outcome) -> dict[str, float]:
    """Max |diff| of hidden states at real tokens, and min cosine of the sentence embeddings."""
    diff = max(
        (float(np.max(np.abs(a - b))) for a, b in zip(outcome.hidden, reference.hidden) if a.size),
        default=0.0,
    )
    a, b = outcome.embeddings, reference.embeddings
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"max_abs_diff": diff, "min_cosine": float(np.min(cos)) if cos.size else 1.0}


def auto_max_seq(lengths: Sequence[int], *, limit: int = 512) -> int:
    """The padding shape's length when the user leaves it to us: the smallest of 128, 256,
    384, 512 that fits the longest input (capped at the model's limit).

    >>> auto_max_seq([12, 40]), auto_max_seq([200]), auto_max_seq([400])
    (128, 256, 512)
    """
    longest = max(lengths, default=1)
    for size in (128, 256, 384, 512):
        if longest <= size <= limit:
            return size
    return limit


def workload_lengths(name: str, batch: int, *, seed: int = 0, max_len: int = 512) -> list[int]:
    """Lengths of a built-in workload (``sst2-like``, ``squad-like``, ``wiki-like``, ``uniform``)."""
    return sample_lengths(name, batch, seed=seed, max_len=max_len)


def measure_cost_table(
    engine: Engine,
    lengths: Sequence[int],
    *,
    seq_buckets: Sequence[int] | None = None,
    batch_sizes: Sequence[int] | None = None,
    max_seq: int | None = None,
    repeats: int = 5,
    progress: ProgressFn | None = None,
) -> dict[tuple[int, int], float]:
    """Measure every shape the partitioning strategies may use (batch sizes x sequence
    buckets and max_seq): the table that lets ``partition``, ``buckets-partition`` and
    ``packing`` choose the plan of least predicted latency instead of the fewest padding rows.
    Packed rows are priced by the plain model at the same shape."""
    args = resolve_args(lengths, seq_buckets=seq_buckets, batch_sizes=batch_sizes, max_seq=max_seq)
    seqs = sorted(set(args.seq_buckets) | {args.max_seq})
    shapes = [(b, s) for s in seqs for b in args.batch_sizes]
    table = {}
    for i, shape in enumerate(shapes):
        if progress:
            progress(i / len(shapes), f"measuring {shape[0]} x {shape[1]}")
        table[shape] = engine.measure_shape(shape, repeats=repeats)
    return table


def encode_inputs(
    loaded: LoadedModel, *, texts: Sequence[str] | None = None, lengths: Sequence[int] | None = None, seed: int = 0
) -> Encoded:
    """Token ids for texts, or random vocabulary ids of the given lengths (synthetic workload)."""
    if texts is not None:
        return loaded.tokenizer.encode(list(texts))
    if lengths is None:
        raise ValueError("give texts or lengths")
    return loaded.tokenizer.synthetic_ids(list(lengths), seed=seed)


def compare(
    engine: Engine,
    encoded: Encoded,
    strategies: Sequence[str] = DEFAULT_STRATEGIES,
    *,
    seq_buckets: Sequence[int] | None = None,
    batch_sizes: Sequence[int] | None = None,
    max_seq: int | None = None,
    pack_seq: int | None = None,
    cost_table: dict[tuple[int, int], float] | None = None,
    repeats: int = 5,
    warmup: int = 1,
    concurrent: bool = False,
    texts: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
) -> Comparison:
    """Plan and run every strategy on ``encoded``; ``dynamic-single`` is always run as the
    fidelity reference (listed in the results only when asked for)."""
    start = time.perf_counter()
    lengths = encoded.lengths
    max_seq = max_seq or engine.loaded.max_length
    options = dict(seq_buckets=seq_buckets, batch_sizes=batch_sizes, max_seq=max_seq, pack_seq=pack_seq, cost_table=cost_table)
    names = list(dict.fromkeys(strategies))
    plans = {name: make_plan(name, lengths, **options) for name in dict.fromkeys([*names, REFERENCE])}
    outcomes: dict[str, Outcome] = {}
    order = [REFERENCE] + [n for n in names if n != REFERENCE]
    for i, name in enumerate(order):
        def step(frac: float, what: str, i: int = i) -> None:
            if progress:
                progress((i + frac) / len(order), what)

        outcomes[name] = engine.run(plans[name], encoded, warmup=warmup, repeats=repeats, concurrent=concurrent, progress=step)
    reference = outcomes[REFERENCE]
    results = []
    for name in names:
        plan, outcome = plans[name], outcomes[name]
        compile_s, memory_mb = engine.plan_costs(plan)
        row = plan.to_dict()
        row.pop("calls")
        row.update(
            {
                "compile_s": compile_s,
                "memory_mb": memory_mb,
                "num_compiled_models": len(engine.shapes_needed(plan)),
                "latency_ms": latency_stats(outcome.total_ms),
                "call_latency_ms": [latency_stats(list(c)) for c in zip(*outcome.call_ms)],
                "fidelity": fidelity(outcome, reference),
            }
        )
        results.append(row)
    base = next((r for r in results if r["strategy"] == "dynamic"), None)
    for r in results:
        r["ratio_to_dynamic"] = (r["latency_ms"]["median"] / base["latency_ms"]["median"]) if base else None
    return Comparison(
        model=engine.loaded.spec,
        device=engine.device,
        precision=engine.inference_precision,
        lengths=list(lengths),
        results=results,
        plans={n: plans[n] for n in names},
        outcomes=outcomes,
        texts=list(texts) if texts is not None else None,
        wall_s=time.perf_counter() - start,
    )


def embed(engine: Engine, texts: Sequence[str]) -> tuple[Encoded, np.ndarray]:
    """Sentence embeddings of ``texts`` with native dynamic shapes (one call, padded to the
    longest text, masked)."""
    encoded = engine.loaded.tokenizer.encode(list(texts))
    plan = make_plan("dynamic", encoded.lengths, max_seq=engine.loaded.max_length)
    outcome = engine.run(plan, encoded, warmup=0, repeats=1)
    return encoded, outcome.embeddings
