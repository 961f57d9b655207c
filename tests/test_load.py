"""The load benchmark, small (issue 12): a few ``gradio_client`` clients for a few seconds against
``python app.py``, mixing ``/plan`` and ``/compare`` with distinct texts and bucket lists. Zero
errors, zero cross-talk, no traceback in the server's log; timings are printed, never asserted
(``python benchmarks/load.py`` for the numbers)."""

from __future__ import annotations

import importlib
import random
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("gradio_client")
pytestmark = [pytest.mark.app, pytest.mark.model]
ROOT = Path(__file__).resolve().parents[1]


def _benchmark() -> Any:
    """``benchmarks/load.py`` (a folder of scripts, not a package: imported from this checkout)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("benchmarks.load")


load = _benchmark()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    with load.launch_app(cache=tmp_path_factory.mktemp("load-app-cache")) as launched:
        yield launched


def test_a_few_clients_for_a_few_seconds_no_errors_no_cross_talk(app):
    result = load.run_load(app, clients=3, seconds=8, compare_every=3, max_requests=60, seed=1)
    print("\n".join(result.lines()))
    assert result.errors == []
    assert result.cross_talk == []
    # both endpoints were exercised, so the checks above checked something
    assert result.latencies.get("/plan") and result.latencies.get("/compare")
    assert result.tracebacks == 0, app.log()[-3000:]


@pytest.mark.parametrize("endpoint", ["/plan", "/compare"])
def test_the_cross_talk_check_catches_an_answer_to_another_request(app, endpoint):
    """Two requests with their own texts and buckets: each answer passes its own check and
    fails the other's (lengths and bucket edges differ), so a mixed-up answer is caught."""
    tok = load.tokenizer()
    rng = random.Random(7)
    first = load.make_request(endpoint, (20, 60), rng, tok)
    second = load.make_request(endpoint, (30, 90), rng, tok)
    client = load.connect(app.url)
    try:
        answers = [load.send(client, r) for r in (first, second)]
    finally:
        client.close()
    assert load.cross_talk(first, answers[0]) == [] and load.cross_talk(second, answers[1]) == []
    assert load.cross_talk(first, answers[1]) and load.cross_talk(second, answers[0])


def test_the_budget_check_on_the_apps_defaults_allows_1_5_gib_and_reports_the_slope():
    """Issue 18: `--budget-check N` without --compiled-mb / --blob-mb leaves the app's defaults
    (the page's PAGE_COMPILED_MB) and allows 1.5 GiB of growth; with budgets set, budget + 300."""
    from shapedemo.settings import PAGE_COMPILED_MB

    assert load.page_compiled_mb() == PAGE_COMPILED_MB or "SHAPEDEMO_COMPILED_MB" in __import__("os").environ
    rss = [600.0, 700, 800, 900, 1000, 1010, 1020, 1030]
    on_defaults = load.BudgetResult(PAGE_COMPILED_MB, 4096, defaults=True, rss=rss, blobs=[1.0])
    assert on_defaults.allowed == 1536 and on_defaults.growth == 430
    assert on_defaults.slope == pytest.approx(10.0)
    assert "no setting changed" in on_defaults.lines()[0] and "slope over the second half +10.0" in on_defaults.lines()[1]
    assert load.BudgetResult(300, 400, rss=rss, blobs=[1.0]).allowed == 600
