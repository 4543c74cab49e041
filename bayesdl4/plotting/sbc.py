"""Plots of simulation-based calibration: rank histograms and ECDF differences with their bands."""

import numpy as np
from scipy import stats

__all__ = ["plot_rank_histogram", "plot_rank_ecdf"]


def _axes(result, axes):
    import matplotlib.pyplot as plt

    names = result.parameters
    if axes is None:
        _, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.0), squeeze=False)
        axes = axes[0]
    axes = np.atleast_1d(axes)
    if len(axes) != len(names):
        raise ValueError(f"give one axis per parameter ({len(names)}: {names}), got {len(axes)}")
    return names, axes


def _ranks(result, name):
    ranks = result.data["rank"].sel(parameter=name).values
    return ranks[ranks >= 0]


def plot_rank_histogram(result, n_bins=10, axes=None, level=0.99):
    """Histogram of each parameter's SBC ranks with the ``level`` band of a uniform histogram.

    Parameters
    ----------
    result : `~bayesdl4.studies.SBCResult`
    n_bins : int
        Bins over the ``n_ranks + 1`` rank values (as `rank_uniformity_test`).
    axes : list of `matplotlib.axes.Axes`, optional
        One per parameter.
    level : float
        Pointwise binomial band of each bin's count under uniform ranks (grey).

    Returns
    -------
    list of Axes
    """
    names, axes = _axes(result, axes)
    n_values = result.n_ranks + 1
    edges = np.round(np.linspace(0, n_values, n_bins + 1)).astype(int)
    for ax, name in zip(axes, names, strict=True):
        ranks = _ranks(result, name)
        counts = np.histogram(ranks, bins=edges)[0]
        p = np.diff(edges) / n_values
        lo = stats.binom.ppf((1 - level) / 2, ranks.size, p)
        hi = stats.binom.isf((1 - level) / 2, ranks.size, p)
        ax.fill_between(edges, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post", color="0.85",
                        label=f"uniform, {100 * level:g}%")
        ax.stairs(counts, edges, color="C0", linewidth=1.5, label="ranks")
        ax.set_xlim(0, n_values)
        ax.set_xlabel(f"rank of the truth among {result.n_ranks} draws")
        ax.set_title(name, fontsize="medium")
    axes[0].set_ylabel("repetitions")
    axes[0].legend(fontsize="small")
    return list(axes)


def plot_rank_ecdf(result, axes=None, level=0.95, random_seed=0):
    """ECDF of each parameter's fractional ranks minus the uniform CDF, with the simultaneous
    ``level`` band of uniform ranks (`bayesdl4.studies.calibration.ecdf_band`): a curve leaving
    the band marks a miscalibrated parameter (above: truths tend to low ranks, posteriors too high).

    Returns
    -------
    list of Axes
    """
    from ..studies.calibration import ecdf_band

    names, axes = _axes(result, axes)
    n_values = result.n_ranks + 1
    for ax, name in zip(axes, names, strict=True):
        ranks = _ranks(result, name)
        z, lower, upper = ecdf_band(ranks.size, n_values, level=level, random_seed=random_seed)
        ecdf = np.cumsum(np.bincount(ranks, minlength=n_values)) / ranks.size
        ax.fill_between(z, lower, upper, step="post", color="0.85", label=f"uniform, {100 * level:g}% simultaneous")
        ax.step(z, ecdf - z, where="post", color="C0", label="ranks")
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.set_xlim(0, 1)
        ax.set_xlabel("fractional rank")
        ax.set_title(name, fontsize="medium")
    axes[0].set_ylabel("ECDF - uniform CDF")
    axes[0].legend(fontsize="small")
    return list(axes)
