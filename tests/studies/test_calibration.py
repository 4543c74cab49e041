"""SBC statistics: ranks, the chi-square uniformity test, coverage, the simultaneous ECDF band."""

import numpy as np
import pytest
from scipy import stats

from bayesdl4.errors import InferenceError
from bayesdl4.studies.calibration import (
    central_interval_covers,
    coverage_test,
    ecdf_band,
    rank_of_truth,
    rank_uniformity_test,
    thin_indices,
)


def test_rank_counts_draws_below_the_truth():
    draws = np.array([[0.1, 0.5, 0.9, 0.3], [5.0, 6.0, 7.0, 8.0]])
    np.testing.assert_array_equal(rank_of_truth(draws, np.array([0.4, 4.0])), [2, 0])
    np.testing.assert_array_equal(rank_of_truth(draws, np.array([1.0, 9.0])), [4, 4])


def test_thinning_spreads_over_all_draws():
    keep = thin_indices(200, 99)
    assert keep[0] == 0 and keep[-1] == 199 and np.all(np.diff(keep) >= 2)
    with pytest.raises(InferenceError, match="cannot keep 300 draws"):
        thin_indices(200, 300)


def test_uniform_ranks_pass_and_piled_up_ranks_fail():
    flat = np.repeat(np.arange(100), 2)  # exactly uniform: 20 per bin of 10 values
    chi2, p, counts, expected = rank_uniformity_test(flat, 99, n_bins=10)
    assert chi2 == 0.0 and p == 1.0
    np.testing.assert_array_equal(counts, 20)
    # truths above most draws (a posterior biased low): ranks pile up at the top
    rng = np.random.default_rng(1)
    piled = np.minimum(99, rng.integers(60, 130, 200))
    assert rank_uniformity_test(piled, 99)[1] < 1e-10
    # the test is calibrated: uniform random ranks give p < 0.05 in ~5 % of 2000 sets
    pvalues = [rank_uniformity_test(rng.integers(0, 100, 200), 99)[1] for _ in range(2000)]
    assert np.mean(np.array(pvalues) < 0.05) == pytest.approx(0.05, abs=0.015)


def test_uneven_bins_have_matching_expectations():
    _, _, counts, expected = rank_uniformity_test(np.arange(101), 100, n_bins=10)
    assert expected.sum() == pytest.approx(101)
    np.testing.assert_allclose(counts, expected)  # one of each rank: counts equal expectations


def test_ranks_above_the_number_of_draws_are_refused():
    with pytest.raises(InferenceError, match="ranks above 99"):
        rank_uniformity_test(np.array([0, 50, 100]), 99)


def test_central_interval_and_coverage_test():
    draws = np.linspace(0, 1, 1001)[None, :].repeat(2, axis=0)
    covered = central_interval_covers(draws, np.array([0.5, 0.99]), 0.68)
    np.testing.assert_array_equal(covered, [True, False])
    fraction, sigma, p = coverage_test(np.r_[np.ones(136, bool), np.zeros(64, bool)], 0.68)
    assert fraction == 0.68 and sigma == pytest.approx(np.sqrt(0.68 * 0.32 / 200))
    assert p == pytest.approx(stats.binomtest(136, 200, 0.68).pvalue)
    assert coverage_test(np.r_[np.ones(110, bool), np.zeros(90, bool)], 0.68)[2] < 0.01  # 0.55: 3.9 sigma


def test_ecdf_band_holds_its_level_simultaneously():
    z, lower, upper = ecdf_band(200, 100, level=0.95, random_seed=3)
    rng = np.random.default_rng(11)
    inside = []
    for _ in range(1000):
        ecdf = np.cumsum(np.bincount(rng.integers(0, 100, 200), minlength=100)) / 200
        inside.append(np.all((ecdf - z >= lower - 1e-12) & (ecdf - z <= upper + 1e-12)))
    assert np.mean(inside) == pytest.approx(0.95, abs=0.025)
    assert np.all(lower <= 0) and np.all(upper >= 0)
