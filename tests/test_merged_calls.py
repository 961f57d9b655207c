"""``benchmarks/merged_calls.py``'s multi-part graph computes what the packed graph computes: the
same rows in one call give the separate calls' states (the benchmark's timings compare equal
work), and a request's parts in the wrong order would not."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.model
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _benchmark():
    """The script, imported as it runs (its folder first on the path: the scripts import each
    other by name); the folder leaves the path again, so that its ``load.py``, ``weights.py``
    ... shadow nothing for later tests."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module("merged_calls")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_one_merged_call_gives_the_separate_calls_states():
    import openvino as ov

    from shapedemo.model import build_packed_bert, synthetic_weights

    merged_calls = _benchmark()
    weights, dims = synthetic_weights("tiny")
    core, config = ov.Core(), {"INFERENCE_PRECISION_HINT": "f32"}
    rng = np.random.default_rng(3)

    def ids(n: int) -> list[int]:
        return [101, *rng.integers(1000, 20000, n - 2).tolist(), 102]

    parts = {(1, 64): [[ids(20), ids(30)]], (2, 32): [[ids(7)], [ids(12), ids(9), ids(5)]]}
    feeds = {shape: merged_calls.row_feeds(rows, shape[1]) for shape, rows in parts.items()}
    packed = build_packed_bert(weights, dims, pooling=None)

    def separate(shape: tuple[int, int]) -> np.ndarray:
        m = packed.clone()
        m.reshape({p.get_any_name(): ov.PartialShape(list(shape)) for p in m.inputs})
        return core.compile_model(m, "CPU", config)(feeds[shape])[0].reshape(-1, dims.hidden_size)

    flat = merged_calls.flatten(list(feeds.values()))
    merged = core.compile_model(merged_calls.build_merged(weights, dims, list(parts)), "CPU", config)(flat)[0]
    real = flat["segment_ids"] > 0
    assert merged.shape == (64 + 2 * 32, dims.hidden_size)
    states = np.concatenate([separate((1, 64)), separate((2, 32))])
    assert np.abs(states[real] - merged[real]).max() < 1e-4
    swapped = np.concatenate([separate((2, 32)), separate((1, 64))])
    assert np.abs(swapped[real] - merged[real]).max() > 1e-2
