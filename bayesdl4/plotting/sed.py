"""SED plots: flux points with the posterior band of the model and the MAP curve, residuals below."""

import numpy as np
from astropy import units as u

__all__ = ["plot_sed", "sed_band"]

DNDE_UNIT = u.Unit("cm-2 s-1 TeV-1")
_Y_UNIT = {"dnde": DNDE_UNIT, "e2dnde": u.Unit("erg cm-2 s-1")}


def _sources(dataset):
    from ..graph.flux_points import sources

    return sources(dataset)


def _named_parameters(dataset):
    """``{"<model>.<parameter>": Parameter}`` as the inference layer names them."""
    from ..graph.params import unique_names

    return {name: par for name, par, _ in unique_names(list(_sources(dataset)))}


def _draws(posterior, names, n_draws, rng):
    """(n, len(names)) matrix of draws (chains flattened), at most ``n_draws`` rows."""
    if posterior is None:
        return None
    if hasattr(posterior, "children") and "posterior" in posterior.children:
        posterior = posterior["posterior"]
    columns = {}
    for name in names:
        try:
            values = posterior[name]
        except KeyError:
            continue
        columns[name] = np.asarray(getattr(values, "values", values), dtype=float).reshape(-1)
    if not columns:
        raise KeyError(f"the posterior holds none of the dataset's parameters {list(names)}")
    n = len(next(iter(columns.values())))
    rows = rng.choice(n, size=min(n, n_draws), replace=False) if n > n_draws else np.arange(n)
    return {name: column[rows] for name, column in columns.items()}


def _sed(dataset, energy, sed_type):
    """Sum of the sources' SED at ``energy`` (Quantity) for the current parameter values."""
    dnde = sum(m.spectral_model(energy).to(DNDE_UNIT) for m in _sources(dataset))
    if sed_type == "e2dnde":
        return (dnde * energy**2).to_value(_Y_UNIT["e2dnde"])
    return dnde.to_value(DNDE_UNIT)


def _map_values(map_values):
    if map_values is None:
        return {}
    parameters = getattr(map_values, "parameters", map_values)  # a FitResult or a dict
    return {k: float(getattr(v, "value", v)) for k, v in parameters.items()}


def sed_band(dataset, energy, posterior=None, map_values=None, sed_type="e2dnde", n_draws=400,
             random_seed=0):
    """Model SED on ``energy``: MAP curve and posterior quantiles.

    Parameters
    ----------
    dataset : `~bayesdl4.datasets.flux_points_dataset.FluxPointsDataset`
    energy : `~astropy.units.Quantity`, shape (n,)
    posterior : DataTree, Dataset or dict, optional
        Posterior draws by parameter name (``"<model>.<parameter>"``, shapes (chain, draw) or
        (draw,)), e.g. the result of `bayesdl4.inference.sample`.
    map_values : dict or `~bayesdl4.inference.FitResult`, optional
        Values of the MAP curve by parameter name (default: the models' current values).
    sed_type : {"e2dnde", "dnde"}
        ``e2dnde`` in erg cm-2 s-1, ``dnde`` in cm-2 s-1 TeV-1.

    Returns
    -------
    dict
        ``map`` (n,), and with a posterior ``quantiles`` (5, n) at 2.5, 16, 50, 84, 97.5 %.
    """
    named = _named_parameters(dataset)
    saved = {name: par.value for name, par in named.items()}
    try:
        for name, value in _map_values(map_values).items():
            if name in named:
                named[name].value = value
        out = {"map": _sed(dataset, energy, sed_type)}
        draws = _draws(posterior, list(named), n_draws, np.random.default_rng(random_seed))
        if draws is not None:
            n = len(next(iter(draws.values())))
            curves = np.empty((n, energy.size))
            for i in range(n):
                for name, column in draws.items():
                    named[name].value = column[i]
                curves[i] = _sed(dataset, energy, sed_type)
            out["quantiles"] = np.quantile(curves, [0.025, 0.16, 0.5, 0.84, 0.975], axis=0)
    finally:
        for name, value in saved.items():
            named[name].value = value
    return out


def _points(dataset, sed_type):
    """Values, (lower, upper) errors and upper limits of the dataset's points in ``sed_type``."""
    fp = dataset.data
    unit = _Y_UNIT[sed_type]
    value = fp.get(sed_type).to_value(unit)
    errors = {}
    for suffix in ("_err", "_errn", "_errp", "_ul"):
        try:
            errors[suffix] = fp.get(sed_type + suffix).to_value(unit)
        except AttributeError:
            errors[suffix] = np.full(value.shape, np.nan)
    lower = np.where(np.isfinite(errors["_errn"]), errors["_errn"], errors["_err"])
    upper = np.where(np.isfinite(errors["_errp"]), errors["_errp"], errors["_err"])
    return value, lower, upper, errors["_ul"]


def plot_sed(dataset, posterior=None, map_values=None, sed_type="e2dnde", energy_bounds=None,
             n_energy=100, n_draws=400, random_seed=0, figure=None):
    """Flux points, posterior band (median, 68 % and 95 %) and MAP curve; residuals below.

    Parameters
    ----------
    dataset : `~bayesdl4.datasets.flux_points_dataset.FluxPointsDataset`
        Points and models (the models' current values are the MAP curve unless ``map_values``).
    posterior, map_values, sed_type, n_draws, random_seed
        See `sed_band`.
    energy_bounds : `~astropy.units.Quantity`, optional
        Energy range of the curves (default: the points' range).
    figure : `matplotlib.figure.Figure`, optional

    Returns
    -------
    (ax_sed, ax_residuals)
        Residuals are ``(data - MAP) / MAP`` at the measured points with their errors, and the
        posterior band relative to the MAP curve.
    """
    import matplotlib.pyplot as plt

    fp = dataset.data
    unit = _Y_UNIT[sed_type]
    if energy_bounds is None:
        lo = fp.energy_min if fp.energy_min is not None else fp.energy_ref
        hi = fp.energy_max if fp.energy_max is not None else fp.energy_ref
        energy_bounds = u.Quantity([lo.min(), hi.max()])
    energy = np.geomspace(*energy_bounds.to_value("TeV"), n_energy) * u.TeV
    band = sed_band(dataset, energy, posterior, map_values, sed_type, n_draws, random_seed)
    at_points = sed_band(dataset, fp.energy_ref, None, map_values, sed_type)["map"]

    figure = figure or plt.figure(figsize=(8, 7))
    grid = figure.add_gridspec(2, 1, height_ratios=(3, 1), hspace=0.05)
    ax, ax_res = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    ax.sharex(ax_res)
    x = energy.to_value("TeV")
    if "quantiles" in band:
        q = band["quantiles"]
        ax.fill_between(x, q[0], q[4], color="C0", alpha=0.2, lw=0, label="posterior 95 %")
        ax.fill_between(x, q[1], q[3], color="C0", alpha=0.4, lw=0, label="posterior 68 %")
        ax.plot(x, q[2], color="C0", ls="--", lw=1, label="posterior median")
        ax_res.fill_between(x, q[0] / band["map"] - 1, q[4] / band["map"] - 1, color="C0", alpha=0.2, lw=0)
        ax_res.fill_between(x, q[1] / band["map"] - 1, q[3] / band["map"] - 1, color="C0", alpha=0.4, lw=0)
    ax.plot(x, band["map"], color="C3", lw=1.5, label="MAP")

    value, lower, upper, ul = _points(dataset, sed_type)
    e_ref = fp.energy_ref.to_value("TeV")
    xerr = None
    if fp.energy_min is not None:
        xerr = [e_ref - fp.energy_min.to_value("TeV"), fp.energy_max.to_value("TeV") - e_ref]
    is_ul = fp.is_ul
    measured = ~is_ul & np.isfinite(value)
    used = dataset.mask
    for sel, style in ((measured & used, dict(fmt="o", color="k")),
                       (measured & ~used, dict(fmt="o", color="0.6", mfc="white"))):
        if sel.any():
            xe = None if xerr is None else [xerr[0][sel], xerr[1][sel]]
            ax.errorbar(e_ref[sel], value[sel], xerr=xe, yerr=[lower[sel], upper[sel]], ms=4,
                        label="flux points" if style["color"] == "k" else "not fitted", **style)
            ax_res.errorbar(e_ref[sel], value[sel] / at_points[sel] - 1, xerr=xe,
                            yerr=[lower[sel] / at_points[sel], upper[sel] / at_points[sel]], ms=4,
                            **style)
    limits = is_ul & np.isfinite(ul)
    if limits.any():
        xe = None if xerr is None else [xerr[0][limits], xerr[1][limits]]
        ax.errorbar(e_ref[limits], ul[limits], xerr=xe, yerr=0.4 * ul[limits], uplims=True, fmt="none",
                    color="k", label="upper limits")
    ax.set_xscale("log")
    ax.set_yscale("log")
    label = "E$^2$ dN/dE" if sed_type == "e2dnde" else "dN/dE"
    ax.set_ylabel(f"{label} [{unit.to_string('latex_inline')}]")
    ax.legend(fontsize="small")
    ax.set_title(dataset.name)
    ax.tick_params(labelbottom=False)
    ax_res.axhline(0, color="C3", lw=1)
    ax_res.set_xlabel("Energy [TeV]")
    ax_res.set_ylabel("(data - MAP) / MAP")
    return ax, ax_res
