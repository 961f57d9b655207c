"""The workshop notebook, ``notebooks/tour.ipynb``: stored without outputs, and every cell runs.

Executed with ``nbclient`` on a fresh kernel in the repository root (so it imports this checkout's
``shapedemo``), with the session's model cache; skipped where nbclient or ipykernel is missing,
unless ``SHAPEDEMO_NOTEBOOK_REQUIRED=1`` (CI).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shapedemo.measure import lessons as tour

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "tour.ipynb"


def read_notebook():
    nbformat = pytest.importorskip("nbformat")
    return nbformat.read(NOTEBOOK, as_version=4)


def test_notebook_is_stored_without_outputs():
    nb = read_notebook()
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.cells[0].cell_type == "markdown"


def test_notebook_follows_the_tour():
    nb = read_notebook()
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert [k for k in (s.key for s in tour._STEPS) if f'run("{k}"' in source] == [s.key for s in tour._STEPS]


@pytest.mark.model
def test_notebook_runs_from_top_to_bottom(cache_dir, monkeypatch):
    try:
        import ipykernel  # noqa: F401
        from nbclient import NotebookClient
    except ImportError as exc:
        if os.environ.get("SHAPEDEMO_NOTEBOOK_REQUIRED") == "1":
            pytest.fail(f"{exc}, and SHAPEDEMO_NOTEBOOK_REQUIRED=1", pytrace=False)
        pytest.skip(f"{exc.name} is not installed (pip install -e '.[test]')")
    monkeypatch.setenv("SHAPEDEMO_CACHE", str(cache_dir))
    nb = read_notebook()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(
        str(o.get("text", "")) + str((o.get("data") or {}).get("text/markdown", "")) for o in outputs
    )
    assert text.count("**Lesson.**") == len(tour.STEPS) + 1  # every step, partition twice
    assert "native dynamic" in text and "import openvino as ov" in text
    assert "plan: partition  (batch_sizes=2,4" in text
    figures = [o for o in outputs if "application/vnd.plotly.v1+json" in (o.get("data") or {})]
    assert len(figures) == len(tour.STEPS)
