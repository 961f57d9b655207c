"""Soak `serve`: mixed good and bad traffic, stalled and vanishing clients, for minutes.

Starts `python -m shapedemo serve` on 127.0.0.1 (a free port), then runs at once:
good clients (OpenAI texts, OpenAI token ids, TEI /embed, TEI /, /tokenize) in closed loops, bad
clients (~20 kinds of bad body: lone surrogates, deep JSON, ids outside the vocabulary, empty and
invisible texts, 1 MB texts, ...), stalled clients (half a body, then silence for up to 40 s: the
server's 30 s body limit answers some of them 408) and vanishing clients (a full request, then
hang up before the answer). It samples the server's RSS and open file descriptors every 15 s and
prints requests, errors by kind, latency p50/p95/p99 of the good requests, RSS and fds at start,
half-time and end, and the server's own counters (5xx, client disconnects, dropped requests).

    python benchmarks/soak.py --minutes 10 --json /tmp/soak.json

Nothing is asserted: the numbers are printed (and written as JSON). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
WORDS = "river morning garden light music story window friend paper city stone bridge winter harbour".split()


def _text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 60)))


def bad_bodies(rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(kind, route, raw body) of requests the server must refuse with a 4xx."""
    big = json.dumps({"input": "word " * 200_000}).encode()
    return [
        ("not json", "/v1/embeddings", b"{input: hi"),
        ("array body", "/embed", b'["hi"]'),
        ("lone surrogate", "/v1/embeddings", b'{"input": "caf\\ud800"}'),
        ("lone surrogate tei", "/", b'{"inputs": ["ok", "\\udfff"]}'),
        ("deep json", "/v1/embeddings", b'{"input": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        ("ids outside vocabulary", "/v1/embeddings", b'{"input": [101, 99999999, 102]}'),
        ("negative id", "/v1/embeddings", b'{"input": [[101, -5, 102]]}'),
        ("empty text", "/v1/embeddings", b'{"input": ""}'),
        ("invisible text", "/embed", json.dumps({"inputs": "\u200b\u200b\x00"}).encode()),
        ("empty list", "/embed", b'{"inputs": []}'),
        ("wrong type", "/v1/embeddings", b'{"input": 5}'),
        ("too many texts", "/v1/embeddings", json.dumps({"input": ["hi"] * 300}).encode()),
        ("1 MB text", "/v1/embeddings", big),
        ("bad format", "/v1/embeddings", b'{"input": "hi", "encoding_format": "int8"}'),
        ("normalize false", "/embed", b'{"inputs": "hi", "normalize": false}'),
        ("over 4 MiB", "/embed", b'{"inputs": "' + b"x" * (4 * 2**20 + 10) + b'"}'),
        ("tokenize bad", "/tokenize", b'{"inputs": 7}'),
        ("unknown route", "/v2/nothing", b"{}"),
    ]


def rss_fds(pid: int) -> tuple[float, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def end(proc: subprocess.Popen) -> int:
    """SIGTERM, up to 30 s to finish its batches, then SIGKILL; its exit code."""
    proc.terminate()
    for _ in range(300):
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.1)
    proc.kill()
    return proc.wait()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--good", type=int, default=4, help="good clients in closed loops")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()

    cache = os.environ.get("SHAPEDEMO_CACHE") or tempfile.mkdtemp(prefix="shapedemo-soak-")
    env = {**os.environ, "SHAPEDEMO_CACHE": cache, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = Path(tempfile.mkstemp(prefix="soak-serve-", suffix=".log")[1])
    serve_args = ["--model", args.model, "--precision", "f32", "--strategy", "buckets-partition",
                  "--seq-buckets", "32,64,128", "--batch-sizes", "1,2,4,8", "--max-wait-ms", "5"]
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "shapedemo", "serve", "--port", "0", *serve_args],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = None
        for _ in range(1200):
            if proc.poll() is not None:
                print(log.read_text()[-2000:], file=sys.stderr)
                return 1
            found = re.search(r"listening on (http://\S+?:\d+)", log.read_text())
            if found:
                url = found.group(1)
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            time.sleep(0.25)
        assert url is not None
        port = int(url.rsplit(":", 1)[1])
        print(f"serve {' '.join(serve_args)} at {url}; CPU {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, precision f32; {args.minutes:g} min", flush=True)

        stop = threading.Event()
        lock = threading.Lock()
        kinds: Counter[str] = Counter()
        latencies: list[float] = []
        samples: list[tuple[float, float, int]] = []
        origin = time.monotonic()

        def count(kind: str) -> None:
            with lock:
                kinds[kind] += 1

        def good(seed: int) -> None:
            rng = random.Random(seed)
            client = httpx.Client(timeout=60)
            ids = [[101, 7592, 2088, 102], [101, 2314, 102]]
            while not stop.is_set():
                route, body = rng.choice([
                    ("/v1/embeddings", {"input": [_text(rng) for _ in range(rng.randint(1, 8))]}),
                    ("/v1/embeddings", {"input": ids}),
                    ("/embed", {"inputs": _text(rng)}),
                    ("/", {"inputs": [_text(rng), _text(rng)]}),
                    ("/tokenize", {"inputs": _text(rng)}),
                ])
                start = time.perf_counter()
                try:
                    r = client.post(url + route, json=body)
                except httpx.HTTPError as exc:
                    count(f"good: client error {type(exc).__name__}")
                    continue
                if r.status_code == 200:
                    with lock:
                        latencies.append((time.perf_counter() - start) * 1e3)
                    count("good: 200")
                else:
                    count(f"good: {r.status_code}")

        def bad(seed: int) -> None:
            rng = random.Random(seed)
            client = httpx.Client(timeout=60)
            cases = bad_bodies(rng)
            while not stop.is_set():
                kind, route, raw = rng.choice(cases)
                try:
                    r = client.post(url + route, content=raw, headers={"content-type": "application/json"})
                    code = r.status_code
                except httpx.HTTPError as exc:
                    code = type(exc).__name__
                count(f"bad: {code}" if code in (400, 404, 408, 413, 422) else f"bad {kind}: UNEXPECTED {code}")
                time.sleep(rng.uniform(0.0, 0.2))

        def stalled(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     b"Content-Length: 5000\r\n\r\n{\"input\": \"half a bo")
                        hold = rng.uniform(1, 40)
                        sock.settimeout(hold)
                        try:
                            answer = sock.recv(200)
                            count("stalled: answered " + (answer.split(b" ")[1].decode() if answer else "nothing"))
                        except socket.timeout:
                            count("stalled: hung up")
                except OSError as exc:
                    count(f"stalled: {type(exc).__name__}")

        def vanishing(seed: int) -> None:
            rng = random.Random(seed)
            while not stop.is_set():
                body = json.dumps({"inputs": [_text(rng) for _ in range(8)]}).encode()
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                        sock.sendall(b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                        time.sleep(rng.uniform(0, 0.01))
                    count("vanishing: left")
                except OSError as exc:
                    count(f"vanishing: {type(exc).__name__}")
                time.sleep(rng.uniform(0.05, 0.3))

        def sampler() -> None:
            while not stop.is_set():
                rss, fds = rss_fds(proc.pid)
                samples.append((time.monotonic() - origin, rss, fds))
                stop.wait(15)

        threads = [threading.Thread(target=sampler)]
        threads += [threading.Thread(target=good, args=(i,)) for i in range(args.good)]
        threads += [threading.Thread(target=bad, args=(100 + i,)) for i in range(2)]
        threads += [threading.Thread(target=stalled, args=(200 + i,)) for i in range(8)]
        threads += [threading.Thread(target=vanishing, args=(300 + i,)) for i in range(2)]
        for t in threads:
            t.daemon = True
            t.start()
        time.sleep(args.minutes * 60)
        stop.set()
        for t in threads:
            t.join(70)
        rss, fds = rss_fds(proc.pid)
        samples.append((time.monotonic() - origin, rss, fds))
        metrics = httpx.get(url + "/metrics", timeout=10).text
        health = httpx.get(url + "/health", timeout=10).status_code
    finally:
        end(proc)
    server_log = log.read_text()

    def metric_sum(pattern: str) -> float:
        return sum(float(line.split()[-1]) for line in metrics.splitlines() if re.match(pattern, line))

    half = args.minutes * 30
    second = [s for s in samples if s[0] >= half]
    result = {
        "minutes": args.minutes,
        "requests": sum(kinds.values()),
        "by_kind": dict(sorted(kinds.items())),
        "good_latency_ms": {"p50": percentile(latencies, 50), "p95": percentile(latencies, 95), "p99": percentile(latencies, 99)},
        "rss_mib": {"start": samples[0][1], "half": second[0][1] if second else None, "end": samples[-1][1],
                    "second_half_max": max(s[1] for s in second) if second else None},
        "fds": {"start": samples[0][2], "half": second[0][2] if second else None, "end": samples[-1][2],
                "second_half_max": max(s[2] for s in second) if second else None},
        "server": {
            "5xx": metric_sum(r'shapedemo_requests_total\{.*code="5'),
            "503": metric_sum(r'shapedemo_requests_total\{.*code="503"'),
            "4xx": metric_sum(r'shapedemo_requests_total\{.*code="4'),
            "client_disconnects": metric_sum(r"shapedemo_client_disconnects_total"),
            "dropped_requests": metric_sum(r"shapedemo_dropped_requests_total"),
            "health_after": health,
            "tracebacks_in_log": server_log.count("Traceback"),
            "log_lines": len(server_log.splitlines()),
        },
    }
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
