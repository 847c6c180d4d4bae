"""Intervals and verdicts for comparisons between runs.

A claim compares two variants (or two samplers on the same models) seed by seed: the paired
differences get a t-interval (Student's t with n - 1 degrees of freedom) and an effect size
(Cohen's d_z = mean difference / standard deviation of the differences). A metric's sampling
error within one run (FD_attr over a finite number of faces) gets a normal bootstrap interval. The verdict is read off the interval:

- **supported**: the interval lies entirely on the side the claim predicts;
- **not supported**: it lies entirely on the other side, or entirely inside the equivalence
  margin (+-margin: any effect is smaller than one that would matter);
- **inconclusive**: otherwise (it straddles 0 and reaches beyond the margin).

Example:
    >>> paired_interval([5.1, 5.0, 5.2], [4.0, 4.1, 3.9])["interval"]
"""

from __future__ import annotations

import math

import numpy as np


def paired_interval(a, b, confidence=0.95) -> dict:
    """t-interval of the mean of a - b over pairs (NaN pairs dropped), with d_z and the n used."""
    from scipy import stats

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = (a - b)[np.isfinite(a) & np.isfinite(b)]
    n = len(d)
    if n < 2:
        return {"n": n, "mean": float(d.mean()) if n else math.nan, "interval": [math.nan, math.nan],
                "effect_size": math.nan, "method": "paired t"}
    sd = float(d.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return {"n": n, "mean": float(d.mean()), "interval": [float(d.mean() - half), float(d.mean() + half)],
            "effect_size": float(d.mean() / sd) if sd > 0 else math.copysign(math.inf, d.mean()) if d.mean() else 0.0,
            "method": "paired t"}


def bootstrap_interval(statistic, arrays, resamples=200, confidence=0.95, seed=0) -> list:
    """Normal bootstrap interval of ``statistic(*arrays)``: the estimate +- z x the standard deviation
    of the statistic over resamples (each array's rows resampled with replacement, independently).
    Not the percentile interval: a Frechet distance is biased upwards at finite sample sizes, and
    resampling with replacement (duplicated rows) shifts the whole resampled distribution up, so
    percentile intervals of FD can exclude the estimate; the spread, not the shift, is the sampling
    error."""
    from scipy import stats

    rng = np.random.default_rng(seed)
    values = [statistic(*[x[rng.integers(0, len(x), len(x))] for x in arrays]) for _ in range(resamples)]
    estimate, half = statistic(*arrays), float(stats.norm.ppf(0.5 + confidence / 2)) * float(np.std(values, ddof=1))
    return [float(estimate - half), float(estimate + half)]


def verdict(interval, predicted="negative", margin=0.0) -> str:
    """The verdict an interval of (a - b) supports, for a claim that predicts a ``predicted``
    ("negative" or "positive") difference; ``margin`` is the equivalence margin."""
    lo, hi = interval
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "inconclusive"
    if predicted == "positive":
        lo, hi = -hi, -lo
    if hi < 0:
        return "supported"
    if lo > 0 or (margin > 0 and -margin < lo and hi < margin):
        return "not supported"
    return "inconclusive"


def proportion_interval(successes, n, confidence=0.95) -> list:
    """Wilson score interval of a proportion ``successes / n`` (Wilson 1927): unlike the normal
    approximation it stays inside [0, 1] and is sensible at 0 or n successes."""
    from scipy import stats

    if n == 0:
        return [math.nan, math.nan]
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def mcnemar(a, b) -> dict:
    """McNemar's exact test of two methods judged on the same items (McNemar 1947): ``a`` and ``b`` are (n,) bool
    verdicts; only the items on which they disagree count, and under the null each disagreement goes either way with
    probability 1/2 (a two-sided binomial test)."""
    from scipy import stats

    a, b = np.asarray(a, bool), np.asarray(b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = float(stats.binomtest(only_a, only_a + only_b).pvalue) if only_a + only_b else 1.0
    return {"items": int(len(a)), "a": int(a.sum()), "b": int(b.sum()), "only_a": only_a, "only_b": only_b, "p": p}
