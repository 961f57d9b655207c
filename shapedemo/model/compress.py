"""Compressed weights: the models an NPU (and most deployments) actually run.

Four weights modes (``settings.WEIGHTS``):

- ``f32``: the model as built (what every other number in shapedemo runs);
- ``f16``: FP16 weights, as ``ov.save_model`` stores an IR by default (and as the NPU computes);
- ``int8-weights``: NNCF weight-only INT8 (``nncf.compress_weights``, asymmetric per channel):
  weights stored in int8 and decompressed on the fly, activations untouched, no calibration;
- ``int8``: NNCF post-training quantization (``nncf.quantize``, transformer preset): weights
  *and* activations in int8, with activation ranges measured on calibration inputs.

Calibration (``int8`` only) runs the f32 model on token ids (the input texts, a workload's or a
file's) laid out one of two ways: ``exact`` (each text alone, at its own length: the quantizer
sees real tokens only) or ``padded`` (the static shapes the plan compiles: ``buckets-partition``
calls for the plain graph, ``packing`` rows at the pack length for the packed graph; pad
positions still run through every token-wise layer, so their activations enter the ranges).

Compressed IRs are cached beside the f32 IR (``cache/models/<ir_key>-w<mode>[-<calibration>]``),
keyed by mode and, for ``int8``, the calibration layout and a hash of its token ids; written
elsewhere and renamed (:func:`shapedemo.model.cache.cached_build`), never over a file in use.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from shapedemo.model.cache import cached_build, ensure_cache_dir
from shapedemo.model.graph import SEGMENT_SUMS_NODE
from shapedemo.model.errors import ModelError
from shapedemo.model.sources import LoadedModel, default_cache_dir
from shapedemo.planning.strategies import make_plan
from shapedemo.settings import CALIBRATIONS, WEIGHTS

CALIBRATION_ITEMS = 300
"""Calibration inputs NNCF runs at most (its own default subset size)."""
INT8_WEIGHTS_MODE = "int8_asym"
"""``nncf.CompressWeightsMode`` for ``int8-weights``: NNCF's default, per-channel asymmetric."""


@dataclass(frozen=True)
class Calibration:
    """What ``int8`` is calibrated on: token ids per text and the layout (``exact``/``padded``).

    ``seq_buckets``, ``batch_sizes``, ``max_seq`` and ``pack_seq`` are the plan options the
    ``padded`` layout pads to (those of the run, so the quantizer sees the shapes it will run).

    >>> c = Calibration(ids=(np.array([101, 7, 102]),), shapes="exact", max_seq=128)
    >>> len(c.key()), c.lengths
    (12, [3])
    """

    ids: tuple[np.ndarray, ...]
    shapes: str = "exact"
    seq_buckets: tuple[int, ...] | None = None
    batch_sizes: tuple[int, ...] | None = None
    max_seq: int = 512
    pack_seq: int | None = None
    source: str = "texts"

    @property
    def lengths(self) -> list[int]:
        return [len(t) for t in self.ids]

    def key(self) -> str:
        """A short hash of the token ids, the layout and (for ``padded``) the shapes."""
        h = hashlib.sha256(self.shapes.encode())
        if self.shapes == "padded":
            h.update(repr((self.seq_buckets, self.batch_sizes, self.max_seq, self.pack_seq)).encode())
        for t in self.ids:
            h.update(np.asarray(t, np.int64).tobytes() + b"|")
        return h.hexdigest()[:12]

    def describe(self) -> str:
        return f"{len(self.ids)} {self.source}, {self.shapes} shapes"


def calibration_for(encoded: Any, *, shapes: str = "exact", source: str = "texts", **options: Any) -> Calibration:
    """A :class:`Calibration` from a tokenizer's ``Encoded`` and the plan options
    (``seq_buckets``, ``batch_sizes``, ``max_seq``, ``pack_seq``)."""
    if shapes not in CALIBRATIONS:
        raise ModelError(f"calibration {shapes!r}: choose one of {', '.join(CALIBRATIONS)}")
    if not encoded.lengths:
        raise ModelError("int8 needs calibration texts: give at least one")
    opts = {k: options.get(k) for k in ("seq_buckets", "batch_sizes", "pack_seq")}
    return Calibration(
        ids=tuple(np.asarray(t, np.int64) for t in encoded.input_ids), shapes=shapes,
        seq_buckets=None if opts["seq_buckets"] is None else tuple(opts["seq_buckets"]),
        batch_sizes=None if opts["batch_sizes"] is None else tuple(opts["batch_sizes"]),
        max_seq=int(options.get("max_seq") or max(encoded.lengths)), pack_seq=opts["pack_seq"], source=source,
    )


def _plan_options(cal: Calibration) -> dict[str, Any]:
    return {"seq_buckets": cal.seq_buckets, "batch_sizes": cal.batch_sizes, "max_seq": cal.max_seq, "pack_seq": cal.pack_seq}


def _plain_feed(cal: Calibration, rows: Sequence[Sequence[int]], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """``[batch, seq]`` inputs of the plain graph: row ``r`` holds text ``rows[r]`` (or nothing)."""
    ids = np.zeros(shape, np.int64)
    mask = np.zeros(shape, np.int64)
    for r, seqs in enumerate(rows):
        for s in seqs:
            n = len(cal.ids[s])
            ids[r, :n] = cal.ids[s]
            mask[r, :n] = 1
        if not seqs:
            mask[r, 0] = 1  # a padding row attends to one pad token, as the engine feeds it
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros(shape, np.int64)}


def plain_items(cal: Calibration) -> Iterator[dict[str, np.ndarray]]:
    """Calibration inputs of the plain graph: each text alone (``exact``), or the calls of the
    ``buckets-partition`` plan at their static shapes (``padded``)."""
    if cal.shapes == "exact":
        for s, t in enumerate(cal.ids):
            yield _plain_feed(cal, [[s]], (1, len(t)))
        return
    plan = make_plan("buckets-partition", cal.lengths, **_plan_options(cal))
    for call in plan.calls:
        yield _plain_feed(cal, [[seg.seq for seg in row] for row in call.rows], call.shape)


def packed_items(cal: Calibration) -> Iterator[dict[str, np.ndarray]]:
    """Calibration inputs of the packed graph: the ``packing`` plan's rows, each cut to its
    filled length (``exact``) or its calls at the pack length (``padded``)."""
    plan = make_plan("packing", cal.lengths, **_plan_options(cal))
    for call in plan.calls:
        rows = call.rows
        if cal.shapes == "exact":
            for row in rows:
                if row:
                    yield _packed_feed(cal, [row], (1, max(seg.offset + seg.length for seg in row)))
        else:
            yield _packed_feed(cal, rows, call.shape)


def _packed_feed(cal: Calibration, rows: Sequence[Sequence[Any]], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    ids, positions, segments = (np.zeros(shape, np.int64) for _ in range(3))
    for r, row in enumerate(rows):
        for k, seg in enumerate(row, start=1):
            sl = slice(seg.offset, seg.offset + seg.length)
            ids[r, sl] = cal.ids[seg.seq]
            positions[r, sl] = np.arange(seg.length)
            segments[r, sl] = k
    return {"input_ids": ids, "token_type_ids": np.zeros(shape, np.int64), "position_ids": positions, "segment_ids": segments}


def weights_key(mode: str, calibration: Calibration | None) -> str:
    """The suffix of a compressed IR's cache entry.

    >>> weights_key("f16", None)
    'wf16'
    """
    if mode == "int8":
        assert calibration is not None
        return f"w{mode}-{calibration.shapes}-{calibration.key()}"
    return f"w{mode}"


def _compress_one(model: Any, mode: str, items: list[dict[str, np.ndarray]] | None) -> Any:
    """One graph with ``mode``'s weights (a clone: the f32 model stays as it is)."""
    model = model.clone()
    if mode == "f16":
        from openvino._offline_transformations import compress_model_transformation

        compress_model_transformation(model)  # what ov.save_model(compress_to_fp16=True) does
        return model
    import nncf

    if mode == "int8-weights":
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode(INT8_WEIGHTS_MODE))
    assert items is not None
    return nncf.quantize(
        model, nncf.Dataset(items), model_type=nncf.ModelType.TRANSFORMER,
        subset_size=min(CALIBRATION_ITEMS, len(items)),
        # the packed graph's segment sums stay in float (a graph without them has nothing to skip)
        ignored_scope=nncf.IgnoredScope(names=[SEGMENT_SUMS_NODE], validate=False),
    )


def _quiet_nncf() -> None:
    """NNCF logs progress bars and INFO lines on stdout; the CLI's stdout is JSON."""
    import logging

    import nncf

    nncf.set_log_level(logging.ERROR)


def compress(
    loaded: LoadedModel,
    mode: str,
    *,
    calibration: Calibration | None = None,
    cache_dir: Path | str | None = "default",
) -> LoadedModel:
    """``loaded`` with ``mode``'s weights (plain and packed graphs), built once and cached beside
    the f32 IR. ``f32`` returns ``loaded`` itself; ``int8`` needs ``calibration``."""
    if mode not in WEIGHTS:
        raise ModelError(f"weights {mode!r}: choose one of {', '.join(WEIGHTS)}")
    if mode == "f32":
        return loaded
    if loaded.weights != "f32":
        raise ModelError(f"{loaded.spec} already runs {loaded.weights} weights: compress the f32 model")
    if mode == "int8" and calibration is None:
        raise ModelError("int8 needs calibration texts (the input texts, a workload or a file)")
    if mode in ("int8", "int8-weights"):
        try:
            _quiet_nncf()
        except ImportError:
            raise ModelError(f"weights {mode} need NNCF: pip install nncf") from None
    cal = calibration if mode == "int8" else None

    def build() -> tuple[Any, Any | None]:
        plain = list(plain_items(cal)) if cal is not None else None
        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout stays JSON
            model = _compress_one(loaded.model, mode, plain)
            packed = None
            if loaded.packed is not None:
                packed = _compress_one(loaded.packed, mode, list(packed_items(cal)) if cal is not None else None)
        return model, packed

    cache = None
    if loaded.ir_key is not None and cache_dir is not None:
        cache = ensure_cache_dir(default_cache_dir() if cache_dir == "default" else Path(cache_dir))
    key = weights_key(mode, cal)
    start = time.perf_counter()
    model, packed, hit = cached_build(cache, f"{loaded.ir_key}-{key}", build)
    info = {
        "mode": mode,
        "calibration": None if cal is None else {"shapes": cal.shapes, "source": cal.source,
                                                 "texts": len(cal.ids), "key": cal.key()},
        "build_s": time.perf_counter() - start,
        "from_cache": hit,
        "cache_key": None if cache is None else f"{loaded.ir_key}-{key}",
    }
    return replace(loaded, model=model, packed=packed, weights=mode, weights_info=info)


def weight_bytes(model: Any) -> int:
    """Bytes of the model's constants as stored (f32, f16 or int8 plus their scales)."""
    total = 0
    for op in model.get_ops():
        if op.get_type_name() == "Constant":
            out = op.get_output_element_type(0)
            total += int(np.prod(op.get_output_shape(0), dtype=np.int64)) * max(1, out.bitwidth // 8)
    return total
