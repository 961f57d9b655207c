"""Latency under arrival: one `shapedemo serve` per strategy (native dynamic included), open-loop
Poisson load at several rates, all in one run.

Prints the latency (p50/p95/p99) at each offered rate, then the highest rate each strategy
sustains within a p95 target (every request answered, none refused), as a
ratio to native dynamic's; writes a plotly HTML chart of latency against offered load.
Servers listen on free loopback ports and are stopped at the end. A benchmark, not a test:
the machine may be shared, so read the ratios, not the milliseconds.

    python benchmarks/traffic.py --rates 5,10,20,40 --duration 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shapedemo.serving.loadtest import run_loadtest  # noqa: E402
from shapedemo.settings import SERVE_MAX_WAIT_MS  # noqa: E402
from shapedemo.planning.strategies import STRATEGY_NAMES  # noqa: E402

DEFAULT_STRATEGIES = ["dynamic", "buckets-partition", "packing"] + (["auto"] if "auto" in STRATEGY_NAMES else [])


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


class Server:
    """`python -m shapedemo serve --port 0 ...` in a subprocess, healthy on entry, stopped on exit."""

    def __init__(self, args: list[str], *, timeout: float = 600.0) -> None:
        self.args, self.timeout = args, timeout
        self.log = Path(tempfile.mkstemp(prefix="shapedemo-serve-", suffix=".log")[1])

    def __enter__(self) -> "Server":
        import httpx

        with open(self.log, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "shapedemo", "serve", "--port", "0", *self.args],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err,
            )
        deadline, self.url = time.monotonic() + self.timeout, ""
        try:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"serve exited with {self.proc.returncode}: {self.log.read_text()[-800:]}")
                if not self.url:
                    found = re.search(r"listening on (http://\S+?:\d+)", self.log.read_text())
                    self.url = found.group(1) if found else ""
                elif httpx.get(self.url + "/health", timeout=5, trust_env=False).status_code == 200:
                    self.info = httpx.get(self.url + "/info", timeout=5, trust_env=False).json()
                    return self
                time.sleep(0.3)
            raise RuntimeError(f"serve not healthy within {self.timeout:.0f} s: {self.log.read_text()[-800:]}")
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        self.log.unlink(missing_ok=True)


def sustained(rows: list[dict[str, Any]], target_ms: float) -> float | None:
    """The highest offered rate whose every request was answered, with p95 <= target (open loop:
    a server that cannot keep up shows it as queueing, so as p95)."""
    good = [
        r["rate"] for r in rows
        if r["errors"] == 0 and r["ok"] == r["requests"] and r["latency_ms"]["p95"] is not None
        and r["latency_ms"]["p95"] <= target_ms
    ]
    return max(good) if good else None


def chart(results: dict[str, list[dict[str, Any]]], *, target_ms: float, title: str, path: Path) -> None:
    import plotly.graph_objects as go

    from shapedemo.plots import strategy_color

    fig = go.Figure()
    for name, rows in results.items():
        done = [r for r in rows if r["latency_ms"]["p95"] is not None]
        color = strategy_color(name)
        fig.add_trace(go.Scatter(x=[r["rate"] for r in done], y=[r["latency_ms"]["p95"] for r in done], name=f"{name} p95",
                                 mode="lines+markers", line={"color": color}))
        fig.add_trace(go.Scatter(x=[r["rate"] for r in done], y=[r["latency_ms"]["p50"] for r in done], name=f"{name} p50",
                                 mode="lines+markers", line={"color": color, "dash": "dot"}, marker={"symbol": "circle-open"}))
    offered = sorted({r["rate"] for rows in results.values() for r in rows}) or [0.0]
    fig.add_trace(go.Scatter(x=[offered[0], offered[-1]], y=[target_ms, target_ms], name=f"p95 target {target_ms:g} ms",
                             mode="lines", line={"color": "#d62728", "dash": "dash", "width": 1}))
    fig.update_layout(title=title, template="plotly_white", height=480, xaxis_title="offered load (requests/s, Poisson)",
                      yaxis_title="latency (ms)", yaxis_type="log", legend={"orientation": "h", "y": -0.2})
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs=True)  # readable offline


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--precision", default="auto", choices=["auto", "f32", "bf16"])
    parser.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    parser.add_argument("--rates", default="5,10,20,40", help="offered requests/s, comma list")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds of arrivals per rate")
    parser.add_argument("--p95-target-ms", type=float, default=100.0)
    parser.add_argument("--seq-buckets", default="32,64,128")
    parser.add_argument("--batch-sizes", default="1,2,4,8")
    parser.add_argument("--max-wait-ms", type=float, default=SERVE_MAX_WAIT_MS, help=f"serve's --max-wait-ms (default {SERVE_MAX_WAIT_MS:g}, serve's)")
    parser.add_argument("--texts-file", default=str(ROOT / "assets" / "texts.txt"))
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--html", default=os.path.join(tempfile.gettempdir(), "shapedemo-traffic.html"))
    parser.add_argument("--json", default=None, help="also write every result to this file")
    args = parser.parse_args()

    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    texts = [line.strip() for line in Path(args.texts_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    common = ["--model", args.model, "--precision", args.precision, "--seq-buckets", args.seq_buckets,
              "--batch-sizes", args.batch_sizes, "--max-wait-ms", str(args.max_wait_ms)]
    results: dict[str, list[dict[str, Any]]] = {}
    precision = "?"
    print(f"{args.model}, {len(texts)} texts from {Path(args.texts_file).name}, {args.texts_per_request} per request, "
          f"buckets {args.seq_buckets}, batch sizes {args.batch_sizes}, max wait {args.max_wait_ms:g} ms, "
          f"{args.duration:g} s per rate; CPU {cpu_name()}, {os.cpu_count()} cores")
    head = f"{'strategy':<18} {'offered/s':>9} {'answered/s':>10} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}"
    print(head)
    print("-" * len(head))
    for name in strategies:
        rows: list[dict[str, Any]] = []
        try:
            with Server([*common, "--strategy", name]) as server:
                precision = server.info["precision"]
                for rate in rates:
                    if rows and rows[-1]["latency_ms"]["p95"] is not None and rows[-1]["latency_ms"]["p95"] > 10 * args.p95_target_ms:
                        print(f"{name:<18} {rate:>9g}  skipped: saturated at the previous rate")
                        continue
                    result = run_loadtest(server.url, rate=rate, duration_s=args.duration, texts=texts,
                                          texts_per_request=args.texts_per_request, timeout_s=60).to_dict()
                    rows.append(result)
                    lat = result["latency_ms"]
                    cell = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
                    print(f"{name:<18} {rate:>9g} {result['throughput_rps']:>10.1f} {result['errors']:>6} "
                          f"{cell(lat['p50']):>8} {cell(lat['p95']):>8} {cell(lat['p99']):>8}", flush=True)
        except RuntimeError as exc:
            print(f"{name:<18} failed to start: {' '.join(str(exc).split())[:300]}")
        results[name] = rows

    print(f"\nhighest rate sustained with p95 <= {args.p95_target_ms:g} ms, every request answered "
          f"(precision {precision}):")
    base = sustained(results.get("dynamic", []), args.p95_target_ms)
    for name, rows in results.items():
        best = sustained(rows, args.p95_target_ms)
        ratio = f"  ({best / base:.2f}x dynamic)" if best and base else ""
        print(f"  {name:<18} {('none of the rates' if best is None else f'{best:g} req/s')}{ratio}")
    html = Path(args.html)
    chart(results, target_ms=args.p95_target_ms, path=html,
          title=f"Latency under Poisson load: {args.model} ({precision}), {cpu_name()}")
    print(f"chart: {html}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rates": rates, "p95_target_ms": args.p95_target_ms, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
