"""One engine that runs any plan on OpenVINO, the same way for every strategy.

- Each compiled model (a static shape, the dynamic model, or the model with bounded dims) is
  compiled once and kept while it fits the memory budget (``SHAPEDEMO_COMPILED_MB``, one for the
  whole process, shared by every engine); least recently used ones beyond it are released, of
  whichever engine, never one a running plan holds (pinned).
  ``CACHE_DIR`` keeps compiled blobs across runs, one folder per device and precision, pruned to
  ``SHAPEDEMO_BLOB_CACHE_MB`` after every compile.
- Every compiled model owns one pool of infer requests: threads take a request from it and give
  it back, so no two threads share one, and a released model's requests go with it.
- Memory of a compiled model is *process memory added* (resident set, RSS): what compiling it and
  its first inference left allocated, after the plugin was loaded and the weights touched by a
  throw-away compile, so the number does not depend on what was compiled before. It is not
  device memory (a GPU's or an NPU's own memory is not in it).
- Devices: any of ``Core().available_devices``, ``AUTO``, ``AUTO:...``, ``HETERO:...``,
  ``MULTI:...``. What a device compiles is data (:class:`Capabilities`): known by its type
  (the NPU plugin takes static shapes only) or found by trying once.
- Timing: a :class:`PlanRunner` holds a plan's compiled models and requests; each pass times the
  host work (scatter into padded tensors, gather back) apart from the device calls. Outputs are
  copied after the device timer stops.
"""

from __future__ import annotations

import ctypes
import gc
import itertools
import os
import re
import statistics
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from shapedemo.model import Encoded, LoadedModel, default_cache_dir, ensure_cache_dir
from shapedemo.planning.plan import Call, Plan

PRECISIONS = ("auto", "f32", "bf16")
ProgressFn = Callable[[float, str], None]
ModelKey = tuple[bool, "tuple[int, int] | None", "tuple[int, int] | None"]
"""``(packed, static shape or None, bounds or None)``: what one compiled model is."""

DEFAULT_JOBS = 2
MEMORY_MEANING = "process memory added (RSS, MiB) by compiling a model and its first inference; not device memory"


class EngineError(ValueError):
    """A plan this engine cannot run (e.g. packing on a model without a packed variant)."""


class ShapesUnsupported(EngineError):
    """The device (or static-only mode) refuses dynamic or bounded shapes; ``reason`` is the
    device's own error in one line."""

    def __init__(self, device: str, kind: str, reason: str) -> None:
        super().__init__(f"{device} cannot compile {kind} shapes: {reason}")
        self.device, self.kind, self.reason = device, kind, reason


def one_line(exc: BaseException | str) -> str:
    """The line of an OpenVINO error that says why (its messages start with source locations).

    >>> one_line("Exception from src/core.cpp:117:\\nException from src/plugin.cpp:54:\\nNo GPU found\\n")
    'No GPU found'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith("Exception from ")]
    text = (useful or lines or [type(exc).__name__])[-1]
    return re.sub(r"^Exception from \S+:\d+:\s*", "", text)


# ------------------------------------------------------------------------------ budgets
def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, str(default)))
    except ValueError:
        return default


def blob_budget_mb() -> int:
    """Disk budget of the compiled-blob cache: ``$SHAPEDEMO_BLOB_CACHE_MB`` (0 turns it off).

    A blob holds the model's weights (about 90 MB per compiled shape of MiniLM), so the cache
    is pruned, oldest first, to this size when an engine starts and after every compile.
    """
    return _env_int("SHAPEDEMO_BLOB_CACHE_MB", 2048)


def compiled_budget_mb() -> int:
    """Memory budget of an engine's compiled models: ``$SHAPEDEMO_COMPILED_MB`` (default 4096
    MiB, a quarter of a 16 GB Space: about 60 compiled shapes of MiniLM, 3 of BERT-large).

    Beyond it the least recently used compiled models not held by a running plan are released.
    """
    return _env_int("SHAPEDEMO_COMPILED_MB", 4096)


class CompiledBudget:
    """The memory budget that a group of engines' compiled models share, least recently used
    first released beyond it. Every engine made without its own ``compiled_budget`` joins
    :data:`SHARED_BUDGET`, the process's one (``SHAPEDEMO_COMPILED_MB``, read when enforced), so
    engines for other precisions, devices or static-only mode, and their CPU reference engines,
    do not each get a budget of their own. Engines of one budget share its lock.

    >>> CompiledBudget(300).mb, SHARED_BUDGET.mb == compiled_budget_mb()
    (300, True)
    """

    def __init__(self, mb: float | None = None) -> None:
        self._mb = mb
        self.lock = threading.RLock()
        self.engines: "weakref.WeakSet[Engine]" = weakref.WeakSet()
        self._clock = itertools.count(1)

    @property
    def mb(self) -> float:
        return compiled_budget_mb() if self._mb is None else self._mb

    def tick(self) -> int:
        """A use stamp: the least recently used compiled model has the smallest."""
        return next(self._clock)

    def held_mb(self) -> float:
        """What the compiled models of every engine on this budget count against it."""
        with self.lock:
            return sum(engine.compiled_memory_mb() for engine in list(self.engines))

    def enforce(self) -> None:
        """Release least recently used unpinned compiled models, of any engine on this budget,
        until the rest fit."""
        with self.lock:
            held = [(e.used, engine, key, e) for engine in list(self.engines) for key, e in engine._compiled.items()]
            total = sum(max(e.memory_mb or 0.0, 1.0) for *_, e in held)
            budget = self.mb
            for _, engine, key, entry in sorted(held, key=lambda h: h[0]):
                if total <= budget:
                    break
                if entry.pins:
                    continue
                total -= max(entry.memory_mb or 0.0, 1.0)
                engine._evict(key)


SHARED_BUDGET = CompiledBudget()
"""The process's compiled-model budget, shared by every engine made without one of its own."""


def blob_folder(device: str, precision: str) -> str:
    """The blob folder of a device and precision setting (the CPU's keeps its older name).

    >>> blob_folder("CPU", "f32"), blob_folder("GPU.0", "auto"), blob_folder("AUTO:GPU,CPU", "bf16")
    ('f32', 'auto-GPU.0', 'bf16-AUTO_GPU_CPU')
    """
    return precision if device == "CPU" else f"{precision}-{re.sub(r'[^A-Za-z0-9.]+', '_', device)}"


def prune_blobs(folder: Path, *, budget_mb: float) -> list[Path]:
    """Delete the least recently used ``*.blob`` files below ``folder`` until the rest fit
    ``budget_mb``; returns what was deleted."""
    if not folder.is_dir():
        return []
    blobs = []
    for blob in folder.rglob("*.blob"):
        try:
            blobs.append((blob.stat().st_mtime, blob.stat().st_size, blob))
        except OSError:  # pruned by another engine meanwhile
            continue
    kept, removed = 0.0, []
    for _, size, blob in sorted(blobs, key=lambda b: b[0], reverse=True):
        if kept + size / 2**20 <= budget_mb:
            kept += size / 2**20
            continue
        try:
            blob.unlink()
            removed.append(blob)
        except OSError:
            pass
    return removed


# ------------------------------------------------------------------------------ memory
def rss_mb() -> float | None:
    """Resident memory of this process in MiB (Linux), for the memory a compiled model costs."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


try:
    _malloc_trim = ctypes.CDLL("libc.so.6").malloc_trim
except (OSError, AttributeError):  # not glibc
    _malloc_trim = None


def _trimmed_rss() -> float | None:
    """RSS after collecting garbage (a released model freed now, not in the middle of the next
    measurement) and handing freed heap back to the OS, so memory freed by an earlier compile is
    not reused (and hidden) by the next one."""
    gc.collect()
    if _malloc_trim is not None:
        _malloc_trim(0)
    return rss_mb()


# ------------------------------------------------------------------------------ statistics
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


# ------------------------------------------------------------------------------ devices
def _device_parts(device: str) -> list[str]:
    """The devices a device string names (``MULTI:CPU(4),GPU`` -> ``['CPU', 'GPU']``).

    >>> _device_parts("HETERO:GPU.1,CPU"), _device_parts("AUTO:-CPU"), _device_parts("CPU")
    (['GPU.1', 'CPU'], ['CPU'], ['CPU'])
    """
    _, _, rest = device.partition(":") if ":" in device else ("", "", device)
    return [re.sub(r"\(.*\)$", "", p.strip()).lstrip("-") for p in rest.split(",") if p.strip()]


def _present(name: str, available: Sequence[str]) -> bool:
    return name in available or any(a.startswith(name + ".") for a in available)


VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")


def check_device(core: Any, device: str) -> str:
    """``device`` if OpenVINO here can compile for it (a listed device, or AUTO / HETERO: /
    MULTI: over listed devices), else an :class:`EngineError` in one line."""
    available = list(core.available_devices)
    name = (device or "").strip()
    head = name.split(":", 1)[0]
    ok = bool(name)
    if head in VIRTUAL_DEVICES:
        parts = _device_parts(name) if ":" in name else []
        ok = (head == "AUTO" or bool(parts)) and all(_present(p, available) for p in parts)
    elif ok:
        ok = ":" not in name and _present(name, available)
    if not ok:
        raise EngineError(
            f"device {device!r} is not available here (have: {', '.join(available) or 'none'}; "
            "also AUTO, AUTO:<devices>, HETERO:<devices>, MULTI:<devices>)"
        )
    return name


def available_devices(core: Any | None = None) -> list[tuple[str, str]]:
    """``(name, full name)`` of every device OpenVINO finds here, then ``AUTO``: the page's
    device dropdown. A device whose name cannot be read is listed by its name.

    >>> ("CPU" in [name for name, _ in available_devices()], available_devices()[-1][0])
    (True, 'AUTO')
    """
    import openvino as ov

    core = core or ov.Core()
    rows = []
    for name in core.available_devices:
        try:
            full = str(core.get_property(name, "FULL_DEVICE_NAME"))
        except Exception:
            full = name
        rows.append((name, full))
    rows.append(("AUTO", f"AUTO: OpenVINO picks among {', '.join(n for n, _ in rows) or 'none'}"))
    return rows


@dataclass(frozen=True)
class Capabilities:
    """Which non-static shapes a device compiles: ``True``/``False`` once known (by the device's
    type, by static-only mode, or tried once), ``None`` while not tried yet; a ``False`` carries
    the device's reason in one line.

    >>> Capabilities(dynamic=False, bounded=None, dynamic_reason="static shapes only").to_dict()["dynamic"]
    False
    """

    dynamic: bool | None
    bounded: bool | None
    dynamic_reason: str | None = None
    bounded_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dynamic": self.dynamic,
            "bounded": self.bounded,
            "dynamic_reason": self.dynamic_reason,
            "bounded_reason": self.bounded_reason,
        }


DEVICE_RULES: dict[str, dict[str, str]] = {
    # OpenVINO's NPU plugin documents static shapes only; newer plugins may take bounded dims,
    # so "bounded" is left to trying.
    "NPU": {"dynamic": "the NPU plugin compiles static shapes only (OpenVINO NPU device docs, limitations)"},
}
"""Known refusals by device type (the name before ``.``); what is not here is tried once."""

STATIC_ONLY_REASON = "static-only mode: dynamic and bounded shapes refused, as the strictest device (an NPU) would"


# ------------------------------------------------------------------------------ compiled models
class RequestPool:
    """The infer requests of one compiled model. A thread takes one and gives it back; a closed
    pool (its model released) hands out none and keeps none, so an old request is never reused."""

    MAX_IDLE = 8
    """Idle requests kept for reuse; more given back (a concurrent plan of many calls) are dropped."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self.closed = False
        self.created = 0

    def acquire(self) -> Any:
        with self._lock:
            if self.closed:
                raise EngineError("this compiled model was released (memory budget); compile it again")
            if self._free:
                return self._free.pop()
            self.created += 1
            return self._compiled.create_infer_request()

    def release(self, request: Any) -> None:
        with self._lock:
            if not self.closed and len(self._free) < self.MAX_IDLE:
                self._free.append(request)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._free.clear()
            self._compiled = None


@dataclass(eq=False)
class Compiled:
    """One compiled model: a static ``shape``, or ``None`` for the dynamic model (``bounds`` set
    for the model with bounded dims ``[1..B, 1..S]``).

    ``compile_s`` is a cold compile where ``from_cache`` is False, an import of a cached blob
    where it is True. ``memory_mb`` is process memory added (RSS) by compiling and the first
    inference, not device memory.
    """

    shape: tuple[int, int] | None
    packed: bool
    compiled: Any
    compile_s: float
    memory_mb: float | None
    bounds: tuple[int, int] | None = None
    from_cache: bool = False
    first_infer_s: float = 0.0
    device: str = "CPU"
    pool: RequestPool | None = field(default=None, repr=False)
    pins: int = 0
    evicted: bool = False
    used: int = 0

    @property
    def key(self) -> ModelKey:
        return (self.packed, self.shape, self.bounds)

    @property
    def label(self) -> str:
        if self.shape is not None:
            return f"{self.shape[0]} x {self.shape[1]}" + (" packed" if self.packed else "")
        what = "dynamic model" if self.bounds is None else f"bounded model [1..{self.bounds[0]}, 1..{self.bounds[1]}]"
        return what + (" packed" if self.packed else "")

    def to_dict(self) -> dict[str, Any]:
        """An entry of a result's ``compiled_models`` (JSON; names are a contract)."""
        return {
            "shape": None if self.shape is None else list(self.shape),
            "bounds": None if self.bounds is None else list(self.bounds),
            "packed": self.packed,
            "device": self.device,
            "compile_s": self.compile_s,
            "from_cache": self.from_cache,
            "memory_mb": self.memory_mb,
            "first_infer_s": self.first_infer_s,
        }


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


def _pool(hidden: np.ndarray) -> np.ndarray:
    mean = hidden.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _feed_for(compiled: Any, shape: tuple[int, int], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Full rows of random token ids at ``shape`` for whatever inputs the model takes (one
    segment per row where it is packed): for first inferences and cost-table timings."""
    b, s = shape
    rng = np.random.default_rng(seed)
    feed = {}
    for port in compiled.inputs:
        name = port.get_any_name()
        if name == "input_ids":
            feed[name] = rng.integers(1000, 2000, size=(b, s), dtype=np.int64)
        elif name in ("attention_mask", "segment_ids"):
            feed[name] = np.ones((b, s), np.int64)
        elif name == "position_ids":
            feed[name] = np.tile(np.arange(s, dtype=np.int64), (b, 1))
        else:
            feed[name] = np.zeros((b, s), np.int64)
    return feed


class Engine:
    """Runs plans for one loaded model on one device at one precision.

    ``static_only`` refuses dynamic and bounded shapes as the strictest device would, on any
    device. ``compiled_budget`` bounds the process memory its compiled models hold: by default
    the process's :data:`SHARED_BUDGET` (``SHAPEDEMO_COMPILED_MB``, shared with every other
    engine), a number of MiB for a budget of its own, or a :class:`CompiledBudget` to share.
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
    ) -> None:
        import openvino as ov

        if precision not in PRECISIONS:
            raise EngineError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
        self.loaded = loaded
        self.core = core or ov.Core()
        self.device = check_device(self.core, device)
        self.precision = precision
        self.static_only = static_only
        if compiled_budget is None:
            self.budget = SHARED_BUDGET
        elif isinstance(compiled_budget, CompiledBudget):
            self.budget = compiled_budget
        else:
            self.budget = CompiledBudget(compiled_budget)
        if precision == "bf16":
            for part in _device_parts(self.device) if ":" in self.device else [self.device]:
                try:
                    caps = self.core.get_property(part, "OPTIMIZATION_CAPABILITIES")
                except Exception:  # AUTO: asked of what it picks, at compile time
                    continue
                if "BF16" not in caps:
                    raise EngineError(f"{part} has no bf16 support here; use f32 or auto")
        self.cache_dir: Path | None = None if not cache_dir else Path(default_cache_dir() if cache_dir == "default" else cache_dir)
        self.config: dict[str, Any] = {"PERFORMANCE_HINT": performance_hint}
        self.blob_dir: Path | None = None
        if self.cache_dir is not None and blob_budget_mb() > 0:
            # one blob folder per device and precision: OpenVINO 2026.4's CPU plugin imported a
            # blob compiled at f32 into a bf16 session here and crashed in infer()
            prune_blobs(self.cache_dir / "blobs", budget_mb=blob_budget_mb())
            # unusable (a file in the way, read-only): one line naming it and SHAPEDEMO_CACHE
            self.blob_dir = ensure_cache_dir(self.cache_dir / "blobs" / blob_folder(self.device, precision))
            self.config["CACHE_DIR"] = str(self.blob_dir)
        if precision != "auto":
            self.config["INFERENCE_PRECISION_HINT"] = precision
        self._compiled: OrderedDict[ModelKey, Compiled] = OrderedDict()
        self._lock = self.budget.lock  # one lock per budget: eviction reaches into other engines
        self.budget.engines.add(self)
        self._primed: set[bool] = set()
        self._known: dict[str, tuple[bool, str | None]] = {}
        rules = DEVICE_RULES.get(self.device.split(".")[0], {})
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
        if ":" in self.device:
            return _device_parts(self.device)
        if self.device.split(":")[0] in VIRTUAL_DEVICES:
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
            compiled.create_infer_request().infer(_feed_for(compiled, shape))
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
            before = _trimmed_rss()
            start = time.perf_counter()
            try:
                compiled = self.core.compile_model(model, self.device, self.config)
            except Exception as exc:
                if kind is not None:
                    self._known[kind] = (False, one_line(exc))
                    raise ShapesUnsupported(self.device, kind, one_line(exc)) from None
                raise EngineError(f"{self.device} could not compile {shape[0]} x {shape[1]}: {one_line(exc)}") from None  # type: ignore[index]
            seconds = time.perf_counter() - start
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
            request.infer(_feed_for(compiled, at))
            first = time.perf_counter() - t0
            pool.release(request)
            after = _trimmed_rss()
            memory = None if before is None or after is None else max(0.0, after - before)
            entry = Compiled(shape, packed, compiled, seconds, memory, bounds=key[2], from_cache=from_cache,
                             first_infer_s=first, device=self.device, pool=pool, pins=int(pin),
                             used=self.budget.tick())
            self._compiled[key] = entry
            self._enforce_budgets()
            return entry

    def unpin(self, entry: Compiled) -> None:
        """Give back a pin taken by ``compile(pin=True)``; the budget is enforced again."""
        with self._lock:
            entry.pins = max(0, entry.pins - 1)
            self._enforce_budgets()

    @property
    def compiled_budget(self) -> float:
        """The memory budget (MiB) this engine's compiled models count against (with those of
        every engine sharing it)."""
        return self.budget.mb

    def _enforce_budgets(self) -> None:
        """Release least recently used unpinned compiled models beyond the memory budget (of this
        engine or another on the same budget), and prune the blob cache to its disk budget."""
        self.budget.enforce()
        if self.blob_dir is not None and self.cache_dir is not None:
            prune_blobs(self.cache_dir / "blobs", budget_mb=blob_budget_mb())

    def _evict(self, key: ModelKey) -> None:
        entry = self._compiled.pop(key)
        entry.evicted = True
        if entry.pool is not None:
            entry.pool.close()
        entry.compiled = None

    def release_all(self) -> None:
        """Release every compiled model no running plan holds."""
        with self._lock:
            for key, entry in list(self._compiled.items()):
                if not entry.pins:
                    self._evict(key)

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
        entries, fresh = self._compile_plan(plan, progress=progress, pin=False)
        return sum(e.compile_s for e in fresh), sum(e.memory_mb or 0.0 for e in fresh)

    def _compile_plan(self, plan: Plan, *, progress: ProgressFn | None, pin: bool) -> tuple[list[Compiled], list[Compiled]]:
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

    def plan_costs(self, plan: Plan) -> tuple[float, float | None]:
        """Compile seconds and memory (MiB) of every compiled model ``plan`` uses."""
        entries = [self._compiled[k] for k in self.keys_needed(plan) if k in self._compiled]
        mem = [e.memory_mb for e in entries]
        return sum(e.compile_s for e in entries), (None if any(m is None for m in mem) else sum(mem))  # type: ignore[misc]

    def measure_shape(self, shape: tuple[int, int], *, packed: bool = False, repeats: int = 5, warmup: int = 1) -> float:
        """Median latency (ms) of one call at a static ``shape`` (random token ids, full rows;
        ``packed``: on the packed model): an entry of the cost table that lets plans be chosen
        by measured latency."""
        entry = self.compile(shape, packed=packed, pin=True)
        try:
            assert entry.pool is not None
            request = entry.pool.acquire()
            try:
                feed = _feed_for(entry.compiled, shape, seed=shape[0] * 1000 + shape[1])
                for _ in range(warmup):
                    request.infer(feed)
                samples = []
                for _ in range(max(1, repeats)):
                    t0 = time.perf_counter()
                    request.infer(feed)
                    samples.append((time.perf_counter() - t0) * 1e3)
            finally:
                entry.pool.release(request)
        finally:
            self.unpin(entry)
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

    def gather(self, plan: Plan, outputs: list[dict[str, np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray]:
        """Per-sequence hidden states (padding trimmed) and pooled embeddings, in request order."""
        n = len(plan.lengths)
        if len(outputs) != len(plan.calls):
            raise EngineError(f"{len(outputs)} outputs for {len(plan.calls)} calls")
        hidden: list[np.ndarray | None] = [None] * n
        pooled: list[np.ndarray | None] = [None] * n
        pooling = getattr(getattr(self.loaded, "pooling", None), "pool", _pool)  # as the model defines it
        for call, out in zip(plan.calls, outputs):
            states = out["last_hidden_state"]
            graph_pooled = out.get("sentence_embedding") if plan.masked and not plan.packed else None
            for r, row in enumerate(call.rows):
                for seg in row:
                    h = np.array(states[r, seg.offset : seg.offset + seg.length], dtype=np.float32)
                    hidden[seg.seq] = h
                    pooled[seg.seq] = (
                        np.array(graph_pooled[r], dtype=np.float32) if graph_pooled is not None else pooling(h)
                    )
        missing = [i for i, h in enumerate(hidden) if h is None]
        if missing:
            raise EngineError(f"the plan placed no output for sequence {missing[0]}")
        return hidden, np.stack(pooled) if n else np.zeros((0, 0), np.float32)  # type: ignore[arg-type, return-value]

    # ---------------------------------------------------------------- running
    def runner(
        self,
        plan: Plan,
        encoded: Encoded,
        *,
        concurrent: bool = False,
        jobs: int = DEFAULT_JOBS,
        progress: ProgressFn | None = None,
    ) -> "PlanRunner":
        """A prepared runner for ``plan``: its models compiled and pinned, its requests taken.
        Close it (or use ``with``) to give them back."""
        return PlanRunner(self, plan, encoded, concurrent=concurrent, jobs=jobs, progress=progress)

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
    ) -> Outcome:
        """Run ``plan`` on ``encoded`` (lengths must match the plan): warm-up runs, then
        ``repeats`` timed runs; outputs from the last run, in request order, padding trimmed."""
        with self.runner(plan, encoded, concurrent=concurrent, jobs=jobs, progress=progress) as runner:
            for _ in range(warmup):
                if progress:
                    progress(0.0, f"{plan.strategy}: warming up")
                runner.run_once()
            for i in range(max(1, repeats)):
                if progress:
                    progress(i / max(1, repeats), f"{plan.strategy}: run {i + 1}/{repeats}")
                runner.run_once(record=True)
            return runner.outcome()


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
    """

    def __init__(self, engine: Engine, plan: Plan, encoded: Encoded, *, concurrent: bool, jobs: int, progress: ProgressFn | None) -> None:
        if list(plan.lengths) != encoded.lengths:
            raise EngineError("the plan was made for other sequence lengths than the tokens given")
        if jobs < 1:
            raise EngineError(f"jobs {jobs}: at least 1 request in flight")
        self.engine, self.plan, self.encoded = engine, plan, encoded
        self.concurrent = concurrent and len(plan.calls) > 1
        self.jobs = jobs
        self.models, self.fresh = engine._compile_plan(plan, progress=progress, pin=True)
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
    def _copy(request: Any) -> dict[str, np.ndarray]:
        return {o.get_any_name(): request.get_tensor(o).data.copy() for o in request.model_outputs}

    def _device_pass(self, feeds: list[dict[str, np.ndarray]]) -> tuple[float, list[float], list[dict[str, np.ndarray]], float]:
        """Run the calls; returns (device ms, per-call ms, outputs, ms spent copying them)."""
        if not self.concurrent:  # a model's one request serves its calls in turn: copy each between
            call_ms, outputs, copy_ms = [], [], 0.0
            for request, feed in zip(self.requests, feeds):
                t0 = time.perf_counter()
                request.infer(feed)
                t1 = time.perf_counter()
                outputs.append(self._copy(request))
                copy_ms += (time.perf_counter() - t1) * 1e3
                call_ms.append((t1 - t0) * 1e3)
            return sum(call_ms), call_ms, outputs, copy_ms
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
            request.start_async(feed, i)
        self._finished.wait()
        total = (time.perf_counter() - start) * 1e3
        for request in self.requests:
            request.wait()  # raises where a call failed
        t1 = time.perf_counter()
        outputs = [self._copy(r) for r in self.requests]
        return total, [(e - s) * 1e3 for s, e in zip(starts, self._ends)], outputs, (time.perf_counter() - t1) * 1e3

    def run_once(self, *, record: bool = False) -> Pass:
        """One pass: scatter, device calls, copy and gather. ``record`` adds its timings to the
        outcome; the outputs of every pass replace the last ones."""
        plan = self.plan
        t0 = time.perf_counter()
        feeds = [self.engine.call_inputs(c, self.encoded, masked=plan.masked, packed=plan.packed) for c in plan.calls]
        scatter = (time.perf_counter() - t0) * 1e3
        device, call_ms, outputs, copy_ms = self._device_pass(feeds)
        t1 = time.perf_counter()
        self.outcome_.hidden, self.outcome_.embeddings = self.engine.gather(plan, outputs)
        gather = copy_ms + (time.perf_counter() - t1) * 1e3
        timing = Pass(scatter, device, gather, call_ms)
        if record:
            self.outcome_.scatter_ms.append(scatter)
            self.outcome_.total_ms.append(device)
            self.outcome_.gather_ms.append(gather)
            self.outcome_.call_ms.append(call_ms)
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

