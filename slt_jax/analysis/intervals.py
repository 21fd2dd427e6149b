"""How sure a mean is: 95% intervals over seeds and over test samples, and verdicts read off them.

Two sources of error, two intervals:
  seed_interval        Student's t over one value per trained seed: would other seeds agree?
  bootstrap_interval   percentile bootstrap over the test samples (BOOTSTRAP_RESAMPLES resamples,
                       seeded): would another test set of the same signer agree? All seeds are
                       scored on the same samples, so averaging seeds does not shrink this one.
  binomial_interval    Wilson's interval of a share of n samples (exact match without the samples)

A quantity measured over samples is kept as per-sample `sums` and `counts` (count 0: the sample
is not in its population), so one resample gives sum(sums) / sum(counts): a per-sample mean when
counts are 0/1, a mean over steps when a sample holds several.

`verdict(interval, holds)`: "holds" when the whole interval satisfies the rule, "fails" when
none of it does, "inconclusive" when it crosses the threshold (or there is no interval).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000  # percentile intervals want >= 1000 (Efron & Tibshirani 1993, §13.3)
BOOTSTRAP_SEED = 0
Z95 = 1.959964  # the normal distribution's 97.5% quantile, for Wilson's interval

Interval = tuple[float, float]


def _t_coverage(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with `df` degrees of freedom, exactly (Abramowitz & Stegun
    26.7.3-4: a finite series in cos^2 of arctan(t / sqrt(df)))."""
    theta = math.atan(t / math.sqrt(df))
    c2 = math.cos(theta) ** 2
    term = series = 1.0
    for k in range(2 if df % 2 == 0 else 3, df, 2):
        term *= c2 * (k - 1) / k
        series += term
    if df % 2 == 0:
        return math.sin(theta) * series
    return 2 / math.pi * (theta + (math.sin(theta) * math.cos(theta) * series if df > 1 else 0.0))


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The t such that P(|T| <= t) = confidence, by bisection (coverage rises with t)."""
    lo, hi = 0.0, 1e4
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _t_coverage(mid, df) < confidence else (lo, mid)
    return (lo + hi) / 2


def seed_interval(values: Sequence[float]) -> Interval | None:
    """95% t-interval of the mean of one value per seed; None for fewer than 2 values."""
    values = np.asarray(values, float)
    if len(values) < 2:
        return None
    half = t_quantile(len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def population(counts) -> int:
    """How many samples hold part of the quantity (a per-sample count above 0)."""
    return int((np.asarray(counts) > 0).sum())


def resample_weights(n: int, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """How often each of n samples is drawn in each resample (with replacement), R x n."""
    return np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=resamples).astype(float)


def resampled_means(sums: np.ndarray, counts: np.ndarray, weights_RxN: np.ndarray) -> np.ndarray:
    """sum(sums) / sum(counts) in each resample: (..., n) -> (..., R); NaN where a resample holds
    no sample of the population."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (np.asarray(sums, float) @ weights_RxN.T) / (np.asarray(counts, float) @ weights_RxN.T)


def percentile_interval(resampled_R: np.ndarray, confidence: float = CONFIDENCE) -> Interval | None:
    """The central `confidence` share of the finite resampled values; None if there are none."""
    finite = resampled_R[np.isfinite(resampled_R)]
    if not len(finite):
        return None
    tail = 50 * (1 - confidence)
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return float(lo), float(hi)


def bootstrap_interval(sums, counts=None, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> Interval | None:
    """95% percentile bootstrap interval of sum(sums) / sum(counts) over test samples (counts
    default to 1 each: the plain mean); None for a population of fewer than 2 samples, whose
    resamples could only repeat it."""
    sums = np.asarray(sums, float)
    counts = np.ones_like(sums) if counts is None else np.asarray(counts, float)
    if population(counts) < 2:
        return None
    return percentile_interval(resampled_means(sums, counts, resample_weights(len(sums), resamples, seed)))


def binomial_interval(share: float, n: int) -> Interval:
    """Wilson's 95% interval of a share measured on n samples."""
    centre = (share + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(share * (1 - share) / n + Z95**2 / (4 * n**2))
    return centre - half, centre + half


def verdict(interval: Interval | None, holds: Callable[[float], bool]) -> str:
    """holds / fails / inconclusive for a rule that holds on one side of a threshold."""
    if interval is None:
        return "inconclusive"
    ends = [holds(v) for v in interval]
    return "holds" if all(ends) else "fails" if not any(ends) else "inconclusive"


def format_interval(mean: float | None, interval: Interval | None, digits: int = 2) -> str:
    """"mean [lo, hi]", the mean alone without an interval, "–" without a mean."""
    if mean is None or not np.isfinite(mean):
        return "–"
    text = f"{mean:.{digits}f}"
    return text if interval is None else f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]"


# --- analyze's per-sample quantities ----------------------------------------------------------


def _sums_counts(values, include) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: the sum and number of its included finite values (values N or N x S)."""
    values = np.asarray(values, float).reshape(len(include), -1)
    keep = np.asarray(include, bool).reshape(len(include), -1) & np.isfinite(values)
    return np.where(keep, values, 0.0).sum(1), keep.sum(1).astype(float)


def sample_intervals(m: dict, later_NxS: np.ndarray, short_calls, long_calls) -> dict:
    """`analyze`'s per-sample means with their bootstrap intervals over the test samples.

    Args:
      m: the merged per-sample arrays of `analysis.report` (populations as in its `_summarise`).
      later_NxS: the steps after the first of the correct samples.
      short_calls, long_calls: the decoding calls of short and long sentences (`views.GROUPS_*`).

    Returns:
      {"per_sample": {key: {"sum": [...], "count": [...]}} in the split's sample order (so that
      configs and seeds on one split pair sample by sample), "intervals": {key: [lo, hi] | None}}.
    """
    correct, diagonality, everyone = m["correct"], m["greedy"]["diagonality"], np.ones_like(m["correct"])
    in_group = lambda calls: correct & np.isin(m["length"], list(calls))
    terms = {
        "exact_match": _sums_counts(correct, everyone),
        "diagonality": _sums_counts(diagonality, correct),
        "window_mass": _sums_counts(m["greedy"]["window_mass"], correct),
        "self_minus_cross_first": _sums_counts(m["diff"][:, 0], correct),
        "self_minus_cross_later": _sums_counts(m["diff"], later_NxS),
        "encoder_within_sign": _sums_counts(m["encoder_within"], everyone),
        "by_length.short.diagonality": _sums_counts(diagonality, in_group(short_calls)),
        "by_length.long.diagonality": _sums_counts(diagonality, in_group(long_calls)),
    }
    order = np.argsort(m["index"])
    intervals = {key: bootstrap_interval(sums, counts) for key, (sums, counts) in terms.items()}
    return {"per_sample": {key: {"sum": sums[order].tolist(), "count": counts[order].tolist()}
                           for key, (sums, counts) in terms.items()},
            "intervals": {key: None if v is None else list(v) for key, v in intervals.items()}}
