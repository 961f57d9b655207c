"""Latency statistics of timed samples, as OpenVINO's ``benchmark_app`` reports them."""

from __future__ import annotations

import statistics
from typing import Any, Sequence

import numpy as np


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

