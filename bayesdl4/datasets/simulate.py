"""Poisson fakes and simple built-in IRFs, for demos, tests and simulation studies."""

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..irf import EDispKernel
from ..maps import MapAxis, RegionGeom, RegionNDMap
from .spectrum import SpectrumDataset, SpectrumDatasetOnOff

__all__ = ["simple_irf_dataset", "simulate_spectrum_onoff", "fake_counts"]


def _effective_area(energy_tev, area_max_m2=1e5, threshold_tev=0.1):
    """Smooth IACT-like effective area [m2]: rises above ``threshold`` and saturates."""
    x = np.log10(energy_tev / threshold_tev)
    return area_max_m2 / (1 + np.exp(-4.0 * x))


def simple_irf_dataset(name="sim", livetime="1 h", energy_bounds=("0.1 TeV", "100 TeV"), nbin_per_decade=10,
                       resolution=0.1, background_rate="1e-3 s-1 TeV-1", background_index=2.7):
    """A `SpectrumDataset` with built-in IRFs and zero counts.

    Parameters
    ----------
    livetime : Quantity
    energy_bounds : (Quantity, Quantity)
        Reco-energy range; the true-energy axis extends it by a factor 2 at both ends.
    nbin_per_decade : int
    resolution : float
        Relative Gaussian energy resolution (sigma of ln E).
    background_rate : Quantity
        Background rate in the ON region at 1 TeV [s-1 TeV-1].
    background_index : float
        Power-law index of the background rate.
    """
    livetime = u.Quantity(livetime).to("s")
    emin, emax = (u.Quantity(e).to("TeV") for e in energy_bounds)
    energy_axis = MapAxis.from_energy_bounds(emin, emax, nbin_per_decade, per_decade=True, name="energy")
    energy_axis_true = MapAxis.from_energy_bounds(emin / 2, emax * 2, 2 * nbin_per_decade, per_decade=True,
                                                  name="energy_true")
    geom = RegionGeom(None, [energy_axis])
    geom_true = RegionGeom(None, [energy_axis_true])
    area = _effective_area(energy_axis_true.center.to_value("TeV")) * u.m**2
    exposure = RegionNDMap(geom_true, (area * livetime).to_value("cm2 s"), unit="cm2 s")
    edisp = EDispKernel.from_gauss(energy_axis_true, energy_axis, sigma=resolution)
    rate = u.Quantity(background_rate).to_value("s-1 TeV-1")
    lo, hi = energy_axis.edges_min.to_value("TeV"), energy_axis.edges_max.to_value("TeV")
    g = background_index
    bkg = rate * livetime.value * (hi ** (1 - g) - lo ** (1 - g)) / (1 - g)
    gti = Table({"START": [0.0] * u.s, "STOP": [livetime.value] * u.s})
    return SpectrumDataset(
        counts=RegionNDMap(geom, np.zeros(geom.data_shape)),
        exposure=exposure,
        edisp=edisp,
        background=RegionNDMap(geom, bkg),
        mask_safe=RegionNDMap(geom, np.ones(geom.data_shape, dtype=bool)),
        gti=gti,
        livetime=livetime,
        name=name,
    )


def fake_counts(dataset, random_seed=None):
    """Replace ``dataset.counts`` by a Poisson draw of its npred (in place); returns the dataset."""
    rng = np.random.default_rng(random_seed)
    npred = dataset.npred().data
    dataset.counts = RegionNDMap(dataset.counts.geom, rng.poisson(npred).astype(float))
    return dataset


def simulate_spectrum_onoff(models, name="sim", alpha=0.2, random_seed=None, **irf_kwargs):
    """Simulate an ON/OFF spectrum with the built-in IRFs of `simple_irf_dataset`.

    ON counts ~ Poisson(npred_signal + background), OFF counts ~ Poisson(background / alpha).
    """
    rng = np.random.default_rng(random_seed)
    dataset = simple_irf_dataset(name=name, **irf_kwargs)
    dataset.models = models
    signal = dataset.npred_signal().data
    background = dataset.background.data
    geom = dataset.counts.geom
    counts = RegionNDMap(geom, rng.poisson(signal + background).astype(float))
    counts_off = RegionNDMap(geom, rng.poisson(background / alpha).astype(float))
    onoff = SpectrumDatasetOnOff(
        counts=counts, counts_off=counts_off,
        acceptance=RegionNDMap(geom, np.ones(geom.data_shape)),
        acceptance_off=RegionNDMap(geom, np.full(geom.data_shape, 1 / alpha)),
        exposure=dataset.exposure, edisp=dataset.edisp, mask_safe=dataset.mask_safe, gti=dataset.gti,
        livetime=dataset.livetime, name=name,
    )
    onoff.models = models
    return onoff
