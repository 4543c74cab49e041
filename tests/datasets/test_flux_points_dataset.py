"""FluxPointsDataset: masks per stat type, evaluation, files and the datasets YAML entry."""

import numpy as np
import pytest
from astropy import units as u
from numpy.testing import assert_allclose, assert_array_equal

from bayesdl4.datasets import Datasets
from bayesdl4.datasets.flux_points import FluxPoints
from bayesdl4.datasets.flux_points_dataset import FluxPointsDataset
from bayesdl4.errors import DataFormatError, ModelError
from bayesdl4.models import (
    FoVBackgroundModel,
    LogParabolaSpectralModel,
    PointSpatialModel,
    PowerLawSpectralModel,
    SkyModel,
)
from tests.conftest import gammapy_data

HESS = "estimators/crab_hess_fp/crab_hess_fp.fits"
HAWC = "hawc/crab_flux/HAWC19_flux_points.fits"
EDGES = np.array([1.0, 2.0, 4.0, 8.0, 16.0]) * u.TeV


def power_law(amplitude=1e-11, index=2.5):
    return SkyModel(PowerLawSpectralModel(index=index, amplitude=f"{amplitude} cm-2 s-1 TeV-1",
                                          reference="1 TeV"), name="src")


def synthetic(stat_type="chi2", **kwargs):
    """Four dnde points on an E^-2.5 law (last: an upper limit), asymmetric errors."""
    e_ref = np.sqrt(EDGES[:-1] * EDGES[1:]).value
    truth = 1e-11 * e_ref**-2.5
    values = {
        "dnde": truth * [1.1, 0.9, 1.0, np.nan] * u.Unit("cm-2 s-1 TeV-1"),
        "dnde_errn": truth * [0.1, 0.1, 0.2, np.nan] * u.Unit("cm-2 s-1 TeV-1"),
        "dnde_errp": truth * [0.2, 0.1, 0.3, np.nan] * u.Unit("cm-2 s-1 TeV-1"),
        "dnde_ul": truth * [np.nan, np.nan, np.nan, 2.0] * u.Unit("cm-2 s-1 TeV-1"),
        "is_ul": np.array([False, False, False, True]),
    }
    fp = FluxPoints.from_sed("dnde", values, energy_min=EDGES[:-1], energy_max=EDGES[1:])
    kwargs.setdefault("models", power_law())
    return FluxPointsDataset(data=fp, stat_type=stat_type, **kwargs)


def test_chi2_uses_mean_of_asymmetric_errors_and_drops_upper_limits():
    ds = synthetic("chi2")
    assert_array_equal(ds.mask_valid, [True, True, True, False])
    # model = truth: chi2 = ((d - m) / ((errn + errp) / 2))^2 per point
    expected = [(0.1 / 0.15) ** 2, (0.1 / 0.1) ** 2, 0.0]
    assert_allclose(ds.stat_array()[:3], expected, rtol=1e-10, atol=1e-20)
    assert np.isnan(ds.stat_array()[3])
    assert ds.stat_sum() == pytest.approx(sum(expected), rel=1e-10)


def test_distrib_split_normal_and_upper_limit_term():
    from scipy.special import erfc

    ds = synthetic("distrib")
    assert_array_equal(ds.mask_valid, [True, True, True, True])
    # point 0: model below the data -> errn; point 1: model above -> errp; UL: erfc term at m = u / 2
    expected = [(0.1 / 0.1) ** 2, (0.1 / 0.1) ** 2, 0.0, 2 * np.log(erfc(0.5) / erfc(1.0))]
    assert_allclose(ds.stat_array(), expected, rtol=1e-10, atol=1e-20)


def test_masks_combine_safe_fit_and_valid():
    ds = synthetic("distrib", mask_fit=np.array([True, False, True, True]),
                   mask_safe=np.array([True, True, True, False]))
    assert_array_equal(ds.mask, [True, False, True, False])
    assert ds.stat_sum() == pytest.approx(1.0, rel=1e-10)
    ds.stat_type = "chi2"  # masks follow the stat type
    assert_array_equal(ds.mask_safe, [True, True, True, False])


def test_residuals_and_flux_pred():
    ds = synthetic()
    e_ref = ds.data.energy_ref.to_value("TeV")
    assert_allclose(ds.flux_pred().to_value("cm-2 s-1 TeV-1"), 1e-11 * e_ref**-2.5, rtol=1e-12)
    assert_allclose(ds.residuals("diff/model")[:3], [0.1, -0.1, 0.0], atol=1e-12)
    assert np.isnan(ds.residuals()[3])


def test_bad_configurations_are_explicit():
    ds = synthetic()
    with pytest.raises(ModelError, match="stat_type must be one of"):
        ds.stat_type = "cash"
    with pytest.raises(DataFormatError, match="'stat_scan'"):
        ds.stat_type = "profile"
    with pytest.raises(DataFormatError, match="mask_fit must be a boolean array of shape"):
        synthetic(mask_fit=np.ones(3, bool))
    bkg = FoVBackgroundModel(dataset_name="fp")
    bad = synthetic(name="fp")
    bad.models = [power_law(), bkg]
    with pytest.raises(ModelError, match="cannot act on flux points"):
        bad.stat_sum()
    # a point source's spatial part is ignored: the points are its total flux
    spatial = SkyModel(power_law().spectral_model, PointSpatialModel(lon_0="83.6 deg", lat_0="22 deg"),
                       name="src")
    assert synthetic(models=spatial).stat_sum() == pytest.approx(synthetic().stat_sum(), rel=1e-14)


def test_chi2_points_without_errors_are_refused():
    fp = FluxPoints.from_sed("dnde", {"dnde": [1e-11, 2e-12] * u.Unit("cm-2 s-1 TeV-1"),
                                      "dnde_err": [1e-12, np.nan] * u.Unit("cm-2 s-1 TeV-1")},
                             energy_ref=[1.0, 2.0] * u.TeV)
    ds = FluxPointsDataset(data=fp, models=power_law())
    with pytest.raises(DataFormatError, match=r"dnde_err.*points \[1\]"):
        ds.stat_sum()


def test_profile_points_of_the_hess_file():
    ds = FluxPointsDataset(data=FluxPoints.read(gammapy_data() / HESS), stat_type="profile",
                           models=SkyModel(LogParabolaSpectralModel(), name="crab"))
    assert_array_equal(ds.mask_valid, [False, True, True, True, True])  # row 0: no fit
    # the interpolation is gammapy's (scipy's quadratic interp1d, extrapolated) at every norm,
    # inside the scans and beyond both ends: the end pieces of these profiles are all convex
    from scipy.interpolate import interp1d

    from bayesdl4.stats import stat_profile

    fp = ds.data
    norm = np.concatenate([np.linspace(0.0, 12.0, 241), fp.norm_scan[1]])
    for i in range(1, 5):
        scan = np.abs(fp.stat_scan[i] - fp.stat[i])
        gammapy = interp1d(fp.norm_scan[i], scan, kind="quadratic", bounds_error=False,
                           fill_value="extrapolate")
        ours = stat_profile(norm, ds.profile_spline[np.full(norm.size, i)])
        assert_allclose(ours, gammapy(norm), rtol=1e-12, atol=1e-9)


def test_write_read_and_datasets_yaml(tmp_path):
    path = gammapy_data() / HAWC
    mask_fit = np.arange(10) < 8
    ds = FluxPointsDataset(data=FluxPoints.read(path), name="hawc", mask_fit=mask_fit,
                           models=SkyModel(LogParabolaSpectralModel(), name="crab"))
    ds.write(tmp_path / "hawc-points.fits")
    back = FluxPointsDataset.read(tmp_path / "hawc-points.fits", name="hawc")
    assert_array_equal(back.mask_fit, mask_fit)
    assert back.meta["filenames"] == [str(tmp_path / "hawc-points.fits")]
    datasets = Datasets([ds])
    datasets.write(tmp_path / "datasets.yaml", filename_models=tmp_path / "models.yaml")
    text = (tmp_path / "datasets.yaml").read_text()
    assert "type: FluxPointsDataset" in text and "filename: hawc.fits" in text
    read = Datasets.read(tmp_path / "datasets.yaml", filename_models=tmp_path / "models.yaml")
    (again,) = list(read)
    assert isinstance(again, FluxPointsDataset) and again.name == "hawc"
    assert_array_equal(again.mask, ds.mask)
    assert again.stat_sum() == pytest.approx(ds.stat_sum(), rel=1e-14)


@pytest.mark.oracle
def test_datasets_yaml_read_by_gammapy(tmp_path):
    pytest.importorskip("gammapy")
    from gammapy.datasets import Datasets as GPDatasets

    ds = FluxPointsDataset(data=FluxPoints.read(gammapy_data() / HAWC), name="hawc",
                           models=SkyModel(LogParabolaSpectralModel(), name="crab"))
    Datasets([ds]).write(tmp_path / "datasets.yaml", filename_models=tmp_path / "models.yaml")
    theirs = GPDatasets.read(tmp_path / "datasets.yaml", filename_models=tmp_path / "models.yaml")
    assert theirs[0].tag == "FluxPointsDataset"
    assert theirs[0].stat_sum() == pytest.approx(ds.stat_sum(), rel=1e-6)
