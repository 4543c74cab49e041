"""Shared fixtures for the I/O tests: real spectra from $GAMMAPY_DATA and small synthetic spectra."""

import os
from pathlib import Path

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from bayesdl4.datasets.spectrum import SpectrumDataset, SpectrumDatasetOnOff
from bayesdl4.irf import EDispKernel
from bayesdl4.maps import MapAxis, RegionGeom, RegionNDMap

JOINT_CRAB_PHA = [
    "joint-crab/spectra/fermi/pha_obs0.fits",
    "joint-crab/spectra/fact/pha_stacked.fits",
    "joint-crab/spectra/hess/pha_obs23523.fits",
    "joint-crab/spectra/hess/pha_obs23526.fits",
    "joint-crab/spectra/hess/pha_obs23559.fits",
    "joint-crab/spectra/hess/pha_obs23592.fits",
    "joint-crab/spectra/magic/pha_obs5029747.fits",
    "joint-crab/spectra/magic/pha_obs5029748.fits",
    "joint-crab/spectra/veritas/pha_obs54809.fits",
    "joint-crab/spectra/veritas/pha_obs57993.fits",
]
OTHER_PHA = [
    "PKS2155-steady/pks2155-304_steady.fits.gz",
    "datasets/simulations/simulated_spectrum_dataset_PL.fits",
    "datasets/simulations/simulated_spectrum_dataset_ECPL.fits",
]
ALL_PHA = JOINT_CRAB_PHA + OTHER_PHA
# (n_reco, n_true) of each file, read off the files' EBOUNDS and ARF
SHAPES = {
    **{f: (80, 80) for f in JOINT_CRAB_PHA},
    "joint-crab/spectra/fermi/pha_obs0.fits": (36, 36),
    "PKS2155-steady/pks2155-304_steady.fits.gz": (10, 25),
    "datasets/simulations/simulated_spectrum_dataset_PL.fits": (20, 20),
    "datasets/simulations/simulated_spectrum_dataset_ECPL.fits": (20, 20),
}
HESS_PHA = "joint-crab/spectra/hess/pha_obs23523.fits"


@pytest.fixture(scope="session")
def gammapy_data():
    """``$GAMMAPY_DATA`` as a Path; the test is skipped when it is unset or missing."""
    value = os.environ.get("GAMMAPY_DATA")
    if not value:
        pytest.skip("GAMMAPY_DATA is not set: real-data spectrum tests need the gammapy-data files")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"GAMMAPY_DATA={value} is not a directory")
    return path


def make_spectrum_dataset(
    onoff=True, seed=0, region=True, gti=True, mask_fit=True, background=True
):
    """A small synthetic spectrum (12 reco bins, 18 true bins) with every optional part filled."""
    rng = np.random.default_rng(seed)
    energy = MapAxis.from_energy_bounds(0.1 * u.TeV, 100 * u.TeV, 12, name="energy")
    energy_true = MapAxis.from_energy_bounds(0.05 * u.TeV, 200 * u.TeV, 18, name="energy_true")
    sky_region = None
    if region:
        from regions import CircleSkyRegion

        sky_region = CircleSkyRegion(SkyCoord(83.63, 22.01, unit="deg"), radius=0.11 * u.deg)
    geom = RegionGeom(sky_region, [energy])
    geom_true = RegionGeom(None, [energy_true])
    edisp = EDispKernel.from_gauss(energy_true, energy, sigma=0.25, bias=0.05)
    # a row with two separate groups and an empty row exercise the RMF grouping (the row still
    # sums to at most 1, as the readers require)
    edisp.pdf_matrix[5] *= 1 - 0.013
    edisp.pdf_matrix[5, 7] = 0.013
    edisp.pdf_matrix[0, :] = 0.0
    exposure = 1e9 * (1 - np.exp(-energy_true.center.value / 0.3)) + 1.234567e-3
    counts = rng.poisson(30 * np.exp(-np.arange(12) / 4)).astype(float)
    mask_safe = np.zeros(12, bool)
    mask_safe[2:11] = True
    kwargs = dict(
        counts=RegionNDMap(geom, counts),
        exposure=RegionNDMap(geom_true, exposure, unit="cm2 s"),
        edisp=edisp,
        mask_safe=RegionNDMap(geom, mask_safe),
        livetime=1800.25 * u.s,
        name=f"synthetic-{seed}",
        meta={"obs_id": 4242 + seed},
    )
    if mask_fit:
        fit = np.zeros(12, bool)
        fit[3:9] = True
        kwargs["mask_fit"] = RegionNDMap(geom, fit)
    if gti:
        table = Table({"START": [1000.0, 5000.0] * u.s, "STOP": [2800.5, 5100.0] * u.s})
        table.meta.update(
            {
                "MJDREFI": 51910,
                "MJDREFF": 7.428703703703703e-4,
                "TIMEUNIT": "s",
                "TIMESYS": "TT",
                "TIMEREF": "LOCAL",
            }
        )
        kwargs["gti"] = table
    if not onoff:
        if background:
            kwargs["background"] = RegionNDMap(geom, 0.37 * np.arange(1, 13, dtype=float))
        return SpectrumDataset(**kwargs)
    counts_off = rng.poisson(60 * np.exp(-np.arange(12) / 5)).astype(float)
    acceptance_off = 5.0 + 0.25 * np.arange(12)
    return SpectrumDatasetOnOff(
        counts_off=RegionNDMap(geom, counts_off),
        acceptance=RegionNDMap(geom, np.full(12, 1.0)),
        acceptance_off=RegionNDMap(geom, acceptance_off),
        **kwargs,
    )


@pytest.fixture
def onoff_dataset():
    return make_spectrum_dataset(onoff=True)


@pytest.fixture
def plain_dataset():
    return make_spectrum_dataset(onoff=False)


def assert_same_dataset(ours, other, rtol=1e-12, check_region=True):
    """All arrays of two bayesdl4 spectrum datasets agree (masks and counts exactly)."""
    assert type(ours) is type(other)
    assert ours.name == other.name
    np.testing.assert_array_equal(ours.counts.data, other.counts.data)
    assert ours.counts.geom.axis("energy").is_allclose(other.counts.geom.axis("energy"), rtol=rtol)
    assert ours.exposure.geom.axis("energy_true").is_allclose(
        other.exposure.geom.axis("energy_true"), rtol=rtol
    )
    np.testing.assert_allclose(
        ours.exposure.quantity.to_value("cm2 s"),
        other.exposure.quantity.to_value("cm2 s"),
        rtol=rtol,
        atol=0,
    )
    np.testing.assert_array_equal(ours.edisp.pdf_matrix, other.edisp.pdf_matrix)
    for attr in ("mask_safe", "mask_fit"):
        a, b = getattr(ours, attr), getattr(other, attr)
        assert (a is None) == (b is None), attr
        if a is not None:
            np.testing.assert_array_equal(a.data.astype(bool), b.data.astype(bool))
    if ours.livetime is None or other.livetime is None:
        assert ours.livetime is None and other.livetime is None
    else:
        assert ours.livetime.to_value("s") == pytest.approx(other.livetime.to_value("s"), rel=1e-15)
    if isinstance(ours, SpectrumDatasetOnOff):
        np.testing.assert_array_equal(ours.counts_off.data, other.counts_off.data)
        np.testing.assert_allclose(ours.acceptance.data, other.acceptance.data, rtol=rtol)
        np.testing.assert_allclose(ours.acceptance_off.data, other.acceptance_off.data, rtol=rtol)
        np.testing.assert_allclose(ours.alpha.data, other.alpha.data, rtol=rtol)
    elif ours.background is not None or other.background is not None:
        np.testing.assert_allclose(ours.background.data, other.background.data, rtol=rtol)
    if check_region:
        ra, rb = ours.counts.geom.region, other.counts.geom.region
        assert (ra is None) == (rb is None)
        if ra is not None:
            assert ra.center.separation(rb.center).to_value("deg") < 1e-9
            assert ra.radius.to_value("deg") == pytest.approx(rb.radius.to_value("deg"), rel=1e-9)
    if ours.gti is not None or other.gti is not None:
        np.testing.assert_array_equal(np.asarray(ours.gti["START"]), np.asarray(other.gti["START"]))
        np.testing.assert_array_equal(np.asarray(ours.gti["STOP"]), np.asarray(other.gti["STOP"]))


@pytest.fixture
def make_dataset():
    """Factory of synthetic spectrum datasets (see `make_spectrum_dataset`)."""
    return make_spectrum_dataset


@pytest.fixture
def assert_same():
    """The `assert_same_dataset` comparison."""
    return assert_same_dataset


@pytest.fixture
def pha_lists():
    """File lists: ``{"all": [...], "joint_crab": [...], "shapes": {file: (n_reco, n_true)}, "hess": file}``."""
    return {"all": ALL_PHA, "joint_crab": JOINT_CRAB_PHA, "shapes": SHAPES, "hess": HESS_PHA}


def pytest_generate_tests(metafunc):
    """``pha_file`` runs a test over every real PHA file (relative to $GAMMAPY_DATA)."""
    if "pha_file" in metafunc.fixturenames:
        metafunc.parametrize("pha_file", ALL_PHA)
