"""One machine, more replicas: the same open-loop Poisson traffic against the single-process
`shapedemo serve`, and `serve --ray` with 1 and 2 replicas on a local Ray cluster (``ray start
--head`` on 127.0.0.1 with ``--num-cpus`` = the machine's cores, no dashboard), in one run.

Prints p50/p95 and answered rate per offered rate, the highest rate each sustains within a p95
target (every request answered), and the overhead of Ray's HTTP proxy: the median latency of one
text sent one request at a time, through the proxy (1 replica) minus straight to the
single-process server. Rounds interleave the three set-ups; each keeps its best round (the
machine may be shared: read the ratios, not the milliseconds). The single process runs
OpenVINO on every core; a Ray replica runs on ``--replica-cpus`` cores of its own.

    python benchmarks/replicas.py --rates 20,40,80,120,160 --duration 6 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator
from contextlib import contextmanager

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from shapedemo.serving.loadtest import run_loadtest  # noqa: E402
from shapedemo.settings import SERVE_MAX_WAIT_MS  # noqa: E402
from traffic import Server, cpu_name, sustained  # noqa: E402  (benchmarks/traffic.py)


def stop(proc: subprocess.Popen, sig: int, wait_s: float) -> bool:
    """Signal ``proc`` and wait; SIGKILL after ``wait_s``. Whether it ended on the signal."""
    proc.send_signal(sig)
    try:
        proc.wait(wait_s)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
        return False


def wait_until(proc: subprocess.Popen, ready: Callable[[], bool], *, timeout: float, what: str, log: Path) -> None:
    """Poll ``ready`` (an exception counts as not yet) until true; fail if ``proc`` exits first or
    ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-1500:]}")
        try:
            if ready():
                return
        except Exception:  # not listening yet, or the proxy held the request: poll again
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready within {timeout:.0f} s: {log.read_text(errors='replace')[-1500:]}")
        time.sleep(0.5)


@contextmanager
def ray_cluster(cpus: int) -> Iterator[str]:
    """A Ray head on 127.0.0.1 (``cpus`` CPUs, no dashboard); its address; stopped on exit by its
    process id."""
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    if not ray:
        raise SystemExit("benchmarks/replicas.py needs Ray Serve: pip install -e '.[ray]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="rayb", dir="/tmp")
    log = Path(temp) / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", str(cpus),
             "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp, "--block"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(head, lambda: "Ray runtime started" in log.read_text(errors="replace"), timeout=180, what="ray start", log=log)
        yield f"127.0.0.1:{port}"
    finally:
        if not stop(head, signal.SIGTERM, 90):
            subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@contextmanager
def ray_serve(args: list[str], replicas: int, timeout: float = 600.0) -> Iterator[str]:
    """`serve --ray ... --replicas N` on a free port; its URL once N replicas are ready (Ray's
    proxy holds a request until a replica is up, so each poll has a short timeout)."""
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = Path(tempfile.mkstemp(prefix="shapedemo-ray-", suffix=".log")[1])
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "shapedemo", "serve", "--port", str(port), *args],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        rows = httpx.get(url + "/info", timeout=5, trust_env=False).json().get("replicas", [])
        return sum(r["state"] == "ready" for r in rows) >= replicas

    try:
        wait_until(proc, ready, timeout=timeout, what="serve --ray", log=log)
        yield url
    finally:
        stop(proc, signal.SIGINT, 60)
        log.unlink(missing_ok=True)


@contextmanager
def single(args: list[str]) -> Iterator[str]:
    with Server(args) as server:
        yield server.url


def one_at_a_time_ms(url: str, texts: list[str] | None, n: int) -> float:
    """Median latency of ``n`` requests sent one after another: one text to ``/embed``, or
    (``texts`` None) ``GET /health``, which runs no model: the HTTP path alone."""
    import httpx

    times = []
    with httpx.Client(base_url=url, timeout=60, trust_env=False) as http:
        for i in range(n + 5):
            start = time.perf_counter()
            if texts is None:
                assert http.get("/health").status_code == 200
            else:
                assert http.post("/embed", json={"inputs": [texts[i % len(texts)]]}).status_code == 200
            if i >= 5:  # the first few warm the connection
                times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--precision", default="auto", choices=["auto", "f32", "bf16"])
    parser.add_argument("--strategy", default="buckets-partition")
    parser.add_argument("--seq-buckets", default="32,64,128")
    parser.add_argument("--batch-sizes", default="1,2,4,8")
    parser.add_argument("--max-wait-ms", type=float, default=SERVE_MAX_WAIT_MS, help=f"serve's --max-wait-ms (default {SERVE_MAX_WAIT_MS:g}, serve's)")
    parser.add_argument("--rates", default="20,40,80,120,160", help="offered requests/s, comma list")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of arrivals per rate")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; each set-up keeps its best")
    parser.add_argument("--p95-target-ms", type=float, default=100.0)
    parser.add_argument("--replica-cpus", type=int, default=1)
    parser.add_argument("--probe", type=int, default=60, help="one-at-a-time requests for the proxy overhead")
    parser.add_argument("--texts-file", default=str(ROOT / "assets" / "texts.txt"))
    args = parser.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # Ray keeps 127.0.0.1 as the node address only then
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # loopback only (Ray 2.60's head with --temp-dir refuses its own ~/.ray token)

    import httpx

    rates = [float(r) for r in args.rates.split(",") if r.strip()]
    texts = [line.strip() for line in Path(args.texts_file).read_text(encoding="utf-8").splitlines() if line.strip()]
    common = ["--model", args.model, "--precision", args.precision, "--strategy", args.strategy,
              "--seq-buckets", args.seq_buckets, "--batch-sizes", args.batch_sizes, "--max-wait-ms", str(args.max_wait_ms)]
    cores = os.cpu_count() or 1
    print(f"{args.model}, {args.strategy}, buckets {args.seq_buckets}, batch sizes {args.batch_sizes}, max wait "
          f"{args.max_wait_ms:g} ms, 1 text per request from {Path(args.texts_file).name}, {args.duration:g} s per rate, "
          f"{args.rounds} interleaved round(s); CPU {cpu_name()}, {cores} cores (the single process uses all of them, "
          f"a replica {args.replica_cpus})")
    setups = {"single process": [], "ray, 1 replica": ["--replicas", "1"], "ray, 2 replicas": ["--replicas", "2"]}
    best: dict[str, dict[str, Any]] = {}
    precision = "?"
    head = f"{'round':>5} {'set-up':<16} {'offered/s':>9} {'answered/s':>10} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8}"
    with ray_cluster(cores) as address:
        print(head)
        print("-" * len(head))
        for round_no in range(1, args.rounds + 1):
            for name, extra in setups.items():
                ray_args = ["--ray", address, "--replica-cpus", str(args.replica_cpus), *extra]
                started = ray_serve([*common, *ray_args], int(extra[1])) if extra else single(common)
                with started as url:
                    precision = httpx.get(url + "/info", timeout=30, trust_env=False).json()["precision"]
                    probe = one_at_a_time_ms(url, texts, args.probe)
                    health = one_at_a_time_ms(url, None, args.probe)
                    rows = []
                    for rate in rates:
                        if rows and (rows[-1]["latency_ms"]["p95"] or 0) > 10 * args.p95_target_ms:
                            break  # saturated: higher rates only queue more
                        result = run_loadtest(url, rate=rate, duration_s=args.duration, texts=texts, timeout_s=60).to_dict()
                        rows.append(result)
                        lat = result["latency_ms"]
                        cell = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
                        print(f"{round_no:>5} {name:<16} {rate:>9g} {result['throughput_rps']:>10.1f} {result['errors']:>6} "
                              f"{cell(lat['p50']):>8} {cell(lat['p95']):>8}", flush=True)
                rate = sustained(rows, args.p95_target_ms) or 0.0
                kept = best.get(name)
                if kept is None:
                    best[name] = {"sustained": rate, "probe_ms": probe, "health_ms": health}
                else:  # each figure's least-disturbed round
                    kept.update(sustained=max(rate, kept["sustained"]), probe_ms=min(probe, kept["probe_ms"]),
                                health_ms=min(health, kept["health_ms"]))
    base = best["single process"]
    print(f"\nbest of {args.rounds} round(s), precision {precision}, p95 target {args.p95_target_ms:g} ms, {cores} cores:")
    print(f"{'set-up':<16} {'sustained req/s':>15} {'vs single':>9} {'1 text alone (median ms)':>25} {'GET /health (median ms)':>24}")
    for name, row in best.items():
        ratio = f"{row['sustained'] / base['sustained']:.2f}x" if base["sustained"] else "-"
        print(f"{name:<16} {row['sustained']:>15g} {ratio:>9} {row['probe_ms']:>25.2f} {row['health_ms']:>24.2f}")
    ray1 = best["ray, 1 replica"]
    print(f"Ray's proxy overhead, one request at a time: {ray1['health_ms'] - base['health_ms']:+.2f} ms on GET /health "
          f"(no model: the HTTP path alone), {ray1['probe_ms'] - base['probe_ms']:+.2f} ms on one text "
          f"(also {args.replica_cpus} core(s) against {cores})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
