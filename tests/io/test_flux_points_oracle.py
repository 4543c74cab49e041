"""Flux points files exchanged with gammapy 2.1: every column survives both ways."""

import warnings

import numpy as np
import pytest
from astropy import units as u
from numpy.testing import assert_allclose, assert_array_equal

from bayesdl4.datasets.flux_points import FluxPoints
from bayesdl4.datasets.flux_points_dataset import FluxPointsDataset

gammapy = pytest.importorskip("gammapy")
pytestmark = [pytest.mark.oracle, pytest.mark.realdata]

FILES = ["estimators/crab_hess_fp/crab_hess_fp.fits", "hawc/crab_flux/HAWC19_flux_points.fits"]


def gp_read(path):
    from gammapy.estimators import FluxPoints as GPFluxPoints

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GPFluxPoints.read(path)


def assert_same_table(ours, theirs):
    """Same columns (names, order), units, values (floats to 1e-13), meta (SED_TYPE, UL_CONF)."""
    assert ours.colnames == theirs.colnames
    for name in theirs.colnames:
        a, b = ours[name], theirs[name]
        unit_a, unit_b = u.Unit(a.unit or ""), u.Unit(b.unit or "")
        assert unit_a == unit_b, name
        va, vb = np.asarray(a), np.asarray(b)
        assert va.shape == vb.shape, name
        if vb.dtype.kind == "f":
            assert_allclose(va, vb, rtol=1e-13, atol=0, equal_nan=True, err_msg=name)
        else:
            assert_array_equal(va, vb, err_msg=name)
    for key in ("SED_TYPE", "UL_CONF"):
        assert ours.meta.get(key) == theirs.meta.get(key)


@pytest.mark.parametrize("filename", FILES)
def test_same_table_as_gammapy(gammapy_data, filename):
    path = gammapy_data / filename
    assert_same_table(FluxPoints.read(path).to_table(), gp_read(path).to_table())


@pytest.mark.parametrize("sed_type", ["dnde", "e2dnde", "flux", "eflux"])
@pytest.mark.parametrize("filename", FILES)
def test_sed_conversions_as_gammapy(gammapy_data, filename, sed_type):
    path = gammapy_data / filename
    assert_same_table(FluxPoints.read(path).to_table(sed_type=sed_type),
                      gp_read(path).to_table(sed_type=sed_type))


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
@pytest.mark.parametrize("filename", FILES)
def test_round_trips_with_gammapy_keep_every_column(gammapy_data, tmp_path, filename, suffix):
    path = gammapy_data / filename
    reference = gp_read(path).to_table()
    # ours -> file -> gammapy
    ours = FluxPoints.read(path).write(tmp_path / f"ours{suffix}")
    assert_same_table(gp_read(ours).to_table(), reference)
    # gammapy -> file -> ours
    theirs = tmp_path / f"theirs{suffix}"
    gp_read(path).write(theirs)
    assert_same_table(FluxPoints.read(theirs).to_table(), reference)
    if suffix == ".fits" and "hess" in filename:  # the GTI table travels in FITS files
        back = FluxPoints.read(ours)
        from astropy.table import Table

        assert_allclose(back.gti["START"], Table.read(path, hdu="GTI")["START"], rtol=1e-15)


def gammapy_lightcurve():
    from astropy.time import Time
    from gammapy.estimators import FluxPoints as GPFluxPoints
    from gammapy.maps import MapAxis, Maps, RegionGeom, RegionNDMap, TimeMapAxis
    from gammapy.modeling.models import PowerLawSpectralModel

    energy = MapAxis.from_energy_edges([1, 3, 10] * u.TeV)
    time = TimeMapAxis(edges_min=[0, 1, 2.5] * u.d, edges_max=[1, 2, 3] * u.d,
                       reference_time=Time(55555.0, format="mjd", scale="utc"))
    geom = RegionGeom.create(region=None, axes=[energy, time])
    rng = np.random.default_rng(1)
    maps = Maps()
    for name, (lo, hi) in {"norm": (0.5, 1.5), "norm_err": (0.1, 0.2), "norm_ul": (1.5, 2.0),
                           "ts": (0.0, 30.0)}.items():
        maps[name] = RegionNDMap.from_geom(geom, data=rng.uniform(lo, hi, geom.data_shape))
    return GPFluxPoints.from_maps(maps, sed_type="likelihood",
                                  reference_model=PowerLawSpectralModel(index=2.3))


@pytest.mark.parametrize("suffix", [".fits", ".ecsv"])
def test_lightcurve_files_with_gammapy(tmp_path, suffix):
    lc = gammapy_lightcurve()
    path = tmp_path / f"lc{suffix}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lc.write(path, sed_type="flux")
        reference = gp_read(path).to_table(sed_type="flux")
    ours = FluxPoints.read(path)
    assert ours.shape == (3, 2) and ours.sed_type_init == "flux"
    # the MJD values of the file (gammapy's reading moves them by the leap seconds, 34 s)
    assert_allclose(ours.time_min.mjd, [55555.0, 55556.0, 55557.5], atol=1e-9, rtol=0)
    assert_allclose(ours.flux.to_value("cm-2 s-1"), lc.flux.data[:, :, 0, 0], rtol=1e-13)
    assert_allclose(ours.flux_ul.to_value("cm-2 s-1"), lc.flux_ul.data[:, :, 0, 0], rtol=1e-13)
    # ours written -> gammapy reads the same table as from its own file
    back = ours.write(tmp_path / f"ours{suffix}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = gp_read(back).to_table(sed_type="flux")
    assert_same_table(table, reference)


def test_dataset_files_with_gammapy(gammapy_data, tmp_path):
    from gammapy.datasets import FluxPointsDataset as GPFluxPointsDataset
    from gammapy.modeling.models import LogParabolaSpectralModel as GPLogParabola
    from gammapy.modeling.models import SkyModel as GPSkyModel

    from bayesdl4.models import LogParabolaSpectralModel, SkyModel

    path = gammapy_data / FILES[1]
    mask_fit = np.arange(10) < 8
    ours = FluxPointsDataset(data=FluxPoints.read(path), name="hawc", mask_fit=mask_fit,
                             models=SkyModel(LogParabolaSpectralModel(), name="crab"))
    out = ours.write(tmp_path / "hawc.fits")
    valid = np.arange(10) < 9  # chi2 leaves the upper limit out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = GPFluxPointsDataset.read(out, name="hawc")
        theirs.models = GPSkyModel(GPLogParabola(), name="crab")
        assert_array_equal(np.ravel(theirs.mask_fit), mask_fit)
        assert_array_equal(np.ravel(theirs.mask_safe), valid)
        # gammapy evaluates the dataset read from our file on the same points
        assert theirs.stat_sum() == pytest.approx(ours.stat_sum(), rel=1e-12)
        theirs.write(tmp_path / "theirs.fits")
    back = FluxPointsDataset.read(tmp_path / "theirs.fits", name="hawc")
    assert_array_equal(back.mask_fit, mask_fit)
    assert_array_equal(back.mask, mask_fit & valid)
    assert_allclose(back.data.dnde.value, ours.data.dnde.value, rtol=1e-15, equal_nan=True)
