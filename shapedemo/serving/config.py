"""What ``serve`` runs with: :class:`ServeSettings` (the CLI's flags, checked) and
:func:`load_config` (a ``tune --json`` file)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from shapedemo.planning.plan import PlanError
from shapedemo.planning.strategies import STRATEGY_NAMES
from shapedemo.serving.batcher import DEFAULT_STRATEGY, BatchPolicy
from shapedemo.settings import SERVE_MAX_WAIT_MS, parse_ov_config
from shapedemo.shapes import SAMPLE_FLAGS, ShapeSet

__all__ = ["ServeSettings", "load_config"]


def load_config(path: str | Path) -> dict[str, Any]:
    """A deployable configuration as ``tune --json`` prints it: the JSON object, its shapes
    checked by ``ShapeSet.from_dict`` (the one reader of the file's shape fields; ``strategy``,
    ``shapes`` and ``predicted`` are kept for ``/info``). A bad file is one ``PlanError`` line."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PlanError(f"cannot read --config {path}: {getattr(exc, 'strerror', None) or exc}") from None
    except ValueError as exc:
        raise PlanError(f"--config {path} is not JSON ({exc})") from None
    ShapeSet.from_dict(data, what=f"--config {path}")
    return data


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``serve`` runs with, checked. Build with ``ServeSettings.build(...)``, which
    takes the CLI's strings, puts the flags over a ``--config`` file's shapes and checks ranges.
    ``shapes`` is resolved on the model's limit when the engine is known (``resolve_shapes``);
    ``sample`` (lengths, or texts to tokenize) is what ``tuned:K`` tunes on.

    >>> s = ServeSettings.build(strategy="dynamic", max_wait_ms=2)
    >>> s.strategy, s.policy().max_wait_ms, s.port
    ('dynamic', 2.0, 8000)
    """

    model: str | None = None
    device: str = "CPU"
    precision: str = "auto"
    strategy: str = DEFAULT_STRATEGY
    shapes: ShapeSet = field(default_factory=ShapeSet)
    sample: tuple[int, ...] | tuple[str, ...] | None = None
    max_wait_ms: float = SERVE_MAX_WAIT_MS
    max_batch_tokens: int = 4096
    max_texts: int = 256
    max_queue: int = 1024
    truncate: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    config_file: str | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)
    weights: str = "f32"
    calibration: str = "exact"
    calibration_file: str | None = None
    ov_config: dict[str, Any] | None = None
    """OpenVINO properties passed through to ``compile_model`` (``--ov-config``, else the file's)."""

    @classmethod
    def build(
        cls,
        *,
        model: str | None = None,
        device: str = "CPU",
        precision: str = "auto",
        strategy: str | None = None,
        seq_buckets: str | Sequence[int] | None = None,
        batch_sizes: str | Sequence[int] | None = None,
        max_seq: int | None = None,
        pack_seq: int | None = None,
        sample: Sequence[int] | Sequence[str] | None = None,
        max_wait_ms: float = SERVE_MAX_WAIT_MS,
        max_batch_tokens: int = 4096,
        max_texts: int = 256,
        max_queue: int = 1024,
        truncate: bool = False,
        host: str = "127.0.0.1",
        port: int = 8000,
        config_file: str | None = None,
        weights: str | None = None, calibration: str | None = None, calibration_file: str | None = None,
        ov_config: str | Mapping[str, Any] | None = None,
    ) -> "ServeSettings":
        config = load_config(config_file) if config_file else {}
        properties = parse_ov_config(ov_config, what="--ov-config") or parse_ov_config(config.get("ov_config"), what=f"--config {config_file}: ov_config")
        if (weights := weights or config.get("weights") or "f32") == "int8" and not calibration_file:
            raise PlanError("--weights int8 needs --calibration-file FILE: texts like the traffic, one per line")
        shapes = ShapeSet.from_dict(config, what=f"--config {config_file}") if config else ShapeSet()
        shapes = shapes.override(seq_buckets=seq_buckets, batch_sizes=batch_sizes, max_seq=max_seq, pack_seq=pack_seq)
        if shapes.needs_sample and not sample:
            raise PlanError(f"--seq-buckets {shapes.seq_buckets} tunes the buckets on a traffic sample: give one with {SAMPLE_FLAGS}")
        strategy = strategy or config.get("strategy") or DEFAULT_STRATEGY
        if strategy not in STRATEGY_NAMES:
            raise PlanError(f"unknown strategy {strategy!r}; known: {', '.join(STRATEGY_NAMES)}")
        if not 0 <= port <= 65535:
            raise PlanError(f"--port {port} is not a port number (0..65535; 0 picks a free one)")
        for name, value, top in (("--max-texts", max_texts, 4096), ("--max-queue", max_queue, 100_000), ("--max-batch-tokens", max_batch_tokens, 1_000_000)):
            if not 1 <= value <= top:
                raise PlanError(f"{name} {value} is outside 1..{top}")
        if not 0 <= max_wait_ms <= 10_000:
            raise PlanError(f"--max-wait-ms {max_wait_ms} is outside 0..10000")
        if shapes.batch_sizes[-1] > 256:
            raise PlanError("--batch-sizes must be whole numbers within 1..256")
        return cls(
            model=model, device=device, precision=precision, strategy=strategy, shapes=shapes,
            sample=None if not sample else tuple(sample),  # type: ignore[arg-type]
            max_wait_ms=float(max_wait_ms), max_batch_tokens=max_batch_tokens, max_texts=max_texts,
            max_queue=max_queue, truncate=truncate, host=host, port=port, config_file=config_file,
            config=config, weights=weights, calibration=calibration or "exact", calibration_file=calibration_file, ov_config=properties,
        )

    def policy(self) -> BatchPolicy:
        return BatchPolicy(
            max_wait_ms=self.max_wait_ms, max_batch_tokens=self.max_batch_tokens,
            max_batch_texts=self.shapes.batch_sizes[-1], max_queue_texts=max(self.max_queue, self.max_texts),
        )

    def resolve_shapes(self, *, model_limit: int, tokenizer: Any = None) -> ShapeSet:
        """The shapes for a model that takes ``model_limit`` tokens (``ShapeSet.resolve`` for
        traffic: up to the largest bucket), ``tuned:K`` tuned on the sample (texts are tokenized
        with ``tokenizer``, every length cut to the limit).

        >>> ServeSettings.build(seq_buckets="32,128").resolve_shapes(model_limit=512).max_seq
        128
        >>> ServeSettings.build(seq_buckets="tuned:2", sample=[9, 9, 30, 600]).resolve_shapes(model_limit=512).seq_buckets
        (30, 512)
        """
        lengths = None
        if self.sample and self.shapes.needs_sample:
            if isinstance(self.sample[0], str):
                lengths = tokenizer.encode(list(self.sample), truncate=True, max_length=model_limit).lengths
            else:
                lengths = [min(int(n), model_limit) for n in self.sample]
        return self.shapes.resolve(lengths, limit=model_limit, serve=True)
