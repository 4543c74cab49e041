"""Simulated spectra with simple built-in IRFs, for demos, tests, studies and benchmarks.

`simulate_spectrum_runs` makes N runs with varying livetime, offset-dependent exposure and safe
thresholds in plain numpy (no graph is compiled or evaluated per run: the source flux per true
bin is integrated once), deterministic for a seed. `simple_irf_dataset` and
`simulate_spectrum_onoff` make single datasets; ``dataset.fake()`` (`bayesdl4.datasets.fake`)
redraws the counts of any dataset from its prediction.
"""

import numpy as np
from astropy import units as u
from astropy.table import Table

from ..errors import ModelError
from ..irf import EDispKernel
from ..maps import MapAxis, RegionGeom, RegionNDMap
from .core import Datasets
from .fake import as_rng
from .spectrum import SpectrumDataset, SpectrumDatasetOnOff

__all__ = ["simple_irf_dataset", "simulate_spectrum_onoff", "simulate_spectrum_runs", "fake_counts"]

OFFSET_SCALE_DEG = 2.5  # Gaussian fall-off of the effective area with the offset from the pointing


def _effective_area(energy_tev, area_max_m2=1e5, threshold_tev=0.1):
    """Smooth IACT-like effective area [m2]: rises above ``threshold`` and saturates."""
    x = np.log10(energy_tev / threshold_tev)
    return area_max_m2 / (1 + np.exp(-4.0 * x))


def offset_threshold_tev(offset_deg, threshold_tev=0.1):
    """Energy threshold [TeV] at ``offset_deg`` from the pointing: rises as 1 + (offset / 2 deg)^2."""
    return threshold_tev * (1 + (np.asarray(offset_deg) / 2.0) ** 2)


def offset_effective_area(energy_tev, offset_deg, area_max_m2=1e5, threshold_tev=0.1):
    """Effective area [m2] at ``offset_deg``: a Gaussian fall-off (2.5 deg) of the on-axis area
    with the threshold of `offset_threshold_tev`; shape (n_offset, n_energy) for arrays."""
    offset = np.atleast_1d(offset_deg)[:, None]
    area = _effective_area(
        energy_tev[None, :], area_max_m2, offset_threshold_tev(offset, threshold_tev)
    )
    return area * np.exp(-0.5 * (offset / OFFSET_SCALE_DEG) ** 2)


def simple_irf_dataset(
    name="sim",
    livetime="1 h",
    energy_bounds=("0.1 TeV", "100 TeV"),
    nbin_per_decade=10,
    resolution=0.1,
    background_rate="1e-3 s-1 TeV-1",
    background_index=2.7,
):
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
    energy_axis = MapAxis.from_energy_bounds(
        emin, emax, nbin_per_decade, per_decade=True, name="energy"
    )
    energy_axis_true = MapAxis.from_energy_bounds(
        emin / 2, emax * 2, 2 * nbin_per_decade, per_decade=True, name="energy_true"
    )
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
        counts=counts,
        counts_off=counts_off,
        acceptance=RegionNDMap(geom, np.ones(geom.data_shape)),
        acceptance_off=RegionNDMap(geom, np.full(geom.data_shape, 1 / alpha)),
        exposure=dataset.exposure,
        edisp=dataset.edisp,
        mask_safe=dataset.mask_safe,
        gti=dataset.gti,
        livetime=dataset.livetime,
        name=name,
    )
    onoff.models = models
    return onoff


def _range(value, n, rng, unit):
    """``n`` values: a (low, high) pair is drawn log-uniformly, a scalar repeated, an array taken."""
    if isinstance(value, tuple) and len(value) == 2:
        lo, hi = (u.Quantity(v, unit).value for v in value)
        if lo <= 0 or hi < lo:
            return rng.uniform(lo, hi, n)
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    values = np.broadcast_to(u.Quantity(value, unit).value, (n,)).astype(float)
    return values.copy()


def simulate_spectrum_runs(
    models,
    n_runs,
    random_seed=0,
    onoff=True,
    livetime=("0.25 h", "2 h"),
    offset=(0.3, 2.0),
    energy_bounds=("0.1 TeV", "100 TeV"),
    nbin_per_decade=10,
    resolution=0.1,
    alpha=0.2,
    threshold="0.5 TeV",
    safe_fraction=0.1,
    background_rate="1e-3 s-1 TeV-1",
    background_index=2.7,
    name_prefix="run",
):
    """N simulated runs of one source with varying observing conditions, as `Datasets`.

    Each run j has a livetime and an offset from the pointing (drawn log-uniformly / uniformly
    from the given ranges, or given per run); its effective area falls with the offset and its
    threshold rises (`offset_effective_area`); its safe range starts at the first reco bin whose
    lower edge lies above the energy where the area reaches ``safe_fraction`` of its maximum
    (gammapy's ``aeff-max`` method); the energy resolution widens with the offset
    (``resolution x (1 + offset / 4 deg)``). Counts are Poisson draws of the source (the models'
    flux, integrated once for all runs) plus a power-law background; ON/OFF runs get OFF counts
    with ``alpha``.

    Parameters
    ----------
    models : `SkyModel`, list or `Models`
        Source models (spectral parts are used); they are given to the runs.
    n_runs : int
    random_seed : int or `numpy.random.Generator`
        Same seed, same runs.
    onoff : bool
        `SpectrumDatasetOnOff` runs (else `SpectrumDataset` with the true background).
    livetime : (Quantity, Quantity), Quantity or array
        Range (log-uniform) or values of the livetimes.
    offset : (float, float), float or array
        Range (uniform) or values of the offsets [deg].
    energy_bounds, nbin_per_decade, resolution, background_rate, background_index
        As `simple_irf_dataset`; the true-energy axis extends the reco axis by 2 at both ends.
    alpha : float
        ON/OFF exposure ratio.
    threshold : Quantity
        Energy where the on-axis effective area reaches half its maximum.
    safe_fraction : float
        Fraction of the maximum effective area that sets the safe threshold.
    name_prefix : str
        Runs are named ``<prefix><index>`` (zero-padded).

    Returns
    -------
    Datasets
        With ``meta_table`` columns ``OBS_ID``, ``LIVETIME`` [s], ``OFFSET`` [deg] and
        ``E_THRESH`` [TeV] per run.
    """
    from ..models import Models

    n_runs = int(n_runs)
    if n_runs < 1:
        raise ModelError(f"simulate_spectrum_runs: n_runs must be >= 1, got {n_runs}")
    models = Models(models)
    if not len(models):
        raise ModelError("simulate_spectrum_runs: give at least one source model")
    rng = as_rng(random_seed)
    livetimes = _range(livetime, n_runs, rng, "s")
    offsets = (
        rng.uniform(*offset, n_runs)
        if isinstance(offset, tuple)
        else _range(offset, n_runs, rng, "")
    )

    emin, emax = (u.Quantity(e).to("TeV") for e in energy_bounds)
    energy_axis = MapAxis.from_energy_bounds(
        emin, emax, nbin_per_decade, per_decade=True, name="energy"
    )
    energy_axis_true = MapAxis.from_energy_bounds(
        emin / 2, emax * 2, 2 * nbin_per_decade, per_decade=True, name="energy_true"
    )
    geom, geom_true = RegionGeom(None, [energy_axis]), RegionGeom(None, [energy_axis_true])
    lo_true, hi_true = energy_axis_true.edges_min, energy_axis_true.edges_max
    flux = sum(m.spectral_model.integral(lo_true, hi_true).to_value("cm-2 s-1") for m in models)
    centres_true = energy_axis_true.center.to_value("TeV")
    threshold_tev = u.Quantity(threshold).to_value("TeV")
    area = offset_effective_area(centres_true, offsets, threshold_tev=threshold_tev) * 1e4  # cm2
    lo, hi = energy_axis.edges_min.to_value("TeV"), energy_axis.edges_max.to_value("TeV")
    g = background_index
    bkg_per_s = (
        u.Quantity(background_rate).to_value("s-1 TeV-1")
        * (hi ** (1 - g) - lo ** (1 - g))
        / (1 - g)
    )
    # safe threshold: where the area (fine grid) first reaches safe_fraction of its maximum
    fine = np.geomspace(centres_true[0], centres_true[-1], 2000)
    fine_area = offset_effective_area(fine, offsets, threshold_tev=threshold_tev)
    e_safe = fine[
        np.argmax(fine_area >= safe_fraction * fine_area.max(axis=1, keepdims=True), axis=1)
    ]

    runs, width = [], len(str(n_runs - 1))
    for j in range(n_runs):
        name = f"{name_prefix}{j:0{width}d}"
        exposure = area[j] * livetimes[j]
        edisp = EDispKernel.from_gauss(
            energy_axis_true, energy_axis, sigma=resolution * (1 + offsets[j] / 4)
        )
        signal = (flux * exposure) @ edisp.pdf_matrix
        background = bkg_per_s * livetimes[j]
        counts = rng.poisson(signal + background).astype(float)
        kwargs = dict(
            counts=RegionNDMap(geom, counts),
            exposure=RegionNDMap(geom_true, exposure, unit="cm2 s"),
            edisp=edisp,
            mask_safe=RegionNDMap(geom, lo >= e_safe[j]),
            gti=Table({"START": [0.0] * u.s, "STOP": [livetimes[j]] * u.s}),
            livetime=livetimes[j] * u.s,
            meta_table=Table(
                {
                    "OBS_ID": [j],
                    "LIVETIME": [livetimes[j]] * u.s,
                    "OFFSET": [offsets[j]] * u.deg,
                    "E_THRESH": [e_safe[j]] * u.TeV,
                }
            ),
            name=name,
        )
        if onoff:
            counts_off = rng.poisson(background / alpha).astype(float)
            dataset = SpectrumDatasetOnOff(
                counts_off=RegionNDMap(geom, counts_off),
                acceptance=RegionNDMap(geom, np.ones(geom.data_shape)),
                acceptance_off=RegionNDMap(geom, np.full(geom.data_shape, 1 / alpha)),
                **kwargs,
            )
        else:
            dataset = SpectrumDataset(background=RegionNDMap(geom, background), **kwargs)
        runs.append(dataset)
    datasets = Datasets(runs)
    datasets.models = models
    return datasets
