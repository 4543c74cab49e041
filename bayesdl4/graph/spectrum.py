"""Spectrum datasets -> compact PyTensor graphs of predicted counts and per-bin statistics.

Only what can change the likelihood enters the graph: reco bins outside the mask are dropped, and
true-energy bins with no exposure or no probability of reaching a fitted reco bin are dropped.
Datasets with the same true-energy binning and the same models share one flux integral.
"""

from dataclasses import dataclass

import numpy as np
import pytensor.tensor as pt
from astropy import units as u

from ..errors import ModelError
from ..models import SkyModel
from ..stats import cash, wstat, wstat_profile_background

__all__ = ["SpectrumGraphData", "prepare_spectrum", "FluxCache", "npred_signal_tensor", "stat_tensor"]

EXPOSURE_UNIT = u.Unit("cm2 s")


@dataclass
class SpectrumGraphData:
    """Numpy constants of one spectrum dataset, restricted to the bins the graph needs.

    ``bins`` are the reco bins kept (indices into the full axis), ``rows`` the true-energy bins kept.
    """

    name: str
    stat_type: str
    bins: np.ndarray
    rows: np.ndarray
    energy_edges_true: np.ndarray  # TeV, full axis (n_true + 1,)
    exposure: np.ndarray  # cm2 s, (len(rows),)
    pdf: np.ndarray  # (len(rows), len(bins))
    counts: np.ndarray  # (len(bins),)
    background: np.ndarray | None
    counts_off: np.ndarray | None
    alpha: np.ndarray | None
    models: tuple

    @property
    def edges_key(self):
        return self.energy_edges_true.tobytes()


def prepare_spectrum(dataset, all_bins=False):
    """Extract the constants of ``dataset``; ``all_bins`` keeps every reco bin (for npred maps)."""
    if dataset.counts is None or dataset.exposure is None or dataset.edisp is None:
        raise ModelError(f"dataset {dataset.name!r}: counts, exposure and edisp are needed to predict counts")
    n_reco = dataset.energy_axis.nbin
    bins = np.arange(n_reco) if all_bins else np.flatnonzero(dataset.mask_bins)
    exposure = dataset.exposure.quantity.to_value(EXPOSURE_UNIT).reshape(-1)
    pdf = dataset.edisp.pdf_matrix
    reach = pdf[:, bins].sum(axis=1) > 0
    rows = np.flatnonzero(reach & (exposure > 0))
    edges_true = dataset.energy_axis_true.edges.to_value("TeV")
    onoff = dataset.stat_type == "wstat"
    background = None
    if not onoff and dataset.background is not None:
        background = dataset.background.data.reshape(-1)[bins].astype(float)
    return SpectrumGraphData(
        name=dataset.name,
        stat_type=dataset.stat_type,
        bins=bins,
        rows=rows,
        energy_edges_true=edges_true,
        exposure=exposure[rows],
        pdf=pdf[np.ix_(rows, bins)],
        counts=dataset.counts.data.reshape(-1)[bins].astype(float),
        background=background,
        counts_off=dataset.counts_off.data.reshape(-1)[bins].astype(float) if onoff else None,
        alpha=dataset.alpha.data.reshape(-1)[bins].astype(float) if onoff else None,
        # background models (FoV norms) do not apply to spectra; only sources add counts
        models=tuple(m for m in dataset.models or () if isinstance(m, SkyModel)),
    )


class FluxCache:
    """Integrated source flux per true-energy bin, shared by datasets with the same binning and models.

    Call ``register`` for every dataset first, then ``flux`` builds each integral once over the
    union of the rows the datasets need.
    """

    def __init__(self, pvals):
        self.pvals = pvals
        self._rows = {}
        self._flux = {}

    @staticmethod
    def _key(data, model_names=None):
        models = tuple(m for m in data.models if model_names is None or m.name in model_names)
        return data.edges_key, tuple(id(m) for m in models), models

    def register(self, data, model_names=None):
        key = self._key(data, model_names)[:2]
        self._rows[key] = np.union1d(self._rows.get(key, np.array([], dtype=int)), data.rows)

    def flux(self, data, model_names=None):
        """Flux tensor (cm-2 s-1) on ``data.rows``; None when no model applies."""
        edges_key, ids, models = self._key(data, model_names)
        if not models:
            return None
        key = (edges_key, ids)
        if key not in self._rows:
            self.register(data, model_names)
        union = self._rows[key]
        if key not in self._flux:
            edges = data.energy_edges_true
            lo, hi = edges[:-1][union], edges[1:][union]
            total = None
            for model in models:
                term = model.spectral_model.integral_tensor(lo, hi, self.pvals)
                total = term if total is None else total + term
            self._flux[key] = total
        flux = self._flux[key]
        if np.array_equal(union, data.rows):
            return flux
        return flux[np.searchsorted(union, data.rows)]


def npred_signal_tensor(data, flux_cache, model_names=None):
    """Predicted source counts on ``data.bins``: (flux x exposure) @ edisp."""
    flux = flux_cache.flux(data, model_names)
    if flux is None or data.rows.size == 0:
        return pt.zeros(data.bins.size)
    return pt.dot(flux * data.exposure, data.pdf)


def stat_tensor(data, npred_signal):
    """Per-bin fit statistic (gammapy's -2 ln L terms) on ``data.bins``."""
    counts = pt.as_tensor(data.counts)
    if data.stat_type == "wstat":
        return wstat(counts, pt.as_tensor(data.counts_off), pt.as_tensor(data.alpha), npred_signal)
    mu = npred_signal if data.background is None else npred_signal + data.background
    return cash(counts, mu)


def npred_background_tensor(data, npred_signal):
    """Background counts in the ON region: fixed background, or alpha x profiled OFF mean for WStat."""
    if data.stat_type == "wstat":
        mu_bkg = wstat_profile_background(
            pt.as_tensor(data.counts), pt.as_tensor(data.counts_off), pt.as_tensor(data.alpha), npred_signal
        )
        return data.alpha * mu_bkg, mu_bkg
    if data.background is None:
        return pt.zeros(data.bins.size), None
    return pt.as_tensor(data.background), None
