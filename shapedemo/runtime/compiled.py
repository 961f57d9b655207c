"""One compiled model and its pool of infer requests.

Every compiled model owns one pool of infer requests: threads take a request from it and give it
back, so no two threads share one (``CompiledModel.__call__`` shares one request and is not
thread-safe), and a released model's requests go with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from shapedemo.runtime.errors import EngineError

ProgressFn = Callable[[float, str], None]
ModelKey = tuple[bool, "tuple[int, int] | None", "tuple[int, int] | None"]
"""``(packed, static shape or None, bounds or None)``: what one compiled model is."""


class RequestPool:
    """The infer requests of one compiled model. A thread takes one and gives it back; a closed
    pool (its model released) hands out none and keeps none, so an old request is never reused."""

    MAX_IDLE = 8
    """Idle requests kept for reuse; more given back (a concurrent plan of many calls) are dropped."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self.closed = False
        self.created = 0

    def acquire(self) -> Any:
        with self._lock:
            if self.closed:
                raise EngineError("this compiled model was released (memory budget); compile it again")
            if self._free:
                return self._free.pop()
            self.created += 1
            return self._compiled.create_infer_request()

    def release(self, request: Any) -> None:
        with self._lock:
            if not self.closed and len(self._free) < self.MAX_IDLE:
                self._free.append(request)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._free.clear()
            self._compiled = None


@dataclass(eq=False)
class Compiled:
    """One compiled model: a static ``shape``, or ``None`` for the dynamic model (``bounds`` set
    for the model with bounded dims ``[1..B, 1..S]``).

    ``compile_s`` is a cold compile where ``from_cache`` is False, an import of a cached blob
    where it is True. ``memory_mb`` is process memory added (RSS) by compiling and the first
    inference, not device memory.
    """

    shape: tuple[int, int] | None
    packed: bool
    compiled: Any
    compile_s: float
    memory_mb: float | None
    bounds: tuple[int, int] | None = None
    from_cache: bool = False
    first_infer_s: float = 0.0
    device: str = "CPU"
    pool: RequestPool | None = field(default=None, repr=False)
    pins: int = 0
    evicted: bool = False
    used: int = 0

    @property
    def key(self) -> ModelKey:
        return (self.packed, self.shape, self.bounds)

    @property
    def label(self) -> str:
        if self.shape is not None:
            return f"{self.shape[0]} x {self.shape[1]}" + (" packed" if self.packed else "")
        what = "dynamic model" if self.bounds is None else f"bounded model [1..{self.bounds[0]}, 1..{self.bounds[1]}]"
        return what + (" packed" if self.packed else "")

    def to_dict(self) -> dict[str, Any]:
        """An entry of a result's ``compiled_models`` (JSON; names are a contract)."""
        return {
            "shape": None if self.shape is None else list(self.shape),
            "bounds": None if self.bounds is None else list(self.bounds),
            "packed": self.packed,
            "device": self.device,
            "compile_s": self.compile_s,
            "from_cache": self.from_cache,
            "memory_mb": self.memory_mb,
            "first_infer_s": self.first_infer_s,
        }



def infer(request: Any, feed: dict[str, np.ndarray]) -> None:
    """One synchronous call. The request reads the feed's arrays in place and returns no copies
    of its outputs (read them with ``request.get_tensor``): ``InferRequest.infer``'s defaults copy
    both ways, 0.2 ms a call at bf16 on a 2-core EPYC (7% of a 2 x 32 call), inside the timed
    call. The arrays must stay unchanged until the call returns."""
    request.infer(feed, share_inputs=True, share_outputs=True)


def feed_for(compiled: Any, shape: tuple[int, int], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Full rows of random token ids at ``shape`` for whatever inputs the model takes (one
    segment per row where it is packed): for first inferences and cost-table timings."""
    b, s = shape
    rng = np.random.default_rng(seed)
    feed = {}
    for port in compiled.inputs:
        name = port.get_any_name()
        if name == "input_ids":
            feed[name] = rng.integers(1000, 2000, size=(b, s), dtype=np.int64)
        elif name in ("attention_mask", "segment_ids"):
            feed[name] = np.ones((b, s), np.int64)
        elif name == "position_ids":
            feed[name] = np.tile(np.arange(s, dtype=np.int64), (b, 1))
        else:
            feed[name] = np.zeros((b, s), np.int64)
    return feed
