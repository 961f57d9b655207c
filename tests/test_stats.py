"""The robust statistics behind every interval, noise figure, tie rule and cost-table fit."""

import numpy as np
import pytest

from shapedemo.measure import stats


def test_interval_holds_the_point_and_is_deterministic():
    rng = np.random.default_rng(1)
    a = list(10 + rng.normal(0, 0.5, 12))
    b = list(20 + rng.normal(0, 1.0, 12))
    lo, hi = stats.ratio_interval(a, b)
    assert lo <= stats.median_ratio(a, b) <= hi
    assert (lo, hi) == stats.ratio_interval(a, b)  # seeded: the same timings, the same interval
    assert 0.4 < lo and hi < 0.6


def test_interval_widens_with_noise():
    rng = np.random.default_rng(2)
    calm = [list(10 + rng.normal(0, 0.1, 10)), list(10 + rng.normal(0, 0.1, 10))]
    loud = [list(10 + rng.normal(0, 2.0, 10)), list(10 + rng.normal(0, 2.0, 10))]
    w_calm = stats.half_width(stats.ratio_interval(*calm), stats.median_ratio(*calm))
    w_loud = stats.half_width(stats.ratio_interval(*loud), stats.median_ratio(*loud))
    assert w_calm < 0.03 < w_loud


def test_paired_rounds_cancel_shared_drift():
    # the machine slows down over the run: both contenders feel it round by round
    drift = np.linspace(10, 30, 10)
    a, b = list(drift * 1.0), list(drift * 2.0)
    lo, hi = stats.ratio_interval(a, b)
    assert lo == pytest.approx(0.5) and hi == pytest.approx(0.5)


def test_verdict_needs_the_whole_interval():
    assert stats.verdict((0.7, 0.99)) == "faster"
    assert stats.verdict((1.01, 1.4)) == "slower"
    assert stats.verdict((0.9, 1.1)) == "same"


def test_stable_best_ties_go_to_the_rule_not_to_noise():
    times = {"many-shapes": [10.0, 10.3, 9.7, 10.1, 9.9], "few-shapes": [10.1, 9.8, 10.2, 10.0, 10.3]}
    shapes = {"many-shapes": 6, "few-shapes": 1}
    chosen, tied = stats.stable_best(list(times), samples=times.get, tie_key=shapes.get)
    assert chosen == "few-shapes" and set(tied) == set(times)
    times["many-shapes"] = [5.0, 5.1, 4.9, 5.0, 5.2]  # measurably faster: the rule does not apply
    chosen, tied = stats.stable_best(list(times), samples=times.get, tie_key=shapes.get)
    assert chosen == "many-shapes" and tied == ["many-shapes"]


def test_noise_is_a_relative_spread():
    assert stats.noise([[10.0] * 5, [20.0] * 5]) == 0.0
    assert 0.05 < stats.noise([[9.0, 10.0, 11.0, 10.0], [18.0, 20.0, 22.0, 20.0]]) < 0.2


def test_robust_fit_resists_a_disturbed_timing():
    x = np.array([[1, 16], [1, 64], [1, 256], [4, 32], [4, 128], [8, 64], [16, 32]], float)
    y = 2.0 + 0.01 * x[:, 0] * x[:, 1]
    y_bad = y.copy()
    y_bad[2] *= 3  # a burst of load on one shape
    a = np.column_stack([np.ones(len(x)), x[:, 0] * x[:, 1]])
    plain = np.linalg.lstsq(a, y_bad, rcond=None)[0]
    robust = stats.robust_lstsq(a, y_bad)
    assert abs(robust[1] - 0.01) < 1e-6 and abs(plain[1] - 0.01) > 5e-4


def test_settled_is_the_low_end():
    assert stats.settled([10.0, 10.2, 10.1, 40.0, 60.0]) == pytest.approx(10.1)
