"""Small random datasets of the four types for stacking and reduction tests, plus numpy npred
references (the same predictions as the graphs, written directly on the arrays)."""

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from scipy.signal import fftconvolve

from bayesdl4.datasets import MapDataset, MapDatasetOnOff, SpectrumDataset, SpectrumDatasetOnOff
from bayesdl4.irf import EDispKernel, EDispKernelMap, PSFMap
from bayesdl4.maps import MapAxis, RegionGeom, RegionNDMap, WcsGeom, WcsNDMap
from bayesdl4.models import PointSpatialModel, PowerLawSpectralModel, SkyModel

CENTER = SkyCoord(83.63, 22.01, unit="deg", frame="icrs")
ENERGY = MapAxis.from_energy_bounds(0.3 * u.TeV, 30 * u.TeV, 8, name="energy")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.1 * u.TeV, 100 * u.TeV, 12, name="energy_true")
MAP_ENERGY = MapAxis.from_energy_bounds(1 * u.TeV, 100 * u.TeV, 4, name="energy")
MAP_ENERGY_TRUE = MapAxis.from_energy_bounds(0.5 * u.TeV, 200 * u.TeV, 6, name="energy_true")


def gti(start, stop, mjdref=51910.0):
    table = Table({"START": np.atleast_1d(start) * u.s, "STOP": np.atleast_1d(stop) * u.s})
    table.meta.update({"MJDREFI": int(mjdref), "MJDREFF": mjdref - int(mjdref), "TIMESYS": "tt"})
    return table


def source_model(name="src", index=2.3, amplitude="3e-11 cm-2 s-1 TeV-1"):
    """A power law at `CENTER` (spectra use its spectral part)."""
    spatial = PointSpatialModel(lon_0=CENTER.ra, lat_0=CENTER.dec, frame="icrs")
    return SkyModel(PowerLawSpectralModel(index=index, amplitude=amplitude), spatial, name=name)


def random_spectrum(rng, name, onoff=False, threshold_bin=None, sigma=None, livetime=None):
    """A spectrum with random counts, exposure, Gaussian energy dispersion and safe threshold."""
    geom = RegionGeom(None, [ENERGY.copy()])
    geom_true = RegionGeom(None, [ENERGY_TRUE.copy()])
    livetime = rng.uniform(0.5, 3) * u.h if livetime is None else livetime
    area = 1e9 * (1 - np.exp(-ENERGY_TRUE.center.to_value("TeV") / rng.uniform(0.2, 1)))
    exposure = RegionNDMap(geom_true, area * livetime.to_value("s"), unit="cm2 s")
    sigma = rng.uniform(0.08, 0.3) if sigma is None else sigma
    edisp = EDispKernel.from_gauss(ENERGY_TRUE, ENERGY, sigma=sigma, bias=rng.uniform(-0.05, 0.05))
    threshold_bin = int(rng.integers(0, 4)) if threshold_bin is None else threshold_bin
    safe = np.arange(ENERGY.nbin) >= threshold_bin
    kwargs = dict(
        counts=RegionNDMap(geom, rng.poisson(20, ENERGY.nbin).astype(float)),
        exposure=exposure,
        edisp=edisp,
        mask_safe=RegionNDMap(geom, safe),
        livetime=livetime,
        gti=gti(rng.uniform(0, 1e4), rng.uniform(2e4, 3e4)),
        meta_table=Table(
            {"OBS_ID": [int(rng.integers(1000, 9999))], "ZEN_PNT": [rng.uniform(0, 60)]}
        ),
        name=name,
    )
    if not onoff:
        return SpectrumDataset(
            background=RegionNDMap(geom, rng.uniform(0.5, 5, ENERGY.nbin)), **kwargs
        )
    counts_off = rng.poisson(40, ENERGY.nbin).astype(float)
    counts_off[-1] = 0.0  # a (safe) bin without OFF counts
    return SpectrumDatasetOnOff(
        counts_off=RegionNDMap(geom, counts_off),
        acceptance=RegionNDMap(geom, np.ones(ENERGY.nbin)),
        acceptance_off=RegionNDMap(geom, rng.uniform(3, 12, ENERGY.nbin)),
        **kwargs,
    )


def random_map(rng, name, onoff=False, threshold_bin=None, psf_sigma=None, npix=9, binsz=0.1):
    """A small map dataset: uniform exposure (the PSF and edisp exposure maps equal it, so that
    exposure-weighted IRFs are exact), Gaussian PSF and energy dispersion, a safe threshold."""
    geom = WcsGeom.create(
        skydir=CENTER, binsz=binsz, npix=(npix, npix), frame="icrs", axes=[MAP_ENERGY.copy()]
    )
    base = MapDataset.create(
        geom, energy_axis_true=MAP_ENERGY_TRUE.copy(), binsz_irf=0.3, name=name
    )
    exposure_true = rng.uniform(1e9, 4e9) * np.linspace(0.5, 1.5, MAP_ENERGY_TRUE.nbin)
    exposure = base.exposure.copy(
        data=exposure_true[:, None, None] * np.ones(base.exposure.data.shape), unit="m2 s"
    )
    exposure.meta["livetime"] = f"{rng.uniform(1e3, 1e4)!r} s"
    psf_sigma = rng.uniform(0.1, 0.3) if psf_sigma is None else psf_sigma
    psf = PSFMap.from_gauss(
        MAP_ENERGY_TRUE,
        sigma=psf_sigma * np.linspace(1.2, 0.8, MAP_ENERGY_TRUE.nbin) * u.deg,
        geom=base.psf.psf_map.geom.to_image(),
    )
    psf.exposure_map.data[...] = exposure_true[:, None, None, None]
    kernel = EDispKernel.from_gauss(MAP_ENERGY_TRUE, MAP_ENERGY, sigma=rng.uniform(0.08, 0.3))
    edisp = EDispKernelMap.from_edisp_kernel(kernel, geom=base.edisp.edisp_map.geom.to_image())
    edisp.exposure_map.data[...] = exposure_true[:, None, None, None]
    threshold_bin = int(rng.integers(0, 3)) if threshold_bin is None else threshold_bin
    safe = np.zeros(geom.data_shape, dtype=bool)
    safe[threshold_bin:] = True
    kwargs = dict(
        counts=WcsNDMap(geom, rng.poisson(3, geom.data_shape).astype(float)),
        exposure=exposure,
        psf=psf,
        edisp=edisp,
        mask_safe=WcsNDMap(geom, safe),
        gti=gti(rng.uniform(0, 1e4), rng.uniform(2e4, 3e4)),
        meta_table=Table({"OBS_ID": [int(rng.integers(1000, 9999))]}),
        name=name,
    )
    if not onoff:
        return MapDataset(background=WcsNDMap(geom, rng.uniform(0.1, 1, geom.data_shape)), **kwargs)
    return MapDatasetOnOff(
        counts_off=WcsNDMap(geom, rng.poisson(10, geom.data_shape).astype(float)),
        acceptance=WcsNDMap(geom, np.ones(geom.data_shape)),
        acceptance_off=WcsNDMap(geom, rng.uniform(3, 12, geom.data_shape)),
        **kwargs,
    )


def flux_true(model, axis):
    """Integrated flux per true-energy bin [cm-2 s-1] (numpy)."""
    return model.spectral_model.integral(axis.edges_min, axis.edges_max).to_value("cm-2 s-1")


def npred_spectrum(dataset, model):
    """(flux x exposure) @ edisp: the predicted source counts per reco bin, shape (n_reco,)."""
    flux = flux_true(model, dataset.energy_axis_true)
    exposure = dataset.exposure.quantity.to_value("cm2 s").reshape(-1)
    return (flux * exposure) @ dataset.edisp.pdf_matrix


def npred_map(dataset, model):
    """Point source at `CENTER` (a pixel centre): flux x exposure deposited in its pixel,
    convolved with the PSF kernel there, then redistributed by the edisp kernel there."""
    geom_true = dataset.exposure.geom
    flux = flux_true(model, dataset.energy_axis_true)
    x, y = geom_true.to_image().coord_to_pix(CENTER)
    ix, iy = int(round(float(x))), int(round(float(y)))
    exposure = dataset.exposure.quantity.to_value("cm2 s")[:, iy, ix]
    deposit = np.zeros(geom_true.data_shape)
    deposit[:, iy, ix] = flux * exposure
    kernel = dataset.psf.get_psf_kernel(geom_true, position=CENTER).data
    convolved = np.stack(
        [fftconvolve(d, k, mode="same") for d, k in zip(deposit, kernel, strict=True)]
    )
    pdf = dataset.edisp.get_edisp_kernel(position=CENTER).pdf_matrix
    return np.einsum("lyx,lk->kyx", convolved, pdf)
