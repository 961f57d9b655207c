"""What a call costs: the price ``auto`` and the bucket budget minimise.

A ``CostModel`` prices one call ``(batch, seq)`` on the plain or the packed graph, from the best
source it has:

1. a measured table ``{(batch, seq): ms}`` (``packed_table`` for the packed graph), looked up
   as a monotone envelope: a shape is priced at most what any measured shape at least as large
   in both axes costs (timings on a loaded machine can put 1 x 24 above 1 x 32; taken as they
   are, they would move texts up into calls that really cost more);
2. a model fitted to a few measured shapes by least squares,
   ``ms = per_call + per_slot * batch * seq + attention * batch * seq**2`` (the per-call overhead,
   the work per token slot, and attention's quadratic term);
3. else the computed token slots ``batch * seq`` (unit ``"token slots"``, not ms).

Where the device also runs the dynamic model (a CPU outside static-only mode), a
``dynamic_table`` of calls timed on it prices ``price_dynamic``: ``auto`` may then run a request
as one dynamic call padded to its longest text, when that is cheaper than any static layout.

A shape the table lacks falls through to the fitted model, then to token slots. Pure: numpy is
imported only to fit.

>>> model = fit_cost_model({(1, 32): 7.0, (1, 128): 19.0, (4, 128): 60.0, (8, 64): 55.0})
>>> round(model.price(2, 64), 1), model.price(1, 32), model.unit, model.source
(16.7, 7.0, 'ms', 'table+fitted')
>>> CostModel().price(4, 64), CostModel().unit
(256.0, 'token slots')
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from itertools import combinations
from typing import Any, Callable, Mapping

from shapedemo.planning.edges import check_cost, check_positive
from shapedemo.planning.plan import Plan, PlanError

__all__ = ["TERMS", "CostModel", "fit_cost_model", "monotone"]

TERMS = ("per_call_ms", "per_slot_ms", "attention_ms")
"""The fitted model's coefficients, in order: ms per call, per ``batch*seq``, per ``batch*seq**2``."""


def _features(batch: int, seq: int) -> tuple[float, float, float]:
    return (1.0, float(batch * seq), float(batch * seq * seq))


@dataclass(frozen=True)
class CostModel:
    """Prices calls; see the module docstring for the order of sources.

    ``packed_factor`` scales plain prices (table or fitted) for the packed graph where
    ``packed_table`` has no entry (1.0: a packed call costs what a plain one of its shape does,
    which is what the engine's measurements show within noise; fit it from both tables).
    """

    table: Mapping[tuple[int, int], float] = field(default_factory=dict)
    packed_table: Mapping[tuple[int, int], float] = field(default_factory=dict)
    coefficients: tuple[float, float, float] | None = None
    packed_factor: float = 1.0
    dynamic_table: Mapping[tuple[int, int], float] = field(default_factory=dict)
    """Calls timed on the dynamic model at exact shapes (``price_dynamic``); empty where the
    device takes static shapes only, and then ``auto`` plans static shapes only."""
    origin: str | None = field(default=None, compare=False)
    """Where the prices were measured, in words (``runtime/costs.py`` sets it); see ``pricing``."""

    @property
    def unit(self) -> str:
        return "ms" if self.table or self.packed_table or self.coefficients else "token slots"

    @property
    def source(self) -> str:
        """``table``, ``fitted``, ``table+fitted`` or ``token slots``: where prices come from."""
        parts = [
            name
            for name, present in (
                ("table", bool(self.table or self.packed_table)),
                ("fitted", self.coefficients is not None),
            )
            if present
        ]
        return "+".join(parts) or "token slots"

    @property
    def pricing(self) -> str:
        """Which pricing decides, in words, for the page and the CLI.

        >>> CostModel().pricing
        'token slots (no measured cost table for this device yet)'
        >>> CostModel({(1, 16): 2.0}).pricing
        'a given cost table (table)'
        """
        if self.origin:
            return self.origin
        if self.unit != "ms":
            return "token slots (no measured cost table for this device yet)"
        return f"a given cost {'table' if self.table or self.packed_table else 'model'} ({self.source})"

    @cached_property
    def _envelopes(self) -> tuple[dict[tuple[int, int], float], dict[tuple[int, int], float]]:
        return monotone(self.table), monotone(self.packed_table)

    def price(self, batch: int, seq: int, *, packed: bool = False) -> float:
        """Predicted cost of one call of shape ``(batch, seq)``, in ``unit``.

        >>> CostModel({(1, 24): 3.5, (1, 32): 3.3}).price(1, 24)   # never above a larger shape
        3.3
        """
        shape = (batch, seq)
        plain, packed_prices = self._envelopes
        if packed and shape in packed_prices:
            return packed_prices[shape]
        factor = self.packed_factor if packed else 1.0
        if shape in plain:
            return plain[shape] * factor
        if self.coefficients is not None:
            return factor * sum(c * x for c, x in zip(self.coefficients, _features(batch, seq)))
        if self.table or self.packed_table:
            raise PlanError(
                f"cost table has no latency for compiled shape {batch} x {seq} "
                "(give a few more shapes to fit a model)"
            )
        return float(batch * seq)

    @cached_property
    def fingerprint(self) -> tuple:
        """The prices by value, hashable: what a planner kept across plans is keyed by."""
        return (
            tuple(sorted(self.table.items())), tuple(sorted(self.packed_table.items())), self.coefficients,
            self.packed_factor, tuple(sorted(self.dynamic_table.items())),
        )

    @property
    def dynamic(self) -> bool:
        """Whether dynamic calls are priced (a ``dynamic_table`` was measured)."""
        return bool(self.dynamic_table)

    def price_dynamic(self, batch: int, seq: int) -> float:
        """Predicted ms of one call of ``(batch, seq)`` on the dynamic model: at a measured
        batch size, linear in ``seq`` between the measured lengths around it (below the
        shortest, that one's price; above the longest, in proportion); another batch size is
        priced at the next larger measured one (above them all, in proportion).

        >>> m = CostModel(dynamic_table={(1, 16): 2.0, (1, 32): 3.0, (4, 16): 5.0, (4, 32): 9.0})
        >>> m.price_dynamic(1, 24), m.price_dynamic(1, 8), m.price_dynamic(2, 32), m.price_dynamic(8, 64)
        (2.5, 2.0, 9.0, 36.0)
        """
        if not self.dynamic_table:
            raise PlanError("no dynamic calls were timed on this device: dynamic calls cannot be priced")
        by_batch = self._dynamic_points
        at = next((b for b in by_batch if b >= batch), max(by_batch))
        points = by_batch[at]
        if seq <= points[0][0]:
            price = points[0][1]
        elif seq >= points[-1][0]:
            price = points[-1][1] * seq / points[-1][0]
        else:
            (s0, m0), (s1, m1) = next((p, q) for p, q in zip(points, points[1:]) if p[0] <= seq <= q[0])
            price = m0 + (m1 - m0) * (seq - s0) / (s1 - s0)
        return price * max(1.0, batch / at)

    @cached_property
    def _dynamic_points(self) -> dict[int, list[tuple[int, float]]]:
        """``dynamic_table`` as ``{batch: [(seq, ms), ...]}``, batches and lengths ascending."""
        return {at: sorted((s, ms) for (b, s), ms in self.dynamic_table.items() if b == at)
                for at in sorted({b for b, _ in self.dynamic_table})}

    def static_only(self) -> CostModel:
        """This model without its dynamic prices: for planning a static-shape deployment."""
        return replace(self, dynamic_table={}) if self.dynamic_table else self

    def price_plan(self, plan: Plan) -> float:
        """The summed price of ``plan``'s calls, run one after another, on its graph.

        >>> from shapedemo.planning.strategies import make_plan
        >>> CostModel().price_plan(make_plan("padding", [10, 20], max_seq=64))
        512.0
        """
        if plan.dynamic:
            return sum(self.price_dynamic(c.batch, c.seq) for c in plan.calls)
        return sum(self.price(c.batch, c.seq, packed=plan.packed) for c in plan.calls)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form (``from_dict`` reads it back).

        >>> CostModel({(1, 16): 2.5}, coefficients=(1.0, 0.5, 0.0)).to_dict()["table"]
        [{'batch': 1, 'seq': 16, 'ms': 2.5}]
        """
        return {
            "unit": self.unit,
            "source": self.source,
            "coefficients": None
            if self.coefficients is None
            else dict(zip(TERMS, self.coefficients)),
            "packed_factor": self.packed_factor,
            "origin": self.origin,
            "table": _rows(self.table),
            "packed_table": _rows(self.packed_table),
            **({"dynamic_table": _rows(self.dynamic_table)} if self.dynamic_table else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CostModel:
        """The model ``to_dict`` wrote; a malformed document is a one-line ``PlanError``.

        >>> m = fit_cost_model({(1, 16): 2.0, (4, 64): 9.0, (8, 128): 40.0})
        >>> CostModel.from_dict(m.to_dict()) == m
        True
        """
        try:
            coefficients = data.get("coefficients")
            coef = (
                None
                if coefficients is None
                else tuple(
                    check_cost(coefficients[name], what=f"cost model {name}") for name in TERMS
                )
            )
            return cls(
                table=_table(data.get("table", [])),
                packed_table=_table(data.get("packed_table", [])),
                coefficients=coef,  # type: ignore[arg-type]
                packed_factor=check_cost(data.get("packed_factor", 1.0), what="packed_factor"),
                dynamic_table=_table(data.get("dynamic_table", [])),
                origin=None if data.get("origin") is None else str(data["origin"]),
            )
        except (AttributeError, KeyError, TypeError) as exc:
            raise PlanError(f"cost model: malformed document ({exc.__class__.__name__}: {exc})") from None

    @classmethod
    def from_table(cls, table: Mapping[tuple[int, int], float]) -> CostModel:
        """Exact lookups in ``table``; shapes it lacks priced by a model fitted to it (when it has
        enough shapes to fit one).

        >>> CostModel.from_table({(1, 16): 2.0}).source
        'table+fitted'
        """
        return fit_cost_model(table)


def monotone(table: Mapping[tuple[int, int], float]) -> dict[tuple[int, int], float]:
    """Each shape's latency capped at the least latency of the shapes at least as large in both
    axes: a call never costs more than a larger one, whatever noise the timings caught.

    >>> monotone({(1, 16): 2.0, (1, 24): 3.5, (1, 32): 3.3, (2, 16): 3.0})
    {(1, 16): 2.0, (1, 24): 3.3, (1, 32): 3.3, (2, 16): 3.0}
    """
    items = list(table.items())
    return {
        (b, s): min(v for (b2, s2), v in items if b2 >= b and s2 >= s) for (b, s) in table
    }


def _rows(table: Mapping[tuple[int, int], float]) -> list[dict[str, float]]:
    return [{"batch": b, "seq": s, "ms": ms} for (b, s), ms in sorted(table.items())]


def _table(rows: Any) -> dict[tuple[int, int], float]:
    table = {}
    for row in rows:
        shape = (
            check_positive(row["batch"], what="cost model batch"),
            check_positive(row["seq"], what="cost model seq"),
        )
        table[shape] = check_cost(row["ms"], what=f"cost model latency for {shape[0]} x {shape[1]}")
    return table


def check_cost_table(cost_table: Mapping[tuple[int, int], float]) -> dict[tuple[int, int], float]:
    """The table with ``(batch, seq)`` int keys and finite latencies >= 0.

    >>> check_cost_table({(4, 128): 12})
    {(4, 128): 12.0}
    """
    table = {}
    for key, value in cost_table.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise PlanError(f"cost table key {key!r} is not a (batch, seq) pair")
        shape = (
            check_positive(key[0], what="cost table batch"),
            check_positive(key[1], what="cost table seq"),
        )
        table[shape] = check_cost(value, what=f"cost table latency for {shape[0]} x {shape[1]}")
    return table


Solver = Callable[[Any, Any], Any]
"""``(a, y) -> coefficients`` solving ``a @ coef ~ y`` (numpy arrays): plain least squares by
default; ``runtime/costs.py`` passes ``measure.stats.robust_lstsq`` (Huber), so one disturbed
timing cannot drag the fit."""


def fit_cost_model(
    table: Mapping[tuple[int, int], float],
    *,
    packed_table: Mapping[tuple[int, int], float] | None = None,
    solver: Solver | None = None,
    dynamic_table: Mapping[tuple[int, int], float] | None = None,
) -> CostModel:
    """A ``CostModel`` keeping ``table`` for exact lookups, with coefficients fitted to it.

    Least squares on the relative error (a 5 ms shape counts as much as a 500 ms one), over
    the subsets of the three terms whose coefficients all come out >= 0, the subset of least
    error winning (ties to fewer terms); at most as many terms as measured shapes. With
    ``packed_table``, ``packed_factor`` is the median packed/plain ratio over shapes in both.

    Measurements of ``3 + 0.05 b s + 0.0001 b s^2`` ms give those coefficients back:

    >>> table = {(1, 32): 4.7024, (4, 64): 17.4384, (8, 128): 67.3072, (1, 256): 22.3536}
    >>> [round(c, 5) for c in fit_cost_model(table).coefficients]
    [3.0, 0.05, 0.0001]
    >>> fit_cost_model({})
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: cost model: no measured shapes to fit
    """
    checked = check_cost_table(table)
    packed = check_cost_table(packed_table or {})
    if not checked:
        raise PlanError("cost model: no measured shapes to fit")
    factor = 1.0
    both = sorted(s for s in packed if s in checked and checked[s] > 0)
    if both:
        ratios = sorted(packed[s] / checked[s] for s in both)
        factor = ratios[len(ratios) // 2]
    dynamic = check_cost_table(dynamic_table or {})
    return CostModel(checked, packed, _least_squares(checked, solver), factor, dynamic_table=dynamic)


def _least_squares(table: Mapping[tuple[int, int], float], solver: Solver | None = None) -> tuple[float, float, float]:
    import numpy as np

    if solver is None:
        def solver(a: Any, y: Any) -> Any:
            return np.linalg.lstsq(a, y, rcond=None)[0]

    shapes = sorted(table)
    x = np.array([_features(b, s) for b, s in shapes])
    y = np.array([table[s] for s in shapes])
    weight = 1.0 / np.maximum(y, 1e-9)  # relative error
    best: tuple[float, int, tuple[float, float, float]] | None = None
    for size in range(1, min(len(TERMS), len(shapes)) + 1):
        for terms in combinations(range(len(TERMS)), size):
            a = x[:, terms] * weight[:, None]
            coef = np.asarray(solver(a, y * weight), dtype=float)
            if (coef < 0).any() or not np.isfinite(coef).all():
                continue
            error = float(np.sum((a @ coef - y * weight) ** 2))
            full = [0.0, 0.0, 0.0]
            for t, c in zip(terms, coef):
                full[t] = float(c)
            candidate = (round(error, 12), size, tuple(full))
            if best is None or candidate[:2] < best[:2]:
                best = candidate  # type: ignore[assignment]
    if best is None:  # every subset needs a negative coefficient: price by the mean per slot
        per_slot = float(np.mean(y / x[:, 1]))
        return (0.0, per_slot, 0.0)
    return best[2]

