"""``python -m shapedemo loadtest``: open-loop Poisson arrivals against a server on loopback.

Open loop: requests are sent at their scheduled times whether or not earlier ones have been
answered (a closed loop of N clients slows down with the server and hides its queueing), and a
request's latency counts from its scheduled time, so a client that falls behind its schedule
does not hide delay either. Bounded: arrivals stop after ``duration_s``, at most
``MAX_REQUESTS`` are scheduled, at most ``max_in_flight`` are open at once (beyond that an
arrival is counted as a ``client-overload`` error, not sent), and stragglers are given
``timeout_s``. Loopback only: this workplace forbids sending load to any other machine.

>>> check_loopback("http://127.0.0.1:8000")
'127.0.0.1'
>>> check_loopback("http://example.org")
Traceback (most recent call last):
...
shapedemo.planning.plan.PlanError: loadtest sends traffic to loopback only (127.0.0.1, ::1, localhost), not 'example.org': this workplace forbids traffic elsewhere
>>> [round(t, 3) for t in arrivals(rate=10, duration_s=1, seed=0)]
[0.186, 0.328, 0.382, 0.412, 0.484, 0.536, 0.689, 0.725, 0.79, 0.878]
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlsplit

import numpy as np

from shapedemo.planning.plan import PlanError
from shapedemo.planning.workloads import sample_lengths

__all__ = [
    "MAX_REQUESTS",
    "LoadResult",
    "arrivals",
    "check_loopback",
    "format_result",
    "run_loadtest",
    "server_text_limit",
    "workload_texts",
]

MAX_REQUESTS = 100_000
"""The most requests one load test schedules (rate x duration beyond it is refused)."""

ROUTES = ("/v1/embeddings", "/embed")

# Common English words that are one WordPiece token each in BERT's uncased vocabulary, so a
# text of n - 2 of them is n tokens with [CLS] and [SEP].
_WORDS = (
    "the time people year way day man thing world life hand part child eye woman place work "
    "week case point number group problem fact water house city story music light river garden "
    "morning road window table paper friend book door night school family money"
).split()


def check_loopback(url: str) -> str:
    """The host of ``url`` if it is a loopback address or ``localhost``, else a ``PlanError``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PlanError(f"--url {url!r}: expected http://127.0.0.1:PORT")
    host = parts.hostname
    loopback = host in ("localhost", "ip6-localhost")
    if not loopback:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
    if not loopback:
        raise PlanError(
            f"loadtest sends traffic to loopback only (127.0.0.1, ::1, localhost), not {host!r}: "
            "this workplace forbids traffic elsewhere"
        )
    return host


def arrivals(*, rate: float, duration_s: float, seed: int = 0) -> list[float]:
    """Poisson arrival times (seconds from the start) at ``rate`` per second within
    ``duration_s``: exponential gaps, seeded."""
    if not 0 < rate <= 10_000:
        raise PlanError(f"--rate {rate} is outside (0, 10000] requests per second")
    if not 0 < duration_s <= 3600:
        raise PlanError(f"--duration {duration_s} is outside (0, 3600] seconds")
    if rate * duration_s > MAX_REQUESTS:
        raise PlanError(f"rate x duration = {rate * duration_s:.0f} requests is over the cap of {MAX_REQUESTS}")
    rng = random.Random(seed)
    times, t = [], rng.expovariate(rate)
    while t < duration_s and len(times) < MAX_REQUESTS:
        times.append(t)
        t += rng.expovariate(rate)
    return times


def workload_texts(name: str, count: int, *, seed: int = 0, max_len: int = 512) -> list[str]:
    """``count`` texts whose token lengths follow a built-in workload (common one-token words;
    the load generator needs no tokenizer).

    >>> [len(t.split()) + 2 for t in workload_texts("sst2-like", 4)]
    [10, 11, 16, 10]
    """
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(max(1, n - 2)))
        for n in sample_lengths(name, count, seed=seed, max_len=max_len)
    ]


@dataclass
class LoadResult:
    """What one load test saw: counts, errors by kind, latencies of the answered requests."""

    url: str
    route: str
    rate: float
    duration_s: float
    texts_per_request: int
    scheduled: int = 0
    sent: int = 0
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    max_lag_ms: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document (field names are a contract: add, never rename)."""
        return {
            "url": self.url,
            "route": self.route,
            "rate": self.rate,
            "duration_s": self.duration_s,
            "texts_per_request": self.texts_per_request,
            "requests": self.scheduled,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.error_count,
            "errors_by_kind": dict(self.errors),
            "elapsed_s": self.elapsed_s,
            "throughput_rps": self.ok / self.elapsed_s if self.elapsed_s else 0.0,
            "offered_rps": self.scheduled / self.duration_s if self.duration_s else 0.0,
            "latency_ms": {
                "p50": self.percentile(50),
                "p95": self.percentile(95),
                "p99": self.percentile(99),
                "mean": float(np.mean(self.latencies_ms)) if self.latencies_ms else None,
                "max": max(self.latencies_ms) if self.latencies_ms else None,
            },
            "max_client_lag_ms": self.max_lag_ms,
        }


def server_text_limit(url: str, *, timeout_s: float = 10.0) -> int | None:
    """The longest text (tokens) the server at ``url`` takes, from its ``/info``; ``None`` when
    it does not say (another server), so generated texts stay within what it accepts."""
    import httpx

    check_loopback(url)
    try:
        info = httpx.get(url.rstrip("/") + "/info", timeout=timeout_s, trust_env=False).json()
        limit = info.get("max_tokens_per_text") if isinstance(info, dict) else None
        return int(limit) if isinstance(limit, int) and limit > 0 else None
    except (httpx.HTTPError, ValueError):
        return None


def _payload(route: str, texts: list[str]) -> dict[str, Any]:
    if route == "/embed":
        return {"inputs": texts}
    return {"input": texts, "model": "shapedemo", "encoding_format": "base64"}


async def _run(
    url: str, route: str, schedule: list[float], batches: list[list[str]], *,
    timeout_s: float, max_in_flight: int, result: LoadResult,
) -> None:
    import httpx

    endpoint = url.rstrip("/") + route
    limits = httpx.Limits(max_connections=max_in_flight, max_keepalive_connections=max_in_flight)
    in_flight = 0
    async with httpx.AsyncClient(timeout=timeout_s, limits=limits, trust_env=False) as client:
        origin = time.perf_counter()

        async def send(at: float, texts: list[str]) -> None:
            nonlocal in_flight
            try:
                response = await client.post(endpoint, json=_payload(route, texts))
                good = response.status_code == 200 and _count(route, response) == len(texts)
                if good:
                    result.ok += 1
                    result.latencies_ms.append((time.perf_counter() - origin - at) * 1e3)
                else:
                    kind = f"http {response.status_code}" if response.status_code != 200 else "bad body"
                    result.errors[kind] = result.errors.get(kind, 0) + 1
            except httpx.TimeoutException:
                result.errors["timeout"] = result.errors.get("timeout", 0) + 1
            except httpx.HTTPError as exc:
                kind = type(exc).__name__
                result.errors[kind] = result.errors.get(kind, 0) + 1
            finally:
                in_flight -= 1

        tasks = []
        for at, texts in zip(schedule, batches):
            delay = at - (time.perf_counter() - origin)
            if delay > 0:
                await asyncio.sleep(delay)
            result.max_lag_ms = max(result.max_lag_ms, -min(0.0, delay) * 1e3)
            if in_flight >= max_in_flight:
                result.errors["client-overload"] = result.errors.get("client-overload", 0) + 1
                continue
            in_flight += 1
            result.sent += 1
            tasks.append(asyncio.create_task(send(at, texts)))
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                result.errors["timeout"] = result.errors.get("timeout", 0) + len(pending)
        result.elapsed_s = time.perf_counter() - origin


def _count(route: str, response: Any) -> int:
    try:
        body = response.json()
        return len(body) if route == "/embed" else len(body["data"])
    except (ValueError, KeyError, TypeError):
        return -1


def run_loadtest(
    url: str,
    *,
    rate: float,
    duration_s: float,
    texts: Sequence[str],
    texts_per_request: int = 1,
    route: str = "/v1/embeddings",
    timeout_s: float = 30.0,
    max_in_flight: int = 512,
    seed: int = 0,
) -> LoadResult:
    """Send Poisson arrivals at ``rate`` per second for ``duration_s`` to ``url`` + ``route``,
    each request ``texts_per_request`` texts drawn (seeded) from ``texts``."""
    check_loopback(url)
    if route not in ROUTES:
        raise PlanError(f"--route {route!r}: choose one of {', '.join(ROUTES)}")
    if not texts:
        raise PlanError("no texts to send")
    if not 1 <= texts_per_request <= 256:
        raise PlanError(f"--texts-per-request {texts_per_request} is outside 1..256")
    if not 0 < timeout_s <= 600 or not 1 <= max_in_flight <= 10_000:
        raise PlanError("--timeout must be within (0, 600] s and --max-in-flight within 1..10000")
    schedule = arrivals(rate=rate, duration_s=duration_s, seed=seed)
    rng = random.Random(seed + 1)
    batches = [[rng.choice(texts) for _ in range(texts_per_request)] for _ in schedule]
    result = LoadResult(url, route, rate, duration_s, texts_per_request, scheduled=len(schedule))
    asyncio.run(_run(url, route, schedule, batches, timeout_s=timeout_s, max_in_flight=max_in_flight, result=result))
    return result


def format_result(payload: dict[str, Any]) -> str:
    """``LoadResult.to_dict()`` as a few lines."""
    lat = payload["latency_ms"]

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    errors = ", ".join(f"{k}: {v}" for k, v in payload["errors_by_kind"].items()) or "none"
    return "\n".join([
        f"loadtest {payload['url']}{payload['route']}: {payload['rate']:g} req/s offered for {payload['duration_s']:g} s, "
        f"{payload['texts_per_request']} text(s) per request",
        f"requests: {payload['requests']} scheduled, {payload['sent']} sent, {payload['ok']} ok, {payload['errors']} errors ({errors})",
        f"throughput: {payload['throughput_rps']:.1f} req/s answered over {payload['elapsed_s']:.1f} s",
        f"latency ms: p50 {ms(lat['p50'])}  p95 {ms(lat['p95'])}  p99 {ms(lat['p99'])}  max {ms(lat['max'])}",
    ])


def write_json(payload: dict[str, Any], path: str) -> None:
    """The ``--json OUT`` file, or stdout for ``-``."""
    text = json.dumps(payload, indent=2)
    if path == "-":
        print(text)
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    except OSError as exc:
        raise PlanError(f"cannot write --json {path}: {exc.strerror or exc}") from None
