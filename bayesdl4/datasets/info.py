"""Summary numbers of datasets, as gammapy 2.1's ``info_dict`` / ``Datasets.info_table``.

Excess and significance use the counts statistics of gammapy: Cash (``n_on`` against the known
background) or WStat (``n_on``, ``n_off``, ``alpha``), summed over the bins first. The
statistics are evaluated with `bayesdl4.stats` (the same formulas as the likelihood).
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.table import Table, vstack
from astropy.time import Time

from ..errors import GeometryMismatchError
from ..stats import cash, wstat, wstat_profile_background
from .stack import stack_into, to_masked
from .tables import gti_from_intervals, gti_reference_time, gti_time_sum

__all__ = ["info_dict", "info_table", "datasets_gti", "datasets_meta_table", "energy_ranges"]


def _sqrt_ts(stat_null, stat_max, excess) -> float:
    ts = max(float(stat_null - stat_max), 0.0)
    return float(np.sign(excess) * np.sqrt(ts))


def _has_sources(dataset) -> bool:
    return any(getattr(m, "tag", ("",))[0] != "FoVBackgroundModel" for m in dataset.models or ())


def info_dict(dataset, in_safe_data_range=True) -> dict:
    """Summary of a dataset summed over its bins (within the safe mask by default).

    Keys as gammapy 2.1: ``name``, ``counts``, ``excess``, ``sqrt_ts``, ``background``,
    ``npred``, ``npred_background``, ``npred_signal``, ``exposure_min``, ``exposure_max``,
    ``livetime``, ``ontime``, ``counts_rate``, ``background_rate``, ``excess_rate``, ``n_bins``,
    ``n_fit_bins``, ``stat_type``, ``stat_sum``; ON/OFF datasets add ``counts_off``,
    ``acceptance``, ``acceptance_off`` and ``alpha``. Model-dependent numbers are NaN without
    models.
    """
    if dataset.mask_safe is not None and in_safe_data_range:
        mask = dataset.mask_safe.data.astype(bool)
    else:
        mask = np.ones(dataset.data_shape, dtype=bool)
    info = {"name": dataset.name}
    onoff = dataset.is_onoff
    counts = background = excess = sqrt_ts = np.nan
    n_on = 0.0
    if dataset.counts is not None:
        n_on = float(dataset.counts.data[mask].sum())
        counts = n_on
        if onoff and dataset.counts_off is not None:
            n_off = float(dataset.counts_off.data[mask].sum())
            alpha_n_off = float((dataset.alpha.data * dataset.counts_off.data)[mask].sum())
            alpha = alpha_n_off / n_off if n_off > 0 else np.nan
            background = alpha_n_off
            excess = n_on - alpha_n_off
            a = alpha if np.isfinite(alpha) else 0.0
            sqrt_ts = _sqrt_ts(wstat(n_on, n_off, a, 0.0), wstat(n_on, n_off, a, excess), excess)
        elif not onoff and dataset.background is not None:
            mu_bkg = _npred_background(dataset)
            background = float(dataset.background.data[mask].sum())
            mu = float(mu_bkg[mask].sum())
            excess = n_on - mu
            sqrt_ts = _sqrt_ts(cash(n_on, mu), cash(n_on, n_on), excess)
    info["counts"] = int(round(counts)) if np.isfinite(counts) else 0
    info["excess"] = float(excess)
    info["sqrt_ts"] = float(sqrt_ts)
    info["background"] = float(background)

    signal = dataset.npred_signal().data if _has_sources(dataset) else None
    npred_background = np.nan
    if onoff and dataset.counts_off is not None and dataset.counts is not None:
        mu_sig = np.zeros(dataset.data_shape) if signal is None else signal
        mu_bkg = wstat_profile_background(
            dataset.counts.data, dataset.counts_off.data, dataset.alpha.data, mu_sig
        )
        npred_background = float((dataset.alpha.data * np.nan_to_num(mu_bkg))[mask].sum())
    elif not onoff and dataset.background is not None:
        npred_background = float(_npred_background(dataset)[mask].sum())
    info["npred"] = float(
        np.nan
        if not (dataset.models or np.isfinite(npred_background))
        else (0.0 if signal is None else signal[mask].sum())
        + (0.0 if not np.isfinite(npred_background) else npred_background)
    )
    info["npred_background"] = float(npred_background)
    info["npred_signal"] = float(np.nan if signal is None else signal[mask].sum())

    exposure_min = exposure_max = np.nan * u.Unit("m2 s")
    livetime = np.nan * u.s
    if dataset.exposure is not None:
        exposure = dataset.exposure.quantity
        select = exposure.value > 0
        if dataset.mask_safe is not None:
            select = select & np.any(dataset.mask_safe.data.astype(bool), axis=0)[None]
        if not select.any():
            select = np.ones(exposure.shape, dtype=bool)
        exposure_min, exposure_max = np.min(exposure[select]), np.max(exposure[select])
        if dataset.livetime is not None:
            livetime = dataset.livetime.to("s")
    info["exposure_min"] = exposure_min
    info["exposure_max"] = exposure_max
    info["livetime"] = livetime
    info["ontime"] = gti_time_sum(dataset.gti) if dataset.gti is not None else np.nan * u.s
    info["counts_rate"] = info["counts"] / livetime
    info["background_rate"] = info["background"] / livetime
    info["excess_rate"] = info["excess"] / livetime
    info["n_bins"] = int(0 if dataset.counts is None else dataset.counts.data.size)
    info["n_fit_bins"] = int(0 if dataset.mask is None else np.sum(dataset.mask))
    info["stat_type"] = dataset.stat_type
    stat_sum = np.nan
    # gammapy: Cash datasets need models; ON/OFF datasets always have a statistic (WStat)
    if dataset.counts is not None and (dataset.models is not None or onoff):
        stat_sum = dataset.stat_sum()
    info["stat_sum"] = float(stat_sum)
    if onoff:
        n_off = 0.0 if dataset.counts_off is None else float(dataset.counts_off.data[mask].sum())
        info["counts_off"] = int(round(n_off))
        acceptance = (
            1.0 if dataset.acceptance is None else float(dataset.acceptance.data[mask].sum())
        )
        info["acceptance"] = acceptance
        alpha = background / n_off if n_off > 0 else np.nan
        info["acceptance_off"] = (
            float(acceptance / alpha) if np.isfinite(alpha) and alpha else np.nan
        )
        info["alpha"] = float(alpha)
    return info


def _npred_background(dataset) -> np.ndarray:
    """Background prediction of a Cash dataset (FoV background models applied), counts shape."""
    has_model = any(
        getattr(m, "tag", ("",))[0] == "FoVBackgroundModel" for m in dataset.models or ()
    )
    if has_model:
        return dataset.npred_background().data
    return dataset.background.data


def info_table(datasets, cumulative=False) -> Table:
    """One `info_dict` row per dataset; ``cumulative``: the row after stacking each one in turn
    (model-dependent numbers then refer to the stacks, which carry no models)."""
    datasets = list(datasets)
    if len({type(d) for d in datasets}) > 1:
        raise GeometryMismatchError(
            "info_table: the datasets are of different types "
            f"{sorted({d.tag for d in datasets})}; make a table per type"
        )
    rows = []
    if cumulative:
        stacked = to_masked(datasets[0], name="stacked")
        rows.append(info_dict(stacked))
        for dataset in datasets[1:]:
            stack_into(stacked, dataset)
            rows.append(info_dict(stacked))
    else:
        rows = [info_dict(d) for d in datasets]
    return Table(rows)


def datasets_gti(datasets) -> Table | None:
    """One interval per dataset, from its first GTI start to its last GTI stop (gammapy's
    ``Datasets.gti``), referenced to 2000-01-01 TT; None when no dataset has a GTI."""
    intervals = []
    for dataset in datasets:
        gti = dataset.gti
        if gti is None or len(gti) == 0:
            continue
        reference = gti_reference_time(gti)
        start = u.Quantity(gti["START"][0], gti["START"].unit or "s")
        stop = u.Quantity(gti["STOP"][-1], gti["STOP"].unit or "s")
        intervals.append((reference + start, reference + stop))
    return gti_from_intervals(intervals, reference_time=Time("2000-01-01T00:00:00", scale="tt"))


def datasets_meta_table(datasets) -> Table:
    """The datasets' meta tables stacked, with ``NAME`` and ``TYPE`` columns first (gammapy's)."""
    datasets = list(datasets)
    tables = [d.meta_table for d in datasets]
    # rows line up with the datasets only when every dataset has a meta table
    table = Table() if any(t is None for t in tables) else vstack(tables).copy()
    table.add_column([d.tag for d in datasets], index=0, name="TYPE")
    table.add_column([d.name for d in datasets], index=0, name="NAME")
    return table


def energy_ranges(datasets):
    """(energy_min, energy_max) Quantities: each dataset's reco-energy axis bounds (gammapy's)."""
    datasets = list(datasets)
    unit = datasets[0].energy_axis.unit
    lo = u.Quantity([d.energy_axis.edges[0].to(unit) for d in datasets])
    hi = u.Quantity([d.energy_axis.edges[-1].to(unit) for d in datasets])
    return lo, hi
