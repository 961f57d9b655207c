"""Run what a ``RunSettings`` describes, the same way for the page and the command line.

``load`` and ``engine_for`` take models and engines from the process's session
(``shapedemo.session``: bounded, least recently used dropped first), so a shape compiled once is
not compiled again; ``resolve`` turns
the settings into tokens and plan options; ``preview`` plans without running; ``run`` plans,
compiles, warms up and times every strategy (``compare.compare``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from shapedemo import session
from shapedemo.planning.plan import Plan, PlanError
from shapedemo.settings import RunSettings
from shapedemo.planning.strategies import CostModel, make_plan

ProgressFn = Callable[[float, str], None]


def model_spec(settings: RunSettings) -> str:
    from shapedemo.model import default_spec

    return (settings.model or "").strip() or default_spec()


def load(spec: str) -> Any:
    """The loaded model for ``spec`` (built or read from the IR cache once per session)."""
    return session.current().load(spec)


def calibration(settings: RunSettings, base: Any) -> Any:
    """What ``int8`` is calibrated on: ``calibration_file``'s texts where given, else the
    settings' input (texts, lengths or a workload's token ids), laid out as ``calibration``."""
    from shapedemo.model.compress import calibration_for

    if settings.calibration_file is not None:
        from shapedemo.settings import split_texts

        try:
            texts = split_texts(Path(settings.calibration_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise PlanError(f"calibration file {settings.calibration_file}: {exc.__class__.__name__}") from None
        if not texts:
            raise PlanError(f"calibration file {settings.calibration_file} holds no text (one text per line)")
        encoded, source = base.tokenizer.encode(texts, truncate=True), "file texts"
    else:
        encoded = resolve(settings, base).encoded
        source = {"texts": "input texts", "lengths": "lengths (random ids)", "workload": f"{settings.workload} ids"}[settings.source]
    options = replace(settings, shapes=replace(settings.shapes, max_seq=None)).plan_options(encoded.lengths, limit=base.max_length)
    return calibration_for(encoded, shapes=settings.calibration, source=source, **options)


def load_weights(settings: RunSettings) -> Any:
    """The settings' model with the settings' weights (``model.compress``; f32: as loaded),
    compressed once per session and cached on disk beside the f32 IR."""
    from shapedemo.model.compress import compress, weights_key

    spec = model_spec(settings)
    base = load(spec)
    if settings.weights == "f32":
        return base
    cal = calibration(settings, base) if settings.weights == "int8" else None
    return session.current().model((spec, weights_key(settings.weights, cal)), lambda: compress(base, settings.weights, calibration=cal))


def load_served(serve: Any) -> Any:
    """``serve``'s model with its weights: a ``ServeSettings`` (int8 calibrated on its
    ``calibration_file``, padded to its buckets, batch sizes and pack length)."""
    return load_weights(RunSettings(
        lengths=(8,), model=serve.model, weights=serve.weights, calibration=serve.calibration,
        calibration_file=serve.calibration_file, shapes=serve.shapes,
    ).validate())


def reference_settings(settings: RunSettings) -> RunSettings:
    """Where the fidelity reference runs: f32 weights on the CPU, dynamic shapes allowed."""
    return replace(settings, weights="f32", device="CPU", static_only=False, calibration_file=None)


def engine_for(settings: RunSettings) -> Any:
    """The session's engine for the settings' model, weights, device, precision, static-only
    mode and OpenVINO properties (the compiled models of all engines share the session's one
    budget, ``SHAPEDEMO_COMPILED_MB``)."""
    spec = model_spec(settings)
    loaded = load_weights(settings)
    weights = (loaded.weights_info or {}).get("cache_key") or loaded.weights
    return session.current().engine(
        loaded, model_key=(spec, weights), device=settings.device, precision=settings.precision,
        static_only=settings.static_only, ov_config=settings.ov_config,
    )

def device_choices() -> list[tuple[str, str]]:
    """``(label, device name)`` for the page's device dropdown: every device OpenVINO finds here
    with its full name, then AUTO."""
    from shapedemo.runtime.devices import available_devices

    return [(f"{name}: {full}" if full != name else name, name) for name, full in available_devices()]


def engines() -> list[Any]:
    """The engines alive now (for the page's memory report and tests)."""
    return session.current().engines


@dataclass
class Inputs:
    """The settings resolved against a model: tokens, lengths and the plan options."""

    texts: list[str] | None
    encoded: Any
    options: dict[str, Any]

    @property
    def lengths(self) -> list[int]:
        return self.encoded.lengths


def resolve(settings: RunSettings, loaded: Any) -> Inputs:
    """Tokenize texts (or draw token ids for lengths / a workload) within the model's limit and
    work out the plan options (max length, buckets, batch sizes) on the lengths."""
    limit = loaded.max_length
    texts = None
    if settings.texts is not None:
        texts = list(settings.texts)
        encoded = loaded.tokenizer.encode(texts)
    else:
        encoded = loaded.tokenizer.synthetic_ids(settings.input_lengths(limit=limit), seed=settings.seed)
    return Inputs(texts, encoded, settings.plan_options(encoded.lengths, limit=limit))


def make_plans(settings: RunSettings, inputs: Inputs, **extra: Any) -> dict[str, Plan]:
    """Every chosen strategy's plan for the inputs (``extra``: e.g. a cost table)."""
    return {name: make_plan(name, inputs.lengths, **plan_extras(settings, inputs), **extra) for name in settings.strategies}


def plan_extras(settings: RunSettings, inputs: Inputs) -> dict[str, Any]:
    """The plan options plus the settings' cost model (for ``auto``), as ``make_plan`` takes them."""
    options = dict(inputs.options)
    if settings.cost_model is not None:
        options["cost_model"] = CostModel.from_dict(settings.cost_model)
    return options


def preview(settings: RunSettings) -> tuple[dict[str, Plan], Inputs]:
    """Plans only: the model is loaded for its tokenizer, nothing is compiled or run; ``auto``
    is priced by this device's cost table where an earlier run timed it (token slots until then)."""
    loaded = load(model_spec(settings))
    inputs = resolve(settings, loaded)
    extra: dict[str, Any] = {}
    if "auto" in settings.strategies and settings.cost_model is None:
        from shapedemo.runtime.costs import kept_cost_model
        from shapedemo.runtime.errors import EngineError

        try:
            model = kept_cost_model(engine_for(settings), *declared_set(inputs.lengths, inputs.options))
        except (EngineError, PlanError):  # no such device here, bad options: the plans say so
            model = None
        if model is not None:
            extra["cost_model"] = model
    return make_plans(settings, inputs, allow_packing=loaded.packed is not None, **extra), inputs


def read_cost_table(path: str) -> dict[tuple[int, int], float]:
    """A latency table ``{"4x128": ms, ...}`` from a JSON file, keys as ``(batch, seq)``."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return {tuple(int(x) for x in key.lower().split("x")): float(ms) for key, ms in raw.items()}  # type: ignore[misc]
    except (OSError, ValueError, AttributeError) as exc:
        raise PlanError(
            f"cost table {path}: not 'measure' nor a JSON file of {{\"4x128\": ms}} ({exc.__class__.__name__})"
        ) from None


def cost_table(
    settings: RunSettings, engine: Any, inputs: Inputs, *, progress: ProgressFn | None = None
) -> dict[tuple[int, int], float] | None:
    """The settings' cost table: none, measured now on ``engine``, or read from a file."""
    if settings.cost_table is None:
        return None
    if settings.cost_table != "measure":
        return read_cost_table(settings.cost_table)
    from shapedemo.measure.compare import measure_cost_table

    keys = ("seq_buckets", "batch_sizes", "max_seq", "pack_seq")
    return measure_cost_table(engine, inputs.lengths, progress=progress, **{k: inputs.options[k] for k in keys})


def run(settings: RunSettings, *, progress: ProgressFn | None = None) -> tuple[Any, Inputs]:
    """Plan, compile, warm up and time every chosen strategy on the same inputs."""
    from shapedemo.measure.compare import compare

    if progress:
        progress(0.0, "loading the model")
    if progress and settings.weights != "f32":
        progress(0.0, f"building {settings.weights} weights (once, then cached)")
    engine = engine_for(settings)
    inputs = resolve(settings, engine.loaded)
    table = cost_table(settings, engine, inputs, progress=progress)
    extras = plan_extras(settings, inputs)
    if "auto" in settings.strategies and "cost_model" not in extras:
        extras["cost_model"] = measured_pricing(engine, inputs.lengths, inputs.options, progress=progress)
    reference = None if settings.weights == "f32" else engine_for(reference_settings(settings)).reference_engine()
    comparison = compare(
        engine, inputs.encoded, settings.strategies, **extras, cost_table=table,
        repeats=settings.repeats, warmup=settings.warmup, concurrent=settings.calls == "concurrent",
        jobs=settings.jobs, texts=inputs.texts, progress=progress, reference_engine=reference,
        max_seconds=settings.max_seconds if settings.max_seconds is not None else settings.limits.seconds,
        memo=session.current().memo,
    )
    return comparison, inputs


def declared_set(lengths: Any, options: dict[str, Any]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The sequence buckets and batch sizes of ``auto``'s declared set (``declare``) for these
    plan options, resolved on ``lengths`` where a default is left open."""
    from shapedemo.planning.strategies import declare
    from shapedemo.planning.strategies.base import resolve_args
    from shapedemo.shapes import ShapeSet

    args = resolve_args(lengths, **{k: options.get(k) for k in ("seq_buckets", "batch_sizes", "max_seq", "pack_seq")})
    declared = declare("auto", ShapeSet(args.seq_buckets, args.batch_sizes, args.max_seq, args.pack_seq)).shapes()
    return tuple(sorted({s.seq for s in declared})), tuple(sorted({s.batch for s in declared}))


def measured_pricing(
    engine: Any, lengths: Any, options: dict[str, Any], *, progress: ProgressFn | None = None
) -> CostModel:
    """``auto``'s default pricing on ``engine``: the cost table of its declared set (sequence
    buckets x batch sizes, plain and packed) measured on this device, read from beside the blob
    cache when an earlier start timed it (``runtime/costs.py``)."""
    from shapedemo.runtime.costs import measured_cost_model

    def step(fraction: float, text: str) -> None:
        if progress:
            progress(fraction, f"auto's cost table: {text}")

    model, _ = measured_cost_model(engine, *declared_set(lengths, options), progress=step)
    return model


FIT_SHAPES: tuple[tuple[int, int], ...] = ((1, 16), (1, 64), (1, 256), (4, 32), (4, 128), (8, 64), (16, 32))
"""Shapes timed to fit a cost model (``tune --measure``): small to large in both axes."""


FIT_ROUNDS = 5
"""Interleaved rounds over all fit shapes; each shape is priced by its settled figure (the lower
quartile of its round medians: a burst of other load during one shape's turn does not price it
above larger shapes), and the spread of the rounds is the prices' noise."""


def measure_cost_model(engine: Any, *, max_seq: int, progress: ProgressFn | None = None) -> tuple[CostModel, float]:
    """A ``CostModel`` fitted robustly (``measure.stats.robust_lstsq``) to shapes timed on
    ``engine`` (those of ``FIT_SHAPES`` that fit ``max_seq``, and ``(1, max_seq)``), interleaved
    over ``FIT_ROUNDS`` rounds, and the noise of its prices: the median over shapes of the
    relative spread of the lower half of their round medians (``stats.low_spread``)."""
    from shapedemo.measure import stats
    from shapedemo.planning.strategies import fit_cost_model

    shapes = sorted({s for s in FIT_SHAPES if s[1] <= max_seq} | {(1, max_seq)})
    samples: dict[tuple[int, int], list[float]] = {s: [] for s in shapes}
    steps = FIT_ROUNDS * len(shapes)
    for r in range(FIT_ROUNDS):
        for i, shape in enumerate(shapes):
            if progress:
                progress((r * len(shapes) + i) / steps, f"timing {shape[0]} x {shape[1]} (round {r + 1}/{FIT_ROUNDS})")
            samples[shape].append(engine.measure_shape(shape, repeats=3))
    table = {s: stats.settled(xs) for s, xs in samples.items()}
    noise = stats.median([stats.low_spread(xs) for xs in samples.values()])
    return fit_cost_model(table, solver=stats.robust_lstsq), noise


def tune(
    settings: RunSettings, *, budget: int, measure: bool = False, curve: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """``tune``'s deployable configuration for the settings' traffic sample (texts, lengths or a
    workload): ``{"seq_buckets", "batch_sizes", "shapes", "predicted"}`` (+ ``"curve"``, the
    same for every budget 1..8). ``measure`` prices shapes by a cost model fitted to timings on
    the settings' device and reports the chosen shapes' compile time and memory."""
    from shapedemo.planning.strategies.budget import KNEE_RULE, budget_curve, knee_range, tune_shapes

    if settings.texts is not None:
        lengths = load(model_spec(settings)).tokenizer.encode(list(settings.texts)).lengths
    else:
        lengths = settings.input_lengths()
    options: dict[str, Any] = {"max_seq": settings.shapes.max_seq}
    if settings.shapes.seq_buckets is not None:  # buckets given (any spelling): only batch sizes are chosen
        buckets = settings.shapes.resolve(lengths, names=settings.limits.shape_names).seq_buckets
        options["seq_buckets"] = buckets
    noise = 0.0  # the relative uncertainty of measured prices (none for token slots)
    if not measure and settings.cost_model is None:
        # priced by this device's measured cost table once one exists (any start of `compare`
        # or `serve` with auto times one); token slots until then
        from shapedemo.runtime.costs import latest_cost_model

        found = latest_cost_model(engine_for(settings))
        if found is not None:  # static shapes only: tune chooses what a static device compiles
            options["cost_model"] = found[0].static_only()
    if measure:
        engine = engine_for(settings)
        top = settings.shapes.max_seq or settings.plan_options(lengths, limit=engine.loaded.max_length)["max_seq"]
        options["cost_model"], noise = measure_cost_model(engine, max_seq=top, progress=progress)
        options["allow_packing"] = engine.loaded.packed is not None

        def shape_cost(batch: int, seq: int) -> tuple[float, float]:
            entry = engine.compile((batch, seq))
            return entry.compile_s, entry.memory_mb or 0.0

        options["shape_cost"] = shape_cost
    if progress:
        progress(0.9, "choosing shapes")
    config = tune_shapes(lengths, budget=budget, noise=noise, **options)
    config["price_noise"] = noise
    config["weights"] = settings.weights  # serve --config and compare --config run these weights
    if settings.ov_config:
        config["ov_config"] = dict(settings.ov_config)  # compare --config and serve --config compile with them
    if curve:
        config["curve"] = budget_curve(lengths, noise=noise, **options)
        config["knee_range"] = knee_range(config["curve"])
        config["knee_rule"] = KNEE_RULE
    return config
