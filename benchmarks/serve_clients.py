"""Closed-loop clients of real text against a `serve` on loopback (issue 17's done-when check).

N clients (threads, the official ``openai`` client each) send requests for S seconds, each as
soon as its previous answer came back: one to eight texts drawn (seeded) from
``assets/paragraphs.txt`` and ``assets/texts.txt``. Prints requests, errors, p50/p95/p99 and the
p99/p95 ratio, then the server's ``shapedemo_compiled_under_traffic_total`` from ``/metrics``
(0: every shape a batch ran on was compiled before the first request).

    python -m shapedemo serve --port 8000 &        # defaults: auto, pow2:32, batch sizes 1,2,4,8
    python benchmarks/serve_clients.py --url http://127.0.0.1:8000 --clients 16 --seconds 60
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shapedemo.serving.loadtest import check_loopback  # noqa: E402


def corpus() -> list[str]:
    return [line.strip() for name in ("paragraphs.txt", "texts.txt")
            for line in (ROOT / "assets" / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def compiled_under_traffic(url: str) -> float | None:
    import httpx

    for line in httpx.get(url + "/metrics", timeout=30, trust_env=False).text.splitlines():
        if line.startswith("shapedemo_compiled_under_traffic_total "):
            return float(line.split()[-1])
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=16, help="concurrent closed-loop clients (default 16)")
    parser.add_argument("--seconds", type=float, default=60.0, help="seconds of requests (default 60)")
    parser.add_argument("--max-texts", type=int, default=8, help="texts per request at most (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    check_loopback(args.url)
    if not 1 <= args.clients <= 64 or not 0 < args.seconds <= 600:
        parser.error("--clients 1..64, --seconds up to 600")
    import openai

    texts = corpus()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + args.seconds

    def client(k: int) -> None:
        rng = random.Random(args.seed * 1000 + k)
        api = openai.OpenAI(base_url=args.url + "/v1", api_key="unused", timeout=60, max_retries=0)
        while time.perf_counter() < stop_at:
            batch = rng.sample(texts, rng.randint(1, args.max_texts))
            start = time.perf_counter()
            try:
                got = api.embeddings.create(model="shapedemo", input=batch)
                failure = None if len(got.data) == len(batch) else "wrong count"
            except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                failure = type(exc).__name__
            ms = (time.perf_counter() - start) * 1e3
            with lock:
                if failure is None:
                    latencies.append(ms)
                else:
                    errors.append(failure)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    p50, p95, p99 = (float(np.percentile(latencies, q)) for q in (50, 95, 99)) if latencies else (0.0, 0.0, 0.0)
    print(f"{args.clients} clients x {args.seconds:g} s of real texts (1..{args.max_texts} per request): "
          f"{len(latencies)} answered, {len(errors)} errors")
    print(f"latency ms: p50 {p50:.0f}  p95 {p95:.0f}  p99 {p99:.0f}  (p99/p95 {p99 / p95 if p95 else 0:.2f})")
    print(f"shapedemo_compiled_under_traffic_total: {compiled_under_traffic(args.url)}")
    return 0 if not errors else 1


if __name__ == "__main__":
    raise SystemExit(main())
