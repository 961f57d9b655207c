"""The batcher between arriving requests and one engine: group, plan, run.

Requests (each one or more tokenized texts) queue up; one worker thread, which owns the engine,
takes the oldest request and waits at most ``max_wait_ms`` from its arrival for more. With the
default of 0 it does not wait: a batch is what queued while the last one ran, and a request that
finds the engine free runs at once (on a 2-core CPU a 5 ms wait added about 5 ms to the median
latency up to 160 req/s, was level at 240 and gained no throughput: docs/BENCHMARKS.md). A batch
closes when the queued texts reach the largest compiled batch size or their real tokens reach
``max_batch_tokens`` (a request is never split: a single request over either limit is a batch
of its own). The batch is planned by the chosen strategy and run with every call in flight at
once (``engine.run(..., concurrent=True)``: AsyncInferQueue); each request gets its own rows
back, in order. Every shape the strategy declares (``planning.strategies.declare``: the exact
set its plans may call) is compiled, pinned against eviction and warmed up before the first
request is taken, so no request waits for a compile.

The HTTP server (``serve.py``) and the in-process traffic generator (``traffic.py``) drive the
same class. No FastAPI and no OpenVINO import here: the engine is handed in.

>>> policy = BatchPolicy(max_wait_ms=5, max_batch_tokens=512, max_batch_texts=8)
>>> policy.closes(texts=8, tokens=100), policy.closes(texts=2, tokens=600), policy.closes(texts=2, tokens=100)
(True, True, False)
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
from typing import Any, Callable, Sequence

import numpy as np

from shapedemo.planning.plan import Call, Plan, PlanError, Segment
from shapedemo.planning.strategies import STRATEGY_NAMES, declare, make_plan
from shapedemo.settings import SERVE_MAX_WAIT_MS, SERVE_STRATEGY
from shapedemo.shapes import Shape, ShapeSet, shapes_of

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
    "record_dict",
]

DEFAULT_STRATEGY = SERVE_STRATEGY
"""``auto`` once the planner has it, else the least-padding fixed strategy."""

Log = Callable[[str], None]


class QueueFull(RuntimeError):
    """The queue holds ``max_queue_texts`` texts already: come back later (HTTP 503)."""


class _Stopped(Exception):
    """``stop()`` was called while the shapes were being compiled."""


class NotReady(RuntimeError):
    """The batcher is still compiling its shapes, or has stopped (HTTP 503)."""


@dataclass(frozen=True)
class BatchPolicy:
    """When a batch closes, and how much may wait.

    ``max_batch_texts`` is the largest compiled batch size; ``max_queue_texts`` bounds what
    waits (beyond it ``submit`` raises ``QueueFull``).
    """

    max_wait_ms: float = SERVE_MAX_WAIT_MS
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

    ``start()`` compiles, pins and warms up every shape ``strategy`` declares on ``shape_set``
    (resolved) in that thread (``log`` gets one line per shape), then serves; ``stop()`` unpins
    them. ``submit`` is thread-safe; ``embed`` is its asyncio form. ``on_batch`` callbacks see
    every ``BatchRecord`` (metrics, the traffic tab).
    """

    engine: Any
    strategy: str
    shape_set: ShapeSet
    policy: BatchPolicy = field(default_factory=BatchPolicy)
    log: Log = _stderr
    on_batch: list[Callable[[BatchRecord], None]] = field(default_factory=list)
    warmup_calls: int = 2
    cost_model: Any = None
    """What ``auto`` prices with (a ``CostModel``); None: measured on this device at start-up."""
    on_drop: list[Callable[[RequestRecord], None]] = field(default_factory=list)
    memo: Any = None
    """A ``PlanMemo`` (the session's): fitted prices and chunk tables kept from batch to batch."""

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGY_NAMES:
            raise PlanError(f"unknown strategy {self.strategy!r}; known: {', '.join(STRATEGY_NAMES)}")
        self.allow_packing = self.engine.loaded.packed is not None
        self.declared = declare(self.strategy, self.shape_set, allow_packing=self.allow_packing)
        self.shapes: list[Shape] = self.declared.shapes()
        self._pinned: list[Any] = []
        self.state = "new"  # new -> compiling -> ready -> stopped, or -> failed
        self.error: str | None = None
        self._refused = False  # start-up refused the configuration (a PlanError), not crashed
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
        """True once every shape is compiled; raises ``PlanError`` if start-up refused the
        configuration (its shapes over the memory budget), ``RuntimeError`` if it failed."""
        self._ready.wait(timeout)
        if self.state == "failed":
            raise (PlanError if self._refused else RuntimeError)(self.error or "the batcher failed to start")
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

    def _unpin(self) -> None:
        pinned, self._pinned = self._pinned, []
        for entry in pinned:
            self.engine.unpin(entry)

    @property
    def plan_options(self) -> dict[str, Any]:
        """``make_plan``'s keywords for every batch (the resolved ``shape_set``)."""
        return self.shape_set.plan_options()

    @property
    def longest(self) -> int:
        """The longest text (tokens) every batch can place: the longest declared shape."""
        return self.declared.longest

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

        record = self.submit(input_ids, token_type_ids, lambda outcome: loop.call_soon_threadsafe(settle, outcome))
        try:
            return await future
        except asyncio.CancelledError:  # the caller gave up (its client left): drop it if still queued
            self.cancel(record)
            raise

    def cancel(self, record: RequestRecord) -> bool:
        """Take a request out of the queue before it is computed (its client went away); False
        where its batch has started already. ``on_drop`` callbacks see what was dropped."""
        with self._cond:
            for i, pending in enumerate(self._queue):
                if pending.record is record:
                    del self._queue[i]
                    self._queued_texts -= record.texts
                    break
            else:
                return False
        for hook in self.on_drop:
            hook(record)
        return True

    # ------------------------------------------------------------------ the worker thread
    def _main(self) -> None:
        try:
            try:
                self._prepare()
            except _Stopped:
                self.state = "stopped"
                self._ready.set()
                return
            except Exception as exc:  # start-up failures are reported, not raised in a thread
                self.error = " ".join(str(exc).split()) or type(exc).__name__
                self._refused = isinstance(exc, PlanError)
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
        finally:  # the declared set is held only while this batcher serves
            self._unpin()

    def _compiled_keys(self) -> set[Any]:
        return {e.key for e in self.engine.compiled_entries()}

    def _prepare(self) -> None:
        start = time.perf_counter()
        total = len(self.shapes)
        for i, shape in enumerate(self.shapes, 1):
            if self._stopping:  # stopped (a cancelled traffic run) before its next compile
                raise _Stopped()
            entry = self._pin_shape(shape)
            self.compiled = i
            self.log(f"serve: compiled {shape.label} ({i}/{total}) in {entry.compile_s:.2f} s")
            self._check_fits(total, i)  # over the budget already: stop here, not after compiling the rest
        have = self._compiled_keys()
        self._check_fits(total, total, missing=any(s.model_key not in have for s in self.shapes))
        self._check_blob_room()
        for info, shape in zip(self.shape_info, self.shapes):
            info["warmup_ms"] = self._warm_up(shape)
        if self.strategy == "auto" and self.cost_model is None:
            from shapedemo.runtime.costs import measured_cost_model

            self.cost_model, _ = measured_cost_model(
                self.engine, self.shape_set.seq_buckets, self.shape_set.batch_sizes, packed=self.allow_packing,
            )
            self.log(f"serve: auto priced by {self.cost_model.pricing}")
            if self.cost_model.dynamic:  # auto may run a request on the dynamic model: held like the set
                shape = Shape.dynamic_model()
                self.shapes.append(shape)
                self._pin_shape(shape)
                self._check_fits(len(self.shapes), len(self.shapes))
                self.shape_info[-1]["warmup_ms"] = self._warm_up(shape)
                self.log("serve: auto may also run a request on the dynamic model, where it costs less here than any compiled shape")
        self.startup_s = time.perf_counter() - start
        self.log(f"serve: ready: {len(self.shapes)} compiled model(s) warmed up in {self.startup_s:.1f} s")

    def _pin_shape(self, shape: Shape) -> Any:
        """Compile ``shape`` pinned for this batcher's life and list it in ``shape_info``."""
        entry = self.engine.compile(shape.static, packed=shape.packed, bounds=shape.bounds, pin=True)
        self._pinned.append(entry)
        self.shape_info.append({"shape": None if shape.dynamic else [shape.batch, shape.seq], "packed": shape.packed,
                                "compile_s": entry.compile_s, "memory_mb": entry.memory_mb})
        return entry

    def _check_fits(self, total: int, done: int, *, missing: bool = False) -> None:
        """One line (``PlanError``) when the pinned shapes hold more than the compiled-model
        budget (pinned: never evicted), or one of them was released meanwhile."""
        held = sum(max(e.memory_mb or 0.0, 1.0) for e in self._pinned)
        if missing or held > self.engine.budget.mb:
            after = "" if done == total else f" after {done} of them"
            raise PlanError(
                f"the {total} compiled shapes of this configuration do not fit the compiled-model "
                f"memory budget ({held:.0f} MiB held{after} against {self.engine.budget.mb:.0f} MiB; raise SHAPEDEMO_COMPILED_MB "
                "or compile fewer shapes: fewer --seq-buckets / --batch-sizes)"
            )

    def _check_blob_room(self) -> None:
        """Say so at start-up when the compiled-blob cache cannot hold this whole set (the next
        start then compiles what was pruned instead of importing it)."""
        folder, budget = getattr(self.engine, "blob_dir", None), getattr(self.engine, "blob_budget_mb", 0)
        if folder is None or not folder.is_dir() or budget <= 0:
            return
        sizes = [p.stat().st_size / 2**20 for p in folder.glob("*.blob")]
        if not sizes or max(sizes) * len(self.shapes) > budget:  # none left: each blob was over the budget
            held = f"about {int(budget // max(sizes))}" if sizes else "none"
            need = f" (about {max(sizes) * len(self.shapes):.0f} MB holds them all)" if sizes else ""
            self.log(f"serve: note: the blob cache (SHAPEDEMO_BLOB_CACHE_MB={budget}) holds {held} of these "
                     f"{len(self.shapes)} compiled shapes: the next start compiles the rest again{need}")

    def _warm_up(self, shape: Shape) -> float:
        """Run ``warmup_calls`` full calls at ``shape`` at once (creates the infer requests and
        the async queue this thread will use); returns the median call ms."""
        batch, seq = shape.static or (1, 16)
        seq = min(seq, self.engine.loaded.max_length)
        n = max(1, self.warmup_calls)
        lengths = [seq] * (batch * n)
        calls = tuple(
            Call(batch, seq, tuple((Segment(c * batch + r, 0, seq),) for r in range(batch))) for c in range(n)
        )
        params = {"bounds": list(shape.bounds)} if shape.bounds else {}
        plan = Plan("warm-up", tuple(lengths), calls, dynamic=shape.dynamic, packed=shape.packed, params=params)
        encoded = self.engine.loaded.tokenizer.synthetic_ids(lengths, seed=seq)
        outcome = self.engine.run(plan, encoded, warmup=0, repeats=1, concurrent=True, hidden=False)
        return float(np.median(outcome.call_ms[-1]))

    def _wait_for_company(self) -> bool:
        """With the lock held and a request queued: wait until the batch is full or the oldest
        request's ``max_wait_ms`` is up; False if the queue emptied meanwhile (cancelled)."""
        policy = self.policy
        deadline = self._queue[0].record.arrival + policy.max_wait_ms / 1e3
        while self._queue:
            texts = tokens = 0
            for pending in self._queue:
                texts += pending.record.texts
                tokens += pending.record.tokens
                if policy.closes(texts=texts, tokens=tokens):
                    return True
            remaining = deadline - time.perf_counter()
            if remaining <= 0 or self._stopping:
                return True
            self._cond.wait(remaining)
        return False

    def _next_batch(self) -> list[_Pending] | None:
        policy = self.policy
        with self._cond:
            while True:  # again when every queued request was cancelled while we waited
                while not self._queue:
                    if self._stopping:
                        return None
                    self._cond.wait()
                if self._wait_for_company():
                    break
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
            plan = make_plan(
                self.strategy, encoded.lengths, **self.plan_options, allow_packing=self.allow_packing,
                cost_model=self.cost_model if self.strategy == "auto" else None, memo=self.memo,
            )
            have = self._compiled_keys()
            compiled_now = sum(1 for s in shapes_of(plan) if s.model_key not in have)
            if compiled_now:
                self.log(f"serve: warning: {plan.strategy} used {compiled_now} shape(s) outside its compiled set; compiling under traffic")
            outcome = self.engine.run(plan, encoded, warmup=0, repeats=1, concurrent=True, hidden=False)
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
