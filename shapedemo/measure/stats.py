"""Robust statistics for timings on a noisy machine: spreads, intervals, robust fits, tie rules.

Pure (numpy only, no OpenVINO): the comparison's ratio intervals, the noise a run states, the
knee's range and the cost tables' fits all come from here, so "within noise" means one thing.

Timings come in *rounds*: in each round every contender runs once (interleaved), so a burst of
load on the machine lands on one round of every contender. Intervals therefore resample whole
rounds (a paired bootstrap) and are deterministic (a fixed seed): the same timings always give
the same interval.

>>> a = [10.0, 10.2, 9.9, 10.1, 10.0]
>>> b = [20.0, 20.5, 19.8, 20.1, 20.2]
>>> lo, hi = ratio_interval(a, b)
>>> 0.48 < lo <= median_ratio(a, b) <= hi < 0.52
True
>>> round(spread([10.0, 10.0, 11.0, 9.0, 10.0]), 3)
0.0
"""

from __future__ import annotations

import statistics
from typing import Any, Callable, Iterable, Sequence, TypeVar

import numpy as np

T = TypeVar("T")

LEVEL = 0.9
"""Two-sided coverage of every interval (5% out on each side)."""
RESAMPLES = 2000
"""Bootstrap resamples per interval (deterministic: seeded)."""
SEED = 0
MAD_SCALE = 1.4826
"""The median absolute deviation times this estimates a normal spread's standard deviation."""
TIGHT = 0.03
"""An interval is tight when it reaches at most 3% either side of its median."""
MIN_ROUNDS = 5
"""Rounds timed before an interval is trusted to be tight (rounds until tight start here)."""
FLOOR_ROUNDS = 3
"""Rounds timed even when the time limit runs out first: fewer give no interval worth the name."""


def median(samples: Iterable[float]) -> float:
    """The median (NaN for no samples).

    >>> median([3.0, 1.0, 2.0]), median([1.0, 2.0])
    (2.0, 1.5)
    """
    xs = np.asarray(list(samples), dtype=float)
    return float(np.median(xs)) if xs.size else float("nan")


def quantile(samples: Iterable[float], q: float) -> float:
    """The ``q`` quantile (linear between order statistics).

    >>> quantile([1.0, 2.0, 3.0, 4.0, 5.0], 0.25)
    2.0
    """
    xs = np.asarray(list(samples), dtype=float)
    return float(np.quantile(xs, q)) if xs.size else float("nan")


def settled(samples: Iterable[float]) -> float:
    """The least-disturbed figure of repeated timings: their lower quartile. Interference on a
    shared machine only ever adds time, so the low end is the machine's own speed; a quartile,
    not the minimum, so one lucky sample does not decide.

    >>> settled([10.0, 10.1, 30.0, 10.2, 55.0])
    10.1
    """
    return quantile(samples, 0.25)


def mad(samples: Iterable[float]) -> float:
    """Median absolute deviation from the median (unscaled).

    >>> mad([1.0, 2.0, 3.0, 4.0, 100.0])
    1.0
    """
    xs = np.asarray(list(samples), dtype=float)
    if not xs.size:
        return float("nan")
    return float(np.median(np.abs(xs - np.median(xs))))


def spread(samples: Sequence[float]) -> float:
    """The relative spread of repeated timings: ``1.4826 * MAD / median`` (a robust
    coefficient of variation; 0 for fewer than two samples or a zero median).

    >>> round(spread([9.0, 10.0, 11.0]), 4)
    0.1483
    """
    if len(samples) < 2:
        return 0.0
    mid = median(samples)
    return 0.0 if mid <= 0 else MAD_SCALE * mad(samples) / mid


def low_spread(samples: Sequence[float]) -> float:
    """The relative spread of the lower half of repeated timings (the median included): how
    uncertain a ``settled`` figure is. Bursts of other load land in the upper half and do not
    count: they add time, they do not blur the machine's own speed.

    >>> round(low_spread([10.0, 10.2, 10.4, 30.0, 90.0]), 4)
    0.0291
    """
    low = sorted(samples)[: len(samples) // 2 + 1]
    return spread(low)


def noise(series: Iterable[Sequence[float]]) -> float:
    """The noise of a run: the median relative spread of its contenders' repeated timings.

    >>> round(noise([[9.0, 10.0, 11.0], [20.0, 20.0, 20.0], [5.0, 5.5, 4.5]]), 4)
    0.1483
    """
    spreads = [spread(s) for s in series if len(s) >= 2]
    return float(np.median(spreads)) if spreads else 0.0


def median_ratio(num: Sequence[float], den: Sequence[float]) -> float:
    """``median(num) / median(den)``.

    >>> median_ratio([2.0, 4.0, 3.0], [1.0, 1.0, 1.0])
    3.0
    """
    return median(num) / median(den)


def _indices(rounds: int, resamples: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, rounds, size=(resamples, rounds))


def ratio_interval(
    num: Sequence[float], den: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """A ``level`` interval for ``median(num) / median(den)`` by a paired bootstrap over rounds
    (``num[i]`` and ``den[i]`` were timed in the same round; rounds are resampled whole). With
    one round the interval is the point; unpaired lengths are cut to the shorter.

    >>> ratio_interval([2.0], [1.0])
    (2.0, 2.0)
    >>> ratio_interval([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    (2.0, 2.0)
    """
    n = min(len(num), len(den))
    if n == 0:
        raise ValueError("ratio_interval: no timings")
    a = np.asarray(num[:n], dtype=float)
    b = np.asarray(den[:n], dtype=float)
    point = float(np.median(a) / np.median(b))
    if n == 1:
        return point, point
    idx = _indices(n, resamples, seed)
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    tail = (1 - level) / 2
    lo, hi = float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))
    return min(lo, point), max(hi, point)


def median_interval(
    samples: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
    """A ``level`` bootstrap interval for the median of ``samples``.

    >>> median_interval([5.0, 5.0, 5.0])
    (5.0, 5.0)
    """
    return ratio_interval(samples, [1.0] * len(samples), level=level, resamples=resamples, seed=seed)


def half_width(interval: Sequence[float], point: float) -> float:
    """How far (relative) an interval reaches from its point: ``max(hi/p - 1, 1 - lo/p)``.

    >>> round(half_width((0.9, 1.05), 1.0), 3)
    0.1
    """
    lo, hi = interval
    if point <= 0:
        return float("inf")
    return max(hi / point - 1, 1 - lo / point, 0.0)


def is_tight(interval: Sequence[float], point: float, *, target: float = TIGHT) -> bool:
    """Whether ``interval`` reaches at most ``target`` either side of ``point``.

    >>> is_tight((0.98, 1.02), 1.0), is_tight((0.9, 1.02), 1.0)
    (True, False)
    """
    return half_width(interval, point) <= target


def verdict(interval: Sequence[float]) -> str:
    """What an interval of a latency ratio (mine / theirs) says: ``"faster"`` when all of it is
    below 1, ``"slower"`` when all of it is above 1, else ``"same"`` (within the noise).

    >>> verdict((0.5, 0.8)), verdict((1.1, 1.3)), verdict((0.95, 1.02))
    ('faster', 'slower', 'same')
    """
    lo, hi = interval
    if hi < 1:
        return "faster"
    if lo > 1:
        return "slower"
    return "same"


def stable_best(
    candidates: Sequence[T],
    *,
    samples: Callable[[T], Sequence[float]],
    tie_key: Callable[[T], Any],
    level: float = LEVEL,
) -> tuple[T, list[T]]:
    """The fastest candidate such that noise cannot flip the choice: the one of least median,
    and every candidate whose ratio to it has an interval reaching 1 (not measurably slower)
    counts as tied with it; among the tied, ``tie_key`` decides (smallest first). Returns
    ``(chosen, tied)``; ``tied`` includes the chosen one, in ``tie_key`` order.

    ``samples(c)`` are ``c``'s timings by round (the same rounds for every candidate).

    >>> times = {"a": [10.0, 10.5, 9.8, 10.1], "b": [10.2, 10.0, 10.4, 9.9], "c": [20.0, 21.0, 19.0, 20.0]}
    >>> stable_best(["a", "b", "c"], samples=times.get, tie_key=lambda n: {"a": 2, "b": 1, "c": 0}[n])
    ('b', ['b', 'a'])
    """
    if not candidates:
        raise ValueError("stable_best: no candidates")
    fastest = min(candidates, key=lambda c: (median(samples(c)), tie_key(c)))
    base = samples(fastest)
    tied = [c for c in candidates if c is fastest or ratio_interval(samples(c), base, level=level)[0] <= 1.0]
    tied.sort(key=tie_key)
    return tied[0], tied


def robust_lstsq(
    a: np.ndarray, y: np.ndarray, *, c: float = 1.345, iterations: int = 50, tol: float = 1e-10
) -> np.ndarray:
    """Least squares that outliers cannot drag: Huber's M-estimator by iteratively reweighted
    least squares (residuals scaled by their MAD; ``c`` = 1.345 keeps 95% efficiency on clean
    data). Rows of ``a`` are observations; returns the coefficients.

    >>> x = np.arange(1.0, 9.0)
    >>> y = 2.0 + 3.0 * x
    >>> y[3] += 40.0  # one disturbed timing
    >>> [round(float(v), 2) for v in robust_lstsq(np.column_stack([np.ones_like(x), x]), y)]
    [2.0, 3.0]
    """
    a = np.asarray(a, dtype=float)
    y = np.asarray(y, dtype=float)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    for _ in range(iterations):
        resid = y - a @ coef
        scale = MAD_SCALE * float(np.median(np.abs(resid - np.median(resid))))
        if scale <= 1e-12:
            # more than half the points on the fit: weigh out whatever is off it
            weight = np.where(np.abs(resid) <= 1e-9 * max(1.0, float(np.max(np.abs(y)))), 1.0, 0.0)
            if weight.sum() < a.shape[1]:
                break
        else:
            u = np.abs(resid) / (c * scale)
            weight = np.where(u <= 1, 1.0, 1.0 / np.maximum(u, 1e-12))
        root = np.sqrt(weight)
        new, *_ = np.linalg.lstsq(a * root[:, None], y * root, rcond=None)
        if np.max(np.abs(new - coef)) <= tol * max(1.0, float(np.max(np.abs(coef)))):
            coef = new
            break
        coef = new
    return coef


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

