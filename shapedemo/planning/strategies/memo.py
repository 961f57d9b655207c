"""Tables worth keeping across plans, in an object its owner hands down (the plan layer keeps none).

Planning request after request with the same shapes and prices, two things cost more than
planning a small request: fitting a cost model to a measured table, and growing the chunk table
of a set of batch sizes. A :class:`PlanMemo` keeps them, keyed by value (never by ``id()``),
each kind capped; the session owns one (``session.current().memo``) and whoever plans
repeatedly passes it to ``make_plan(memo=...)``. Without one, nothing is kept: plans are the same.

>>> memo = PlanMemo()
>>> memo.keep("chunks", ((1, 2), (1.0, 2.0)), lambda: [1]) is memo.keep("chunks", ((1, 2), (1.0, 2.0)), lambda: [2])
True
>>> memo.sizes()
{'chunks': 1}
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Hashable, TypeVar

T = TypeVar("T")

LIMITS = {"pricing": 32, "chunks": 256, "planner": 16, "plans": 1024}
"""Entries kept per kind (a kind that reaches its cap starts over); other kinds: 64."""


class PlanMemo:
    """Value-keyed tables kept across plans; safe to share between threads (the chunk tables it
    keeps grow under their own lock)."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[Hashable, Any]] = {}
        self._lock = threading.Lock()

    def keep(self, kind: str, key: Hashable, make: Callable[[], T]) -> T:
        """The ``kind`` entry for ``key``, made by ``make()`` on first use."""
        with self._lock:
            table = self._tables.setdefault(kind, {})
            if key in table:
                return table[key]
        value = make()  # outside the lock: fitting may take a while; the first one made is kept
        with self._lock:
            table = self._tables.setdefault(kind, {})
            if key not in table and len(table) >= LIMITS.get(kind, 64):
                table.clear()
            return table.setdefault(key, value)

    def sizes(self) -> dict[str, int]:
        with self._lock:
            return {kind: len(table) for kind, table in self._tables.items()}
