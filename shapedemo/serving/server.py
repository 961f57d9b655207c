"""``python -m shapedemo serve``: an embeddings server that applies a shape strategy to traffic.

FastAPI + uvicorn in front of the batcher (``shapedemo.serving.batcher``): requests are tokenized on
arrival, wait at most ``max_wait_ms`` to be grouped (0 by default: a batch is what queued while
the last one ran), each batch is planned by the chosen strategy and run on one engine, owned by
one worker thread (inference never runs on the event loop). Every shape is compiled and warmed
up at start-up; ``/health`` answers 200 only then.

Routes (names are a contract):

- ``POST /v1/embeddings``: OpenAI's request ``{"input": str | [str], "model", "encoding_format":
  "float" | "base64"}`` and response; the official ``openai`` client works unchanged. The
  ``model`` field is echoed back and otherwise ignored: this server runs the one model it was
  started with, and nothing a client sends makes it read a file or load a model.
  ``input`` may also be token ids (``[101, 2023, 102]`` or a list of such lists), checked
  against the vocabulary and the longest compiled length as texts are.
- ``POST /embed`` and ``POST /`` (TEI's default route, which ``huggingface_hub``'s
  ``InferenceClient(base_url=...).feature_extraction`` posts to): text-embeddings-inference's
  ``{"inputs": str | [str]}`` -> ``[[...], ...]``; ``POST /tokenize``: TEI's token lists.
- ``GET /health``, ``GET /info``, ``GET /metrics`` (Prometheus text, ``prometheus_client``).

Bad requests get a JSON error (OpenAI's ``{"error": {"message", "type", "param", "code"}}`` on
``/v1``, TEI's ``{"error", "error_type"}`` on ``/embed``) and a 4xx: 400 for a body that is not
a JSON object or is nested deeper than ``MAX_JSON_DEPTH``, 408 for a body that does not arrive
within ``BODY_TIMEOUT_S``, 422 for a missing field, a wrong type, an empty input or text, a text
that is not valid Unicode (a lone surrogate) or tokenizes to nothing, a token id outside the
vocabulary, 413 for too many
texts, a text over the longest compiled length (refused, naming its index: never silently
truncated unless the server runs with ``--truncate`` or a TEI request says ``"truncate": true``)
or a body over ``MAX_BODY_BYTES``; a full queue or a server still compiling answers 503 with
``Retry-After``. Each refusal is one line in the log. Parsing, checking and tokenizing run in
worker threads (large bodies in one of their own), so ``/health`` and ``/metrics`` answer at once
whatever arrives. A client that leaves is counted in ``shapedemo_client_disconnects`` (not a
server error) and its request, if still queued, is dropped before it is computed.

>>> parse_input({"input": "hi"}, field="input")
['hi']
>>> parse_input({"input": []}, field="input")
Traceback (most recent call last):
...
shapedemo.serving.inputs.RequestError: 'input' is empty: send at least one text
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import re
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from shapedemo import session
from shapedemo.serving.batcher import Batcher, NotReady, QueueFull
from shapedemo.serving.inputs import (
    BODY_TIMEOUT_S,
    MAX_BODY_BYTES,
    ClientGone,
    RequestError,
    decode_body,
    is_token_ids,
    parse_input,
    parse_token_ids,
)
from shapedemo.planning.plan import PlanError
from shapedemo.serving.config import ServeSettings, load_config
from shapedemo.serving.metrics import Metrics

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
    log: Callable[[str], None] = field(default=lambda line: print(line, file=sys.stderr, flush=True), compare=False)

    @classmethod
    def build(cls, settings: ServeSettings, *, log: Callable[[str], None] | None = None) -> "Service":
        """Load the model and the engine, check the plan options; the batcher is not started."""
        from shapedemo.runner import load_served

        loaded = load_served(settings)  # with the settings' weights (int8: calibrated on a file)
        weights = (loaded.weights_info or {}).get("cache_key") or loaded.weights
        engine = session.current().engine(
            loaded, model_key=(loaded.spec, weights), device=settings.device, precision=settings.precision,
            ov_config=settings.ov_config,
        )
        return cls.from_engine(settings, engine, log=log)

    @classmethod
    def from_engine(cls, settings: ServeSettings, engine: Any, *, log: Callable[[str], None] | None = None, metrics: Metrics | None = None) -> "Service":
        shapes = settings.resolve_shapes(model_limit=engine.loaded.max_length, tokenizer=engine.loaded.tokenizer)
        kwargs: dict[str, Any] = {"log": log} if log else {}
        batcher = Batcher(engine, settings.strategy, shapes, settings.policy(), **kwargs)
        batcher.memo = session.current().memo
        metrics = metrics or Metrics()
        metrics.watch(batcher)
        limit = min(batcher.longest, engine.loaded.max_length)
        service = cls(settings, engine.loaded, engine, batcher, metrics, limit)
        if log:
            service.log = log
        return service

    def encode(self, texts: list[str], *, truncate: bool, field: str) -> Any:
        """Token ids of ``texts``; too many texts or one over ``text_limit`` tokens is a
        ``RequestError`` (413) naming the cap or the text's index. With ``truncate``, long texts
        are cut to ``text_limit`` tokens (their last token stays ``[SEP]``). CPU-bound: the
        routes call it off the event loop."""
        cap, limit = self.settings.max_texts, self.text_limit
        if len(texts) > cap:
            raise RequestError(f"{len(texts)} texts in one request; this server takes at most {cap}", status=413, param=field)
        from shapedemo.model import TextError

        try:
            encoded = self.loaded.tokenizer.encode(texts, truncate=True, max_length=limit)
        except TextError as exc:  # the tokenizer's own refusals (an empty text, no tokens), "text N" -> field[N-1]
            message = re.sub(r"^text (\d+)", lambda m: f"{field}[{int(m.group(1)) - 1}]", str(exc))
            raise RequestError(message, param=field) from None
        if encoded.truncated and not truncate:
            index, n = min(encoded.truncated.items())
            more = "at least " if index in encoded.at_least else ""
            raise RequestError(f"{field}[{index}] has {more}{n} tokens; this server takes at most {limit}", status=413, param=field)
        return encoded

    def encode_ids(self, rows: list[list[int]], *, truncate: bool, field: str) -> Any:
        """Token-id rows (checked against the vocabulary already) as ``Encoded``, under the same
        caps as texts: too many rows or a row over ``text_limit`` is a 413 unless ``truncate``
        (then the row is cut, its last id kept)."""
        from shapedemo.model import Encoded

        cap, limit = self.settings.max_texts, self.text_limit
        if len(rows) > cap:
            raise RequestError(f"{len(rows)} inputs in one request; this server takes at most {cap}", status=413, param=field)
        out = []
        for i, row in enumerate(rows):
            if len(row) > limit:
                if not truncate:
                    raise RequestError(f"{field}[{i}] has {len(row)} tokens; this server takes at most {limit}", status=413, param=field)
                row = row[: limit - 1] + row[-1:]
            out.append(row)
        return Encoded(out, [[0] * len(r) for r in out])

    def encode_body(self, body: Mapping[str, Any], *, field: str, truncate: bool, token_ids: bool = False) -> Any:
        """The ``Encoded`` input of a request body: texts, or (where ``token_ids``) OpenAI's
        token-id arrays. All of it CPU-bound: run off the event loop."""
        if token_ids and is_token_ids(body.get(field)):
            rows = parse_token_ids(body, field=field, vocab_size=self.loaded.tokenizer.vocab_size)
            return self.encode_ids(rows, truncate=truncate, field=field)
        return self.encode(parse_input(body, field=field), truncate=truncate, field=field)

    def info(self) -> dict[str, Any]:
        settings, batcher = self.settings, self.batcher
        dims = dataclasses.asdict(self.loaded.dims) if dataclasses.is_dataclass(self.loaded.dims) else None
        pooling = getattr(self.loaded, "pooling", None)
        return {
            "model": self.loaded.spec,
            "model_description": self.loaded.describe(),
            "weights": self.loaded.weights,
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


LARGE_BODY_BYTES = 64 * 2**10
"""Bodies above this are decoded and tokenized in a worker thread of their own, so a few huge
requests never hold up the small ones."""


def create_app(service: Service) -> FastAPI:
    """The FastAPI app over ``service`` (its batcher started by whoever runs the app)."""
    from concurrent.futures import ThreadPoolExecutor

    app = FastAPI(
        title="shapedemo embeddings",
        description="Sentence embeddings served with a static-shape strategy (see /info).",
        version="0.1.0",
    )
    metrics = service.metrics
    batcher = service.batcher
    # CPU-bound steps (JSON decoding, Unicode checks, tokenizing, rendering vectors) run here,
    # never on the event loop; large bodies get a thread of their own.
    small_pool = ThreadPoolExecutor(2, thread_name_prefix="shapedemo-cpu")
    large_pool = ThreadPoolExecutor(1, thread_name_prefix="shapedemo-cpu-large")
    app.router.on_shutdown.append(lambda: (small_pool.shutdown(wait=False, cancel_futures=True), large_pool.shutdown(wait=False, cancel_futures=True)))

    async def off_loop(large: bool, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        pool = large_pool if large else small_pool
        return await asyncio.get_running_loop().run_in_executor(pool, lambda: fn(*args, **kwargs))

    def openai_error(status: int, message: str, *, param: str | None = None, kind: str = "invalid_request_error", headers: dict[str, str] | None = None) -> JSONResponse:
        body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
        return JSONResponse(body, status_code=status, headers=headers)

    def tei_error(status: int, message: str, *, param: str | None = None, kind: str = "Validation", headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message, "error_type": kind}, status_code=status, headers=headers)

    def retry_after() -> dict[str, str]:
        return {"Retry-After": "1"}

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise RequestError(f"request body of {int(declared)} bytes is over the limit of {MAX_BODY_BYTES}", status=413)
        raw = bytearray()
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                async for chunk in request.stream():
                    raw += chunk
                    if len(raw) > MAX_BODY_BYTES:
                        raise RequestError(f"request body is over the limit of {MAX_BODY_BYTES} bytes", status=413)
        except ClientDisconnect:
            raise ClientGone("reading") from None
        except TimeoutError:
            raise RequestError(f"the request body did not arrive within {BODY_TIMEOUT_S:g} s", status=408) from None
        return bytes(raw)

    async def until_disconnect(request: Request, work: Any) -> Any:
        """Await ``work``; if the client hangs up first, cancel it (a queued request is dropped
        before it is computed) and raise ``ClientGone``."""

        async def hung_up() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                await asyncio.sleep(0.05)  # a server that answers at once (not uvicorn): poll

        task, watch = asyncio.ensure_future(work), asyncio.ensure_future(hung_up())
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise ClientGone("waiting")
        return task.result()

    async def run(encoded: Any) -> tuple[np.ndarray, int]:
        result = await batcher.embed(encoded.input_ids, encoded.token_type_ids)
        metrics.queue_delay.observe(result.record.queue_ms / 1e3)
        return result.embeddings, result.record.tokens

    async def answer(route: str, request: Request, handle: Callable[[dict[str, Any], bool], Any], error: Callable[..., JSONResponse]) -> Any:
        start = time.perf_counter()
        openai = error is openai_error
        try:
            raw = await read_body(request)
            large = len(raw) > LARGE_BODY_BYTES

            async def decoded_then_handled() -> Any:
                return await handle(await off_loop(large, decode_body, raw), large)

            response = await until_disconnect(request, decoded_then_handled())
        except ClientGone as exc:
            metrics.gone.labels(route=route, stage=exc.stage).inc()
            return Response(status_code=499)  # nobody reads it
        except RequestError as exc:
            service.log(f"serve: {exc.status} {route}: {exc}")
            response = error(exc.status, str(exc), param=exc.param)
        except QueueFull as exc:
            service.log(f"serve: 503 {route}: busy ({exc})")
            response = error(503, f"the server is busy ({exc}); retry shortly", kind="server_busy" if openai else "Overloaded", headers=retry_after())
        except NotReady as exc:
            response = error(503, f"not ready: {exc}", kind="server_not_ready" if openai else "Unhealthy", headers=retry_after())
        except Exception as exc:  # a real failure: logged with its traceback, a JSON 500
            import traceback

            traceback.print_exc(file=sys.stderr)
            response = error(500, f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}", kind="server_error" if openai else "Backend")
        metrics.requests.labels(route=route, code=str(response.status_code)).inc()
        metrics.latency.labels(route=route).observe(time.perf_counter() - start)
        return response

    @app.post("/v1/embeddings")
    async def openai_embeddings(request: Request) -> Any:
        """OpenAI-compatible embeddings (``float`` or ``base64`` of little-endian float32);
        ``input`` is text(s) or token-id arrays."""

        async def handle(body: dict[str, Any], large: bool) -> JSONResponse:
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
            encoded = await off_loop(large, service.encode_body, body, field="input", truncate=service.settings.truncate, token_ids=True)
            embeddings, tokens = await run(encoded)

            def render() -> JSONResponse:
                data = [{"object": "embedding", "index": i, "embedding": _encode_vector(e, fmt)} for i, e in enumerate(embeddings)]
                return JSONResponse({
                    "object": "list", "data": data, "model": model or service.loaded.spec,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                })

            return await off_loop(False, render)

        return await answer("/v1/embeddings", request, handle, openai_error)

    def tei_embed_at(route: str) -> Callable[[Request], Any]:
        async def tei_embed(request: Request) -> Any:
            """text-embeddings-inference style: ``{"inputs": str | [str]}`` -> ``[[...], ...]``."""

            async def handle(body: dict[str, Any], large: bool) -> JSONResponse:
                truncate = body.get("truncate", service.settings.truncate)
                normalize = body.get("normalize", True)
                if truncate is None:  # huggingface_hub sends null for "the server's default"
                    truncate = service.settings.truncate
                if normalize is None:
                    normalize = True
                if not isinstance(truncate, bool) or not isinstance(normalize, bool):
                    raise RequestError("truncate and normalize must be true or false", param="truncate")
                pooling = getattr(service.loaded, "pooling", None)
                normalized = bool(getattr(pooling, "normalize", True))  # the model's own Normalize module
                if normalized and not normalize:
                    raise RequestError("this model's embeddings are L2-normalised by its own pooling: normalize must be true", param="normalize")
                encoded = await off_loop(large, service.encode_body, body, field="inputs", truncate=truncate or service.settings.truncate)
                embeddings, _ = await run(encoded)
                if normalize and not normalized:
                    embeddings = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
                return await off_loop(False, lambda: JSONResponse([e.tolist() for e in embeddings]))

            return await answer(route, request, handle, tei_error)

        return tei_embed

    app.add_api_route("/embed", tei_embed_at("/embed"), methods=["POST"], summary="TEI embed")
    app.add_api_route("/", tei_embed_at("/"), methods=["POST"], summary="TEI's default route: as /embed")

    @app.post("/tokenize")
    async def tei_tokenize(request: Request) -> Any:
        """text-embeddings-inference's ``/tokenize``: ``{"inputs": str | [str],
        "add_special_tokens": bool}`` -> one list of ``{"id", "text", "special", "start",
        "stop"}`` per text."""

        async def handle(body: dict[str, Any], large: bool) -> JSONResponse:
            texts = await off_loop(large, parse_input, body, field="inputs")
            special = body.get("add_special_tokens", True)
            if not isinstance(special, bool):
                raise RequestError("add_special_tokens must be true or false", param="add_special_tokens")
            if len(texts) > service.settings.max_texts:
                raise RequestError(f"{len(texts)} texts in one request; this server takes at most {service.settings.max_texts}", status=413, param="inputs")
            tokens = await off_loop(large, service.loaded.tokenizer.tokens, texts, add_special_tokens=special)
            return await off_loop(large, JSONResponse, tokens)

        return await answer("/tokenize", request, handle, tei_error)

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
        except (RuntimeError, PlanError):  # PlanError: the set refused (over the memory budget)
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
