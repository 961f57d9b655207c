"""Plans: pure data describing how a batch of sequences is laid out into static-shape calls.

A plan is made from sequence lengths alone, without OpenVINO. Everything else (the engine, the
plots, the CLI) reads plans, so the padding waste and the chunk decomposition can be shown and
checked before anything runs.

Vocabulary:
- a *segment* is one sequence (by its index in the request) placed in a row at an offset;
- a *row* holds zero or more segments (one for every strategy but packing; zero = padding row);
- a *call* is one inference at one static shape ``(batch, seq)`` with exactly ``batch`` rows;
- a *plan* is the list of calls that together place every token of every sequence once.

>>> p = Plan("padding", lengths=(3, 5), calls=(Call(2, 8, ((Segment(0, 0, 3),), (Segment(1, 0, 5),))),))
>>> p.real_tokens, p.computed_tokens, p.padding_fraction, p.num_calls
(8, 16, 0.5, 1)
>>> p.compiled_shapes
[(2, 8)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence

MAX_POSITIONS = 512
"""BERT's position table, the default ``max_seq`` (a model with a longer table may plan longer)."""


class PlanError(ValueError):
    """Bad arguments for a plan (lengths, sizes, buckets, strategy name), in one human line.

    The CLI prints it as ``shapedemo: error: <message>`` and the UI shows it; it is never a bug.
    """


class Segment(NamedTuple):
    """One sequence ``seq`` (index into the request) occupying ``length`` slots from ``offset``.

    A named tuple, not a dataclass: a plan of 10,000 sequences makes 10,000 of them.
    """

    seq: int
    offset: int
    length: int

    def to_dict(self) -> dict[str, int]:
        return {"seq": self.seq, "offset": self.offset, "length": self.length}


Row = tuple[Segment, ...]


@dataclass(frozen=True)
class Call:
    """One inference at the static shape ``(batch, seq)``; ``rows`` has exactly ``batch`` entries."""

    batch: int
    seq: int
    rows: tuple[Row, ...]

    @property
    def shape(self) -> tuple[int, int]:
        return (self.batch, self.seq)

    @property
    def real_tokens(self) -> int:
        return sum(s.length for row in self.rows for s in row)

    @property
    def computed_tokens(self) -> int:
        return self.batch * self.seq

    @property
    def padding_rows(self) -> int:
        return sum(1 for row in self.rows if not row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "seq": self.seq,
            "rows": [[s.to_dict() for s in row] for row in self.rows],
        }


@dataclass(frozen=True)
class Plan:
    """A strategy's layout of ``lengths`` into calls.

    ``dynamic``: the calls run on the one dynamic-shape model (no static shape is compiled per
    call). ``masked``: False only for ``padding-nomask`` (the attention mask is all ones).
    ``packed``: rows may hold several segments (positions restart per segment).
    """

    strategy: str
    lengths: tuple[int, ...]
    calls: tuple[Call, ...]
    dynamic: bool = False
    masked: bool = True
    packed: bool = False
    params: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def real_tokens(self) -> int:
        return sum(c.real_tokens for c in self.calls)

    @property
    def computed_tokens(self) -> int:
        return sum(c.computed_tokens for c in self.calls)

    @property
    def padding_tokens(self) -> int:
        return self.computed_tokens - self.real_tokens

    @property
    def padding_fraction(self) -> float:
        total = self.computed_tokens
        return 0.0 if total == 0 else (total - self.real_tokens) / total

    @property
    def num_calls(self) -> int:
        return len(self.calls)

    @property
    def compiled_shapes(self) -> list[tuple[int, int]]:
        """The distinct static shapes this plan needs compiled (empty for a dynamic plan)."""
        if self.dynamic:
            return []
        return sorted({c.shape for c in self.calls})

    @property
    def call_shapes(self) -> list[tuple[int, int]]:
        """The distinct shapes the calls run at (for dynamic plans too)."""
        return sorted({c.shape for c in self.calls})

    @property
    def attention_cost(self) -> int:
        """A proxy for attention work: the sum over calls of ``batch * seq**2``."""
        return sum(c.batch * c.seq * c.seq for c in self.calls)

    @property
    def packing_efficiency(self) -> float | None:
        """For a packed plan, the lower bound on its rows over the rows it uses (1.0: no packing
        of the same sequences into rows of the same lengths uses fewer rows); None otherwise.

        Rows are counted per row length ``s`` (a call's ``seq``): the ``r_s`` rows holding
        ``t_s`` real tokens need at least ``ceil(t_s / s)`` rows, so the efficiency is
        ``sum(ceil(t_s / s)) / sum(r_s)``. For rows of one length it is
        ``ceil(real tokens / row length) / rows``. Padding rows are not counted.

        >>> row = (Segment(0, 0, 5), Segment(1, 5, 2))
        >>> Plan("packing", (5, 2, 6), (Call(2, 8, (row, (Segment(2, 0, 6),))),), packed=True).packing_efficiency
        1.0
        >>> Plan("packing", (3, 4), (Call(2, 8, ((Segment(0, 0, 3),), (Segment(1, 0, 4),))),), packed=True).packing_efficiency
        0.5
        """
        if not self.packed:
            return None
        rows: dict[int, int] = {}
        tokens: dict[int, int] = {}
        for call in self.calls:
            used = [row for row in call.rows if row]
            rows[call.seq] = rows.get(call.seq, 0) + len(used)
            tokens[call.seq] = tokens.get(call.seq, 0) + sum(s.length for row in used for s in row)
        used_rows = sum(rows.values())
        bound = sum(-(-t // s) for s, t in tokens.items())
        return 1.0 if used_rows == 0 else bound / used_rows

    def segments(self) -> Iterable[tuple[int, int, Segment]]:
        """Yield ``(call index, row index, segment)`` for every placed segment."""
        for ci, call in enumerate(self.calls):
            for ri, row in enumerate(call.rows):
                for seg in row:
                    yield ci, ri, seg

    def validate(self) -> None:
        """Raise ``ValueError`` unless every token of every sequence is placed exactly once,
        rows match their call's batch, and no segment crosses its row or overlaps another."""
        n = len(self.lengths)
        placed: list[int | None] = [None] * n
        for ci, call in enumerate(self.calls):
            if call.batch < 1 or call.seq < 1:
                raise ValueError(f"call {ci}: shape {call.shape} is not positive")
            if len(call.rows) != call.batch:
                raise ValueError(f"call {ci}: {len(call.rows)} rows for batch {call.batch}")
            for ri, row in enumerate(call.rows):
                end = 0
                for seg in row if len(row) < 2 else sorted(row, key=lambda s: s.offset):
                    if seg.length < 1 or seg.offset < end:
                        raise ValueError(f"call {ci} row {ri}: segment {seg} overlaps or is empty")
                    end = seg.offset + seg.length
                    if end > call.seq:
                        raise ValueError(f"call {ci} row {ri}: segment {seg} crosses seq {call.seq}")
                    if not 0 <= seg.seq < n:
                        raise ValueError("segments name sequences outside the request")
                    if placed[seg.seq] is not None:
                        raise ValueError(f"sequence {seg.seq} placed twice")
                    placed[seg.seq] = seg.length
        for i, (want, got) in enumerate(zip(self.lengths, placed)):
            if want != got:
                raise ValueError(f"sequence {i} (length {want}) placed as {got}")

    def to_dict(self) -> dict[str, Any]:
        """The CLI's JSON form (field names are a contract: add, never rename)."""
        return {
            "strategy": self.strategy,
            "calls": [c.to_dict() for c in self.calls],
            "real_tokens": self.real_tokens,
            "computed_tokens": self.computed_tokens,
            "padding_fraction": self.padding_fraction,
            "num_calls": self.num_calls,
            "compiled_shapes": [list(s) for s in self.compiled_shapes],
            "call_shapes": [list(s) for s in self.call_shapes],
            "attention_cost": self.attention_cost,
            "dynamic": self.dynamic,
            "masked": self.masked,
            "packed": self.packed,
            "params": self.params,
            **({"packing_efficiency": self.packing_efficiency} if self.packed else {}),
        }


def one_per_row(members: Iterable[tuple[int, int]]) -> list[Row]:
    """One row per ``(sequence index, length)``, the sequence at offset 0 (all but packing).

    >>> one_per_row([(4, 6)])
    [(Segment(seq=4, offset=0, length=6),)]
    """
    return [(Segment(i, 0, n),) for i, n in members]


def fill_calls(rows: Sequence[Row], chunks: Iterable[int], seq: int) -> list[Call]:
    """Calls of batch ``chunks[i]`` at ``seq``, filled with ``rows`` in order; the last call gets
    the padding rows (empty rows) that the chunks hold beyond ``len(rows)``.

    >>> calls = fill_calls(one_per_row([(0, 5), (1, 3), (2, 7)]), [2, 2], 8)
    >>> [(c.shape, c.padding_rows) for c in calls]
    [((2, 8), 0), ((2, 8), 1)]
    """
    calls, start = [], 0
    for batch in chunks:
        taken = tuple(rows[start : start + batch])
        calls.append(Call(batch, seq, taken + ((),) * (batch - len(taken))))
        start += batch
    if start < len(rows):
        raise ValueError(f"{len(rows)} rows do not fit chunks holding {start}")
    return calls


def single_row_call(batch: int, seq: int, members: list[tuple[int, int]]) -> Call:
    """A call of shape ``(batch, seq)`` whose first rows hold ``members`` as ``(seq index, length)``,
    one per row at offset 0; the rest are padding rows.

    >>> single_row_call(2, 8, [(4, 6)]).rows
    ((Segment(seq=4, offset=0, length=6),), ())
    """
    (call,) = fill_calls(one_per_row(members), [batch], seq)
    return call
