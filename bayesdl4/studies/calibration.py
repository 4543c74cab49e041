"""Statistics of calibration studies: SBC ranks, their uniformity test, interval coverage.

Simulation-based calibration (Talts et al. 2018, arXiv:1804.06788): for a truth drawn from the
prior and data drawn given it, the rank of the truth among ``L`` independent posterior draws is
uniform on ``{0, ..., L}`` when the inference is correct. A biased or over- / under-dispersed
posterior piles the ranks up at the ends or in the middle.
"""

import numpy as np
from scipy import stats

from ..errors import InferenceError

__all__ = ["thin_indices", "rank_of_truth", "rank_uniformity_test", "central_interval_covers",
           "coverage_test", "ecdf_band"]


def thin_indices(n_total, n_ranks):
    """``n_ranks`` evenly spaced positions in ``range(n_total)`` (thinning the chains' draws)."""
    if not 0 < n_ranks <= n_total:
        raise InferenceError(f"cannot keep {n_ranks} draws for the ranks out of {n_total}; ask for at most "
                             "chains x draws")
    return np.round(np.linspace(0, n_total - 1, n_ranks)).astype(int)


def rank_of_truth(draws, truth):
    """Number of ``draws`` (last axis) below ``truth``: an integer in ``[0, draws.shape[-1]]``."""
    draws = np.asarray(draws, dtype=float)
    return np.sum(draws < np.asarray(truth, dtype=float)[..., None], axis=-1)


def rank_uniformity_test(ranks, n_ranks, n_bins=10):
    """Pearson chi-square test of SBC ranks against the discrete uniform on ``{0, ..., n_ranks}``.

    The ``n_ranks + 1`` rank values are split into ``n_bins`` contiguous bins (as equal as the
    division allows) and the counts compared with their expectation ``n x width / (n_ranks + 1)``.

    Parameters
    ----------
    ranks : array of int, shape (n_repetitions,)
    n_ranks : int
        Posterior draws each rank was taken among (``L``).
    n_bins : int
        Histogram bins; keep ``n / n_bins >= 5``.

    Returns
    -------
    (chi2, p_value, counts, expected)
    """
    ranks = np.asarray(ranks)
    ranks = ranks[ranks >= 0]
    n_values = int(n_ranks) + 1
    if n_bins > n_values:
        raise InferenceError(f"{n_bins} bins for {n_values} possible ranks: use at most {n_values} bins")
    if ranks.size == 0:
        raise InferenceError("no ranks to test")
    if np.any(ranks > n_ranks):
        raise InferenceError(f"ranks above {n_ranks}: were they taken among {n_ranks} draws?")
    edges = np.round(np.linspace(0, n_values, n_bins + 1)).astype(int)
    counts = np.histogram(ranks, bins=edges)[0]
    expected = ranks.size * np.diff(edges) / n_values
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    return chi2, float(stats.chi2.sf(chi2, n_bins - 1)), counts, expected


def central_interval_covers(draws, truth, level):
    """Whether ``truth`` lies in the equal-tailed ``level`` interval of ``draws`` (last axis)."""
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [(1 - level) / 2, (1 + level) / 2], axis=-1)
    return (lo <= truth) & (truth <= hi)


def coverage_test(covered, level):
    """Coverage of nominal ``level`` intervals: ``(fraction, binomial sigma, two-sided p-value)``.

    ``covered``: booleans, one per repetition. The p-value is the exact binomial test of the
    number covered against ``level``; ``sigma = sqrt(level (1 - level) / n)``.
    """
    covered = np.asarray(covered, dtype=bool)
    n = covered.size
    if n == 0:
        raise InferenceError("no repetitions to test the coverage of")
    k = int(covered.sum())
    p = stats.binomtest(k, n, level).pvalue
    return k / n, float(np.sqrt(level * (1 - level) / n)), float(p)


def ecdf_band(n, n_values, level=0.95, n_simulations=2000, random_seed=0):
    """Simultaneous ``level`` band of the ECDF of ``n`` ranks uniform on ``n_values`` values, as
    offsets from the uniform CDF at ``z = (1..n_values) / n_values``; by simulation (seeded).

    Returns ``(z, lower, upper)``: the ECDF minus ``z`` of ``level`` of uniform rank sets stays
    inside ``[lower, upper]`` at every ``z`` at once (Säilynoja et al. 2022, arXiv:2103.10522,
    computed by simulation instead of their optimisation).
    """
    rng = np.random.default_rng(random_seed)
    z = np.arange(1, n_values + 1) / n_values
    sims = rng.integers(0, n_values, size=(n_simulations, n))
    counts = np.apply_along_axis(np.bincount, 1, sims, minlength=n_values)
    ecdf = np.cumsum(counts, axis=1) / n
    # pointwise binomial quantiles at a common tail gamma chosen so that the band is simultaneous
    lower_cdf = stats.binom.cdf(np.round(ecdf * n), n, z)
    upper_cdf = stats.binom.sf(np.round(ecdf * n) - 1, n, z)
    extreme = np.minimum(lower_cdf.min(axis=1), upper_cdf.min(axis=1))
    gamma = float(np.quantile(extreme, 1 - level))
    lower = stats.binom.ppf(gamma, n, z) / n - z
    upper = stats.binom.isf(gamma, n, z) / n - z
    return z, lower, upper
