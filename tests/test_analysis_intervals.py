"""Intervals over seeds and over test samples, and the verdicts read off them."""

import numpy as np
import pytest

from slt_jax.analysis import intervals as iv


@pytest.mark.parametrize("df, quantile", [(1, 12.7062), (2, 4.3027), (3, 3.1824), (4, 2.7764), (9, 2.2622),
                                          (10, 2.2281), (30, 2.0423), (120, 1.9799)])
def test_t_quantiles_match_the_tables(df, quantile):
    assert iv.t_quantile(df) == pytest.approx(quantile, abs=1e-4)


def test_t_quantile_approaches_the_normal_and_follows_the_confidence():
    assert iv.t_quantile(100_000) == pytest.approx(iv.Z95, abs=1e-3)
    assert iv.t_quantile(5, 0.90) == pytest.approx(2.0150, abs=1e-4) and iv.t_quantile(5, 0.99) == pytest.approx(4.0321, abs=1e-4)


def test_seed_interval_is_mean_plus_minus_t_standard_error():
    lo, hi = iv.seed_interval([0.53, 0.58, 0.63])
    assert (lo + hi) / 2 == pytest.approx(0.58) and (hi - lo) / 2 == pytest.approx(4.3027 * 0.05 / np.sqrt(3), abs=1e-4)
    assert iv.seed_interval([0.5]) is None and iv.seed_interval([0.2, 0.2]) == pytest.approx((0.2, 0.2))


def test_bootstrap_interval_contains_the_mean_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    widths = []
    for n in (30, 300, 3000):
        values = rng.normal(1.0, 1.0, n)
        lo, hi = iv.bootstrap_interval(values)
        assert lo < values.mean() < hi
        widths.append(hi - lo)
        # about 2 * 1.96 standard errors
        assert hi - lo == pytest.approx(2 * 1.96 * values.std() / np.sqrt(n), rel=0.15)
    assert widths[0] > widths[1] > widths[2]
    assert iv.bootstrap_interval(values) == iv.bootstrap_interval(values)  # seeded


def test_bootstrap_of_sums_and_counts_resamples_whole_samples():
    # Two samples of 1 and 3 steps: the pooled mean weighs steps, not samples.
    sums, counts = np.array([1.0, 0.0]), np.array([1.0, 3.0])
    weights = iv.resample_weights(2, resamples=500)
    assert weights.sum(1) == pytest.approx(np.full(500, 2.0))
    means = iv.resampled_means(sums, counts, weights)
    assert set(np.round(means, 6)) <= {1.0, 0.25, 0.0}  # both the first, one of each, both the second
    assert iv.bootstrap_interval([0.0, 0.0], [0.0, 0.0]) is None  # an empty population
    assert iv.bootstrap_interval([0.3, 0.0, 0.0], [1.0, 0.0, 0.0]) is None  # one sample: no spread to resample
    assert iv.bootstrap_interval([]) is None


def test_binomial_interval_is_wilsons():
    # Newcombe (1998), Table I: 81 of 263, the score interval without continuity correction
    assert iv.binomial_interval(81 / 263, 263) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert iv.binomial_interval(1.0, 90)[1] == pytest.approx(1.0) and iv.binomial_interval(0.0, 90)[0] == pytest.approx(0.0)


@pytest.mark.parametrize("interval, holds, expected", [
    ((0.55, 0.70), lambda v: v >= 0.5, "holds"),
    ((0.50, 0.70), lambda v: v >= 0.5, "holds"),          # touching the threshold on its side
    ((0.46, 0.70), lambda v: v >= 0.5, "inconclusive"),
    ((0.30, 0.49), lambda v: v >= 0.5, "fails"),
    ((0.30, 0.50), lambda v: v >= 0.5, "inconclusive"),   # its upper end satisfies >= 0.5
    ((0.00, 0.20), lambda v: v > 0, "inconclusive"),      # 0 does not satisfy > 0
    ((-0.20, 0.00), lambda v: v > 0, "fails"),
    (None, lambda v: v > 0, "inconclusive"),
])
def test_verdict_needs_the_whole_interval_on_one_side(interval, holds, expected):
    assert iv.verdict(interval, holds) == expected


def test_format_interval():
    assert iv.format_interval(0.58, (0.456, 0.704)) == "0.58 [0.46, 0.70]"
    assert iv.format_interval(0.58, None, 3) == "0.580" and iv.format_interval(None, None) == "–"


def test_sample_intervals_keep_each_mean_and_its_population():
    # Four samples given in batch order 2, 0, 3, 1; samples 0 and 2 correct.
    nan = np.nan
    m = {"index": np.array([2, 0, 3, 1]), "correct": np.array([True, True, False, False]),
         "length": np.array([3, 8, 4, 2]),  # decoding calls: 2 and 7 glosses
         "greedy": {"diagonality": np.array([0.8, 0.2, 0.5, nan]), "window_mass": np.array([0.4, 0.2, 0.9, 0.9])},
         "diff": np.array([[0.1, 0.3, nan], [0.2, 0.5, 0.7], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]),
         "encoder_within": np.array([0.1, nan, 0.3, 0.5])}
    steps = np.arange(3)[None, :]
    later = m["correct"][:, None] & (steps >= 1) & (steps < m["length"][:, None])
    out = iv.sample_intervals(m, later, range(2, 7), range(7, 12))
    mean = lambda key: sum(out["per_sample"][key]["sum"]) / sum(out["per_sample"][key]["count"])
    assert mean("exact_match") == 0.5 and mean("diagonality") == pytest.approx(0.5)
    assert mean("window_mass") == pytest.approx(0.3) and mean("self_minus_cross_first") == pytest.approx(0.15)
    assert mean("self_minus_cross_later") == pytest.approx((0.3 + 0.5 + 0.7) / 3)
    assert mean("encoder_within_sign") == pytest.approx(0.3)
    assert mean("by_length.short.diagonality") == 0.8 and mean("by_length.long.diagonality") == 0.2
    # in the split's order: sample 0 is the second in the batch
    assert out["per_sample"]["diagonality"] == {"sum": [0.2, 0.0, 0.8, 0.0], "count": [1.0, 0.0, 1.0, 0.0]}
    lo, hi = out["intervals"]["diagonality"]
    assert lo <= 0.5 <= hi and 0.2 - 1e-9 <= lo and hi <= 0.8 + 1e-9
