"""The one rule of words for measured ratios, and the findings a run states (pure).

A latency ratio to native dynamic is worded by ``speed`` (no interval known) or by its interval
(``interval_speed``: "faster" or "slower" only when all of the interval says so, else "as fast
as, within this machine's noise (±x%)"); decisions taken from timings break ties within the
noise by ``TIE_RULE``. The findings (the run's noise, the fastest static strategy, where native
dynamic's time goes, why a strategy pads more than ``padding``) read the comparison document,
so the page, the terminal and the tour say the same. ``measure.report`` builds on these.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from shapedemo.measure import stats


SAME_BAND = 0.005
"""Latency ratios within 0.5% of 1 read as "as fast" where no interval is known."""

HONEST_NOTE = (
    "Whether native dynamic shapes are as fast as static ones depends on the device and the "
    "inputs: each comparison times native dynamic also at a static plan's call shapes and a "
    "static model at dynamic's shape, and says how much of dynamic's time is padding to the "
    "longest row and how much is being dynamic. The numbers here are measured on this machine, "
    "in one process, on the same inputs, every ratio with its interval."
)

TIE_RULE = "within the noise, fewer compiled shapes, then less padding, then fewer calls"
"""How a decision taken from timings breaks ties that the noise cannot tell apart."""


def tie_key(name: str, compiled_shapes: Sequence[Any], padding_fraction: float, num_calls: int) -> tuple[Any, ...]:
    """``TIE_RULE`` as a sort key (smallest first); the name last, so the order is total.

    >>> sorted([tie_key("b", [1, 2], 0.1, 1), tie_key("a", [1], 0.3, 2)])[0][-1]
    'a'
    """
    return (len(compiled_shapes), round(float(padding_fraction), 3), int(num_calls), name)


# ------------------------------------------------------------------------------ the one rule
def speed(ratio: float) -> tuple[str, float]:
    """A latency ratio to native dynamic as ``("slower", factor)``, ``("faster", factor)`` or
    ``("same", 1.0)``; the factor is how many times, always >= 1.

    >>> speed(2.0), speed(0.5), speed(0.996)
    (('slower', 2.0), ('faster', 2.0), ('same', 1.0))
    """
    if ratio > 1 + SAME_BAND:
        return "slower", ratio
    if ratio < 1 - SAME_BAND:
        return "faster", 1 / ratio
    return "same", 1.0


def interval_speed(ratio: float, interval: Sequence[float] | None) -> tuple[str, float]:
    """``speed`` where the interval decides: ``"faster"``/``"slower"`` only when all of the
    interval says so, else ``("same", half-width)`` (the ± of the noise, relative).

    >>> interval_speed(0.5, (0.45, 0.55)), interval_speed(1.0, (0.99, 1.04))
    (('faster', 2.0), ('same', 0.04))
    """
    if interval is None:
        return speed(ratio)
    how = stats.verdict(interval)
    if how == "faster":
        return how, 1 / ratio
    if how == "slower":
        return how, ratio
    return "same", round(stats.half_width(interval, ratio), 4)


def noise_words(half: float) -> str:
    """``within this machine's noise (±4%)`` (one decimal under 1%).

    >>> noise_words(0.04), noise_words(0.004)
    ("within this machine's noise (±4%)", "within this machine's noise (±0.4%)")
    """
    return f"within this machine's noise (±{half:.0%})" if half >= 0.01 else f"within this machine's noise (±{half:.1%})"


def interval_text(interval: Sequence[float] | None) -> str:
    """``[0.48-0.52]``, the interval of a ratio as the table and the charts print it."""
    return "" if interval is None else f"[{interval[0]:.2f}-{interval[1]:.2f}]"


def ratio_text(ratio: float, *, is_reference: bool = False, interval: Sequence[float] | None = None) -> str:
    """The chart label: the ratio first, two decimals; a speed-up also said as one. With its
    interval (short, for a phone's width): the interval, then "faster", "slower" or "same"
    as the whole interval says (a speed-up said as one: "0.64x faster" reads as slower).

    >>> ratio_text(0.5, interval=(0.48, 0.52)), ratio_text(1.01, interval=(0.95, 1.08))
    ('0.50x [0.48-0.52] = 2.00x faster', '1.01x [0.95-1.08] same')
    """
    text = f"{ratio:.2f}x"
    if is_reference:
        return text + " (reference)"
    if interval is not None:
        how, _ = interval_speed(ratio, interval)
        if how == "faster" and ratio > 0:
            how = f"= {1 / ratio:.2f}x faster"
        return f"{text} {interval_text(interval)} {how}"
    how, factor = speed(ratio)
    if how == "slower":
        return text + " slower"
    if how == "faster":
        return f"{text} = {factor:.2f}x faster"
    return text


def speed_words(ratio: float, interval: Sequence[float] | None = None) -> str:
    """The summary's words for a ratio: ``1.03x slower than``, ``2.00x faster than``, ``as fast
    as``; with its interval, "as fast as, within this machine's noise (±x%)," unless all of
    the interval is on one side of 1."""
    how, factor = interval_speed(ratio, interval)
    if how == "same":
        return "as fast as" if interval is None else f"as fast as, {noise_words(factor)},"
    return f"{factor:.2f}x {how} than"


def count(n: int, noun: str) -> str:
    """``1 call``, ``2 calls``."""
    return f"{n} {noun}{'s' if n != 1 else ''}"


def numbers(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


def _ran(result: Mapping[str, Any]) -> bool:
    return result.get("supported", True) and (result.get("latency_ms") or {}).get("median") is not None


def _median(result: Mapping[str, Any]) -> float | None:
    return (result.get("latency_ms") or {}).get("median") if _ran(result) else None


def baseline_median(data: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """Native dynamic's median latency and, where it could not run on the target, the device
    it was measured on instead (None when it ran on the target, or not at all)."""
    for r in data["results"]:
        if r["strategy"] == "dynamic" and _ran(r):
            return _median(r), None
    base = data.get("baseline") or {}
    median = (base.get("latency_ms") or {}).get("median")
    return (None, None) if median is None else (float(median), base.get("device"))


def _plain(markdown: str) -> str:
    """A summary line for the terminal: no bold, no list dash."""
    return markdown.replace("**", "").replace("`", "").removeprefix("- ")


def padding_notes(data: Mapping[str, Any]) -> list[str]:
    """Why a strategy pads more than ``padding`` (one model for the largest shape), where one
    does: whole rows of pad that fill a compiled batch size (the page's waste chart says the
    same under each plan).

    >>> row = lambda name, frac: {"strategy": name, "padding_fraction": frac}
    >>> call = lambda batch, used: {"batch": batch, "seq": 64, "rows": [[{"seq": 0}]] * used + [[]] * (batch - used)}
    >>> data = {"results": [row("padding", 0.56), row("buckets", 0.67)],
    ...         "plans": {"padding": {"calls": [call(8, 5)]}, "buckets": {"calls": [call(4, 1), call(4, 4)],
    ...                   "params": {"seq_buckets": [16, 64], "batch_size": 4}}}}
    >>> print(*padding_notes(data))
    buckets pads more than padding (67% vs 56%): its calls carry 3 whole padding rows, as each bucket's group is padded to batch 4; padding carries 3
    """
    results = {r["strategy"]: r for r in data["results"]}
    plans = data.get("plans") or {}
    base = results.get("padding")
    if base is None:
        return []

    def pad_rows(name: str) -> int:
        return sum(1 for c in (plans.get(name) or {}).get("calls", []) for row in c["rows"] if not row)

    notes = []
    for name, r in results.items():
        if name in ("padding", "padding-nomask") or r.get("dynamic") or r["padding_fraction"] <= base["padding_fraction"]:
            continue
        params = (plans.get(name) or {}).get("params") or {}
        why = (
            f"as each bucket's group is padded to batch {params['batch_size']}"
            if params.get("seq_buckets") and params.get("batch_size") else "to fill each call's compiled batch size"
        )
        notes.append(
            f"{name} pads more than padding ({r['padding_fraction']:.0%} vs {base['padding_fraction']:.0%}): "
            f"its calls carry {pad_rows(name)} whole padding rows, {why}; padding carries {pad_rows('padding')}"
        )
    return notes


def rounds_words(data: Mapping[str, Any]) -> str:
    """How many interleaved rounds ran, why they stopped, and the run's noise."""
    noise = data.get("noise")
    if not noise:
        return ""
    why = {
        "tight": f"every interval within ±{noise.get('tight_target', stats.TIGHT):.0%}",
        "max_seconds": f"time limit of {(data.get('settings') or {}).get('max_seconds') or 0:.0f} s reached before the intervals were tight",
        "max_rounds": "round limit reached",
        "repeats": "as many as asked",
    }.get(noise.get("stopped"), "")
    return (
        f"noise: timings spread ±{noise['spread']:.1%} on this machine (median over strategies of "
        f"1.4826 MAD / median), over {count(noise['rounds'], 'interleaved round')} ({why})."
    )


def _interval(result: Mapping[str, Any]) -> tuple[float, float] | None:
    interval = result.get("ratio_interval")
    return None if not interval else (float(interval[0]), float(interval[1]))


def fastest_line(data: Mapping[str, Any]) -> str:
    """The fastest static-shape strategy against native dynamic, the interval's words, and the
    tie rule where strategies were within the noise of each other."""
    results = {r["strategy"]: r for r in data["results"]}
    dyn_ms, dyn_device = baseline_median(data)
    fastest = data.get("fastest")
    if fastest and fastest.get("strategy") in results:
        best = results[fastest["strategy"]]
    else:
        static = [r for r in data["results"] if not r.get("dynamic") and r["strategy"] != "padding-nomask" and _ran(r)]
        if not static:
            return ""
        best = min(static, key=_median)
    if not dyn_ms:
        return ""
    where = "" if dyn_device is None else f" on the {dyn_device} (the reference device)"
    ratio = _median(best) / dyn_ms
    interval = _interval(best)
    shown = "" if interval is None else f", interval {interval_text(interval)}"
    line = (
        f"- Fastest static-shape strategy: **{best['strategy']}**, {_median(best):.1f} ms median, "
        f"**{speed_words(ratio, interval)}** native dynamic{where} ({dyn_ms:.1f} ms{shown})."
    )
    tied = (fastest or {}).get("tied") or []
    if len(tied) > 1:
        others = ", ".join(f"`{n}`" for n in tied if n != best["strategy"])
        line += f" Within the noise of {others}; chosen by the rule: {TIE_RULE}."
    return line


def _pct_interval(interval: Sequence[float]) -> str:
    return f"[{interval[0]:+.0%} to {interval[1]:+.0%}]"


def decomposition_lines(data: Mapping[str, Any]) -> str:
    """Where native dynamic's time went in this run: its padding share and its dynamic-shape
    overhead, each with its interval (empty where the run could not measure them)."""
    d = data.get("decomposition")
    if not d:
        return ""
    dyn_ms = d["dynamic_device_ms"]["median"]
    at_dyn = d["static_at_dynamic_shape_device_ms"]["median"]
    over, o_int = d["dynamic_overhead"], d["dynamic_overhead_interval"]
    b, s = d["dynamic_call_shape"]
    if o_int[0] > 0:
        overhead = f"being dynamic costs **{over:+.0%}** {_pct_interval(o_int)} at the same shape"
    elif o_int[1] < 0:
        faster = [-o_int[1], -o_int[0]]  # the interval of the figure shown, not of the signed overhead
        overhead = f"being dynamic is **{-over:.0%} faster** [{faster[0]:.0%} to {faster[1]:.0%}] than static at the same shape"
    else:
        overhead = (
            f"being dynamic costs **nothing measurable** ({over:+.0%}, {_pct_interval(o_int)}, "
            f"{noise_words(stats.half_width([1 + o_int[0], 1 + o_int[1]], 1 + over))})"
        )
    head = (
        f"- Where native `dynamic`'s time goes ({data['device']}, {data['precision']}, device time, this run): "
        f"it pads **{d['dynamic_padding_fraction']:.0%}** of its slots (one {b}x{s} call, {dyn_ms:.1f} ms). "
    )
    static = f"A static model compiled at that {b}x{s} shape took {at_dyn:.1f} ms: {overhead}."
    if d.get("padding_share") is None:
        return head + static + " (No static plan here pads less than dynamic, so its padding share is not measured.)"
    share, s_int = d["padding_share"], d["padding_share_interval"]
    calls = len(d["static_call_shapes"])
    shapes = ", ".join(f"{bb}x{ss}" for bb, ss in d["static_call_shapes"][:4]) + (", …" if calls > 4 else "")
    if s_int[0] > 0:
        pad_words = f"**{share:.0%}** {_pct_interval(s_int)} of its time is padding each row to the longest"
    elif s_int[1] < 0:
        pad_words = (
            f"slower, not faster: the {calls} calls cost it more than the padding they save, so padding is "
            f"not what costs dynamic here ({share:+.0%} {_pct_interval(s_int)})"
        )
    else:
        pad_words = f"padding to the longest row costs it **nothing measurable** ({share:+.0%}, {_pct_interval(s_int)})"
    at_static = d["dynamic_at_static_shapes_device_ms"]["median"]
    return head + (
        f"Run at `{d['static_plan']}`'s call shapes ({shapes}; {d['static_padding_fraction']:.0%} pad) it took "
        f"{at_static:.1f} ms: {pad_words}. " + static
    )


def finding(data: Mapping[str, Any]) -> str:
    """The closing sentence: what this run found about native dynamic shapes on this device
    (from the decomposition where measured), never a fixed claim."""
    d = data.get("decomposition")
    if not d:
        return HONEST_NOTE
    o_lo, o_hi = d["dynamic_overhead_interval"]
    s_lo, s_hi = d["padding_share_interval"] or (0.0, 0.0)
    where = f"On this {data['device']} at {data['precision']}"
    if o_lo > 0:
        dynamic = f"native dynamic shapes cost {d['dynamic_overhead']:.0%} more than a static shape of the same size"
    elif o_hi < 0:
        dynamic = f"native dynamic shapes ran {-d['dynamic_overhead']:.0%} faster than a static shape of the same size"
    else:
        dynamic = "native dynamic shapes cost no more than a static shape of the same size (within the noise)"
    if d.get("padding_share") is None:
        padding = "no static plan here padded less than dynamic, so its padding share was not measured"
    elif s_lo > 0:
        padding = f"what costs dynamic is padding to the longest row ({d['padding_share']:.0%} of its time)"
    elif s_hi < 0:
        padding = "padding to the longest row costs it less here than splitting the batch into more calls would"
    else:
        padding = "padding to the longest row cost it nothing measurable here"
    return (
        f"{where}, {dynamic}; {padding}. The emulations matter where a device takes static shapes only "
        f"(an NPU) or where dynamic support is partial. Measured in this run, in one process, on the same inputs."
    )
