"""Paired t-intervals, bootstrap intervals and the verdict rule, against hand computations."""

import math

import numpy as np
import pytest

from cartoon_vae.stats import bootstrap_interval, paired_interval, verdict


def test_paired_interval_hand_computed():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.302653: half-width 4.302653 / sqrt(3)
    r = paired_interval([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert r["n"] == 3 and r["mean"] == pytest.approx(2.0) and r["effect_size"] == pytest.approx(2.0)
    assert r["interval"] == pytest.approx([2.0 - half, 2.0 + half])


def test_paired_interval_drops_missing_pairs_and_pairing_removes_shared_noise():
    rng = np.random.default_rng(0)
    base = rng.normal(0, 10, 6)          # a large per-seed effect shared by both variants
    a, b = base + 1.0 + rng.normal(0, 0.1, 6), base
    a[5] = np.nan                        # a diverged run
    r = paired_interval(a, b)
    assert r["n"] == 5 and 0.5 < r["interval"][0] < 1.0 < r["interval"][1] < 1.5


def test_bootstrap_interval_matches_the_standard_error_of_a_mean():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2.0, 400)
    lo, hi = bootstrap_interval(np.mean, [x], resamples=1000)
    assert (lo + hi) / 2 == pytest.approx(x.mean())             # centred on the estimate
    assert (hi - lo) / 2 == pytest.approx(1.959964 * x.std(ddof=1) / 20, rel=0.1)  # z x sigma / sqrt(n)


@pytest.mark.parametrize("interval,predicted,margin,expected", [
    ([-3.0, -1.0], "negative", 0.0, "supported"),
    ([1.0, 3.0], "negative", 0.0, "not supported"),
    ([-1.0, 2.0], "negative", 0.5, "inconclusive"),
    ([-0.2, 0.3], "negative", 0.5, "not supported"),   # inside the equivalence margin
    ([1.0, 3.0], "positive", 0.0, "supported"),
    ([math.nan, math.nan], "negative", 0.0, "inconclusive"),
])
def test_verdict_rule(interval, predicted, margin, expected):
    assert verdict(interval, predicted, margin) == expected


def test_wilson_interval_matches_the_textbook_and_stays_in_0_1():
    from cartoon_vae.stats import proportion_interval

    lo, hi = proportion_interval(7, 10)
    assert round(lo, 3) == 0.397 and round(hi, 3) == 0.892  # Wilson 95% for 7/10
    assert proportion_interval(0, 20)[0] == 0.0 and proportion_interval(20, 20)[1] == 1.0
    assert all(v != v for v in proportion_interval(0, 0))


def test_mcnemar_counts_only_the_disagreements_and_matches_the_binomial_by_hand():
    from math import comb

    from cartoon_vae.stats import mcnemar

    a = np.array([1, 1, 1, 1, 1, 0, 0, 1, 0, 1], bool)
    b = np.array([1, 1, 0, 0, 0, 0, 0, 1, 1, 1], bool)  # a alone on 3 items, b alone on 1
    r = mcnemar(a, b)
    assert (r["items"], r["a"], r["b"], r["only_a"], r["only_b"]) == (10, 7, 5, 3, 1)
    assert abs(r["p"] - 2 * sum(comb(4, k) for k in (0, 1)) / 16) < 1e-12  # two-sided: P(X <= 1) + P(X >= 3)
    assert mcnemar(a, a)["p"] == 1.0
