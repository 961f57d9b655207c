"""Built-in length workloads: seeded draws shaped like real datasets, nothing to download.

The strategies only see lengths, so a workload is a distribution of token counts ([CLS] and
[SEP] included). ``sample(batch, seed)`` is deterministic per (workload, batch, seed), and a
larger batch with the same seed starts with the smaller one, so growing a batch adds sequences.

>>> WORKLOADS["sst2-like"].sample(6, seed=0)
[10, 11, 16, 10, 22, 5]
>>> sample_lengths("uniform", 4, seed=1, max_len=64)
[16, 44, 62, 59]
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

from shapedemo.planning.edges import check_positive
from shapedemo.planning.plan import MAX_POSITIONS, PlanError

__all__ = ["WORKLOADS", "Workload", "sample_lengths"]

Draw = Callable[[random.Random, int], int]
"""One length from ``rng``, at most ``max_len`` (the second argument), at least 1."""


def _lognormal(
    rng: random.Random, *, median: float, sigma: float, low: int, high: int, max_len: int
) -> int:
    """A rounded log-normal draw clipped to ``low..min(high, max_len)``."""
    top = min(high, max_len)
    return max(min(low, top), min(top, round(rng.lognormvariate(math.log(median), sigma))))


def _sst2(rng: random.Random, max_len: int) -> int:
    """SST-2-like single sentences (movie reviews): log-normal, median 11 tokens, sigma 0.5,
    clipped to 4..66 (SST-2's range under the BERT tokenizer). Almost everything is short, so
    padding to 512 wastes ~98% of the compute."""
    return _lognormal(rng, median=11, sigma=0.5, low=4, high=66, max_len=max_len)


def _squad(rng: random.Random, max_len: int) -> int:
    """SQuAD-like question + context pairs: log-normal, median 160 tokens, sigma 0.35, clipped
    to 40..384 (384 is the usual SQuAD max_seq_length; longer contexts are windowed)."""
    return _lognormal(rng, median=160, sigma=0.35, low=40, high=384, max_len=max_len)


def _wiki(rng: random.Random, max_len: int) -> int:
    """Wikipedia-like passages: log-normal, median 225 tokens, sigma 0.75, clipped to 16..512.
    Long-tailed: about one in seven hits the 512 cap, and the mean is ~256, so padding to 512
    wastes about half the compute."""
    return _lognormal(rng, median=225, sigma=0.75, low=16, high=512, max_len=max_len)


def _uniform(rng: random.Random, max_len: int) -> int:
    """Uniform over 8..max_len: no typical length, the worst case for a single bucket."""
    return rng.randint(min(8, max_len), max_len)


@dataclass(frozen=True)
class Workload:
    """A named length distribution; ``description`` is the one line the UI shows."""

    name: str
    description: str
    draw: Draw

    def sample(self, batch: int, seed: int = 0, max_len: int = MAX_POSITIONS) -> list[int]:
        """``batch`` lengths in 1..``max_len``, the same for the same ``(batch, seed)``.

        >>> squad = WORKLOADS["squad-like"]
        >>> squad.sample(3, seed=7), squad.sample(3, seed=7, max_len=150)  # clipped, same draws
        ([141, 176, 166], [141, 150, 150])
        """
        check_positive(batch, what="batch")
        check_positive(max_len, what="max_len")
        rng = random.Random(seed)
        return [self.draw(rng, max_len) for _ in range(batch)]


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("sst2-like", "Short single sentences, median ~11 tokens (4 to 66).", _sst2),
        Workload(
            "squad-like", "Question + context pairs, median ~160 tokens, capped at 384.", _squad
        ),
        Workload(
            "wiki-like", "Long-tailed passages up to 512 tokens, mean ~256 (half padding).", _wiki
        ),
        Workload("uniform", "Any length from 8 to max_len, equally likely.", _uniform),
    )
}


def sample_lengths(
    name: str, batch: int, *, seed: int = 0, max_len: int = MAX_POSITIONS
) -> list[int]:
    """``WORKLOADS[name].sample(...)``, with a ``PlanError`` listing the names for a bad one."""
    workload = WORKLOADS.get(name)
    if workload is None:
        raise PlanError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    return workload.sample(batch, seed, max_len)
