"""Map datasets in the one model: pointwise log-likelihood (LOO) within a memory bound, predictive
counts, and NUTS (nutpie) on large extended sources."""

import arviz as az
import numpy as np
import pytest
from astropy import units as u

from bayesdl4.datasets import Datasets, MapDataset
from bayesdl4.inference import build_model, model_info, sample
from bayesdl4.models import (
    FoVBackgroundModel,
    GaussianSpatialModel,
    LogParabolaSpectralModel,
    Models,
    PointSpatialModel,
    SkyModel,
)
from tests.conftest import gammapy_data

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

HAWC_NAMES = [f"nHit-{n}" for n in range(5, 10)]
SPECTRUM = dict(amplitude=3.5e-13 * u.Unit("cm-2 s-1 TeV-1"), reference=7 * u.TeV, alpha=2.8, beta=0.12)


def _hawc(names=HAWC_NAMES, spatial=None):
    folder = gammapy_data() / "hawc/DL4"
    datasets = Datasets([MapDataset.read(folder / f"{name}.fits.gz", name=name) for name in names])
    spatial = spatial or PointSpatialModel(lon_0=83.63 * u.deg, lat_0=22.02 * u.deg, frame="icrs")
    crab = SkyModel(LogParabolaSpectralModel(**SPECTRUM), spatial, name="crab")
    datasets.models = Models([crab] + [FoVBackgroundModel(name) for name in names])
    return datasets


def test_hawc_loo_runs_within_the_memory_bound():
    """Default granularity: a 4000-draw posterior's log_likelihood and posterior_predictive groups
    of the five HAWC maps stay well under 2 GB; arviz.loo runs per dataset."""
    datasets = _hawc()
    info = model_info(build_model(datasets))
    n_points = sum(plan.points.dataset.size for plan in info.plans)
    n_bins = sum(int(d.mask.sum()) for d in datasets)
    groups = n_points * 4000 * (8 + 4)  # log_likelihood (float64) + predictive counts (int32), 4000 draws
    assert groups < 0.25 * 2**30, (n_points, groups)
    assert n_points < n_bins / 10  # per pixel near the source, per plane elsewhere
    tree = sample(datasets, draws=60, tune=60, chains=2, random_seed=3, progressbar=False)
    for name in HAWC_NAMES:
        terms = tree["log_likelihood"][name].values
        assert terms.shape[:2] == (2, 60) and np.all(np.isfinite(terms))
        loo = az.loo(tree, var_name=name)
        assert np.isfinite(loo.elpd)
        observed = tree["observed_data"][name].values
        predicted = tree["posterior_predictive"][name].values
        # the predictive counts of the aggregated points scatter around the observed ones: in
        # total within 3 Poisson sigma, and point by point as Poisson counts do (a predictive
        # mean assigned to the wrong point would give (n - mu)^2 / mu >> 1)
        mean = predicted.mean(axis=(0, 1))
        assert abs(mean.sum() - observed.sum()) < 3 * np.sqrt(observed.sum())
        assert np.mean((observed - mean) ** 2 / (mean + 1)) < 2
    # all terms summed: the joint log-likelihood (sufficient statistics of the density included)
    draw = tree["posterior"].isel(chain=0, draw=0)
    total = sum(tree["log_likelihood"][n].isel(chain=0, draw=0).values.sum() for n in HAWC_NAMES)
    for name in ("crab.amplitude", "crab.alpha", "crab.beta", "crab.lon_0", "crab.lat_0"):
        getattr(datasets.models["crab"].spectral_model if name.split(".")[1] in SPECTRUM
                else datasets.models["crab"].spatial_model, name.split(".")[1]).value = float(draw[name])
    for dataset in datasets:
        dataset.models[f"{dataset.name}-bkg"].spectral_model.norm.value = float(draw[f"{dataset.name}-bkg.norm"])
    assert total == pytest.approx(-0.5 * datasets.stat_sum(), abs=0.05)


def test_nuts_with_nutpie_on_a_large_extended_source():
    """Issue 8, item 9: a Gaussian of sigma 0.8 deg on HAWC nHit-5 samples with the default
    sampler (its graph holds large arrays, which enter the compiled function as data)."""
    spatial = GaussianSpatialModel(lon_0=83.63 * u.deg, lat_0=22.02 * u.deg, sigma=0.8 * u.deg, frame="icrs")
    datasets = _hawc(names=["nHit-5"], spatial=spatial)
    # a short run (each gradient convolves a 4-deg flux region): it works, and the draws move
    tree = sample(datasets, draws=15, tune=15, chains=2, random_seed=4, progressbar=False, maxdepth=5)
    assert tree.attrs["sampler"] == "nutpie"
    sigma = tree["posterior"]["crab.sigma"].values
    assert sigma.shape == (2, 15) and np.all(np.isfinite(sigma)) and np.all(sigma > 0)
    assert np.ptp(sigma) > 0
