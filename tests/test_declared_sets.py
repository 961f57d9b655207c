"""``benchmarks/declared_sets.py`` runs ``auto`` with each declared set on the same texts, end to
end, and compares them within one run; a malformed set is a one-line error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "declared_sets.py"


def _run(*args: str, cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"SHAPEDEMO_CACHE": str(cache)} if cache else {})}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.model
def test_every_set_runs_the_same_texts_and_the_first_is_the_reference(tmp_path):
    out = _run(
        "--model", "synthetic:tiny", "--texts", str(ROOT / "assets" / "texts.txt"), "--precision", "f32",
        "--sets", "16,32/1,2;16,32,64/1,2,4", "--batch", "4", "--num-texts", "12", "--rounds", "2",
        cache=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rows = {m[1].strip(): m for m in re.finditer(
        r"^#\d (\S+ / \S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)\.\.([\d.]+)", out.stdout, re.M)}
    assert set(rows) == {"16,32 / 1,2", "16,32,64 / 1,2,4"}, out.stdout
    # the compiled shapes: buckets x batch sizes on the plain and the packed graph
    assert rows["16,32 / 1,2"][2] == "8" and rows["16,32,64 / 1,2,4"][2] == "18"
    assert rows["16,32 / 1,2"][7] == "1.000" and rows["16,32 / 1,2"][8] == "1.000"
    assert float(rows["16,32,64 / 1,2,4"][7]) > 0
    # the best static plans on its own table's prices, a fraction of its best rate (auto's own
    # plans may beat it with a dynamic call, which the bound leaves out; tests/test_floor_bound.py
    # checks the bound itself)
    for m in rows.values():
        assert 0 < float(m[4]) and 0 < float(m[5]) <= 1.0, m[0]
    # every text fits the smaller set's largest bucket: both sets ran the same texts
    low, high = map(int, re.search(r"\((\d+)\.\.(\d+) tokens", out.stdout).groups())
    assert 1 <= low <= high <= 32
    assert out.stdout.count("round ") == 2
    # each set's table was timed and kept beside the blob cache
    assert len(list((tmp_path / "costs").glob("*.json"))) == 2


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ("32,64/1,2", "give at least two sets"),
        ("32,x/1;64/1", "a set is buckets/batch sizes"),
        ("32,64;64/1", "a set is buckets/batch sizes"),
        ("0,32/1;64/1", "a set is buckets/batch sizes"),
        ("32,64/1,2;64,32/2,1", "the same set twice"),
    ],
)
def test_a_malformed_set_is_one_line_and_exit_2(sets, message):
    out = _run("--sets", sets)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and message in out.stderr and "Traceback" not in out.stderr
