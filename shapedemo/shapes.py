"""The one shape vocabulary: what gets compiled, and how requests are laid onto it.

A ``ShapeSet`` holds the sequence buckets, the batch sizes, the max length and the packing row
length, as the user spelled them (``ShapeSet.parse``: every front end's one parser) or resolved
against an input (``resolve``: the one place for each default); a strategy's declared set adds
the exact compiled ``Shape`` s it may call, plain and packed (``planning.strategies.declare``).
``to_dict`` / ``from_dict`` is the ``tune`` configuration file. Pure: no OpenVINO, no gradio.

Spellings of ``seq_buckets`` (the same on every command, the page and the config file):
``32,64,128`` (a list), ``pow2`` (powers of two from 16 up to the max length), ``pow2:N`` (from
N up), ``linear`` / ``linear:STEP`` (every STEP tokens; eight even steps by default) and
``tuned:K`` (the K edges that pad a sample of lengths least).

>>> s = ShapeSet.parse(seq_buckets="pow2:32", batch_sizes="1,4")
>>> s.seq_buckets, s.batch_sizes, s.resolved
('pow2:32', (1, 4), False)
>>> s.resolve([12, 40]).plan_options()
{'seq_buckets': (32, 64, 128), 'batch_sizes': (1, 4), 'max_seq': 128, 'pack_seq': None}
>>> ShapeSet.parse().resolve(serve=True).seq_buckets     # serve: pow2:32 up to the model's limit
(32, 64, 128, 256, 512)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from shapedemo.planning.edges import (
    check_positive,
    linear,
    parse_int_list,
    positive_sizes,
    powers_of_two,
    tuned,
)
from shapedemo.planning.plan import MAX_POSITIONS, PlanError

__all__ = [
    "DEFAULT_BATCH_SIZES",
    "MAX_SEQ_STEPS",
    "SERVE_SEQ_BUCKETS",
    "SAMPLE_FLAGS",
    "SAMPLE_SIZE",
    "Shape",
    "ShapeSet",
    "default_max_seq",
    "parse_buckets_spec",
]

DEFAULT_BATCH_SIZES: tuple[int, ...] = (1, 2, 4, 8)
"""Compiled batch sizes when none are given (every front end, every strategy)."""
MAX_SEQ_STEPS: tuple[int, ...] = (128, 256, 384, 512)
"""``plan``, ``compare`` and the page compile up to the smallest of these that fits the input."""
SERVE_SEQ_BUCKETS = "pow2:32"
"""``serve``'s and the live-traffic stream's buckets: powers of two from 32 to the model's limit."""
SAMPLE_FLAGS = "--lengths-file, --texts-file or --workload"
"""Where ``serve`` takes the traffic sample that ``tuned:K`` is tuned on."""
SAMPLE_SIZE = 1000
"""Lengths ``serve --workload`` draws (seed 0) for ``--seq-buckets tuned:K``."""

FLAGS: Mapping[str, str] = {
    "seq_buckets": "--seq-buckets", "batch_sizes": "--batch-sizes", "max_seq": "--max-seq",
    "pack_seq": "--pack-seq",
}
"""What the command line calls each field (a front end may pass its own ``names``)."""

_PRESETS = ("pow2", "linear", "tuned")


class Shape(NamedTuple):
    """One compiled model: a static ``batch x seq`` (plain or packed graph), or the dynamic
    model (``dynamic``; ``batch``/``seq`` are then its bounds, 0 when unbounded).

    >>> Shape(4, 64, packed=True).label, Shape.dynamic_model().label, Shape(8, 512, dynamic=True).label
    ('4x64 packed', 'dynamic', 'bounded 1..8 x 1..512')
    >>> Shape(4, 64).model_key, Shape(8, 512, dynamic=True).model_key
    ((False, (4, 64), None), (False, None, (8, 512)))
    """

    batch: int
    seq: int
    packed: bool = False
    dynamic: bool = False

    @classmethod
    def dynamic_model(cls, bounds: Sequence[int] | None = None, *, packed: bool = False) -> "Shape":
        b, s = bounds if bounds is not None else (0, 0)
        return cls(int(b), int(s), packed, True)

    @property
    def static(self) -> tuple[int, int] | None:
        """``(batch, seq)`` of a static shape, None for the dynamic model."""
        return None if self.dynamic else (self.batch, self.seq)

    @property
    def bounds(self) -> tuple[int, int] | None:
        return (self.batch, self.seq) if self.dynamic and self.batch else None

    @property
    def model_key(self) -> tuple[bool, tuple[int, int] | None, tuple[int, int] | None]:
        """The engine's key of this compiled model: ``(packed, static shape, bounds)``."""
        return (self.packed, self.static, self.bounds)

    @property
    def label(self) -> str:
        if self.dynamic:
            return f"bounded 1..{self.batch} x 1..{self.seq}" if self.batch else "dynamic"
        return f"{self.batch}x{self.seq}" + (" packed" if self.packed else "")

    def to_dict(self) -> dict[str, Any]:
        return {"batch": self.batch, "seq": self.seq, "packed": self.packed, "dynamic": self.dynamic}


def parse_buckets_spec(spec: object, *, what: str = "--seq-buckets") -> str | tuple[int, ...]:
    """A bucket spelling, checked: a preset in its normal form (``pow2``, ``pow2:32``,
    ``linear``, ``linear:64``, ``tuned:4``) or a sorted list of edges. Every front end parses here.

    >>> parse_buckets_spec(" Powers-of-two:32 "), parse_buckets_spec("128, 32,64"), parse_buckets_spec([64, 16])
    ('pow2:32', (32, 64, 128), (16, 64))
    >>> parse_buckets_spec("tuned")
    Traceback (most recent call last):
    ...
    shapedemo.planning.plan.PlanError: --seq-buckets: say how many buckets, e.g. tuned:4
    """
    if not isinstance(spec, str):
        return positive_sizes(spec, what=what)  # type: ignore[arg-type]
    name, colon, arg = spec.strip().lower().partition(":")
    name = "pow2" if name == "powers-of-two" else name
    if name not in _PRESETS:
        return positive_sizes(parse_int_list(spec, what=what), what=what)
    arg = arg.strip()
    if colon and not arg:
        raise PlanError(f"{what}: nothing after ':' in {spec.strip()!r}")
    if name == "tuned" and not arg:
        raise PlanError(f"{what}: say how many buckets, e.g. tuned:4")
    if not arg:
        return name
    label = {"pow2": "pow2 smallest bucket", "linear": "linear step", "tuned": "tuned k"}[name]
    number = parse_int_list(arg, what=f"{what}: {label}")
    if len(number) != 1:
        raise PlanError(f"{what}: {label} is one whole number, not {arg!r}")
    return f"{name}:{check_positive(number[0], what=f'{what}: {label}')}"


def default_max_seq(lengths: Sequence[int], *, limit: int = MAX_POSITIONS) -> int:
    """The longest compiled length when the user leaves it to us (``plan``, ``compare``, the
    page): the smallest of 128, 256, 384, 512 that fits the longest input, within ``limit``.

    >>> default_max_seq([12, 40]), default_max_seq([200]), default_max_seq([400]), default_max_seq([40], limit=64)
    (128, 256, 512, 64)
    """
    longest = max(lengths, default=1)
    for size in MAX_SEQ_STEPS:
        if longest <= size <= limit:
            return size
    return limit


def _preset_edges(spec: str, lengths: Sequence[int] | None, top: int, *, what: str) -> tuple[int, ...]:
    name, _, arg = spec.partition(":")
    if name == "pow2":
        low = int(arg) if arg else 16
        return tuple(b for b in powers_of_two(top, min_bucket=low) if b >= min(low, top))
    if name == "linear":
        return linear(top, step=int(arg) if arg else -(-top // 8))
    if not lengths:
        raise PlanError(f"{what} {spec} tunes the buckets on a sample of lengths: give one with {SAMPLE_FLAGS}")
    return tuned(lengths, int(arg), max_seq=top)


@dataclass(frozen=True)
class ShapeSet:
    """Sequence buckets x batch sizes up to ``max_seq`` (packing rows of ``pack_seq``, default
    ``max_seq``), as spelled or resolved; with ``compiled``, the exact models a strategy calls.

    ``seq_buckets`` is None (the default of the front end), a preset spelling (``"pow2:32"``)
    or a sorted tuple; ``resolve`` turns it into a tuple and fills ``max_seq``.
    """

    seq_buckets: str | tuple[int, ...] | None = None
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES
    max_seq: int | None = None
    pack_seq: int | None = None
    compiled: frozenset[Shape] | None = field(default=None, compare=False)

    @classmethod
    def parse(
        cls,
        *,
        seq_buckets: object = None,
        batch_sizes: object = None,
        max_seq: object = None,
        pack_seq: object = None,
        names: Mapping[str, str] = FLAGS,
    ) -> "ShapeSet":
        """Every spelling a user types, checked (one ``PlanError`` line naming ``names[field]``):
        buckets as text, a preset or a list; batch sizes as text (``1,2,4``) or a list."""
        buckets = None if seq_buckets in (None, "") else parse_buckets_spec(seq_buckets, what=names["seq_buckets"])
        sizes = DEFAULT_BATCH_SIZES
        if batch_sizes not in (None, ""):
            what = names["batch_sizes"]
            raw = parse_int_list(batch_sizes, what=what) if isinstance(batch_sizes, str) else batch_sizes
            sizes = positive_sizes(raw, what=what)  # type: ignore[arg-type]
        tops = {}
        for key, value in (("max_seq", max_seq), ("pack_seq", pack_seq)):
            tops[key] = None if value is None else check_positive(value, what=names[key])
        return cls(buckets, sizes, tops["max_seq"], tops["pack_seq"])

    # ---- the tune configuration file ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The configuration file's shape fields (``tune --json`` adds ``shapes`` and
        ``predicted``); ``compiled`` as ``[[batch, seq, packed], ...]`` when declared.

        >>> ShapeSet((16, 64), (1, 4), 64).to_dict()
        {'seq_buckets': [16, 64], 'batch_sizes': [1, 4], 'max_seq': 64, 'pack_seq': None}
        """
        buckets = self.seq_buckets
        data: dict[str, Any] = {
            "seq_buckets": list(buckets) if isinstance(buckets, tuple) else buckets,
            "batch_sizes": list(self.batch_sizes),
            "max_seq": self.max_seq,
            "pack_seq": self.pack_seq,
        }
        if self.compiled is not None:
            data["compiled"] = [[s.batch, s.seq, s.packed] for s in self.shapes()]
        return data

    @classmethod
    def from_dict(cls, data: object, *, what: str = "config") -> "ShapeSet":
        """A configuration file (``tune --json``: ``seq_buckets`` and ``batch_sizes``, optional
        ``max_seq`` and ``pack_seq``; other keys are the caller's), one ``PlanError`` line if not.

        >>> ShapeSet.from_dict({"seq_buckets": [64, 16], "batch_sizes": [4, 1], "shapes": []})
        ShapeSet(seq_buckets=(16, 64), batch_sizes=(1, 4), max_seq=None, pack_seq=None, compiled=None)
        >>> ShapeSet.from_dict({"seq_buckets": [16]}, what="--config c.json")
        Traceback (most recent call last):
        ...
        shapedemo.planning.plan.PlanError: --config c.json: not a configuration from `tune --json` (needs "seq_buckets" and "batch_sizes")
        """
        if not isinstance(data, Mapping) or "seq_buckets" not in data or "batch_sizes" not in data:
            raise PlanError(f"{what}: not a configuration from `tune --json` (needs \"seq_buckets\" and \"batch_sizes\")")
        for key in ("seq_buckets", "batch_sizes"):
            value = data[key]
            if not value or not isinstance(value, (list, tuple, str)):
                raise PlanError(f"{what}: \"{key}\" must be a non-empty list of whole numbers")
        names = {key: f"{what}: \"{key}\"" for key in FLAGS}
        return cls.parse(
            seq_buckets=data["seq_buckets"], batch_sizes=data["batch_sizes"],
            max_seq=data.get("max_seq"), pack_seq=data.get("pack_seq"), names=names,
        )

    def override(self, **given: Any) -> "ShapeSet":
        """These shapes with the fields a user gave (not None) parsed and put over them: flags
        win over a configuration file."""
        parsed = ShapeSet.parse(**{k: v for k, v in given.items() if k != "names"}, names=given.get("names", FLAGS))
        changes = {k: getattr(parsed, k) for k, v in given.items() if k in FLAGS and v not in (None, "")}
        return replace(self, **changes)

    # ---- defaults, written once -------------------------------------------------------------
    @property
    def resolved(self) -> bool:
        return isinstance(self.seq_buckets, tuple) and self.max_seq is not None

    @property
    def needs_sample(self) -> bool:
        """Whether resolving needs a sample of lengths (``tuned:K``)."""
        return isinstance(self.seq_buckets, str) and self.seq_buckets.startswith("tuned")

    def resolve(
        self,
        lengths: Sequence[int] | None = None,
        *,
        limit: int = MAX_POSITIONS,
        serve: bool = False,
        names: Mapping[str, str] = FLAGS,
    ) -> "ShapeSet":
        """Concrete buckets and max length. ``serve`` (traffic of unknown lengths): buckets
        default to ``pow2:32`` up to ``max_seq`` or the model's ``limit``, and ``max_seq`` is
        the largest bucket. Else (``plan``, ``compare``, the page; ``lengths`` the input):
        ``max_seq`` defaults to the smallest of 128/256/384/512 that fits, raised to the largest
        bucket of a typed list; buckets default to ``pow2``. ``tuned:K`` tunes on ``lengths``.

        >>> ShapeSet.parse(seq_buckets="32,256").resolve([12]).max_seq
        256
        >>> ShapeSet.parse(seq_buckets="16,64").resolve(serve=True).max_seq
        64
        >>> ShapeSet.parse(seq_buckets="tuned:2").resolve(serve=True)
        Traceback (most recent call last):
        ...
        shapedemo.planning.plan.PlanError: --seq-buckets tuned:2 tunes the buckets on a sample of lengths: give one with --lengths-file, --texts-file or --workload
        """
        if self.max_seq is not None and self.max_seq > limit:
            raise PlanError(f"{names['max_seq']} {self.max_seq} is over the model's limit of {limit} tokens")
        spec = self.seq_buckets
        if serve:
            spec = SERVE_SEQ_BUCKETS if spec is None else spec
            top = self.max_seq or limit
        else:
            top = self.max_seq or default_max_seq(lengths or (), limit=limit)
            longest = max(lengths or (), default=0)
            if longest > top:
                raise PlanError(
                    f"the longest input has {longest} tokens, over {names['max_seq']} {top} "
                    "(raise it, or leave it to the default)"
                )
            spec = "pow2" if spec is None else spec
        if isinstance(spec, str):
            buckets = _preset_edges(spec, lengths, top, what=names["seq_buckets"])
        else:
            buckets = spec
            if buckets[-1] > limit:
                raise PlanError(f"{names['seq_buckets']}: bucket {buckets[-1]} is over the model's limit of {limit} tokens")
            if self.max_seq is None:  # a typed list (a tune configuration) is compiled as given
                top = buckets[-1] if serve else max(top, buckets[-1])
        if self.max_seq is None and self.pack_seq is not None:  # so is a typed pack length
            top = max(top, min(self.pack_seq, limit))
        return replace(self, seq_buckets=tuple(buckets), max_seq=top, compiled=None)

    # ---- what make_plan takes, what is compiled ---------------------------------------------
    def plan_options(self) -> dict[str, Any]:
        """``make_plan``'s keyword arguments (resolved shapes only)."""
        if not self.resolved:
            raise PlanError("shapes not resolved yet (no max length or buckets)")
        return {
            "seq_buckets": self.seq_buckets, "batch_sizes": self.batch_sizes,
            "max_seq": self.max_seq, "pack_seq": self.pack_seq,
        }

    def shapes(self) -> list[Shape]:
        """The declared compiled models, sorted (plain first, then packed; dynamic first)."""
        if self.compiled is None:
            raise PlanError("no compiled set declared: ask planning.strategies.declare")
        return sorted(self.compiled, key=lambda s: (s.packed, not s.dynamic, s.batch, s.seq))

    @property
    def plain(self) -> list[tuple[int, int]]:
        return [(s.batch, s.seq) for s in self.shapes() if not s.packed and not s.dynamic]

    @property
    def packed(self) -> list[tuple[int, int]]:
        return [(s.batch, s.seq) for s in self.shapes() if s.packed and not s.dynamic]

    @property
    def longest(self) -> int:
        """The longest text a batch may hold: the longest compiled sequence (``max_seq`` for
        the dynamic model)."""
        seqs = [s.seq for s in self.shapes() if not s.dynamic]
        return max(seqs) if seqs else int(self.max_seq or MAX_POSITIONS)

    def __contains__(self, shape: object) -> bool:
        return self.compiled is not None and shape in self.compiled


def shapes_of(plan: Any) -> set[Shape]:
    """The compiled models a plan's calls run on (checked against a declared set).

    >>> from shapedemo.planning.strategies import make_plan
    >>> sorted(s.label for s in shapes_of(make_plan("packing", [12, 40], max_seq=64)))
    ['1x64 packed']
    """
    if plan.dynamic:
        return {Shape.dynamic_model(plan.params.get("bounds"), packed=plan.packed)}
    return {Shape(b, s, plan.packed) for b, s in plan.compiled_shapes}


def union(sets: Iterable[Iterable[Shape]]) -> frozenset[Shape]:
    return frozenset(s for group in sets for s in group)
