"""The interleaved rounds of a comparison: its contenders, when rounds stop, what they decide.

Each contender (``Entry``) holds one timing per round; every round runs every contender once,
so ratios pair round by round (``measure.stats``). Besides the strategies asked for, native
dynamic's time is split by two more contenders in the same rounds: dynamic at a static plan's
call shapes, and a static model at dynamic's own shape (``decomposition``). The fastest
static-shape strategy is chosen so that noise cannot flip it (``fastest``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Sequence

from shapedemo.measure import stats
from shapedemo.measure.wording import TIE_RULE, tie_key
from shapedemo.planning.plan import Plan
from shapedemo.measure.stats import latency_stats
from shapedemo.runtime.harness import PlanRunner

BASELINE = "dynamic"
CHECK_RESAMPLES = 400
"""Bootstrap resamples of the is-it-tight-yet check after each round (the reported intervals
use ``stats.RESAMPLES``)."""


def timed_call(fn: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - t0) * 1e3


@dataclass
class Entry:
    """One strategy in a comparison: its plan maker, runner and per-repeat timings."""

    name: str
    plan: Plan
    make: Any
    runner: PlanRunner | None = None
    reason: str | None = None
    host: list[float] = field(default_factory=list)
    device: list[float] = field(default_factory=list)
    plan_ms: list[float] = field(default_factory=list)

    @property
    def latency(self) -> list[float]:
        return [h + d for h, d in zip(self.host, self.device)]


DYNAMIC_AT_STATIC = "dynamic at {}'s call shapes"
STATIC_AT_DYNAMIC = "static at dynamic's shape"


def decomposition_entries(entries: Mapping[str, Entry]) -> tuple[Entry | None, dict[str, Entry]]:
    """The extra contenders that split native dynamic's time, where dynamic runs on the target:
    a static model compiled at dynamic's own call shape (``static_at_dynamic``) and, where a
    static plan pads less than dynamic (unpacked, masked; the least padded, ties fewer calls),
    dynamic run at that plan's call shapes (``dynamic_at_static``). Returns that static plan's
    entry (or None) and the new ones (none where dynamic did not run here)."""
    dyn = entries.get(BASELINE)
    if dyn is None or dyn.runner is None:
        return None, {}
    at_dynamic = replace(dyn.plan, strategy=STATIC_AT_DYNAMIC, dynamic=False, params={"shapes_of": BASELINE})
    extras = {"static_at_dynamic": Entry(at_dynamic.strategy, at_dynamic, lambda: None)}
    static = [
        e for e in entries.values()
        if e.runner is not None and not e.plan.dynamic and not e.plan.packed and e.plan.masked
        and e.plan.computed_tokens < dyn.plan.computed_tokens
    ]
    if not static:
        return None, extras
    least = min(static, key=lambda e: (e.plan.computed_tokens, e.plan.num_calls, e.name))
    at_static = replace(least.plan, strategy=DYNAMIC_AT_STATIC.format(least.name), dynamic=True,
                        params={"max_seq": dyn.plan.params.get("max_seq"), "shapes_of": least.name})
    extras["dynamic_at_static"] = Entry(at_static.strategy, at_static, lambda: None)
    return least, extras


def tight(timed: Sequence[Entry], base: Entry | None, extras: Mapping[str, Entry]) -> bool:
    """Whether every ratio the run reports has a tight interval yet (a quick bootstrap)."""
    pairs: list[tuple[list[float], list[float]]] = []
    extra_ids = {id(e) for e in extras.values()}
    contenders = [e for e in timed if id(e) not in extra_ids]
    if base is not None:
        pairs += [(e.latency, base.latency) for e in contenders if e is not base]
    else:
        pairs += [(e.latency, [1.0] * len(e.latency)) for e in contenders]
    if base is not None and "static_at_dynamic" in extras:
        pairs.append((base.device, extras["static_at_dynamic"].device))
    if base is not None and "dynamic_at_static" in extras:
        pairs.append((extras["dynamic_at_static"].device, base.device))
    for num, den in pairs:
        interval = stats.ratio_interval(num, den, resamples=CHECK_RESAMPLES)
        if not stats.is_tight(interval, stats.median_ratio(num, den)):
            return False
    return True


def decomposition(source: Entry | None, extras: Mapping[str, Entry], dyn: Entry | None) -> dict[str, Any] | None:
    """Where native dynamic's device time goes, from this run's rounds: ``dynamic_overhead`` is
    what the dynamic model costs over a static one compiled at the very same shape (same rows,
    same padding); ``padding_share`` the part of dynamic's time that running at the least-padded
    static plan's call shapes saves (padding to the longest row, net of the extra calls; None
    where no static plan pads less). Both with intervals."""
    if "static_at_dynamic" not in extras or dyn is None:
        return None
    at_dyn = extras["static_at_dynamic"]
    over = stats.median_ratio(dyn.device, at_dyn.device) - 1
    o_lo, o_hi = stats.ratio_interval(dyn.device, at_dyn.device)
    found: dict[str, Any] = {
        "dynamic_call_shape": list(dyn.plan.calls[0].shape),
        "dynamic_padding_fraction": dyn.plan.padding_fraction,
        "dynamic_device_ms": latency_stats(dyn.device),
        "static_at_dynamic_shape_device_ms": latency_stats(at_dyn.device),
        "dynamic_overhead": over,
        "dynamic_overhead_interval": [o_lo - 1, o_hi - 1],
        "static_plan": None,
        "padding_share": None,
        "padding_share_interval": None,
        "measure": "device time; ratios of medians over the same interleaved rounds, paired bootstrap intervals",
    }
    if source is None or "dynamic_at_static" not in extras:
        return found
    at_static = extras["dynamic_at_static"]
    lo, hi = stats.ratio_interval(at_static.device, dyn.device)
    s_lo, s_hi = stats.ratio_interval(at_static.device, source.device)
    found.update({
        "static_plan": source.name,
        "static_call_shapes": [list(c.shape) for c in source.plan.calls],
        "static_padding_fraction": source.plan.padding_fraction,
        "dynamic_at_static_shapes_device_ms": latency_stats(at_static.device),
        "static_plan_device_ms": latency_stats(source.device),
        "padding_share": 1 - stats.median_ratio(at_static.device, dyn.device),
        "padding_share_interval": [1 - hi, 1 - lo],
        "dynamic_overhead_at_static_shapes": stats.median_ratio(at_static.device, source.device) - 1,
        "dynamic_overhead_at_static_shapes_interval": [s_lo - 1, s_hi - 1],
    })
    return found


def fastest(entries: Mapping[str, Entry]) -> dict[str, Any] | None:
    """The fastest static-shape strategy, chosen so that noise cannot flip it
    (``stats.stable_best`` with ``report.TIE_RULE``)."""
    static = [
        e for e in entries.values()
        if e.runner is not None and e.latency and not e.plan.dynamic and e.plan.masked
    ]
    if not static:
        return None
    chosen, tied = stats.stable_best(
        static, samples=lambda e: e.latency,
        tie_key=lambda e: tie_key(e.name, e.plan.compiled_shapes, e.plan.padding_fraction, e.plan.num_calls),
    )
    quickest = min(static, key=lambda e: stats.median(e.latency))
    return {
        "strategy": chosen.name,
        "least_median": quickest.name,
        "tied": [e.name for e in tied],
        "rule": TIE_RULE if len(tied) > 1 else "measurably fastest (no other within the noise)",
    }
