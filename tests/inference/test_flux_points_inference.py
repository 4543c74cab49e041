"""MAP and NUTS with flux points: HESS Crab points with a log-parabola, joint with On/Off spectra."""

import warnings

import numpy as np
import pytest
from astropy import units as u
from scipy import stats

import bayesdl4.graph.flux_points  # noqa: F401 - registers the builder
from bayesdl4.datasets import Datasets, SpectrumDatasetOnOff
from bayesdl4.datasets.flux_points import FluxPoints
from bayesdl4.datasets.flux_points_dataset import FluxPointsDataset
from bayesdl4.inference import fit, sample
from bayesdl4.models import LogParabolaSpectralModel, SkyModel
from tests.conftest import gammapy_data

pytestmark = pytest.mark.realdata

HESS_FP = "estimators/crab_hess_fp/crab_hess_fp.fits"
HAWC_FP = "hawc/crab_flux/HAWC19_flux_points.fits"
NAMES = ["crab.amplitude", "crab.alpha", "crab.beta"]
START = dict(amplitude="3.5e-11 cm-2 s-1 TeV-1", alpha=2.5, beta=0.1, reference="1 TeV")


def crab():
    return SkyModel(LogParabolaSpectralModel(**START), name="crab")


def points(filename, stat_type, name):
    return FluxPointsDataset(data=FluxPoints.read(gammapy_data() / filename), stat_type=stat_type,
                             name=name)


def hess_onoff():
    out = []
    for obs in (23523, 23526, 23559, 23592):
        ds = SpectrumDatasetOnOff.read(gammapy_data() / f"joint-crab/spectra/hess/pha_obs{obs}.fits")
        ds.mask_fit = ds.counts.geom.energy_mask(0.66 * u.TeV, 30 * u.TeV)
        out.append(ds)
    return out


def with_model(datasets):
    datasets = Datasets(datasets)
    datasets.models = [crab()]
    return datasets


@pytest.mark.oracle
@pytest.mark.parametrize("stat_type", ["chi2", "distrib", "profile"])
def test_map_on_hess_points_is_gammapys_fit(stat_type):
    pytest.importorskip("gammapy")
    from gammapy.datasets import FluxPointsDataset as GPDataset
    from gammapy.estimators import FluxPoints as GPFluxPoints
    from gammapy.modeling import Fit
    from gammapy.modeling.models import LogParabolaSpectralModel as GPLogParabola
    from gammapy.modeling.models import SkyModel as GPSkyModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = GPDataset(data=GPFluxPoints.read(gammapy_data() / HESS_FP), stat_type=stat_type,
                           models=GPSkyModel(GPLogParabola(**START), name="crab"))
        expected = Fit().run([theirs])
    result = fit(with_model([points(HESS_FP, stat_type, "hess")]))
    assert result.success
    for name in NAMES:
        gp = expected.parameters[name.split(".")[1]]
        assert abs(result[name].value - gp.value) < 0.05 * gp.error, name
    assert result.total_stat == pytest.approx(expected.total_stat, abs=1e-4)


def posterior_moments(result):
    draws = np.stack([result["posterior"][n].values.reshape(-1) for n in NAMES], axis=1)
    return draws.mean(axis=0), np.cov(draws, rowvar=False)


@pytest.mark.slow
def test_nuts_on_hess_points_with_a_log_parabola():
    datasets = with_model([points(HESS_FP, "profile", "hess")])
    best = fit(datasets)
    result = sample(datasets, draws=1000, tune=1000, chains=2, random_seed=5, progressbar=False)
    mean, cov = posterior_moments(result)
    sigma = np.sqrt(np.diag(cov))
    for i, name in enumerate(NAMES):
        # four points, three parameters: the posterior is wider than Gaussian but centred on the MAP
        assert abs(mean[i] - best[name].value) < 0.5 * sigma[i], name
        assert 0.7 < sigma[i] / best[name].error < 1.6, name
    assert result["log_likelihood"]["hess"].shape[-1] == 4  # one term per fitted point
    assert int(result["sample_stats"]["diverging"].sum()) == 0


@pytest.mark.slow
def test_joint_flux_points_and_onoff_spectra():
    """HAWC flux points + H.E.S.S. On/Off spectra: a posterior narrower than either alone and
    consistent with both (the joint mean inside each one's 99 % region)."""
    runs = {}
    for label, datasets in (("hess", hess_onoff()), ("hawc", [points(HAWC_FP, "distrib", "hawc")]),
                            ("joint", hess_onoff() + [points(HAWC_FP, "distrib", "hawc")])):
        result = sample(with_model(datasets), draws=800, tune=800, chains=2, random_seed=7,
                        progressbar=False)
        runs[label] = posterior_moments(result)
    joint_mean, joint_cov = runs["joint"]
    for label in ("hess", "hawc"):
        mean, cov = runs[label]
        assert np.all(np.diag(joint_cov) < np.diag(cov)), label
        delta = joint_mean - mean
        assert delta @ np.linalg.solve(cov, delta) < stats.chi2.ppf(0.99, df=3), label
