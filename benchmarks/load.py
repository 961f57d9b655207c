"""Load on the launched app (issue 12): ``python app.py`` in a subprocess on a free loopback port,
N ``gradio_client`` clients for S seconds mixing ``/plan`` and ``/compare`` with distinct inputs
(texts and custom bucket lists of their own), then: requests, errors, p50/p95 per endpoint, a
cross-talk check (every answer's lengths, bucket edges and plan numbers are those of its own
request), RSS of the server process at start and end, size of the compiled-blob folder, and
tracebacks in the server's log.

    python benchmarks/load.py --clients 8 --seconds 60
    python benchmarks/load.py --compiled-mb 300 --blob-mb 400 --budget-check 25

``--abuse`` runs issue 18's timed cases instead: ``/plan`` of the largest input the page's caps
accept and a click over them (through ``gradio_client``), and ``serve``'s ``/health`` and
``/metrics`` latency while a 4 MB text is refused and while one is truncated.

``--budget-check N`` runs issue 12's "done when" instead: N comparisons with distinct custom
bucket lists, one after another, RSS after each, and the blob folder against its budget. With
``--compiled-mb`` / ``--blob-mb`` the app gets those budgets and its growth may be the compiled
budget + 300 MiB; without them nothing is set, so the app runs on its own defaults (the page's
``PAGE_COMPILED_MB``, the blob cache's 4096 MB) and its growth may be 1.5 GiB (issue 18: a 16 GB,
2-vCPU Space), the slope over the second half printed too:

    python benchmarks/load.py --budget-check 40
Everything is bounded (clients, seconds, requests) and stays on 127.0.0.1. ``tests/test_load.py``
and ``tests/test_reliability.py`` run smaller versions of the same functions; timings are printed,
never asserted.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/load.py` from a checkout: this checkout's shapedemo
    sys.path.insert(0, str(ROOT))

from shapedemo.planning.strategies import make_plan  # noqa: E402  (pure: no OpenVINO, no gradio)

MAX_CLIENTS = 24
"""The app queues at most 32 events; more clients than that would measure refusals."""
MAX_SECONDS = 600
MAX_REQUESTS = 5000
WORDS = "the cat dog sat on mat red blue green one two three four five six seven eight nine ten".split()
"""Words that are one token each in BERT's vocabulary: a text of n words has n + 2 tokens."""
PLAN_STRATEGIES = ["padding", "buckets", "buckets-partition"]
COMPARE_STRATEGIES = ["dynamic", "buckets"]
MAX_LEN = 128


# ------------------------------------------------------------------------------ the app
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid: int) -> float | None:
    """Resident memory of process ``pid`` in MiB (Linux ``/proc``), None where unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def folder_mib(folder: Path) -> float:
    """Bytes of every file below ``folder``, in MiB (0 for a missing folder)."""
    total = 0
    for path in Path(folder).rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except OSError:  # pruned meanwhile
            continue
    return total / 2**20


@dataclass
class App:
    """A launched ``python app.py``: its URL, process, cache folder and log files."""

    url: str
    process: subprocess.Popen
    cache: Path
    stderr_path: Path
    stdout_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss(self) -> float | None:
        return rss_mib(self.pid)

    def blob_mib(self) -> float:
        return folder_mib(self.cache / "blobs")

    def log(self) -> str:
        """What the server printed so far (stderr, then stdout)."""
        return self.stderr_path.read_text(errors="replace") + self.stdout_path.read_text(errors="replace")


@contextmanager
def launch_app(
    *, cache: Path | str, compiled_mb: int | None = None, blob_mb: int | None = None,
    env: dict[str, str] | None = None, timeout_s: float = 240.0,
) -> Iterator[App]:
    """``python app.py`` as a user starts it, on a free loopback port (``GRADIO_SERVER_PORT``),
    with its own cache folder and budgets; stopped (SIGTERM, then SIGKILL) on exit."""
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    port = free_port()
    child_env = dict(os.environ)
    child_env.update(
        GRADIO_SERVER_PORT=str(port), GRADIO_SERVER_NAME="127.0.0.1", GRADIO_ANALYTICS_ENABLED="False",
        SHAPEDEMO_CACHE=str(cache), PYTHONUNBUFFERED="1",
    )
    child_env.pop("SHAPEDEMO_MODEL", None)
    if compiled_mb is not None:
        child_env["SHAPEDEMO_COMPILED_MB"] = str(compiled_mb)
    if blob_mb is not None:
        child_env["SHAPEDEMO_BLOB_CACHE_MB"] = str(blob_mb)
    child_env.update(env or {})
    logs = Path(tempfile.mkdtemp(prefix="shapedemo-load-log-"))
    stderr_path, stdout_path = logs / "stderr.txt", logs / "stdout.txt"
    with open(stderr_path, "wb") as err, open(stdout_path, "wb") as out:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=child_env, stdout=out, stderr=err)
    url = f"http://127.0.0.1:{port}/"
    app = App(url, process, cache, stderr_path, stdout_path)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}:\n{app.log()[-3000:]}")
            try:
                with urllib.request.urlopen(url + "config", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer within {timeout_s:.0f} s:\n{app.log()[-3000:]}")
            time.sleep(0.5)
        yield app
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def connect(url: str) -> Any:
    """A ``gradio_client.Client`` that downloads nothing and says nothing."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


# ------------------------------------------------------------------------------ requests
def tokenizer() -> Any:
    """The packaged model's tokenizer (no model built): token counts the app must report."""
    from shapedemo.model import minilm_folder
    from shapedemo.model.tokenizer import Tokenizer

    return Tokenizer(minilm_folder())


def text_of(tokens: int, rng: random.Random) -> str:
    """A text of ``tokens`` tokens ([CLS] and [SEP] included) from one-token words."""
    return " ".join(rng.choice(WORDS) for _ in range(max(1, tokens - 2)))


def bucket_pairs(seed: int = 0) -> Iterator[tuple[int, int]]:
    """Distinct ``(a, b)`` with ``8 <= a < b < 128`` in a seeded order: each comparison's own
    custom bucket list ``a,b,128`` (so its buckets compile shapes no earlier request compiled)."""
    pairs = [(a, b) for a in range(8, 120) for b in range(a + 4, MAX_LEN)]
    random.Random(seed).shuffle(pairs)
    return iter(pairs)


@dataclass
class Request:
    """One request's page inputs and what its answer must hold."""

    endpoint: str
    inputs: dict[str, Any]
    lengths: list[int]
    buckets: tuple[int, ...]
    strategies: list[str]


def make_request(endpoint: str, pair: tuple[int, int], rng: random.Random, tok: Any) -> Request:
    """Texts whose lengths fill every bucket of ``a,b,128`` (one text exactly a, one exactly b,
    one over b), and the page inputs that send them with that custom bucket list."""
    a, b = pair
    targets = [a, b, rng.randint(2, a), rng.randint(a + 1, b), rng.randint(b + 1, MAX_LEN)]
    rng.shuffle(targets)
    texts = [text_of(n, rng) for n in targets]
    lengths = tok.encode(texts).lengths
    buckets = (a, b, MAX_LEN)
    strategies = COMPARE_STRATEGIES if endpoint == "/compare" else PLAN_STRATEGIES
    inputs: dict[str, Any] = {
        "mode": "texts", "text": "\n".join(texts), "workload": "sst2-like", "batch": 16, "seed": 0,
        "spec": "minilm", "strategies": strategies, "preset": "custom",
        "buckets_text": ",".join(map(str, buckets)), "k": 4, "batch_sizes_text": "1,2,4,8",
        "max_len": str(MAX_LEN),
    }
    if endpoint == "/compare":
        inputs.update(precision="auto", repeats=1, calls="sync", objective="fewest padding rows", device="CPU", static_only=False)
    return Request(endpoint, inputs, lengths, buckets, strategies)


def send(client: Any, request: Request, *, timeout_s: float = 600.0) -> Any:
    return client.submit(api_name=request.endpoint, **request.inputs).result(timeout=timeout_s)


# ------------------------------------------------------------------------------ cross-talk
def _array(value: Any) -> list[float]:
    """A plotly JSON array: a list, or plotly 6's typed array ``{"dtype", "bdata"}``."""
    if isinstance(value, dict) and "bdata" in value:
        import numpy as np

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).tolist()
    return list(value or [])


def _figure(value: Any) -> dict[str, Any]:
    import json

    return json.loads(value["plot"]) if isinstance(value, dict) and "plot" in value else {}


def lengths_shown(figure_value: Any) -> tuple[list[int], list[int]]:
    """The lengths histogram's sequence lengths and its bucket edges (dashed lines at edge + 0.5)."""
    figure = _figure(figure_value)
    lengths = [int(x) for trace in figure.get("data", []) if trace.get("type") == "histogram" for x in _array(trace.get("x"))]
    edges = sorted(int(round(s["x0"] - 0.5)) for s in figure.get("layout", {}).get("shapes", []) if s.get("type") == "line")
    return lengths, edges


def cross_talk(request: Request, answer: Sequence[Any]) -> list[str]:
    """What in ``answer`` is not the answer to ``request``: lengths, bucket edges, and for
    ``/compare`` the table's plan columns (calls, compiled shapes, padding, computed tokens)
    against the core's plans of this request's lengths; ``/plan``: the summary's call counts."""
    problems = []
    plans = {
        name: make_plan(name, request.lengths, seq_buckets=request.buckets, batch_sizes=(1, 2, 4, 8), max_seq=MAX_LEN)
        for name in request.strategies
    }
    histogram = answer[2] if request.endpoint == "/plan" else answer[6]
    lengths, edges = lengths_shown(histogram)
    if sorted(lengths) != sorted(request.lengths):
        problems.append(f"lengths {sorted(lengths)} != sent {sorted(request.lengths)}")
    if edges != list(request.buckets):
        problems.append(f"bucket edges {edges} != sent {list(request.buckets)}")
    if request.endpoint == "/plan":
        summary = answer[3]
        for name, plan in plans.items():
            if f"`{name}`: {plan.num_calls} call" not in summary:
                problems.append(f"summary lacks `{name}`: {plan.num_calls} call")
        return problems
    rows = answer[8]["data"]
    if [row[0] for row in rows] != list(plans):
        return problems + [f"table strategies {[row[0] for row in rows]} != {list(plans)}"]
    for row in rows:
        plan = plans[row[0]]
        want = [plan.num_calls, "dynamic" if plan.dynamic else len(plan.compiled_shapes), round(plan.padding_fraction, 3), plan.computed_tokens]
        got = [row[1], row[2], row[3], row[4]]
        if got[:2] + got[3:] != want[:2] + want[3:] or abs(float(got[2]) - want[2]) > 1e-9:
            problems.append(f"{row[0]}: table {got} != plan {want}")
    return problems


# ------------------------------------------------------------------------------ load
@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    cross_talk: list[str] = field(default_factory=list)
    rss_start: float | None = None
    rss_end: float | None = None
    blob_start: float = 0.0
    blob_end: float = 0.0
    tracebacks: int = 0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + len(self.errors)

    def lines(self) -> list[str]:
        out = [f"{self.clients} clients for {self.seconds:.0f} s: {self.requests} requests, {len(self.errors)} errors, "
               f"{len(self.cross_talk)} answers with cross-talk"]
        for endpoint, xs in sorted(self.latencies.items()):
            if xs:
                out.append(f"  {endpoint:<9} {len(xs):4d} ok   p50 {percentile(xs, 50):7.2f} s   p95 {percentile(xs, 95):7.2f} s")
        out.append(f"  server RSS {_mib(self.rss_start)} at start -> {_mib(self.rss_end)} at end; "
                   f"blob cache {self.blob_start:.0f} -> {self.blob_end:.0f} MiB; tracebacks in the log: {self.tracebacks}")
        out += [f"  error: {e}" for e in self.errors[:5]] + [f"  cross-talk: {c}" for c in self.cross_talk[:5]]
        return out


def _mib(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} MiB"


def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile.

    >>> percentile([1, 2, 3, 4], 50), percentile([1, 2, 3, 4], 95)
    (2, 4)
    """
    ordered = sorted(xs)
    return ordered[max(0, min(len(ordered) - 1, -(-len(ordered) * q // 100) - 1))]


def run_load(
    app: App, *, clients: int, seconds: float, compare_every: int = 3, max_requests: int = MAX_REQUESTS,
    seed: int = 0, timeout_s: float = 600.0,
) -> LoadResult:
    """``clients`` threads, each with its own ``gradio_client``, sending requests back to back
    for ``seconds`` (then the last answers are awaited): every ``compare_every``-th of a client's
    requests is a ``/compare``, the others ``/plan``; every input is distinct."""
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients {clients}: choose 1 to {MAX_CLIENTS}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds {seconds}: choose up to {MAX_SECONDS}")
    tok = tokenizer()
    pairs = bucket_pairs(seed)
    lock = threading.Lock()
    result = LoadResult(clients, seconds, rss_start=app.rss(), blob_start=app.blob_mib())
    budget = itertools.count()
    deadline = time.monotonic() + seconds

    def client_loop(k: int) -> None:
        rng = random.Random(f"{seed}-{k}")
        try:
            client = connect(app.url)
        except Exception as exc:  # noqa: BLE001 - counted, not raised: the run goes on
            with lock:
                result.errors.append(f"client {k} could not connect: {exc!r}"[:300])
            return
        try:
            for j in itertools.count():
                if time.monotonic() >= deadline or next(budget) >= max_requests:
                    return
                endpoint = "/compare" if j % compare_every == compare_every - 1 else "/plan"
                with lock:
                    pair = next(pairs)
                request = make_request(endpoint, pair, rng, tok)
                t0 = time.perf_counter()
                try:
                    answer = send(client, request, timeout_s=timeout_s)
                except Exception as exc:  # noqa: BLE001
                    with lock:
                        result.errors.append(f"{endpoint}: {type(exc).__name__}: {exc}"[:300])
                    continue
                elapsed = time.perf_counter() - t0
                problems = cross_talk(request, answer)
                with lock:
                    result.latencies.setdefault(endpoint, []).append(elapsed)
                    result.cross_talk += [f"client {k} {endpoint} {request.buckets}: {p}" for p in problems]
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result.rss_end, result.blob_end = app.rss(), app.blob_mib()
    result.tracebacks = app.log().count("Traceback")
    return result


# ------------------------------------------------------------------------------ budgets
@dataclass
class BudgetResult:
    """Issue 12's "done when": RSS after each comparison and the blob folder against budgets."""

    compiled_mb: int
    blob_mb: int
    defaults: bool = False
    """Whether the budgets are the app's own defaults (no setting changed)."""
    rss: list[float] = field(default_factory=list)
    blobs: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cross_talk: list[str] = field(default_factory=list)
    vary_engines: bool = False

    @property
    def growth(self) -> float:
        """RSS at the end minus RSS after the first comparison (MiB)."""
        return self.rss[-1] - self.rss[0]

    @property
    def peak_growth(self) -> float:
        return max(self.rss) - self.rss[0]

    @property
    def allowed(self) -> float:
        """The growth allowed: 1.5 GiB on the app's defaults (issue 18), else budget + 300 MiB."""
        return DEFAULT_GROWTH_MIB if self.defaults else self.compiled_mb + 300

    @property
    def slope(self) -> float:
        """MiB per comparison over the second half (least squares; 0 for fewer than 4)."""
        half = self.rss[len(self.rss) // 2:]
        if len(half) < 2 or len(self.rss) < 4:
            return 0.0
        return statistics.linear_regression(range(len(half)), half).slope

    def lines(self) -> list[str]:
        budgets = f"SHAPEDEMO_COMPILED_MB={self.compiled_mb}, SHAPEDEMO_BLOB_CACHE_MB={self.blob_mb}"
        return [
            f"{len(self.rss)} comparisons with distinct custom bucket lists in {self.seconds:.0f} s "
            f"({'no setting changed: the page defaults, ' + budgets.replace('=', ' ') if self.defaults else budgets}"
            + (", precision and static-only varied: 4 engines + 2 CPU reference engines" if self.vary_engines else ", one engine")
            + "):",
            f"  server RSS after the first {self.rss[0]:.0f} MiB, at most {max(self.rss):.0f}, after the last {self.rss[-1]:.0f} MiB "
            f"(growth {self.growth:+.0f}, peak {self.peak_growth:+.0f}; allowed {self.allowed:.0f} MiB); "
            f"slope over the second half {self.slope:+.1f} MiB per comparison",
            f"  blob folder at most {max(self.blobs):.0f} MiB over the run, {self.blobs[-1]:.0f} MiB at the end (budget {self.blob_mb} MiB)",
            "  RSS after each: " + " ".join(f"{x:.0f}" for x in self.rss),
        ] + [f"  cross-talk: {c}" for c in self.cross_talk[:5]]


DEFAULT_GROWTH_MIB = 1536
"""Issue 18: on the page's default budgets, RSS after 40 comparisons with new bucket lists stays
within 1.5 GiB of RSS after the first."""


ENGINE_SETTINGS = [("auto", False), ("f32", False), ("auto", True), ("f32", True)]
"""(precision, static-only) pairs: on the CPU, each is an engine of its own, a static-only one
with a CPU reference engine beside it."""


def run_budget_check(
    app: App, *, comparisons: int, compiled_mb: int, blob_mb: int, seed: int = 0, vary_engines: bool = False,
    defaults: bool = False,
) -> BudgetResult:
    """``comparisons`` comparisons one after another, each with its own custom bucket list (two
    shapes no earlier one compiled), RSS and blob folder read after each. ``vary_engines``
    cycles precision and static-only mode through ``ENGINE_SETTINGS``, so the compiled models
    spread over six engines."""
    tok = tokenizer()
    pairs = bucket_pairs(seed)
    rng = random.Random(seed)
    result = BudgetResult(compiled_mb, blob_mb, defaults=defaults, vary_engines=vary_engines)
    client = connect(app.url)
    t0 = time.perf_counter()
    try:
        for i in range(comparisons):
            request = make_request("/compare", next(pairs), rng, tok)
            if vary_engines:
                precision, static_only = ENGINE_SETTINGS[i % len(ENGINE_SETTINGS)]
                request.inputs.update(precision=precision, static_only=static_only)
            answer = send(client, request)
            result.cross_talk += cross_talk(request, answer)
            result.rss.append(app.rss() or 0.0)
            result.blobs.append(app.blob_mib())
    finally:
        client.close()
    result.seconds = time.perf_counter() - t0
    return result


# ------------------------------------------------------------------------------ abuse (issue 18)
def run_abuse(cache: Path) -> list[str]:
    """The timed cases of issue 18, one line each (times printed, never asserted)."""
    import json
    import re

    import httpx

    lines = []
    with launch_app(cache=cache) as app:
        client = connect(app.url)
        texts = "\n".join(f"text {i}: " + "word " * (3 + 7 * i % 200) for i in range(64))
        largest = ["texts", texts, "sst2-like", 16, 0, "minilm", ["dynamic", "padding", "buckets", "partition", "packing"],
                   "custom", "32,64,128,256", 4, "1,2,3,4,5,6,7,8", "256"]
        times = []
        for _ in range(3):
            start = time.perf_counter()
            client.predict(*largest, api_name="/plan")
            times.append(time.perf_counter() - start)
        lines.append(f"/plan of the largest accepted click (64 texts, 4 buckets x 8 batch sizes, plain and packed = 64 shapes): "
                     f"best {min(times):.2f} s, median {statistics.median(times):.2f} s of 3")
        over = list(largest)
        over[8], over[10] = ",".join(str(8 * i) for i in range(1, 33)), ",".join(str(i) for i in range(1, 65))
        start = time.perf_counter()
        try:
            client.predict(*over, api_name="/plan")
            lines.append("a click over the cap: NOT refused")
        except Exception as exc:  # gradio_client's AppError: the page's one-line toast
            lines.append(f"a click over the cap: refused in {time.perf_counter() - start:.2f} s: {str(exc).splitlines()[0][:160]}")
        lines.append(f"tracebacks in the app's log: {app.log().count('Traceback')}")
    log = Path(tempfile.mkstemp(prefix="shapedemo-abuse-serve-", suffix=".log")[1])
    env = {**os.environ, "SHAPEDEMO_CACHE": str(cache)}
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "shapedemo", "serve", "--port", "0", "--model", "minilm", "--precision", "f32",
                                 "--strategy", "buckets-partition", "--seq-buckets", "32,128", "--batch-sizes", "1,4"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        url = None
        while url is None or httpx.get(url + "/health", timeout=5).status_code != 200:
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            found = re.search(r"listening on (http://\S+?:\d+)", log.read_text())
            url = found.group(1) if found else None
            time.sleep(0.5)
        huge = "hello world river " * 222_222
        for route, body in (("/v1/embeddings", {"input": huge}), ("/embed", {"inputs": huge, "truncate": True})):
            raw = json.dumps(body).encode()
            outcome: dict[str, Any] = {}

            def send() -> None:
                start = time.perf_counter()
                r = httpx.post(url + route, content=raw, headers={"content-type": "application/json"}, timeout=120)
                outcome.update(status=r.status_code, seconds=time.perf_counter() - start)

            worker = threading.Thread(target=send)
            worker.start()
            waits = []
            with httpx.Client() as probe:
                while worker.is_alive():
                    for path in ("/health", "/metrics"):
                        start = time.perf_counter()
                        probe.get(url + path)
                        waits.append((time.perf_counter() - start) * 1e3)
            worker.join()
            lines.append(f"{route} with a {len(raw) / 2**20:.1f} MiB text: {outcome['status']} in {outcome['seconds']:.2f} s; "
                         f"/health and /metrics meanwhile: {len(waits)} answers, median {statistics.median(waits):.1f} ms, "
                         f"max {max(waits):.1f} ms (client side, loopback)")
        lines.append(f"tracebacks in serve's log: {log.read_text().count('Traceback')}")
    finally:
        proc.terminate()
        proc.wait(30)
    return lines


# ------------------------------------------------------------------------------ main
def page_compiled_mb() -> int:
    """The compiled-model budget ``python app.py`` runs on where nothing is set (pure imports)."""
    from shapedemo.runtime.budget import compiled_budget_mb
    from shapedemo.settings import PAGE_COMPILED_MB

    return compiled_budget_mb(PAGE_COMPILED_MB)


def page_blob_mb() -> int:
    from shapedemo.runtime.blobs import blob_budget_mb

    return blob_budget_mb()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8, help=f"concurrent gradio_client clients (1..{MAX_CLIENTS}, default 8)")
    parser.add_argument("--seconds", type=float, default=60.0, help=f"seconds of requests (at most {MAX_SECONDS}, default 60)")
    parser.add_argument("--max-requests", type=int, default=1000, help=f"requests at most (default 1000, at most {MAX_REQUESTS})")
    parser.add_argument("--compare-every", type=int, default=3, help="every N-th request of a client is a /compare (default 3)")
    parser.add_argument("--compiled-mb", type=int, default=None, help="SHAPEDEMO_COMPILED_MB for the app (default: the app's)")
    parser.add_argument("--blob-mb", type=int, default=None, help="SHAPEDEMO_BLOB_CACHE_MB for the app (default: the app's)")
    parser.add_argument("--budget-check", type=int, default=0, metavar="N",
                        help="instead: N comparisons with distinct bucket lists, RSS and blobs against the budgets "
                             "(--compiled-mb / --blob-mb, else the app's own defaults: growth within 1.5 GiB)")
    parser.add_argument("--vary-engines", action="store_true",
                        help="with --budget-check: cycle precision (auto, f32) and static-only mode, six engines in all")
    parser.add_argument("--abuse", action="store_true", help="instead: issue 18's timed cases (/plan at the caps, /health under a 4 MB text)")
    parser.add_argument("--cache", default=None, help="SHAPEDEMO_CACHE for the app (default: a new temporary folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not 1 <= args.max_requests <= MAX_REQUESTS:
        parser.error(f"--max-requests: choose 1 to {MAX_REQUESTS}")
    cache = Path(args.cache or tempfile.mkdtemp(prefix="shapedemo-load-cache-"))
    if args.abuse:
        print(f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores; serve at f32")
        print("\n".join(run_abuse(cache)))
        return 0
    if args.budget_check:
        defaults = args.compiled_mb is None and args.blob_mb is None and not any(
            os.environ.get(name) for name in ("SHAPEDEMO_COMPILED_MB", "SHAPEDEMO_BLOB_CACHE_MB"))
        compiled_mb = page_compiled_mb() if args.compiled_mb is None else args.compiled_mb
        blob_mb = page_blob_mb() if args.blob_mb is None else args.blob_mb
        from shapedemo.runtime.costs import cpu_name  # no OpenVINO at import

        print(f"CPU {cpu_name()}, {os.cpu_count()} cores; comparisons at precision "
              + ("auto and f32" if args.vary_engines else "auto"))
        with launch_app(cache=cache, compiled_mb=args.compiled_mb, blob_mb=args.blob_mb) as app:
            budget = run_budget_check(
                app, comparisons=args.budget_check, compiled_mb=compiled_mb, blob_mb=blob_mb, seed=args.seed,
                vary_engines=args.vary_engines, defaults=defaults,
            )
            tracebacks = app.log().count("Traceback")
        print("\n".join(budget.lines()) + f"\n  tracebacks in the log: {tracebacks}")
        ok = budget.growth <= budget.allowed and max(budget.blobs) <= blob_mb and not budget.cross_talk
        print("within budget" if ok else "OVER BUDGET")
        return 0 if ok else 1
    with launch_app(cache=cache, compiled_mb=args.compiled_mb, blob_mb=args.blob_mb) as app:
        result = run_load(
            app, clients=args.clients, seconds=args.seconds, compare_every=args.compare_every,
            max_requests=args.max_requests, seed=args.seed,
        )
    print("\n".join(result.lines()))
    return 0 if not result.errors and not result.cross_talk else 1


if __name__ == "__main__":
    raise SystemExit(main())
