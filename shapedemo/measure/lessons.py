"""The guided tour: OpenVINO's "When Dynamic Shapes API is Not Applicable", one experiment a step.

The guide's sections in order (padding, padding without the mask, multiple pre-compiled models,
dimension partitioning, combining them), then two steps beyond it (packing, and ``auto`` where
the strategies have it). Each step is a small ``RunSettings`` (the user's texts, native
``dynamic`` next to the step's strategy, few repeats), one figure, one sentence of lesson worked
out from the step's own numbers, and the OpenVINO code of the step's plan. The page's "Guided
tour" tab and ``notebooks/tour.ipynb`` both run these steps. No gradio here.

>>> [s.key for s in STEPS][:5]
['padding', 'mask', 'buckets', 'partition', 'combined']
>>> s = step_settings(step("partition"), texts=TOUR_TEXTS)
>>> s.strategies, s.shapes.batch_sizes, s.precision
(('dynamic', 'partition'), (1, 2, 4, 8), 'f32')
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping, Sequence

from shapedemo import plots, runner

from shapedemo.measure import report, stats
from shapedemo.planning.codegen import plan_code
from shapedemo.planning.plan import Plan, PlanError
from shapedemo.measure.report import count, numbers, speed_words
from shapedemo.measure.wording import decomposition_lines, interval_text
from shapedemo.settings import PAGE_LIMITS, Limits, RunSettings
from shapedemo.shapes import DEFAULT_BATCH_SIZES, ShapeSet
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan

GUIDE_URL = "https://docs.openvino.ai/latest/openvino_docs_OV_UG_NoDynamicShapes.html"
GUIDE = "When Dynamic Shapes API is Not Applicable"

TOUR_TEXTS: tuple[str, ...] = (
    "Hi!",
    "OpenVINO compiles a model for one static shape.",
    "Short one.",
    "An NPU accepts static shapes only, so every input of another length has to be padded, "
    "bucketed, partitioned or packed before it runs.",
    "Padding a twenty-token sentence to a hundred and twenty-eight tokens spends most of the "
    "compute on pad tokens that the attention mask then hides; buckets, partitioning and packing "
    "each win some of that compute back, at a price paid in compiled models, calls or a changed graph.",
)
"""Five texts of 4 to 63 tokens (MiniLM's tokenizer): a batch of 5 is 4 + 1, and the lengths fall
into three buckets (16, 32, 64), so every step has something to show."""

BATCH_SIZES = ",".join(map(str, DEFAULT_BATCH_SIZES))
PRECISION = "f32"
"""The tour runs in f32: masked strategies then differ from one call per sequence by round-off
(~1e-6), and what leaving the mask out does stands out by six orders of magnitude."""
REPEATS: int | None = None
"""Rounds until the ratios' intervals are tight, at most ``TOUR_SECONDS`` of timing a step."""
TOUR_SECONDS = 8.0
WARMUP = 1
ProgressFn = Callable[[float, str], None]


@dataclass(frozen=True)
class Step:
    """One step: what it runs (``runs``: timed, native ``dynamic`` first), what its figure draws
    (``plot`` and, for plan figures, ``drawn``: planned from the same lengths, timed or not),
    which plan's code it shows (``focus``), and its words (``title``, ``guide``, ``intro``)."""

    key: str
    title: str
    guide: str
    intro: str
    runs: tuple[str, ...]
    focus: str
    plot: str
    drawn: tuple[str, ...] = ()
    #: weights modes the step runs one after the other (``settings.WEIGHTS``); empty: the settings'
    weights: tuple[str, ...] = ()


_STEPS: tuple[Step, ...] = (
    Step(
        "padding", "Padding", "the guide: Padding",
        "Compile **one** static shape, big enough for every input, and pad each text up to it; the "
        "attention mask tells the model which tokens are real. One compile, but every pad slot is "
        "computed anyway. The picture: each row of each call, real tokens coloured, pad grey.",
        runs=("dynamic", "padding"), focus="padding", plot="waste", drawn=("dynamic", "padding"),
    ),
    Step(
        "mask", "Padding without the mask", "the guide: Padding (its warning)",
        "The same padded calls with the attention mask left out (all ones). The guide warns that a "
        "model not built to ignore the pad gives scrambled results: here is how much. The picture: "
        "each strategy's distance from running every text alone, unpadded.",
        runs=("dynamic", "padding", "padding-nomask"), focus="padding-nomask", plot="fidelity",
    ),
    Step(
        "buckets", "Multiple pre-compiled models", "the guide: Multiple Pre-compiled Models",
        "Compile **several** sequence lengths (buckets) and send each text to the smallest that "
        "fits: less pad per text, paid for with a compile and the memory of every model. Each "
        "bucket's group is still padded to the batch size. The picture: padding next to buckets.",
        runs=("dynamic", "buckets"), focus="buckets", plot="waste", drawn=("padding", "buckets"),
    ),
    Step(
        "partition", "Dimension partitioning", "the guide: Dimension Partitioning",
        "Compile several **batch sizes** and split the batch into them, 5 = 4 + 1 with 1, 2, 4, 8, "
        "instead of padding it to the largest. More calls, no padding rows. Edit the batch sizes "
        "(say 3,4 or 2) and run again. The picture: the calls each strategy makes.",
        runs=("dynamic", "partition"), focus="partition", plot="chunks", drawn=("padding", "partition"),
    ),
    Step(
        "combined", "Combining them", "the guide: combining the approaches",
        "Buckets for the length, then each bucket's group partitioned into compiled batch sizes: "
        "the least padding any static plan here reaches, for a compiled shape per bucket and batch "
        "size. The picture: buckets, partitioning and both at once.",
        runs=("dynamic", "buckets-partition"), focus="buckets-partition", plot="waste",
        drawn=("buckets", "partition", "buckets-partition"),
    ),
    Step(
        "packing", "Packing", "beyond the guide",
        "Several short texts share **one row**, back to back: a block-diagonal mask keeps them "
        "apart and positions restart for each. Almost no pad, but the graph takes position ids and "
        "a segment mask. The picture: combined buckets next to packed rows.",
        runs=("dynamic", "packing"), focus="packing", plot="waste",
        drawn=("buckets-partition", "packing"),
    ),
    Step(
        "auto", "auto", "beyond the guide",
        "Given the shapes one can afford to compile and a cost model, `auto` chooses the cheapest "
        "layout for each request. The picture: latency of auto, buckets-partition and packing next to native dynamic.",
        runs=("dynamic", "buckets-partition", "packing", "auto"), focus="auto", plot="latency",
    ),
    Step(
        "dynamic", "Native dynamic, taken apart", "beyond the guide",
        "Where does native dynamic's time go? The same rounds also time dynamic at "
        "buckets-partition's call shapes (padded as little as a static plan pads) and a static model "
        "compiled at dynamic's own shape (the same rows, the same pad): the first says what padding "
        "to the longest row costs it, the second what being dynamic costs it. The picture: latency "
        "of both strategies.",
        runs=("dynamic", "buckets-partition"), focus="dynamic", plot="latency",
    ),
    Step(
        "weights", "The weights an NPU runs", "beyond the guide",
        "An NPU computes in FP16, and deployments ship INT8 models (NNCF, as sentence-transformers "
        "and optimum-intel do). The same static plan with **f32**, **f16** and **int8** weights (int8 "
        "calibrated on these texts): how much faster, and how far from f32 weights. The picture: "
        "latency of each, named strategy · weights.",
        runs=("dynamic", "buckets-partition"), focus="buckets-partition", plot="latency",
        weights=("f32", "f16", "int8"),
    ),
)

STEPS: tuple[Step, ...] = tuple(s for s in _STEPS if all(n in STRATEGY_NAMES for n in s.runs))
"""The tour's steps, in order; ``auto`` only where ``shapedemo.planning.strategies`` has it."""


def step(key: str) -> Step:
    """The step named ``key`` (``padding``, ``mask``, ``buckets``, ...), or a one-line ``PlanError``."""
    for s in STEPS:
        if s.key == key:
            return s
    raise PlanError(f"unknown tour step {key!r}; known: {', '.join(s.key for s in STEPS)}")


def step_settings(
    which: Step | str,
    *,
    texts: Sequence[str],
    batch_sizes: str | Sequence[int] = BATCH_SIZES,
    model: str | None = None,
    device: str = "CPU",
    precision: str = PRECISION,
    repeats: int | None = REPEATS,
    limits: Limits = PAGE_LIMITS,
    max_seconds: float = TOUR_SECONDS,
    static_only: bool = False,
) -> RunSettings:
    """The validated settings of one step on ``texts``: its strategies, buckets in powers of
    two, the default max length (the smallest of 128..512 that fits), few repeats."""
    s = step(which) if isinstance(which, str) else which
    return RunSettings(
        texts=tuple(texts), model=model, device=device, static_only=static_only, precision=precision, strategies=s.runs,
        shapes=ShapeSet.parse(seq_buckets="pow2", batch_sizes=batch_sizes, names=limits.shape_names),
        repeats=repeats, warmup=WARMUP, limits=limits, max_seconds=max_seconds,
    ).validate()


@dataclass
class StepResult:
    """A step that ran: the comparison document (``report.document``), every plan it timed or
    drew, its lesson (one Markdown sentence), figure and the OpenVINO code of its plan."""

    step: Step
    data: dict[str, Any]
    plans: dict[str, Plan]
    lesson: str
    figure: Any
    code: str

    @property
    def why(self) -> str | None:
        """The planner's own reason for the step's plan, where it gives one (``auto``)."""
        return self.plans[self.step.focus].params.get("why")

    def result(self, strategy: str) -> dict[str, Any]:
        """The timed result of ``strategy`` (a row of ``data['results']``)."""
        return next(r for r in self.data["results"] if r["strategy"] == strategy)


def run_step(
    which: Step | str, settings: RunSettings, *, progress: ProgressFn | None = None
) -> StepResult:
    """Time the step's strategies (``runner.run``: compiled shapes are kept between steps),
    plan what its figure draws besides, and word the lesson from these numbers."""
    s = step(which) if isinstance(which, str) else which
    if s.weights:
        return _run_weights_step(s, settings, progress=progress)
    comparison, inputs = runner.run(settings, progress=progress)
    data = report.document(comparison)
    plans = dict(comparison.plans)
    for name in s.drawn:
        if name not in plans:
            plans[name] = make_plan(name, inputs.lengths, **inputs.options)
    return StepResult(
        step=s,
        data=data,
        plans=plans,
        lesson=lesson(s, data, plans),
        figure=figure(s, data, plans),
        code=plan_code(plans[s.focus], device=settings.device),
    )


def weights_rows(docs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The results of the weights step's documents (by mode, the first the reference) as one
    chart's rows: the first mode's as they are, every other's named ``strategy · mode`` and
    without an interval, which is to that mode's own native dynamic while the chart's ratios
    are to the first mode's (a row would read "0.36x [1.00-1.00] same").

    >>> rows = weights_rows({"f32": {"results": [{"strategy": "dynamic", "ratio_interval": [1, 1], "verdict": "same"}]},
    ...                      "int8": {"results": [{"strategy": "dynamic", "ratio_interval": [1, 1], "verdict": "same"}]}})
    >>> [(r["strategy"], "ratio_interval" in r, "verdict" in r) for r in rows]
    [('dynamic', True, True), ('dynamic · int8', False, False)]
    """
    first = next(iter(docs))
    return [
        dict(r) if mode == first
        else {**{k: v for k, v in r.items() if k not in ("ratio_interval", "verdict")}, "strategy": f"{r['strategy']} · {mode}"}
        for mode, doc in docs.items() for r in doc["results"]
    ]


def _run_weights_step(s: Step, settings: RunSettings, *, progress: ProgressFn | None) -> StepResult:
    """The step once per weights mode; one document whose results are f32's rows, then every
    other mode's rows named ``strategy · mode``; ``by_weights`` keeps each mode's document."""
    docs: dict[str, dict[str, Any]] = {}
    plans: dict[str, Plan] = {}
    for i, mode in enumerate(s.weights):
        def step_progress(frac: float, what: str, i: int = i, mode: str = mode) -> None:
            if progress:
                progress((i + frac) / len(s.weights), f"{mode} weights: {what}")

        comparison, _ = runner.run(replace(settings, weights=mode), progress=step_progress)
        docs[mode] = report.document(comparison)
        plans = plans or dict(comparison.plans)
    data = dict(docs[s.weights[0]])
    data["results"] = weights_rows(docs)
    data["by_weights"] = docs
    return StepResult(
        step=s, data=data, plans=plans, lesson=lesson(s, data, plans), figure=figure(s, data, plans),
        code=plan_code(plans[s.focus], device=settings.device),
    )


def figure(s: Step, data: Mapping[str, Any], plans: Mapping[str, Plan]) -> Any:
    """The step's one picture, drawn by the ``plots`` functions the dashboard uses."""
    if s.plot == "waste":
        return plots.padding_waste_figure([plans[n] for n in s.drawn])
    if s.plot == "chunks":
        return plots.chunk_decomposition_figure([plans[n] for n in s.drawn])
    if s.plot == "fidelity":
        return plots.fidelity_figure(list(data["results"]), precision=data["precision"])
    return plots.latency_figure(list(data["results"]))


# ------------------------------------------------------------------------------ lessons
def _results(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {r["strategy"]: r for r in data["results"]}


def median(result: Mapping[str, Any]) -> float | None:
    """The result's median latency (ms), or None where it did not run."""
    if not result.get("supported", True):
        return None
    return (result.get("latency_ms") or {}).get("median")


def vs_dynamic(data: Mapping[str, Any], strategy: str) -> str:
    """``2.43x slower than native dynamic (550.0 vs 226.4 ms, ratio 2.43, interval [2.30-2.60])``:
    the measured medians' ratio in ``report.speed_words`` wording, decided by its interval where
    the run has one worth the name (``_ratio_words``); where either did not run, says so.

    >>> data = {"results": [{"strategy": "dynamic", "latency_ms": {"median": 2.0}},
    ...                     {"strategy": "padding", "latency_ms": {"median": 1.0}, "ratio_interval": [0.4, 0.6]}]}
    >>> vs_dynamic(data, "padding")
    '**2.00x faster than** native dynamic (1.0 vs 2.0 ms, ratio 0.50, interval [0.40-0.60])'
    >>> vs_dynamic({**data, "noise": {"rounds": 1}}, "padding")
    '**2.00x faster than** native dynamic (1.0 vs 2.0 ms, 1 round: too few for an interval)'
    """
    results = _results(data)
    mine, base = median(results[strategy]), median(results.get("dynamic", {}))
    if mine is None or base is None or base <= 0:
        why = results[strategy].get("reason") or results.get("dynamic", {}).get("reason") or "not run here"
        return f"could not be timed against native dynamic ({why})"
    words, shown = _ratio_words(data, mine / base, results[strategy].get("ratio_interval"))
    return f"**{words}** native dynamic ({mine:.1f} vs {base:.1f} ms{shown})"


def vs_rival(data: Mapping[str, Any], strategy: str, rival: str, *, about: str = "") -> str:
    """``strategy`` against ``rival`` as :func:`vs_dynamic` words it: their medians' ratio, decided
    by its interval (a paired bootstrap over the rounds both were timed in) where the run has one;
    ``about``: what the rival is, in the parenthesis before the figures.

    >>> row = lambda name, ms: {"strategy": name, "latency_ms": {"median": sorted(ms)[1], "samples": ms}}
    >>> vs_rival({"results": [row("auto", [8.0, 8.2, 7.9]), row("packing", [10.0, 10.3, 9.9])]}, "auto", "packing")
    '**1.25x faster than** `packing` (8.0 vs 10.0 ms, ratio 0.80, interval [0.80-0.80])'
    """
    results = _results(data)
    mine, theirs = results[strategy]["latency_ms"], results[rival]["latency_ms"]
    samples = mine.get("samples"), theirs.get("samples")
    interval = stats.ratio_interval(*samples) if all(samples) else None
    words, shown = _ratio_words(data, mine["median"] / theirs["median"], interval)
    return f"**{words}** `{rival}` ({about + ': ' if about else ''}{mine['median']:.1f} vs {theirs['median']:.1f} ms{shown})"


def _ratio_words(data: Mapping[str, Any], ratio: float, interval: Sequence[float] | None) -> tuple[str, str]:
    """The speed words of a time ratio (mine / theirs) and the clause that backs them: the ratio
    itself next to its interval (``1.42x faster`` is a ratio of 0.70: the interval is the
    ratio's, so it holds the ratio), or, where the run timed fewer than ``stats.FLOOR_ROUNDS``
    rounds, that there is no interval (one round's is a point: it would decide "faster" alone).

    >>> _ratio_words({}, 0.7, (0.65, 0.75))
    ('1.43x faster than', ', ratio 0.70, interval [0.65-0.75]')
    >>> _ratio_words({"noise": {"rounds": 2}}, 0.7, (0.7, 0.7))
    ('1.43x faster than', ', 2 rounds: too few for an interval')
    """
    rounds = (data.get("noise") or {}).get("rounds")
    if not interval or (rounds is not None and rounds < stats.FLOOR_ROUNDS):
        return speed_words(ratio), "" if not interval else f", {count(rounds, 'round')}: too few for an interval"
    return speed_words(ratio, interval), f", ratio {ratio:.2f}, interval {interval_text(interval)}"


def blowup(plan: Plan) -> float:
    """Computed token slots per real token (1.0 = no padding at all).

    >>> from shapedemo.planning.strategies import make_plan
    >>> round(blowup(make_plan("padding", [12, 40, 7, 30, 9], batch_sizes=[8], max_seq=128)), 2)
    10.45
    """
    return plan.computed_tokens / max(plan.real_tokens, 1)


def _pad_rows(plan: Plan) -> int:
    return sum(c.padding_rows for c in plan.calls)


def _shape(plan: Plan) -> str:
    return report.shape_words(plan.compiled_shapes or plan.call_shapes)


def _lesson_padding(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    pad, dyn = plans["padding"], plans["dynamic"]
    return (
        f"Padding to {_shape(pad)} computed **{blowup(pad):.1f}x the real tokens** ({pad.computed_tokens} "
        f"slots for {pad.real_tokens}; native dynamic, padded only to the longest text, {blowup(dyn):.1f}x) "
        f"and was {vs_dynamic(data, 'padding')}{_overhead_clause(data)}."
    )


def _overhead_clause(data: Mapping[str, Any]) -> str:
    """``, and native dynamic itself ran as fast as ... a static model at its own 5x63 shape``:
    what being dynamic cost in this run (empty where it was not measured)."""
    d = data.get("decomposition")
    if not d:
        return ""
    b, s = d["dynamic_call_shape"]
    over, (lo, hi) = d["dynamic_overhead"], d["dynamic_overhead_interval"]
    words, shown = _ratio_words(data, 1 + over, (1 + lo, 1 + hi))
    return (
        f"; native dynamic itself was {words} a static model compiled at its own "
        f"{b}x{s} shape ({d['dynamic_device_ms']['median']:.1f} vs {d['static_at_dynamic_shape_device_ms']['median']:.1f} ms "
        f"of device time{shown})"
    )


def _lesson_dynamic(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    words = decomposition_lines(data)
    if not words:
        return f"Native dynamic did not run on {data['device']} here, so its time cannot be taken apart."
    return words.removeprefix("- ")


def _lesson_mask(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    results = _results(data)
    bad, good = results["padding-nomask"]["fidelity"], results["padding"]["fidelity"]
    return (
        f"Without the mask the outputs moved by up to **{bad['max_abs_diff']:.2f}** (min cosine "
        f"{bad['min_cosine']:.3f}) from running each text alone; with it, padding stays within "
        f"**{good['max_abs_diff']:.1e}** ({data['precision']} round-off): the mask is what makes padding correct."
    )


def _lesson_buckets(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    b, pad = plans["buckets"], plans["padding"]
    used = sorted({c.seq for c in b.calls})
    rows = _pad_rows(b)
    compile_s = _results(data)["buckets"].get("compile_s") or 0.0
    tail = (
        f"; {count(rows, 'padding row')} remain, as each bucket's group is padded to {b.calls[0].batch} rows"
        if rows else ""
    )
    return (
        f"Buckets {numbers(used)} ({count(len(b.compiled_shapes), 'compiled model')}, {compile_s:.1f} s to "
        f"compile) computed **{blowup(b):.1f}x the real tokens** against padding's {blowup(pad):.1f}x and "
        f"were {vs_dynamic(data, 'buckets')}{tail}."
    )


def _lesson_partition(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    part, pad = plans["partition"], plans["padding"]
    sizes = part.params.get("batch_sizes") or []
    chunks = " + ".join(str(c.batch) for c in part.calls)
    rows = _pad_rows(part)
    pad_rows = _pad_rows(pad)
    return (
        f"With batch sizes {numbers(sizes)} the {count(len(part.lengths), 'text')} ran as **{chunks}**: "
        f"{count(part.num_calls, 'call')}, {count(rows, 'padding row') if rows else 'no padding row'} (padding: "
        f"{count(pad.num_calls, 'call')} of {pad.calls[0].batch} rows, {pad_rows} of them pad), and "
        f"partitioning was {vs_dynamic(data, 'partition')}."
    )


def _lesson_combined(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    both, b, part = plans["buckets-partition"], plans["buckets"], plans["partition"]
    return (
        f"Buckets and partitioning together computed **{blowup(both):.1f}x the real tokens** (buckets "
        f"alone {blowup(b):.1f}x, partitioning alone {blowup(part):.1f}x) in {report.calls_and_shapes(both)}, "
        f"and were {vs_dynamic(data, 'buckets-partition')}."
    )


def _lesson_packing(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    pack, both = plans["packing"], plans["buckets-partition"]
    rows = sum(c.batch - c.padding_rows for c in pack.calls)
    return (
        f"Packing put {count(len(pack.lengths), 'text')} into {count(rows, 'row')} of "
        f"{pack.params.get('pack_seq', pack.calls[0].seq)} tokens ({count(pack.num_calls, 'call')}): "
        f"**{blowup(pack):.1f}x the real tokens** against {blowup(both):.1f}x for buckets and "
        f"partitioning, and was {vs_dynamic(data, 'packing')}."
    )


def _lesson_auto(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    plan = plans["auto"]
    results = _results(data)
    others = [n for n in ("buckets-partition", "packing") if n in results and median(results[n]) is not None]
    mine = median(results["auto"])
    rivals = ""
    if others and mine is not None:
        best = min(others, key=lambda n: median(results[n]))
        rivals = f", and {vs_rival(data, 'auto', best, about='the faster of the two fixed static plans timed here')}"
    return (
        f"`auto` chose {report.calls_and_shapes(plan)}: **{blowup(plan):.1f}x the real tokens**, "
        f"{vs_dynamic(data, 'auto')}{rivals}."
    )


def _lesson_weights(data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    docs = data["by_weights"]
    base_mode, *others = list(docs)
    focus = "buckets-partition"
    base = median(_results(docs[base_mode])[focus])
    parts = []
    for mode in others:
        doc = docs[mode]
        row = _results(doc)[focus]
        mine, fid = median(row), row.get("fidelity") or {}
        speed = speed_words(mine / base) if mine and base else "not timed against"
        recall = fid.get("recall_at_10")
        parts.append(
            f"**{mode}** ({doc['weights'].get('weights_mb', 0):.0f} MiB of weights) ran `{focus}` {speed} {base_mode}, "
            f"min cosine {fid.get('min_cosine', 0):.4f}" + (f", nearest-neighbour recall {recall:.2f}" if recall is not None else "")
        )
    return (
        f"At {data['precision']} inference, against {base_mode} weights "
        f"({docs[base_mode]['weights'].get('weights_mb', 0):.0f} MiB) running each text alone: " + "; ".join(parts)
        + ". Each mode was timed in its own run, one after the other, so the speed ratios carry this "
        "machine's drift; `benchmarks/weights.py` interleaves them."
    )


LESSONS: dict[str, Callable[[Mapping[str, Any], Mapping[str, Plan]], str]] = {
    "padding": _lesson_padding,
    "mask": _lesson_mask,
    "buckets": _lesson_buckets,
    "partition": _lesson_partition,
    "combined": _lesson_combined,
    "packing": _lesson_packing,
    "auto": _lesson_auto,
    "dynamic": _lesson_dynamic,
    "weights": _lesson_weights,
}


def lesson(s: Step, data: Mapping[str, Any], plans: Mapping[str, Plan]) -> str:
    """The step's one sentence (Markdown), from its comparison document and plans only."""
    return LESSONS[s.key](data, plans)


def heading(s: Step) -> str:
    """``3. Multiple pre-compiled models`` (numbered in tour order)."""
    return f"{STEPS.index(s) + 1}. {s.title}"
