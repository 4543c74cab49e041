"""Map dataset files both ways, judged by the likelihood: npred and stat_sum through gammapy 2.1.

A file written here and read by gammapy gives gammapy the same npred and statistic as the original
file; a file written by gammapy and read here gives us the same numbers as the original (and
gammapy's). Cases: the Fermi-LAT 3FHL Crab (datasets + models YAML) and HAWC nHit-5 with a point
source, a log-parabola and a FoV background, each with a fit mask that differs from the safe mask.
Point sources use ``placement="gammapy"`` for the per-bin comparisons.
"""

import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets import Datasets, MapDataset
from bayesdl4.maps import WcsNDMap
from bayesdl4.models import (
    FoVBackgroundModel,
    LogParabolaSpectralModel,
    Models,
    PointSpatialModel,
    SkyModel,
)
from tests.conftest import gammapy_data

pytestmark = [pytest.mark.realdata, pytest.mark.oracle]

FERMI = "fermi-3fhl-crab/Fermi-LAT-3FHL_"
HAWC = "hawc/DL4/nHit-5.fits.gz"
CRAB = dict(lon_0=83.63 * u.deg, lat_0=22.02 * u.deg)
LP = dict(amplitude=3.5e-13 * u.Unit("cm-2 s-1 TeV-1"), reference=7 * u.TeV, alpha=2.8, beta=0.12)


@pytest.fixture(scope="module")
def gp():
    pytest.importorskip("gammapy")
    import gammapy.datasets

    return gammapy.datasets


def _gammapy_placement(datasets):
    for model in datasets.models:
        spatial = getattr(model, "spatial_model", None)
        if spatial is not None and spatial.tag[0] == "PointSpatialModel":
            spatial.placement = "gammapy"
    return datasets


def _fit_mask(shape):
    """A fit mask that cuts a corner and one energy plane off the safe mask."""
    mask = np.ones(shape, bool)
    mask[:, : shape[1] // 4, : shape[2] // 4] = False
    mask[-1] = False
    return mask


def _assert_same_likelihood(a, b, stat_atol, npred_rtol):
    """Two datasets (ours or gammapy's) predict the same counts and statistic."""
    npred_a, npred_b = a.npred().data, b.npred().data
    assert npred_a.shape == npred_b.shape
    sel = npred_b > 1e-3 * npred_b.max()
    assert sel.sum() > 100
    np.testing.assert_allclose(npred_a[sel], npred_b[sel], rtol=npred_rtol)
    np.testing.assert_array_equal(a.mask_fit.data, b.mask_fit.data)
    np.testing.assert_array_equal(a.mask_safe.data, b.mask_safe.data)
    assert a.stat_sum() == pytest.approx(b.stat_sum(), abs=stat_atol)


# ------------------------------------------------------------------------------------ Fermi-LAT
def _fermi_ours():
    base = gammapy_data() / FERMI
    datasets = Datasets.read(f"{base}datasets.yaml", filename_models=f"{base}models.yaml")
    datasets[0].mask_fit = WcsNDMap(datasets[0].counts.geom, _fit_mask(datasets[0].data_shape))
    return _gammapy_placement(datasets)


def _fermi_theirs(gp):
    from gammapy.maps import Map

    base = gammapy_data() / FERMI
    datasets = gp.Datasets.read(f"{base}datasets.yaml", filename_models=f"{base}models.yaml")
    geom = datasets[0].counts.geom
    datasets[0].mask_fit = Map.from_geom(geom, data=_fit_mask(geom.data_shape))
    return datasets


@pytest.mark.filterwarnings("ignore:Checksum verification failed")  # gammapy-data's YAML has none
def test_fermi_written_here_same_likelihood_in_gammapy(tmp_path, gp):
    ours = _fermi_ours()
    theirs = _fermi_theirs(gp)
    ours.write(tmp_path / "ds.yaml", filename_models=tmp_path / "models.yaml")
    from_ours = gp.Datasets.read(tmp_path / "ds.yaml", filename_models=tmp_path / "models.yaml")
    # gammapy on our file = gammapy on the original, to its own evaluation noise
    _assert_same_likelihood(from_ours[0], theirs[0], stat_atol=1e-6, npred_rtol=1e-9)
    assert from_ours.stat_sum() == pytest.approx(theirs.stat_sum(), abs=1e-6)
    # and ours = gammapy's
    _assert_same_likelihood(ours[0], theirs[0], stat_atol=0.01, npred_rtol=1e-3)


@pytest.mark.filterwarnings("ignore:Checksum verification failed")
def test_fermi_written_by_gammapy_same_likelihood_here(tmp_path, gp):
    theirs = _fermi_theirs(gp)
    theirs.write(tmp_path / "gp.yaml", filename_models=tmp_path / "gp_models.yaml")
    back = _gammapy_placement(
        Datasets.read(tmp_path / "gp.yaml", filename_models=tmp_path / "gp_models.yaml")
    )
    original = _fermi_ours()
    # gammapy writes the original's Fermi-LAT background model: same parameters here
    assert back.models.names == original.models.names
    _assert_same_likelihood(back[0], original[0], stat_atol=1e-9, npred_rtol=1e-12)
    _assert_same_likelihood(back[0], theirs[0], stat_atol=0.01, npred_rtol=1e-3)


# ------------------------------------------------------------------------------------ HAWC
def _hawc_models_ours(name):
    point = PointSpatialModel(frame="icrs", placement="gammapy", **CRAB)
    return Models(
        [SkyModel(LogParabolaSpectralModel(**LP), point, name="crab"), FoVBackgroundModel(name)]
    )


def _hawc_models_theirs(name):
    from gammapy.modeling import models as gm

    return [
        gm.SkyModel(
            spectral_model=gm.LogParabolaSpectralModel(**LP),
            spatial_model=gm.PointSpatialModel(frame="icrs", **CRAB),
            name="crab",
        ),
        gm.FoVBackgroundModel(dataset_name=name),
    ]


def _hawc_ours():
    dataset = MapDataset.read(gammapy_data() / HAWC, name="nHit-5")
    dataset.mask_fit = WcsNDMap(dataset.counts.geom, _fit_mask(dataset.data_shape))
    datasets = Datasets([dataset])
    datasets.models = _hawc_models_ours("nHit-5")
    datasets.models["nHit-5-bkg"].spectral_model.norm.value = 1.05  # not the default
    return datasets


def _hawc_theirs(gp):
    from gammapy.maps import Map

    dataset = gp.MapDataset.read(gammapy_data() / HAWC, name="nHit-5")
    dataset.mask_fit = Map.from_geom(dataset.counts.geom, data=_fit_mask(dataset.data_shape))
    datasets = gp.Datasets([dataset])
    datasets.models = _hawc_models_theirs("nHit-5")
    datasets.models["nHit-5-bkg"].spectral_model.norm.value = 1.05
    return datasets


def test_hawc_written_here_same_likelihood_in_gammapy(tmp_path, gp):
    ours = _hawc_ours()
    theirs = _hawc_theirs(gp)
    ours.write(tmp_path / "ds.yaml", filename_models=tmp_path / "models.yaml")
    from_ours = gp.Datasets.read(tmp_path / "ds.yaml", filename_models=tmp_path / "models.yaml")
    assert from_ours.models.names == ["crab", "nHit-5-bkg"]
    _assert_same_likelihood(from_ours[0], theirs[0], stat_atol=1e-6, npred_rtol=1e-9)
    _assert_same_likelihood(ours[0], theirs[0], stat_atol=0.01, npred_rtol=1e-3)
    # the fit mask matters: without it the statistic differs
    assert abs(theirs[0].stat_sum() - _hawc_without_fit_mask(gp)) > 100


def _hawc_without_fit_mask(gp):
    datasets = _hawc_theirs(gp)
    datasets[0].mask_fit = None
    return datasets[0].stat_sum()


def test_hawc_written_by_gammapy_same_likelihood_here(tmp_path, gp):
    theirs = _hawc_theirs(gp)
    theirs.write(tmp_path / "gp.yaml", filename_models=tmp_path / "gp_models.yaml")
    back = _gammapy_placement(
        Datasets.read(tmp_path / "gp.yaml", filename_models=tmp_path / "gp_models.yaml")
    )
    assert back.names == ["nHit-5"] and back.models.names == ["crab", "nHit-5-bkg"]
    _assert_same_likelihood(back[0], _hawc_ours()[0], stat_atol=1e-9, npred_rtol=1e-12)
    _assert_same_likelihood(back[0], theirs[0], stat_atol=0.01, npred_rtol=1e-3)
