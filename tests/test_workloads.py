"""Built-in workloads: deterministic, within bounds, and shaped like the datasets they name."""

from __future__ import annotations

import statistics

import pytest

from shapedemo.planning.plan import PlanError
from shapedemo.planning.workloads import WORKLOADS, sample_lengths

BIG = 20_000


def test_names_and_descriptions() -> None:
    assert list(WORKLOADS) == ["sst2-like", "squad-like", "wiki-like", "uniform"]
    for name, workload in WORKLOADS.items():
        assert workload.name == name
        assert workload.description and "\n" not in workload.description
        assert workload.draw.__doc__, f"{name}: the distribution is documented"


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_deterministic_per_batch_and_seed(name: str) -> None:
    workload = WORKLOADS[name]
    assert workload.sample(64, 3) == workload.sample(64, 3)
    assert workload.sample(64, 3) != workload.sample(64, 4)
    assert workload.sample(100, 3)[:64] == workload.sample(64, 3), "a bigger batch extends"
    assert sample_lengths(name, 64, seed=3) == workload.sample(64, 3)


@pytest.mark.parametrize("name", list(WORKLOADS))
@pytest.mark.parametrize("max_len", [1, 7, 64, 512])
def test_lengths_are_whole_numbers_within_max_len(name: str, max_len: int) -> None:
    lengths = WORKLOADS[name].sample(500, 0, max_len)
    assert len(lengths) == 500
    assert all(type(n) is int and 1 <= n <= max_len for n in lengths)


def test_sst2_like_is_short() -> None:
    lengths = WORKLOADS["sst2-like"].sample(BIG, 0)
    assert 10 <= statistics.median(lengths) <= 12
    assert min(lengths) >= 4 and max(lengths) <= 66
    assert max(lengths) > 40, "a tail, not a constant"


def test_squad_like_is_medium_and_capped_at_384() -> None:
    lengths = WORKLOADS["squad-like"].sample(BIG, 0)
    assert 150 <= statistics.median(lengths) <= 170
    assert max(lengths) == 384 and min(lengths) >= 40


def test_wiki_like_is_long_tailed_and_half_padding_at_512() -> None:
    lengths = WORKLOADS["wiki-like"].sample(BIG, 0)
    padding = 1 - statistics.mean(lengths) / 512
    assert 0.45 <= padding <= 0.55
    assert statistics.mean(lengths) > statistics.median(lengths), "skewed to the right"
    assert max(lengths) == 512 and 0.05 < lengths.count(512) / BIG < 0.25


def test_uniform_covers_8_to_max_len() -> None:
    lengths = WORKLOADS["uniform"].sample(BIG, 0)
    assert min(lengths) == 8 and max(lengths) == 512
    assert abs(statistics.median(lengths) - 260) < 15
    assert min(WORKLOADS["uniform"].sample(1000, 0, max_len=16)) == 8


def test_errors() -> None:
    with pytest.raises(PlanError, match="sst2-like"):
        sample_lengths("sst", 4)
    with pytest.raises(PlanError, match="batch"):
        WORKLOADS["uniform"].sample(0, 0)
    with pytest.raises(PlanError, match="max_len"):
        WORKLOADS["uniform"].sample(4, 0, max_len=0)
