"""Live traffic in process: a generated Poisson stream through the server's own batcher.

What the HTTP server does, without HTTP: the same ``Batcher`` (wait at most ``max_wait_ms``, 0
by default: a batch is what queued while the last one ran; close a batch at the largest batch
size or ``max_batch_tokens``, plan it with the strategy, run it on the engine), fed by requests
arriving at Poisson times. The result holds one record per request (arrival, queue delay,
compute, latency) and per batch (its calls and their compiled shapes), times in seconds from the
start of the stream: the data of the "Live traffic" figures (``plots.traffic``). Every shape is compiled before the first arrival, so the stream measures
serving, not compiling.

>>> TrafficSettings(rate=500, duration_s=30).check()
Traceback (most recent call last):
...
shapedemo.planning.plan.PlanError: rate x duration = 15000 requests is over the cap of 5000
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from shapedemo import session
from shapedemo.serving.batcher import (
    BatchPolicy,
    Batcher,
    BatchRecord,
    QueueFull,
    record_dict,
)
from shapedemo.serving.loadtest import arrivals
from shapedemo.planning.plan import PlanError
from shapedemo.planning.workloads import sample_lengths
from shapedemo.settings import SERVE_MAX_WAIT_MS
from shapedemo.shapes import ShapeSet

__all__ = ["MAX_STREAM_REQUESTS", "TrafficRun", "TrafficSettings", "run_traffic"]

MAX_STREAM_REQUESTS = 5000
"""The most requests one in-process stream schedules (rate x duration)."""

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrafficSettings:
    """One stream: arrivals, what each request holds, and the batcher's shapes (resolved as
    ``serve`` resolves them) and policy."""

    strategy: str = "buckets-partition"
    rate: float = 20.0
    duration_s: float = 5.0
    workload: str = "sst2-like"
    texts_per_request: int = 1
    shapes: ShapeSet = field(default_factory=ShapeSet)
    max_wait_ms: float = SERVE_MAX_WAIT_MS
    max_batch_tokens: int = 4096
    max_queue_texts: int = 1024
    seed: int = 0

    def check(self) -> "TrafficSettings":
        """Raise one ``PlanError`` line for a stream that is too large or malformed."""
        if not 0 < self.duration_s <= 60:
            raise PlanError(f"duration {self.duration_s} s is outside (0, 60]")
        if not 0 < self.rate <= 1000:
            raise PlanError(f"rate {self.rate} is outside (0, 1000] requests per second")
        if self.rate * self.duration_s > MAX_STREAM_REQUESTS:
            raise PlanError(f"rate x duration = {self.rate * self.duration_s:.0f} requests is over the cap of {MAX_STREAM_REQUESTS}")
        if not 1 <= self.texts_per_request <= 64:
            raise PlanError(f"texts per request {self.texts_per_request} is outside 1..64")
        return self


@dataclass
class TrafficRun:
    """A finished stream: per-request and per-batch records (seconds from the first arrival's
    schedule origin), refused arrivals, and what was compiled."""

    settings: TrafficSettings
    requests: list[dict[str, Any]]
    batches: list[dict[str, Any]]
    refused: int
    shapes: list[dict[str, Any]]
    startup_s: float
    wall_s: float
    model: str = ""
    precision: str = ""
    texts_source: str = ""

    def summary(self) -> dict[str, Any]:
        """Counts, throughput and latency percentiles (ms), mean queue delay and compute."""
        lat = [r["latency_ms"] for r in self.requests]
        real = sum(b["real_tokens"] for b in self.batches)
        computed = sum(b["computed_tokens"] for b in self.batches)
        calls: dict[str, int] = {}
        for b in self.batches:
            for c in b["calls"]:
                calls[_call_label(c)] = calls.get(_call_label(c), 0) + 1

        def pct(q: float) -> float | None:
            return float(np.percentile(lat, q)) if lat else None

        return {
            "strategy": self.settings.strategy,
            "offered_rps": self.settings.rate,
            "requests": len(self.requests) + self.refused,
            "answered": len(self.requests),
            "refused": self.refused,
            "throughput_rps": len(self.requests) / self.wall_s if self.wall_s else 0.0,
            "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99)},
            "mean_queue_ms": float(np.mean([r["queue_ms"] for r in self.requests])) if lat else None,
            "mean_compute_ms": float(np.mean([r["compute_ms"] for r in self.requests])) if lat else None,
            "batches": len(self.batches),
            "mean_batch_texts": float(np.mean([b["texts"] for b in self.batches])) if self.batches else None,
            "padding_fraction": (computed - real) / computed if computed else 0.0,
            "calls_per_shape": dict(sorted(calls.items())),
            "compiled_shapes": len(self.shapes),
            "startup_s": self.startup_s,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what ``plots.traffic`` draws."""
        return {
            "strategy": self.settings.strategy,
            "model": self.model,
            "precision": self.precision,
            "texts": self.texts_source,
            "rate": self.settings.rate,
            "duration_s": self.settings.duration_s,
            "max_wait_ms": self.settings.max_wait_ms,
            "requests": self.requests,
            "batches": self.batches,
            "shapes": self.shapes,
            "summary": self.summary(),
        }


def _call_label(call: dict[str, Any]) -> str:
    """``"4x64"``, ``"4x64 packed"`` or ``"dynamic"`` (a dynamic call names its run shape)."""
    if call.get("dynamic"):
        return "dynamic"
    return f"{call['batch']}x{call['seq']}" + (" packed" if call.get("packed") else "")


def _inputs(engine: Any, settings: TrafficSettings, limit: int, count: int, texts: Sequence[str] | None) -> tuple[list[list[int]], list[list[int]], str]:
    """Token ids of ``count`` texts: drawn from ``texts`` (cut to ``limit``), else random words
    at the workload's lengths (capped at ``limit``)."""
    tokenizer = engine.loaded.tokenizer
    if texts:
        encoded = tokenizer.encode(list(texts), truncate=True, max_length=limit)
        rows = list(zip(encoded.input_ids, encoded.token_type_ids))
        rng = random.Random(settings.seed)
        picked = [rows[rng.randrange(len(rows))] for _ in range(count)]
        return [p[0] for p in picked], [p[1] for p in picked], f"{len(texts)} texts"
    lengths = sample_lengths(settings.workload, count, seed=settings.seed, max_len=limit)
    encoded = tokenizer.synthetic_ids(lengths, seed=settings.seed)
    return encoded.input_ids, encoded.token_type_ids, f"workload {settings.workload}"


def run_traffic(
    engine: Any,
    settings: TrafficSettings,
    *,
    texts: Sequence[str] | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> TrafficRun:
    """Compile ``settings``' shapes on ``engine``, play a Poisson stream at ``settings.rate`` for
    ``settings.duration_s`` through a ``Batcher``, wait for every answer, stop the batcher.

    ``texts`` (optional) are the requests' texts, drawn at random; without them each request
    holds random words at ``settings.workload``'s lengths. A request refused by a full queue is
    counted, not retried. Raises ``PlanError`` for bad settings or shapes over the compiled-model
    budget (one line), ``RuntimeError`` if the shapes cannot be compiled.
    """
    settings.check()
    shapes = settings.shapes.resolve(limit=engine.loaded.max_length, serve=True)
    policy = BatchPolicy(
        max_wait_ms=settings.max_wait_ms, max_batch_tokens=settings.max_batch_tokens,
        max_batch_texts=shapes.batch_sizes[-1], max_queue_texts=settings.max_queue_texts,
    )
    batches: list[BatchRecord] = []
    batcher = Batcher(engine, settings.strategy, shapes, policy, log=log or (lambda line: None), on_batch=[batches.append],
                      memo=session.current().memo)
    limit = min(batcher.longest, engine.loaded.max_length)
    schedule = arrivals(rate=settings.rate, duration_s=settings.duration_s, seed=settings.seed)
    per = settings.texts_per_request
    ids, types, source = _inputs(engine, settings, limit, len(schedule) * per, texts)

    batcher.start()
    total = len(batcher.shapes)
    try:
        while not batcher.wait_ready(0.25):
            if progress:  # may raise (a cancelled page event): the batcher stops before its next compile
                progress(0.5 * batcher.compiled / max(1, total), f"{settings.strategy}: compiled {batcher.compiled}/{total} shapes")
    except BaseException:
        batcher.stop()
        raise
    records: list[Any] = []
    refused = 0
    remaining = threading.Semaphore(0)
    try:
        origin = time.perf_counter()
        for i, at in enumerate(schedule):
            delay = origin + at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            if progress and i % 20 == 0:
                progress(0.5 + 0.5 * at / settings.duration_s, f"{settings.strategy}: {i}/{len(schedule)} requests sent")
            try:
                batcher.submit(ids[i * per : (i + 1) * per], types[i * per : (i + 1) * per], lambda outcome: (records.append(outcome), remaining.release()))
            except QueueFull:
                refused += 1
        answered = len(schedule) - refused
        deadline = time.perf_counter() + 60 + settings.duration_s
        for _ in range(answered):
            if not remaining.acquire(timeout=max(0.0, deadline - time.perf_counter())):
                break
        wall = time.perf_counter() - origin
    finally:
        batcher.stop()
    failures = [r for r in records if isinstance(r, BaseException)]
    if failures:
        raise RuntimeError(f"{len(failures)} request(s) failed in the engine: {failures[0]}")
    requests = sorted((record_dict(r.record, origin=origin) for r in records), key=lambda r: r["arrival"])
    return TrafficRun(
        settings=settings,
        requests=requests,
        batches=[record_dict(b, origin=origin) for b in batches],
        refused=refused,
        shapes=batcher.shape_info,
        startup_s=batcher.startup_s,
        wall_s=wall,
        model=engine.loaded.spec,
        precision=engine.inference_precision,
        texts_source=source,
    )
