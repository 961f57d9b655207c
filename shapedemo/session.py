"""The one owner of process state: loaded models, engines, the compiled-model budget, and the
tables plans keep across requests. Created and cleared here, nowhere else.

A process has one current :class:`Session` (:func:`current`); tests start a fresh one
(:func:`fresh`) instead of resetting module globals. Everything a session holds is bounded:
models and engines least recently used first dropped, compiled models within ``budget``
(``SHAPEDEMO_COMPILED_MB``, read once when the session is made), the plan memo's tables capped.

>>> s = Session(compiled_mb=300)
>>> s.budget.mb, s.models, s.engines
(300, [], [])
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from shapedemo.planning.strategies.memo import PlanMemo
from shapedemo.runtime.budget import CompiledBudget, compiled_budget_mb

if TYPE_CHECKING:  # the model and the engine import OpenVINO: loaded on first use
    from shapedemo.model import LoadedModel
    from shapedemo.runtime.engine import Engine

MAX_MODELS = 3
"""Loaded models kept at once (a model holds its weights: ~90 MB for MiniLM, 1.3 GB for large)."""
MAX_ENGINES = 4
"""Engines kept at once, one per :data:`EngineKey`; all their compiled models (and those of
their CPU reference engines) count against the session's one budget."""

ModelKey = Any
"""A model spec, or ``(spec, weights key)`` for a model with compressed weights."""
EngineKey = tuple[ModelKey, str, str, bool, tuple[tuple[str, str], ...]]
"""``(model key, device, precision, static-only, OpenVINO properties as sorted pairs)``."""

T = TypeVar("T")


def _keep(cache: "OrderedDict[Any, T]", key: Any, make: Callable[[], T], limit: int) -> T:
    """``cache[key]``, made on first use; the least recently used entries beyond ``limit`` go."""
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = make()
    while len(cache) > limit:
        cache.popitem(last=False)
    return value


class Session:
    """Models, engines, the compiled-model budget and the plan memo of one process.

    ``compiled_mb``: the budget in MiB (default ``$SHAPEDEMO_COMPILED_MB``, read now, once).
    """

    def __init__(self, *, compiled_mb: float | None = None) -> None:
        self.budget = CompiledBudget(compiled_budget_mb() if compiled_mb is None else compiled_mb)
        self.memo = PlanMemo()
        """Tables kept across plans (cost models fitted from a table, chunk tables): handed to
        ``make_plan(memo=...)`` by whoever plans request after request."""
        self._models: OrderedDict[ModelKey, LoadedModel] = OrderedDict()
        self._engines: OrderedDict[EngineKey, Engine] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def models(self) -> list["LoadedModel"]:
        with self._lock:
            return list(self._models.values())

    @property
    def engines(self) -> list["Engine"]:
        """The engines alive now (the page's memory report and tests)."""
        with self._lock:
            return list(self._engines.values())

    def load(self, spec: str) -> "LoadedModel":
        """The loaded model for ``spec`` (built or read from the IR cache once per session)."""
        from shapedemo.model import load_model

        return self.model(spec, lambda: load_model(spec))

    def model(self, key: ModelKey, make: Callable[[], "LoadedModel"]) -> "LoadedModel":
        """The model kept under ``key`` (e.g. one with compressed weights), made on first use."""
        with self._lock:
            return _keep(self._models, key, make, MAX_MODELS)

    def engine(
        self, model: "str | LoadedModel", *, model_key: ModelKey = None, device: str = "CPU",
        precision: str = "auto", static_only: bool = False, ov_config: dict[str, Any] | None = None,
    ) -> "Engine":
        """The engine for a model (a spec, or a loaded model kept under ``model_key``), device,
        precision, static-only mode and OpenVINO properties, kept while it is among the
        :data:`MAX_ENGINES` most recently used; on the session's budget."""
        from shapedemo.runtime.engine import Engine

        loaded = self.load(model) if isinstance(model, str) else model
        mkey = model if isinstance(model, str) else (loaded.spec if model_key is None else model_key)
        config = dict(ov_config or {})
        key: EngineKey = (mkey, device, precision, static_only, tuple(sorted((str(k), str(v)) for k, v in config.items())))
        with self._lock:
            return _keep(
                self._engines, key,
                lambda: Engine(loaded, device=device, precision=precision, static_only=static_only,
                               compiled_budget=self.budget, ov_config=config),
                MAX_ENGINES,
            )

    def engine_key(self, engine: "Engine") -> EngineKey | None:
        """The key ``engine`` is kept under, or None."""
        with self._lock:
            return next((k for k, e in self._engines.items() if e is engine), None)

    def clear(self) -> None:
        """Release every compiled model no running plan holds and forget models, engines and
        the plan memo."""
        with self._lock:
            for engine in self._engines.values():
                engine.release_all()
            self._engines.clear()
            self._models.clear()
            self.memo = PlanMemo()


_current: Session | None = None
_current_lock = threading.Lock()


def current() -> Session:
    """The process's session, made on first use."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Session()
        return _current


def use_budget(mb: float) -> Session:
    """The process's session (made now if there is none) with a compiled-model budget of ``mb``
    MiB, for a front end with a default of its own (the page's ``PAGE_COMPILED_MB``); compiled
    models beyond it that no running plan holds are released at once."""
    s = current()
    with s.budget.lock:
        s.budget.mb = mb
        s.budget.enforce()
    return s


def fresh(**kwargs: Any) -> Session:
    """Clear the current session and start a new one (``kwargs``: :class:`Session`'s)."""
    global _current
    with _current_lock:
        old, _current = _current, Session(**kwargs)
    if old is not None:
        old.clear()
    return _current
