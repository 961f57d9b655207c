"""`python -m shapedemo serve --ray` on a local Ray cluster (``ray start --head`` on 127.0.0.1,
2 CPUs, no dashboard), with 2 replicas of MiniLM at f32, driven by real clients through Ray
Serve's HTTP proxy: the official `openai` client, 16 concurrent httpx clients, /metrics and
/info, and a load test during which one replica's process is killed.

One cluster and one deployment for the module (Ray's start-up costs seconds); both are always
stopped (the cluster by its process id, `ray stop` as a fallback). Deselect with ``-m "not ray"``.
Nothing here asserts a duration.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("ray.serve")
httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
MINILM = ["--model", "minilm", "--precision", "f32", "--strategy", "buckets-partition",
          "--seq-buckets", "32,128", "--batch-sizes", "1,4", "--max-wait-ms", "10"]
START_TIMEOUT_S = 600  # two replicas compile their shapes on two shared cores

pytestmark = [pytest.mark.model, pytest.mark.ray]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SHAPEDEMO_CACHE"] = str(cache_dir)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # Ray keeps 127.0.0.1 as the node address only then
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env["RAY_AUTH_MODE"] = "disabled"  # loopback only; and Ray 2.60's head with --temp-dir refuses its own ~/.ray token
    return env


def _stop(proc: subprocess.Popen, sig: int = signal.SIGINT, wait_s: float = 60.0) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def cluster(cache_dir, minilm) -> Iterator[str]:
    """A Ray head on 127.0.0.1 with 2 CPUs; its GCS address. (``minilm``: the model is built into
    the shared cache before the replicas read it.)"""
    ray = shutil.which("ray", path=os.path.dirname(sys.executable)) or shutil.which("ray")
    assert ray, "the ray command comes with ray[serve]"
    temp = tempfile.mkdtemp(prefix="rayt", dir="/tmp")  # Ray's socket paths must stay short
    port = free_port()
    log = cache_dir / "ray-head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", temp, "--block"],
            env=_env(cache_dir), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text(errors="replace"):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"ray start did not come up: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(head, signal.SIGTERM)
        if head.returncode is None or any(Path(temp).glob("session_*/sockets/raylet*")):
            subprocess.run([ray, "stop", "--force"], env=_env(cache_dir), capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


def _info(url: str) -> dict:
    return httpx.get(url + "/info", timeout=30).json()


def _replicas_ready(url: str, n: int) -> list[dict] | None:
    try:
        rows = _info(url)["replicas"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    ready = [r for r in rows if r["state"] == "ready"]
    return ready if len(ready) >= n else None


@pytest.fixture(scope="module")
def ray_server(cluster, cache_dir) -> Iterator[str]:
    """`serve --ray ADDRESS --replicas 2` on a free port; its URL once both replicas are ready."""
    port = free_port()
    log = cache_dir / "serve-ray.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shapedemo", "serve", "--ray", cluster, "--replicas", "2", "--port", str(port), *MINILM],
            cwd=ROOT, env=_env(cache_dir), stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _replicas_ready(url, 2):
            if proc.poll() is not None:
                pytest.fail(f"serve --ray exited with {proc.returncode}: {log.read_text(errors='replace')[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"two replicas not ready in {START_TIMEOUT_S} s: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(1.0)
        assert httpx.get(url + "/health", timeout=30).status_code == 200
        yield url
    finally:
        _stop(proc)


def _texts(n: int) -> list[str]:
    words = "river morning garden light music story window friend paper city".split()
    return [f"text {i}: " + " ".join(words[(i + k) % len(words)] for k in range(3 + (i * 7) % 40)) for i in range(n)]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _series(url: str, name: str) -> dict[str, float]:
    """``name``'s value per replica on /metrics (summed over its other labels)."""
    text = httpx.get(url + "/metrics", timeout=30).text
    values: dict[str, float] = {}
    for labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, flags=re.M):
        replica = re.search(r'replica="([^"]+)"', labels).group(1)
        values[replica] = values.get(replica, 0.0) + float(value)
    return values


def test_openai_client_gets_the_embeddings_of_embed(ray_server, minilm_engine):
    openai = pytest.importorskip("openai")
    from shapedemo.measure.compare import embed

    texts = _texts(6)
    client = openai.OpenAI(base_url=ray_server + "/v1", api_key="unused", max_retries=0)
    response = client.embeddings.create(model="anything", input=texts)
    got = np.array([d.embedding for d in response.data], dtype=np.float32)
    _, expected = embed(minilm_engine, texts)
    assert [d.index for d in response.data] == list(range(len(texts)))
    assert response.model == "anything"
    assert _cosines(got, expected).min() >= 0.999
    floats = client.embeddings.create(model="m", input=texts[0], encoding_format="float")
    assert _cosines(np.array([floats.data[0].embedding]), expected[:1]).min() >= 0.999


def test_sixteen_concurrent_clients_get_their_own_rows_from_both_replicas(ray_server, minilm_engine):
    from shapedemo.measure.compare import embed

    texts = _texts(48)
    _, expected = embed(minilm_engine, texts)
    failures: list[str] = []

    def rows(http: httpx.Client, route: str, batch: list[str]) -> np.ndarray | str:
        """The embeddings ``route`` answers for ``batch``, or what went wrong."""
        if route == "/embed":
            body = http.post(route, json={"inputs": batch})
            return np.array(body.json(), dtype=np.float32) if body.status_code == 200 else f"HTTP {body.status_code} {body.text[:200]}"
        body = http.post(route, json={"input": batch, "encoding_format": "base64"})
        if body.status_code != 200:
            return f"HTTP {body.status_code} {body.text[:200]}"
        return np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in body.json()["data"]])

    def client(k: int) -> None:
        with httpx.Client(base_url=ray_server, timeout=120) as http:
            for r, route in enumerate(["/v1/embeddings", "/embed"] * 2):
                mine = [(5 * k + r) % 48, (5 * k + 7 * r + 1) % 48][: 1 + (k + r) % 2]
                got = rows(http, route, [texts[i] for i in mine])
                if isinstance(got, str):
                    failures.append(f"client {k}: {got}")
                elif got.shape != (len(mine), expected.shape[1]) or _cosines(got, expected[mine]).min() < 0.999:
                    failures.append(f"client {k} request {r}: someone else's rows")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:5]
    time.sleep(2.5)  # every replica has reported to the board since
    served = _series(ray_server, "shapedemo_requests_total")
    assert len(served) == 2 and all(v > 0 for v in served.values()), served
    assert _series(ray_server, "shapedemo_compiled_under_traffic_total") == {r: 0.0 for r in served}
    info = _info(ray_server)
    assert {r["replica"] for r in info["replicas"]} == set(served)
    for row in info["replicas"]:
        assert row["ready"] and row["device"] == "CPU" and row["cpu_threads"] == 1
        if row["pinned_cores"]:  # every thread of the replica's process runs on its own core
            tasks = Path(f"/proc/{row['pid']}/task")
            allowed = {re.search(r"Cpus_allowed_list:\s*(\S+)", (t / "status").read_text()).group(1) for t in tasks.iterdir()}
            assert allowed == {",".join(map(str, row["pinned_cores"]))}, (row["replica"], allowed)
        assert sorted(tuple(s["shape"]) for s in row["compiled_shapes"]) == [(1, 32), (1, 128), (4, 32), (4, 128)]
    assert "replica=" not in httpx.get(ray_server + "/health", timeout=30).text


def test_a_killed_replica_loses_no_request_silently_and_comes_back_warm(ray_server):
    from shapedemo.serving.loadtest import run_loadtest

    before = _replicas_ready(ray_server, 2)
    assert before, "two ready replicas before the kill"
    victim = before[0]
    result: dict = {}
    load = threading.Thread(target=lambda: result.setdefault("r", run_loadtest(
        ray_server, rate=15, duration_s=14, texts=_texts(32), texts_per_request=2, timeout_s=60, seed=3,
    )))
    load.start()
    time.sleep(4)
    os.kill(victim["pid"], signal.SIGKILL)
    load.join(120)
    outcome = result["r"]
    # every request was answered: 200 with its rows, or a clear HTTP error status; none hung or
    # came back with the wrong rows, none was refused as "still compiling"
    assert outcome.sent == outcome.scheduled
    assert outcome.ok + outcome.error_count == outcome.scheduled
    assert set(outcome.errors) <= {"http 500", "http 502"}, outcome.errors
    assert outcome.ok >= outcome.scheduled * 0.8, outcome.to_dict()
    deadline = time.monotonic() + 300
    while True:
        rows = _replicas_ready(ray_server, 2) or []
        ids = {r["replica"] for r in rows}
        if len(rows) == 2 and victim["replica"] not in ids:
            break
        assert time.monotonic() < deadline, f"Ray did not bring a second replica back: {rows}"
        time.sleep(1.0)
    newcomer = next(r for r in rows if r["replica"] not in {b["replica"] for b in before})
    assert newcomer["pid"] != victim["pid"] and newcomer["startup_s"] > 0
    assert len(newcomer["compiled_shapes"]) == 4
    for _ in range(20):  # traffic after the restart reaches the newcomer, warm
        assert httpx.post(ray_server + "/embed", json={"inputs": _texts(4)}, timeout=60).status_code == 200
    time.sleep(2.5)
    served = _series(ray_server, "shapedemo_requests_total")
    assert served.get(newcomer["replica"], 0) > 0, served
    assert set(_series(ray_server, "shapedemo_compiled_under_traffic_total").values()) == {0.0}


@pytest.mark.parametrize("args, words", [
    (["--replicas", "2"], "needs --ray"),
    (["--ray", "--replicas", "3", "--max-replicas", "2"], "--replicas 3 is outside"),
    (["--ray", "--target-in-flight", "0"], "--target-in-flight 0"),
])
def test_ray_flags_are_checked_in_one_line(cache_dir, args, words):
    done = subprocess.run([sys.executable, "-m", "shapedemo", "serve", *args], cwd=ROOT, env=_env(cache_dir),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("shapedemo: error:") and words in done.stderr
