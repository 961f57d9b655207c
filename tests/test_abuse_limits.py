"""Bounded work, hosted mode, full disks and cancel, replayed from outside (issue 18): the CLI as a
subprocess, the page through `gradio_client` against a launched app, `serve` on a full tmpfs.

Nothing here asserts a duration except that a cancelled job goes quiet (CPU time, generous)."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from test_app import page_inputs, plan_inputs, serve_app

ROOT = Path(__file__).resolve().parents[1]
BUCKETS_32 = ",".join(str(8 * i) for i in range(1, 33))  # 8..256
SIZES_64 = ",".join(str(i) for i in range(1, 65))


def shapedemo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "shapedemo", *args], cwd=ROOT, env=full,
                          capture_output=True, text=True, timeout=600)


# ---- caps on the work of one run ------------------------------------------------------------


@pytest.mark.parametrize("command", [
    ["plan", "--strategy", "buckets", "--lengths", "12,40,200"],
    ["compare", "--model", "synthetic:tiny", "--lengths", "12,40,200", "--cost-table", "measure"],
])
def test_a_run_over_the_shape_cap_is_refused_in_one_line_before_anything_runs(command, cache_dir):
    out = shapedemo(*command, "--seq-buckets", BUCKETS_32, "--batch-sizes", SIZES_64, "--max-seq", "256",
                    env={"SHAPEDEMO_CACHE": str(cache_dir)})
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shapedemo: error: this run would compile up to"), out.stderr
    assert "32 lengths x 64 batch sizes" in lines[0] and "--max-shapes N raises it" in lines[0]
    raised = shapedemo("plan", "--strategy", "buckets", "--lengths", "12,40,200", "--seq-buckets", BUCKETS_32,
                       "--batch-sizes", SIZES_64, "--max-seq", "256", "--max-shapes", "5000")
    assert raised.returncode == 0, raised.stderr


@pytest.fixture(scope="module")
def page(cache_dir):
    from gradio_client import Client

    saved = {k: os.environ.get(k) for k in ("SHAPEDEMO_CACHE", "SHAPEDEMO_MAX_SHAPES", "GRADIO_SERVER_NAME")}
    os.environ["SHAPEDEMO_CACHE"] = str(cache_dir)
    os.environ.pop("SHAPEDEMO_MAX_SHAPES", None)
    try:
        with serve_app() as url:
            client = Client(url, verbose=False)
            yield client
            client.close()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_the_page_refuses_a_click_over_the_cap_and_previews_the_largest_it_accepts(page):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=r"would compile up to 4096 shapes .*this page runs at most 64 per run \(set SHAPEDEMO_MAX_SHAPES"):
        page.predict(*page_inputs(buckets_text=BUCKETS_32, batch_sizes_text=SIZES_64, max_len="256",
                                  objective="measured latency").values(), api_name="/compare")
    # the largest input the caps accept: 64 texts, 4 buckets x 8 batch sizes, plain and packed = 64 shapes
    texts = "\n".join(f"text {i}: " + "word " * (3 + 7 * i % 200) for i in range(64))
    largest = dict(text=texts, buckets_text="32,64,128,256", batch_sizes_text="1,2,3,4,5,6,7,8", max_len="256")
    assert "`packing`" in page.predict(*plan_inputs(**largest), api_name="/plan")[3]
    os.environ["SHAPEDEMO_MAX_SHAPES"] = "5000"  # read per click: raised, the refused click is accepted
    try:
        over = dict(largest, buckets_text=BUCKETS_32, batch_sizes_text=SIZES_64)
        assert "`buckets`" in page.predict(*plan_inputs(**over), api_name="/plan")[3]
    finally:
        os.environ.pop("SHAPEDEMO_MAX_SHAPES")


def test_a_cancelled_comparison_stops_before_its_next_compile(page, caplog):
    """2,048 cost-table cells with the cap raised: cancelled after a few, the process goes quiet."""
    os.environ["SHAPEDEMO_MAX_SHAPES"] = "5000"
    try:
        job = page.submit(*page_inputs(spec="synthetic:tiny", strategies=["buckets"], buckets_text=BUCKETS_32,
                                       batch_sizes_text=SIZES_64, max_len="256", objective="measured latency").values(),
                          api_name="/compare")
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # until the cost table is being measured
            status = job.status()
            if status.progress_data and any("measuring" in (p.desc or "") for p in status.progress_data):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"the job never reached the cost table: {job.status()}")
        with caplog.at_level(logging.WARNING, logger="shapedemo.app.common"):
            job.cancel()
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and "cancelled: stopped before its next compile" not in caplog.text:
                time.sleep(0.2)
        assert "the comparison cancelled: stopped before its next compile or timed call" in caplog.text
        start_cpu = time.process_time()
        time.sleep(3)
        assert time.process_time() - start_cpu < 1.0  # nothing compiles or times on: the process is idle
    finally:
        os.environ.pop("SHAPEDEMO_MAX_SHAPES")
    assert "`dynamic`" in page.predict(*plan_inputs(), api_name="/plan")[3]  # the page answers after


# ---- hosted mode ----------------------------------------------------------------------------


def test_bound_beyond_loopback_the_page_is_hosted_and_refusals_never_tell_what_exists(page, tmp_path):
    from gradio_client.exceptions import AppError

    os.environ["GRADIO_SERVER_NAME"] = "0.0.0.0"  # what the page was told to bind to (this test binds loopback)
    try:
        messages = []
        for spec in (str(tmp_path), str(tmp_path / "missing"), "/etc", "someone/some-model"):
            with pytest.raises(AppError) as err:
                page.predict(*page_inputs(spec=spec).values(), api_name="/compare")
            messages.append(str(err.value))
        assert len(set(messages)) == 1 and "this server runs only minilm" in messages[0]
        os.environ["SHAPEDEMO_ALLOW_CUSTOM_MODELS"] = "1"
        with pytest.raises(AppError, match="missing"):  # allowed again: the local error says what it is
            page.predict(*page_inputs(spec=str(tmp_path / "missing")).values(), api_name="/compare")
    finally:
        os.environ.pop("GRADIO_SERVER_NAME", None)
        os.environ.pop("SHAPEDEMO_ALLOW_CUSTOM_MODELS", None)


# ---- a full disk ----------------------------------------------------------------------------


@pytest.fixture
def full_disk():
    """A 12 MB tmpfs (a built tiny model needs 34 MB), or, where mounting is not allowed, a
    read-only folder; yields (path, kind)."""
    where = Path(tempfile.mkdtemp(prefix="shapedemo-full-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(where)], capture_output=True).returncode == 0
    if not mounted:
        where.chmod(0o555)
    try:
        yield where, "tmpfs" if mounted else "read-only"
    finally:
        if mounted:
            subprocess.run(["umount", str(where)], check=False)
        where.chmod(0o755)
        shutil.rmtree(where, ignore_errors=True)


def test_a_full_cache_disk_is_a_warning_and_serve_and_embed_run_on(full_disk, tmp_path):
    from test_serve import TINY, running_server

    httpx = pytest.importorskip("httpx")
    where, kind = full_disk
    cache = where / "cache"
    texts = tmp_path / "texts.txt"
    texts.write_text("hello world\n")
    out = shapedemo("embed", "--model", "synthetic:tiny", "--texts-file", str(texts), "--json", env={"SHAPEDEMO_CACHE": str(cache)})
    assert out.returncode == 0, out.stderr
    assert out.stderr and all(line.startswith("shapedemo: warning: ") for line in out.stderr.strip().splitlines()), (kind, out.stderr)
    assert "Traceback" not in out.stderr
    # serve on the same full (or read-only) cache: healthy, one-line warnings, answers
    with running_server(cache, *TINY, log_dir=tmp_path) as (url, proc):
        assert httpx.post(url + "/embed", json={"inputs": "still serving"}).status_code == 200
        text = Path(proc.log).read_text()
    assert "shapedemo: warning:" in text and "Traceback" not in text
