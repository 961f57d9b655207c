"""`serve` under abuse, replayed from outside against a started subprocess (issue 18): bad input is
a 4xx and one log line (never a traceback), the event loop stays free while a 4 MB text is refused,
clients that leave are counted apart and their queued work is dropped, TEI's `/` and `/tokenize`
answer `huggingface_hub`'s client, token ids are accepted, two servers share one empty cache.

Nothing here asserts a duration: "answers while" is checked by order of events.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from test_serve import BAD_OPENAI, BAD_TEI, TINY, _post, _samples, running_server

httpx = pytest.importorskip("httpx")

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def server(cache_dir):
    with running_server(cache_dir, *TINY, "--max-texts", "8") as (url, proc):
        yield url, proc


def _log(proc) -> str:
    return Path(proc.log).read_text()


def test_every_bad_request_is_one_log_line_and_no_traceback(server):
    url, proc = server
    for route, cases in (("/v1/embeddings", BAD_OPENAI), ("/", BAD_TEI), ("/embed", BAD_TEI)):
        for name, body, status in cases:
            response = _post(url + route, body)
            assert response.status_code == status, (route, name, response.text[:300])
            message = response.json()["error"]
            message = message["message"] if route.startswith("/v1") else message
            assert f"serve: {status} {route}: {message}" in _log(proc), (route, name)
        assert httpx.get(url + "/health").status_code == 200
    assert "Traceback" not in _log(proc)
    families = httpx.get(url + "/metrics").text
    assert not [line for line in families.splitlines() if 'code="5' in line and not line.startswith("#")]


def test_token_ids_are_embedded_like_their_text(server):
    url, _ = server
    tokens = httpx.post(url + "/tokenize", json={"inputs": ["hello world", "river"]}).json()
    assert [t["text"] for t in tokens[0]] == ["[CLS]", "hello", "world", "[SEP]"]
    assert tokens[0][1] == {"id": tokens[0][1]["id"], "text": "hello", "special": False, "start": 0, "stop": 5}
    ids = [[t["id"] for t in row] for row in tokens]
    by_ids = httpx.post(url + "/v1/embeddings", json={"input": ids}).json()
    by_text = httpx.post(url + "/v1/embeddings", json={"input": ["hello world", "river"]}).json()
    assert by_ids["usage"] == by_text["usage"]
    for a, b in zip(by_ids["data"], by_text["data"]):
        assert np.allclose(a["embedding"], b["embedding"], atol=1e-5)
    one = httpx.post(url + "/v1/embeddings", json={"input": ids[0]}).json()
    assert len(one["data"]) == 1 and np.allclose(one["data"][0]["embedding"], by_text["data"][0]["embedding"], atol=1e-5)


def test_huggingface_hub_inference_client_gets_the_vectors_of_embed(server):
    hub = pytest.importorskip("huggingface_hub")
    url, _ = server
    client = hub.InferenceClient(base_url=url)
    vectors = client.feature_extraction("The river runs past the garden.")
    expected = httpx.post(url + "/embed", json={"inputs": "The river runs past the garden."}).json()
    assert vectors.shape == (1, 128) and np.allclose(vectors, expected, atol=1e-6)
    assert np.allclose(client.feature_extraction("The river runs past the garden.", truncate=True), expected, atol=1e-6)


def test_a_4mb_text_is_refused_while_health_and_metrics_answer(server):
    url, proc = server
    huge = json.dumps({"input": ("hello world river " * 250_000)[:4_000_000]}).encode()
    events: list[str] = []
    outcome: dict[str, httpx.Response] = {}

    def send() -> None:
        outcome["r"] = httpx.post(url + "/v1/embeddings", content=huge, headers={"content-type": "application/json"}, timeout=120)
        events.append("refused")

    worker = threading.Thread(target=send)
    worker.start()
    with httpx.Client() as client:
        while worker.is_alive():
            assert client.get(url + "/health").status_code == 200
            assert client.get(url + "/metrics").status_code == 200
            events.append("health")
    worker.join()
    assert outcome["r"].status_code == 413 and "this server takes at most 64" in outcome["r"].json()["error"]["message"]
    assert "health" in events[: events.index("refused")]  # answered while the body was being handled
    truncated = httpx.post(url + "/embed", content=huge.replace(b'"input"', b'"inputs"')[:-1] + b', "truncate": true}', timeout=120)
    assert truncated.status_code == 200 and len(truncated.json()) == 1
    assert "Traceback" not in _log(proc)


def test_clients_that_leave_are_counted_apart_and_never_a_500(server):
    url, proc = server
    socks = []
    for _ in range(30):  # send half a body, wait (the server is reading it), hang up
        sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
        sock.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"input\": \"abc")
        socks.append(sock)
    assert httpx.get(url + "/health").status_code == 200  # the server reads them all by now
    time.sleep(1)
    for sock in socks:
        sock.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = httpx.get(url + "/metrics").text
        gone = _samples(text, 'shapedemo_client_disconnects_total{route="/v1/embeddings",stage="reading"}')
        if gone and gone[0] >= 30:
            break
        time.sleep(0.2)
    assert gone == [30.0]
    assert not [line for line in text.splitlines() if 'code="5' in line and not line.startswith("#")]
    assert "Traceback" not in _log(proc) and "ClientDisconnect" not in _log(proc)
    assert _post(url + "/embed", {"inputs": "still here"}).status_code == 200


def test_queued_work_of_a_client_that_left_is_dropped_before_it_is_computed(cache_dir):
    with running_server(cache_dir, *TINY, "--max-wait-ms", "3000") as (url, proc):
        before = _samples(httpx.get(url + "/metrics").text, "shapedemo_batch_size_texts_count")
        with pytest.raises(httpx.TimeoutException):  # waits up to 3 s for company; we leave at 0.5 s
            httpx.post(url + "/embed", json={"inputs": "nobody waits for me"}, timeout=0.5)
        time.sleep(3.5)
        text = httpx.get(url + "/metrics").text
        assert _samples(text, "shapedemo_dropped_requests_total") == [1.0]
        assert _samples(text, 'shapedemo_client_disconnects_total{route="/embed",stage="waiting"}') == [1.0]
        assert _samples(text, "shapedemo_batch_size_texts_count") == before  # no batch ran it
        assert "Traceback" not in _log(proc)


def test_two_servers_started_together_on_one_empty_cache_both_get_healthy(tmp_path):
    cache = tmp_path / "shared-cache"
    cache.mkdir()  # empty: both build the model, compile and write blobs at once
    args = ["--model", "synthetic:tiny", "--precision", "f32", "--strategy", "buckets-partition",
            "--seq-buckets", "16,32,64", "--batch-sizes", "1,2,4"]
    results: dict[int, str] = {}

    def start(i: int) -> None:
        with running_server(cache, *args) as (url, proc):
            results[i] = httpx.post(url + "/embed", json={"inputs": "shared"}).text
            assert "Traceback" not in _log(proc)

    with ThreadPoolExecutor(2) as pool:  # both start at once; a failure in either is raised here
        list(pool.map(start, range(2)))
    assert sorted(results) == [0, 1] and np.allclose(json.loads(results[0]), json.loads(results[1]), atol=1e-5)
