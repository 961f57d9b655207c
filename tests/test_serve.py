"""The HTTP server launched as `python -m shapedemo serve` in a subprocess, driven by real clients
(the official `openai` client, httpx), and the load test against it.

Fidelity and cross-talk run on MiniLM at f32 (numbers compared); bad requests, metrics and the
full queue on synthetic:tiny (speed). Nothing here asserts a duration.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--model", "synthetic:tiny", "--precision", "f32", "--strategy", "buckets-partition",
        "--seq-buckets", "16,64", "--batch-sizes", "1,4"]
MINILM = ["--model", "minilm", "--precision", "f32", "--strategy", "buckets-partition",
          "--seq-buckets", "32,128", "--batch-sizes", "1,4", "--max-wait-ms", "10"]

pytestmark = pytest.mark.model


def _env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["SHAPEDEMO_CACHE"] = str(cache_dir)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


@contextmanager
def running_server(cache_dir: Path, *args: str, timeout: float = 300.0, log_dir: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:
    """`serve --port 0 ARGS` in a subprocess; yields (base url, process) once /health is 200;
    always terminates it. Its stderr goes to ``proc.log`` in ``log_dir`` (default: the cache)."""
    log = (log_dir or cache_dir) / f"serve-{time.monotonic_ns()}.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shapedemo", "serve", "--port", "0", *args],
            cwd=ROOT, env=_env(cache_dir), stdout=subprocess.DEVNULL, stderr=err,
        )
    proc.log = log  # type: ignore[attr-defined]  # its stderr, for tests that read the log
    try:
        deadline = time.monotonic() + timeout
        url = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"serve exited with {proc.returncode}: {log.read_text()[-2000:]}")
            if url is None:
                found = re.search(r"listening on (http://\S+?:\d+)", log.read_text())
                url = found.group(1) if found else None
            else:
                try:
                    if httpx.get(url + "/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:  # it exited meanwhile: poll() above reports it with the log
                    pass
            time.sleep(0.2)
        else:
            pytest.fail(f"serve did not become healthy in {timeout} s: {log.read_text()[-2000:]}")
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def tiny_server(cache_dir) -> Iterator[str]:
    with running_server(cache_dir, *TINY, "--max-texts", "8") as (url, _):
        yield url


@pytest.fixture(scope="module")
def minilm_server(cache_dir) -> Iterator[str]:
    with running_server(cache_dir, *MINILM) as (url, _):
        yield url


def _texts(n: int) -> list[str]:
    """Distinct texts of varied lengths (so they land in different buckets and batches)."""
    words = "river morning garden light music story window friend paper city".split()
    return [f"text {i}: " + " ".join(words[(i + k) % len(words)] for k in range(3 + (i * 7) % 40)) for i in range(n)]


# ---- fidelity and cross-talk (MiniLM, f32) --------------------------------------------------


def test_openai_client_gets_the_embeddings_of_embed(minilm_server, minilm_engine):
    openai = pytest.importorskip("openai")
    from shapedemo.measure.compare import embed

    texts = _texts(6)
    client = openai.OpenAI(base_url=minilm_server + "/v1", api_key="unused", max_retries=0)
    response = client.embeddings.create(model="anything", input=texts)  # base64 by default
    got = np.array([d.embedding for d in response.data], dtype=np.float32)
    _, expected = embed(minilm_engine, texts)
    assert [d.index for d in response.data] == list(range(len(texts)))
    assert response.model == "anything"
    assert response.usage.prompt_tokens == sum(minilm_engine.loaded.tokenizer.encode(texts).lengths)
    np.testing.assert_allclose(got, expected, atol=2e-5)
    floats = client.embeddings.create(model="m", input=texts[0], encoding_format="float")
    np.testing.assert_allclose(floats.data[0].embedding, expected[0], atol=2e-5)


def test_sixteen_concurrent_clients_get_their_own_results(minilm_server, minilm_engine):
    from shapedemo.measure.compare import embed

    texts = _texts(48)
    _, expected = embed(minilm_engine, texts)
    failures: list[str] = []

    def client(k: int) -> None:
        with httpx.Client(base_url=minilm_server, timeout=120) as http:
            for r in range(3):
                mine = [3 * k + r] if (k + r) % 2 else [3 * k + r, (3 * k + r + 17) % 48]
                if r == 1:
                    body = http.post("/embed", json={"inputs": [texts[i] for i in mine]})
                    got = np.array(body.json(), dtype=np.float32) if body.status_code == 200 else None
                else:
                    body = http.post("/v1/embeddings", json={"input": [texts[i] for i in mine], "encoding_format": "base64"})
                    got = (
                        np.stack([np.frombuffer(base64.b64decode(d["embedding"]), "<f4") for d in body.json()["data"]])
                        if body.status_code == 200 else None
                    )
                if got is None:
                    failures.append(f"client {k}: HTTP {body.status_code} {body.text[:200]}")
                elif got.shape != (len(mine), expected.shape[1]) or not np.allclose(got, expected[mine], atol=2e-5):
                    failures.append(f"client {k} request {r}: someone else's rows (max diff {np.abs(got - expected[mine]).max() if got.shape == expected[mine].shape else got.shape})")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not failures, failures
    metrics = httpx.get(minilm_server + "/metrics").text
    batches = _samples(metrics, "shapedemo_batch_size_texts_count")
    assert batches and batches[0] < 48, "no two requests were ever batched together"


# ---- bad requests (synthetic:tiny) ----------------------------------------------------------

LONG = " ".join(["word"] * 100)  # 102 tokens: over the top bucket 64
HUGE = " ".join(["word"] * 600)  # over the model's 512

BAD_OPENAI = [
    ("not json", b"{input: hi", 400),
    ("array body", b'["hi"]', 400),
    ("missing input", {"model": "m"}, 422),
    ("empty list", {"input": []}, 422),
    ("empty text", {"input": ""}, 422),
    ("blank text in a list", {"input": ["ok", "   "]}, 422),
    ("token id outside the vocabulary", {"input": [101, 10**9, 102]}, 422),
    ("negative token id", {"input": [[101, -1, 102]]}, 422),
    ("an empty row of token ids", {"input": [[101, 102], []]}, 422),
    ("token ids mixed with text", {"input": [[101, 102], "hi"]}, 422),
    ("too many token ids", {"input": [101] + [7592] * 100 + [102]}, 413),
    ("lone surrogate", b'{"input": "caf\\ud800"}', 422),
    ("only NUL and zero-width", {"input": ["ok", "\x00\u200b\x00"]}, 422),
    ("nested 100,000 deep", b'{"input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    ("nested 20 deep", {"input": "hi", "user": [[[[[[[[[[[[[[[[[[[["ok"]]]]]]]]]]]]]]]]]]]]}, 400),
    ("number", {"input": 5}, 422),
    ("mixed types", {"input": ["ok", 3]}, 422),
    ("null", {"input": None}, 422),
    ("bad encoding_format", {"input": "hi", "encoding_format": "int8"}, 422),
    ("bad dimensions", {"input": "hi", "dimensions": 7}, 422),
    ("model not a string", {"input": "hi", "model": {"path": "/etc"}}, 422),
    ("too many texts", {"input": ["hi"] * 9}, 413),
    ("over the top bucket", {"input": ["ok", LONG]}, 413),
    ("over the model", {"input": HUGE}, 413),
    ("huge body", {"input": "x" * (5 * 2**20)}, 413),
]

BAD_TEI = [
    ("not json", b"\xff\xfe", 400),
    ("missing inputs", {"input": "hi"}, 422),
    ("empty", {"inputs": []}, 422),
    ("wrong type", {"inputs": {"a": 1}}, 422),
    ("normalize false", {"inputs": "hi", "normalize": False}, 422),
    ("truncate not a bool", {"inputs": "hi", "truncate": "yes"}, 422),
    ("lone surrogate", b'{"inputs": ["ok", "\\udfff"]}', 422),
    ("only zero-width", {"inputs": "\u200b\u200b"}, 422),
    ("token ids", {"inputs": [101, 102]}, 422),
    ("too many", {"inputs": ["hi"] * 9}, 413),
    ("too long", {"inputs": LONG}, 413),
]


def _post(url: str, body: object) -> httpx.Response:
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=60)
    return httpx.post(url, json=body, timeout=60)


@pytest.mark.parametrize("route, cases", [("/v1/embeddings", BAD_OPENAI), ("/embed", BAD_TEI)])
def test_every_bad_request_gets_its_4xx_and_the_server_answers_after(tiny_server, route, cases):
    for name, body, status in cases:
        response = _post(tiny_server + route, body)
        assert response.status_code == status, (name, response.status_code, response.text[:300])
        error = response.json()["error"]
        message = error["message"] if route.startswith("/v1") else error
        assert isinstance(message, str) and message and "\n" not in message, name
    long = _post(tiny_server + route, {"input": ["ok", LONG]} if route.startswith("/v1") else {"inputs": ["ok", LONG]})
    assert "[1]" in long.text and "64" in long.text  # names the text's index and the limit
    good = _post(tiny_server + route, {"input": ["fine", "also fine"]} if route.startswith("/v1") else {"inputs": ["fine"]})
    assert good.status_code == 200
    assert httpx.get(tiny_server + "/health").status_code == 200


def test_the_model_field_is_echoed_never_loaded(tiny_server):
    before = httpx.get(tiny_server + "/info").json()
    for model in ("/etc/passwd", "synthetic:large", "../../secret.xml", "org/other-model"):
        response = _post(tiny_server + "/v1/embeddings", {"input": "hello", "model": model, "user": "x", "extra": [1]})
        assert response.status_code == 200
        assert response.json()["model"] == model
    after = httpx.get(tiny_server + "/info").json()
    assert after["model"] == before["model"] == "synthetic:tiny"
    assert after["compiled_shapes"] == before["compiled_shapes"]


def test_truncation_is_asked_for_explicitly(tiny_server):
    response = _post(tiny_server + "/embed", {"inputs": [LONG], "truncate": True})
    assert response.status_code == 200 and len(response.json()[0]) == 128


def test_info_health_and_metrics(tiny_server):
    from prometheus_client.parser import text_string_to_metric_families

    info = httpx.get(tiny_server + "/info").json()
    assert info["strategy"] == "buckets-partition" and info["precision"] == "f32"
    assert sorted(tuple(s["shape"]) for s in info["compiled_shapes"]) == [(1, 16), (1, 64), (4, 16), (4, 64)]
    assert info["max_tokens_per_text"] == 64 and info["max_texts_per_request"] == 8
    assert httpx.get(tiny_server + "/health").json() == {"status": "ok"}
    assert _post(tiny_server + "/v1/embeddings", {"input": ["one", "two", "three"]}).status_code == 200
    text = httpx.get(tiny_server + "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in ("shapedemo_request_latency_seconds", "shapedemo_queue_delay_seconds", "shapedemo_batch_size_texts",
                 "shapedemo_batch_padding_fraction", "shapedemo_calls", "shapedemo_requests"):
        assert name in families, name
    calls = {s.labels["shape"]: s.value for s in families["shapedemo_calls"].samples if s.name.endswith("_total")}
    assert set(calls) == {"1x16", "1x64", "4x16", "4x64"} and sum(calls.values()) >= 1
    under = [s.value for s in families["shapedemo_compiled_under_traffic"].samples if s.name.endswith("_total")]
    assert under == [0.0]


def _samples(text: str, name: str) -> list[float]:
    return [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{")]


# ---- a full queue, start-up errors ----------------------------------------------------------


def test_a_full_queue_answers_503_with_retry_after(cache_dir):
    args = [*TINY, "--max-wait-ms", "3000", "--max-queue", "1", "--max-texts", "1"]
    with running_server(cache_dir, *args) as (url, _):
        first: dict[str, httpx.Response] = {}
        waiting = threading.Thread(target=lambda: first.setdefault("r", _post(url + "/embed", {"inputs": "first"})))
        waiting.start()
        time.sleep(0.5)  # the first request now waits up to 3 s for company
        second = _post(url + "/embed", {"inputs": "second"})
        waiting.join(30)
        assert second.status_code == 503 and second.headers.get("retry-after") == "1"
        assert first["r"].status_code == 200
        assert _post(url + "/embed", {"inputs": "third"}).status_code == 200


def _serve_exit(cache_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shapedemo", "serve", *args], cwd=ROOT, env=_env(cache_dir),
        capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("args, words", [
    (["--strategy", "bucket"], "unknown strategy"),
    (["--seq-buckets", "tuned:3"], "--lengths-file, --texts-file or --workload"),
    (["--max-wait-ms", "-1"], "max-wait-ms"),
    (["--config", "/nonexistent/config.json"], "cannot read --config"),
    (["--model", "synthetic:tiny", "--max-seq", "4096"], "limit"),
])
def test_start_up_errors_are_one_line_and_exit_2(cache_dir, args, words):
    result = _serve_exit(cache_dir, "--port", "0", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shapedemo: error:") and words in lines[0], result.stderr


def test_a_port_in_use_is_one_line(cache_dir):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = _serve_exit(cache_dir, *TINY, "--port", str(port))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"shapedemo: error: cannot listen on 127.0.0.1:{port}")


def test_a_failure_while_compiling_exits_2_with_one_line(cache_dir, tiny, tmp_path):
    ir = next((cache_dir / "models").glob("synthetic-tiny-*/model.xml"))  # the plain IR: no packing inputs
    from shapedemo.model import minilm_source

    for suffix in (".xml", ".bin"):
        (tmp_path / f"model{suffix}").write_bytes(ir.with_suffix(suffix).read_bytes())
    for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        if (minilm_source() / name).exists():  # synthetic models use the packaged tokenizer
            (tmp_path / name).write_bytes((minilm_source() / name).read_bytes())
    result = _serve_exit(cache_dir, "--model", str(tmp_path / "model.xml"), "--strategy", "packing",
                         "--seq-buckets", "16,64", "--batch-sizes", "1", "--port", "0")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("shapedemo: error: start-up failed:") and "pack" in last, result.stderr


def test_shapes_over_the_compiled_memory_budget_exit_2_at_start_up(cache_dir, monkeypatch):
    """Rather than evicting under traffic: a configuration whose shapes do not fit
    SHAPEDEMO_COMPILED_MB (each compiled model counts at least 1 MiB) refuses to start."""
    monkeypatch.setenv("SHAPEDEMO_COMPILED_MB", "1")
    result = _serve_exit(cache_dir, "--model", "synthetic:tiny", "--strategy", "buckets-partition",
                         "--seq-buckets", "16,32", "--batch-sizes", "1,2", "--port", "0")
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("shapedemo: error:") and "SHAPEDEMO_COMPILED_MB" in last, result.stderr


def test_config_from_tune(cache_dir, tmp_path):
    config = tmp_path / "tuned.json"
    config.write_text(json.dumps({"seq_buckets": [16, 48], "batch_sizes": [2], "shapes": [[2, 16], [2, 48]], "predicted": {}}))
    with running_server(cache_dir, "--model", "synthetic:tiny", "--strategy", "buckets", "--config", str(config)) as (url, _):
        info = httpx.get(url + "/info").json()
        assert [s["shape"] for s in info["compiled_shapes"]] == [[2, 16], [2, 48]]
        assert info["config_shapes"] == [[2, 16], [2, 48]]


# ---- the load test --------------------------------------------------------------------------


def test_loadtest_refuses_other_hosts():
    result = subprocess.run(
        [sys.executable, "-m", "shapedemo", "loadtest", "--url", "http://192.0.2.1:8000", "--rate", "1", "--duration", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "shapedemo: error: loadtest sends traffic to loopback only (127.0.0.1, ::1, localhost), "
        "not '192.0.2.1': this workplace forbids traffic elsewhere"
    ]


def test_loadtest_against_the_server(tiny_server, tmp_path):
    out = tmp_path / "load.json"
    result = subprocess.run(
        [sys.executable, "-m", "shapedemo", "loadtest", "--url", tiny_server, "--rate", "20", "--duration", "1.5",
         "--workload", "sst2-like", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "p95" in result.stdout
    payload = json.loads(out.read_text())
    assert payload["requests"] == payload["sent"] == payload["ok"] > 0
    assert payload["errors"] == 0
    assert payload["latency_ms"]["p50"] <= payload["latency_ms"]["p95"] <= payload["latency_ms"]["p99"]


# ---- what is compiled is what is planned ------------------------------------------------------


def _texts_of_every_length(tokenizer, top: int) -> dict[int, str]:
    """Real text (assets/paragraphs.txt, then assets/texts.txt) of every token length from 3 (one
    word with [CLS] and [SEP]) up to ``top``: word prefixes of the corpus read from many starts."""
    lines = [l.strip() for name in ("paragraphs.txt", "texts.txt")
             for l in (ROOT / "assets" / name).read_text(encoding="utf-8").splitlines() if l.strip()]
    words = " ".join(lines).split()
    found: dict[int, str] = {}
    for start in range(0, len(words), 37):
        prefixes = [" ".join(words[start:start + k]) for k in range(1, min(top, len(words) - start) + 1)]
        for text, n in zip(prefixes, tokenizer.encode(prefixes, truncate=True, max_length=top + 1).lengths):
            if n <= top:
                found.setdefault(n, text)
        if len(found) >= top - 2:
            break
    return found


def _traffic_compiles_nothing(url: str, tokenizer) -> set[tuple[str, bool]]:
    """Real texts of every length up to the server's longest compiled length, alone and in
    requests of up to 8 texts from 16 clients at once: all answered, not one shape compiled
    after start-up, every call on a shape compiled at start-up. Returns the (shape, packed)
    pairs that ran."""
    import random
    from concurrent.futures import ThreadPoolExecutor

    info = httpx.get(url + "/info").json()
    top = info["max_tokens_per_text"]
    by_length = _texts_of_every_length(tokenizer, top)
    assert set(range(3, top + 1)) - set(by_length) == set(), "a length the corpus cannot make"
    texts = list(by_length.values())
    rng = random.Random(0)
    rng.shuffle(texts)
    requests, i = [], 0
    while i < len(texts):
        n = rng.choice([1, 1, 2, 3, 5, 8])
        requests.append(texts[i:i + n])
        i += n

    def send(batch: list[str]) -> int:
        return _post(url + "/v1/embeddings", {"input": batch, "model": "x"}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, requests))
    assert codes == [200] * len(requests)
    metrics = httpx.get(url + "/metrics").text
    assert _samples(metrics, "shapedemo_compiled_under_traffic_total") == [0.0]
    ran = set()
    for line in metrics.splitlines():
        if line.startswith("shapedemo_calls_total{") and float(line.split()[-1]) > 0:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("{")[1].split("}")[0]))
            ran.add((labels["shape"], labels["packed"] == "true"))
    compiled = {(f"{s['shape'][0]}x{s['shape'][1]}" if s["shape"] else "dynamic", s["packed"]) for s in info["compiled_shapes"]}
    assert ran and ran <= compiled, ran - compiled
    return ran


def test_default_serve_compiles_nothing_under_traffic(cache_dir, tiny):
    """`serve` with its default shapes and strategy (auto, pow2:32, batch sizes 1,2,4,8, packed
    shapes declared): no shape is compiled under traffic. On synthetic:tiny (MiniLM's tokenizer and
    length limit, the same graph; its start-up, auto's cost table included, takes seconds where
    MiniLM's takes minutes). auto's measured prices decide whether these texts are packed: the
    packed calls run in the test below."""
    with running_server(cache_dir, "--model", "synthetic:tiny", "--max-wait-ms", "20", timeout=900) as (url, _):
        info = httpx.get(url + "/info").json()
        assert info["strategy"] == "auto" and info["plan_options"]["seq_buckets"] == [32, 64, 128, 256, 512]
        assert info["plan_options"]["batch_sizes"] == [1, 2, 4, 8] and info["max_tokens_per_text"] == 512
        compiled = {(tuple(s["shape"] or ()), s["packed"]) for s in info["compiled_shapes"]}
        full = {(b, s) for b in (1, 2, 4, 8) for s in (32, 64, 128, 256, 512)}
        assert ((), False) in compiled  # and the dynamic model: on a CPU auto prices dynamic calls too
        assert {shape for shape, packed in compiled if not packed} - {()} == full  # every plain shape
        assert {shape for shape, packed in compiled if packed} == full  # and every packed one
        _traffic_compiles_nothing(url, tiny.tokenizer)


def test_packing_serve_compiles_nothing_under_traffic(cache_dir, tiny):
    """The same traffic on `serve --strategy packing` (default shapes): every call is packed, on
    a shape compiled at start-up."""
    with running_server(cache_dir, "--model", "synthetic:tiny", "--strategy", "packing", "--max-wait-ms", "20", timeout=900) as (url, _):
        ran = _traffic_compiles_nothing(url, tiny.tokenizer)
        assert {packed for _, packed in ran} == {True}
