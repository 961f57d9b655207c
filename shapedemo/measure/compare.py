"""Run strategies on the same inputs, in one process, with one engine: fidelity, latency, costs.

Two engines can be in play: the **target** (where the strategies run) and the **reference** (a
CPU engine at the precision asked for, where ``dynamic-single`` — one call per sequence, no
padding at all — runs once per input as the fidelity reference). Every strategy is timed by the
same code: compiled and warmed up first, then the repeats interleaved (each repeat runs every
strategy once, in an order shuffled per round and seeded by its number, so drift does not land
on whoever runs last, and no strategy always runs right after the same one: a call right after
another model's finds its own weights pushed out of the CPU's caches, 1.3-2.1 ms a call on a
2-core AMX Xeon at bf16, which a fixed neighbour would pay every round).

A strategy's latency is what a user feels: host time (tokenizing — measured once per input and
the same for every strategy —, planning, scattering into padded tensors, gathering back) plus
device time (the calls); ``latency_ms``, ``host_ms`` and ``device_ms`` are each a median over
the repeats of the per-repeat values (so the medians need not add up exactly).

Every ratio to native dynamic carries an interval (``ratio_interval``: a paired bootstrap over
the rounds, ``measure.stats``). Without a fixed number of repeats, rounds go on until every
interval is tight (``stats.TIGHT``) or ``max_seconds`` runs out. Where native dynamic runs on the
target, two more contenders take part in the same rounds, so the run can say where dynamic's
time goes (``decomposition``): dynamic at a static plan's call shapes (what padding to the
longest row costs it) and a static model at dynamic's own shape (what being dynamic costs it).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from shapedemo.runtime.compiled import Compiled, ProgressFn
from shapedemo.runtime.engine import Engine
from shapedemo.runtime.errors import EngineError
from shapedemo.runtime.harness import DEFAULT_JOBS, Outcome, PlanRunner
from shapedemo.runtime.memory import MEMORY_MEANING
from shapedemo.measure.stats import latency_stats
from shapedemo.model import Encoded, LoadedModel
from shapedemo.planning.plan import Plan
from shapedemo.measure import stats
from shapedemo.measure.report import ROUNDOFF
from shapedemo.measure.rounds import BASELINE, Entry, decomposition, decomposition_entries, fastest, tight, timed_call
from shapedemo.settings import DEFAULT_STRATEGIES
from shapedemo.shapes import ShapeSet
from shapedemo.planning.strategies import make_plan
from shapedemo.planning.strategies.base import resolve_args

REFERENCE = "dynamic-single"
MAX_SECONDS = 30.0
"""Timed rounds stop here (seconds) when no number of repeats is given and the intervals are
not tight yet."""
MAX_ROUNDS = 1000
"""Rounds at most when rounds go on until the intervals are tight."""

def roundoff(precision: str) -> dict[str, Any]:
    """The round-off thresholds at the precision actually run (f32's where it is unknown).

    >>> roundoff("f32")["max_abs_diff"], roundoff("bf16")["precision"]
    (0.0001, 'bf16')
    """
    key = precision.lower() if precision.lower() in ROUNDOFF else "f32"
    return {"precision": key, **ROUNDOFF[key]}


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
    reference_device: str = "CPU"
    static_only: bool = False
    baseline: dict[str, Any] | None = None
    roundoff: dict[str, Any] = field(default_factory=lambda: roundoff("f32"))
    batching_fidelity: dict[str, float] | None = None
    device_properties: dict[str, Any] = field(default_factory=dict)
    capabilities: dict[str, Any] = field(default_factory=dict)
    tokenize_ms: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] | None = None
    decomposition: dict[str, Any] | None = None
    fastest: dict[str, Any] | None = None
    weights: dict[str, Any] = field(default_factory=lambda: {"mode": "f32"})

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
            "reference_device": self.reference_device,
            "static_only": self.static_only,
            "lengths": self.lengths,
            "num_sequences": len(self.lengths),
            "wall_s": self.wall_s,
            "tokenize_ms": self.tokenize_ms,
            "baseline": self.baseline,
            "roundoff": self.roundoff,
            "batching_fidelity": self.batching_fidelity,
            "memory_measure": MEMORY_MEANING,
            "device_properties": self.device_properties,
            "capabilities": self.capabilities,
            "settings": self.settings,
            "repeats": self.settings.get("repeats"),
            "noise": self.noise,
            "decomposition": self.decomposition,
            "fastest": self.fastest,
            "weights": self.weights,
            "results": self.results,
        }


def fidelity(outcome: Outcome, reference: Outcome) -> dict[str, float]:
    """Max |diff| of hidden states at real tokens, and min cosine of the sentence embeddings,
    sequence by sequence by index. Missing or mismatched outputs are an error, never a default.

    >>> ref = Outcome(None, [np.ones((2, 3))], np.array([[1.0, 0.0]]))
    >>> fidelity(Outcome(None, [np.ones((2, 3)) * 1.5], np.array([[1.0, 0.0]])), ref)
    {'max_abs_diff': 0.5, 'min_cosine': 1.0}
    >>> fidelity(Outcome(None, [], np.zeros((0, 2))), ref)
    Traceback (most recent call last):
    ...
    shapedemo.runtime.errors.EngineError: fidelity: 0 sequences against the reference's 1
    """
    n = len(reference.hidden)
    if len(outcome.hidden) != n or len(outcome.embeddings) != n or len(reference.embeddings) != n or n == 0:
        raise EngineError(f"fidelity: {len(outcome.hidden)} sequences against the reference's {n}")
    diff = 0.0
    for i, (a, b) in enumerate(zip(outcome.hidden, reference.hidden)):
        if a is None or b is None or a.shape != b.shape:
            raise EngineError(f"fidelity: sequence {i} has shape {getattr(a, 'shape', None)}, the reference {getattr(b, 'shape', None)}")
        diff = max(diff, float(np.max(np.abs(a - b))) if a.size else 0.0)
    a, b = outcome.embeddings, reference.embeddings
    if a.shape != b.shape:
        raise EngineError(f"fidelity: embeddings {a.shape} against the reference's {b.shape}")
    cos = np.sum(a * b, axis=1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return {"max_abs_diff": diff, "min_cosine": float(np.min(cos))}


RECALL_K = 10


def neighbour_recall(embeddings: np.ndarray, reference: np.ndarray, *, k: int = RECALL_K) -> float | None:
    """Nearest-neighbour agreement: for each text, the share of its ``k`` nearest other texts
    (cosine) under ``reference`` that are also among its ``k`` nearest under ``embeddings``,
    averaged over texts (recall@k). With ``n <= k`` texts, ``k`` is ``n - 1``; None below 3
    texts (one neighbour each agrees by construction).

    >>> ref = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> neighbour_recall(ref, ref, k=1), neighbour_recall(ref[[0, 2, 1, 3]], ref, k=1)
    (1.0, 0.0)
    """
    n = len(reference)
    if n < 3 or embeddings.shape != reference.shape:
        return None
    k = min(k, n - 1)

    def top(x: np.ndarray) -> np.ndarray:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]

    a, b = top(embeddings), top(reference)
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


class CostTable(dict):
    """Measured latency (ms) per plain compiled shape ``(batch, seq)``; ``packed`` holds the
    packed model's shapes apart (a packed row runs on another graph than a plain one)."""

    def __init__(self, plain: Mapping[tuple[int, int], float] = (), packed: Mapping[tuple[int, int], float] | None = None) -> None:
        super().__init__(plain)
        self.packed: dict[tuple[int, int], float] = dict(packed or {})


def measure_cost_table(
    engine: Engine,
    lengths: Sequence[int],
    *,
    seq_buckets: Sequence[int] | None = None,
    batch_sizes: Sequence[int] | None = None,
    max_seq: int | None = None,
    pack_seq: int | None = None,
    repeats: int = 5,
    progress: ProgressFn | None = None,
) -> CostTable:
    """Measure every shape the partitioning strategies may use (batch sizes x sequence
    buckets and max_seq, and batch sizes x pack_seq on the packed model where the model packs):
    the table that lets ``partition``, ``buckets-partition`` and ``packing`` choose the plan of
    least predicted latency instead of the fewest padding rows."""
    args = resolve_args(lengths, seq_buckets=seq_buckets, batch_sizes=batch_sizes, max_seq=max_seq, pack_seq=pack_seq)
    seqs = sorted(set(args.seq_buckets) | {args.max_seq})
    jobs = [(False, (b, s)) for s in seqs for b in args.batch_sizes]
    if engine.loaded.packed is not None:
        jobs += [(True, (b, args.pack_seq)) for b in args.batch_sizes]
    table = CostTable()
    for i, (packed, shape) in enumerate(jobs):
        if progress:
            progress(i / len(jobs), f"measuring {shape[0]} x {shape[1]}{' packed' if packed else ''}")
        ms = engine.measure_shape(shape, packed=packed, repeats=repeats)
        (table.packed if packed else table)[shape] = ms
    return table


def _tables(cost_table: Mapping[tuple[int, int], float] | None) -> tuple[Any, Any]:
    """The table for plain plans and the one for packed plans (packed shapes priced by the
    packed graph where measured, else by the same table)."""
    if cost_table is None:
        return None, None
    packed = getattr(cost_table, "packed", None)
    plain = dict(cost_table)
    return plain, ({**plain, **packed} if packed else plain)


def _planner(name: str, lengths: Sequence[int], options: dict[str, Any], cost_table: Any) -> Any:
    """A function making ``name``'s plan (with the packed cost table where it packs)."""
    plain, packed = _tables(cost_table)
    table = plain
    if packed is not plain and make_plan(name, lengths, **options).packed:
        table = packed
    return lambda: make_plan(name, lengths, **options, cost_table=table)


def _models(runner: PlanRunner) -> list[dict[str, Any]]:
    fresh = {id(e) for e in runner.fresh}
    return [dict(e.to_dict(), reused=id(e) not in fresh) for e in runner.models]


def _costs(models: list[Compiled] | list[dict[str, Any]]) -> dict[str, Any]:
    rows = [m if isinstance(m, dict) else m.to_dict() for m in models]
    mem = [m["memory_mb"] for m in rows]
    return {
        "compile_s": sum(m["compile_s"] for m in rows),
        "compile_s_cold": sum(m["compile_s"] for m in rows if not m["from_cache"]),
        "compile_s_from_cache": sum(m["compile_s"] for m in rows if m["from_cache"]),
        "memory_mb": None if any(m is None for m in mem) else sum(mem),
        "num_compiled_models": len(rows),
        "compiled_models": rows,
    }


def _tokenize_ms(engine: Engine, encoded: Encoded, texts: Sequence[str] | None) -> float:
    """Time to tokenize ``texts`` once (0 without texts: token ids were given)."""
    if texts is None:
        return 0.0
    again, ms = timed_call(lambda: engine.loaded.tokenizer.encode(list(texts)))
    if again.lengths != encoded.lengths:
        raise EngineError("the texts given tokenize to other lengths than the tokens given")
    return ms


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
    cost_table: Mapping[tuple[int, int], float] | None = None,
    repeats: int | None = 5,
    warmup: int = 1,
    concurrent: bool = False,
    jobs: int = DEFAULT_JOBS,
    texts: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
    reference_engine: Engine | None = None,
    tokenize_ms: float | None = None,
    cost_model: Any = None,
    max_seconds: float | None = None,
    decompose: bool = True,
    memo: Any = None,
) -> Comparison:
    """Plan and run every strategy on ``encoded`` on ``engine`` (the target).

    ``dynamic-single`` runs once on ``reference_engine`` (default
    :meth:`Engine.reference_engine`: a CPU engine at the same precision) as the fidelity
    reference, and is listed in the results only when asked for. A strategy the target cannot
    compile (dynamic shapes on a static-only device) is listed ``supported: false`` with the
    device's reason; ``dynamic`` is then timed on the reference device as the ``baseline``.
    ``jobs`` bounds the requests in flight with ``concurrent`` (the same for every strategy).
    ``cost_model`` (a ``CostModel``) prices shapes for ``auto`` where ``cost_table`` lacks them.
    ``repeats`` None: rounds until every ratio's interval is tight or ``max_seconds`` (default
    ``MAX_SECONDS``) of timed rounds have passed, never fewer than ``stats.FLOOR_ROUNDS`` (an
    interval of one round says nothing). ``decompose``: time dynamic at a static plan's
    call shapes and a static model at dynamic's shape besides (``Comparison.decomposition``).
    ``memo``: a ``PlanMemo`` (the session's) keeping fitted prices and chunk tables across plans.
    """
    start = time.perf_counter()
    lengths = encoded.lengths
    if max_seq is None:  # the default of every front end (ShapeSet.resolve), within the model's limit
        shapes = ShapeSet.parse(seq_buckets=seq_buckets, pack_seq=pack_seq)
        max_seq = shapes.resolve(lengths, limit=engine.loaded.max_length).max_seq
    # auto packs only where the model has a packed graph, and prices shapes with cost_model
    options = dict(
        seq_buckets=seq_buckets, batch_sizes=batch_sizes, max_seq=max_seq, pack_seq=pack_seq,
        allow_packing=engine.loaded.packed is not None, cost_model=cost_model, memo=memo,
    )
    names = list(dict.fromkeys(strategies))
    reference_engine = reference_engine or engine.reference_engine()
    tok_ms = _tokenize_ms(engine, encoded, texts) if tokenize_ms is None else tokenize_ms

    def report(frac: float, what: str) -> None:
        if progress:
            progress(min(1.0, frac), what)

    entries: dict[str, Entry] = {}
    for name in names:
        make = _planner(name, lengths, options, cost_table)
        entries[name] = Entry(name, make(), make)
    opened: list[PlanRunner] = []
    try:
        # the reference, once per input: one call per sequence on the reference device
        report(0.0, "reference: one call per sequence")
        ref_plan = make_plan(REFERENCE, lengths, **options)
        reference = reference_engine.run(ref_plan, encoded, warmup=0, repeats=1)
        batched = reference_engine.run(make_plan(BASELINE, lengths, **options), encoded, warmup=0, repeats=1)

        # compile every shape every plan needs, up front
        for i, entry in enumerate(entries.values()):
            def step(frac: float, what: str, i: int = i) -> None:
                report(0.05 + 0.35 * (i + frac) / max(1, len(entries)), what)

            ok, reason = engine.supports(entry.plan)
            if not ok:
                entry.reason = reason
                continue
            entry.runner = engine.runner(entry.plan, encoded, concurrent=concurrent, jobs=jobs, progress=step)
            opened.append(entry.runner)
        baseline_entry: Entry | None = None
        if BASELINE in entries and entries[BASELINE].runner is None:
            base = entries[BASELINE]
            baseline_entry = Entry(BASELINE, base.plan, base.make)
            baseline_entry.runner = reference_engine.runner(base.plan, encoded, concurrent=concurrent, jobs=jobs)
            opened.append(baseline_entry.runner)
        timed = [e for e in entries.values() if e.runner is not None] + ([baseline_entry] if baseline_entry else [])

        source, extras = decomposition_entries(entries) if decompose else (None, {})
        for entry in extras.values():
            entry.runner = engine.runner(entry.plan, encoded, concurrent=concurrent, jobs=jobs)
            opened.append(entry.runner)
        timed += list(extras.values())
        base_for_ratio = baseline_entry or (entries[BASELINE] if BASELINE in entries and entries[BASELINE].runner else None)

        for w in range(warmup):
            report(0.4, f"warming up ({w + 1}/{warmup})")
            for entry in timed:
                entry.runner.run_once()  # type: ignore[union-attr]
        budget = MAX_SECONDS if max_seconds is None else max_seconds
        rounds_started = time.perf_counter()
        r = 0
        stop_reason = "repeats"
        while timed:
            if repeats is not None:
                label = f"repeat {r + 1}/{repeats}"
            else:
                label = f"round {r + 1} (until the intervals are tight, at most {budget:.0f} s)"
            order = random.Random(r).sample(timed, len(timed))
            for j, entry in enumerate(order):
                if repeats is not None:
                    done = (r + j / len(order)) / max(1, repeats)
                else:
                    done = (time.perf_counter() - rounds_started) / budget
                report(0.4 + 0.6 * min(1.0, done), f"{label}: {entry.name}")
                _, plan_ms = timed_call(entry.make)
                run = entry.runner.run_once(record=True)  # type: ignore[union-attr]
                entry.plan_ms.append(plan_ms)
                entry.host.append(tok_ms + plan_ms + run.scatter_ms + run.gather_ms)
                entry.device.append(run.device_ms)
            r += 1
            if repeats is not None:
                if r >= max(1, repeats):
                    break
                continue
            if r >= stats.MIN_ROUNDS and tight(timed, base_for_ratio, extras):
                stop_reason = "tight"
                break
            if r >= stats.FLOOR_ROUNDS and time.perf_counter() - rounds_started >= budget:
                stop_reason = "max_seconds"
                break
            if r >= MAX_ROUNDS:
                stop_reason = "max_rounds"
                break
    finally:
        for runner in opened:
            runner.close()

    outcomes: dict[str, Outcome] = {REFERENCE: reference}
    results = []
    for name, entry in entries.items():
        row = entry.plan.to_dict()
        row.pop("calls")
        row["device"] = engine.device
        if entry.runner is None:
            row.update({"supported": False, "reason": entry.reason, **_costs([]), "compile_s": None, "memory_mb": None})
            results.append(row)
            continue
        outcome = entry.runner.outcome()
        outcomes[name] = outcome
        row.update(
            {
                "supported": True,
                **_costs(_models(entry.runner)),
                "latency_ms": latency_stats(entry.latency),
                "host_ms": latency_stats(entry.host),
                "device_ms": latency_stats(entry.device),
                "plan_ms": latency_stats(entry.plan_ms),
                "call_latency_ms": [latency_stats(list(c)) for c in zip(*outcome.call_ms)],
                "fidelity": {**fidelity(outcome, reference),
                             f"recall_at_{RECALL_K}": neighbour_recall(outcome.embeddings, reference.embeddings)},
            }
        )
        results.append(row)
    baseline = None
    base_src = baseline_entry or (entries[BASELINE] if BASELINE in entries and entries[BASELINE].runner else None)
    if base_src is not None:
        assert base_src.runner is not None
        baseline = {
            "device": base_src.runner.engine.device,
            "latency_ms": latency_stats(base_src.latency),
            "host_ms": latency_stats(base_src.host),
            "device_ms": latency_stats(base_src.device),
            **_costs(_models(base_src.runner)),
        }
    for row in results:
        if row["supported"]:
            row["ratio_to_dynamic"] = row["latency_ms"]["median"] / baseline["latency_ms"]["median"] if baseline else None
            row["ratio_interval"] = None
            if baseline is not None and base_src is not None:
                lo, hi = stats.ratio_interval(entries[row["strategy"]].latency, base_src.latency)
                row["ratio_interval"] = [lo, hi]
                row["verdict"] = "same" if entries[row["strategy"]] is base_src else stats.verdict((lo, hi))
    rounds = len(timed[0].device) if timed else 0
    noise = {
        "spread": stats.noise([e.latency for e in timed]),
        "measure": "median over the timed contenders of 1.4826 x MAD / median of their per-round latencies",
        "rounds": rounds,
        "stopped": stop_reason,
        "interval_level": stats.LEVEL,
        "tight_target": stats.TIGHT,
    }
    precision = engine.inference_precision
    return Comparison(
        model=engine.loaded.spec,
        device=engine.device,
        precision=precision,
        lengths=list(lengths),
        results=results,
        plans={n: e.plan for n, e in entries.items()},
        outcomes=outcomes,
        texts=list(texts) if texts is not None else None,
        wall_s=time.perf_counter() - start,
        reference_device=reference_engine.device,
        static_only=engine.static_only,
        baseline=baseline,
        roundoff=roundoff(precision),
        batching_fidelity=fidelity(batched, reference),
        device_properties=engine.device_properties(),
        capabilities=engine.capabilities.to_dict(),
        tokenize_ms=tok_ms,
        settings={"repeats": rounds, "repeats_asked": repeats, "max_seconds": None if repeats is not None else budget,
                  "warmup": warmup, "concurrent": concurrent, "jobs": jobs,
                  "interleaved": True, "reference_precision": reference_engine.inference_precision,
                  "reference_weights": reference_engine.loaded.weights},
        noise=noise,
        decomposition=decomposition(source, extras, base_src if base_src is not baseline_entry else None),
        fastest=fastest(entries),
        weights=weights_summary(engine.loaded),
    )


def weights_summary(loaded: LoadedModel) -> dict[str, Any]:
    """The ``weights`` field of a comparison: the mode, how it was made, its size in MiB."""
    from shapedemo.model.compress import weight_bytes

    info = dict(loaded.weights_info or {"mode": loaded.weights})
    info["weights_mb"] = round(weight_bytes(loaded.model) / 2**20, 2)
    return info


def embed(engine: Engine, texts: Sequence[str], *, truncate: bool = False) -> tuple[Encoded, np.ndarray]:
    """Sentence embeddings of ``texts`` with native dynamic shapes (one call, padded to the
    longest text, masked); on an engine that takes static shapes only, with
    ``buckets-partition`` (each text padded to its bucket). ``truncate`` cuts texts to the
    model's own ``max_seq_length`` as sentence-transformers does (``Encoded.truncated`` lists
    them); without it a text over the position limit is an error."""
    loaded = engine.loaded
    if truncate:
        encoded = loaded.tokenizer.encode(list(texts), truncate=True, max_length=loaded.embed_max_length)
    else:
        encoded = loaded.tokenizer.encode(list(texts))
    plan = make_plan("dynamic", encoded.lengths, max_seq=engine.loaded.max_length)
    if not engine.supports(plan)[0]:
        plan = make_plan("buckets-partition", encoded.lengths, max_seq=engine.loaded.max_length)
    outcome = engine.run(plan, encoded, warmup=0, repeats=1, hidden=False)
    return encoded, outcome.embeddings
