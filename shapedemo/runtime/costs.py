"""This device's measured cost table: every compiled shape timed once, kept beside the blob cache.

``auto`` (and ``tune`` and ``serve``'s planner) price a call by what it costs *here*: on a 2-core
AMX Xeon at bf16 a token slot in a 32 x 64 call costs about 0.6 of one in an 8 x 256 call, which
token slots cannot see. ``measured_cost_model`` times the declared set (sequence buckets x batch
sizes, on the plain graph and, where the model packs, on the packed one) once, and writes it to
``<cache>/costs/<key>.json``, keyed by the model, the device (and its CPU name), the precision,
the OpenVINO version and the shape set; a second start with the same key reads it back.

Where the device also compiles the dynamic model (``dynamic_allowed``: a CPU outside static-only
mode), the table holds calls on it too (``dynamic_shapes``: the batch sizes up to 4 at every
bucket and between them), so ``auto`` may run a request natively dynamic where that costs less
here than any static layout (a lone text of 40 tokens at f32 runs ~1.3x faster at its own
length than padded to 64).

Timing is interleaved and robust to a shared machine: ``ROUNDS`` rounds over all shapes (the
order rotated each round), each shape's figure the median of ``REPEATS`` calls relative to a
reference call on each side of it (``time_shapes``: a VM's speed switches between a fast and a
slow mode, which the ratio of neighbouring calls cancels; each call timed by ``Engine.measure_shape``:
wall time on a quiet machine; on a busy one (``busy``: a load average over 1.5 per core) the
call's process CPU time per inference thread where that is less than its wall time, which other
processes' load stretches; a quiet machine must not use it, as a call that keeps only one of
its threads busy for part of its time would look cheaper than it is), and each shape
keeps the median of its rounds. Not their lowest: on a quiet 2-core VM the speed itself
wanders (one round ran the same 8 x 256 packed call in 63 ms, the two others in 103 and 102),
and a low quantile of three rounds keeps whichever shapes were timed in a fast stretch, which
then win plans they lose when run (load from elsewhere is left to the CPU-time clock). Prices are then looked up through ``CostModel``'s monotone
envelope (a call never costs more than a larger one), with a per-call + per-slot + attention
model fitted robustly (Huber, ``measure.stats.robust_lstsq``) for shapes outside the table.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

from shapedemo.planning.strategies.cost import CostModel, fit_cost_model
from shapedemo.runtime.devices import parse_device

__all__ = ["ROUNDS", "REPEATS", "cost_key", "cost_model_of", "dynamic_allowed", "dynamic_shapes", "cost_path", "declared_shapes", "kept_cost_model", "latest_cost_model", "load_cost_model", "measured_cost_model", "describe_pricing", "reference_job", "time_shapes"]

ROUNDS = 3
REPEATS = 3
FORMAT = 7
"""Bumped when timings change meaning (2: CPU time per inference thread on the CPU; 3: wall
time unless the machine is busy; 4: the median of the rounds, not their lower quartile; 5: each
call relative to a reference call beside it; 6: dynamic calls, each after one of another length;
7: calls copy neither their inputs nor their outputs, as plans run them)."""

SWITCH = 1.25
"""Two reference calls around a job further apart than this factor: the speed switched in
between, and the job is timed again (at most ``RETRIES`` times)."""
RETRIES = 2

BUSY_PER_CORE = 1.5
"""A load average above this many per logical core makes a round time in CPU time (``busy``)."""


def busy() -> bool:
    """Whether other work crowds this machine: the 1-minute load average over ``BUSY_PER_CORE``
    per logical core (False where the platform has no load average)."""
    try:
        return os.getloadavg()[0] > BUSY_PER_CORE * (os.cpu_count() or 1)
    except OSError:
        return False

ProgressFn = Callable[[float, str], None]
Shape = tuple[int, int]


def cpu_name() -> str:
    """The CPU model (``/proc/cpuinfo``'s model name), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _device_name(engine: Any) -> str:
    name = parse_device(engine.device)
    if name.type in ("CPU", "AUTO", "HETERO", "MULTI"):
        return f"{engine.device} ({cpu_name()}, {os.cpu_count()} logical cores)"
    try:
        return f"{engine.device} ({engine.core.get_property(engine.device, 'FULL_DEVICE_NAME')})"
    except Exception:  # noqa: BLE001 - a device without the property is named by its id
        return engine.device


def cost_key(engine: Any, shapes: Iterable[Shape], packed_shapes: Iterable[Shape], dynamic: Iterable[Shape] = ()) -> dict[str, Any]:
    """What a cost table is valid for: model, device, precision, OpenVINO version, shape set
    (and the dynamic calls timed, where there are any)."""
    import openvino as ov

    loaded = engine.loaded
    return {
        "format": FORMAT,
        "model": loaded.spec,
        "model_source": loaded.source_path,
        "model_dims": None if loaded.dims is None else repr(loaded.dims),
        "device": _device_name(engine),
        # the precision the device runs at, not the setting that asked for it: `auto` and `bf16`
        # on an AMX Xeon time the same calls, so they share one table
        "inference_precision": engine.inference_precision,
        "openvino": ov.get_version(),
        "config": {
            k: str(v) for k, v in sorted(engine.config.items()) if k not in ("CACHE_DIR", "INFERENCE_PRECISION_HINT")
        },
        "shapes": sorted([list(s) for s in set(shapes)]),
        "packed_shapes": sorted([list(s) for s in set(packed_shapes)]),
        **({"dynamic_shapes": sorted([list(s) for s in set(dynamic)])} if dynamic else {}),
        # compressed weights run at other speeds (f32's key stays as it was)
        **({} if getattr(loaded, "weights", "f32") == "f32" else {"weights": (loaded.weights_info or {}).get("cache_key") or loaded.weights}),
    }


def cost_path(engine: Any, key: dict[str, Any]) -> Path | None:
    """``<cache>/costs/<sha of key>.json``, beside the blob cache; None without a cache."""
    if engine.cache_dir is None:
        return None
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    return Path(engine.cache_dir) / "costs" / f"{digest}.json"


def cost_model_of(document: dict[str, Any]) -> CostModel:
    """The cost model a kept table document prices by: its tables fitted (Huber-robust), named by
    ``describe_pricing``."""
    from shapedemo.measure.stats import robust_lstsq

    model = fit_cost_model(
        _table(document["table"]), packed_table=_table(document["packed_table"]), solver=robust_lstsq,
        dynamic_table=_table(document.get("dynamic_table", [])),
    )
    return replace(model, origin=describe_pricing(document))


def _table(rows: Sequence[dict[str, Any]]) -> dict[Shape, float]:
    return {(int(r["batch"]), int(r["seq"])): float(r["ms"]) for r in rows}


def load_cost_model(
    engine: Any, shapes: Iterable[Shape], packed_shapes: Iterable[Shape] = (), dynamic: Iterable[Shape] = ()
) -> tuple[CostModel, dict[str, Any]] | None:
    """The cached model for exactly this shape set on this engine, with its document, or None."""
    key = cost_key(engine, shapes, packed_shapes, dynamic)
    path = cost_path(engine, key)
    if path is None or not path.is_file():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("key") != key:
            return None
        document = {**document, "path": str(path), "reused": True}
        return cost_model_of(document), document
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a torn or foreign file: measured again and overwritten


def latest_cost_model(engine: Any) -> tuple[CostModel, dict[str, Any]] | None:
    """The cached table of the most shapes for this engine's model, device and precision,
    whatever its shape set (``tune`` chooses shapes, so it cannot ask for one set), or None."""
    if engine.cache_dir is None:
        return None
    sets = ("shapes", "packed_shapes", "dynamic_shapes")
    want = {k: v for k, v in cost_key(engine, (), ()).items() if k not in sets}
    best: tuple[int, dict[str, Any]] | None = None
    for path in sorted((Path(engine.cache_dir) / "costs").glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            key = document["key"]
            if {k: v for k, v in key.items() if k not in sets} != want:
                continue
            size = len(key["shapes"]) + len(key["packed_shapes"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if best is None or size > best[0]:
            best = (size, {**document, "path": str(path), "reused": True})
    if best is None:
        return None
    return cost_model_of(best[1]), best[1]


def reference_job(jobs: Sequence[tuple[bool, Shape]]) -> tuple[bool, Shape]:
    """The job every other is timed next to: a plain shape (else the first job) whose token slots
    are nearest the geometric mean of all jobs', the larger batch on a tie (16 x 32 for buckets
    32..256 x batch sizes 1..32): long enough that a call's fixed cost does not rule it, short
    enough to be cheap to repeat.

    >>> reference_job([(False, (1, 32)), (False, (8, 64)), (False, (32, 256)), (True, (8, 64))])
    (False, (8, 64))

    A job's graph is ``False`` (plain), ``True`` (packed) or ``"dynamic"`` (the dynamic model).
    """
    mean = math.exp(statistics.fmean(math.log(b * s) for _, (b, s) in jobs))
    plain = [job for job in jobs if job[0] is False] or list(jobs)
    return min(plain, key=lambda job: (round(abs(math.log(job[1][0] * job[1][1] / mean)), 9), -job[1][0]))


def _measure(engine: Any, job: tuple[Any, Shape], **kw: Any) -> float:
    graph, shape = job
    if graph == "dynamic":
        return engine.measure_shape(shape, dynamic=True, **kw)
    return engine.measure_shape(shape, packed=bool(graph), **kw)


def _reference_entry(job: tuple[bool, Shape], ms: list[float]) -> dict[str, Any]:
    packed, (batch, seq) = job
    return {"packed": packed, "batch": batch, "seq": seq, "ms": ms}


def time_shapes(
    engine: Any,
    jobs: Sequence[tuple[bool, Shape]],
    *,
    rounds: int = ROUNDS,
    repeats: int = REPEATS,
    progress: ProgressFn | None = None,
    clocks: list[str] | None = None,
    reference: list[float] | None = None,
) -> dict[tuple[bool, Shape], list[float]]:
    """``{(packed, shape): [ms per round]}``: every job timed once per round (``Engine.measure_shape``,
    in CPU time only in rounds that start on a ``busy`` machine), the order rotated each round.

    Each job's figure is relative: a call of the ``reference_job`` runs before the first job
    and after each one, and the job's median is divided by the mean of the two reference calls
    around it, then scaled by the median of all reference calls. A quiet 2-core VM switches
    between a fast and a slow speed (8 x 64: 12 or 22 ms; 8 x 256: 57 or 95 ms, in stretches of
    a few calls): absolute times then scatter by 22% (coefficient of variation) where the ratio
    of two neighbouring calls scatters by 9%, and the planner needs only ratios. A job whose
    two reference calls disagree by more than ``SWITCH`` met a switch and is timed again.
    ``clocks`` (when given) gets each round's clock, ``"wall"`` or ``"cpu"``; ``reference``
    every reference call's ms."""
    samples: dict[tuple[bool, Shape], list[float]] = {job: [] for job in jobs}
    if not jobs:
        return samples
    ref_packed, ref_shape = reference_job(jobs)
    refs: list[float] = []
    steps = max(1, rounds * len(jobs))
    done = 0
    for r in range(max(1, rounds)):
        k = r % len(jobs)
        cpu_time = busy()
        if clocks is not None:
            clocks.append("cpu" if cpu_time else "wall")
        before = _measure(engine, (ref_packed, ref_shape), repeats=1, cpu_time=cpu_time)
        refs.append(before)
        for packed, shape in list(jobs[k:]) + list(jobs[:k]):
            if progress:
                graph = {True: " packed", "dynamic": " dynamic"}.get(packed, "")
                progress(done / steps, f"timing {shape[0]} x {shape[1]}{graph} (round {r + 1}/{rounds})")
            for attempt in range(1 + RETRIES):
                ms = _measure(engine, (packed, shape), repeats=repeats, cpu_time=cpu_time)
                after = _measure(engine, (ref_packed, ref_shape), repeats=1, warmup=0, cpu_time=cpu_time)
                refs.append(after)
                # the two reference calls disagree: the speed switched in between, and which
                # speed the job met is unknown; time it again
                switched = max(before, after) > SWITCH * max(1e-9, min(before, after))
                before, previous = after, before
                if not switched or attempt == RETRIES:
                    break
            samples[packed, shape].append(ms / max(1e-9, (previous + after) / 2))
            done += 1
    scale = statistics.median(refs)
    if reference is not None:
        reference.extend(refs)
    return {job: [ratio * scale for ratio in ratios] for job, ratios in samples.items()}


def declared_shapes(
    engine: Any, seq_buckets: Iterable[int], batch_sizes: Iterable[int], *, packed: bool = True
) -> tuple[list[Shape], list[Shape]]:
    """The plain and packed shapes of ``seq_buckets x batch_sizes`` on ``engine``'s model."""
    sizes = list(batch_sizes)
    shapes = sorted({(b, s) for s in seq_buckets for b in sizes})
    return shapes, (shapes if packed and engine.loaded.packed is not None else [])


DYNAMIC_MAX_BATCH = 4
"""Dynamic calls are timed at batch sizes up to this (a larger call is priced in proportion): one
call padded to the longest of many texts loses to packing them."""


def dynamic_allowed(engine: Any) -> bool:
    """Whether ``engine``'s cost table times dynamic calls too: a CPU engine outside static-only
    mode (or any whose device is known to compile the dynamic model)."""
    caps = getattr(engine, "capabilities", None)
    if caps is None or getattr(engine, "static_only", True) or caps.dynamic is False:
        return False
    return caps.dynamic is True or parse_device(engine.device).type == "CPU"


def dynamic_shapes(seq_buckets: Iterable[int], batch_sizes: Iterable[int]) -> list[Shape]:
    """The dynamic calls a cost table times: batch sizes up to ``DYNAMIC_MAX_BATCH`` (at least
    the smallest) at every bucket, half-way between buckets and at half the smallest (a dynamic
    call runs at a text's own length, so lengths between the buckets are priced by
    interpolation).

    >>> dynamic_shapes([32, 64, 128], [1, 4, 16])
    [(1, 16), (1, 32), (1, 48), (1, 64), (1, 96), (1, 128), (4, 16), (4, 32), (4, 48), (4, 64), (4, 96), (4, 128)]
    """
    buckets = sorted(set(seq_buckets))
    sizes = sorted(set(batch_sizes))
    batches = [b for b in sizes if b <= DYNAMIC_MAX_BATCH] or sizes[:1]
    seqs = set(buckets) | {(a + b) // 2 for a, b in zip(buckets, buckets[1:])}
    if buckets and buckets[0] >= 16:
        seqs.add(buckets[0] // 2)
    return [(b, s) for b in batches for s in sorted(seqs)]


def kept_cost_model(
    engine: Any, seq_buckets: Iterable[int], batch_sizes: Iterable[int], *, packed: bool = True
) -> CostModel | None:
    """The cached model of this declared set, without timing anything (None until a run timed
    it): what the page's preview prices ``auto`` by."""
    found = load_cost_model(engine, *_table_sets(engine, seq_buckets, batch_sizes, packed=packed))
    return None if found is None else found[0]


def _table_sets(
    engine: Any, seq_buckets: Iterable[int], batch_sizes: Iterable[int], *, packed: bool, dynamic: bool | None = None
) -> tuple[list[Shape], list[Shape], list[Shape]]:
    """The plain, packed and dynamic shapes a table of this declared set times on ``engine``
    (dynamic ones where ``dynamic``, by default ``dynamic_allowed``): what its key names."""
    buckets, sizes = list(seq_buckets), list(batch_sizes)
    shapes, packed_shapes = declared_shapes(engine, buckets, sizes, packed=packed)
    timed = dynamic_allowed(engine) if dynamic is None else dynamic
    return shapes, packed_shapes, dynamic_shapes(buckets, sizes) if timed else []


def measured_cost_model(
    engine: Any,
    seq_buckets: Iterable[int],
    batch_sizes: Iterable[int],
    *,
    packed: bool = True,
    rounds: int = ROUNDS,
    repeats: int = REPEATS,
    progress: ProgressFn | None = None,
    reuse: bool = True,
    dynamic: bool | None = None,
    keep: bool = True,
) -> tuple[CostModel, dict[str, Any]]:
    """The cost model of ``seq_buckets x batch_sizes`` on ``engine`` (packed too where the model
    has a packed graph and ``packed``), read from the cache or timed now and written there.

    ``dynamic`` (default: ``dynamic_allowed``) times ``dynamic_shapes`` on the dynamic model too.
    ``keep=False`` leaves the cache as it was (a table timed for comparison only).

    Returns the model and a document: ``key``, ``table``, ``packed_table`` (median ms per shape over the rounds),
    ``dynamic_table`` (where dynamic calls were timed), ``rounds``, ``measured_at``, ``seconds``
    (time spent timing), ``path`` and ``reused``.
    """
    shapes, packed_shapes, dynamic_set = _table_sets(engine, seq_buckets, batch_sizes, packed=packed, dynamic=dynamic)
    if reuse:
        found = load_cost_model(engine, shapes, packed_shapes, dynamic_set)
        if found is not None:
            return found
    key = cost_key(engine, shapes, packed_shapes, dynamic_set)
    jobs: list[tuple[Any, Shape]] = [(False, s) for s in shapes] + [(True, s) for s in packed_shapes]
    jobs += [("dynamic", s) for s in dynamic_set]
    start = time.perf_counter()
    clocks: list[str] = []
    reference: list[float] = []
    samples = time_shapes(engine, jobs, rounds=rounds, repeats=repeats, progress=progress, clocks=clocks, reference=reference)
    seconds = time.perf_counter() - start
    least = {job: statistics.median(ms) for job, ms in samples.items()}
    document: dict[str, Any] = {
        "key": key,
        "table": [{"batch": b, "seq": s, "ms": least[False, (b, s)]} for b, s in shapes],
        "packed_table": [{"batch": b, "seq": s, "ms": least[True, (b, s)]} for b, s in packed_shapes],
        **({"dynamic_table": [{"batch": b, "seq": s, "ms": least["dynamic", (b, s)]} for b, s in dynamic_set]} if dynamic_set else {}),
        "samples": [{"packed": p, "batch": b, "seq": s, "ms": ms} for (p, (b, s)), ms in samples.items()],
        "rounds": rounds,
        "clocks": clocks,
        "reference": None if not jobs else _reference_entry(reference_job(jobs), reference),
        "repeats": repeats,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(seconds, 2),
    }
    path = cost_path(engine, key) if keep else None
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
            os.replace(tmp, path)  # never a half-written table for another process to read
        except OSError:
            path = None  # a read-only cache: measured, used, not kept
    document = {**document, "path": None if path is None else str(path), "reused": False}
    return cost_model_of(document), document


def describe_pricing(document: dict[str, Any] | None) -> str:
    """Which pricing decided, in words: the measured table (reused or timed now), or token
    slots (``CostModel.pricing``).

    >>> describe_pricing(None)
    'token slots (no measured cost table for this device yet)'
    >>> describe_pricing({"key": {"device": "CPU (x)", "inference_precision": "bf16", "shapes": [[1, 16]], "packed_shapes": []}, "reused": True, "measured_at": "T"})
    'the cost table measured on CPU (x) at bf16 (1 shapes, timed T, reused)'
    """
    if document is None:
        return CostModel().pricing
    key = document["key"]
    count = len(key["shapes"]) + len(key["packed_shapes"]) + len(key.get("dynamic_shapes", []))
    how = "reused" if document.get("reused") else f"timed now in {document.get('seconds', 0):.0f} s"
    return (
        f"the cost table measured on {key['device']} at {key['inference_precision']} "
        f"({count} shapes, timed {document.get('measured_at', '?')}, {how})"
    )
