"""``python -m shapedemo serve``: an embeddings server that applies a shape strategy to traffic.

FastAPI + uvicorn in front of the batcher (``shapedemo.serving.batcher``): requests are tokenized on
arrival, wait at most ``max_wait_ms`` to be grouped, each batch is planned by the chosen
strategy and run on one engine, owned by one worker thread (inference never runs on the event
loop). Every shape is compiled and warmed up at start-up; ``/health`` answers 200 only then.

Routes (names are a contract):

- ``POST /v1/embeddings``: OpenAI's request ``{"input": str | [str], "model", "encoding_format":
  "float" | "base64"}`` and response; the official ``openai`` client works unchanged. The
  ``model`` field is echoed back and otherwise ignored: this server runs the one model it was
  started with, and nothing a client sends makes it read a file or load a model.
- ``POST /embed``: text-embeddings-inference's ``{"inputs": str | [str]}`` -> ``[[...], ...]``.
- ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus text, ``prometheus_client``).

Bad requests get a JSON error (OpenAI's ``{"error": {"message", "type", "param", "code"}}`` on
``/v1``, TEI's ``{"error", "error_type"}`` on ``/embed``) and a 4xx: 400 for a body that is not
a JSON object, 422 for a missing field, a wrong type, an empty input or text, 413 for too many
texts, a text over the longest compiled length (refused, naming its index: never silently
truncated unless the server runs with ``--truncate`` or a TEI request says ``"truncate": true``)
or a body over ``MAX_BODY_BYTES``; a full queue or a server still compiling answers 503 with
``Retry-After``.

>>> parse_input({"input": "hi"}, field="input")
['hi']
>>> parse_input({"input": []}, field="input")
Traceback (most recent call last):
...
shapedemo.serving.server.RequestError: 'input' is empty: send at least one text
"""

from __future__ import annotations

import base64
import dataclasses
import json
import math
import socket
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shapedemo.serving.batcher import (
    DEFAULT_STRATEGY,
    BatchPolicy,
    Batcher,
    BatchRecord,
    NotReady,
    QueueFull,
)
from shapedemo.planning.plan import PlanError
from shapedemo.planning.strategies import STRATEGY_NAMES
from shapedemo.shapes import SAMPLE_FLAGS, ShapeSet

__all__ = [
    "MAX_BODY_BYTES",
    "Metrics",
    "RequestError",
    "ServeSettings",
    "Service",
    "create_app",
    "load_config",
    "parse_input",
    "run_server",
]

MAX_BODY_BYTES = 4 * 2**20
"""The largest request body read (4 MiB: 256 texts of 512 tokens take well under 1 MiB)."""

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0)
FRACTION_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


class RequestError(ValueError):
    """A client's mistake: HTTP ``status`` and one line, ``param`` naming the field."""

    def __init__(self, message: str, *, status: int = 422, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.param = param


# ---- settings -----------------------------------------------------------------------------


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
    max_wait_ms: float = 5.0
    max_batch_tokens: int = 4096
    max_texts: int = 256
    max_queue: int = 1024
    truncate: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    config_file: str | None = None
    config: dict[str, Any] = field(default_factory=dict, compare=False)

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
        max_wait_ms: float = 5.0,
        max_batch_tokens: int = 4096,
        max_texts: int = 256,
        max_queue: int = 1024,
        truncate: bool = False,
        host: str = "127.0.0.1",
        port: int = 8000,
        config_file: str | None = None,
    ) -> "ServeSettings":
        config = load_config(config_file) if config_file else {}
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
            config=config,
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


# ---- request parsing (pure) -----------------------------------------------------------------


def parse_input(body: Mapping[str, Any], *, field: str) -> list[str]:
    """The texts of a request body: ``body[field]`` as a string or a list of strings.

    >>> parse_input({"inputs": ["a", "b"]}, field="inputs")
    ['a', 'b']
    >>> parse_input({"input": [1, 2]}, field="input")
    Traceback (most recent call last):
    ...
    shapedemo.serving.server.RequestError: 'input' holds token ids: this server takes text (a string or a list of strings)
    """
    if field not in body:
        raise RequestError(f"missing field {field!r}: a string or a list of strings", param=field)
    value = body[field]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise RequestError(f"{field!r} must be a string or a list of strings, not {type(value).__name__}", param=field)
    if not value:
        raise RequestError(f"{field!r} is empty: send at least one text", param=field)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value) or all(isinstance(v, list) for v in value):
        raise RequestError(f"{field!r} holds token ids: this server takes text (a string or a list of strings)", param=field)
    for i, v in enumerate(value):
        if not isinstance(v, str):
            raise RequestError(f"{field}[{i}] must be a string, not {type(v).__name__}", param=field)
        if not v.strip():
            raise RequestError(f"{field}[{i}] is empty or only whitespace", param=field)
    return value


# ---- metrics ------------------------------------------------------------------------------


class Metrics:
    """Prometheus metrics of one server, in a registry of its own (several apps may share a
    process, as in tests)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        r = self.registry = CollectorRegistry()
        self.requests = Counter("shapedemo_requests", "HTTP requests answered, by route and status code", ["route", "code"], registry=r)
        self.latency = Histogram("shapedemo_request_latency_seconds", "Request latency in the server, arrival to answer", ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.queue_delay = Histogram("shapedemo_queue_delay_seconds", "Time a request waited before its batch started", buckets=LATENCY_BUCKETS, registry=r)
        self.compute = Histogram("shapedemo_batch_compute_seconds", "Time a batch ran on the engine (all its calls)", buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("shapedemo_batch_size_texts", "Texts per batch", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256), registry=r)
        self.padding = Histogram("shapedemo_batch_padding_fraction", "Share of computed token slots that were padding, per batch", buckets=FRACTION_BUCKETS, registry=r)
        self.calls = Counter("shapedemo_calls", "Inference calls per compiled shape", ["shape", "packed"], registry=r)
        self.tokens = Counter("shapedemo_tokens", "Token slots: real (texts) and computed (with padding)", ["kind"], registry=r)
        self.compiled_under_traffic = Counter("shapedemo_compiled_under_traffic", "Shapes compiled after start-up (should stay 0)", registry=r)
        self.queue = Gauge("shapedemo_queue_texts", "Texts waiting for a batch", registry=r)

    def watch(self, batcher: Batcher) -> None:
        """Observe every batch of ``batcher``; list its compiled shapes at 0 calls."""
        self.queue.set_function(lambda: batcher.queued_texts)
        for shape in batcher.shapes:
            self.calls.labels(shape="dynamic" if shape.dynamic else f"{shape.batch}x{shape.seq}", packed=str(shape.packed).lower())
        batcher.on_batch.append(self.observe_batch)

    def observe_batch(self, record: BatchRecord) -> None:
        self.compute.observe(record.compute_ms / 1e3)
        self.batch_size.observe(record.texts)
        self.padding.observe(record.padding_fraction)
        self.tokens.labels(kind="real").inc(record.real_tokens)
        self.tokens.labels(kind="computed").inc(record.computed_tokens)
        if record.compiled_now:
            self.compiled_under_traffic.inc(record.compiled_now)
        for call in record.calls:
            shape = "dynamic" if call.dynamic else f"{call.batch}x{call.seq}"
            self.calls.labels(shape=shape, packed=str(call.packed).lower()).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


# ---- the service: model, engine, batcher ----------------------------------------------------


@dataclass
class Service:
    """What the routes need: the loaded model, its engine, the batcher and the limits."""

    settings: ServeSettings
    loaded: Any
    engine: Any
    batcher: Batcher
    metrics: Metrics
    text_limit: int

    @classmethod
    def build(cls, settings: ServeSettings, *, log: Callable[[str], None] | None = None) -> "Service":
        """Load the model and the engine, check the plan options; the batcher is not started."""
        from shapedemo.runtime.engine import Engine
        from shapedemo.model import default_spec, load_model

        loaded = load_model(settings.model or default_spec())
        engine = Engine(loaded, device=settings.device, precision=settings.precision)
        return cls.from_engine(settings, engine, log=log)

    @classmethod
    def from_engine(cls, settings: ServeSettings, engine: Any, *, log: Callable[[str], None] | None = None, metrics: Metrics | None = None) -> "Service":
        shapes = settings.resolve_shapes(model_limit=engine.loaded.max_length, tokenizer=engine.loaded.tokenizer)
        kwargs: dict[str, Any] = {"log": log} if log else {}
        batcher = Batcher(engine, settings.strategy, shapes, settings.policy(), **kwargs)
        metrics = metrics or Metrics()
        metrics.watch(batcher)
        limit = min(batcher.longest, engine.loaded.max_length)
        return cls(settings, engine.loaded, engine, batcher, metrics, limit)

    def encode(self, texts: list[str], *, truncate: bool, field: str) -> Any:
        """Token ids of ``texts``; too many texts or one over ``text_limit`` tokens is a
        ``RequestError`` (413) naming the cap or the text's index. With ``truncate``, long texts
        are cut to ``text_limit`` tokens (their last token stays ``[SEP]``)."""
        cap, limit = self.settings.max_texts, self.text_limit
        if len(texts) > cap:
            raise RequestError(f"{len(texts)} texts in one request; this server takes at most {cap}", status=413, param=field)
        from shapedemo.model import TextError

        try:
            encoded = self.loaded.tokenizer.encode(texts, truncate=True, max_length=limit)
        except TextError as exc:  # the tokenizer's own refusals (an empty text)
            raise RequestError(str(exc), param=field) from None
        if encoded.truncated and not truncate:
            index, n = min(encoded.truncated.items())
            raise RequestError(f"{field}[{index}] has {n} tokens; this server takes at most {limit}", status=413, param=field)
        return encoded

    def info(self) -> dict[str, Any]:
        settings, batcher = self.settings, self.batcher
        dims = dataclasses.asdict(self.loaded.dims) if dataclasses.is_dataclass(self.loaded.dims) else None
        pooling = getattr(self.loaded, "pooling", None)
        return {
            "model": self.loaded.spec,
            "model_description": self.loaded.describe(),
            "model_dims": dims,
            "pooling": dataclasses.asdict(pooling) if dataclasses.is_dataclass(pooling) else None,
            "device": self.engine.device,
            "precision": self.engine.inference_precision,
            "strategy": settings.strategy,
            "plan_options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in batcher.plan_options.items()},
            "max_wait_ms": settings.max_wait_ms,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_batch_texts": batcher.policy.max_batch_texts,
            "max_texts_per_request": settings.max_texts,
            "max_queue_texts": batcher.policy.max_queue_texts,
            "max_tokens_per_text": self.text_limit,
            "long_texts": "truncated" if settings.truncate else "refused with 413 (TEI requests may ask \"truncate\": true)",
            "model_field": "echoed back, ignored: this server runs only the model it was started with",
            "state": batcher.state,
            "startup_s": batcher.startup_s,
            "compiled_shapes": batcher.shape_info,
            "config_file": settings.config_file,
            "config_shapes": settings.config.get("shapes"),
            "config_predicted": settings.config.get("predicted"),
        }


# ---- the app --------------------------------------------------------------------------------


def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service`` (its batcher started by whoever runs the app)."""
    app = FastAPI(
        title="shapedemo embeddings",
        description="Sentence embeddings served with a static-shape strategy (see /info).",
        version="0.1.0",
    )
    metrics = service.metrics
    batcher = service.batcher

    def openai_error(status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
        return JSONResponse(body, status_code=status, headers=headers)

    def tei_error(status: int, message: str, *, param: str | None = None, kind: str = "Validation", headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)

    def retry_after() -> dict[str, str]:
        return {"Retry-After": "1"}

    async def read_json(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestError(f"request body of {int(declared)} bytes is over the limit of {MAX_BODY_BYTES}", status=413)
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                raise RequestError(f"request body is over the limit of {MAX_BODY_BYTES} bytes", status=413)
        try:
            body = json.loads(bytes(raw))
        except (ValueError, UnicodeDecodeError):
            raise RequestError("the body is not valid JSON", status=400) from None
        if not isinstance(body, dict):
            raise RequestError(f"the body must be a JSON object, not {type(body).__name__}", status=400)
        return body

    async def run(texts: list[str], *, truncate: bool, field: str) -> tuple[np.ndarray, int]:
        encoded = service.encode(texts, truncate=truncate, field=field)
        result = await batcher.embed(encoded.input_ids, encoded.token_type_ids)
        metrics.queue_delay.observe(result.record.queue_ms / 1e3)
        return result.embeddings, result.record.tokens

    async def answer(route: str, request: Request, handle: Callable[[dict[str, Any]], Any], error: Callable[..., JSONResponse]) -> Any:
        start = time.perf_counter()
        try:
            response = await handle(await read_json(request))
        except RequestError as exc:
            response = error(exc.status, str(exc), param=exc.param)
        except QueueFull as exc:
            response = error(503, f"the server is busy ({exc}); retry shortly", kind="server_busy" if error is openai_error else "Overloaded", headers=retry_after())
        except NotReady as exc:
            response = error(503, f"not ready: {exc}", kind="server_not_ready" if error is openai_error else "Unhealthy", headers=retry_after())
        except Exception as exc:  # a real failure: logged with its traceback, a JSON 500
            import traceback

            traceback.print_exc(file=sys.stderr)
            response = error(500, f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}", kind="server_error" if error is openai_error else "Backend")
        metrics.requests.labels(route=route, code=str(response.status_code)).inc()
        metrics.latency.labels(route=route).observe(time.perf_counter() - start)
        return response

    @app.post("/v1/embeddings")
    async def openai_embeddings(request: Request) -> Any:
        """OpenAI-compatible embeddings (``float`` or ``base64`` of little-endian float32)."""

        async def handle(body: dict[str, Any]) -> JSONResponse:
            texts = parse_input(body, field="input")
            fmt = body.get("encoding_format") or "float"
            if fmt not in ("float", "base64"):
                raise RequestError(f"encoding_format must be 'float' or 'base64', not {fmt!r}", param="encoding_format")
            dims = body.get("dimensions")
            width = service.loaded.dims.hidden_size if service.loaded.dims is not None else None
            if dims is not None and (isinstance(dims, bool) or not isinstance(dims, int) or (width is not None and dims != width)):
                raise RequestError(f"dimensions {dims!r}: this model returns {width} dimensions and cannot shorten them", param="dimensions")
            model = body.get("model")
            if model is not None and not isinstance(model, str):
                raise RequestError("model must be a string (it is echoed back, not used)", param="model")
            embeddings, tokens = await run(texts, truncate=service.settings.truncate, field="input")
            data = [
                {"object": "embedding", "index": i, "embedding": _encode_vector(e, fmt)}
                for i, e in enumerate(embeddings)
            ]
            return JSONResponse({
                "object": "list", "data": data, "model": model or service.loaded.spec,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })

        return await answer("/v1/embeddings", request, handle, openai_error)

    @app.post("/embed")
    async def tei_embed(request: Request) -> Any:
        """text-embeddings-inference style: ``{"inputs": str | [str]}`` -> ``[[...], ...]``."""

        async def handle(body: dict[str, Any]) -> JSONResponse:
            texts = parse_input(body, field="inputs")
            truncate = body.get("truncate", service.settings.truncate)
            normalize = body.get("normalize", True)
            if not isinstance(truncate, bool) or not isinstance(normalize, bool):
                raise RequestError("truncate and normalize must be true or false", param="truncate")
            pooling = getattr(service.loaded, "pooling", None)
            normalized = bool(getattr(pooling, "normalize", True))  # the model's own Normalize module
            if normalized and not normalize:
                raise RequestError("this model's embeddings are L2-normalised by its own pooling: normalize must be true", param="normalize")
            embeddings, _ = await run(texts, truncate=truncate or service.settings.truncate, field="inputs")
            if normalize and not normalized:
                embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
            return JSONResponse([e.tolist() for e in embeddings])

        return await answer("/embed", request, handle, tei_error)

    @app.get("/health")
    async def health() -> Any:
        """200 once every shape is compiled and the worker takes requests, else 503."""
        if batcher.ready:
            return {"status": "ok"}
        body = {"status": batcher.state, "compiled": batcher.compiled, "total": len(batcher.shapes)}
        if batcher.error:
            body["error"] = batcher.error
        return JSONResponse(body, status_code=503, headers=retry_after())

    @app.get("/info")
    async def info() -> Any:
        return service.info()

    @app.get("/metrics")
    async def prometheus() -> Any:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if request.url.path.startswith("/v1"):
            return openai_error(exc.status_code, str(exc.detail))
        return JSONResponse({"error": str(exc.detail), "error_type": "Validation"}, status_code=exc.status_code)

    return app


def _encode_vector(vector: np.ndarray, fmt: str) -> Any:
    """A vector as OpenAI sends it: a list of floats, or base64 of little-endian float32.

    >>> _encode_vector(np.array([1.0, -2.0]), "base64")
    'AACAPwAAAMA='
    """
    if fmt == "base64":
        return base64.b64encode(np.ascontiguousarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


# ---- running it -----------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or one ``PlanError`` line."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
        sock.set_inheritable(True)
        return sock
    except OSError as exc:
        raise PlanError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def run_server(settings: ServeSettings, *, log: Callable[[str], None] | None = None) -> int:
    """Load, listen, compile every shape (``/health`` says 503 meanwhile), serve until SIGINT or
    SIGTERM. A start-up failure (a bad model or device, shapes over the compiled-model memory
    budget) raises a one-line ``PlanError`` (the CLI's exit 2)."""
    import uvicorn

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log = log or say
    service = Service.build(settings, log=log)
    sock = _listen(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    if settings.strategy == "padding-nomask":
        log("serve: warning: padding-nomask leaves the attention mask out: its embeddings are wrong by design")
    log(
        f"serve: listening on http://{url_host}:{port} ({service.loaded.spec}, {settings.device}, "
        f"{service.engine.inference_precision}, strategy {settings.strategy}); "
        f"compiling {len(service.batcher.shapes)} shape(s), /health is 503 until they are ready"
    )
    app = create_app(service)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)

    def watch_startup() -> None:
        try:
            service.batcher.wait_ready()
        except RuntimeError:
            server.should_exit = True

    service.batcher.start()
    threading.Thread(target=watch_startup, name="shapedemo-startup", daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        service.batcher.stop()
        sock.close()
    if service.batcher.state == "failed":
        raise PlanError(f"start-up failed: {service.batcher.error}")
    return 0
