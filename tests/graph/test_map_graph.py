"""Map npred graph: gammapy's HAWC numbers, compact likelihood, gradients across pixel boundaries."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.map import MapDataset
from bayesdl4.inference import logp_function
from bayesdl4.irf import PSFMap
from bayesdl4.maps import MapAxis, WcsGeom, WcsNDMap
from bayesdl4.models import (
    FoVBackgroundModel,
    LogParabolaSpectralModel,
    Models,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)
from tests.conftest import gammapy_data

CRAB = dict(lon_0=83.63 * u.deg, lat_0=22.02 * u.deg)
LP = dict(amplitude=3.5e-13 * u.Unit("cm-2 s-1 TeV-1"), reference=7 * u.TeV, alpha=2.8, beta=0.12)


def _small_dataset(placement="gammapy"):
    """A 24 x 24 pixel, 3-energy-bin dataset with a Gaussian PSF and flat exposure and background."""
    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", 3, name="energy")
    energy_true = MapAxis.from_energy_bounds("0.7 TeV", "14 TeV", 4, name="energy_true")
    geom = WcsGeom.create(skydir=SkyCoord(83.63, 22.01, unit="deg"), width=1.2, binsz=0.05, axes=[energy])
    dataset = MapDataset.create(geom, energy_axis_true=energy_true, name="small")
    dataset.exposure = WcsNDMap(dataset.exposure.geom, np.full(dataset.exposure.data.shape, 1e10), "m2 s")
    dataset.background = WcsNDMap(geom, np.full(dataset.counts.data.shape, 0.5))
    dataset.psf = PSFMap.from_gauss(energy_true, sigma=[0.12, 0.1, 0.08, 0.06] * u.deg)
    dataset.mask_safe = WcsNDMap(geom, np.ones(dataset.counts.data.shape, dtype=bool))
    spatial = PointSpatialModel(frame="icrs", placement=placement, **CRAB)
    model = SkyModel(PowerLawSpectralModel(index=2.5, amplitude="2e-12 cm-2 s-1 TeV-1"), spatial, name="src")
    dataset.models = Models([model, FoVBackgroundModel("small")])
    rng = np.random.default_rng(1)
    dataset.counts = WcsNDMap(geom, rng.poisson(dataset.npred().data).astype(float))
    return dataset


@pytest.mark.parametrize("placement", ["gammapy", "exact"])
def test_compact_likelihood_equals_full_statistic(placement):
    dataset = _small_dataset(placement)
    logp = logp_function(Datasets([dataset]))
    np.testing.assert_allclose(logp.log_likelihood(logp.x0), -0.5 * dataset.stat_sum(), rtol=1e-10)
    # the point source conserves its flux: signal sums to flux x exposure (PSF inside the map)
    signal = dataset.npred_signal().data.sum()
    assert signal > 10


@pytest.mark.parametrize("placement", ["gammapy", "exact"])
def test_gradients_match_finite_differences_across_pixel_boundaries(placement):
    dataset = _small_dataset(placement)
    logp = logp_function(Datasets([dataset]))
    names = logp.names
    # positions just below, on and above a pixel boundary in lon (pixels are 0.05 deg)
    for shift in (-0.0251, -0.0249, 0.013):
        theta = logp.x0.copy()
        theta[names.index("src.lon_0")] += shift
        _, grad = logp(theta)
        for i, name in enumerate(names):
            # positions: a step far below the PSF profile's node spacing, where the
            # piecewise-linear interpolation has kinks
            h = 2e-6 if name.endswith(("lon_0", "lat_0")) else 1e-5 * abs(theta[i])
            up, down = theta.copy(), theta.copy()
            up[i] += h
            down[i] -= h
            numeric = (logp(up)[0] - logp(down)[0]) / (2 * h)
            assert grad[i] == pytest.approx(numeric, rel=2e-3, abs=1e-3 * (1 + abs(numeric))), (placement, shift, name)


@pytest.mark.oracle
def test_hawc_npred_and_stat_equal_gammapy():
    gp_datasets = pytest.importorskip("gammapy.datasets")
    gp_models = pytest.importorskip("gammapy.modeling.models")
    path = gammapy_data() / "hawc/DL4/nHit-5.fits.gz"
    ours = MapDataset.read(path, name="nHit-5")
    ours.models = Models([SkyModel(LogParabolaSpectralModel(**LP), PointSpatialModel(frame="icrs", **CRAB),
                                   name="crab"), FoVBackgroundModel("nHit-5")])
    theirs = gp_datasets.MapDataset.read(path, name="nHit-5")
    theirs.models = [
        gp_models.SkyModel(spectral_model=gp_models.LogParabolaSpectralModel(**LP),
                           spatial_model=gp_models.PointSpatialModel(frame="icrs", **CRAB), name="crab"),
        gp_models.FoVBackgroundModel(dataset_name="nHit-5"),
    ]
    npred_ours, npred_theirs = ours.npred().data, theirs.npred().data
    mask = theirs.mask_safe.data
    sel = mask & (npred_theirs > 1e-3 * npred_theirs[mask].max())
    rel = np.abs(npred_ours[sel] - npred_theirs[sel]) / npred_theirs[sel]
    assert rel.max() < 1e-3
    assert abs(ours.stat_sum() - theirs.stat_sum()) < 0.01
    logp = logp_function(Datasets([ours]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * theirs.stat_sum(), abs=0.005)


@pytest.mark.oracle
def test_fermi_crab_npred_and_stat_equal_gammapy():
    gp_datasets = pytest.importorskip("gammapy.datasets")
    folder = gammapy_data() / "fermi-3fhl-crab"
    files = (folder / "Fermi-LAT-3FHL_datasets.yaml", folder / "Fermi-LAT-3FHL_models.yaml")
    ours = Datasets.read(files[0], filename_models=files[1])[0]
    theirs = gp_datasets.Datasets.read(files[0], filename_models=files[1])[0]
    signal_ours, signal_theirs = ours.npred_signal().data, theirs.npred_signal().data
    sel = signal_theirs > 1e-3 * signal_theirs.max()
    assert np.max(np.abs(signal_ours[sel] - signal_theirs[sel]) / signal_theirs[sel]) < 1e-3
    assert abs(ours.stat_sum() - theirs.stat_sum()) < 0.01
    logp = logp_function(Datasets([ours]))
    assert logp.log_likelihood(logp.x0) == pytest.approx(-0.5 * theirs.stat_sum(), abs=0.005)
