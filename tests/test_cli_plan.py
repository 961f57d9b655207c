"""The CLI's ``plan`` and ``tune-buckets`` contract: JSON out, exit 2 with one line for bad input,
and no model (nor OpenVINO) loaded on the way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shapedemo.planning.edges import padding_fraction_for, powers_of_two, tuned
from shapedemo.cli import main
from shapedemo.shapes import default_max_seq
from shapedemo.planning.strategies import STRATEGY_NAMES, make_plan
from shapedemo.planning.workloads import WORKLOADS

ROOT = Path(__file__).resolve().parents[1]
PLAN_KEYS = {
    "strategy",
    "calls",
    "real_tokens",
    "computed_tokens",
    "padding_fraction",
    "num_calls",
    "compiled_shapes",
}


def shapedemo(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shapedemo", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shapedemo: error: "), result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_plan_json_is_plan_to_dict(name: str) -> None:
    result = shapedemo("plan", "--strategy", name, "--lengths", "12,40,7,30,9", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert PLAN_KEYS <= set(got)
    # planned at the one default max length `compare` and the page use too (128 here)
    expected = make_plan(name, [12, 40, 7, 30, 9], max_seq=default_max_seq([12, 40, 7, 30, 9]))
    assert got == json.loads(json.dumps(expected.to_dict()))
    for call in got["calls"]:
        assert set(call) == {"batch", "seq", "rows"} and len(call["rows"]) == call["batch"]
        for row in call["rows"]:
            for seg in row:
                assert set(seg) == {"seq", "offset", "length"}


def test_plan_json_with_every_option() -> None:
    result = shapedemo(
        "plan",
        "--strategy",
        "buckets-partition",
        "--lengths",
        "12, 40 7",
        "--seq-buckets",
        "64,16,32",
        "--batch-sizes",
        "4,1,2",
        "--max-seq",
        "128",
        "--pack-seq",
        "64",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["params"]["seq_buckets"] == [16, 32, 64]
    assert got["params"]["batch_sizes"] == [1, 2, 4]
    assert [[c["batch"], c["seq"]] for c in got["calls"]] == [[2, 16], [1, 64]]
    assert got["compiled_shapes"] == [[1, 64], [2, 16]]


def test_plan_with_a_bucket_preset() -> None:
    args = ["plan", "--strategy", "buckets", "--lengths", "5,6,7,30,31,100", "--max-seq", "128"]
    result = shapedemo(*args, "--seq-buckets", "tuned:2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["seq_buckets"] == [31, 128]
    assert_one_line_error(shapedemo(*args, "--seq-buckets", "tuned:0"), "--seq-buckets")


def test_plan_from_a_workload() -> None:
    args = ["plan", "--strategy", "padding", "--workload", "squad-like", "--batch", "16"]
    result = shapedemo(*args, "--seed", "3", "--max-seq", "384", "--json")
    assert result.returncode == 0, result.stderr
    lengths = WORKLOADS["squad-like"].sample(16, 3, max_len=384)
    got = json.loads(result.stdout)
    assert got == json.loads(json.dumps(make_plan("padding", lengths, max_seq=384).to_dict()))


def test_plan_text_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--strategy", "padding", "--lengths", "12,40,7", "--batch-sizes", "4"])
    assert code == 0
    out = capsys.readouterr().out
    # the default max length is the smallest of 128/256/384/512 that fits, as in `compare`
    assert "call 1: 4 x 128  rows: [0] [1] [2] [pad]" in out
    assert "padding 88.5%" in out and "calls: 1, compiled shapes: 4 x 128" in out


def test_plan_text_shows_packed_rows_and_dynamic_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--strategy", "packing", "--lengths", "30,20,10", "--max-seq", "64"]) == 0
    assert "call 1: 1 x 64  rows: [0+1+2]" in capsys.readouterr().out
    assert main(["plan", "--strategy", "dynamic", "--lengths", "30,20"]) == 0
    assert "none (dynamic); call shapes 2 x 30" in capsys.readouterr().out


def test_plan_path_does_not_import_openvino_or_gradio() -> None:
    code = (
        "import sys\n"
        "from shapedemo.cli import main\n"
        "assert main(['plan', '--strategy', 'packing', '--lengths', '3,4', '--json']) == 0\n"
        "assert main(['tune-buckets', '--lengths', '3,4,9', '--k', '2']) == 0\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('openvino', 'gradio'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_tune_buckets_json(tmp_path: Path) -> None:
    lengths = WORKLOADS["sst2-like"].sample(300, 1) + [200, 300]
    path = tmp_path / "lengths.txt"
    path.write_text("\n".join(f"{n}," if i % 3 else f"{n} " for i, n in enumerate(lengths)) + "\n")
    result = shapedemo("tune-buckets", "--lengths-file", str(path), "--k", "4", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    edges = tuned(lengths, 4)
    assert got["buckets"] == list(edges) and len(edges) == 4 and edges[-1] == 300
    assert got["k"] == 4 and got["num_lengths"] == len(lengths)
    assert got["padding_fraction"] == pytest.approx(padding_fraction_for(lengths, edges))
    assert got["powers_of_two"] == list(powers_of_two(300))
    assert got["powers_of_two_padding_fraction"] == pytest.approx(
        padding_fraction_for(lengths, powers_of_two(300))
    )


def test_tune_buckets_with_max_seq_and_stdin() -> None:
    result = shapedemo(
        "tune-buckets",
        "--lengths-file",
        "-",
        "--k",
        "2",
        "--max-seq",
        "128",
        stdin="5 6 7 30 31 100",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "buckets (k=2): 31,128"
    assert "padding: " in result.stdout and "powers of two" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["plan", "--strategy", "bucket", "--lengths", "12"], ["dynamic", "packing"]),
        (["plan", "--strategy", "padding", "--lengths", "12,x"], ["'x'"]),
        (["plan", "--strategy", "padding", "--lengths", ""], ["empty"]),
        (["plan", "--strategy", "padding", "--lengths", "12,0"], ["sequence 1"]),
        (["plan", "--strategy", "padding", "--lengths", "600"], ["--max-seq 512"]),
        (["plan", "--strategy", "padding", "--lengths", "12", "--batch-sizes", "0"], ["below 1"]),
        (["plan", "--strategy", "padding", "--lengths", "12", "--batch-sizes", "4,a"], ["'a'"]),
        (["plan", "--strategy", "buckets", "--lengths", "99", "--seq-buckets", "32,64"], ["64"]),
        (
            ["plan", "--strategy", "buckets", "--lengths", "9", "--seq-buckets", ","],
            ["--seq-buckets"],
        ),
        (["plan", "--strategy", "padding", "--lengths", "9", "--max-seq", "0"], ["--max-seq"]),
        (["plan", "--strategy", "packing", "--lengths", "90", "--pack-seq", "64"], ["pack_seq"]),
        (["plan", "--strategy", "padding", "--workload", "imdb"], ["sst2-like"]),
        (["plan", "--strategy", "padding", "--workload", "uniform", "--batch", "0"], ["batch"]),
        (["tune-buckets", "--lengths", "5,9", "--k", "0"], ["k must be"]),
        (["tune-buckets", "--lengths", "5,900", "--k", "2", "--max-seq", "512"], ["900"]),
        (["tune-buckets", "--lengths-file", "/nonexistent/lengths.txt", "--k", "2"], ["cannot"]),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], words: list[str]) -> None:
    assert_one_line_error(shapedemo(*args), *words)


@pytest.mark.parametrize(("content", "words"), [("", "empty"), ("12, 7\nabc\n", "'abc'")])
def test_bad_lengths_file_exits_2(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "lengths.txt"
    path.write_text(content)
    assert_one_line_error(shapedemo("tune-buckets", "--lengths-file", str(path), "--k", "2"), words)


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["plan", "--lengths", "12"],
        ["plan", "--strategy", "padding"],
        ["plan", "--strategy", "padding", "--lengths", "1", "--workload", "uniform"],
        ["plan", "--strategy", "padding", "--lengths", "1", "--max-seq", "x"],
        ["tune-buckets", "--lengths", "5"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    result = shapedemo(*args)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error:" in result.stderr


def test_help_returns_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "plan" in capsys.readouterr().out
    assert main(["plan", "--help"]) == 0
    assert "packing" in capsys.readouterr().out


def test_a_typed_bucket_list_raises_the_default_max_length_to_its_top() -> None:
    """A configuration from `tune` (buckets up to 384 for long traffic) runs on short inputs too:
    the default max length covers the largest typed bucket instead of refusing it."""
    result = shapedemo("plan", "--strategy", "buckets", "--lengths", "12,40", "--seq-buckets", "32,384", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["params"]["max_seq"] == 384 and got["params"]["seq_buckets"] == [32, 384]
