"""The one settings object both front ends build: what to run, on what, how often.

The page builds a ``RunSettings`` from its widgets, the command line from its flags; both hand
it to ``shapedemo.runner``, so a new setting is one field here, one widget, one flag, and the
code that uses it. ``validate`` gives the one-line errors both show. Pure: no OpenVINO, no
gradio, no model (what needs the tokenizer is resolved by the runner).

>>> s = RunSettings(lengths=(12, 40, 7), shapes=ShapeSet.parse(batch_sizes="1,2,4")).validate()
>>> s.shapes.batch_sizes, s.source
((1, 2, 4), 'lengths')
>>> s.plan_options(s.lengths)["max_seq"]    # the default max length: the smallest that fits
128
>>> RunSettings(workload="sst2-like", batch=0, limits=PAGE_LIMITS).validate()
Traceback (most recent call last):
...
shapedemo.planning.plan.PlanError: batch 0: choose 1 to 256
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from shapedemo.planning.edges import check_lengths
from shapedemo.planning.plan import MAX_POSITIONS, PlanError
from shapedemo.planning.strategies import STRATEGY_NAMES
from shapedemo.planning.workloads import WORKLOADS, sample_lengths
from shapedemo.shapes import ShapeSet

DEFAULT_STRATEGIES: tuple[str, ...] = (
    "dynamic", "padding", "buckets", "partition", "buckets-partition", "packing", "auto",
)
SERVE_STRATEGY = "auto" if "auto" in STRATEGY_NAMES else "buckets-partition"
"""What ``serve`` and the live-traffic stream run when no strategy is named."""
SERVE_MAX_WAIT_MS = 0.0
"""How long the first request of a batch waits for company by default (``serve --max-wait-ms``,
the batcher, the page's Live traffic): none, a batch is what queued while the last one ran
(docs/BENCHMARKS.md, "The batcher's wait")."""
PRECISIONS: tuple[str, ...] = ("auto", "f32", "bf16")
CALLS: tuple[str, ...] = ("sync", "concurrent")
WEIGHTS: tuple[str, ...] = ("f32", "f16", "int8-weights", "int8")
"""The weights a model runs (``model.compress``): as built, FP16, NNCF weight-only INT8, NNCF
INT8 quantized (weights and activations, calibrated on texts)."""
CALIBRATIONS: tuple[str, ...] = ("exact", "padded")
"""How ``int8`` sees its calibration texts: each at its own length, or in the plan's padded
static shapes (pad positions' activations then enter the quantization ranges)."""
MAX_JOBS = 16
"""Requests in flight at once in concurrent mode (the same for every strategy)."""


@dataclass(frozen=True)
class Limits:
    """Caps that protect the machine a run lands on (over a cap is an error, never a clamp),
    and the names the front end gives each setting, so an error names the control to fix."""

    where: str
    texts: int
    batch: int
    batch_size: int
    repeats: int
    warmup: int
    names: Mapping[str, str] = field(default_factory=dict)
    max_seconds: float = 600.0
    """The longest time limit for timed rounds (``RunSettings.max_seconds``)."""
    seconds: float = 30.0
    """The time limit for timed rounds when none is given and rounds go on until tight."""
    shapes: int = 0
    """Shapes one run may compile and time (0: ``DEFAULT_MAX_SHAPES``; see ``check_work``)."""
    shapes_knob: str = "--max-shapes"
    """How a user raises ``shapes``: a flag, or ``$NAME`` read when the run is checked."""

    def name(self, key: str) -> str:
        """What this front end calls setting ``key`` (``--batch-sizes`` on the command line)."""
        return self.names.get(key, key)

    @property
    def shape_names(self) -> dict[str, str]:
        """What this front end calls each ``ShapeSet`` field (for ``ShapeSet.parse``'s errors)."""
        keys = {"seq_buckets": "sequence buckets", "batch_sizes": "batch sizes", "max_seq": "max length", "pack_seq": "pack length"}
        return {field: self.name(key) for field, key in keys.items()}


PAGE_LIMITS = Limits(
    "this page", texts=64, batch=256, batch_size=256, repeats=30, warmup=5, max_seconds=60.0, seconds=15.0,
    shapes=64, shapes_knob="$SHAPEDEMO_MAX_SHAPES",
)
PAGE_COMPILED_MB = 1024
"""The page's compiled-model budget in MiB (``python app.py``, the Space) where
``SHAPEDEMO_COMPILED_MB`` is not set; the command line and ``serve`` keep
``runtime.budget.DEFAULT_COMPILED_MB`` (4096: ``serve``'s default set of 40 shapes holds 1.5 to
2.3 GiB). Sized for a 16 GB, 2-vCPU Space: a compiled MiniLM shape holds 30 to 65 MiB in bf16, 50 to
100 MiB in f32, so 40 comparisons with new bucket lists keep the process within 1.5 GiB of its
size after the first (``benchmarks/load.py --budget-check 40``), and the Deploy tab's live-traffic
set (:data:`PAGE_TRAFFIC_SHAPES`, pinned while it runs) fits with room to spare."""
PAGE_TRAFFIC_SHAPES = ShapeSet(seq_buckets=(32, 128, 512), batch_sizes=(1, 8))
"""What the page's live-traffic stream compiles and pins (buckets above the model's limit become
the limit): 3 buckets x 2 batch sizes, plain and packed where the strategy packs, 12 shapes of
MiniLM, 485 MiB held in bf16 and 735 MiB in f32 as measured (``auto``), under :data:`PAGE_COMPILED_MB`. ``serve``'s
default (5 buckets x 4 batch sizes, 40 shapes) would not fit it."""


def page_traffic_shapes(limit: int) -> ShapeSet:
    """:data:`PAGE_TRAFFIC_SHAPES` for a model of ``limit`` tokens.

    >>> page_traffic_shapes(512).seq_buckets, page_traffic_shapes(128).seq_buckets
    ((32, 128, 512), (32, 128))
    """
    buckets = tuple(sorted({min(b, limit) for b in PAGE_TRAFFIC_SHAPES.seq_buckets}))  # type: ignore[union-attr]
    return replace(PAGE_TRAFFIC_SHAPES, seq_buckets=buckets)


CLI_LIMITS = Limits(
    "the command line", texts=4096, batch=4096, batch_size=1024, repeats=1000, warmup=100, shapes=256,
    names={
        "batch": "--batch", "batch sizes": "--batch-sizes", "max length": "--max-seq",
        "pack length": "--pack-seq", "repeats": "--repeats", "warm-up runs": "--warmup",
        "sequence buckets": "--seq-buckets", "precision": "--precision", "device": "--device",
        "jobs": "--jobs", "time limit": "--max-seconds", "weights": "--weights", "calibration": "--calibration", "ov_config": "--ov-config",
    },
)


def split_texts(text: str) -> list[str]:
    """One text per non-blank line, stripped (the page's box and ``--texts-file``).

    >>> split_texts("a\\n\\n  b  \\n")
    ['a', 'b']
    """
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


@dataclass(frozen=True)
class RunSettings:
    """Everything a comparison (or a plan, or an embedding run) needs, front-end neutral.

    Input: exactly one of ``texts``, ``lengths`` or ``workload`` (+ ``batch``, ``seed``).
    ``shapes`` (a ``ShapeSet`` as parsed from what the user typed: buckets, batch sizes, max
    length, pack length) is worked out on the input's lengths (``plan_options``). ``device`` is the target (where the strategies run; the fidelity
    reference always runs on the CPU); ``static_only`` refuses dynamic shapes there, as an NPU
    would. ``cost_table``: None (partitions by fewest padding rows), ``"measure"``
    (time every shape first, then least predicted latency) or a JSON file ``{"4x128": ms}``;
    ``cost_model`` the JSON form of a fitted ``CostModel`` (``tune``'s ``predicted.cost_model``)
    that ``auto`` prices shapes with. ``weights``: one of ``WEIGHTS``; ``int8`` is calibrated on
    ``calibration_file``'s texts (one per line) where given, else on the input, laid out as
    ``calibration`` (one of ``CALIBRATIONS``).
    """

    texts: tuple[str, ...] | None = None
    lengths: tuple[int, ...] | None = None
    workload: str | None = None
    batch: int = 8
    seed: int = 0
    model: str | None = None
    device: str = "CPU"
    static_only: bool = False
    precision: str = "auto"
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    shapes: ShapeSet = field(default_factory=ShapeSet)
    cost_table: str | None = None
    cost_model: Mapping[str, Any] | None = field(default=None, compare=False)
    repeats: int | None = None
    """Timed rounds (each runs every strategy once, interleaved); None: rounds until every
    ratio's interval is tight or ``max_seconds`` runs out."""
    max_seconds: float | None = None
    """With ``repeats`` None: the time limit for timed rounds (None: ``limits.seconds``)."""
    warmup: int = 1
    calls: str = "sync"
    jobs: int = 2
    weights: str = "f32"
    calibration: str = "exact"
    calibration_file: str | None = None
    limits: Limits = field(default=CLI_LIMITS, compare=False)
    max_shapes: int | None = None
    """The cap on shapes this run may compile (``--max-shapes``); None: the front end's."""
    ov_config: Mapping[str, Any] | None = field(default=None, compare=False)
    """OpenVINO properties passed through to ``compile_model`` (as optimum-intel's ``ov_config``):
    a JSON object, or its text (``--ov-config '{"NUM_STREAMS": 2}'``); None: the engine's own."""

    @property
    def source(self) -> str:
        """Which input this is: ``texts``, ``lengths`` or ``workload``."""
        given = [name for name in ("texts", "lengths", "workload") if getattr(self, name) is not None]
        if len(given) != 1:
            raise PlanError("give exactly one input: texts, lengths or a workload")
        return given[0]

    @property
    def objective(self) -> str:
        """``padding`` (fewest padding rows) or ``latency`` (a cost table chooses)."""
        return "padding" if self.cost_table is None else "latency"

    def validate(self) -> RunSettings:
        """The same settings, normalised (lists parsed, sizes sorted); a ``PlanError`` with one
        line naming what to fix, for everything that can be checked without the model."""
        caps = self.limits
        changes: dict[str, Any] = {}
        source = self.source
        if source == "texts":
            texts = tuple(t.strip() for t in self.texts or () if t and t.strip())
            if not texts:
                raise PlanError("no text given: enter at least one line of text")
            if len(texts) > caps.texts:
                raise PlanError(f"{len(texts)} texts: {caps.where} runs at most {caps.texts} at once")
            changes["texts"] = texts
        elif source == "lengths":
            lengths = check_lengths(self.lengths or ())
            if len(lengths) > caps.texts:
                raise PlanError(f"{len(lengths)} lengths: {caps.where} runs at most {caps.texts} at once")
            changes["lengths"] = lengths
        else:
            if self.workload not in WORKLOADS:
                raise PlanError(f"unknown workload {self.workload!r}; known: {', '.join(WORKLOADS)}")
            _check_range(self.batch, 1, caps.batch, what=caps.name("batch"))
        strategies = tuple(dict.fromkeys(self.strategies))
        if not strategies:
            raise PlanError("choose at least one strategy")
        for name in strategies:
            if name not in STRATEGY_NAMES:
                raise PlanError(f"unknown strategy {name!r}; known: {', '.join(STRATEGY_NAMES)}")
        changes["strategies"] = strategies
        sizes = self.shapes.batch_sizes
        if sizes[-1] > caps.batch_size:
            raise PlanError(
                f"{caps.name('batch sizes')}: {sizes[-1]} is over {caps.batch_size}, "
                f"the largest batch {caps.where} runs"
            )
        for attr, key in (("max_seq", "max length"), ("pack_seq", "pack length")):
            value = getattr(self.shapes, attr)
            if value is not None:
                _check_range(value, 1, 100_000, what=caps.name(key))
        if self.repeats is not None:
            _check_range(self.repeats, 1, caps.repeats, what=caps.name("repeats"))
        if self.max_seconds is not None and not 0 < self.max_seconds <= caps.max_seconds:
            raise PlanError(f"{caps.name('time limit')} {self.max_seconds:g}: choose more than 0 and at most {caps.max_seconds:g} seconds")
        _check_range(self.warmup, 0, caps.warmup, what=caps.name("warm-up runs"))
        if self.precision not in PRECISIONS:
            raise PlanError(f"{caps.name('precision')} {self.precision!r}: choose one of {', '.join(PRECISIONS)}")
        _check_range(self.jobs, 1, MAX_JOBS, what=caps.name("jobs"))
        if self.calls not in CALLS:
            raise PlanError(f"calls {self.calls!r}: choose one of {', '.join(CALLS)}")
        if self.weights not in WEIGHTS:
            raise PlanError(f"{caps.name('weights')} {self.weights!r}: choose one of {', '.join(WEIGHTS)}")
        if self.calibration not in CALIBRATIONS:
            raise PlanError(f"{caps.name('calibration')} {self.calibration!r}: choose one of {', '.join(CALIBRATIONS)}")
        if not str(self.device or "").strip():
            raise PlanError(f"{caps.name('device')} is empty: name one, e.g. CPU")
        changes["ov_config"] = parse_ov_config(self.ov_config, what=caps.name("ov_config"))
        return replace(self, **changes)

    def input_lengths(self, *, limit: int = MAX_POSITIONS) -> list[int]:
        """The lengths of a ``lengths`` or ``workload`` input (a workload is drawn within
        ``limit``, the model's position limit); texts need the tokenizer (the runner's job)."""
        if self.source == "texts":
            raise PlanError("texts have no lengths before they are tokenized")
        if self.lengths is not None:
            return list(self.lengths)
        max_len = min(self.shapes.max_seq or limit, limit)
        return sample_lengths(self.workload or "", self.batch, seed=self.seed, max_len=max_len)

    def plan_options(self, lengths: Sequence[int], *, limit: int = MAX_POSITIONS) -> dict[str, Any]:
        """``make_plan`` keyword arguments for these lengths: ``shapes`` resolved on them
        (``ShapeSet.resolve``: the default max length is the smallest of 128/256/384/512 that
        fits, raised to the largest bucket of a typed list) within ``limit``, the model's
        position limit (512 for BERT).

        >>> RunSettings(lengths=(12,), shapes=ShapeSet.parse(seq_buckets="32,256")).plan_options([12])["max_seq"]
        256
        >>> RunSettings(lengths=(12,), shapes=ShapeSet.parse(seq_buckets="pow2")).plan_options([12])["seq_buckets"]
        (16, 32, 64, 128)
        """
        options = self.shapes.resolve(lengths, limit=limit, names=self.limits.shape_names).plan_options()
        check_work(self, options)  # before anything compiles: the work caps (end of this module)
        return options


def _check_range(value: object, low: int, high: int, *, what: str) -> int:
    """A whole number in ``low..high``, or a ``PlanError`` that names ``what`` and the range.

    >>> _check_range(3, 1, 8, what="batch")
    3
    >>> _check_range(10000, 1, 256, what="batch")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: batch 10000: choose 1 to 256
    """
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise PlanError(f"{what} {value!r}: choose a whole number from {low} to {high}")
    if not low <= value <= high:
        raise PlanError(f"{what} {value}: choose {low} to {high}")
    return value


def parse_ov_config(value: str | Mapping[str, Any] | None, *, what: str = "ov_config") -> dict[str, Any] | None:
    """OpenVINO properties for ``compile_model``: a JSON object (or its text) of names to
    strings, numbers or booleans; empty is None. Anything else is a one-line ``PlanError``.

    >>> parse_ov_config('{"NUM_STREAMS": 2, "PERFORMANCE_HINT": "THROUGHPUT"}')
    {'NUM_STREAMS': 2, 'PERFORMANCE_HINT': 'THROUGHPUT'}
    >>> parse_ov_config("  "), parse_ov_config({})
    (None, None)
    >>> parse_ov_config("[1, 2]")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: ov_config: not a JSON object of OpenVINO properties, e.g. {"NUM_STREAMS": 2} (got a list)
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    example = 'e.g. {"NUM_STREAMS": 2}'
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise PlanError(f"{what}: not JSON ({str(exc).split(':')[0]}); give an object of OpenVINO properties, {example}") from None
    if not isinstance(value, Mapping):
        raise PlanError(f"{what}: not a JSON object of OpenVINO properties, {example} (got a {type(value).__name__})")
    for key, item in value.items():
        if not isinstance(key, str) or not key.strip():
            raise PlanError(f"{what}: property names must be non-empty strings, {example}")
        if not isinstance(item, (str, int, float, bool)):
            raise PlanError(f"{what}: property {key} must be a string, number or boolean, not {type(item).__name__}")
    return dict(value) or None


def with_config(settings: RunSettings, config: Mapping[str, Any], *, what: str = "config") -> RunSettings:
    """The settings running a deployable configuration (``tune --json``: its shapes, read by
    ``ShapeSet.from_dict``, ``predicted.cost_model`` and ``weights`` where present), which
    replaces the shapes and the weights.

    >>> doc = {"seq_buckets": [16, 64], "batch_sizes": [1, 4], "shapes": [], "predicted": {}}
    >>> s = with_config(RunSettings(lengths=(9, 40)), doc)
    >>> s.shapes.seq_buckets, s.shapes.batch_sizes
    ((16, 64), (1, 4))
    """
    shapes = ShapeSet.from_dict(config, what=what)
    predicted = config.get("predicted") or {}
    if not isinstance(predicted, Mapping):
        raise PlanError(f"{what}: \"predicted\" must be an object as `tune --json` prints it")
    given = settings.shapes  # a max length or pack length given next to the file wins
    shapes = replace(shapes, max_seq=given.max_seq or shapes.max_seq, pack_seq=given.pack_seq or shapes.pack_seq)
    weights = config.get("weights", settings.weights)
    if weights not in WEIGHTS:
        raise PlanError(f"{what}: weights {weights!r}: choose one of {', '.join(WEIGHTS)}")
    ov_config = settings.ov_config or parse_ov_config(config.get("ov_config"), what=f"{what}: ov_config")  # a flag wins
    return replace(settings, shapes=shapes, cost_model=predicted.get("cost_model"), weights=weights, ov_config=ov_config)


# ==== work caps (issue 18): bounded work per page click or CLI run ========================
# Kept apart from the bucket parsing above on purpose: only counts what options would compile.

DEFAULT_MAX_SHAPES = 256
"""The command line's cap on shapes per run when ``Limits.shapes`` says 0."""

PACKING_STRATEGIES = frozenset({"packing", "auto"})
"""Strategies that may compile packed variants next to the plain shapes."""


def shape_cap(settings: RunSettings) -> int:
    """The most shapes ``settings`` may compile and time: ``max_shapes`` (``--max-shapes``), else
    the front end's knob where it is an environment variable (the page's
    ``$SHAPEDEMO_MAX_SHAPES``), else its default.

    >>> shape_cap(RunSettings(lengths=(9,))), shape_cap(RunSettings(lengths=(9,), limits=PAGE_LIMITS))
    (256, 64)
    """
    if settings.max_shapes is not None:
        return _check_range(settings.max_shapes, 1, 1_000_000, what=settings.limits.shapes_knob)
    limits = settings.limits
    if limits.shapes_knob.startswith("$"):
        raw = os.environ.get(limits.shapes_knob[1:], "").strip()
        if raw:
            try:
                return max(1, int(raw))
            except ValueError:
                raise PlanError(f"{limits.shapes_knob[1:]}={raw!r} is not a whole number") from None
    return limits.shapes or DEFAULT_MAX_SHAPES


def count_shapes(options: Mapping[str, Any], strategies: Sequence[str], *, cost_table: str | None = None) -> tuple[int, str]:
    """An upper bound on the shapes a run with these plan options compiles (every bucket and the
    max length at every batch size; twice where a strategy may pack), and how it was counted.

    >>> count_shapes({"seq_buckets": (32, 64), "batch_sizes": (1, 4), "max_seq": 128}, ["buckets"])
    (6, '3 lengths x 2 batch sizes')
    >>> count_shapes({"seq_buckets": (32, 64), "batch_sizes": (1, 4), "max_seq": 64}, ["packing"])
    (8, '2 lengths x 2 batch sizes, plain and packed')
    """
    from shapedemo.planning.edges import powers_of_two
    from shapedemo.planning.strategies import DEFAULT_BATCH_SIZES

    top = options.get("max_seq") or MAX_POSITIONS
    buckets = options.get("seq_buckets")
    seqs = set(powers_of_two(top) if buckets is None else buckets) | {s for s in (top, options.get("pack_seq")) if s}
    sizes = set(options.get("batch_sizes") or DEFAULT_BATCH_SIZES)
    packed = any(name in PACKING_STRATEGIES for name in strategies)
    n = len(seqs) * len(sizes) * (2 if packed else 1)
    how = f"{len(seqs)} lengths x {len(sizes)} batch sizes" + (", plain and packed" if packed else "")
    if cost_table == "measure":
        how += ", each timed for the cost table"
    return n, how


def check_work(settings: RunSettings, options: Mapping[str, Any]) -> None:
    """Refuse, before anything is compiled, a run whose shapes exceed ``shape_cap``: one line
    naming the count, the cap and how to raise it (``serve``'s start-up set is not capped here:
    its memory budget check stays).

    >>> opts = {"seq_buckets": tuple(range(8, 264, 8)), "batch_sizes": tuple(range(1, 65)), "max_seq": 256}
    >>> check_work(RunSettings(lengths=(9,), limits=PAGE_LIMITS), opts)
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: this run would compile up to 4096 shapes (32 lengths x 64 batch sizes, plain and packed); this page runs at most 64 per run (set SHAPEDEMO_MAX_SHAPES to raise it): choose fewer buckets or batch sizes
    """
    n, how = count_shapes(options, settings.strategies, cost_table=settings.cost_table)
    cap = shape_cap(settings)
    if n > cap:
        knob = settings.limits.shapes_knob
        raise_it = f"set {knob[1:]} to raise it" if knob.startswith("$") else f"{knob} N raises it"
        raise PlanError(
            f"this run would compile up to {n} shapes ({how}); {settings.limits.where} runs at most {cap} "
            f"per run ({raise_it}): choose fewer buckets or batch sizes"
        )

# ==== end of work caps ====================================================================
