"""The engine: compiles a loaded model's shapes on one device, keeps them, runs plans.

- Each compiled model (a static shape, the dynamic model, or the model with bounded dims) is
  compiled once and kept while it fits the memory budget (:mod:`.budget`, one for the whole
  process, shared by every engine); least recently used ones beyond it are released through
  :meth:`Engine.evict`, never one a running plan holds (pinned). ``CACHE_DIR`` keeps compiled
  blobs across runs (:mod:`.blobs`).
- Memory of a compiled model is *process memory added* (:mod:`.memory`): what compiling it and
  its first inference left allocated, after the plugin was loaded and the weights touched by a
  throw-away compile, so the number does not depend on what was compiled before.
- Devices (:mod:`.devices`): what a device compiles is data, known by its type or tried once.
- Running a plan goes through the timing harness (:mod:`.harness`).
"""

from __future__ import annotations

import statistics
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Mapping

from shapedemo.model import Encoded, LoadedModel, default_cache_dir, usable_cache_dir
from shapedemo.model.cache import cache_warning
from shapedemo.planning.plan import Plan
from shapedemo.runtime.blobs import blob_budget_mb, blob_folder, compile_cached, prune_blobs
from shapedemo.runtime.budget import CompiledBudget, compiled_budget_mb
from shapedemo.runtime.compiled import Compiled, ModelKey, ProgressFn, RequestPool, feed_for, infer
from shapedemo.runtime.devices import STATIC_ONLY_REASON, Capabilities, check_device, device_rules, parse_device
from shapedemo.runtime.errors import EngineError, ShapesUnsupported, one_line
from shapedemo.runtime.harness import DEFAULT_JOBS, Outcome, PlanRunner
from shapedemo.runtime.memory import trimmed_rss
from shapedemo.settings import PRECISIONS

class Engine:
    """Runs plans for one loaded model on one device at one precision.

    ``static_only`` refuses dynamic and bounded shapes as the strictest device would, on any
    device. ``compiled_budget`` bounds the process memory its compiled models hold: a
    :class:`CompiledBudget` to share (the session's, for every engine it makes), a number of MiB,
    or by default a budget of its own of ``SHAPEDEMO_COMPILED_MB`` (read once, here).
    ``ov_config``: OpenVINO properties passed through to ``compile_model`` (as optimum-intel's
    ``ov_config``), over the engine's own (``PERFORMANCE_HINT``, ``INFERENCE_PRECISION_HINT``).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        *,
        device: str = "CPU",
        precision: str = "auto",
        cache_dir: Path | str | None = "default",
        performance_hint: str = "LATENCY",
        core: Any | None = None,
        static_only: bool = False,
        compiled_budget: "float | CompiledBudget | None" = None,
        ov_config: Mapping[str, Any] | None = None,
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise EngineError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.loaded = loaded
        self.core = core or ov.Core()
        self.device = check_device(self.core, device)
        self.precision = precision
        self.static_only = static_only
        if isinstance(compiled_budget, CompiledBudget):
            self.budget = compiled_budget
        else:
            self.budget = CompiledBudget(compiled_budget_mb() if compiled_budget is None else compiled_budget)
        self.ov_config = {str(k): v for k, v in (ov_config or {}).items()}
        if precision == "bf16":
            for part in parse_device(self.device).named:
                try:
                    caps = self.core.get_property(part, "OPTIMIZATION_CAPABILITIES")
                except Exception:  # AUTO: asked of what it picks, at compile time
                    continue
                if "BF16" not in caps:
                    raise EngineError(f"{part} has no bf16 support here; use f32 or auto")
        self.cache_dir: Path | None = None if not cache_dir else Path(default_cache_dir() if cache_dir == "default" else cache_dir)
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        self.blob_dir: Path | None = None
        self.blob_budget_mb = blob_budget_mb()  # read once
        if self.cache_dir is not None and self.blob_budget_mb > 0:
            # one blob folder per device and precision: OpenVINO 2026.4's CPU plugin imported a
            # blob compiled at f32 into a bf16 session here and crashed in infer()
            prune_blobs(self.cache_dir / "blobs", budget_mb=self.blob_budget_mb)
            # unusable (a file in the way, read-only, full): one warning line, compiled without it
            self.blob_dir = usable_cache_dir(self.cache_dir / "blobs" / blob_folder(self.device, precision))
            if self.blob_dir is not None:
                self.config["CACHE_DIR"] = str(self.blob_dir)
        if precision != "auto":
            self.config["INFERENCE_PRECISION_HINT"] = precision
        self.config.update(self.ov_config)
        self._compiled: OrderedDict[ModelKey, Compiled] = OrderedDict()
        self._lock = self.budget.lock  # one lock per budget: eviction reaches into other engines
        self.budget.engines.add(self)
        self._primed: set[bool] = set()
        self._known: dict[str, tuple[bool, str | None]] = {}
        rules = device_rules(self.device)
        for kind, reason in rules.items():
            self._known[kind] = (False, reason)
        if static_only:
            self._known = {"dynamic": (False, STATIC_ONLY_REASON), "bounded": (False, STATIC_ONLY_REASON)}
        self._reference: Engine | None = None

    # ---------------------------------------------------------------- device
    @property
    def inference_precision(self) -> str:
        """The precision the device actually runs at (bf16 is the default on AMX/AVX512-BF16 CPUs)."""
        if self.precision != "auto":
            return self.precision
        for part in self._execution_devices():
            try:
                hint = self.core.get_property(part, "INFERENCE_PRECISION_HINT")
            except Exception:
                continue
            return hint.to_string() if hasattr(hint, "to_string") else str(hint)
        return "auto"

    def _execution_devices(self) -> list[str]:
        """The real devices behind ``device``: what a compiled model says it runs on, else the
        names in the string, else (bare AUTO) every available device."""
        for entry in list(self._compiled.values()):
            if entry.compiled is not None:
                try:
                    return [str(d) for d in entry.compiled.get_property("EXECUTION_DEVICES")]
                except Exception:
                    break
        name = parse_device(self.device)
        if name.listed:
            return list(name.parts)
        if name.virtual:
            return list(self.core.available_devices)
        return [self.device]

    def device_properties(self) -> dict[str, Any]:
        """The properties that shaped the numbers (precision, optimal number of requests,
        performance hint, execution devices), read from a compiled model where one exists."""
        props: dict[str, Any] = {"device": self.device, "static_only": self.static_only, "inference_precision": self.inference_precision}
        entry = next((e for e in reversed(self._compiled.values()) if e.compiled is not None), None)
        for name in ("PERFORMANCE_HINT", "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "EXECUTION_DEVICES", "INFERENCE_PRECISION_HINT", "NUM_STREAMS"):
            try:
                value = entry.compiled.get_property(name) if entry is not None else self.core.get_property(self.device, name)
            except Exception:
                continue
            if isinstance(value, (list, tuple)):
                value = [str(v) for v in value]
            elif not isinstance(value, (int, float, bool)):
                value = value.to_string() if hasattr(value, "to_string") else str(value)
            props[name] = value
        props["PERFORMANCE_HINT"] = str(props.get("PERFORMANCE_HINT", self.config["PERFORMANCE_HINT"])).replace("PerformanceMode.", "")
        try:
            props["FULL_DEVICE_NAME"] = str(self.core.get_property(self._execution_devices()[0], "FULL_DEVICE_NAME"))
        except Exception:
            pass
        return props

    @property
    def capabilities(self) -> Capabilities:
        """What this engine compiles beyond static shapes, as known now (``None``: not tried yet;
        :meth:`probe_capabilities` tries)."""
        dyn = self._known.get("dynamic", (None, None))
        bnd = self._known.get("bounded", (None, None))
        return Capabilities(dyn[0], bnd[0], dyn[1], bnd[1])

    def probe_capabilities(self) -> Capabilities:
        """Try once whatever is not known yet: compile the dynamic model, and the model bounded
        to ``[1..1, 1..max_length]``; the answers are kept."""
        for bounds in (None, (1, self.loaded.max_length)):
            kind = "dynamic" if bounds is None else "bounded"
            if kind not in self._known:
                try:
                    self.compile(None, bounds=bounds)
                except ShapesUnsupported:
                    pass
        return self.capabilities

    def supports(self, plan: Plan) -> tuple[bool, str | None]:
        """Whether ``plan`` runs here, and the device's reason where it does not (tries once)."""
        kind = self._kind(plan)
        if kind is None:
            return True, None
        if kind not in self._known:
            try:
                self.compile(None, packed=plan.packed, bounds=self._bounds(plan))
            except ShapesUnsupported:
                pass
        ok, reason = self._known.get(kind, (True, None))
        return ok, reason

    def reference_engine(self) -> "Engine":
        """The CPU engine at this precision for the fidelity reference: this engine where it is a
        CPU engine that compiles dynamic shapes, else one kept alongside it."""
        if self.device == "CPU" and not self.static_only and self._known.get("dynamic", (True, None))[0]:
            return self
        if self._reference is None:
            self._reference = Engine(
                self.loaded, device="CPU", precision=self.precision, cache_dir=self.cache_dir,
                performance_hint=self.config["PERFORMANCE_HINT"], core=self.core, compiled_budget=self.budget,
                ov_config=self.ov_config if parse_device(self.device).head == "CPU" else None,  # CPU properties only
            )
        return self._reference

    # ---------------------------------------------------------------- compiling
    @staticmethod
    def _bounds(plan: Plan) -> tuple[int, int] | None:
        bounds = plan.params.get("bounds") if plan.dynamic else None
        return None if bounds is None else (int(bounds[0]), int(bounds[1]))

    def _kind(self, plan: Plan) -> str | None:
        if not plan.dynamic:
            return None
        return "dynamic" if self._bounds(plan) is None else "bounded"

    def compiled_entries(self) -> list[Compiled]:
        """The compiled models held now, least recently used first."""
        return list(self._compiled.values())

    def compiled_memory_mb(self) -> float:
        """Process memory (RSS MiB) the compiled models held now added, as measured at compile;
        each counts at least 1 MiB against the budget (a measurement lost in noise still holds
        memory)."""
        return sum(max(e.memory_mb or 0.0, 1.0) for e in self._compiled.values())

    def _prime(self, packed: bool) -> None:
        """Load the plugin and touch the weights with a throw-away compile at a tiny shape, so
        the first measured compile does not pay for them (memory would depend on order)."""
        if packed in self._primed:
            return
        self._primed.add(packed)
        model = (self.loaded.packed if packed else self.loaded.model).clone()
        shape = (1, min(8, self.loaded.max_length))
        model.reshape({inp.get_any_name(): list(shape) for inp in model.inputs})
        config = {k: v for k, v in self.config.items() if k != "CACHE_DIR"}
        try:
            compiled = self.core.compile_model(model, self.device, config)
            infer(compiled.create_infer_request(), feed_for(compiled, shape))
        except Exception:  # the measured compile reports the device's error
            pass

    def compile(
        self,
        shape: tuple[int, int] | None = None,
        *,
        packed: bool = False,
        bounds: tuple[int, int] | None = None,
        probe: tuple[int, int] | None = None,
        pin: bool = False,
    ) -> Compiled:
        """Compile the model for a static ``(batch, seq)``, or the dynamic model for ``None``
        (with ``bounds=(B, S)``: dims ``[1..B, 1..S]``); each compiles once while it is kept.

        Reshaping changes a model in place, so a clone is reshaped. The first inference runs at
        once (at ``probe`` for the dynamic model, default ``(1, 128)``) so its memory is counted.
        ``pin`` holds the model against eviction until :meth:`unpin`.
        """
        key: ModelKey = (packed, shape, None if shape is not None else bounds)
        with self._lock:
            entry = self._compiled.get(key)
            if entry is not None:
                self._compiled.move_to_end(key)
                entry.used = self.budget.tick()
                entry.pins += int(pin)
                return entry
            model = self.loaded.packed if packed else self.loaded.model
            if model is None:
                raise EngineError(
                    f"{self.loaded.spec} cannot pack sequences: "
                    + (self.loaded.packed_unavailable or "it has no packed variant")
                )
            kind = None if shape is not None else ("dynamic" if bounds is None else "bounded")
            if kind is not None and self._known.get(kind, (True, None))[0] is False:
                raise ShapesUnsupported(self.device, kind, self._known[kind][1] or "refused")
            self._prime(packed)
            import openvino as ov

            if shape is not None:
                model = model.clone()
                model.reshape({inp.get_any_name(): list(shape) for inp in model.inputs})
            elif bounds is not None:
                model = model.clone()
                dims = ov.PartialShape([ov.Dimension(1, bounds[0]), ov.Dimension(1, bounds[1])])
                model.reshape({inp.get_any_name(): dims for inp in model.inputs})
            before = trimmed_rss()
            start = time.perf_counter()
            try:
                compiled, trouble = compile_cached(self.core, model, self.device, self.config)
            except Exception as exc:
                if kind is not None:
                    self._known[kind] = (False, one_line(exc))
                    raise ShapesUnsupported(self.device, kind, one_line(exc)) from None
                raise EngineError(f"{self.device} could not compile {shape[0]} x {shape[1]}: {one_line(exc)}") from None  # type: ignore[index]
            seconds = time.perf_counter() - start
            if trouble is not None:  # the blob cache failed this compile: this engine goes on without it
                cache_warning(f"the compiled-blob cache {self.blob_dir} failed ({trouble}); compiling without it")
                self.config.pop("CACHE_DIR", None)
                self.blob_dir = None
            if kind is not None:
                self._known[kind] = (True, None)
            try:
                from_cache = bool(compiled.get_property("LOADED_FROM_CACHE"))
            except Exception:
                from_cache = False
            pool = RequestPool(compiled)
            at = shape or probe or (1, min(128, bounds[1] if bounds else self.loaded.max_length))
            request = pool.acquire()
            t0 = time.perf_counter()
            infer(request, feed_for(compiled, at))
            first = time.perf_counter() - t0
            pool.release(request)
            after = trimmed_rss()
            memory = None if before is None or after is None else max(0.0, after - before)
            entry = Compiled(shape, packed, compiled, seconds, memory, bounds=key[2], from_cache=from_cache,
                             first_infer_s=first, device=self.device, pool=pool, pins=int(pin),
                             used=self.budget.tick())
            self._compiled[key] = entry
            self._enforce_budgets()
            return entry

    def unpin(self, entry: Compiled) -> None:
        """Give back a pin taken by ``compile(pin=True)``; the memory budget is enforced again
        (the blob folder is pruned after compiles only: walking it after every run cost
        milliseconds of host time per request)."""
        with self._lock:
            entry.pins = max(0, entry.pins - 1)
            self.budget.enforce()

    def _enforce_budgets(self) -> None:
        """Release least recently used unpinned compiled models beyond the memory budget (of this
        engine or another on the same budget), and prune the blob cache to its disk budget."""
        self.budget.enforce()
        if self.blob_dir is not None and self.cache_dir is not None:
            prune_blobs(self.cache_dir / "blobs", budget_mb=self.blob_budget_mb)

    def evict(self, entry: Compiled) -> None:
        """Release ``entry`` (the budget's way to free memory, under its lock): its requests are
        dropped and it is compiled again when next needed."""
        with self._lock:
            if self._compiled.get(entry.key) is entry:
                del self._compiled[entry.key]
            entry.evicted = True
            if entry.pool is not None:
                entry.pool.close()
            entry.compiled = None

    def release_all(self) -> None:
        """Release every compiled model no running plan holds."""
        with self._lock:
            for entry in list(self._compiled.values()):
                if not entry.pins:
                    self.evict(entry)

    def keys_needed(self, plan: Plan) -> list[ModelKey]:
        """The compiled models ``plan`` runs on."""
        if plan.dynamic:
            return [(plan.packed, None, self._bounds(plan))]
        return [(plan.packed, s, None) for s in plan.compiled_shapes]

    def shapes_needed(self, plan: Plan) -> list[tuple[bool, tuple[int, int] | None]]:
        return [(packed, shape) for packed, shape, _ in self.keys_needed(plan)]

    @staticmethod
    def _probe(plan: Plan) -> tuple[int, int] | None:
        """Where a dynamic plan's first inference runs: its largest call."""
        return max((c.shape for c in plan.calls), key=lambda s: s[0] * s[1], default=None)

    def prepare(self, plan: Plan, *, progress: ProgressFn | None = None) -> tuple[float, float | None]:
        """Compile everything ``plan`` needs, reporting each shape; returns (compile seconds,
        memory MiB) of the models it compiled now (0 for models already compiled)."""
        entries, fresh = self.compile_plan(plan, progress=progress, pin=False)
        return sum(e.compile_s for e in fresh), sum(e.memory_mb or 0.0 for e in fresh)

    def compile_plan(self, plan: Plan, *, progress: ProgressFn | None, pin: bool) -> tuple[list[Compiled], list[Compiled]]:
        """The compiled models ``plan`` runs on (compiled now where missing; ``pin``: held until
        :meth:`unpin`), and those of them compiled now."""
        keys = self.keys_needed(plan)
        entries, fresh = [], []
        try:
            for i, (packed, shape, bounds) in enumerate(keys):
                held = self._compiled.get((packed, shape, bounds))
                if progress:
                    label = held.label if held else Compiled(shape, packed, None, 0.0, None, bounds=bounds).label
                    progress(i / max(1, len(keys)), f"{plan.strategy}: {'compiled' if held else 'compiling'} {label} ({i + 1}/{len(keys)})")
                entry = self.compile(shape, packed=packed, bounds=bounds, probe=self._probe(plan), pin=pin)
                entries.append(entry)
                if entry is not held:
                    fresh.append(entry)
        except BaseException:
            for entry in entries if pin else []:
                self.unpin(entry)
            raise
        return entries, fresh

    def measure_shape(
        self,
        shape: tuple[int, int],
        *,
        packed: bool = False,
        repeats: int = 5,
        warmup: int = 1,
        cpu_time: bool = False,
        dynamic: bool = False,
    ) -> float:
        """Median latency (ms) of one call at a static ``shape`` (random token ids, full rows;
        ``packed``: on the packed model; ``dynamic``: a call of that shape on the dynamic model,
        each after an untimed one of half its length):
        an entry of the cost table that lets plans be chosen by measured latency.

        ``cpu_time`` (on the CPU): each call's figure is its process CPU time per inference
        thread where that is less than its wall time. Other processes' load stretches wall time
        (a 4 ms call took 130 ms at a load average of 31 on 2 cores) but not the CPU time this
        process spends. Only for a busy machine: on a quiet one a call that keeps some of its
        threads idle for part of its time (a 32 x 64 call at bf16: 49 ms of CPU per thread for
        85 ms of wall time) would look cheaper than it is."""
        entry = self.compile(None, probe=shape, pin=True) if dynamic else self.compile(shape, packed=packed, pin=True)
        try:
            threads = 0
            if cpu_time and self.device == "CPU":
                try:
                    threads = int(entry.compiled.get_property("INFERENCE_NUM_THREADS"))
                except Exception:  # noqa: BLE001 - no thread count: wall time only
                    threads = 0
            assert entry.pool is not None
            request = entry.pool.acquire()
            try:
                feed = feed_for(entry.compiled, shape, seed=shape[0] * 1000 + shape[1])
                # the dynamic model's calls each follow one of another length, as in traffic: at
                # bf16 on an AMX Xeon a 1 x 20 call takes 1.6 ms after one of its own shape and
                # 2.3 ms after another (f32: the same either way)
                other = feed_for(entry.compiled, (shape[0], max(1, shape[1] // 2))) if dynamic else None
                for _ in range(warmup):
                    if other is not None:
                        infer(request, other)
                    infer(request, feed)
                samples = []
                for _ in range(max(1, repeats)):
                    if other is not None:
                        infer(request, other)
                    wall0, cpu0 = time.perf_counter(), time.process_time()
                    infer(request, feed)
                    wall = (time.perf_counter() - wall0) * 1e3
                    cpu = (time.process_time() - cpu0) * 1e3 / threads if threads > 0 else wall
                    samples.append(min(wall, cpu))
            finally:
                entry.pool.release(request)
        finally:
            self.unpin(entry)
        return float(statistics.median(samples))

    # ---------------------------------------------------------------- inputs and outputs
    # ---------------------------------------------------------------- running
    def runner(
        self,
        plan: Plan,
        encoded: Encoded,
        *,
        concurrent: bool = False,
        jobs: int = DEFAULT_JOBS,
        progress: ProgressFn | None = None,
        hidden: bool = True,
    ) -> "PlanRunner":
        """A prepared runner for ``plan``: its models compiled and pinned, its requests taken.
        Close it (or use ``with``) to give them back. ``hidden=False``: sentence embeddings
        only (no per-token states kept, so no output is copied that no later call overwrites)."""
        return PlanRunner(self, plan, encoded, concurrent=concurrent, jobs=jobs, progress=progress, hidden=hidden)

    def run(
        self,
        plan: Plan,
        encoded: Encoded,
        *,
        warmup: int = 1,
        repeats: int = 1,
        concurrent: bool = False,
        jobs: int = DEFAULT_JOBS,
        progress: ProgressFn | None = None,
        hidden: bool = True,
    ) -> Outcome:
        """Run ``plan`` on ``encoded`` (lengths must match the plan): warm-up runs, then
        ``repeats`` timed runs; outputs from the last run, in request order, padding trimmed.
        ``hidden=False``: the sentence embeddings only (``Outcome.hidden`` empty), gathered
        from the requests' own output tensors wherever no later call of the plan overwrites them."""
        with self.runner(plan, encoded, concurrent=concurrent, jobs=jobs, progress=progress, hidden=hidden) as runner:
            for _ in range(warmup):
                if progress:
                    progress(0.0, f"{plan.strategy}: warming up")
                runner.run_once()
            for i in range(max(1, repeats)):
                if progress:
                    progress(i / max(1, repeats), f"{plan.strategy}: run {i + 1}/{repeats}")
                runner.run_once(record=True)
            return runner.outcome()

