"""The timing harness: a plan made ready to run again and again, each pass timed in parts.

Host work (scatter the token ids into padded tensors, gather the outputs back, padding trimmed)
is timed apart from the device calls; outputs are copied after the device timer stops. Every
strategy, native dynamic included, is measured by this code.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from shapedemo.model import Encoded, Pooling
from shapedemo.planning.plan import Call, Plan
from shapedemo.runtime.compiled import Compiled, ModelKey, ProgressFn, infer
from shapedemo.runtime.errors import EngineError

DEFAULT_JOBS = 2


class Compiler(Protocol):
    """What the harness needs of an engine: a plan's compiled models, pinned, and its pooling."""

    loaded: Any

    def keys_needed(self, plan: Plan) -> list[ModelKey]: ...

    def compile_plan(self, plan: Plan, *, progress: ProgressFn | None, pin: bool) -> tuple[list[Compiled], list[Compiled]]: ...

    def unpin(self, entry: Compiled) -> None: ...


@dataclass
class Outcome:
    """What running a plan gives: per-sequence outputs in request order, and timings (ms, one
    entry per timed pass). ``total_ms`` is the device time (the calls); ``host_ms`` the scatter
    and gather around them (tokenizing and planning are added by ``compare``)."""

    plan: Plan
    hidden: list[np.ndarray]
    embeddings: np.ndarray
    total_ms: list[float] = field(default_factory=list)
    call_ms: list[list[float]] = field(default_factory=list)
    call_starts: list[list[float]] = field(default_factory=list)
    """Per timed pass, when each call started (``time.perf_counter`` seconds): calls of one
    pass start at different times (in turn, or as a request slot frees up)."""
    scatter_ms: list[float] = field(default_factory=list)
    gather_ms: list[float] = field(default_factory=list)

    @property
    def device_ms(self) -> list[float]:
        return self.total_ms

    @property
    def host_ms(self) -> list[float]:
        return [s + g for s, g in zip(self.scatter_ms, self.gather_ms)]


@dataclass
class Pass:
    """The timings of one pass over a plan's calls, in ms."""

    scatter_ms: float
    device_ms: float
    gather_ms: float
    call_ms: list[float]
    call_starts: list[float] = field(default_factory=list)
    """When each call started (``time.perf_counter`` seconds)."""


def call_inputs(call: Call, encoded: Encoded, *, masked: bool = True, packed: bool = False) -> dict[str, np.ndarray]:
    """Scatter the sequences of ``call`` into padded ``[batch, seq]`` tensors."""
    b, s = call.shape
    ids = np.zeros((b, s), np.int64)
    types = np.zeros((b, s), np.int64)
    if packed:
        positions = np.zeros((b, s), np.int64)
        segments = np.zeros((b, s), np.int64)
        for r, row in enumerate(call.rows):
            for k, seg in enumerate(row, start=1):
                sl = slice(seg.offset, seg.offset + seg.length)
                ids[r, sl] = encoded.input_ids[seg.seq]
                types[r, sl] = encoded.token_type_ids[seg.seq]
                positions[r, sl] = np.arange(seg.length)
                segments[r, sl] = k
        return {"input_ids": ids, "token_type_ids": types, "position_ids": positions, "segment_ids": segments}
    mask = np.ones((b, s), np.int64) if not masked else np.zeros((b, s), np.int64)
    for r, row in enumerate(call.rows):
        for seg in row:
            sl = slice(seg.offset, seg.offset + seg.length)
            ids[r, sl] = encoded.input_ids[seg.seq]
            types[r, sl] = encoded.token_type_ids[seg.seq]
            if masked:
                mask[r, sl] = 1
        if masked and not row:
            mask[r, 0] = 1  # a padding row attends to one pad token: no empty softmax, no NaN
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def gather_outputs(
    plan: Plan, outputs: list[dict[str, np.ndarray]], *, pooling: Pooling, hidden: bool = True
) -> tuple[list[np.ndarray], np.ndarray]:
    """Per-sequence hidden states (padding trimmed; none without ``hidden``) and pooled
    embeddings, in request order. ``pooling`` (the model's, as sentence-transformers defines
    it) is the graph's own where it can be used (``sentence_embedding`` of masked plain calls;
    ``segment_sums`` of a packed row's first ``SEGMENT_SUMS`` sequences, finished by
    ``Pooling.from_sums``); every other sequence is pooled on the host, the plan's together in
    one pass (``Pooling.pool_many``)."""
    n = len(plan.lengths)
    if len(outputs) != len(plan.calls):
        raise EngineError(f"{len(outputs)} outputs for {len(plan.calls)} calls")
    states_of: list[np.ndarray | None] = [None] * n  # views of the outputs (no copy per sequence)
    placed = [False] * n
    pooled: list[np.ndarray | None] = [None] * n
    to_pool: list[int] = []  # sequences pooled on the host
    summed: list[tuple[list[int], np.ndarray]] = []  # (sequences, their sums of states from the device)
    for call, out in zip(plan.calls, outputs):
        states = out["last_hidden_state"]
        graph_pooled = out.get("sentence_embedding") if plan.masked and not plan.packed else None
        sums = out.get("segment_sums") if plan.packed and pooling.mode == "mean" else None
        where: tuple[list[int], list[int], list[int]] = ([], [], [])  # sequences, rows, segments (of sums)
        for r, row in enumerate(call.rows):
            for k, seg in enumerate(row):
                placed[seg.seq] = True
                on_device = graph_pooled is not None or (sums is not None and k < sums.shape[1])  # segment k + 1
                if hidden or not on_device:
                    states_of[seg.seq] = np.asarray(states[r, seg.offset : seg.offset + seg.length], dtype=np.float32)
                if on_device:
                    where[0].append(seg.seq)
                    where[1].append(r)
                    where[2].append(k)
                else:
                    to_pool.append(seg.seq)
        if where[0] and graph_pooled is not None:
            for i, v in zip(where[0], np.asarray(graph_pooled[where[1]], dtype=np.float32)):  # one copy per call
                pooled[i] = v
        elif where[0]:
            summed.append((where[0], sums[where[1], where[2]]))  # type: ignore[index]
    if not all(placed):
        raise EngineError(f"the plan placed no output for sequence {placed.index(False)}")
    if summed:
        seqs = [i for group, _ in summed for i in group]
        finished = pooling.from_sums(np.concatenate([block for _, block in summed]), np.array([plan.lengths[i] for i in seqs]))
        for i, v in zip(seqs, finished):
            pooled[i] = v
    if to_pool:
        for i, v in zip(to_pool, pooling.pool_many([states_of[i] for i in to_pool])):  # type: ignore[misc]
            pooled[i] = v
    kept = states_of if hidden else []
    return kept, np.stack(pooled) if n else np.zeros((0, 0), np.float32)  # type: ignore[arg-type, return-value]


class PlanRunner:
    """One plan made ready to run again and again: compiled models pinned, requests held.
    ``models`` are the compiled models it runs on (``fresh``: those compiled for it).

    Each :meth:`run_once` scatters the inputs (host), runs the calls (device), copies the outputs
    and gathers them back (host). One after another, each compiled model's request serves its
    calls in turn and the device time is the sum of the calls (each output copied between, off
    the clock). With ``concurrent``, every call has its own request, at most ``jobs`` are in
    flight across all the plan's compiled models (the same bound for every plan), the device
    time runs from the first start to the last completion and outputs are copied after it. A
    concurrent call's time runs from its start (an idle request, once the bound admits it, so
    ``start_async`` never waits) to its completion callback; with more requests in flight than
    the device has streams it includes the wait inside the device.

    ``hidden=False`` (sentence embeddings only): an output is copied only where a later call of
    the plan runs on the same request and would overwrite it; the others are pooled straight
    from the request's output tensor.
    """

    def __init__(self, engine: Compiler, plan: Plan, encoded: Encoded, *, concurrent: bool, jobs: int, progress: ProgressFn | None, hidden: bool = True) -> None:
        if list(plan.lengths) != encoded.lengths:
            raise EngineError("the plan was made for other sequence lengths than the tokens given")
        if jobs < 1:
            raise EngineError(f"jobs {jobs}: at least 1 request in flight")
        self.engine, self.plan, self.encoded = engine, plan, encoded
        self.concurrent = concurrent and len(plan.calls) > 1
        self.jobs = jobs
        self.models, self.fresh = engine.compile_plan(plan, progress=progress, pin=True)
        self._pinned = list(self.models)
        by_key = {e.key: e for e in self.models}
        keys = engine.keys_needed(plan)
        self.call_entries = [by_key[keys[0]] if plan.dynamic else by_key[(plan.packed, c.shape, None)] for c in plan.calls]
        self._taken: list[tuple[Compiled, Any]] = []
        if self.concurrent:  # one request per call: outputs stay put until copied after the timer
            self.requests = [self._take(e) for e in self.call_entries]
            for i, request in enumerate(self.requests):
                request.set_callback(self._done, i)
        else:  # one request per compiled model
            own = {id(e): self._take(e) for e in self.models}
            self.requests = [own[id(e)] for e in self.call_entries]
        self.hidden = hidden
        # call i's output must be copied if it is kept (hidden) or a later call reuses its request
        later = [any(r is q for q in self.requests[i + 1 :]) for i, r in enumerate(self.requests)]
        self._copies = [hidden or (not self.concurrent and reused) for reused in later]
        self.outcome_ = Outcome(plan, [], np.zeros((0, 0), np.float32))
        self._ends = [0.0] * len(plan.calls)
        self._slots = threading.Semaphore(jobs)
        self._left = self._in_flight = 0
        self.peak_in_flight = 1 if plan.calls else 0  # the most requests ever in flight at once
        self._left_lock = threading.Lock()
        self._finished = threading.Event()

    def _take(self, entry: Compiled) -> Any:
        assert entry.pool is not None
        request = entry.pool.acquire()
        self._taken.append((entry, request))
        return request

    def _done(self, index: int) -> None:
        self._ends[index] = time.perf_counter()
        with self._left_lock:
            self._in_flight -= 1
            self._left -= 1
            if self._left == 0:
                self._finished.set()
        self._slots.release()

    @staticmethod
    def _copy(request: Any, copy: bool = True) -> dict[str, np.ndarray]:
        """The request's outputs by name: copies, or (``copy=False``) views of its own tensors,
        valid until its next call."""
        return {o.get_any_name(): request.get_tensor(o).data.copy() if copy else request.get_tensor(o).data for o in request.model_outputs}

    def _device_pass(self, feeds: list[dict[str, np.ndarray]]) -> tuple[float, list[float], list[float], list[dict[str, np.ndarray]], float]:
        """Run the calls; returns (device ms, per-call ms, per-call starts, outputs, ms spent
        copying them)."""
        if not self.concurrent:  # a model's one request serves its calls in turn: copy each between
            call_ms, starts, outputs, copy_ms = [], [], [], 0.0
            for request, feed, copy in zip(self.requests, feeds, self._copies):
                t0 = time.perf_counter()
                starts.append(t0)
                infer(request, feed)
                t1 = time.perf_counter()
                outputs.append(self._copy(request, copy))
                copy_ms += (time.perf_counter() - t1) * 1e3
                call_ms.append((t1 - t0) * 1e3)
            return sum(call_ms), call_ms, starts, outputs, copy_ms
        n = len(feeds)
        starts = [0.0] * n
        self._left = n
        self._finished.clear()
        start = time.perf_counter()
        for i, (request, feed) in enumerate(zip(self.requests, feeds)):
            self._slots.acquire()
            with self._left_lock:
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            starts[i] = time.perf_counter()
            request.start_async(feed, i, share_inputs=True)  # feeds live until the pass ends
        self._finished.wait()
        total = (time.perf_counter() - start) * 1e3
        for request in self.requests:
            request.wait()  # raises where a call failed
        t1 = time.perf_counter()
        outputs = [self._copy(r, c) for r, c in zip(self.requests, self._copies)]
        return total, [(e - s) * 1e3 for s, e in zip(starts, self._ends)], starts, outputs, (time.perf_counter() - t1) * 1e3

    def run_once(self, *, record: bool = False) -> Pass:
        """One pass: scatter, device calls, copy and gather. ``record`` adds its timings to the
        outcome; the outputs of every pass replace the last ones."""
        plan = self.plan
        t0 = time.perf_counter()
        feeds = [call_inputs(c, self.encoded, masked=plan.masked, packed=plan.packed) for c in plan.calls]
        scatter = (time.perf_counter() - t0) * 1e3
        device, call_ms, starts, outputs, copy_ms = self._device_pass(feeds)
        t1 = time.perf_counter()
        self.outcome_.hidden, self.outcome_.embeddings = gather_outputs(plan, outputs, pooling=self.engine.loaded.pooling, hidden=self.hidden)
        gather = copy_ms + (time.perf_counter() - t1) * 1e3
        timing = Pass(scatter, device, gather, call_ms, starts)
        if record:
            self.outcome_.scatter_ms.append(scatter)
            self.outcome_.total_ms.append(device)
            self.outcome_.gather_ms.append(gather)
            self.outcome_.call_ms.append(call_ms)
            self.outcome_.call_starts.append(starts)
        return timing

    def outcome(self) -> Outcome:
        return self.outcome_

    def close(self) -> None:
        """Give the requests back to their pools and unpin the models (idempotent)."""
        taken, self._taken = self._taken, []
        for entry, request in taken:
            assert entry.pool is not None
            entry.pool.release(request)
        self.requests = []  # no reference left here to a request a released model must drop
        pinned, self._pinned = self._pinned, []
        for entry in pinned:
            self.engine.unpin(entry)

    def __enter__(self) -> "PlanRunner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

