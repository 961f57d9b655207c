"""One engine that runs any plan on OpenVINO, the same way for every strategy.

- Each static shape a plan needs is compiled once (a clone of the dynamic model, reshaped) and
  kept; the dynamic model is compiled once too. ``CACHE_DIR`` keeps compiled blobs across runs.
- Infer requests are per thread: ``CompiledModel.__call__`` reuses one cached request, which is
  not safe across threads, so the engine never uses it.
- Inputs are scattered into padded tensors from the plan; outputs are gathered back into
  request order with the padding trimmed.
- Timing: warm-up first, then repeats; per call and per plan, in milliseconds.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .model import Encoded, LoadedModel, default_cache_dir
from .plan import Call, Plan

PRECISIONS = ("auto", "f32", "bf16")
ProgressFn = Callable[[float, str], None]


class EngineError(ValueError):
    """A plan this engine cannot run (e.g. packing on a model without a packed variant)."""


def rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux), for the memory a compiled model costs."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


def blob_budget_mb() -> int:
    """Disk budget of the compiled-blob cache: ``$SHAPEDEMO_BLOB_CACHE_MB`` (0 turns it off).

    A blob holds the model's weights (about 90 MB per compiled shape of MiniLM), so the cache
    is pruned, oldest first, to this size whenever an engine starts.
    """
    try:
        return int(os.environ.get("SHAPEDEMO_BLOB_CACHE_MB", "2048"))
    except ValueError:
        return 2048


def prune_blobs(folder: Path, *, budget_mb: float) -> list[Path]:
    """Delete the least recently used ``*.blob`` files below ``folder`` until the rest fit
    ``budget_mb``; returns what was deleted."""
    if not folder.is_dir():
        return []
    blobs = sorted(folder.rglob("*.blob"), key=lambda p: p.stat().st_mtime, reverse=True)
    kept, removed = 0.0, []
    for blob in blobs:
        size = blob.stat().st_size / 2**20
        if kept + size <= budget_mb:
            kept += size
            continue
        try:
            blob.unlink()
            removed.append(blob)
        except OSError:
            pass
    return removed


def latency_stats(samples: Sequence[float]) -> dict[str, Any]:
    """Median, mean, min, max and p90 of latency samples in ms (benchmark_app's report).

    >>> latency_stats([1.0, 2.0, 3.0, 4.0])["median"]
    2.5
    """
    xs = sorted(samples)
    if not xs:
        return {"median": None, "mean": None, "min": None, "max": None, "p90": None, "samples": []}
    p90 = xs[min(len(xs) - 1, int(np.ceil(0.9 * len(xs))) - 1)]
    return {
        "median": statistics.median(xs),
        "mean": statistics.fmean(xs),
        "min": xs[0],
        "max": xs[-1],
        "p90": p90,
        "samples": list(samples),
    }


@dataclass
class Compiled:
    """One compiled model: a static shape (or ``None`` for the dynamic model)."""

    shape: tuple[int, int] | None
    packed: bool
    compiled: Any
    compile_s: float
    memory_mb: float | None


@dataclass
class Outcome:
    """What running a plan gives: per-sequence outputs in request order, and timings."""

    plan: Plan
    hidden: list[np.ndarray]
    embeddings: np.ndarray
    total_ms: list[float] = field(default_factory=list)
    call_ms: list[list[float]] = field(default_factory=list)


def _pool(hidden: np.ndarray) -> np.ndarray:
    mean = hidden.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


class Engine:
    """Runs plans for one loaded model on one device at one precision."""

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        device: str = "CPU",
        precision: str = "auto",
        cache_dir: Path | str | None = "default",
        performance_hint: str = "LATENCY",
        core: Any | None = None,
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise EngineError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.loaded = loaded
        self.device = device
        self.precision = precision
        self.core = core or ov.Core()
        if device not in self.core.available_devices:
            raise EngineError(f"device {device!r} is not available here (have: {', '.join(self.core.available_devices)})")
        if precision == "bf16" and "BF16" not in self.core.get_property(device, "OPTIMIZATION_CAPABILITIES"):
            raise EngineError(f"{device} has no bf16 support here; use f32 or auto")
        cache = default_cache_dir() if cache_dir == "default" else cache_dir
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        if cache:
            # one blob folder per precision setting: OpenVINO 2026.4's CPU plugin imported a
            # blob compiled at f32 into a bf16 session here and crashed in infer()
            budget = blob_budget_mb()
            if budget > 0:
                prune_blobs(Path(cache) / "blobs", budget_mb=budget)
                blobs = Path(cache) / "blobs" / precision
                blobs.mkdir(parents=True, exist_ok=True)
                self.config["CACHE_DIR"] = str(blobs)
        if precision != "auto":
            self.config["INFERENCE_PRECISION_HINT"] = precision
        self._compiled: dict[tuple[bool, tuple[int, int] | None], Compiled] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    # ---------------------------------------------------------------- compiling
    @property
    def inference_precision(self) -> str:
        """The precision the device actually runs at (bf16 is the default on AMX/AVX512-BF16 CPUs)."""
        if self.precision != "auto":
            return self.precision
        hint = self.core.get_property(self.device, "INFERENCE_PRECISION_HINT")
        return hint.to_string() if hasattr(hint, "to_string") else str(hint)

    def compiled_entries(self) -> list[Compiled]:
        return list(self._compiled.values())

    def compile(self, shape: tuple[int, int] | None = None, *, packed: bool = False) -> Compiled:
        """Compile the model for a static ``(batch, seq)``, or the dynamic model for ``None``.

        Reshaping changes a model in place, so a clone is reshaped; each shape compiles once.
        """
        key = (packed, shape)
        with self._lock:
            if key in self._compiled:
                return self._compiled[key]
            model = self.loaded.packed if packed else self.loaded.model
            if model is None:
                raise EngineError(
                    f"{self.loaded.spec} cannot pack sequences: "
                    + (self.loaded.packed_unavailable or "it has no packed variant")
                )
            if shape is not None:
                model = model.clone()
                model.reshape({inp.get_any_name(): list(shape) for inp in model.inputs})
            before = rss_mb()
            start = time.perf_counter()
            compiled = self.core.compile_model(model, self.device, self.config)
            seconds = time.perf_counter() - start
            after = rss_mb()
            memory = None if before is None or after is None else max(0.0, after - before)
            entry = Compiled(shape, packed, compiled, seconds, memory)
            self._compiled[key] = entry
            return entry

    def shapes_needed(self, plan: Plan) -> list[tuple[bool, tuple[int, int] | None]]:
        if plan.dynamic:
            return [(plan.packed, None)]
        return [(plan.packed, s) for s in plan.compiled_shapes]

    def prepare(self, plan: Plan, *, progress: ProgressFn | None = None) -> tuple[float, float | None]:
        """Compile everything ``plan`` needs; returns (compile seconds, memory MiB) of the
        models it compiled now (0 for shapes already compiled)."""
        needed = self.shapes_needed(plan)
        total_s, total_mb = 0.0, 0.0
        for i, (packed, shape) in enumerate(needed):
            label = "dynamic model" if shape is None else f"{shape[0]} x {shape[1]}"
            if progress:
                progress(i / max(1, len(needed)), f"{plan.strategy}: compiling {label}")
            if (packed, shape) in self._compiled:
                continue
            entry = self.compile(shape, packed=packed)
            total_s += entry.compile_s
            total_mb += entry.memory_mb or 0.0
        return total_s, total_mb

    def plan_costs(self, plan: Plan) -> tuple[float, float | None]:
        """Compile seconds and memory (MiB) of every compiled model ``plan`` uses."""
        entries = [self._compiled[k] for k in self.shapes_needed(plan) if k in self._compiled]
        mem = [e.memory_mb for e in entries]
        return sum(e.compile_s for e in entries), (None if any(m is None for m in mem) else sum(mem))  # type: ignore[misc]

    def measure_shape(self, shape: tuple[int, int], *, repeats: int = 5, warmup: int = 1) -> float:
        """Median latency (ms) of one call at a static ``shape`` (random token ids, full rows):
        an entry of the cost table that lets plans be chosen by measured latency."""
        entry = self.compile(shape)
        request = self._request(entry)
        b, s = shape
        rng = np.random.default_rng(b * 1000 + s)
        feed = {
            "input_ids": rng.integers(1000, 2000, size=(b, s), dtype=np.int64),
            "attention_mask": np.ones((b, s), np.int64),
            "token_type_ids": np.zeros((b, s), np.int64),
        }
        for _ in range(warmup):
            request.infer(feed)
        samples = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            request.infer(feed)
            samples.append((time.perf_counter() - t0) * 1e3)
        return float(statistics.median(samples))

    # ---------------------------------------------------------------- inputs and outputs
    def call_inputs(self, call: Call, encoded: Encoded, *, masked: bool = True, packed: bool = False) -> dict[str, np.ndarray]:
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

    def _request(self, compiled: Compiled) -> Any:
        requests = getattr(self._local, "requests", None)
        if requests is None:
            requests = self._local.requests = {}
        key = id(compiled.compiled)
        if key not in requests:
            requests[key] = compiled.compiled.create_infer_request()
        return requests[key]

    def _entry(self, plan: Plan, call: Call) -> Compiled:
        return self.compile(None if plan.dynamic else call.shape, packed=plan.packed)

    def _gather(
        self, plan: Plan, outputs: list[dict[str, np.ndarray]]
    ) -> tuple[list[np.ndarray], np.ndarray]:
        n = len(plan.lengths)
        hidden: list[np.ndarray | None] = [None] * n
        pooled: list[np.ndarray | None] = [None] * n
        for call, out in zip(plan.calls, outputs):
            states = out["last_hidden_state"]
            graph_pooled = out.get("sentence_embedding") if plan.masked and not plan.packed else None
            for r, row in enumerate(call.rows):
                for seg in row:
                    h = np.array(states[r, seg.offset : seg.offset + seg.length], dtype=np.float32)
                    hidden[seg.seq] = h
                    pooled[seg.seq] = (
                        np.array(graph_pooled[r], dtype=np.float32) if graph_pooled is not None else _pool(h)
                    )
        return hidden, np.stack(pooled) if n else np.zeros((0, 0), np.float32)  # type: ignore[arg-type]

    # ---------------------------------------------------------------- running
    def _run_once(self, entries: list[Compiled], feeds: list[dict[str, np.ndarray]], *, keep: bool, concurrent: bool) -> tuple[float, list[float], list[dict[str, np.ndarray]]]:
        """One timed pass over a plan's calls; ``entries[i]`` is the compiled model of call i."""
        if concurrent and len(entries) > 1:
            return self._run_concurrent(entries, feeds, keep=keep)
        requests = [self._request(entry) for entry in entries]
        call_ms: list[float] = []
        outputs: list[dict[str, np.ndarray]] = []
        start = time.perf_counter()
        for request, feed in zip(requests, feeds):
            t0 = time.perf_counter()
            request.infer(feed)
            call_ms.append((time.perf_counter() - t0) * 1e3)
            if keep:
                outputs.append({o.get_any_name(): request.get_tensor(o).data.copy() for o in request.model_outputs})
        total = (time.perf_counter() - start) * 1e3
        return total, call_ms, outputs

    def _run_concurrent(self, entries: list[Compiled], feeds: list[dict[str, np.ndarray]], *, keep: bool) -> tuple[float, list[float], list[dict[str, np.ndarray]]]:
        """All calls in flight at once through one AsyncInferQueue per compiled model."""
        import openvino as ov

        queues: dict[int, Any] = getattr(self._local, "queues", None) or {}
        self._local.queues = queues
        results: list[dict[str, np.ndarray]] = [{} for _ in entries]
        call_ms = [0.0] * len(entries)
        starts = [0.0] * len(entries)

        def done(request: Any, index: int) -> None:
            call_ms[index] = (time.perf_counter() - starts[index]) * 1e3
            if keep:
                results[index] = {o.get_any_name(): request.get_tensor(o).data.copy() for o in request.model_outputs}

        used: dict[int, Any] = {}
        for entry in entries:
            key = id(entry.compiled)
            if key not in queues:
                jobs = max(2, int(entry.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
                queues[key] = ov.AsyncInferQueue(entry.compiled, jobs)
            used[key] = queues[key]
        for queue in used.values():  # a callback may only be set while no job is in flight
            queue.wait_all()
            queue.set_callback(done)
        start = time.perf_counter()
        for i, (entry, feed) in enumerate(zip(entries, feeds)):
            starts[i] = time.perf_counter()
            used[id(entry.compiled)].start_async(feed, i)
        for queue in used.values():
            queue.wait_all()
        total = (time.perf_counter() - start) * 1e3
        return total, call_ms, results

    def run(
        self,
        plan: Plan,
        encoded: Encoded,
        *,
        warmup: int = 1,
        repeats: int = 1,
        concurrent: bool = False,
        progress: ProgressFn | None = None,
    ) -> Outcome:
        """Run ``plan`` on ``encoded`` (lengths must match the plan): warm-up runs, then
        ``repeats`` timed runs; outputs from the last run, in request order, padding trimmed."""
        if list(plan.lengths) != encoded.lengths:
            raise EngineError("the plan was made for other sequence lengths than the tokens given")
        self.prepare(plan, progress=progress)  # raises EngineError where packing is unavailable
        entries = [self._entry(plan, call) for call in plan.calls]
        feeds = [self.call_inputs(c, encoded, masked=plan.masked, packed=plan.packed) for c in plan.calls]
        for i in range(warmup):
            if progress:
                progress(0.0, f"{plan.strategy}: warming up")
            self._run_once(entries, feeds, keep=False, concurrent=concurrent)
        outcome = Outcome(plan, [], np.zeros((0, 0), np.float32))
        outputs: list[dict[str, np.ndarray]] = []
        for i in range(max(1, repeats)):
            if progress:
                progress(i / max(1, repeats), f"{plan.strategy}: run {i + 1}/{repeats}")
            total, per_call, outs = self._run_once(entries, feeds, keep=(i == max(1, repeats) - 1), concurrent=concurrent)
            outcome.total_ms.append(total)
            outcome.call_ms.append(per_call)
            if outs:
                outputs = outs
        outcome.hidden, outcome.embeddings = self._gather(plan, outputs)
        return outcome

