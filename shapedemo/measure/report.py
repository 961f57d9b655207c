"""Words and tables from results: one wording for the page, the command line and the charts.

Pure: it reads the comparison document (``document(comparison)``: the CLI's ``--json`` and the
page's JSON download are this same dict) and returns text, rows and payloads. The ratio to native
dynamic is worded by one rule (``speed``), so the summary, the chart labels and the table never
disagree about what "as fast" means.

Where a ratio comes with its interval (a paired bootstrap over the run's rounds, ``measure.stats``),
the interval decides the words: "faster" or "slower" only when all of it says so, else "as fast
as, within this machine's noise (±x%)".

>>> ratio_text(2.0), ratio_text(0.8), ratio_text(1.003)
('2.00x slower', '0.80x = 1.25x faster', '1.00x')
>>> speed_words(1.03), speed_words(0.5), speed_words(1.004)
('1.03x slower than', '2.00x faster than', 'as fast as')
>>> speed_words(1.03, (0.97, 1.08)), speed_words(1.03, (1.01, 1.05))
("as fast as, within this machine's noise (±6%),", '1.03x slower than')
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from shapedemo.measure import stats
from shapedemo.measure.wording import (  # the page, the tour and the charts word ratios by these
    HONEST_NOTE, _median, _plain, _ran, baseline_median, count, decomposition_lines, fastest_line, finding,
    numbers, padding_notes, ratio_text, rounds_words, speed, speed_words,
)
from shapedemo.planning.plan import Plan
from shapedemo.planning.strategies import DESCRIPTIONS

ROUNDOFF: dict[str, dict[str, float]] = {
    "f32": {"max_abs_diff": 1e-4, "min_cosine": 1 - 1e-6},
    "f16": {"max_abs_diff": 8e-2, "min_cosine": 1 - 1e-3},
    "bf16": {"max_abs_diff": 8e-2, "min_cosine": 1 - 1e-3},
}
"""Differences from the reference still read as round-off, per precision run: the line the
fidelity chart draws and the threshold the results quote (one table for both). f32: masked
strategies measure ~3e-6 on MiniLM; bf16 (8 mantissa bits): batching alone moved MiniLM's hidden
states by up to 1.6e-2 and masked strategies by 1.3e-2, so 8e-2 leaves room for deeper models;
leaving the mask out moves them by ~2. Each comparison also measures batching alone
(``batching_fidelity``), the floor on the machine at hand."""


def calls_and_shapes(plan: Plan) -> str:
    """``2 calls on 2 compiled shapes (4x128, 1x128)`` or ``1 call on the dynamic model``."""
    calls = count(plan.num_calls, "call")
    if plan.dynamic:
        return f"{calls} on the dynamic model"
    shapes = plan.compiled_shapes
    listed = ", ".join(f"{b}x{s}" for b, s in shapes[:4]) + (", …" if len(shapes) > 4 else "")
    return f"{calls} on {count(len(shapes), 'compiled shape')} ({listed})"


# ------------------------------------------------------------------------------ documents
def document(comparison: Any) -> dict[str, Any]:
    """The comparison as one JSON-ready dict: ``to_dict()`` plus every plan's calls. The CLI's
    ``--json`` and the page's download are this document."""
    data = comparison.to_dict()
    data["plans"] = {name: plan.to_dict() for name, plan in comparison.plans.items()}
    return data


def _fidelity(result: Mapping[str, Any], key: str) -> float | None:
    value = (result.get("fidelity") or {}).get(key)
    return None if value is None else float(value)


@dataclass(frozen=True)
class Column:
    """One column of the results table: the page's header and cell, the terminal's header,
    width and text. The page, the CSV and the CLI all read ``COLUMNS``."""

    header: str
    short: str
    width: int
    cell: Callable[[Mapping[str, Any]], Any]
    text: Callable[[Any], str] = str


def _fmt(spec: str) -> Callable[[Any], str]:
    return lambda v: "-" if v is None else format(v, spec)


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)


COLUMNS: tuple[Column, ...] = (
    Column("strategy", "strategy", -18, lambda r: r["strategy"]),
    Column("calls", "calls", 5, lambda r: r["num_calls"]),
    Column(
        "compiled shapes", "shapes", 7,
        lambda r: "dynamic" if r.get("dynamic") else len(r["compiled_shapes"]),
        lambda v: "dyn" if v == "dynamic" else str(v),
    ),
    Column("padding fraction", "padding", 8, lambda r: round(r["padding_fraction"], 3), _fmt(".1%")),
    Column("computed tokens", "tokens", 7, lambda r: r["computed_tokens"]),
    Column("median ms", "median ms", 10, lambda r: _rounded(_median(r), 2), _fmt(".2f")),
    Column(
        "p90 ms", "p90 ms", 8,
        lambda r: _rounded((r.get("latency_ms") or {}).get("p90"), 2) if _ran(r) else None, _fmt(".2f"),
    ),
    Column("x dynamic", "x dynamic", 9, lambda r: _rounded(r.get("ratio_to_dynamic"), 2), _fmt(".2f")),
    Column(
        "x dynamic interval", "interval", 11,
        lambda r: None if not r.get("ratio_interval") else f"{r['ratio_interval'][0]:.2f}-{r['ratio_interval'][1]:.2f}",
        lambda v: "-" if v is None else v,
    ),
    Column("compile s", "compile s", 9, lambda r: _rounded(r.get("compile_s"), 3), _fmt(".3f")),
    Column("memory MiB", "MiB", 6, lambda r: _rounded(r.get("memory_mb"), 1), _fmt(".0f")),
    Column(
        "max abs diff", "max|diff|", 10,
        lambda r: None if _fidelity(r, "max_abs_diff") is None else float(f"{_fidelity(r, 'max_abs_diff'):.3g}"),
        _fmt(".2e"),
    ),
    Column("min cosine", "min cos", 8, lambda r: _rounded(_fidelity(r, "min_cosine"), 5), _fmt(".5f")),
    Column("recall@10", "recall@10", 9, lambda r: _rounded(_fidelity(r, "recall_at_10"), 3), _fmt(".3f")),
)
TABLE_HEADERS: list[str] = [c.header for c in COLUMNS]


def table_rows(data: Mapping[str, Any]) -> list[list[Any]]:
    """One row per strategy, the cells of ``COLUMNS`` (numbers, rounded for reading)."""
    return [[c.cell(r) for c in COLUMNS] for r in data["results"]]


def csv_text(data: Mapping[str, Any]) -> str:
    """The results table as CSV, headers first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(TABLE_HEADERS)
    writer.writerows(table_rows(data))
    return out.getvalue()


def headline(data: Mapping[str, Any]) -> str:
    """``model M on CPU (f32), 5 sequences, 87 real tokens``."""
    mode = ", static-only mode" if data.get("static_only") else ""
    mode += _weights_words(data)
    return (
        f"model {data['model']} on {data['device']} ({data['precision']}{mode}), "
        f"{data['num_sequences']} sequences, {sum(data['lengths'])} real tokens"
    )


def format_table(data: Mapping[str, Any]) -> str:
    """The comparison as a terminal table (the same columns as the page's, shorter names)."""
    def pad(text: str, width: int) -> str:
        return f"{text:<{-width}}" if width < 0 else f"{text:>{width}}"

    head = " ".join(pad(c.short, c.width) for c in COLUMNS)
    lines = [headline(data), head, "-" * len(head)]
    for row in table_rows(data):
        lines.append(" ".join(pad(c.text(v), c.width) for c, v in zip(COLUMNS, row)))
    for r in data["results"]:
        if not r.get("supported", True):
            lines.append(f"{r['strategy']}: not run: {r.get('reason', 'not supported here')}")
    base_ms, base_device = baseline_median(data)
    if base_ms is not None and base_device is not None:
        lines.append(f"x dynamic: against native dynamic measured on {base_device}, median {base_ms:.2f} ms")
    lines += [f"{r['strategy']}: priced by {r['params']['pricing']}" for r in data["results"] if r.get("params", {}).get("pricing")]
    if any(r.get("ratio_interval") for r in data["results"]):
        lines.append(f"interval: {stats.LEVEL:.0%} bootstrap interval of x dynamic over the interleaved rounds")
    lines += [f"padding: {note}" for note in padding_notes(data)]
    said = rounds_words(data)
    if said:
        lines.append(said)
    lines += [_plain(line) for line in (fastest_line(data), decomposition_lines(data)) if line]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ words
def summarize(data: Mapping[str, Any]) -> str:
    """The findings in plain words (Markdown), from the measured numbers only."""
    results = {r["strategy"]: r for r in data["results"]}
    lines = [
        f"**{count(len(data['lengths']), 'sequence')}, {count(sum(data['lengths']), 'real token')}** on "
        f"`{data['model']}`, {data['device']} ({data['precision']}{_weights_words(data)}); {data.get('wall_s', 0.0):.1f} s in all.",
        "",
    ]
    for r in data["results"]:
        predicted = r.get("params", {}).get("predicted_latency_ms")
        if predicted is not None and _ran(r):
            lines.append(
                f"- `{r['strategy']}` split chosen by measured latency: predicted {predicted:.1f} ms, "
                f"measured {_median(r):.1f} ms."
            )
    for r in data["results"]:
        if r.get("params", {}).get("pricing") and _ran(r):
            lines.append(f"- `{r['strategy']}` priced by {r['params']['pricing']}.")
    dyn = results.get("dynamic")
    dyn_ms, dyn_device = baseline_median(data)
    refused = [r for r in data["results"] if not r.get("supported", True)]
    for r in refused:
        lines.append(f"- `{r['strategy']}` did not run on {data['device']}: {r.get('reason', 'not supported there')}.")
    where = "" if dyn_device is None else f" on the {dyn_device} (the reference device)"
    if refused and dyn_ms and where:
        lines.append(f"- Native dynamic shapes, measured{where} as the baseline: {dyn_ms:.1f} ms median.")
    noise = rounds_words(data)
    if noise:
        lines.append(f"- {noise[0].upper()}{noise[1:]}")
    fastest = fastest_line(data)
    if fastest:
        lines.append(fastest)
    decomposition = decomposition_lines(data)
    if decomposition:
        lines.append(decomposition)
    elif dyn and _ran(dyn):
        lines.append(
            f"- Native `dynamic` pads each row to the longest sequence: **{dyn['padding_fraction']:.0%}** of its tokens are pad."
        )
    if "padding" in results:
        p = results["padding"]
        lines.append(
            f"- `padding` spends **{p['padding_fraction']:.0%}** of its computed tokens on pad "
            f"({p['computed_tokens']} slots for {p['real_tokens']} real tokens)."
        )
    lines += [f"- `{note.split(' ', 1)[0]}` {note.split(' ', 1)[1]}." for note in padding_notes(data)]
    nomask = results.get("padding-nomask")
    if nomask and _fidelity(nomask, "max_abs_diff") is not None:
        lines.append(
            f"- Without the mask, outputs move by up to **{_fidelity(nomask, 'max_abs_diff'):.2f}** "
            f"(min cosine {_fidelity(nomask, 'min_cosine'):.3f}): the pad leaks into every sequence."
        )
    # the reference compared with itself proves nothing: only the other masked strategies count
    masked = [
        r for r in data["results"]
        if r["strategy"] not in ("padding-nomask", "dynamic-single") and _fidelity(r, "max_abs_diff") is not None
    ]
    if masked:
        worst = max(masked, key=lambda r: _fidelity(r, "max_abs_diff") or 0.0)
        diff = _fidelity(worst, "max_abs_diff") or 0.0
        how = "exactly (0 difference)" if diff == 0 else f"within **{diff:.1e}**"
        roundoff = (data.get("roundoff") or {}).get("max_abs_diff")
        bound = f"; round-off at {data['precision']} is up to {roundoff:.0e}" if roundoff else ""
        weights = (data.get("weights") or {}).get("mode", "f32")
        if weights != "f32":
            lines.append(weights_finding(data, masked))
        else:
            lines.append(f"- Every masked strategy matches one-call-per-sequence {how} ({data['precision']}{bound}).")
    lines += ["", finding(data)]
    return "\n".join(lines)


def _weights_words(data: Mapping[str, Any]) -> str:
    """``, int8 weights`` where the run's weights are not f32, else nothing."""
    weights = (data.get("weights") or {}).get("mode", "f32")
    return f", {weights} weights" if weights != "f32" else ""


def weights_finding(data: Mapping[str, Any], masked: Sequence[Mapping[str, Any]]) -> str:
    """What the weights mode cost in fidelity: worst min cosine and recall@10 of the masked
    strategies against f32 weights' one-call-per-sequence, and the weights' size.

    >>> rows = [{"fidelity": {"max_abs_diff": 0.7, "min_cosine": 0.989, "recall_at_10": 0.958}}]
    >>> weights_finding({"precision": "f32", "weights": {"mode": "int8", "weights_mb": 21.9,
    ...     "calibration": {"texts": 62, "source": "input texts", "shapes": "exact"}}}, rows)
    '- **int8** weights (21.9 MiB; calibrated on 62 input texts, exact shapes) against f32 weights, one call per sequence: min cosine **0.989**, recall@10 **0.958** (worst masked strategy, at f32).'
    """
    info = data.get("weights") or {}
    cal = info.get("calibration")
    how = f"; calibrated on {cal['texts']} {cal['source']}, {cal['shapes']} shapes" if cal else ""
    cos = min(_fidelity(r, "min_cosine") or 0.0 for r in masked)
    recalls = [_fidelity(r, "recall_at_10") for r in masked if _fidelity(r, "recall_at_10") is not None]
    recall = f", recall@10 **{min(recalls):.3f}**" if recalls else ""
    return (
        f"- **{info.get('mode')}** weights ({info.get('weights_mb', 0):.1f} MiB{how}) against f32 weights, one call "
        f"per sequence: min cosine **{cos:.3f}**{recall} (worst masked strategy, at {data['precision']})."
    )


def plans_summary(plans: Sequence[Plan], *, lengths: Sequence[int], options: Mapping[str, Any]) -> str:
    """What the plans will do, before anything runs (Markdown)."""
    lines = [
        f"**Plans for {count(len(lengths), 'sequence')}, {count(sum(lengths), 'real token')}** (nothing has run yet): "
        f"sequence buckets {numbers(options['seq_buckets'])}, batch sizes {numbers(options['batch_sizes'])}, "
        f"max length {options['max_seq']}.",
        "",
    ]
    lines += [f"- `{p.strategy}`: {calls_and_shapes(p)}, **{p.padding_fraction:.0%}** padding" for p in plans]
    lines += ["", "Press **Compare** to compile and time them."]
    for p in plans:
        pricing = p.params.get("pricing")
        if pricing and p.params.get("cost_unit") != "ms":
            lines.append(
                f"`{p.strategy}` is priced here by {pricing}: **Compare** first times this device's calls "
                "(once, then kept) and prices by them, so its plan may change."
            )
        elif pricing:
            lines.append(f"`{p.strategy}` is priced by {pricing}.")
    return "\n".join(lines)


def explain_plan(plan: Plan) -> str:
    """A strategy and its plan in words, above the OpenVINO code that reproduces it."""
    shapes = ", ".join(f"{b}x{s}" for b, s in plan.compiled_shapes) or "one dynamic model"
    why = plan.params.get("why")
    return (
        f"### `{plan.strategy}`\n{DESCRIPTIONS.get(plan.strategy, '')}\n\n"
        f"This plan: **{count(plan.num_calls, 'call')}**, compiled shapes **{shapes}**, "
        f"**{plan.padding_fraction:.0%}** padding. The code below compiles exactly these shapes and runs these calls."
        + (f"\n\nWhy this plan: {why}" if why else "")
    )


def format_plan(plan: Plan) -> str:
    """A plan as a few readable lines: parameters, one line per call, totals.

    >>> from shapedemo.planning.strategies import make_plan
    >>> print(format_plan(make_plan("partition", [12, 40, 7], batch_sizes=[2], max_seq=64)))
    plan: partition  (batch_sizes=2 max_seq=64 chunks=2,2 objective=padding)
    call 1: 2 x 64  rows: [0] [1]
    call 2: 2 x 64  rows: [2] [pad]
    tokens: 59 real of 256 computed, padding 77.0%
    calls: 2, compiled shapes: 2 x 64
    """
    shown = {k: v for k, v in plan.params.items() if k != "shape_set"}
    params = " ".join(f"{k}={compact(v)}" for k, v in shown.items())
    lines = [f"plan: {plan.strategy}  ({params})"]
    for i, call in enumerate(plan.calls, 1):
        rows = " ".join(
            "[" + ("+".join(str(s.seq) for s in row) if row else "pad") + "]" for row in call.rows
        )
        lines.append(f"call {i}: {call.batch} x {call.seq}  rows: {rows}")
    lines.append(
        f"tokens: {plan.real_tokens} real of {plan.computed_tokens} computed, "
        f"padding {plan.padding_fraction:.1%}"
    )
    if plan.dynamic:
        shapes = "none (dynamic); call shapes " + shape_words(plan.call_shapes)
    else:
        shapes = shape_words(plan.compiled_shapes)
    lines.append(f"calls: {plan.num_calls}, compiled shapes: {shapes}")
    return "\n".join(lines)


def compact(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def shape_words(shapes: Sequence[tuple[int, int]]) -> str:
    """``4 x 128, 1 x 128``."""
    return ", ".join(f"{b} x {s}" for b, s in shapes)


def format_config(config: Mapping[str, Any]) -> str:
    """``tune``'s configuration in a few lines: shapes, predicted padding and latency, costs.

    >>> print(format_config({"seq_buckets": [16, 64], "batch_sizes": [1, 4], "shapes": [[1, 16], [4, 16], [1, 64], [4, 64]],
    ...     "predicted": {"padding_fraction": 0.25, "latency_ms_per_batch_size": {1: 4.85, 8: 10.76},
    ...                   "cost_unit": "ms", "compile_s": None, "memory_mb": None}}))
    4 compiled shapes: 1x16, 4x16, 1x64, 4x64 (sequence buckets 16, 64; batch sizes 1, 4)
    predicted padding 25.0%; per request: 1 text 4.85 ms, 8 texts 10.76 ms
    """
    predicted = config["predicted"]
    shapes = ", ".join(f"{b}x{s}" for b, s in config["shapes"])
    lines = [
        f"{count(len(config['shapes']), 'compiled shape')}: {shapes} (sequence buckets "
        f"{numbers(config['seq_buckets'])}; batch sizes {numbers(config['batch_sizes'])})"
    ]
    per_request = predicted.get("latency_ms_per_batch_size") or {}
    timed = [f"{count(int(r), 'text')} {ms:.2f} ms" for r, ms in per_request.items() if ms is not None]
    latency = "; per request: " + ", ".join(timed) if timed else f" (cost in {predicted.get('cost_unit', 'token slots')})"
    lines.append(f"predicted padding {predicted['padding_fraction']:.1%}{latency}")
    if predicted.get("compile_s") is not None:
        lines.append(f"compile {predicted['compile_s']:.1f} s, process memory added {predicted['memory_mb']:.0f} MiB")
    if config.get("weights", "f32") != "f32":
        lines.append(f"weights {config['weights']}")
    if config.get("curve"):
        lines.append("curve (objective: least predicted cost per text; padding is what it leaves, so it may rise with K):")
    for row in config.get("curve", []):
        ms = row.get("predicted_ms")
        cost = f"{ms:.2f} ms per text" if ms is not None else f"{row.get('predicted_token_slots', 0):.0f} token slots per text"
        knee = "  <- knee" if row.get("knee") else ("  (within noise of the knee)" if row.get("within_noise") else "")
        lines.append(f"  K={row['k']}: padding {row['padding_fraction']:.1%}, {cost}{knee}")
    if config.get("knee_range"):
        lo, hi = config["knee_range"]
        lines.append(f"knee range K={lo}..{hi} (prices' noise ±{config.get('price_noise', 0.0):.1%}); rule: {config.get('knee_rule', '')}")
    return "\n".join(lines)
