"""Residual plots of posterior-predictive checks: per-bin residuals, and the statistic of the
replicas against that of the data (`bayesdl4.inference.ppc_pvalues`)."""

import numpy as np

__all__ = ["ppc_residuals", "plot_residuals", "plot_ppc_statistic", "plot_spectrum_residuals"]


def ppc_residuals(result, name):
    """Standardised posterior-predictive residuals of the variable ``name`` per point.

    ``(observed - mean(replicas)) / std(replicas)`` over all draws, and the 2.5 / 16 / 84 / 97.5 %
    quantiles of the replicas' own residuals (the band the observed residuals should lie in).

    Returns
    -------
    dict
        ``coord`` (n,), ``residual`` (n,), ``band`` (4, n).
    """
    pred = result["posterior_predictive"][name]
    dim = [d for d in pred.dims if d not in ("chain", "draw")][0]
    replicas = pred.values.reshape(-1, pred.sizes[dim]).astype(float)
    observed = np.asarray(result["observed_data"][name].values, dtype=float)
    mean = replicas.mean(axis=0)
    std = np.sqrt(replicas.var(axis=0) + 1e-12)
    band = np.quantile((replicas - mean) / std, [0.025, 0.16, 0.84, 0.975], axis=0)
    return {"coord": pred[dim].values, "residual": (observed - mean) / std, "band": band}


def _energy_bins(dataset, bins):
    axis = dataset.energy_axis
    lo = axis.edges_min.to_value("TeV")[bins]
    hi = axis.edges_max.to_value("TeV")[bins]
    return lo, hi, np.sqrt(lo * hi)


def plot_residuals(result, dataset, ax=None, counts_off=False):
    """Standardised residuals per reco-energy bin (`ppc_residuals`) with the replicas' 68 / 95 %
    bands.

    Parameters
    ----------
    result : `xarray.DataTree`
        From `bayesdl4.inference.sample` (with ``posterior_predictive``).
    dataset : spectrum dataset
        The dataset the result was sampled on (gives the energy axis).
    counts_off : bool
        OFF counts instead of ON counts.
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    name = f"{dataset.name}.counts_off" if counts_off else dataset.name
    res = ppc_residuals(result, name)
    lo, hi, centre = _energy_bins(dataset, res["coord"])
    band = res["band"]
    ax.fill_between(centre, band[0], band[3], step="mid", color="C0", alpha=0.15, label="replicas 95%")
    ax.fill_between(centre, band[1], band[2], step="mid", color="C0", alpha=0.3, label="replicas 68%")
    ax.axhline(0.0, color="k", lw=0.8)
    ax.errorbar(centre, res["residual"], xerr=[centre - lo, hi - centre], fmt="o", color="k", ms=3,
                label="(observed - mean) / std")
    ax.set_xscale("log")
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("residual [sigma]")
    ax.legend(fontsize="small")
    return ax


def plot_spectrum_residuals(result, dataset, figsize=(6, 5)):
    """Counts with the posterior-predictive band above, residuals below; returns the figure."""
    import matplotlib.pyplot as plt

    from .spectrum import plot_counts_ppc

    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=figsize, height_ratios=(2, 1))
    plot_counts_ppc(result, dataset, ax=top)
    top.set_xlabel("")
    plot_residuals(result, dataset, ax=bottom)
    bottom.get_legend().remove()
    fig.tight_layout()
    return fig


def plot_ppc_statistic(pvalues, dataset=None, ax=None):
    """Statistic of the replica against that of the data, one point per draw, with the diagonal;
    the p-value is the fraction above it.

    Parameters
    ----------
    pvalues : `xarray.Dataset`
        From `bayesdl4.inference.ppc_pvalues`.
    dataset : str, optional
        A dataset's name (default: the sum over datasets).
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    if dataset is None:
        observed = pvalues["stat_observed"].sum("dataset").values.ravel()
        replicated = pvalues["stat_replicated"].sum("dataset").values.ravel()
        p, title = float(pvalues["p_value_total"]), "all datasets"
    else:
        observed = pvalues["stat_observed"].sel(dataset=dataset).values.ravel()
        replicated = pvalues["stat_replicated"].sel(dataset=dataset).values.ravel()
        p, title = float(pvalues["p_value"].sel(dataset=dataset)), dataset
    ax.scatter(observed, replicated, s=4, alpha=0.4, color="C0")
    lo = min(observed.min(), replicated.min())
    hi = max(observed.max(), replicated.max())
    ax.plot([lo, hi], [lo, hi], color="k", lw=0.8)
    ax.set_xlabel("statistic of the data, -2 ln L")
    ax.set_ylabel("statistic of the replica, -2 ln L")
    ax.set_title(f"{title}: posterior-predictive p = {p:.3f}")
    return ax
