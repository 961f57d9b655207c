"""The batcher between arriving requests and one engine: wait a little, group, plan, run.

Requests (each one or more tokenized texts) queue up; one worker thread, which owns the engine,
takes the oldest request and waits at most ``max_wait_ms`` from its arrival for more. A batch
closes when the queued texts reach the largest compiled batch size or their real tokens reach
``max_batch_tokens`` (a request is never split: a single request over either limit is a batch
of its own). The batch is planned by the chosen strategy and run with every call in flight at
once (``engine.run(..., concurrent=True)``: AsyncInferQueue); each request gets its own rows
back, in order. Every shape the strategy may use is compiled and warmed up before the first
request is taken, so no request waits for a compile.

The HTTP server (``serve.py``) and the in-process traffic generator (``traffic.py``) drive the
same class. No FastAPI and no OpenVINO import here: the engine is handed in.

>>> policy = BatchPolicy(max_wait_ms=5, max_batch_tokens=512, max_batch_texts=8)
>>> policy.closes(texts=8, tokens=100), policy.closes(texts=2, tokens=600), policy.closes(texts=2, tokens=100)
(True, True, False)
>>> compile_set("buckets-partition", {"seq_buckets": [32, 64], "batch_sizes": [1, 4], "max_seq": 64})
[(False, (1, 32)), (False, (1, 64)), (False, (4, 32)), (False, (4, 64))]
>>> compile_set("dynamic", {"max_seq": 128})
[(False, None)]
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import asdict, dataclass, field
from itertools import product
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from shapedemo.planning.edges import parse_int_list, positive_sizes, powers_of_two, resolve_buckets
from shapedemo.planning.plan import MAX_POSITIONS, Call, Plan, PlanError, Segment
from shapedemo.settings import SERVE_STRATEGY
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan

__all__ = [
    "DEFAULT_STRATEGY",
    "BatchPolicy",
    "BatchRecord",
    "Batcher",
    "CallRecord",
    "NotReady",
    "QueueFull",
    "RequestRecord",
    "Result",
    "compile_set",
    "longest_accepted",
    "plan_options",
    "record_dict",
]

DEFAULT_STRATEGY = SERVE_STRATEGY
"""``auto`` once the planner has it, else the least-padding fixed strategy."""

ShapeKey = tuple[bool, "tuple[int, int] | None"]
"""``(packed, (batch, seq))`` of one compiled model; ``(False, None)`` is the dynamic model."""

Log = Callable[[str], None]


class QueueFull(RuntimeError):
    """The queue holds ``max_queue_texts`` texts already: come back later (HTTP 503)."""


class NotReady(RuntimeError):
    """The batcher is still compiling its shapes, or has stopped (HTTP 503)."""


@dataclass(frozen=True)
class BatchPolicy:
    """When a batch closes, and how much may wait.

    ``max_batch_texts`` is the largest compiled batch size; ``max_queue_texts`` bounds what
    waits (beyond it ``submit`` raises ``QueueFull``).
    """

    max_wait_ms: float = 5.0
    max_batch_tokens: int = 4096
    max_batch_texts: int = 8
    max_queue_texts: int = 1024

    def __post_init__(self) -> None:
        if not 0 <= self.max_wait_ms <= 10_000:
            raise PlanError(f"max_wait_ms must be within 0..10000, not {self.max_wait_ms}")
        for name in ("max_batch_tokens", "max_batch_texts", "max_queue_texts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PlanError(f"{name} must be a whole number >= 1, not {value!r}")

    def closes(self, *, texts: int, tokens: int) -> bool:
        """Whether a batch of ``texts`` texts holding ``tokens`` real tokens is full."""
        return texts >= self.max_batch_texts or tokens >= self.max_batch_tokens


def _shape_key(entry: Any, packed: bool) -> ShapeKey:
    """One ``shape_set`` entry: ``[b, s]`` (packed as the plan), ``[b, s, packed]`` or a dict
    ``{"batch", "seq", "packed"}``."""
    if isinstance(entry, Mapping):
        return (bool(entry.get("packed", packed)), (int(entry["batch"]), int(entry["seq"])))
    values = list(entry)
    if len(values) == 3:
        return (bool(values[2]), (int(values[0]), int(values[1])))
    return (packed, (int(values[0]), int(values[1])))


def compile_set(strategy: str, plan_options: Mapping[str, Any]) -> list[ShapeKey]:
    """Every compiled model ``strategy`` may call for any batch under ``plan_options``
    (``make_plan``'s keywords), sorted: the dynamic model for dynamic strategies, else the
    strategy's declared ``plan.params["shape_set"]`` (plus ``"packed_shape_set"`` where a
    strategy mixes plain and packed calls). A strategy that declares no set gets every batch
    size at every bucket and ``max_seq``, plain and packed."""
    probe = make_plan(strategy, [1], **plan_options)
    if probe.dynamic:
        return [(probe.packed, None)]
    declared = probe.params.get("shape_set")
    if declared is None:
        args = probe.params
        seqs = set(plan_options.get("seq_buckets") or args.get("seq_buckets") or [])
        seqs |= {s for s in (args.get("max_seq"), args.get("pack_seq")) if s}
        sizes = plan_options.get("batch_sizes") or args.get("batch_sizes") or [1]
        keys = {(p, (b, s)) for p in (False, True) for b, s in product(sizes, seqs)}
    else:
        keys = {_shape_key(e, probe.packed) for e in declared}
        keys |= {_shape_key(e, True) for e in probe.params.get("packed_shape_set", [])}
    return sorted(keys, key=lambda k: (k[0], k[1] or (0, 0)))


DEFAULT_SEQ_BUCKETS = "pow2:32"
"""Powers of two from 32 to the model's limit (32, 64, 128, 256, 512 for BERT)."""


def plan_options(
    *,
    seq_buckets: str | Sequence[int] | None = None,
    batch_sizes: Sequence[int] = (1, 2, 4, 8),
    max_seq: int | None = None,
    pack_seq: int | None = None,
    model_limit: int = MAX_POSITIONS,
) -> dict[str, Any]:
    """``make_plan`` keywords for traffic to a model that takes ``model_limit`` tokens: the
    bucket list (a list, or ``pow2``/``pow2:MIN``/``linear[:STEP]``) resolved, ``max_seq``
    defaulting to the top bucket (the longest text a batch may hold).

    >>> plan_options(model_limit=512)["seq_buckets"]
    (32, 64, 128, 256, 512)
    >>> plan_options(seq_buckets="16,64", batch_sizes=(1, 4))
    {'seq_buckets': (16, 64), 'batch_sizes': (1, 4), 'max_seq': 64, 'pack_seq': None}
    """
    if max_seq is not None and max_seq > model_limit:
        raise PlanError(f"--max-seq {max_seq} is over the model's limit of {model_limit} tokens")
    top = max_seq or model_limit
    spec = seq_buckets if seq_buckets is not None else DEFAULT_SEQ_BUCKETS
    if isinstance(spec, str):
        name, _, arg = spec.strip().lower().partition(":")
        if name == "tuned":
            raise PlanError("--seq-buckets tuned:K needs a traffic sample: run `tune --json` on one and pass --config")
        if name == "pow2" and arg:
            low = parse_int_list(arg, what="--seq-buckets pow2:MIN")[0]
            buckets = tuple(b for b in powers_of_two(top, min_bucket=low) if b >= low)
        else:
            buckets = resolve_buckets(spec, [1], max_seq=top, what="--seq-buckets")
    else:
        buckets = positive_sizes(spec, what="seq_buckets")
    if buckets[-1] > model_limit:
        raise PlanError(f"bucket {buckets[-1]} is over the model's limit of {model_limit} tokens")
    return {
        "seq_buckets": buckets,
        "batch_sizes": tuple(batch_sizes),
        "max_seq": max_seq or buckets[-1],
        "pack_seq": pack_seq,
    }


def longest_accepted(strategy: str, plan_options: Mapping[str, Any]) -> int:
    """The longest text (in tokens) every batch of ``strategy`` can place: the longest compiled
    sequence length for static strategies, ``max_seq`` for dynamic ones.

    >>> longest_accepted("buckets", {"seq_buckets": [32, 64], "max_seq": 128})
    64
    """
    seqs = [shape[1] for _, shape in compile_set(strategy, plan_options) if shape is not None]
    if seqs:
        return max(seqs)
    probe = make_plan(strategy, [1], **plan_options)
    return int(probe.params.get("max_seq") or plan_options.get("max_seq") or MAX_POSITIONS)


@dataclass
class CallRecord:
    """One inference call of a batch: its compiled shape and how long it took (ms).

    ``start`` is when the engine started the call (``perf_counter`` seconds): a call that waits
    for a free infer request starts later than the batch (its own start, not the batch's)."""

    batch: int
    seq: int
    packed: bool
    dynamic: bool
    start: float
    ms: float
    real_tokens: int


@dataclass
class BatchRecord:
    """One batch: which requests, how much padding, which calls, when (``perf_counter`` s)."""

    id: int
    strategy: str
    start: float
    end: float
    requests: list[int]
    texts: int
    real_tokens: int
    computed_tokens: int
    padding_fraction: float
    calls: list[CallRecord]
    compiled_now: int = 0

    @property
    def compute_ms(self) -> float:
        return (self.end - self.start) * 1e3


@dataclass
class RequestRecord:
    """One request's way through the batcher (``perf_counter`` seconds)."""

    id: int
    texts: int
    tokens: int
    arrival: float
    start: float = 0.0
    end: float = 0.0
    batch: int = -1

    @property
    def queue_ms(self) -> float:
        return (self.start - self.arrival) * 1e3

    @property
    def compute_ms(self) -> float:
        return (self.end - self.start) * 1e3

    @property
    def latency_ms(self) -> float:
        return (self.end - self.arrival) * 1e3


@dataclass
class Result:
    """A request's sentence embeddings (one row per text, in its order) and its record."""

    embeddings: np.ndarray
    record: RequestRecord


@dataclass
class _Pending:
    record: RequestRecord
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    done: Callable[[Any], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Batcher:
    """Groups requests into batches and runs them on ``engine`` in one worker thread.

    ``start()`` compiles and warms up every shape of ``compile_set(strategy, plan_options)`` in
    that thread (``log`` gets one line per shape), then serves. ``submit`` is thread-safe;
    ``embed`` is its asyncio form. ``on_batch`` callbacks see every ``BatchRecord`` (metrics,
    the traffic tab).
    """

    engine: Any
    strategy: str
    plan_options: dict[str, Any]
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    log: Log = _stderr
    on_batch: list[Callable[[BatchRecord], None]] = field(default_factory=list)
    warmup_calls: int = 2

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_NAMES:
            raise PlanError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGY_NAMES)}")
        self.shapes: list[ShapeKey] = compile_set(self.strategy, self.plan_options)
        self.state = "new"  # new -> compiling -> ready -> stopped, or -> failed
        self.error: str | None = None
        self.compiled = 0
        self.startup_s = 0.0
        self.shape_info: list[dict[str, Any]] = []
        self._queue: deque[_Pending] = deque()
        self._queued_texts = 0
        self._cond = threading.Condition()
        self._ready = threading.Event()
        self._stopping = False
        self._ids = itertools.count()
        self._batch_ids = itertools.count()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "Batcher":
        """Start the worker thread: compile and warm up, then take requests. Returns at once;
        ``wait_ready`` blocks until it serves (or failed to start)."""
        if self._thread is not None:
            raise RuntimeError("this batcher was started already")
        self.state = "compiling"
        self._thread = threading.Thread(target=self._main, name="shapedemo-batcher", daemon=True)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once every shape is compiled; raises ``RuntimeError`` if start-up failed."""
        self._ready.wait(timeout)
        if self.state == "failed":
            raise RuntimeError(self.error or "the batcher failed to start")
        return self.state == "ready"

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self._thread is not None and self._thread.is_alive()

    @property
    def queued_texts(self) -> int:
        return self._queued_texts

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the batches already queued, then stop the worker thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        if self.state in ("ready", "compiling", "new"):
            self.state = "stopped"
        self._ready.set()

    # ------------------------------------------------------------------ requests
    def submit(self, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None, done: Callable[[Any], None]) -> RequestRecord:
        """Queue one request (its texts' token ids); ``done`` is called from the worker thread
        with a ``Result`` or an exception. Raises ``NotReady`` or ``QueueFull`` at once."""
        ids = [list(r) for r in input_ids]
        types = [list(r) for r in token_type_ids] if token_type_ids is not None else [[0] * len(r) for r in ids]
        if not ids or any(not r for r in ids):
            raise ValueError("a request needs at least one non-empty sequence")
        with self._cond:
            if not self.ready or self._stopping:
                raise NotReady(self.error or f"the server is {'stopping' if self._stopping else self.state}")
            if self._queued_texts + len(ids) > self.policy.max_queue_texts and self._queue:
                raise QueueFull(f"{self._queued_texts} texts are queued (limit {self.policy.max_queue_texts})")
            record = RequestRecord(next(self._ids), len(ids), sum(map(len, ids)), time.perf_counter())
            self._queue.append(_Pending(record, ids, types, done))
            self._queued_texts += len(ids)
            self._cond.notify_all()
        return record

    async def embed(self, input_ids: Sequence[Sequence[int]], token_type_ids: Sequence[Sequence[int]] | None = None) -> Result:
        """``submit`` for asyncio: the result (or the worker's exception) of one request."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()

        def settle(outcome: Any) -> None:
            if future.done():  # the client went away
                return
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        self.submit(input_ids, token_type_ids, lambda outcome: loop.call_soon_threadsafe(settle, outcome))
        return await future

    # ------------------------------------------------------------------ the worker thread
    def _main(self) -> None:
        try:
            self._prepare()
        except Exception as exc:  # start-up failures are reported, not raised in a thread
            self.error = " ".join(str(exc).split()) or type(exc).__name__
            self.state = "failed"
            self._ready.set()
            return
        self.state = "ready"
        self._ready.set()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._run(batch)

    def _compiled_keys(self) -> set[ShapeKey]:
        return {(e.packed, e.shape) for e in self.engine.compiled_entries()}

    def _prepare(self) -> None:
        start = time.perf_counter()
        total = len(self.shapes)
        for i, (packed, shape) in enumerate(self.shapes, 1):
            label = "dynamic model" if shape is None else f"{shape[0]} x {shape[1]}" + (" packed" if packed else "")
            entry = self.engine.compile(shape, packed=packed)
            self.compiled = i
            self.log(f"serve: compiled {label} ({i}/{total}) in {entry.compile_s:.2f} s")
            info = {"shape": None if shape is None else list(shape), "packed": packed, "compile_s": entry.compile_s, "memory_mb": entry.memory_mb}
            self.shape_info.append(info)
        missing = [k for k in self.shapes if k not in self._compiled_keys()]
        if missing:
            raise RuntimeError(
                f"the {total} compiled shapes of this configuration do not fit the compiled-model "
                f"memory budget ({len(missing)} were evicted at start-up; raise SHAPEDEMO_COMPILED_MB "
                "or compile fewer shapes: fewer --seq-buckets / --batch-sizes)"
            )
        for info, (packed, shape) in zip(self.shape_info, self.shapes):
            info["warmup_ms"] = self._warm_up(shape, packed=packed)
        if self.strategy == "auto" and self.plan_options.get("cost_model") is None:
            from shapedemo.runtime.costs import measured_cost_model

            options = self.plan_options
            model, _ = measured_cost_model(
                self.engine, options["seq_buckets"], options["batch_sizes"],
                packed=options.get("allow_packing", True),
            )
            self.plan_options = {**options, "cost_model": model}
            self.log(f"serve: auto priced by {model.pricing}")
        self.startup_s = time.perf_counter() - start
        self.log(f"serve: ready: {total} compiled model(s) warmed up in {self.startup_s:.1f} s")

    def _warm_up(self, shape: tuple[int, int] | None, *, packed: bool) -> float:
        """Run ``warmup_calls`` full calls at ``shape`` at once (creates the infer requests and
        the async queue this thread will use); returns the median call ms."""
        batch, seq = shape or (1, 16)
        seq = min(seq, self.engine.loaded.max_length)
        n = max(1, self.warmup_calls)
        lengths = [seq] * (batch * n)
        calls = tuple(
            Call(batch, seq, tuple((Segment(c * batch + r, 0, seq),) for r in range(batch))) for c in range(n)
        )
        plan = Plan("warm-up", tuple(lengths), calls, dynamic=shape is None, packed=packed)
        encoded = self.engine.loaded.tokenizer.synthetic_ids(lengths, seed=seq)
        outcome = self.engine.run(plan, encoded, warmup=0, repeats=1, concurrent=True)
        return float(np.median(outcome.call_ms[-1]))

    def _next_batch(self) -> list[_Pending] | None:
        policy = self.policy
        with self._cond:
            while not self._queue:
                if self._stopping:
                    return None
                self._cond.wait()
            deadline = self._queue[0].record.arrival + policy.max_wait_ms / 1e3
            while True:
                texts = tokens = 0
                full = False
                for pending in self._queue:
                    texts += pending.record.texts
                    tokens += pending.record.tokens
                    if policy.closes(texts=texts, tokens=tokens):
                        full = True
                        break
                remaining = deadline - time.perf_counter()
                if full or remaining <= 0 or self._stopping:
                    break
                self._cond.wait(remaining)
            batch = [self._queue.popleft()]
            texts, tokens = batch[0].record.texts, batch[0].record.tokens
            while self._queue and not policy.closes(texts=texts, tokens=tokens):
                nxt = self._queue[0].record
                if texts + nxt.texts > policy.max_batch_texts or tokens + nxt.tokens > policy.max_batch_tokens:
                    break
                batch.append(self._queue.popleft())
                texts, tokens = texts + nxt.texts, tokens + nxt.tokens
            self._queued_texts -= texts
            return batch

    def _run(self, batch: list[_Pending]) -> None:
        start = time.perf_counter()
        for pending in batch:
            pending.record.start = start
        try:
            ids = [row for p in batch for row in p.input_ids]
            types = [row for p in batch for row in p.token_type_ids]
            from shapedemo.model import Encoded  # the engine's input type

            encoded = Encoded(ids, types)
            plan = make_plan(self.strategy, encoded.lengths, **self.plan_options)
            have = self._compiled_keys()
            compiled_now = sum(1 for k in self.engine.shapes_needed(plan) if k not in have)
            if compiled_now:
                self.log(f"serve: warning: {plan.strategy} used {compiled_now} shape(s) outside its compiled set; compiling under traffic")
            outcome = self.engine.run(plan, encoded, warmup=0, repeats=1, concurrent=True)
        except Exception as exc:
            self.log(f"serve: batch of {len(batch)} request(s) failed: {' '.join(str(exc).split())}")
            traceback.print_exc(file=sys.stderr)
            for pending in batch:
                pending.done(exc)
            return
        end = time.perf_counter()
        record = self._record(plan, outcome, batch, start, end, compiled_now)
        row = 0
        for pending in batch:
            pending.record.end, pending.record.batch = end, record.id
            n = pending.record.texts
            pending.done(Result(outcome.embeddings[row : row + n], pending.record))
            row += n
        for hook in self.on_batch:
            try:
                hook(record)
            except Exception:  # an observer never takes the worker down
                traceback.print_exc(file=sys.stderr)

    def _record(self, plan: Plan, outcome: Any, batch: list[_Pending], start: float, end: float, compiled_now: int) -> BatchRecord:
        call_ms = outcome.call_ms[-1] if outcome.call_ms else [0.0] * plan.num_calls
        starts = outcome.call_starts[-1] if outcome.call_starts else [start] * plan.num_calls
        calls = [
            CallRecord(call.batch, call.seq, plan.packed, plan.dynamic, call_start, float(ms), call.real_tokens)
            for call, ms, call_start in zip(plan.calls, call_ms, starts)
        ]
        return BatchRecord(
            next(self._batch_ids), plan.strategy, start, end, [p.record.id for p in batch],
            len(plan.lengths), plan.real_tokens, plan.computed_tokens, plan.padding_fraction,
            calls, compiled_now,
        )


def record_dict(record: RequestRecord | BatchRecord, *, origin: float = 0.0) -> dict[str, Any]:
    """A record as JSON-ready data, times in seconds since ``origin`` (``perf_counter``)."""
    data = asdict(record)
    for key in ("arrival", "start", "end"):
        if key in data:
            data[key] = data[key] - origin
    for call in data.get("calls", []):
        call["start"] -= origin
    if isinstance(record, RequestRecord):
        data.update(queue_ms=record.queue_ms, compute_ms=record.compute_ms, latency_ms=record.latency_ms)
    else:
        data["compute_ms"] = record.compute_ms
    return data
