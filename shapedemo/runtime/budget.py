"""The memory budget of compiled models, shared by engines: least recently used released first.

An engine registers with a budget; beyond it the budget asks the engines to release their least
recently used compiled models that no running plan holds (:meth:`Engine.evict`), whichever
engine holds them. It never touches an engine's own bookkeeping.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from typing import Any, Protocol

from shapedemo.runtime.blobs import _env_int


class Holder(Protocol):
    """What a budget needs of an engine: its compiled models, and a way to release one."""

    def compiled_entries(self) -> list[Any]: ...

    def evict(self, entry: Any) -> None: ...


DEFAULT_COMPILED_MB = 4096
"""The compiled-model budget of the command line and the library (``serve``'s default set of 40
MiniLM shapes holds about 1.5 GiB in bf16, 2.3 GiB in f32): a quarter of 16 GB, about 3 compiled
shapes of BERT-large. The page has a smaller one of its own (``settings.PAGE_COMPILED_MB``)."""


def compiled_budget_mb(default: int = DEFAULT_COMPILED_MB) -> int:
    """Memory budget of the compiled models: ``$SHAPEDEMO_COMPILED_MB`` where set, else
    ``default`` MiB (:data:`DEFAULT_COMPILED_MB`; the page passes its own).

    Beyond it the least recently used compiled models not held by a running plan are released.
    """
    return _env_int("SHAPEDEMO_COMPILED_MB", default)


class CompiledBudget:
    """The memory budget (``mb`` MiB) that a group of engines' compiled models share, least
    recently used first released beyond it. The session makes one for the process
    (``SHAPEDEMO_COMPILED_MB``, read once) and every engine it makes joins it, so engines for
    other precisions, devices or static-only mode, and their CPU reference engines, do not each
    get a budget of their own. Engines of one budget share its lock.

    >>> CompiledBudget(300).mb
    300
    """

    def __init__(self, mb: float) -> None:
        self.mb = mb
        self.lock = threading.RLock()
        self.engines: "weakref.WeakSet[Holder]" = weakref.WeakSet()
        self._clock = itertools.count(1)

    def tick(self) -> int:
        """A use stamp: the least recently used compiled model has the smallest."""
        return next(self._clock)

    def enforce(self) -> None:
        """Release least recently used unpinned compiled models, of any engine on this budget,
        until the rest fit."""
        with self.lock:
            held = [(entry.used, engine, entry) for engine in list(self.engines) for entry in engine.compiled_entries()]
            total = sum(max(entry.memory_mb or 0.0, 1.0) for *_, entry in held)
            budget = self.mb
            for _, engine, entry in sorted(held, key=lambda h: h[0]):
                if total <= budget:
                    break
                if entry.pins:
                    continue
                total -= max(entry.memory_mb or 0.0, 1.0)
                engine.evict(entry)
