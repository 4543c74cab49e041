"""Plots of spectra: observed counts with the posterior-predictive band."""

import numpy as np

__all__ = ["plot_counts_ppc"]


def plot_counts_ppc(result, dataset, ax=None, quantiles=(0.05, 0.95), counts_off=False, yscale="log"):
    """Observed counts of ``dataset`` and the posterior-predictive median and band per reco bin.

    Parameters
    ----------
    result : `xarray.DataTree`
        From `bayesdl4.inference.sample` (needs ``posterior_predictive``).
    dataset : spectrum dataset
        The dataset the result was sampled on (gives the energy axis).
    quantiles : (float, float)
        Band limits.
    counts_off : bool
        Plot OFF counts instead of ON counts.
    yscale : {"log", "linear"}
        Axis scale for counts (bins with zero counts are not drawn on a log scale).
    """
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    var = f"{dataset.name}.counts_off" if counts_off else dataset.name
    pred = result["posterior_predictive"][var]
    dim = [d for d in pred.dims if d not in ("chain", "draw")][0]
    bins = pred[dim].values
    axis = dataset.energy_axis
    lo = axis.edges_min.to_value("TeV")[bins]
    hi = axis.edges_max.to_value("TeV")[bins]
    centre = np.sqrt(lo * hi)
    stacked = pred.values.reshape(-1, bins.size)
    q_lo, q_mid, q_hi = np.quantile(stacked, [quantiles[0], 0.5, quantiles[1]], axis=0)
    observed = result["observed_data"][var].values
    ax.fill_between(centre, q_lo, q_hi, step="mid", alpha=0.3, color="C0",
                    label=f"posterior predictive {int(100 * (quantiles[1] - quantiles[0]))}%")
    ax.step(centre, q_mid, where="mid", color="C0", label="posterior predictive median")
    ax.errorbar(centre, observed, xerr=[centre - lo, hi - centre], yerr=np.sqrt(observed), fmt="o",
                color="k", ms=3, label="observed")
    ax.set_xscale("log")
    if yscale == "log":
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.5)
    ax.set_xlabel("Energy [TeV]")
    ax.set_ylabel("OFF counts" if counts_off else "ON counts")
    ax.set_title(dataset.name)
    ax.legend(fontsize="small")
    return ax
